//! Search paths: DT_RPATH, DT_RUNPATH, LD_LIBRARY_PATH and the default
//! directories split, expanded and matched with the directories (and
//! hwcaps subdirectories) that exist, and a name tried along one, with the
//! caches that keep a search from repeating filesystem work.

use super::arch::Arch;
use super::dst::expand;
use super::object::{Object, Probe};
use super::Loader;
use crate::root::Root;
use dockhand::hash::{FastMap as HashMap, FastSet as HashSet};
use std::sync::Arc;

/// Which search list a spec is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum ListKind {
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
pub(super) struct SearchDir {
    pub(super) label: String,
    dirs: Arc<[Dir]>,
}

/// A search list: its elements in order, and once it has been searched
/// often, an index of the names its directories hold.
#[derive(Debug)]
pub(super) struct SearchList {
    pub(super) elems: Vec<SearchDir>,
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
pub(super) struct ListIndex {
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
pub(super) struct Dir {
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
pub(super) struct Listing {
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

impl Loader<'_> {
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
    pub(super) fn search_list(
        &self,
        kind: ListKind,
        spec: &str,
        origin: Option<&str>,
        arch: &Arch,
    ) -> Arc<SearchList> {
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
    pub(super) fn open_path(
        &self,
        list: &SearchList,
        name: &str,
        arch: &Arch,
    ) -> Option<(String, Arc<Object>)> {
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
    fn try_dir(&self, d: &Dir, name: &str, arch: &Arch) -> Option<(String, Arc<Object>)> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_prefixes() {
        assert_eq!(dir_prefix("/a/b//"), "/a/b/");
        assert_eq!(dir_prefix("/"), "/");
        assert_eq!(dir_prefix("//"), "/");
        assert_eq!(dir_prefix(""), "");
    }

    /// 20 directories: d00 holds a.so, d03 and d07 both hold b.so, d05
    /// cannot be listed (a name that is not UTF-8), d06 is spelled twice.
    /// The index has each name's first place and d05 as unlisted; with
    /// too many names for the list's length it is not built at all.
    #[test]
    fn list_index_has_first_places_and_unlisted_directories() {
        use std::os::unix::ffi::OsStrExt;
        let t = std::env::temp_dir().join(format!("ldcheck-index-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        for i in 0..20 {
            std::fs::create_dir_all(t.join(format!("d{i:02}"))).unwrap();
        }
        for (d, f) in [("d00", "a.so"), ("d03", "b.so"), ("d07", "b.so")] {
            std::fs::write(t.join(d).join(f), b"").unwrap();
        }
        std::fs::write(t.join("d05").join(std::ffi::OsStr::from_bytes(b"\xff")), b"").unwrap();
        let root = Root::new(&t);
        let loader = Loader::new(&root, None, false);
        let arch = Arch::for_elf(&crate::elf::Elf {
            machine: crate::elf::EM_X86_64,
            class64: true,
            ..Default::default()
        })
        .unwrap();
        let mut spec: Vec<String> = (0..20).map(|i| format!("/d{i:02}")).collect();
        spec.insert(7, "/d06/".into());
        let list = loader.search_list(ListKind::Path, &spec.join(":"), None, arch);
        assert_eq!(list.dirs, 21);
        let ix = list.build_index(&root).unwrap();
        assert_eq!(ix.first.get("a.so"), Some(&(0, 0)));
        assert_eq!(ix.first.get("b.so"), Some(&(3, 0)));
        assert_eq!(ix.first.get("c.so"), None);
        assert_eq!(ix.unlisted, [(5, 0)]);
        // Past 64 names per directory of the list: no index.
        for i in 0..21 * SearchList::INDEX_NAMES_PER_DIR {
            std::fs::write(t.join("d09").join(format!("n{i}")), b"").unwrap();
        }
        let root = Root::new(&t);
        let loader = Loader::new(&root, None, false);
        let list = loader.search_list(ListKind::Path, &spec.join(":"), None, arch);
        assert!(list.build_index(&root).is_none());
        let _ = std::fs::remove_dir_all(&t);
    }
}
