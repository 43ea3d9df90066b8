//! The findings of all entry points gathered into one report, and its three
//! forms: a short text summary, a libtree-like tree, and one JSON object
//! (documented in the README).

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

#[derive(Debug, Serialize)]
pub struct Report {
    pub root: String,
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

pub struct Input<'a> {
    pub opts: &'a Options,
    pub ctx: &'a Loader<'a>,
    pub walk: &'a Walk,
    pub files: usize,
    pub entries: &'a [(String, Arc<Object>)],
    pub loaded: &'a [Loaded],
    pub unreadable: Vec<(String, String)>,
    pub skipped: Vec<String>,
    pub gpu: bool,
    pub codename: Option<String>,
}

pub fn build(inp: Input<'_>) -> Report {
    let mut missing: BTreeMap<String, (BTreeSet<String>, Option<Arc<Searched>>)> = BTreeMap::new();
    let mut verr = BTreeSet::new();
    let mut weak = BTreeSet::new();
    let mut serr = BTreeSet::new();
    let mut entries = Vec::new();
    let mut cudart = BTreeSet::new();
    for ((path, _), l) in inp.entries.iter().zip(inp.loaded) {
        if let Some(ip) = &l.missing_interp {
            missing.entry(ip.clone()).or_default().0.insert(path.clone());
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
            let m = missing.entry(n.name.clone()).or_default();
            m.0.insert(by);
            if m.1.is_none() {
                m.1.clone_from(&n.searched);
            }
        }
        for e in &l.version_errors {
            if e.weak {
                weak.insert(e.clone());
            } else {
                verr.insert(e.clone());
            }
        }
        serr.extend(l.symbol_errors.iter().cloned());
        for n in &l.nodes {
            if let Some(o) = &n.obj {
                let base = o.canon.rsplit('/').next().unwrap_or("");
                if base.starts_with("libcudart.so.") {
                    cudart.extend(gpu::cuda_version_from_name(base));
                }
            }
        }
        // The per-entry libraries are only shown by the tree and JSON forms.
        if inp.opts.summary_only {
            continue;
        }
        let mut libs = Vec::new();
        let mut tree = Vec::new();
        let mut seen = BTreeSet::new();
        for (from, name, to) in &l.edges {
            let n = &l.nodes[*to];
            if n.how == FoundBy::Main || !seen.insert(*to) {
                continue;
            }
            tree.push((*from, libs.len()));
            libs.push(Lib {
                soname: name.clone(),
                path: n.obj.as_ref().map(|_| n.name.clone()),
                found_by: n.how.as_str(),
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
        entries.push(Entry {
            path: path.clone(),
            libraries: libs,
            tree,
        });
    }

    let all: Vec<&str> = missing.keys().map(String::as_str).collect();
    let mut out_missing = Vec::new();
    let mut provided = Vec::new();
    let mut ignored = Vec::new();
    let codename = inp.codename.clone();
    let mut packages = codename
        .as_deref()
        .map(|c| hints::packages(c, &all))
        .unwrap_or_default()
        .into_iter();
    for (so, (by, tried)) in &missing {
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
            out_missing.push(Missing {
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

    // dlopen notes, for libraries the tree's files are known to load.
    let mut notes = Vec::new();
    for (trigger, so, provider) in hints::DLOPEN {
        let Some(user) = inp.walk.names.iter().find(|n| n.starts_with(trigger)) else {
            continue;
        };
        if notes.iter().any(|n: &Note| n.soname == *so) {
            continue;
        }
        let in_tree = inp.walk.names.iter().any(|n| n == so);
        let found = if in_tree {
            Some(format!("in the tree ({so})"))
        } else {
            inp.ctx.cache.as_ref().and_then(|c| {
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

    let gpu = inp.gpu.then(|| {
        let mut versions: BTreeSet<String> = cudart;
        for n in inp.walk.names.iter().chain(&inp.walk.dist_info) {
            versions.extend(gpu::cuda_version_from_name(n));
        }
        let wheels: Vec<String> = inp
            .walk
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
        }
    });

    let driver_bad = gpu.as_ref().is_some_and(Gpu::driver_too_old);
    Report {
        root: inp.opts.root.display().to_string(),
        codename,
        ok: out_missing.is_empty() && verr.is_empty() && serr.is_empty() && !driver_bad,
        files: inp.files,
        entry_points: inp.entries.len(),
        missing: out_missing,
        version_errors: verr.into_iter().collect(),
        weak_version_warnings: weak.into_iter().collect(),
        symbol_errors: serr.into_iter().collect(),
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

fn list(v: &[String], max: usize) -> String {
    let mut s = v.iter().take(max).cloned().collect::<Vec<_>>().join(", ");
    if v.len() > max {
        s.push_str(&format!(" and {} more", v.len() - max));
    }
    s
}

/// The report as text, tree or JSON.
pub fn render(r: &Report, f: Format) -> String {
    match f {
        Format::Json => serde_json::to_string_pretty(r).unwrap_or_default(),
        Format::Text => text(r, false),
        Format::Tree => text(r, true),
    }
}

pub fn print(r: &Report, f: Format) {
    out::line(&render(r, f));
}

fn text(r: &Report, tree: bool) -> String {
    let mut s = String::new();
    // Names come from the files audited: a newline or an escape sequence in
    // one must not forge a line or drive the terminal.
    let mut w = |l: String| {
        for c in l.chars() {
            if c.is_control() {
                s.extend(c.escape_unicode());
            } else {
                s.push(c);
            }
        }
        s.push('\n');
    };
    if tree {
        for e in &r.entries {
            w(e.path.clone());
            print_tree(e, usize::MAX, "", &mut w);
        }
        w(String::new());
    }
    for m in &r.missing {
        let pkg = m
            .package
            .as_deref()
            .map(|p| format!(" (Debian package {p})"))
            .unwrap_or_default();
        w(format!(
            "missing {}{pkg}, needed by {}",
            m.soname,
            list(&m.needed_by, 3)
        ));
        if !m.tried.is_empty() {
            let cut = m.tried_total.saturating_sub(m.tried.len());
            let more = if cut > 0 {
                format!(" and {cut} more not shown")
            } else {
                String::new()
            };
            w(format!("  searched: {}{more}", m.tried.join(", ")));
        }
        for h in &m.hints {
            w(format!("  hint: {h}"));
        }
    }
    for v in &r.version_errors {
        w(format!(
            "version `{}' not found in {} (required by {})",
            v.version, v.library, v.needed_by
        ));
    }
    for v in &r.weak_version_warnings {
        w(format!(
            "warning: weak version `{}' not found in {} (required by {})",
            v.version, v.library, v.needed_by
        ));
    }
    for v in &r.symbol_errors {
        let ver = v.version.as_deref().map(|x| format!("@{x}")).unwrap_or_default();
        w(format!(
            "undefined symbol {}{ver} (required by {})",
            v.symbol, v.needed_by
        ));
    }
    for p in &r.runtime_provided {
        w(format!(
            "provided by the driver at run time: {} (needed by {})",
            p.soname,
            list(&p.needed_by, 2)
        ));
    }
    for p in &r.ignored {
        w(format!(
            "ignored: {} (needed by {})",
            p.soname,
            list(&p.needed_by, 2)
        ));
    }
    for n in &r.notes {
        let f = n
            .found
            .as_deref()
            .map(|f| format!("found: {f}"))
            .unwrap_or_else(|| "not found here".into());
        w(format!(
            "note: {} loads {} with dlopen; it comes from {} ({f})",
            n.loaded_by, n.soname, n.provider
        ));
    }
    if let Some(g) = &r.gpu {
        let rt = if g.cuda_runtime.is_empty() {
            "none found".to_string()
        } else {
            g.cuda_runtime.join(", ")
        };
        w(format!(
            "gpu: CUDA runtime {rt}{}",
            if g.nvidia_wheels.is_empty() {
                String::new()
            } else {
                format!(" (wheels: {})", g.nvidia_wheels.join(", "))
            }
        ));
        match &g.driver {
            Some(d) => {
                w(format!(
                    "gpu: driver {d} on this host; devices: {}",
                    if g.devices.is_empty() {
                        "none".into()
                    } else {
                        g.devices.join(" ")
                    }
                ));
                for c in &g.driver_checks {
                    w(driver_line(c, d));
                }
            }
            None => w("gpu: no NVIDIA driver on this host (checked at run time)".into()),
        }
    }
    for u in &r.unreadable {
        w(format!("warning: {}: {}", u.path, u.error));
    }
    if !r.not_judged.is_empty() {
        w(format!(
            "warning: not judged (machine not x86_64 or aarch64): {}",
            list(&r.not_judged, 3)
        ));
    }
    let pkgs: BTreeSet<&str> = r.missing.iter().filter_map(|m| m.package.as_deref()).collect();
    if !pkgs.is_empty() {
        w(format!(
            "fix: apt-get install --no-install-recommends {}",
            pkgs.into_iter().collect::<Vec<_>>().join(" ")
        ));
    }
    let too_old = r.gpu.as_ref().is_some_and(Gpu::driver_too_old);
    w(format!(
        "{}: {} ELF files, {} entry points, {} missing, {} version errors{}{}",
        if r.ok { "ok" } else { "FAILED" },
        r.files,
        r.entry_points,
        r.missing.len(),
        r.version_errors.len(),
        if r.symbol_errors.is_empty() {
            String::new()
        } else {
            format!(", {} undefined symbols", r.symbol_errors.len())
        },
        if too_old { ", NVIDIA driver too old" } else { "" }
    ));
    s.trim_end().to_string()
}

/// One line on how the host's driver `d` meets a CUDA runtime's needs.
fn driver_line(c: &gpu::DriverCheck, d: &str) -> String {
    let needs = c.needs.as_deref().unwrap_or("?");
    let compat = c.minor_compat.as_deref().unwrap_or("?");
    match c.verdict {
        "ok" => format!("gpu: CUDA {} needs driver >= {needs}: ok", c.cuda),
        "minor-version-compatibility" if c.cuda.contains('.') => format!(
            "gpu: CUDA {} needs driver >= {needs}; {d} runs it by minor-version compatibility \
             (>= {compat}), without newer-driver features or PTX from newer toolkits",
            c.cuda
        ),
        "minor-version-compatibility" => format!(
            "gpu: CUDA {} runs on driver {d} through minor-version compatibility (>= {compat})",
            c.cuda
        ),
        "too-old" if c.minor_compat.is_some() && c.minor_compat != c.needs => format!(
            "gpu: driver too old: CUDA {} needs NVIDIA driver >= {needs} (>= {compat} with minor-version compatibility); \
             this host has {d}",
            c.cuda
        ),
        "too-old" => format!(
            "gpu: driver too old: CUDA {} needs NVIDIA driver >= {needs}; this host has {d}",
            c.cuda
        ),
        _ => format!(
            "gpu: CUDA {} is newer than ldcheck's driver table; driver {d} not judged",
            c.cuda
        ),
    }
}

fn print_tree(e: &Entry, parent: usize, indent: &str, w: &mut impl FnMut(String)) {
    let kids: Vec<usize> = e
        .tree
        .iter()
        .filter(|(p, _)| *p == parent)
        .map(|(_, i)| *i)
        .collect();
    for (k, i) in kids.iter().enumerate() {
        let last = k + 1 == kids.len();
        let lib = &e.libraries[*i];
        let what = match &lib.path {
            Some(p) => format!("{} [{}]", p, lib.found_by),
            None => "not found".to_string(),
        };
        w(format!(
            "{indent}{} {} => {what}",
            if last { "└──" } else { "├──" },
            lib.soname
        ));
        let sub = format!("{indent}{}", if last { "    " } else { "│   " });
        print_tree(e, *i, &sub, w);
    }
}
