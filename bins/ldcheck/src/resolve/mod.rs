//! The loader, emulated: glibc 2.36's ld.so loading one entry point the way
//! `LD_TRACE_LOADED_OBJECTS=1 ld.so FILE` does (breadth-first over
//! DT_NEEDED, a missing library recorded and the walk going on), then its
//! version check (`_dl_check_all_versions`) and, on request, a check that
//! every undefined symbol has a definition in the global scope.
//!
//! Search order for a DT_NEEDED name without a slash (elf/dl-load.c):
//! DT_RPATH of the requesting object and its loaders up to the main program
//! (only when the requesting object has no DT_RUNPATH), LD_LIBRARY_PATH,
//! DT_RUNPATH of the requesting object, /etc/ld.so.cache, the default
//! directories (not with DF_1_NODEFLIB). In every directory the hwcaps
//! subdirectories come first. A file of the wrong class or machine is
//! skipped and the search goes on; an object already loaded (by name,
//! soname or file identity) is reused.
//!
//! This module holds the loader's state shared by every entry point (the
//! root, ld.so.cache, LD_LIBRARY_PATH and the caches); each question has
//! its own file: `arch` (the machine's rules), `dst` (`$ORIGIN` and
//! friends), `object` (which file a path is), `search` (search paths),
//! `walk` (the loader walk) and `checks` (versions and symbols).

mod arch;
mod checks;
mod dst;
mod musl;
mod object;
mod search;
mod walk;

pub use arch::{legacy_subdirs, Arch};
pub use checks::{SymbolError, VersionError};
pub use dst::expand;
pub use musl::{expand_origin as musl_expand_origin, split as musl_split, Musl};
pub use object::{open_regular, parse_file, read_object, Object};
pub use walk::{FoundBy, Loaded, Node, Searched};

use crate::ldcache::{self, Cache};
use crate::root::Root;
use dockhand::hash::FastMap as HashMap;
use search::{Dir, ListKind, Listing, SearchList};
use std::sync::{Arc, Mutex};
use walk::Found;

/// The emulated loader for one root: what stays the same across entry
/// points, and what one entry point's walk learns that the next can reuse.
#[derive(Debug)]
pub struct Loader<'a> {
    pub root: &'a Root,
    pub cache: Option<Cache>,
    /// LD_LIBRARY_PATH (already chosen: the flag, the environment, or none).
    pub library_path: Option<String>,
    pub symbols: bool,
    /// Set for a musl root: entry points are loaded by `load_musl`.
    pub musl: Option<Musl>,
    /// Parsed objects by canonical path (None: not a readable ELF file).
    objects: Memo<String, Option<Arc<Object>>>,
    /// The same answers by the path as probed.
    probes: Memo<String, Option<Arc<Object>>>,
    /// Searches whose answer depends on nothing but the name: no DT_RPATH
    /// along the loader chain, no DT_RUNPATH, no $ORIGIN in
    /// LD_LIBRARY_PATH. Keyed by (machine, DF_1_NODEFLIB, name); most
    /// system libraries are found this way by every entry point.
    plain: Memo<(u16, bool, String), Found>,
    /// Version checks already made: (object, its verneed entry, the library
    /// it resolved to) by address (the objects live as long as the Loader).
    unmet: Memo<(usize, usize, usize), checks::Unmet>,
    /// Per (machine, search directory): the directory and its hwcaps
    /// subdirectories that exist, best first, as prefixes ending in '/'.
    /// ld.so likewise stops trying a directory it found missing
    /// (r_search_path_elem's status); a name costs one probe per existing
    /// directory instead of one per subdirectory.
    dirs: Memo<(u16, String), Arc<[Dir]>>,
    /// Search lists by (machine, kind, spec and origin).
    lists: Memo<(u16, ListKind, String), Arc<SearchList>>,
    /// Per canonical directory: its names, once listed.
    listings: Memo<String, Arc<Listing>>,
}

/// A cache shared by the threads that load entry points.
type Memo<K, V> = Mutex<HashMap<K, V>>;

impl<'a> Loader<'a> {
    pub fn new(root: &'a Root, library_path: Option<String>, symbols: bool) -> Loader<'a> {
        // Through the root's symlinks, like every other path: never the host's file.
        let cache = root
            .read_file("/etc/ld.so.cache", ldcache::MAX_SIZE)
            .and_then(|d| ldcache::parse(&d).ok());
        Loader {
            root,
            cache,
            library_path,
            symbols,
            musl: None,
            objects: Mutex::new(HashMap::default()),
            probes: Mutex::new(HashMap::default()),
            dirs: Mutex::new(HashMap::default()),
            listings: Mutex::new(HashMap::default()),
            lists: Mutex::new(HashMap::default()),
            plain: Mutex::new(HashMap::default()),
            unmet: Mutex::new(HashMap::default()),
        }
    }
}
