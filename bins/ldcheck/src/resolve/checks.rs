//! After the walk: glibc's version check (`_dl_check_all_versions`) and,
//! on request, whether every undefined symbol has a definition in the
//! global scope.

use super::walk::Loaded;
use super::{Loader, Object};
use crate::elf;
use dockhand::hash::{FastMap as HashMap, FastSet as HashSet};
use serde::Serialize;
use std::sync::Arc;

/// A version an object needs that the library it names does not define
/// (the loader's "version `V' not found in LIB (required by OBJ)").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct VersionError {
    pub version: String,
    pub library: String,
    pub needed_by: String,
    /// A weak reference only: the loader warns and runs on (the report
    /// lists these apart, so JSON does not repeat it).
    #[serde(skip)]
    pub weak: bool,
}

/// An undefined symbol no loaded object defines (`ldd -r`'s "undefined symbol").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SymbolError {
    pub symbol: String,
    pub version: Option<String>,
    pub needed_by: String,
}

/// Versions a verneed entry asks for that its library lacks: (name, weak).
pub(super) type Unmet = Arc<[(String, bool)]>;

impl Loader<'_> {
    /// The versions `vn` of object `o` asks for that `dep` does not define
    /// (the same answer for every entry point that loads both: kept).
    fn unmet(&self, o: &Arc<Object>, vn: &elf::Verneed, dep: &Arc<Object>) -> Unmet {
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

    pub(super) fn check_versions(&self, l: &mut Loaded) {
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

    pub(super) fn check_symbols(&self, l: &mut Loaded) {
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
