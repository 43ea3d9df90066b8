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

use crate::elf::{self, Elf};
use crate::ldcache::{self, Cache};
use crate::root::Root;
use dockhand::hash::{FastMap as HashMap, FastSet as HashSet};
use std::sync::{Arc, Mutex};

/// A parsed object, shared between entry points.
#[derive(Debug)]
pub struct Obj {
    pub canon: String,
    pub id: (u64, u64),
    pub elf: Elf,
}

/// How a library was found (the tree format's "why").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    Main,
    Interp,
    Rpath,
    LdLibraryPath,
    Runpath,
    Cache,
    Default,
    Path,
    NotFound,
}

impl How {
    pub fn as_str(self) -> &'static str {
        match self {
            How::Main => "entry",
            How::Interp => "interpreter",
            How::Rpath => "rpath",
            How::LdLibraryPath => "LD_LIBRARY_PATH",
            How::Runpath => "runpath",
            How::Cache => "ld.so.cache",
            How::Default => "default",
            How::Path => "path",
            How::NotFound => "not found",
        }
    }
}

/// One object in the load order of an entry point (a link_map).
#[derive(Debug, Clone)]
pub struct Node {
    /// l_name: the path as found (not symlink-resolved), or the bare name when not found.
    pub name: String,
    pub obj: Option<Arc<Obj>>,
    /// Names it was requested as (l_libname); the first is what ld.so prints.
    pub names: Vec<String>,
    /// The object that caused it to be loaded (l_loader).
    pub loader: Option<usize>,
    pub how: How,
    /// For missing ones: where the search looked (shared by every name
    /// the same loader searched for in vain).
    pub searched: Option<Arc<Searched>>,
}

/// Where the search for a missing library looked, in the loader's order,
/// each place once: the first few, and how many in all. A search visits
/// every directory for every name; keeping them all would make a report
/// of names times directories (6,000 names and 1,100 directories: 53 MB).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Searched {
    pub first: Vec<String>,
    pub total: usize,
}

impl Searched {
    /// Places kept: a whole ordinary search (a few DT_RPATH or DT_RUNPATH
    /// directories, LD_LIBRARY_PATH, ld.so.cache, the four default ones).
    pub const KEPT: usize = 10;
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VersionError {
    pub version: String,
    pub library: String,
    pub needed_by: String,
    pub weak: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SymbolError {
    pub symbol: String,
    pub version: Option<String>,
    pub needed_by: String,
}

/// The result of loading one entry point.
#[derive(Debug, Default)]
pub struct Loaded {
    pub nodes: Vec<Node>,
    /// (requesting node, name, node it resolved to) for every DT_NEEDED.
    pub edges: Vec<(usize, String, usize)>,
    pub interp: Option<usize>,
    pub version_errors: Vec<VersionError>,
    pub symbol_errors: Vec<SymbolError>,
    /// PT_INTERP names a file the root lacks.
    pub missing_interp: Option<String>,
}

impl Loaded {
    pub fn missing(&self) -> impl Iterator<Item = (usize, &Node)> {
        self.nodes.iter().enumerate().filter(|(_, n)| n.obj.is_none())
    }
}

/// Everything that stays the same across entry points.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub root: &'a Root,
    pub cache: Option<Cache>,
    /// LD_LIBRARY_PATH (already chosen: the flag, the environment, or none).
    pub library_path: Option<String>,
    pub symbols: bool,
    objs: Mutex<HashMap<String, Option<Arc<Obj>>>>,
    probes: Mutex<HashMap<String, Option<Arc<Obj>>>>,
    /// Searches whose answer depends on nothing but the name: no DT_RPATH
    /// along the loader chain, no DT_RUNPATH, no $ORIGIN in
    /// LD_LIBRARY_PATH. Keyed by (machine, DF_1_NODEFLIB, name); most
    /// system libraries are found this way by every entry point.
    plain: Memo<(u16, bool, String), Found>,
    /// Version checks already made: (object, its verneed entry, the library
    /// it resolved to) by address (the objects live as long as the Ctx).
    unmet: Memo<(usize, usize, usize), Unmet>,
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

type Found = Option<(String, Arc<Obj>, How)>;

/// Versions a verneed entry asks for that its library lacks: (name, weak).
type Unmet = Arc<[(String, bool)]>;

/// A cache shared by the threads that load entry points.
type Memo<K, V> = Mutex<HashMap<K, V>>;

/// Which search list a spec is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ListKind {
    /// DT_RPATH or DT_RUNPATH: ':'-separated, repeats dropped.
    Path,
    /// LD_LIBRARY_PATH: ':' or ';'-separated.
    LibraryPath,
    /// The machine's default directories.
    Default,
}

/// One element of a search list: how the "searched" line names it, and
/// the directories (it and its hwcaps subdirectories) that exist.
#[derive(Debug)]
struct SearchDir {
    label: String,
    dirs: Arc<[Dir]>,
}

/// A search list: its elements in order, and once it has been searched
/// often, an index of the names its directories hold.
#[derive(Debug)]
struct SearchList {
    elems: Vec<SearchDir>,
    /// How many directories the elements have in all.
    dirs: usize,
    searches: std::sync::atomic::AtomicU32,
    index: std::sync::OnceLock<Option<ListIndex>>,
}

/// For a long search list searched often: the first position (element,
/// directory) whose listing has each name, and the positions that could
/// not be listed (always probed). A name then costs one hash lookup instead
/// of one per directory: thousands of names against a DT_RPATH of a
/// thousand directories are names plus directories of work, not their product.
#[derive(Debug)]
struct ListIndex {
    first: HashMap<Box<str>, (u32, u32)>,
    unlisted: Vec<(u32, u32)>,
}

impl SearchList {
    /// Lists shorter than this are searched directory by directory.
    const INDEX_MIN_DIRS: usize = 16;
    /// Searches before an index is built.
    const INDEX_AFTER: u32 = 16;
    /// Names indexed, at most, per directory of the list: the index is
    /// bounded by the list (the input), never by the size of a system
    /// directory times the number of lists that name it.
    const INDEX_NAMES_PER_DIR: usize = 64;

    fn new(elems: Vec<SearchDir>) -> SearchList {
        SearchList {
            dirs: elems.iter().map(|e| e.dirs.len()).sum(),
            elems,
            searches: Default::default(),
            index: Default::default(),
        }
    }

    /// The index, once the list has earned one (None: search directory by directory).
    fn index(&self, root: &Root) -> Option<&ListIndex> {
        if let Some(i) = self.index.get() {
            return i.as_ref();
        }
        if self.dirs < Self::INDEX_MIN_DIRS
            || self.searches.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < Self::INDEX_AFTER
        {
            return None;
        }
        self.index.get_or_init(|| self.build_index(root)).as_ref()
    }

    fn build_index(&self, root: &Root) -> Option<ListIndex> {
        let cap = self.dirs.saturating_mul(Self::INDEX_NAMES_PER_DIR);
        let mut first: HashMap<Box<str>, (u32, u32)> = HashMap::default();
        let mut unlisted = Vec::new();
        let mut merged: HashSet<usize> = HashSet::default();
        let mut total = 0usize;
        for (i, e) in self.elems.iter().enumerate() {
            for (j, d) in e.dirs.iter().enumerate() {
                let at = (u32::try_from(i).ok()?, u32::try_from(j).ok()?);
                let Some(names) = d.listing.listed(root, &d.canon) else {
                    unlisted.push(at);
                    continue;
                };
                // A directory spelled twice: its names are already at its first place.
                if !merged.insert(Arc::as_ptr(&d.listing) as usize) {
                    continue;
                }
                total += names.len();
                if total > cap {
                    return None;
                }
                for n in names {
                    first.entry(n.clone()).or_insert(at);
                }
            }
        }
        Some(ListIndex { first, unlisted })
    }
}

/// A search directory that exists in the root.
#[derive(Debug)]
struct Dir {
    /// As the loader spells it (from DT_RPATH, $ORIGIN and all), ending in '/'.
    lit: String,
    /// Its canonical path in the root, ending in '/'.
    canon: String,
    /// Shared by every spelling of the directory.
    listing: Arc<Listing>,
}

/// The names in a search directory, read once it has been probed often
/// enough to be worth it: a probe is one lstat, and listing a system
/// directory of thousands of libraries costs more than the few probes that
/// reach it (most libraries come from ld.so.cache).
#[derive(Debug, Default)]
struct Listing {
    probes: std::sync::atomic::AtomicU32,
    names: std::sync::OnceLock<Option<HashSet<Box<str>>>>,
}

impl Listing {
    const AFTER_PROBES: u32 = 8;

    /// The names, when listed (None: probe).
    fn names(&self, root: &Root, canon: &str) -> Option<&HashSet<Box<str>>> {
        if let Some(n) = self.names.get() {
            return n.as_ref();
        }
        if self.probes.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < Self::AFTER_PROBES {
            return None;
        }
        self.listed(root, canon)
    }

    /// The names, listed now if they were not yet (None: cannot be listed).
    fn listed(&self, root: &Root, canon: &str) -> Option<&HashSet<Box<str>>> {
        self.names.get_or_init(|| root.list(canon)).as_ref()
    }
}

/// Counts the places a failed search looked, keeping the first few.
#[derive(Default)]
struct SearchedBuilder {
    seen: HashSet<String>,
    out: Searched,
}

impl SearchedBuilder {
    fn push(&mut self, place: &str) {
        if self.seen.contains(place) {
            return;
        }
        self.seen.insert(place.to_string());
        self.out.total += 1;
        if self.out.first.len() < Searched::KEPT {
            self.out.first.push(place.to_string());
        }
    }
}

/// One step of the search for a name without a slash, in the loader's order.
enum Step {
    /// A search list, and how a library found there is reported.
    List(Arc<SearchList>, How),
    /// /etc/ld.so.cache (only when the root has one).
    Cache,
}

/// The names loaded objects answer to (l_name, l_libname, DT_SONAME), each
/// mapped to the first object in load order that has it: what ld.so's linear
/// scan over the link maps finds, without the scan. Missing libraries are
/// not loaded objects and are not in it.
#[derive(Default)]
struct Names(HashMap<String, usize>);

impl Names {
    fn add(&mut self, name: &str, j: usize) {
        if !self.0.contains_key(name) {
            self.0.insert(name.to_string(), j);
        }
    }

    fn add_node(&mut self, n: &Node, j: usize) {
        let Some(o) = &n.obj else { return };
        self.add(&n.name, j);
        for x in &n.names {
            self.add(x, j);
        }
        if let Some(s) = &o.elf.soname {
            self.add(s, j);
        }
    }
}

/// What the loader for one machine looks like.
#[derive(Debug, Clone)]
pub struct Arch {
    pub machine: u16,
    pub class64: bool,
    pub cache_flags: i32,
    pub default_dirs: &'static [&'static str],
    pub interp: &'static str,
    pub lib: &'static str,
    pub platform: String,
    /// Subdirectories tried in every directory, best first, "" last.
    pub subdirs: Vec<String>,
    /// The glibc-hwcaps names the CPU supports, best first (for the cache).
    pub glibc_hwcaps: Vec<&'static str>,
}

impl Arch {
    /// The loader rules for objects of this machine, or None for machines
    /// ldcheck does not judge (worked out once per machine and run).
    pub fn for_elf(e: &Elf) -> Option<&'static Arch> {
        static X86_64: std::sync::OnceLock<Option<Arch>> = std::sync::OnceLock::new();
        static AARCH64: std::sync::OnceLock<Option<Arch>> = std::sync::OnceLock::new();
        match (e.machine, e.class64) {
            (elf::EM_X86_64, true) => X86_64.get_or_init(|| Arch::build(elf::EM_X86_64)).as_ref(),
            (elf::EM_AARCH64, true) => AARCH64.get_or_init(|| Arch::build(elf::EM_AARCH64)).as_ref(),
            _ => None,
        }
    }

    fn build(machine: u16) -> Option<Arch> {
        let e = Elf {
            machine,
            class64: true,
            ..Elf::default()
        };
        match (e.machine, e.class64) {
            (elf::EM_X86_64, true) => {
                // The CPU is asked once (and /proc/cpuinfo read once) per run.
                static CPU: std::sync::OnceLock<(Vec<&'static str>, String)> = std::sync::OnceLock::new();
                let (glibc_hwcaps, platform) = CPU
                    .get_or_init(|| {
                        if cfg!(target_arch = "x86_64") {
                            (x86_levels(), x86_platform())
                        } else {
                            (Vec::new(), "x86_64".to_string())
                        }
                    })
                    .clone();
                let mut subdirs: Vec<String> =
                    glibc_hwcaps.iter().map(|l| format!("glibc-hwcaps/{l}")).collect();
                subdirs.extend(legacy_subdirs(&platform, &["x86_64"]));
                Some(Arch {
                    machine: e.machine,
                    class64: true,
                    cache_flags: ldcache::FLAGS_X86_64,
                    default_dirs: &[
                        "/lib/x86_64-linux-gnu",
                        "/usr/lib/x86_64-linux-gnu",
                        "/lib",
                        "/usr/lib",
                    ],
                    interp: "/lib64/ld-linux-x86-64.so.2",
                    lib: "lib/x86_64-linux-gnu",
                    platform,
                    subdirs,
                    glibc_hwcaps,
                })
            }
            (elf::EM_AARCH64, true) => Some(Arch {
                machine: e.machine,
                class64: true,
                cache_flags: ldcache::FLAGS_AARCH64,
                default_dirs: &[
                    "/lib/aarch64-linux-gnu",
                    "/usr/lib/aarch64-linux-gnu",
                    "/lib",
                    "/usr/lib",
                ],
                interp: "/lib/ld-linux-aarch64.so.1",
                lib: "lib/aarch64-linux-gnu",
                platform: "aarch64".into(),
                subdirs: vec!["tls".into(), String::new()],
                glibc_hwcaps: Vec::new(),
            }),
            _ => None,
        }
    }

    fn accepts(&self, e: &Elf) -> bool {
        e.machine == self.machine
            && e.class64 == self.class64
            && matches!(e.etype, elf::ET_DYN | elf::ET_EXEC)
    }
}

/// glibc 2.36's legacy hwcaps subdirectories: every subset of
/// (tls, platform, hwcaps...) in decreasing binary order, as ld.so prints
/// them with LD_DEBUG=libs.
pub fn legacy_subdirs(platform: &str, hwcaps: &[&str]) -> Vec<String> {
    let mut elems = vec!["tls", platform];
    elems.extend_from_slice(hwcaps);
    let n = elems.len();
    let mut out: Vec<String> = Vec::new();
    for mask in (0..(1u32 << n)).rev() {
        let parts: Vec<&str> = (0..n)
            .filter(|i| mask & (1 << (n - 1 - i)) != 0)
            .map(|i| elems[i])
            .collect();
        let s = parts.join("/");
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
fn x86_levels() -> Vec<&'static str> {
    use std::arch::is_x86_feature_detected as f;
    let v2 = f!("cmpxchg16b") && f!("popcnt") && f!("sse3") && f!("sse4.1") && f!("sse4.2") && f!("ssse3");
    let v3 = v2
        && f!("avx")
        && f!("avx2")
        && f!("bmi1")
        && f!("bmi2")
        && f!("f16c")
        && f!("fma")
        && f!("lzcnt")
        && f!("movbe")
        && f!("xsave");
    let v4 = v3 && f!("avx512f") && f!("avx512bw") && f!("avx512cd") && f!("avx512dq") && f!("avx512vl");
    [(v4, "x86-64-v4"), (v3, "x86-64-v3"), (v2, "x86-64-v2")]
        .into_iter()
        .filter(|(ok, _)| *ok)
        .map(|(_, n)| n)
        .collect()
}

#[cfg(not(target_arch = "x86_64"))]
fn x86_levels() -> Vec<&'static str> {
    Vec::new()
}

/// AT_PLATFORM as glibc 2.36 sets it on x86_64: "haswell" on Intel CPUs
/// with AVX2 and friends, else "x86_64".
#[cfg(target_arch = "x86_64")]
fn x86_platform() -> String {
    use std::arch::is_x86_feature_detected as f;
    let intel = std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| {
            c.lines()
                .any(|l| l.starts_with("vendor_id") && l.contains("GenuineIntel"))
        })
        .unwrap_or(false);
    let haswell =
        f!("avx2") && f!("fma") && f!("bmi1") && f!("bmi2") && f!("lzcnt") && f!("movbe") && f!("popcnt");
    if intel && haswell { "haswell" } else { "x86_64" }.to_string()
}

#[cfg(not(target_arch = "x86_64"))]
fn x86_platform() -> String {
    "x86_64".to_string()
}

fn dirname(p: &str) -> String {
    match p.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => p[..i].to_string(),
        None => ".".into(),
    }
}

/// Expand $ORIGIN, $LIB and $PLATFORM (with or without braces). None when
/// $ORIGIN is needed and unknown (the loader drops such an element).
pub fn expand(s: &str, origin: Option<&str>, arch: &Arch) -> Option<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let mut done = false;
        for (name, val) in [
            ("ORIGIN", origin),
            ("LIB", Some(arch.lib)),
            ("PLATFORM", Some(arch.platform.as_str())),
        ] {
            let braced = format!("{{{name}}}");
            let len = if after.starts_with(&braced) {
                braced.len()
            } else if after.starts_with(name)
                && !after[name.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            {
                name.len()
            } else {
                continue;
            };
            out.push_str(val?);
            rest = &after[len..];
            done = true;
            break;
        }
        if !done {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Some(out)
}

/// A search directory as the loader stores it: trailing slashes removed
/// (except for "/"), one added back; empty stays empty (the cwd).
fn dir_prefix(d: &str) -> String {
    if d.is_empty() {
        return String::new();
    }
    let t = d.trim_end_matches('/');
    if t.is_empty() {
        "/".into()
    } else {
        format!("{t}/")
    }
}

enum Probe {
    Found(Arc<Obj>),
    /// Not there, or of another class or machine: keep searching.
    Skip,
}

impl<'a> Ctx<'a> {
    pub fn new(root: &'a Root, library_path: Option<String>, symbols: bool) -> Ctx<'a> {
        // Through the root's symlinks, like every other path: never the host's file.
        let cache = root
            .read_file("/etc/ld.so.cache", ldcache::MAX_SIZE)
            .and_then(|d| ldcache::parse(&d).ok());
        Ctx {
            root,
            cache,
            library_path,
            symbols,
            objs: Mutex::new(HashMap::default()),
            probes: Mutex::new(HashMap::default()),
            dirs: Mutex::new(HashMap::default()),
            listings: Mutex::new(HashMap::default()),
            lists: Mutex::new(HashMap::default()),
            plain: Mutex::new(HashMap::default()),
            unmet: Mutex::new(HashMap::default()),
        }
    }

    /// Seed the object cache with a file parsed during the walk.
    pub fn insert(&self, canon: &str, obj: Option<Arc<Obj>>) {
        if let Ok(mut m) = self.objs.lock() {
            m.insert(canon.to_string(), obj);
        }
    }

    /// The parsed object at in-root path `p`, if it is a readable ELF file.
    pub fn object(&self, p: &str) -> Option<Arc<Obj>> {
        // Every entry point probes the same paths: remember each answer.
        if let Some(o) = self.probes.lock().ok()?.get(p) {
            return o.clone();
        }
        let o = self.object_uncached(p);
        if let Ok(mut m) = self.probes.lock() {
            m.insert(p.to_string(), o.clone());
        }
        o
    }

    fn object_uncached(&self, p: &str) -> Option<Arc<Obj>> {
        let canon = self.root.file(p)?;
        if let Some(o) = self.objs.lock().ok()?.get(&canon) {
            return o.clone();
        }
        let o = read_object(self.root, &canon, self.symbols).map(Arc::new);
        if let Ok(mut m) = self.objs.lock() {
            m.insert(canon, o.clone());
        }
        o
    }

    fn probe(&self, path: &str, arch: &Arch) -> Probe {
        match self.object(path) {
            Some(o) if arch.accepts(&o.elf) => Probe::Found(o),
            _ => Probe::Skip,
        }
    }

    /// The directories under search directory `pre` worth trying, best
    /// first: `pre` and each hwcaps subdirectory that is a directory in the root.
    fn existing(&self, pre: String, arch: &Arch) -> Arc<[Dir]> {
        let key = (arch.machine, pre);
        if let Some(v) = self.dirs.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return v;
        }
        let pre = &key.1;
        let v: Arc<[Dir]> = arch
            .subdirs
            .iter()
            .filter_map(|sub| {
                let lit = if sub.is_empty() {
                    pre.clone()
                } else {
                    format!("{pre}{sub}/")
                };
                let d = lit.trim_end_matches('/');
                let (canon, kind) = self.root.resolve(if d.is_empty() { "." } else { d })?;
                (kind == crate::root::Kind::Dir).then(|| Dir {
                    listing: self.listing(&canon),
                    canon: if canon == "/" { canon } else { canon + "/" },
                    lit,
                })
            })
            .collect();
        if let Ok(mut m) = self.dirs.lock() {
            m.insert(key, v.clone());
        }
        v
    }

    /// The listing of the directory at canonical path `canon`.
    fn listing(&self, canon: &str) -> Arc<Listing> {
        let Ok(mut m) = self.listings.lock() else {
            return Arc::default();
        };
        m.entry(canon.to_string()).or_default().clone()
    }

    /// A search list (DT_RPATH, DT_RUNPATH, LD_LIBRARY_PATH or the default
    /// directories) split, expanded for `origin` and matched with the
    /// directories that exist: worked out once per (list, origin) and run.
    fn search_list(&self, kind: ListKind, spec: &str, origin: Option<&str>, arch: &Arch) -> Arc<SearchList> {
        let key = (arch.machine, kind, format!("{spec}\0{}", origin.unwrap_or("\0")));
        if let Some(v) = self.lists.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return v;
        }
        let elems: Vec<String> = match kind {
            ListKind::Path => self.path_list(spec, origin, arch),
            // LD_LIBRARY_PATH is split on ':' and ';'; $ORIGIN there means the main program's.
            ListKind::LibraryPath => spec
                .split([':', ';'])
                .filter_map(|e| expand(e, origin, arch))
                .collect(),
            ListKind::Default => arch.default_dirs.iter().map(|s| s.to_string()).collect(),
        };
        let elems: Vec<SearchDir> = elems
            .into_iter()
            .map(|d| {
                let pre = dir_prefix(&d);
                SearchDir {
                    label: if pre.is_empty() {
                        ".".into()
                    } else {
                        pre.trim_end_matches('/').to_string()
                    },
                    dirs: self.existing(pre, arch),
                }
            })
            .collect();
        let v = Arc::new(SearchList::new(elems));
        if let Ok(mut m) = self.lists.lock() {
            m.insert(key, v.clone());
        }
        v
    }

    /// Try `name` in each directory of a search list.
    fn open_path(&self, list: &SearchList, name: &str, arch: &Arch) -> Option<(String, Arc<Obj>)> {
        let (from_elem, from_dir) = match list.index(self.root) {
            Some(ix) => {
                // The directories before the first that lists the name:
                // only those that could not be listed may have it.
                let at = ix.first.get(name).copied();
                for &(i, j) in ix.unlisted.iter().take_while(|p| at.is_none_or(|a| **p < a)) {
                    if let Some(f) = self.try_dir(&list.elems[i as usize].dirs[j as usize], name, arch) {
                        return Some(f);
                    }
                }
                // From there on, as without the index (that file may be of
                // another machine, and the search go on).
                let (i, j) = at?;
                (i as usize, j as usize)
            }
            None => (0, 0),
        };
        for (i, sd) in list.elems.iter().enumerate().skip(from_elem) {
            let skip = if i == from_elem { from_dir } else { 0 };
            for d in sd.dirs.iter().skip(skip) {
                // Not among the directory's names: not there (the probe would fail).
                if d.listing
                    .names(self.root, &d.canon)
                    .is_some_and(|n| !n.contains(name))
                {
                    continue;
                }
                if let Some(f) = self.try_dir(d, name, arch) {
                    return Some(f);
                }
            }
        }
        None
    }

    /// Probe `name` in one directory: by the canonical path, so every
    /// spelling of a directory shares one answer; reported as the loader
    /// spells it.
    fn try_dir(&self, d: &Dir, name: &str, arch: &Arch) -> Option<(String, Arc<Obj>)> {
        match self.probe(&format!("{}{name}", d.canon), arch) {
            Probe::Found(o) => Some((format!("{}{name}", d.lit), o)),
            Probe::Skip => None,
        }
    }

    /// Split a DT_RPATH/DT_RUNPATH and expand it for an object at `origin`.
    fn path_list(&self, s: &str, origin: Option<&str>, arch: &Arch) -> Vec<String> {
        let mut seen: HashSet<String> = HashSet::default();
        let mut v: Vec<String> = Vec::new();
        for el in s.split(':') {
            if let Some(e) = expand(el, origin, arch) {
                if seen.insert(e.clone()) {
                    v.push(e);
                }
            }
        }
        v
    }

    /// Load `main` and everything it pulls in, as ld.so does in trace mode.
    pub fn load(&self, main_path: &str, main: Arc<Obj>) -> Loaded {
        let mut l = Loaded::default();
        let Some(arch) = Arch::for_elf(&main.elf) else {
            return l;
        };
        l.nodes.push(Node {
            name: main_path.to_string(),
            names: vec![main_path.to_string()],
            obj: Some(main.clone()),
            loader: None,
            how: How::Main,
            searched: None,
        });
        // The dynamic loader itself is on the list from the start.
        let interp_path = main.elf.interp.clone().unwrap_or_else(|| arch.interp.to_string());
        if main.elf.dynamic && (main.elf.interp.is_some() || !main.elf.needed.is_empty()) {
            match self.object(&interp_path) {
                Some(o) if arch.accepts(&o.elf) => {
                    let mut names = vec![interp_path.clone()];
                    names.extend(o.elf.soname.clone());
                    l.interp = Some(l.nodes.len());
                    l.nodes.push(Node {
                        name: interp_path.clone(),
                        names,
                        obj: Some(o),
                        loader: None,
                        how: How::Interp,
                        searched: None,
                    });
                }
                _ if main.elf.interp.is_some() => l.missing_interp = Some(interp_path),
                _ => {}
            }
        }
        let mut index = Names::default();
        for j in 0..l.nodes.len() {
            index.add_node(&l.nodes[j], j);
        }
        // Where the searches from each loader looked, for missing libraries.
        let mut searched: HashMap<usize, Arc<Searched>> = HashMap::default();
        let mut i = 0;
        while i < l.nodes.len() {
            let Some(obj) = l.nodes[i].obj.clone() else {
                i += 1;
                continue;
            };
            if l.nodes[i].how == How::Interp {
                i += 1;
                continue;
            }
            for name in &obj.elf.needed {
                // dl-deps.c expands DSTs before the name is looked up or recorded.
                let name = if name.contains('$') {
                    expand(name, Some(&self.origin(&l.nodes[i])), arch).unwrap_or_else(|| name.clone())
                } else {
                    name.clone()
                };
                let j = self.map_object(&mut l, &mut index, &mut searched, i, &name, arch);
                l.edges.push((i, name, j));
            }
            i += 1;
        }
        self.check_versions(&mut l);
        if self.symbols {
            self.check_symbols(&mut l);
        }
        l
    }

    /// _dl_map_object: reuse a loaded object or search for `name`.
    fn map_object(
        &self,
        l: &mut Loaded,
        index: &mut Names,
        searched: &mut HashMap<usize, Arc<Searched>>,
        loader: usize,
        name: &str,
        arch: &Arch,
    ) -> usize {
        if let Some(&j) = index.0.get(name) {
            let n = &mut l.nodes[j];
            // Matched by its soname only: the loader adds the name to l_libname.
            if n.name != name && !n.names.iter().any(|x| x == name) {
                n.names.push(name.to_string());
            }
            return j;
        }
        match self.search_cached(l, loader, name, arch) {
            Some((path, o, how)) => {
                if let Some(j) = l
                    .nodes
                    .iter()
                    .position(|n| n.obj.as_ref().is_some_and(|x| x.id == o.id))
                {
                    l.nodes[j].names.push(name.to_string());
                    index.add(name, j);
                    return j;
                }
                l.nodes.push(Node {
                    name: path,
                    names: vec![name.to_string()],
                    obj: Some(o),
                    loader: Some(loader),
                    how,
                    searched: None,
                });
                let j = l.nodes.len() - 1;
                index.add_node(&l.nodes[j], j);
            }
            None => {
                // Where a name without a slash was looked for depends on
                // the loader alone: worked out once per loader.
                let s = if name.contains('/') {
                    Arc::new(self.searched(l, loader, name, arch))
                } else {
                    searched
                        .entry(loader)
                        .or_insert_with(|| Arc::new(self.searched(l, loader, name, arch)))
                        .clone()
                };
                l.nodes.push(Node {
                    name: name.to_string(),
                    names: vec![name.to_string()],
                    obj: None,
                    loader: Some(loader),
                    how: How::NotFound,
                    searched: Some(s),
                })
            }
        }
        l.nodes.len() - 1
    }

    fn origin(&self, n: &Node) -> String {
        dirname(&self.root.absolute(&n.name))
    }

    /// `search`, answered from `plain` when nothing but the name matters.
    fn search_cached(&self, l: &Loaded, loader: usize, name: &str, arch: &Arch) -> Found {
        let lobj = l.nodes[loader].obj.as_ref();
        let mut chain = Some(loader);
        let mut rpath = false;
        while let Some(c) = chain {
            rpath |= l.nodes[c].obj.as_ref().is_some_and(|o| o.elf.rpath.is_some());
            chain = l.nodes[c].loader;
        }
        rpath |= l.nodes[0].obj.as_ref().is_some_and(|o| o.elf.rpath.is_some());
        let plain = !name.contains('/')
            && !rpath
            && lobj.is_some_and(|o| o.elf.runpath.is_none())
            && self.library_path.as_deref().is_none_or(|p| !p.contains('$'));
        if !plain {
            return self.search(l, loader, name, arch);
        }
        let nodeflib = lobj.is_some_and(|o| o.elf.flags_1 & elf::DF_1_NODEFLIB != 0);
        let key = (arch.machine, nodeflib, name.to_string());
        if let Some(f) = self.plain.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return f;
        }
        let f = self.search(l, loader, name, arch);
        if let Ok(mut m) = self.plain.lock() {
            m.insert(key, f.clone());
        }
        f
    }

    fn search(&self, l: &Loaded, loader: usize, name: &str, arch: &Arch) -> Found {
        let ld = &l.nodes[loader];
        let lobj = ld.obj.as_ref()?;
        if name.contains('/') {
            let p = expand(name, Some(&self.origin(ld)), arch)?;
            return match self.probe(&p, arch) {
                Probe::Found(o) => Some((p, o, How::Path)),
                Probe::Skip => None,
            };
        }
        let nodeflib = lobj.elf.flags_1 & elf::DF_1_NODEFLIB != 0;
        self.steps(l, loader, arch, |step| match step {
            Step::List(list, how) => self.open_path(&list, name, arch).map(|(p, o)| (p, o, how)),
            Step::Cache => {
                let p = self
                    .cache
                    .as_ref()?
                    .lookup(name, arch.cache_flags, &arch.glibc_hwcaps)?;
                let system = arch.default_dirs.iter().any(|d| p.starts_with(&format!("{d}/")));
                if nodeflib && system {
                    return None;
                }
                match self.probe(p, arch) {
                    Probe::Found(o) => Some((p.to_string(), o, How::Cache)),
                    Probe::Skip => None,
                }
            }
        })
    }

    /// Where a search for `name` from node `loader` looks (a name that is
    /// not found was looked for in every one of these places).
    fn searched(&self, l: &Loaded, loader: usize, name: &str, arch: &Arch) -> Searched {
        let mut b = SearchedBuilder::default();
        if name.contains('/') {
            if let Some(p) = expand(name, Some(&self.origin(&l.nodes[loader])), arch) {
                b.push(&p);
            }
            return b.out;
        }
        self.steps(l, loader, arch, |step| {
            match step {
                Step::List(list, _) => list.elems.iter().for_each(|e| b.push(&e.label)),
                Step::Cache => b.push("ld.so.cache"),
            }
            None::<()>
        });
        b.out
    }

    /// Call `f` with each step of the search for a name without a slash
    /// that node `loader` needs, in the loader's order, until it returns Some.
    fn steps<T>(
        &self,
        l: &Loaded,
        loader: usize,
        arch: &Arch,
        mut f: impl FnMut(Step) -> Option<T>,
    ) -> Option<T> {
        let ld = &l.nodes[loader];
        let lobj = ld.obj.as_ref()?;
        let rpath = |n: &Node| {
            let rp = n.obj.as_ref().and_then(|o| o.elf.rpath.as_deref())?;
            Some(self.search_list(ListKind::Path, rp, Some(&self.origin(n)), arch))
        };
        if lobj.elf.runpath.is_none() {
            let mut did_main = false;
            let mut cur = Some(loader);
            while let Some(c) = cur {
                let n = &l.nodes[c];
                if let Some(list) = rpath(n) {
                    if let Some(x) = f(Step::List(list, How::Rpath)) {
                        return Some(x);
                    }
                    did_main |= c == 0;
                }
                cur = n.loader;
            }
            if !did_main {
                if let Some(list) = rpath(&l.nodes[0]) {
                    if let Some(x) = f(Step::List(list, How::Rpath)) {
                        return Some(x);
                    }
                }
            }
        }
        if let Some(lp) = &self.library_path {
            let origin = lp.contains('$').then(|| self.origin(&l.nodes[0]));
            let list = self.search_list(ListKind::LibraryPath, lp, origin.as_deref(), arch);
            if let Some(x) = f(Step::List(list, How::LdLibraryPath)) {
                return Some(x);
            }
        }
        if let Some(rp) = lobj.elf.runpath.as_deref() {
            let list = self.search_list(ListKind::Path, rp, Some(&self.origin(ld)), arch);
            if let Some(x) = f(Step::List(list, How::Runpath)) {
                return Some(x);
            }
        }
        if self.cache.is_some() {
            if let Some(x) = f(Step::Cache) {
                return Some(x);
            }
        }
        if lobj.elf.flags_1 & elf::DF_1_NODEFLIB == 0 {
            let list = self.search_list(ListKind::Default, "", None, arch);
            return f(Step::List(list, How::Default));
        }
        None
    }

    /// The node a verneed's file name refers to (_dl_name_match_p over the list).
    /// The versions `vn` of object `o` asks for that `dep` does not define
    /// (the same answer for every entry point that loads both: kept).
    fn unmet(&self, o: &Arc<Obj>, vn: &elf::Verneed, dep: &Arc<Obj>) -> Unmet {
        let key = (
            Arc::as_ptr(o) as usize,
            vn as *const elf::Verneed as usize,
            Arc::as_ptr(dep) as usize,
        );
        if let Some(v) = self.unmet.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return v;
        }
        // No version information at all: the loader only mentions it when verbose.
        let v: Unmet = if dep.elf.verdef.is_empty() {
            Arc::new([])
        } else {
            vn.versions
                .iter()
                .filter(|(v, _)| !dep.elf.verdef.iter().any(|d| d == v))
                .cloned()
                .collect()
        };
        if let Ok(mut m) = self.unmet.lock() {
            m.insert(key, v.clone());
        }
        v
    }

    /// Every node's l_name and l_libname entries, each mapped to the first
    /// node that has it (missing ones included, as in the scan).
    fn needed_index(l: &Loaded) -> HashMap<&str, usize> {
        let mut m = HashMap::default();
        for (j, n) in l.nodes.iter().enumerate() {
            for x in std::iter::once(&n.name).chain(&n.names) {
                m.entry(x.as_str()).or_insert(j);
            }
        }
        m
    }

    fn check_versions(&self, l: &mut Loaded) {
        let mut errs = Vec::new();
        let index = Self::needed_index(l);
        for n in &l.nodes {
            let Some(o) = &n.obj else { continue };
            for vn in &o.elf.verneed {
                let Some(&j) = index.get(vn.file.as_str()) else {
                    continue;
                };
                let Some(dep) = &l.nodes[j].obj else { continue };
                for (v, weak) in self.unmet(o, vn, dep).iter() {
                    errs.push(VersionError {
                        version: v.clone(),
                        library: l.nodes[j].name.clone(),
                        needed_by: n.name.clone(),
                        weak: *weak,
                    });
                }
            }
        }
        l.version_errors = errs;
    }

    fn check_symbols(&self, l: &mut Loaded) {
        if l.nodes.iter().any(|n| n.obj.is_none()) {
            return;
        }
        let mut defs: HashSet<(&str, Option<&str>)> = HashSet::default();
        // Defined at all (any version), and defined without a version.
        let mut any: HashSet<&str> = HashSet::default();
        let mut unversioned: HashSet<&str> = HashSet::default();
        for n in &l.nodes {
            let Some(s) = n.obj.as_ref().and_then(|o| o.elf.symbols.as_ref()) else {
                return;
            };
            for (name, v) in &s.defined {
                defs.insert((name, v.as_deref()));
                any.insert(name);
                if v.is_none() {
                    unversioned.insert(name);
                }
            }
        }
        let mut errs = Vec::new();
        for n in &l.nodes {
            let Some(s) = n.obj.as_ref().and_then(|o| o.elf.symbols.as_ref()) else {
                continue;
            };
            for (name, v) in &s.undefined {
                let ok = match v {
                    Some(v) => {
                        defs.contains(&(name.as_str(), Some(v.as_str())))
                            || unversioned.contains(name.as_str())
                    }
                    None => any.contains(name.as_str()),
                };
                if !ok {
                    errs.push(SymbolError {
                        symbol: name.clone(),
                        version: v.clone(),
                        needed_by: n.name.clone(),
                    });
                }
            }
        }
        l.symbol_errors = errs;
    }
}

thread_local! {
    static HEAD: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Parse an open file, reusing this thread's head buffer; None when it is
/// not an ELF file (told by the magic in the head, read once either way).
pub fn parse_file(f: &std::fs::File, size: u64, symbols: bool) -> Option<Result<Elf, String>> {
    HEAD.with(|h| {
        let buf = std::mem::take(&mut *h.borrow_mut());
        let src = elf::FileSource::with_buffer(f, size, buf);
        let r = elf::is_elf(src.head()).then(|| elf::parse_from(&src, symbols));
        *h.borrow_mut() = src.into_buffer();
        r
    })
}

/// Open the regular file at canonical in-root path `canon` for reading:
/// never through a symlink in its last component (the path is canonical:
/// one there now was swapped in since), never blocking on a FIFO. Returns
/// the file, its identity (device, inode) and size.
pub fn open_regular(root: &Root, canon: &str) -> Option<(std::fs::File, (u64, u64), u64)> {
    use std::os::unix::fs::MetadataExt;
    let f = dockhand::sys::fs::open_read_nofollow(&root.host_path(canon)).ok()?;
    let m = f.metadata().ok()?;
    m.is_file().then(|| (f, (m.dev(), m.ino()), m.len()))
}

/// Open and parse the file at canonical in-root path `canon`.
pub fn read_object(root: &Root, canon: &str, symbols: bool) -> Option<Obj> {
    let (f, id, size) = open_regular(root, canon)?;
    let e = parse_file(&f, size, symbols)?.ok()?;
    Some(Obj {
        canon: canon.to_string(),
        id,
        elf: e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x86() -> &'static Arch {
        Arch::for_elf(&Elf {
            machine: elf::EM_X86_64,
            class64: true,
            ..Elf::default()
        })
        .unwrap()
    }

    #[test]
    fn dst_expansion() {
        let a = x86();
        assert_eq!(expand("$ORIGIN/../lib", Some("/a/b"), a).unwrap(), "/a/b/../lib");
        assert_eq!(expand("${ORIGIN}/x", Some("/a"), a).unwrap(), "/a/x");
        assert_eq!(
            expand("/usr/$LIB/x", None, a).unwrap(),
            "/usr/lib/x86_64-linux-gnu/x"
        );
        assert_eq!(
            expand("/p/${PLATFORM}", None, a).unwrap(),
            format!("/p/{}", a.platform)
        );
        assert_eq!(expand("$ORIGINAL/x", Some("/a"), a).unwrap(), "$ORIGINAL/x");
        assert_eq!(expand("$ORIGIN", None, a), None);
        assert_eq!(expand("/a$", None, a).unwrap(), "/a$");
    }

    #[test]
    fn legacy_order_matches_glibc_debug_output() {
        assert_eq!(
            legacy_subdirs("x86_64", &["x86_64"]),
            [
                "tls/x86_64/x86_64",
                "tls/x86_64",
                "tls",
                "x86_64/x86_64",
                "x86_64",
                ""
            ]
        );
        assert_eq!(
            legacy_subdirs("haswell", &["x86_64"]),
            [
                "tls/haswell/x86_64",
                "tls/haswell",
                "tls/x86_64",
                "tls",
                "haswell/x86_64",
                "haswell",
                "x86_64",
                ""
            ]
        );
    }

    #[test]
    fn dir_prefixes() {
        assert_eq!(dir_prefix("/a/b//"), "/a/b/");
        assert_eq!(dir_prefix("/"), "/");
        assert_eq!(dir_prefix("//"), "/");
        assert_eq!(dir_prefix(""), "");
        assert_eq!(dirname("/a/b/c.so"), "/a/b");
        assert_eq!(dirname("/c.so"), "/");
    }
}
