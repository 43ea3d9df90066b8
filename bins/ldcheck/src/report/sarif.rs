//! The report as SARIF 2.1.0 (for CI code-scanning upload): one result per
//! missing library, version error, undefined symbol, glibc-linked file in a
//! musl root and GPU driver finding, each located at the files concerned
//! (paths relative to the root, under the base id ROOT).

use super::Report;
use serde_json::{json, Value};

/// The id of the OASIS schema (errata01), which tests/fixtures holds.
const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// (id, name, description, level) of every rule ldcheck reports.
const RULES: &[(&str, &str, &str, &str)] = &[
    (
        "missing-library",
        "MissingLibrary",
        "A shared library the loader needs is not found in the image",
        "error",
    ),
    (
        "version-missing",
        "VersionMissing",
        "A symbol version a file needs is not defined by the library it is linked with",
        "error",
    ),
    (
        "symbol-undefined",
        "SymbolUndefined",
        "An undefined symbol has no definition in any loaded library",
        "error",
    ),
    (
        "glibc-in-musl-root",
        "GlibcInMuslRoot",
        "A glibc-linked file in a musl (Alpine) image without glibc's loader",
        "error",
    ),
    (
        "gpu-driver-too-old",
        "GpuDriverTooOld",
        "This host's NVIDIA driver is older than the CUDA runtime in the image needs",
        "error",
    ),
    (
        "gpu-driver-minor-version-compatibility",
        "GpuDriverMinorVersionCompatibility",
        "The CUDA runtime runs on this host's driver only by minor-version compatibility",
        "note",
    ),
    (
        "gpu-driver-unknown",
        "GpuDriverUnknown",
        "The CUDA runtime is newer than ldcheck's driver table: the driver is not judged",
        "note",
    ),
    (
        "cuda-driver-stub",
        "CudaDriverStub",
        "A CUDA driver stub (toolkit stubs/ directory) is on a search path: loaded at run time, CUDA fails with error 34",
        "error",
    ),
    (
        "cuda-compat-libcuda",
        "CudaCompatLibcuda",
        "A cuda-compat libcuda in the image: used only by forward compatibility (data-center GPUs), error 804 elsewhere",
        "note",
    ),
    (
        "gpu-driver-finding",
        "GpuDriverFinding",
        "Another finding on the CUDA runtime and this host's driver (a verdict this table does not name)",
        "warning",
    ),
];

/// An in-root path as a relative URI reference: no leading slash, every
/// byte outside the unreserved set and '/' percent-encoded.
fn uri(p: &str) -> String {
    let mut s = String::new();
    for b in p.trim_start_matches('/').bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn location(p: &str) -> Value {
    json!({"physicalLocation": {"artifactLocation": {"uri": uri(p), "uriBaseId": "ROOT"}}})
}

pub(super) fn sarif(r: &Report) -> String {
    let mut results = Vec::new();
    let mut add = |id: &str, text: String, files: &mut dyn Iterator<Item = &String>| {
        let Some(i) = RULES.iter().position(|r| r.0 == id) else {
            return;
        };
        results.push(json!({
            "ruleId": id,
            "ruleIndex": i,
            "level": RULES[i].3,
            "message": {"text": text},
            "locations": files.map(|f| location(f)).collect::<Vec<_>>(),
        }));
    };
    for m in &r.missing {
        let pkg = m
            .package
            .as_deref()
            .map(|p| format!(" (Debian package {p})"))
            .unwrap_or_default();
        let text = format!("missing {}{pkg}, needed by {}", m.soname, m.needed_by.join(", "));
        add("missing-library", text, &mut m.needed_by.iter());
    }
    for v in &r.version_errors {
        let text = format!(
            "version `{}' not found in {} (required by {})",
            v.version, v.library, v.needed_by
        );
        add("version-missing", text, &mut std::iter::once(&v.needed_by));
    }
    for v in &r.symbol_errors {
        let ver = v.version.as_deref().map(|x| format!("@{x}")).unwrap_or_default();
        let text = format!("undefined symbol {}{ver} (required by {})", v.symbol, v.needed_by);
        add("symbol-undefined", text, &mut std::iter::once(&v.needed_by));
    }
    for x in &r.wrong_libc {
        let text = format!(
            "glibc-linked in a musl root: expects glibc's loader {}, which this root lacks: {}",
            x.expects, x.advice
        );
        add("glibc-in-musl-root", text, &mut std::iter::once(&x.path));
    }
    if let Some(g) = &r.gpu {
        // Located at the CUDA runtime libraries the entry points load.
        let cudart: std::collections::BTreeSet<&String> = r
            .entries
            .iter()
            .flat_map(|e| &e.libraries)
            .filter_map(|l| l.path.as_ref())
            .filter(|p| {
                p.rsplit('/')
                    .next()
                    .is_some_and(|b| b.starts_with("libcudart.so"))
            })
            .collect();
        for c in g.driver_checks.iter().filter(|c| c.verdict != "ok") {
            let text = format!(
                "CUDA {}: driver {} ({}); needs >= {}, >= {} with minor-version compatibility",
                c.cuda,
                g.driver.as_deref().unwrap_or("?"),
                c.verdict,
                c.needs.as_deref().unwrap_or("?"),
                c.minor_compat.as_deref().unwrap_or("?"),
            );
            add(
                &format!("gpu-driver-{}", c.verdict),
                text,
                &mut cudart.iter().copied(),
            );
        }
        for st in &g.stubs {
            let text = format!(
                "CUDA driver stub {} reached through {} ({}): CUDA fails with error 34 at run time",
                st.library, st.reached_by, st.element
            );
            add("cuda-driver-stub", text, &mut std::iter::once(&st.library));
        }
        for c in &g.compat {
            let text = format!("cuda-compat libcuda {} ({}): {}", c.path, c.version, c.verdict);
            add("cuda-compat-libcuda", text, &mut std::iter::once(&c.path));
        }
    }
    let rules: Vec<Value> = RULES
        .iter()
        .map(|(id, name, desc, level)| {
            json!({
                "id": id,
                "name": name,
                "shortDescription": {"text": desc},
                "defaultConfiguration": {"level": level},
            })
        })
        .collect();
    let mut run = json!({
        "tool": {"driver": {
            "name": "ldcheck",
            "version": env!("CARGO_PKG_VERSION"),
            "rules": rules,
        }},
        "results": results,
    });
    // Where ROOT lies, when it can be said as an absolute file URI.
    if let Some(abs) = std::fs::canonicalize(&r.root)
        .ok()
        .and_then(|p| p.to_str().map(str::to_string))
    {
        let base = if abs == "/" {
            "file:///".to_string()
        } else {
            format!("file:///{}/", uri(&abs))
        };
        run["originalUriBaseIds"] = json!({"ROOT": {"uri": base}});
    }
    let doc = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [run],
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::uri;

    #[test]
    fn uris_are_relative_and_encoded() {
        assert_eq!(uri("/usr/lib/libz.so.1"), "usr/lib/libz.so.1");
        assert_eq!(uri("/opt/a b/%#?x"), "opt/a%20b/%25%23%3Fx");
        assert_eq!(uri("/é"), "%C3%A9");
    }
}
