//! The loader walk: one entry point loaded the way
//! `LD_TRACE_LOADED_OBJECTS=1 ld.so FILE` does it, breadth-first over
//! DT_NEEDED, each name searched in the loader's order (elf/dl-load.c's
//! `_dl_map_object`), a missing library recorded and the walk going on.

use super::arch::Arch;
use super::checks::{SymbolError, VersionError};
use super::dst::{dirname, expand};
use super::object::Probe;
use super::search::{ListKind, SearchList};
use super::{Loader, Object};
use crate::elf;
use dockhand::hash::{FastMap as HashMap, FastSet as HashSet};
use std::sync::Arc;

/// How a library was found (the tree format's "why").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundBy {
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

impl FoundBy {
    pub fn as_str(self) -> &'static str {
        match self {
            FoundBy::Main => "entry",
            FoundBy::Interp => "interpreter",
            FoundBy::Rpath => "rpath",
            FoundBy::LdLibraryPath => "LD_LIBRARY_PATH",
            FoundBy::Runpath => "runpath",
            FoundBy::Cache => "ld.so.cache",
            FoundBy::Default => "default",
            FoundBy::Path => "path",
            FoundBy::NotFound => "not found",
        }
    }
}

/// One object in the load order of an entry point (a link_map).
#[derive(Debug, Clone)]
pub struct Node {
    /// l_name: the path as found (not symlink-resolved), or the bare name when not found.
    pub name: String,
    pub obj: Option<Arc<Object>>,
    /// Names it was requested as (l_libname); the first is what ld.so prints.
    pub names: Vec<String>,
    /// The object that caused it to be loaded (l_loader).
    pub loader: Option<usize>,
    pub found_by: FoundBy,
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
    /// In a musl root: (file, the glibc loader it expects) for each
    /// glibc-linked object the root has no glibc loader for.
    pub foreign_libc: Vec<(String, String)>,
}

impl Loaded {
    pub fn missing(&self) -> impl Iterator<Item = (usize, &Node)> {
        self.nodes.iter().enumerate().filter(|(_, n)| n.obj.is_none())
    }
}

pub(super) type Found = Option<(String, Arc<Object>, FoundBy)>;

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
pub(super) enum Step {
    /// A search list, and how a library found there is reported.
    List(Arc<SearchList>, FoundBy),
    /// /etc/ld.so.cache (only when the root has one).
    Cache,
}

/// What one walk keeps while it runs.
#[derive(Default)]
struct WalkState {
    names: LoadedNames,
    /// Loaded objects by file identity: the first node that has each.
    by_id: HashMap<(u64, u64), usize>,
    /// Where the searches from each loader looked, for missing libraries.
    searched: HashMap<usize, Arc<Searched>>,
    lists: NodeLists,
}

impl WalkState {
    fn add_node(&mut self, n: &Node, j: usize) {
        if let Some(o) = &n.obj {
            self.by_id.entry(o.id).or_insert(j);
        }
        self.names.add_node(n, j);
    }
}

/// Each node's search lists, looked up once per walk: every DT_NEEDED
/// name's search walks the loader chain, and a list's key (its whole
/// DT_RPATH, up to 8 KiB) costs a hash each time it is looked up.
#[derive(Default)]
pub(super) struct NodeLists {
    /// By (node, DT_RUNPATH rather than DT_RPATH).
    paths: HashMap<(usize, bool), Option<Arc<SearchList>>>,
    library_path: Option<Arc<SearchList>>,
    default: Option<Arc<SearchList>>,
}

/// The names loaded objects answer to (l_name, l_libname, DT_SONAME), each
/// mapped to the first object in load order that has it: what ld.so's linear
/// scan over the link maps finds, without the scan. Missing libraries are
/// not loaded objects and are not in it.
#[derive(Default)]
struct LoadedNames(HashMap<String, usize>);

impl LoadedNames {
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

impl Loader<'_> {
    /// Load `main` and everything it pulls in, as ld.so does in trace mode.
    pub fn load(&self, main_path: &str, main: Arc<Object>) -> Loaded {
        let mut l = Loaded::default();
        let Some(arch) = Arch::for_elf(&main.elf) else {
            return l;
        };
        l.nodes.push(Node {
            name: main_path.to_string(),
            names: vec![main_path.to_string()],
            obj: Some(main.clone()),
            loader: None,
            found_by: FoundBy::Main,
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
                        found_by: FoundBy::Interp,
                        searched: None,
                    });
                }
                _ if main.elf.interp.is_some() => l.missing_interp = Some(interp_path),
                _ => {}
            }
        }
        let mut st = WalkState::default();
        for j in 0..l.nodes.len() {
            st.add_node(&l.nodes[j], j);
        }
        let mut i = 0;
        while i < l.nodes.len() {
            let Some(obj) = l.nodes[i].obj.clone() else {
                i += 1;
                continue;
            };
            if l.nodes[i].found_by == FoundBy::Interp {
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
                let j = self.map_object(&mut l, &mut st, i, &name, arch);
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
        st: &mut WalkState,
        loader: usize,
        name: &str,
        arch: &Arch,
    ) -> usize {
        if let Some(&j) = st.names.0.get(name) {
            let n = &mut l.nodes[j];
            // Matched by its soname only: the loader adds the name to l_libname.
            if n.name != name && !n.names.iter().any(|x| x == name) {
                n.names.push(name.to_string());
            }
            return j;
        }
        match self.search_cached(l, &mut st.lists, loader, name, arch) {
            Some((path, o, found_by)) => {
                // The same file by another name: reused.
                if let Some(&j) = st.by_id.get(&o.id) {
                    l.nodes[j].names.push(name.to_string());
                    st.names.add(name, j);
                    return j;
                }
                l.nodes.push(Node {
                    name: path,
                    names: vec![name.to_string()],
                    obj: Some(o),
                    loader: Some(loader),
                    found_by,
                    searched: None,
                });
                let j = l.nodes.len() - 1;
                st.add_node(&l.nodes[j], j);
            }
            None => {
                // Where a name without a slash was looked for depends on
                // the loader alone: worked out once per loader.
                let s = if name.contains('/') {
                    Arc::new(self.searched(l, &mut st.lists, loader, name, arch))
                } else {
                    let lists = &mut st.lists;
                    st.searched
                        .entry(loader)
                        .or_insert_with(|| Arc::new(self.searched(l, lists, loader, name, arch)))
                        .clone()
                };
                l.nodes.push(Node {
                    name: name.to_string(),
                    names: vec![name.to_string()],
                    obj: None,
                    loader: Some(loader),
                    found_by: FoundBy::NotFound,
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
    fn search_cached(
        &self,
        l: &Loaded,
        lists: &mut NodeLists,
        loader: usize,
        name: &str,
        arch: &Arch,
    ) -> Found {
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
            return self.search(l, lists, loader, name, arch);
        }
        let nodeflib = lobj.is_some_and(|o| o.elf.flags_1 & elf::DF_1_NODEFLIB != 0);
        let key = (arch.machine, nodeflib, name.to_string());
        if let Some(f) = self.plain.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return f;
        }
        let f = self.search(l, lists, loader, name, arch);
        if let Ok(mut m) = self.plain.lock() {
            m.insert(key, f.clone());
        }
        f
    }

    fn search(&self, l: &Loaded, lists: &mut NodeLists, loader: usize, name: &str, arch: &Arch) -> Found {
        let ld = &l.nodes[loader];
        let lobj = ld.obj.as_ref()?;
        if name.contains('/') {
            let p = expand(name, Some(&self.origin(ld)), arch)?;
            return match self.probe(&p, arch) {
                Probe::Found(o) => Some((p, o, FoundBy::Path)),
                Probe::Skip => None,
            };
        }
        let nodeflib = lobj.elf.flags_1 & elf::DF_1_NODEFLIB != 0;
        self.steps(l, lists, loader, arch, |step| match step {
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
                    Probe::Found(o) => Some((p.to_string(), o, FoundBy::Cache)),
                    Probe::Skip => None,
                }
            }
        })
    }

    /// Where a search for `name` from node `loader` looks (a name that is
    /// not found was looked for in every one of these places).
    fn searched(
        &self,
        l: &Loaded,
        lists: &mut NodeLists,
        loader: usize,
        name: &str,
        arch: &Arch,
    ) -> Searched {
        let mut b = SearchedBuilder::default();
        if name.contains('/') {
            if let Some(p) = expand(name, Some(&self.origin(&l.nodes[loader])), arch) {
                b.push(&p);
            }
            return b.out;
        }
        self.steps(l, lists, loader, arch, |step| {
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
        lists: &mut NodeLists,
        loader: usize,
        arch: &Arch,
        mut f: impl FnMut(Step) -> Option<T>,
    ) -> Option<T> {
        let lobj = l.nodes[loader].obj.as_ref()?;
        if lobj.elf.runpath.is_none() {
            let mut did_main = false;
            let mut cur = Some(loader);
            while let Some(c) = cur {
                if let Some(list) = self.node_list(l, lists, c, false, arch) {
                    if let Some(x) = f(Step::List(list, FoundBy::Rpath)) {
                        return Some(x);
                    }
                    did_main |= c == 0;
                }
                cur = l.nodes[c].loader;
            }
            if !did_main {
                if let Some(list) = self.node_list(l, lists, 0, false, arch) {
                    if let Some(x) = f(Step::List(list, FoundBy::Rpath)) {
                        return Some(x);
                    }
                }
            }
        }
        if let Some(lp) = &self.library_path {
            let list = lists.library_path.get_or_insert_with(|| {
                let origin = lp.contains('$').then(|| self.origin(&l.nodes[0]));
                self.search_list(ListKind::LibraryPath, lp, origin.as_deref(), arch)
            });
            if let Some(x) = f(Step::List(list.clone(), FoundBy::LdLibraryPath)) {
                return Some(x);
            }
        }
        if let Some(list) = self.node_list(l, lists, loader, true, arch) {
            if let Some(x) = f(Step::List(list, FoundBy::Runpath)) {
                return Some(x);
            }
        }
        if self.cache.is_some() {
            if let Some(x) = f(Step::Cache) {
                return Some(x);
            }
        }
        if lobj.elf.flags_1 & elf::DF_1_NODEFLIB == 0 {
            let list = lists
                .default
                .get_or_insert_with(|| self.search_list(ListKind::Default, "", None, arch));
            return f(Step::List(list.clone(), FoundBy::Default));
        }
        None
    }

    /// Node `c`'s DT_RUNPATH (or DT_RPATH) list, expanded for its origin;
    /// None when it has none.
    fn node_list(
        &self,
        l: &Loaded,
        lists: &mut NodeLists,
        c: usize,
        runpath: bool,
        arch: &Arch,
    ) -> Option<Arc<SearchList>> {
        lists
            .paths
            .entry((c, runpath))
            .or_insert_with(|| {
                let n = &l.nodes[c];
                let e = &n.obj.as_ref()?.elf;
                let spec = if runpath { &e.runpath } else { &e.rpath };
                Some(self.search_list(ListKind::Path, spec.as_deref()?, Some(&self.origin(n)), arch))
            })
            .clone()
    }
}
