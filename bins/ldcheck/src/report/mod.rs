//! The findings of all entry points gathered into one report, and its three
//! forms: a short text summary, a libtree-like tree (both in `text`), and
//! one JSON object (documented in the README).

mod sarif;
#[cfg(test)]
mod tests;
mod text;

use crate::gpu::{self, DriverCheck};
use crate::hints;
use crate::options::Options;
use crate::resolve::{FoundBy, Loaded, Loader, Object, Searched, SymbolError, VersionError};
use crate::root::Walk;
use dockhand::out;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Tree,
    Json,
    Sarif,
}

#[derive(Debug, Serialize)]
pub struct Missing {
    pub soname: String,
    pub needed_by: Vec<String>,
    pub package: Option<String>,
    /// The first places searched, in the loader's order (at most
    /// `Searched::KEPT`), and how many there were in all.
    pub tried: Vec<String>,
    pub tried_total: usize,
    pub hints: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Provided {
    pub soname: String,
    pub needed_by: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Note {
    pub soname: String,
    pub loaded_by: String,
    pub provider: String,
    pub found: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Gpu {
    pub cuda_runtime: Vec<String>,
    pub nvidia_wheels: Vec<String>,
    pub driver: Option<String>,
    pub driver_checks: Vec<DriverCheck>,
    pub devices: Vec<String>,
    /// Driver stubs a search path reaches (each fails CUDA with error 34).
    pub stubs: Vec<gpu::Stub>,
    /// cuda-compat libcudas in the image, judged against the host's driver.
    pub compat: Vec<gpu::Compat>,
}

impl Gpu {
    /// The host's driver is below what a CUDA runtime found needs.
    pub fn driver_too_old(&self) -> bool {
        self.driver_checks.iter().any(|c| c.verdict == "too-old")
    }
}

#[derive(Debug, Serialize)]
pub struct Lib {
    pub soname: String,
    pub path: Option<String>,
    pub found_by: &'static str,
    pub needed_by: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Entry {
    pub path: String,
    pub libraries: Vec<Lib>,
    #[serde(skip)]
    tree: Vec<(usize, usize)>,
}

#[derive(Debug, Serialize)]
pub struct Unreadable {
    pub path: String,
    pub error: String,
}

/// A glibc-linked file in a musl root without glibc's loader (Alpine's
/// classic "not found" for a file that is there).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct WrongLibc {
    pub path: String,
    /// The glibc loader it expects.
    pub expects: String,
    pub advice: &'static str,
}

/// What the glibc-in-musl finding advises.
pub const WRONG_LIBC_ADVICE: &str = "install gcompat (apk add gcompat) or use a glibc-based image";

#[derive(Debug, Serialize)]
pub struct Report {
    pub root: String,
    /// "glibc" or "musl": whose loader rules were applied.
    pub libc: &'static str,
    pub wrong_libc: Vec<WrongLibc>,
    pub codename: Option<String>,
    pub ok: bool,
    pub files: usize,
    pub entry_points: usize,
    pub missing: Vec<Missing>,
    pub version_errors: Vec<VersionError>,
    pub weak_version_warnings: Vec<VersionError>,
    pub symbol_errors: Vec<SymbolError>,
    pub runtime_provided: Vec<Provided>,
    pub ignored: Vec<Provided>,
    pub notes: Vec<Note>,
    pub gpu: Option<Gpu>,
    pub unreadable: Vec<Unreadable>,
    pub not_judged: Vec<String>,
    pub entries: Vec<Entry>,
}

/// What `build` gathers a report from.
pub struct Input<'a> {
    pub opts: &'a Options,
    pub loader: &'a Loader<'a>,
    pub walk: &'a Walk,
    pub files: usize,
    pub entries: &'a [(String, Arc<Object>)],
    pub loaded: &'a [Loaded],
    pub unreadable: Vec<(String, String)>,
    pub skipped: Vec<String>,
    pub gpu: bool,
    pub codename: Option<String>,
    pub stubs: Vec<gpu::Stub>,
    pub compat: Vec<gpu::Compat>,
    pub libc: crate::libc::Libc,
}

/// Gather the report from every entry point's walk.
pub fn build(inp: Input<'_>) -> Report {
    let mut found = Findings::default();
    let mut entries = Vec::new();
    for ((path, _), l) in inp.entries.iter().zip(inp.loaded) {
        found.add(path, l);
        // The per-entry libraries are only shown by the tree and JSON forms.
        if !inp.opts.summary_only {
            entries.push(entry(path, l));
        }
    }
    let (missing, provided, ignored) = found.sort_missing(&inp);
    let notes = dlopen_notes(inp.walk, inp.loader);
    let gpu = inp.gpu.then(|| Gpu {
        stubs: inp.stubs,
        compat: inp.compat,
        ..gpu_section(inp.walk, &found.cudart)
    });
    let driver_bad = gpu
        .as_ref()
        .is_some_and(|g| g.driver_too_old() || !g.stubs.is_empty());
    Report {
        root: inp.opts.root.display().to_string(),
        libc: inp.libc.as_str(),
        ok: missing.is_empty()
            && found.version_errors.is_empty()
            && found.symbol_errors.is_empty()
            && found.wrong_libc.is_empty()
            && !driver_bad,
        wrong_libc: found.wrong_libc.into_iter().collect(),
        codename: inp.codename,
        files: inp.files,
        entry_points: inp.entries.len(),
        missing,
        version_errors: found.version_errors.into_iter().collect(),
        weak_version_warnings: found.weak.into_iter().collect(),
        symbol_errors: found.symbol_errors.into_iter().collect(),
        runtime_provided: provided,
        ignored,
        notes,
        gpu,
        unreadable: inp
            .unreadable
            .into_iter()
            .map(|(path, error)| Unreadable { path, error })
            .collect(),
        not_judged: inp.skipped,
        entries,
    }
}

/// What the entry points' walks found, merged: each missing soname once
/// (who needs it, where it was searched for), each error once.
#[derive(Default)]
struct Findings {
    missing: BTreeMap<String, (BTreeSet<String>, Option<Arc<Searched>>)>,
    version_errors: BTreeSet<VersionError>,
    weak: BTreeSet<VersionError>,
    symbol_errors: BTreeSet<SymbolError>,
    /// CUDA runtime versions, from the libcudart files loaded.
    cudart: BTreeSet<String>,
    wrong_libc: BTreeSet<WrongLibc>,
}

impl Findings {
    /// Merge what the walk from entry point `path` found.
    fn add(&mut self, path: &str, l: &Loaded) {
        if let Some(ip) = &l.missing_interp {
            self.missing
                .entry(ip.clone())
                .or_default()
                .0
                .insert(path.to_string());
        }
        for (_, n) in l.missing() {
            // Who needs it, by its canonical path (one file, however the loader spelled it).
            let by = n
                .loader
                .map(|i| {
                    l.nodes[i]
                        .obj
                        .as_ref()
                        .map_or(l.nodes[i].name.clone(), |o| o.canon.clone())
                })
                .unwrap_or_default();
            let m = self.missing.entry(n.name.clone()).or_default();
            m.0.insert(by);
            if m.1.is_none() {
                m.1.clone_from(&n.searched);
            }
        }
        for e in &l.version_errors {
            if e.weak {
                self.weak.insert(e.clone());
            } else {
                self.version_errors.insert(e.clone());
            }
        }
        self.symbol_errors.extend(l.symbol_errors.iter().cloned());
        for (p, want) in &l.foreign_libc {
            self.wrong_libc.insert(WrongLibc {
                path: p.clone(),
                expects: want.clone(),
                advice: WRONG_LIBC_ADVICE,
            });
        }
        for n in &l.nodes {
            if let Some(o) = &n.obj {
                let base = o.canon.rsplit('/').next().unwrap_or("");
                if base.starts_with("libcudart.so.") {
                    self.cudart.extend(gpu::cuda_version_from_name(base));
                }
            }
        }
    }

    /// The missing sonames, told apart: (missing, provided by the driver at
    /// run time, ignored on request), each with its package and hints.
    fn sort_missing(&self, inp: &Input<'_>) -> (Vec<Missing>, Vec<Provided>, Vec<Provided>) {
        let all: Vec<&str> = self.missing.keys().map(String::as_str).collect();
        let mut missing = Vec::new();
        let mut provided = Vec::new();
        let mut ignored = Vec::new();
        let mut packages = inp
            .codename
            .as_deref()
            .map(|c| hints::packages(c, &all))
            .unwrap_or_default()
            .into_iter();
        for (so, (by, tried)) in &self.missing {
            let package = packages.next().flatten();
            let by: Vec<String> = by.iter().cloned().collect();
            if inp.opts.ignore.iter().any(|i| i == so) {
                ignored.push(Provided {
                    soname: so.clone(),
                    needed_by: by,
                });
            } else if inp.gpu && gpu::driver_provided(so) {
                provided.push(Provided {
                    soname: so.clone(),
                    needed_by: by,
                });
            } else {
                missing.push(Missing {
                    package,
                    hints: hints::hints_for(so, &by, &all)
                        .into_iter()
                        .map(str::to_string)
                        .collect(),
                    soname: so.clone(),
                    needed_by: by,
                    tried: tried.as_ref().map(|t| t.first.clone()).unwrap_or_default(),
                    tried_total: tried.as_ref().map_or(0, |t| t.total),
                });
            }
        }
        (missing, provided, ignored)
    }
}

/// One entry point's libraries in load order, with the tree of who loaded whom.
fn entry(path: &str, l: &Loaded) -> Entry {
    let mut libs = Vec::new();
    let mut tree = Vec::new();
    let mut seen = BTreeSet::new();
    for (from, name, to) in &l.edges {
        let n = &l.nodes[*to];
        if n.found_by == FoundBy::Main || !seen.insert(*to) {
            continue;
        }
        tree.push((*from, libs.len()));
        libs.push(Lib {
            soname: name.clone(),
            path: n.obj.as_ref().map(|_| n.name.clone()),
            found_by: n.found_by.as_str(),
            needed_by: Some(l.nodes[*from].name.clone()),
        });
    }
    // Index tree parents by library position rather than node.
    let pos: BTreeMap<String, usize> = libs
        .iter()
        .enumerate()
        .filter_map(|(i, lb)| lb.path.clone().map(|p| (p, i)))
        .collect();
    let tree = tree
        .into_iter()
        .map(|(from, i)| {
            let parent = if from == 0 {
                usize::MAX
            } else {
                pos.get(&l.nodes[from].name).copied().unwrap_or(usize::MAX)
            };
            (parent, i)
        })
        .collect();
    Entry {
        path: path.to_string(),
        libraries: libs,
        tree,
    }
}

/// Notes on libraries the tree's files are known to load with dlopen.
fn dlopen_notes(walk: &Walk, loader: &Loader<'_>) -> Vec<Note> {
    let mut notes = Vec::new();
    for (trigger, so, provider) in hints::DLOPEN {
        let Some(user) = walk.names.iter().find(|n| n.starts_with(trigger)) else {
            continue;
        };
        if notes.iter().any(|n: &Note| n.soname == *so) {
            continue;
        }
        let in_tree = walk.names.iter().any(|n| n == so);
        let found = if in_tree {
            Some(format!("in the tree ({so})"))
        } else {
            loader.cache.as_ref().and_then(|c| {
                [crate::ldcache::FLAGS_X86_64, crate::ldcache::FLAGS_AARCH64]
                    .iter()
                    .find_map(|f| c.lookup(so, *f, &[]).map(str::to_string))
            })
        };
        notes.push(Note {
            soname: so.to_string(),
            loaded_by: user.clone(),
            provider: provider.to_string(),
            found,
        });
    }
    notes
}

/// The GPU section: CUDA runtime versions found, the NVIDIA wheels, and
/// this host's driver checked against them.
fn gpu_section(walk: &Walk, cudart: &BTreeSet<String>) -> Gpu {
    let mut versions = cudart.clone();
    for n in walk.names.iter().chain(&walk.dist_info) {
        versions.extend(gpu::cuda_version_from_name(n));
    }
    let wheels: Vec<String> = walk
        .dist_info
        .iter()
        .filter_map(|d| gpu::nvidia_wheel(d))
        .collect();
    let host = gpu::host();
    // A bare major (libcudart.so.12) is judged by minor-version
    // compatibility alone, unless a fuller version of it is known.
    let checks = match &host.driver {
        Some(d) => versions
            .iter()
            .filter(|v| v.contains('.') || !versions.iter().any(|o| o.starts_with(&format!("{v}."))))
            .map(|v| gpu::check_driver(v, d))
            .collect(),
        None => Vec::new(),
    };
    Gpu {
        cuda_runtime: versions.into_iter().collect(),
        nvidia_wheels: wheels,
        driver: host.driver,
        driver_checks: checks,
        devices: host.devices,
        stubs: Vec::new(),
        compat: Vec::new(),
    }
}

/// The report as text, tree or JSON.
pub fn render(r: &Report, f: Format) -> String {
    match f {
        Format::Json => serde_json::to_string_pretty(r).unwrap_or_default(),
        Format::Text => text::text(r, false),
        Format::Tree => text::text(r, true),
        Format::Sarif => sarif::sarif(r),
    }
}

pub fn print(r: &Report, f: Format) {
    out::line(&render(r, f));
}
