//! The report as lines for people: the summary (missing libraries, errors,
//! GPU findings, warnings, one verdict line) and, in tree form, every entry
//! point's libraries first. Names from the audited files are escaped.

use super::{Entry, Gpu, Report};
use crate::gpu;
use std::collections::BTreeSet;

fn list(v: &[String], max: usize) -> String {
    let mut s = v.iter().take(max).cloned().collect::<Vec<_>>().join(", ");
    if v.len() > max {
        s.push_str(&format!(" and {} more", v.len() - max));
    }
    s
}

pub(super) fn text(r: &Report, tree: bool) -> String {
    let mut s = String::new();
    // Names come from the files audited: a newline or an escape sequence in
    // one must not forge a line or drive the terminal.
    let mut w = |l: String| {
        s.push_str(&dockhand::out::escape(l.as_bytes()));
        s.push('\n');
    };
    if tree {
        for e in &r.entries {
            w(e.path.clone());
            print_tree(e, usize::MAX, "", &mut w);
        }
        w(String::new());
    }
    missing_lines(r, &mut w);
    wrong_libc_lines(r, &mut w);
    error_lines(r, &mut w);
    provided_lines(r, &mut w);
    if let Some(g) = &r.gpu {
        gpu_lines(g, &mut w);
    }
    warning_lines(r, &mut w);
    w(summary_line(r));
    s.trim_end().to_string()
}

/// Each missing library: who needs it, where it was searched for (the
/// first places, and how many were left out), hints.
fn missing_lines(r: &Report, w: &mut impl FnMut(String)) {
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
}

/// glibc-linked files in a musl root that has no glibc loader.
fn wrong_libc_lines(r: &Report, w: &mut impl FnMut(String)) {
    for x in &r.wrong_libc {
        w(format!(
            "glibc-linked in a musl root: {} expects glibc's loader {}, which this root lacks: {}",
            x.path, x.expects, x.advice
        ));
    }
}

/// Version errors, weak version warnings and undefined symbols.
fn error_lines(r: &Report, w: &mut impl FnMut(String)) {
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
}

/// What is missing on purpose: provided by the driver at run time,
/// ignored on request, or loaded with dlopen (notes).
fn provided_lines(r: &Report, w: &mut impl FnMut(String)) {
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
}

/// The CUDA runtime found and this host's driver.
fn gpu_lines(g: &Gpu, w: &mut impl FnMut(String)) {
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
    for l in gpu::finding_lines(&g.stubs, &g.compat, g.driver.as_deref()) {
        w(l);
    }
}

/// What could not be judged, and the apt-get line that fixes what can be.
fn warning_lines(r: &Report, w: &mut impl FnMut(String)) {
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
}

/// The verdict, with the counts.
fn summary_line(r: &Report) -> String {
    let too_old = r.gpu.as_ref().is_some_and(Gpu::driver_too_old);
    format!(
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
    ) + &stub_count(r)
        + &if r.wrong_libc.is_empty() {
            String::new()
        } else {
            format!(", {} glibc-linked in a musl root", r.wrong_libc.len())
        }
}

/// The summary's count of driver stubs on a search path.
fn stub_count(r: &Report) -> String {
    match r.gpu.as_ref().map_or(0, |g| g.stubs.len()) {
        0 => String::new(),
        1 => ", 1 CUDA driver stub on a search path".into(),
        n => format!(", {n} CUDA driver stubs on a search path"),
    }
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
