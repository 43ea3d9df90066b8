//! ldcheck's aarch64 rules against the real aarch64 loader. See tests/lib.rs
//! for the skip rule.
//!
//! The oracle is glibc's aarch64 ld.so of a Debian arm64 root built by
//! `ROOTFS_ARCH=arm64 scripts/rootfs.sh` (debootstrap's first stage: the
//! packages unpacked, ld.so.cache made by the root's own ldconfig), run in
//! a chroot under qemu-user-static in trace mode on every entry point
//! ldcheck judged: `chroot ROOT /usr/bin/qemu-aarch64-static -E
//! LD_TRACE_LOADED_OBJECTS=1 /lib/ld-linux-aarch64.so.1 FILE`. ldcheck's JSON (every library
//! of every entry point, with its path) must agree with it exactly.

use dockhand_tests::ldroots::*;
use dockhand_tests::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

const INTERP: &str = "/lib/ld-linux-aarch64.so.1";

/// One entry point's libraries: (name, path) found, names not found.
#[derive(Debug, Default, PartialEq, Eq, Clone)]
struct Libs {
    found: BTreeSet<(String, String)>,
    missing: BTreeSet<String>,
}

/// The real aarch64 loader, in the chroot, under qemu, in trace mode.
fn oracle(root: &Path, file: &str, library_path: Option<&str>) -> Libs {
    let mut c = Command::new("chroot");
    // No variable of this process reaches the guest (PATH only finds chroot).
    c.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .arg(root)
        .arg(QEMU);
    if let Some(p) = library_path {
        // -E sets the variable for the guest program only.
        c.arg("-E").arg(format!("LD_LIBRARY_PATH={p}"));
    }
    // ldd's way: `--list` stops at the first missing library instead.
    let o = run(c.args(["-E", "LD_TRACE_LOADED_OBJECTS=1", INTERP, file]));
    assert!(o.status.success(), "the loader on {file}: {o:?}");
    let mut l = Libs::default();
    for line in stdout(&o).lines() {
        let line = line.trim();
        // The loader itself, and the vDSO (no name under qemu).
        if line.starts_with(&format!("{INTERP} ")) || line.starts_with("(0x") {
            continue;
        }
        // An object requested by a path: "PATH (0x...)".
        if line.starts_with('/') {
            let path = line.split(" (0x").next().unwrap_or(line);
            l.found.insert((path.to_string(), path.to_string()));
            continue;
        }
        let Some((name, rest)) = line.split_once(" => ") else {
            continue;
        };
        if rest == "not found" {
            l.missing.insert(name.to_string());
        } else {
            let path = rest.split(" (0x").next().unwrap_or(rest);
            l.found.insert((name.to_string(), path.to_string()));
        }
    }
    l
}

/// ldcheck's view, per entry point, from its JSON.
fn ldcheck(root: &Path, paths: &[&str], extra: &[&str]) -> (BTreeMap<String, Libs>, serde_json::Value) {
    let o = run(Command::new(bin("ldcheck"))
        .env_remove("LD_LIBRARY_PATH")
        .arg("--root")
        .arg(root)
        .args(["--format", "json"])
        .args(extra)
        .args(paths));
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&o), stderr(&o)));
    let mut entries = BTreeMap::new();
    for e in v["entries"].as_array().unwrap() {
        let mut l = Libs::default();
        for lib in e["libraries"].as_array().unwrap() {
            let name = lib["soname"].as_str().unwrap().to_string();
            match lib["path"].as_str() {
                _ if lib["found_by"] == "interpreter" => {}
                Some(p) => {
                    l.found.insert((name, p.to_string()));
                }
                None => {
                    l.missing.insert(name);
                }
            }
        }
        entries.insert(e["path"].as_str().unwrap().to_string(), l);
    }
    (entries, v)
}

/// Both on every entry point ldcheck judged; panics with every
/// disagreement. Returns ldcheck's entries and JSON.
fn agree(
    root: &Path,
    paths: &[&str],
    library_path: Option<&str>,
) -> (BTreeMap<String, Libs>, serde_json::Value) {
    let extra: Vec<&str> = library_path
        .map(|p| vec!["--library-path", p])
        .unwrap_or_default();
    let (mut entries, v) = ldcheck(root, paths, &extra);
    // The x86_64 qemu the root carries for its chroot is no aarch64 program.
    entries.remove(QEMU);
    assert!(!entries.is_empty(), "ldcheck judged nothing: {v}");
    let mut disagreements = Vec::new();
    for (file, mine) in &entries {
        let real = oracle(root, file, library_path);
        if *mine != real {
            disagreements.push(format!(
                "{file}:\n  ldcheck only: {:?} {:?}\n  ld.so only:   {:?} {:?}",
                mine.found.difference(&real.found).collect::<Vec<_>>(),
                mine.missing.difference(&real.missing).collect::<Vec<_>>(),
                real.found.difference(&mine.found).collect::<Vec<_>>(),
                real.missing.difference(&mine.missing).collect::<Vec<_>>(),
            ));
        }
    }
    eprintln!(
        "aarch64 oracle: {} entry points compared over {:?}, {} disagreements",
        entries.len(),
        paths,
        disagreements.len()
    );
    assert!(
        disagreements.is_empty(),
        "{} disagreements with the aarch64 loader:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    (entries, v)
}

fn libs_count(entries: &BTreeMap<String, Libs>) -> usize {
    entries.values().map(|l| l.found.len()).sum()
}

#[test]
fn arm64_debian_programs_match_the_aarch64_loader() {
    let t = "arm64_debian_programs_match_the_aarch64_loader";
    let Some(base) = arm64_root(t) else { return };
    let (entries, v) = agree(
        &base,
        &["/usr/bin", "/usr/sbin", "/usr/lib/aarch64-linux-gnu"],
        None,
    );
    assert!(entries.len() > 100, "{} entry points", entries.len());
    assert!(libs_count(&entries) > 300, "{}", libs_count(&entries));
    // Judged as aarch64, nothing skipped as foreign but the static qemu.
    assert!(
        v["not_judged"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p != "/usr/bin/apt"),
        "{v}"
    );
    // A deleted library: missing for both.
    let copy = copy_root(&base);
    let root = copy.join("r");
    // The file and its soname link (ldconfig would make the link again).
    let lib = root.join("usr/lib/aarch64-linux-gnu");
    for e in std::fs::read_dir(&lib).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("libz.so.1") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    let o = run(Command::new("chroot").arg(&root).args([QEMU, "/sbin/ldconfig"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let (entries, _) = agree(&root, &["/usr/bin/apt", "/usr/bin/dpkg"], None);
    assert!(
        entries["/usr/bin/apt"].missing.contains("libz.so.1"),
        "{entries:?}"
    );
}

/// Copies of the root's own libraries in legacy hwcaps subdirectories of
/// an LD_LIBRARY_PATH directory, and an x86_64 libc before them: the order
/// the aarch64 loader tries them in (tls, platform, atomics) and the
/// foreign file skipped.
#[test]
fn arm64_hwcaps_subdirectories_match_the_aarch64_loader() {
    let t = "arm64_hwcaps_subdirectories_match_the_aarch64_loader";
    let Some(base) = arm64_root(t) else { return };
    let copy = copy_root(&base);
    let root = copy.join("r");
    let lib = root.join("usr/lib/aarch64-linux-gnu");
    let put = |name: &str, subs: &[&str]| {
        for s in subs {
            let d = root.join("opt/h").join(s);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::copy(lib.join(name), d.join(name)).unwrap();
        }
    };
    put("libz.so.1", &["atomics", "aarch64"]);
    put("libbz2.so.1.0", &["atomics", ""]);
    put("liblzma.so.5", &["tls", "aarch64/atomics"]);
    put("liblz4.so.1", &["tls/atomics", "tls/aarch64"]);
    // An x86_64 library under the name the loader looks for first: skipped.
    std::fs::create_dir_all(root.join("opt/h/tls/aarch64/atomics")).unwrap();
    std::fs::copy(
        "/lib/x86_64-linux-gnu/libzstd.so.1",
        root.join("opt/h/tls/aarch64/atomics/libzstd.so.1"),
    )
    .unwrap();
    let (entries, _) = agree(&root, &["/usr/bin/apt", "/usr/bin/dpkg"], Some("/opt/h"));
    let apt = &entries["/usr/bin/apt"];
    for (so, want) in [
        ("libz.so.1", "/opt/h/aarch64/libz.so.1"),
        ("libbz2.so.1.0", "/opt/h/atomics/libbz2.so.1.0"),
        ("liblzma.so.5", "/opt/h/tls/liblzma.so.5"),
        ("liblz4.so.1", "/opt/h/tls/aarch64/liblz4.so.1"),
        ("libzstd.so.1", "/lib/aarch64-linux-gnu/libzstd.so.1"),
    ] {
        assert!(
            apt.found.contains(&(so.to_string(), want.to_string())),
            "{so}: {apt:?}"
        );
    }
}

/// Pillow's manylinux2014 aarch64 wheel: extension modules that reach
/// their bundled libraries (pillow.libs) through $ORIGIN search paths.
#[test]
fn manylinux_aarch64_wheel_matches_the_aarch64_loader() {
    let t = "manylinux_aarch64_wheel_matches_the_aarch64_loader";
    let Some(base) = arm64_root(t) else { return };
    if !have("python3", &["-m", "pip", "--version"]) {
        skip(t, "needs python3 with pip (python3-pip)");
        return;
    }
    let copy = copy_root(&base);
    let root = copy.join("r");
    let Some(()) = install_wheel(t, &root, "pillow", &MANYLINUX_AARCH64) else {
        return;
    };
    let (entries, v) = agree(&root, &["/opt/venv"], None);
    assert!(v["ok"] == true, "{v}");
    // The bundled libraries are found in the wheel, by its $ORIGIN paths.
    let bundled = entries
        .values()
        .flat_map(|l| l.found.iter())
        .filter(|(_, p)| p.contains("/pillow.libs/"))
        .count();
    assert!(bundled > 0, "{entries:?}");
}
