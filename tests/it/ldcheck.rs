//! Integration tests for ldcheck. See tests/lib.rs for the skip rule.
//!
//! The oracle is the real glibc loader of a Debian minbase root filesystem
//! (scripts/rootfs.sh), run in a chroot in trace mode on every entry point
//! ldcheck judged: `chroot ROOT env -i LD_TRACE_LOADED_OBJECTS=1
//! /lib64/ld-linux-x86-64.so.2 FILE`. ldcheck's tree output (every library
//! of every entry point, with its path) must agree with it line for line,
//! and its version errors with the loader's.

use dockhand_tests::ldroots::*;
use dockhand_tests::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What one run of the loader (or ldcheck) says about one entry point.
#[derive(Debug, Default, PartialEq, Eq, Clone)]
struct Libs {
    found: BTreeSet<(String, String)>,
    missing: BTreeSet<String>,
}

/// (version, library, required by)
type VersionErrors = BTreeSet<(String, String, String)>;

fn parse_version_error(line: &str) -> Option<(String, String, String)> {
    if line.contains("weak version") {
        return None;
    }
    let (pre, rest) = line.split_once(": version `")?;
    let lib = pre.rsplit(": ").next()?.to_string();
    let (ver, rest) = rest.split_once("' not found (required by ")?;
    Some((ver.to_string(), lib, rest.trim_end_matches(')').to_string()))
}

/// The real loader, in the chroot, in trace mode.
fn oracle(root: &Path, file: &str, env: &[String]) -> (Libs, VersionErrors) {
    let o = run(Command::new("chroot")
        .arg(root)
        .args(["env", "-i", "LD_TRACE_LOADED_OBJECTS=1"])
        .args(env)
        .args(["/lib64/ld-linux-x86-64.so.2", file]));
    let mut l = Libs::default();
    for line in stdout(&o).lines() {
        let line = line.trim();
        // An object requested by a path is printed without "=>": "PATH (0x...)".
        if line.starts_with('/') && !line.starts_with("/lib64/ld-linux-x86-64.so.2 ") {
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
    let v = stderr(&o).lines().filter_map(parse_version_error).collect();
    (l, v)
}

/// ldcheck's view: per entry point, from --format tree; plus version errors.
fn ldcheck(
    root: &Path,
    paths: &[&str],
    extra: &[&str],
) -> (BTreeMap<String, Libs>, VersionErrors, String, i32) {
    let o = run(Command::new(bin("ldcheck"))
        .env_remove("LD_LIBRARY_PATH")
        .arg("--root")
        .arg(root)
        .args(["--format", "tree"])
        .args(extra)
        .args(paths));
    let out = stdout(&o);
    let mut entries: BTreeMap<String, Libs> = BTreeMap::new();
    let mut cur: Option<String> = None;
    let mut versions = BTreeSet::new();
    for line in out.lines() {
        if line.starts_with('/') {
            cur = Some(line.to_string());
            entries.entry(line.to_string()).or_default();
        } else if let Some((_, lib)) = line.split_once("── ") {
            let (name, rest) = lib.split_once(" => ").expect(line);
            let e = entries.get_mut(cur.as_ref().expect(line)).unwrap();
            if rest == "not found" {
                e.missing.insert(name.to_string());
            } else if !rest.ends_with("[interpreter]") {
                let (path, _) = rest.rsplit_once(" [").expect(line);
                e.found.insert((name.to_string(), path.to_string()));
            }
        } else if line.is_empty() {
            cur = None;
        } else if let Some(rest) = line.strip_prefix("version `") {
            let (ver, rest) = rest.split_once("' not found in ").unwrap();
            let (lib, req) = rest.split_once(" (required by ").unwrap();
            versions.insert((
                ver.to_string(),
                lib.to_string(),
                req.trim_end_matches(')').to_string(),
            ));
        }
    }
    (entries, versions, out, o.status.code().unwrap_or(-1))
}

/// Run both on every entry point ldcheck judged; returns ldcheck's output
/// and exit status. Panics with every disagreement.
fn agree(root: &Path, paths: &[&str], extra: &[&str]) -> (String, i32, BTreeMap<String, Libs>) {
    let (entries, versions, out, code) = ldcheck(root, paths, extra);
    assert!(!entries.is_empty(), "ldcheck judged nothing:\n{out}");
    let mut disagreements = Vec::new();
    let mut oracle_versions = BTreeSet::new();
    for (file, mine) in &entries {
        // --library-path P is LD_LIBRARY_PATH=P for the loader.
        let env: Vec<String> = extra
            .windows(2)
            .filter(|w| w[0] == "--library-path")
            .map(|w| format!("LD_LIBRARY_PATH={}", w[1]))
            .collect();
        let (real, v) = oracle(root, file, &env);
        oracle_versions.extend(v);
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
    if versions != oracle_versions {
        disagreements.push(format!(
            "version errors: ldcheck {versions:?}\n  ld.so {oracle_versions:?}"
        ));
    }
    assert!(
        disagreements.is_empty(),
        "{} disagreements with the loader:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    (out, code, entries)
}

fn missing_of(entries: &BTreeMap<String, Libs>) -> BTreeSet<String> {
    entries.values().flat_map(|l| l.missing.iter().cloned()).collect()
}

#[test]
fn debian_binaries_match_the_loader_and_deleted_libraries_are_missing() {
    let t = "debian_binaries_match_the_loader_and_deleted_libraries_are_missing";
    let Some(base) = minbase(t) else { return };
    let dirs = ["/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu"];
    let (out, code, entries) = agree(&base, &dirs, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(missing_of(&entries).is_empty());

    let copy = copy_root(&base);
    let root = copy.join("r");
    let libdir = root.join("usr/lib/x86_64-linux-gnu");
    let mut deleted = BTreeSet::new();
    for e in std::fs::read_dir(&libdir).unwrap().flatten() {
        let n = e.file_name().into_string().unwrap();
        for so in ["libacl.so.1", "libzstd.so.1", "libselinux.so.1"] {
            if n.starts_with(so) {
                std::fs::remove_file(e.path()).unwrap();
                deleted.insert(so);
            }
        }
    }
    assert_eq!(deleted.len(), 3, "minbase lacks a library this test deletes");
    let (out, code, entries) = agree(&root, &dirs, &[]);
    assert_eq!(code, 1, "{out}");
    let missing = missing_of(&entries);
    for so in &deleted {
        assert!(missing.contains(*so), "{so} not reported:\n{out}");
        assert!(out.contains(&format!("missing {so}")), "{out}");
    }
    // The package hint comes from the bookworm table.
    assert!(
        out.contains("missing libacl.so.1 (Debian package libacl1)"),
        "{out}"
    );
}

/// Build the gcc fixtures of the resolution rules inside `root` under /opt/t.
fn build_fixtures(root: &Path) -> Vec<(&'static str, String)> {
    let src = TempDir::new("ldcheck-src");
    let opt = root.join("opt/t");
    let cc = |args: &[&str]| {
        // Dependencies of dependencies are not on the link line: that is the point.
        let o = run(Command::new("gcc")
            .current_dir(src.path())
            .args(args)
            .arg("-Wl,--allow-shlib-undefined"));
        assert!(o.status.success(), "gcc {args:?}: {}", stderr(&o));
    };
    let w = |name: &str, text: &str| std::fs::write(src.join(name), text).unwrap();
    let mk = |d: &str| {
        std::fs::create_dir_all(opt.join(d)).unwrap();
        opt.join(d).to_str().unwrap().to_string()
    };
    let lib = |out: &str, soname: &str, code: &str, extra: &[&str]| {
        let c = format!("{}.c", soname.replace(['/', '$', '.'], "_"));
        w(&c, code);
        let mut a = vec!["-shared", "-fPIC", "-o", out, c.as_str()];
        let so = format!("-Wl,-soname,{soname}");
        a.push(&so);
        a.extend_from_slice(extra);
        cc(&a);
    };
    let mut expect = Vec::new();

    // DT_RPATH is inherited by libraries the program loads; DT_RUNPATH is not.
    let d = mk("liba");
    let e = mk("libb");
    lib(
        &format!("{e}/libb.so.1"),
        "libb.so.1",
        "int b(void){return 2;}",
        &[],
    );
    lib(
        &format!("{d}/liba.so.1"),
        "liba.so.1",
        "int b(void); int a(void){return b();}",
        &[&format!("{e}/libb.so.1")],
    );
    w("m.c", "int a(void); int main(void){return a();}");
    let bin = mk("bin");
    for (name, tags) in [
        ("rpath", "--disable-new-dtags"),
        ("runpath", "--enable-new-dtags"),
    ] {
        cc(&[
            "-o",
            &format!("{bin}/{name}"),
            "m.c",
            &format!("{d}/liba.so.1"),
            &format!("-Wl,{tags},-rpath,/opt/t/liba:/opt/t/libb"),
        ]);
    }
    expect.push(("runpath", "libb.so.1".to_string()));

    // $ORIGIN chains: bin -> $ORIGIN/../lib/libo1 -> ($ORIGIN/deep) libo2.
    let app = mk("app/bin");
    let al = mk("app/lib");
    let deep = mk("app/lib/deep");
    lib(
        &format!("{deep}/libo2.so"),
        "libo2.so",
        "int o2(void){return 3;}",
        &[],
    );
    lib(
        &format!("{al}/libo1.so"),
        "libo1.so",
        "int o2(void); int o1(void){return o2();}",
        &[
            &format!("{deep}/libo2.so"),
            "-Wl,--enable-new-dtags,-rpath,$ORIGIN/deep",
        ],
    );
    w("o.c", "int o1(void); int main(void){return o1();}");
    cc(&[
        "-o",
        &format!("{app}/prog"),
        "o.c",
        &format!("{al}/libo1.so"),
        "-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib",
    ]);

    // glibc-hwcaps: the x86-64-v2 build is chosen over the plain one.
    let hw = mk("hw");
    let hw2 = mk("hw/glibc-hwcaps/x86-64-v2");
    lib(
        &format!("{hw}/libh.so.1"),
        "libh.so.1",
        "int h(void){return 1;}",
        &[],
    );
    lib(
        &format!("{hw2}/libh.so.1"),
        "libh.so.1",
        "int h(void){return 2;}",
        &[],
    );
    w("h.c", "int h(void); int main(void){return h();}");
    cc(&[
        "-o",
        &format!("{bin}/hwcaps"),
        "h.c",
        &format!("{hw}/libh.so.1"),
        "-Wl,-rpath,/opt/t/hw",
    ]);

    // $LIB and $PLATFORM in a run path.
    let lb = mk("dst/lib/x86_64-linux-gnu");
    lib(
        &format!("{lb}/libd.so.1"),
        "libd.so.1",
        "int d(void){return 1;}",
        &[],
    );
    // $PLATFORM is x86_64, or haswell on recent Intel CPUs.
    for p in ["x86_64", "haswell"] {
        let pd = mk(&format!("dst/{p}"));
        std::fs::copy(format!("{lb}/libd.so.1"), format!("{pd}/libd.so.1")).unwrap();
    }
    w("d.c", "int d(void); int main(void){return d();}");
    cc(&[
        "-o",
        &format!("{bin}/dst-lib"),
        "d.c",
        &format!("{lb}/libd.so.1"),
        "-Wl,-rpath,/opt/t/dst/$LIB",
    ]);
    cc(&[
        "-o",
        &format!("{bin}/dst-platform"),
        "d.c",
        &format!("{lb}/libd.so.1"),
        "-Wl,-rpath,/opt/t/dst/${PLATFORM}:/opt/t/nowhere",
    ]);

    // Symbol versions: linked against V2, run against a library with V1 only.
    w("v1.map", "V1 { global: foo; local: *; };");
    w(
        "v2.map",
        "V1 { global: foo; local: *; };\nV2 { global: bar; } V1;",
    );
    let vd = mk("ver");
    lib(
        &format!("{vd}/libv.so.1"),
        "libv.so.1",
        "int foo(void){return 1;}\nint bar(void){return 2;}",
        &["-Wl,--version-script=v2.map"],
    );
    w(
        "v.c",
        "int foo(void); int bar(void); int main(void){return foo()+bar();}",
    );
    cc(&[
        "-o",
        &format!("{bin}/versions"),
        "v.c",
        &format!("{vd}/libv.so.1"),
        "-Wl,-rpath,/opt/t/ver",
    ]);
    lib(
        &format!("{vd}/libv.so.1"),
        "libv.so.1",
        "int foo(void){return 1;}",
        &["-Wl,--version-script=v1.map"],
    );

    // Wrong class and wrong machine come first in the path and are skipped.
    let wc = mk("wrong/class");
    let wm = mk("wrong/machine");
    let wr = mk("wrong/right");
    lib(
        &format!("{wr}/libw.so.1"),
        "libw.so.1",
        "int wfn(void){return 1;}",
        &[],
    );
    let real = std::fs::read(format!("{wr}/libw.so.1")).unwrap();
    let mut c32 = real.clone();
    c32[4] = 1; // ELFCLASS32
    std::fs::write(format!("{wc}/libw.so.1"), c32).unwrap();
    let mut arm = real.clone();
    arm[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
    std::fs::write(format!("{wm}/libw.so.1"), arm).unwrap();
    w("wr.c", "int wfn(void); int main(void){return wfn();}");
    cc(&[
        "-o",
        &format!("{bin}/wrong"),
        "wr.c",
        &format!("{wr}/libw.so.1"),
        "-Wl,-rpath,/opt/t/wrong/class:/opt/t/wrong/machine:/opt/t/wrong/right",
    ]);

    // /usr/local/lib without ldconfig: the loader does not look there.
    let ul = root.join("usr/local/lib");
    std::fs::create_dir_all(&ul).unwrap();
    let ulib = ul.join("liblocal.so.1").to_str().unwrap().to_string();
    lib(&ulib, "liblocal.so.1", "int loc(void){return 1;}", &[]);
    w("l.c", "int loc(void); int main(void){return loc();}");
    cc(&["-o", &format!("{bin}/local"), "l.c", &ulib]);
    expect.push(("local", "liblocal.so.1".to_string()));

    // A DT_NEEDED name with a slash and $ORIGIN in it.
    let sl = mk("slash");
    lib(
        &format!("{sl}/libslash.so"),
        "$ORIGIN/../slash/libslash.so",
        "int sl(void){return 1;}",
        &[],
    );
    w("s.c", "int sl(void); int main(void){return sl();}");
    cc(&["-o", &format!("{bin}/slash"), "s.c", &format!("{sl}/libslash.so")]);

    // DF_1_NODEFLIB: neither the cache's system entries nor the default directories.
    // (-z nodefaultlib on a library: ld ignores it for programs, and it
    // applies to what that library needs.)
    let nd = mk("nodeflib");
    lib(
        &format!("{nd}/libnd.so.1"),
        "libnd.so.1",
        "int nd(void){return 1;}",
        &[
            "-Wl,-z,nodefaultlib,--no-as-needed",
            "/lib/x86_64-linux-gnu/libz.so.1",
        ],
    );
    w("z.c", "int nd(void); int main(void){return nd();}");
    cc(&[
        "-o",
        &format!("{bin}/nodeflib"),
        "z.c",
        &format!("{nd}/libnd.so.1"),
        "-Wl,-rpath,/opt/t/nodeflib",
    ]);
    expect.push(("nodeflib", "libz.so.1".to_string()));

    // A symbol the program needs is gone from a newer build of its library
    // (only --symbols sees it: there is no version to check).
    let sy = mk("sym");
    lib(
        &format!("{sy}/libsym.so.1"),
        "libsym.so.1",
        "int oldfn(void){return 1;}\nint newfn(void){return 2;}",
        &[],
    );
    w(
        "sy.c",
        "int oldfn(void); int newfn(void); int main(void){return oldfn()+newfn();}",
    );
    cc(&[
        "-o",
        &format!("{bin}/symbols"),
        "sy.c",
        &format!("{sy}/libsym.so.1"),
        "-Wl,-rpath,/opt/t/sym",
    ]);
    lib(
        &format!("{sy}/libsym.so.1"),
        "libsym.so.1",
        "int oldfn(void){return 1;}",
        &[],
    );

    // Simply missing.
    let gone = mk("gone");
    lib(
        &format!("{gone}/libgone.so.3"),
        "libgone.so.3",
        "int g(void){return 1;}",
        &[],
    );
    w("g.c", "int g(void); int main(void){return g();}");
    cc(&[
        "-o",
        &format!("{bin}/gone"),
        "g.c",
        &format!("{gone}/libgone.so.3"),
    ]);
    std::fs::remove_file(format!("{gone}/libgone.so.3")).unwrap();
    expect.push(("gone", "libgone.so.3".to_string()));

    // A DT_RPATH of 24 directories searched for 41 names: after a few
    // searches ldcheck answers from an index of the directories' names.
    // libm30 is in two directories (the first wins); libm31 has an aarch64
    // copy earlier on the path (skipped, the search goes on); d05 cannot be
    // listed (a file name that is not UTF-8: every name is probed there)
    // and holds libm32 before its other place; libm38 and libm39 are missing.
    use std::os::unix::ffi::OsStrExt;
    let many: Vec<String> = (0..24).map(|i| mk(&format!("many/d{i:02}"))).collect();
    std::fs::write(
        Path::new(&many[5]).join(std::ffi::OsStr::from_bytes(b"\xff.so")),
        b"",
    )
    .unwrap();
    let mut links = Vec::new();
    for k in 0..40 {
        let so = format!("libm{k:02}.so");
        let p = format!("{}/{so}", many[(k * 7 + 3) % 24]);
        lib(&p, &so, &format!("int m{k}(void){{return {k};}}"), &[]);
        links.push(p);
    }
    let rpath = (0..24)
        .map(|i| format!("/opt/t/many/d{i:02}"))
        .collect::<Vec<_>>()
        .join(":");
    w("many.c", "int main(void){return 0;}");
    let out = format!("{bin}/many");
    let rp = format!("-Wl,--disable-new-dtags,-rpath,{rpath}");
    let mut args = vec!["-o", out.as_str(), "many.c", rp.as_str(), "-Wl,--no-as-needed"];
    args.extend(links.iter().map(String::as_str));
    cc(&args);
    let copy = |k: usize, to: usize| {
        let so = format!("libm{k:02}.so");
        let from = format!("{}/{so}", many[(k * 7 + 3) % 24]);
        let to = format!("{}/{so}", many[to]);
        std::fs::copy(from, &to).unwrap();
        to
    };
    copy(30, 0);
    let arm = copy(31, 1);
    let mut d = std::fs::read(&arm).unwrap();
    d[18..20].copy_from_slice(&183u16.to_le_bytes());
    std::fs::write(&arm, d).unwrap();
    copy(32, 5);
    for k in [38, 39] {
        std::fs::remove_file(&links[k]).unwrap();
        expect.push(("many", format!("libm{k}.so")));
    }
    expect
}

#[test]
fn gcc_fixtures_match_the_loader() {
    let t = "gcc_fixtures_match_the_loader";
    let Some(base) = minbase(t) else { return };
    if !have("gcc", &["--version"]) {
        skip(t, "needs gcc");
        return;
    }
    let copy = copy_root(&base);
    let root = copy.join("r");
    let expect = build_fixtures(&root);
    let (out, code, entries) = agree(&root, &["/opt/t", "/usr/local/lib"], &[]);
    assert_eq!(code, 1, "{out}");
    for (prog, so) in &expect {
        let e = &entries[&format!("/opt/t/bin/{prog}")];
        assert!(e.missing.contains(so), "{prog} should miss {so}:\n{out}");
    }
    let e = &entries["/opt/t/bin/rpath"];
    assert!(
        e.found
            .contains(&("libb.so.1".into(), "/opt/t/libb/libb.so.1".into())),
        "{out}"
    );
    let e = &entries["/opt/t/bin/hwcaps"];
    assert!(
        e.found.iter().any(|(_, p)| p.contains("glibc-hwcaps/x86-64-v"))
            || !std::arch::is_x86_feature_detected!("sse4.2"),
        "{out}"
    );
    let e = &entries["/opt/t/bin/many"];
    for (k, d) in [(30, 0), (31, 4), (32, 5)] {
        let want = (format!("libm{k}.so"), format!("/opt/t/many/d{d:02}/libm{k}.so"));
        assert!(e.found.contains(&want), "{want:?}:\n{out}");
    }
    let e = &entries["/opt/t/bin/wrong"];
    assert!(
        e.found
            .contains(&("libw.so.1".into(), "/opt/t/wrong/right/libw.so.1".into())),
        "{out}"
    );
    assert!(
        out.contains("version `V2' not found in /opt/t/ver/libv.so.1 (required by /opt/t/bin/versions)"),
        "{out}"
    );
    // Only entry points are judged: liba (needed by the two programs) is not one.
    assert!(!entries.contains_key("/opt/t/liba/liba.so.1"), "{out}");

    // --symbols against the loader binding every symbol now (ldd -r), on
    // every entry point that has all its libraries.
    let o = run(Command::new(bin("ldcheck"))
        .arg("--root")
        .arg(&root)
        .args(["--symbols", "/opt/t"]));
    let text = stdout(&o);
    let mine: BTreeSet<(String, String)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("undefined symbol "))
        .map(|l| {
            let (sym, by) = l.split_once(" (required by ").unwrap();
            (
                sym.replace('@', ", version "),
                by.trim_end_matches(')').to_string(),
            )
        })
        .collect();
    let mut real = BTreeSet::new();
    for (file, libs) in entries.iter().filter(|(_, l)| l.missing.is_empty()) {
        let o = run(Command::new("chroot").arg(&root).args([
            "env",
            "-i",
            "LD_TRACE_LOADED_OBJECTS=1",
            "LD_WARN=yes",
            "LD_BIND_NOW=yes",
            "/lib64/ld-linux-x86-64.so.2",
            file,
        ]));
        let _ = libs;
        for l in stderr(&o).lines() {
            if let Some(rest) = l.strip_prefix("undefined symbol: ") {
                let (sym, by) = rest.split_once('\t').unwrap();
                real.insert((sym.to_string(), by.trim_matches(['(', ')']).to_string()));
            }
        }
    }
    assert!(
        real.contains(&("newfn".to_string(), "/opt/t/bin/symbols".to_string())),
        "{real:?}"
    );
    assert_eq!(mine, real, "--symbols disagrees with the loader:\n{text}");

    // LD_LIBRARY_PATH comes before DT_RUNPATH, and applies to every object.
    let (out, code, entries) = agree(
        &root,
        &["/opt/t/bin/runpath", "/opt/t/bin/hwcaps"],
        &[
            "--library-path",
            "/opt/t/libb:/opt/t/wrong/right::/opt/t/hw/glibc-hwcaps/x86-64-v2",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let e = &entries["/opt/t/bin/runpath"];
    assert!(
        e.found
            .contains(&("libb.so.1".into(), "/opt/t/libb/libb.so.1".into())),
        "{out}"
    );
    // --each-file: libraries judged on their own too, as ldd would.
    let (out, _, entries) = agree(&root, &["/opt/t/liba", "/opt/t/libb"], &["--each-file"]);
    assert!(entries.contains_key("/opt/t/libb/libb.so.1"), "{out}");
    assert!(
        entries["/opt/t/liba/liba.so.1"].missing.contains("libb.so.1"),
        "{out}"
    );

    // After ldconfig, /usr/local/lib is in the cache and the library is found.
    let o = run(Command::new("chroot").arg(&root).arg("/sbin/ldconfig"));
    assert!(o.status.success(), "{}", stderr(&o));
    let (out, _, entries) = agree(&root, &["/opt/t/bin/local"], &[]);
    assert!(entries["/opt/t/bin/local"].missing.is_empty(), "{out}");
}

fn wheel_root(test: &str, project: &str) -> Option<(TempDir, PathBuf)> {
    let base = minbase(test)?;
    if !have("python3", &["-m", "pip", "--version"]) {
        skip(test, "needs python3 with pip (python3-pip)");
        return None;
    }
    let copy = copy_root(&base);
    let root = copy.join("r");
    install_wheel(test, &root, project, &MANYLINUX_X86_64)?;
    Some((copy, root))
}

#[test]
fn opencv_python_misses_exactly_the_x11_and_gl_libraries() {
    let t = "opencv_python_misses_exactly_the_x11_and_gl_libraries";
    let Some((_keep, root)) = wheel_root(t, "opencv-python") else {
        return;
    };
    let (out, code, entries) = agree(&root, &["/opt/venv"], &[]);
    assert_eq!(code, 1, "{out}");
    let want: BTreeSet<String> = [
        "libGL.so.1",
        "libglib-2.0.so.0",
        "libgthread-2.0.so.0",
        "libSM.so.6",
        "libICE.so.6",
        "libX11.so.6",
        "libXext.so.6",
        "libxcb.so.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(missing_of(&entries), want, "{out}");
    assert!(out.contains("opencv-python-headless"), "no hint:\n{out}");
    assert!(
        out.contains("missing libGL.so.1 (Debian package libgl1)"),
        "{out}"
    );
    // The JSON form carries the same findings.
    let o =
        run(Command::new(bin("ldcheck"))
            .arg("--root")
            .arg(&root)
            .args(["--format", "json", "/opt/venv"]));
    let j = stdout(&o);
    for f in [
        "\"files\"",
        "\"missing\"",
        "\"needed_by\"",
        "\"package\": \"libgl1\"",
        "\"version_errors\"",
        "\"runtime_provided\"",
    ] {
        assert!(j.contains(f), "{f} not in JSON:\n{j}");
    }
    // One well-formed object whose "missing" sonames are the same eight.
    let py = "import json,sys; d=json.load(sys.stdin); \
              print(' '.join(sorted(m['soname'] for m in d['missing'])), d['files'] > 0, \
              all(isinstance(m['needed_by'], list) for m in d['missing']))";
    let mut child = Command::new("python3")
        .args(["-c", py])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), j.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    let mut sorted: Vec<&String> = want.iter().collect();
    sorted.sort();
    let line = format!(
        "{} True True",
        sorted.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
    );
    assert_eq!(stdout(&o).trim(), line, "{}", stderr(&o));
}

#[test]
fn opencv_python_headless_misses_nothing() {
    let t = "opencv_python_headless_misses_nothing";
    let Some((_keep, root)) = wheel_root(t, "opencv-python-headless") else {
        return;
    };
    let (out, code, entries) = agree(&root, &["/opt/venv"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(missing_of(&entries).is_empty(), "{out}");
}

#[test]
fn nvidia_cuda_runtime_wheel() {
    let t = "nvidia_cuda_runtime_wheel";
    let Some((_keep, root)) = wheel_root(t, "nvidia-cuda-runtime-cu12") else {
        return;
    };
    let (out, code, _) = agree(&root, &["/opt/venv"], &[]);
    assert_eq!(code, 0, "{out}");
    // GPU mode turns on by itself and reports the runtime and the dlopen of libcuda.
    assert!(out.contains("gpu: CUDA runtime 12"), "{out}");
    assert!(out.contains("loads libcuda.so.1 with dlopen"), "{out}");
}

#[test]
fn host_driver_is_checked_against_the_cuda_runtime() {
    let t = "host_driver_is_checked_against_the_cuda_runtime";
    let Some((_keep, root)) = wheel_root(t, "nvidia-cuda-runtime-cu12") else {
        return;
    };
    if !have("unshare", &["--version"]) {
        skip(t, "needs unshare (util-linux)");
        return;
    }
    // The wheel's own version, from its dist-info directory.
    let cuda = std::fs::read_dir(root.join("opt/venv/site-packages"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .find_map(|n| {
            n.strip_prefix("nvidia_cuda_runtime_cu12-")?
                .strip_suffix(".dist-info")
                .map(str::to_string)
        })
        .expect("dist-info of nvidia-cuda-runtime-cu12");
    assert!(cuda.starts_with("12."), "{cuda}");

    // Below 12.x's minor-version compatibility minimum: the run fails.
    let proc = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.57.02  Tue Jul 13 16:14:05 UTC 2021";
    let (out, code) = ldcheck_with_driver(&root, Driver::Proc(proc), true, &[], "/opt/venv");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("gpu: driver 470.57.02 on this host; devices: /dev/nvidia0 /dev/nvidiactl"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "gpu: driver too old: CUDA {cuda} needs NVIDIA driver >= "
        )),
        "{out}"
    );
    assert!(
        out.contains("(>= 525.60.13 with minor-version compatibility); this host has 470.57.02"),
        "{out}"
    );
    assert!(
        out.lines().last().unwrap().ends_with(", NVIDIA driver too old"),
        "{out}"
    );

    // 12.x's compatibility minimum exactly, read from /sys/module: runs, by compatibility.
    let (out, code) = ldcheck_with_driver(&root, Driver::Sys("525.60.13"), true, &[], "/opt/venv");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("gpu: CUDA {cuda} needs driver >= ")),
        "{out}"
    );
    assert!(
        out.contains("525.60.13 runs it by minor-version compatibility"),
        "{out}"
    );

    // A driver newer than every 12.x release needs.
    let (out, code) = ldcheck_with_driver(&root, Driver::Sys("999.99.99"), true, &[], "/opt/venv");
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("gpu: CUDA {cuda} needs driver >= ")) && out.contains(": ok"),
        "{out}"
    );

    // The same facts in JSON.
    let (j, code) = ldcheck_with_driver(
        &root,
        Driver::Sys("470.57.02"),
        true,
        &["--format", "json"],
        "/opt/venv",
    );
    assert_eq!(code, 1, "{j}");
    assert!(j.contains("\"driver\": \"470.57.02\""), "{j}");
    assert!(j.contains("\"minor_compat\": \"525.60.13\""), "{j}");
    assert!(j.contains("\"verdict\": \"too-old\""), "{j}");
    assert!(
        j.contains("\"/dev/nvidia0\"") && j.contains("\"/dev/nvidiactl\""),
        "{j}"
    );
}

#[test]
fn driver_libraries_are_provided_at_run_time_in_gpu_mode() {
    let t = "driver_libraries_are_provided_at_run_time_in_gpu_mode";
    let Some(base) = minbase(t) else { return };
    if !have("gcc", &["--version"]) {
        skip(t, "needs gcc");
        return;
    }
    let copy = copy_root(&base);
    let root = copy.join("r");
    let src = TempDir::new("ldcheck-cuda");
    let d = root.join("opt/g");
    std::fs::create_dir_all(&d).unwrap();
    // A stand-in for the driver's libcuda, linked against and then removed.
    std::fs::write(src.join("c.c"), "int cuInit(unsigned f){return (int)f;}").unwrap();
    std::fs::write(
        src.join("m.c"),
        "int cuInit(unsigned); int main(void){return cuInit(0);}",
    )
    .unwrap();
    let cuda = src.join("libcuda.so.1");
    assert!(have(
        "gcc",
        &[
            "-shared",
            "-fPIC",
            "-o",
            cuda.to_str().unwrap(),
            "-Wl,-soname,libcuda.so.1",
            src.join("c.c").to_str().unwrap()
        ]
    ));
    assert!(have(
        "gcc",
        &[
            "-o",
            d.join("app").to_str().unwrap(),
            src.join("m.c").to_str().unwrap(),
            cuda.to_str().unwrap()
        ]
    ));
    let (out, code, _) = agree(&root, &["/opt/g"], &[]);
    assert_eq!(
        code, 0,
        "libcuda.so.1 is a CUDA user: GPU mode is automatic:\n{out}"
    );
    assert!(
        out.contains("provided by the driver at run time: libcuda.so.1"),
        "{out}"
    );
    let o = run(Command::new(bin("ldcheck"))
        .arg("--root")
        .arg(&root)
        .args(["--format", "json", "/opt/g"]));
    assert!(
        stdout(&o).contains("\"runtime_provided\": [\n    {\n      \"soname\": \"libcuda.so.1\""),
        "{}",
        stdout(&o)
    );
    // --ignore works for anything.
    let o = run(Command::new(bin("ldcheck")).arg("--root").arg(&root).args([
        "--ignore",
        "libcuda.so.1",
        "/opt/g",
    ]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn usage_errors_exit_2() {
    let o = run(&mut Command::new(bin("ldcheck")));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).starts_with("ldcheck: "), "{}", stderr(&o));
    let o = run(Command::new(bin("ldcheck")).args(["--format", "xml", "/"]));
    assert_eq!(o.status.code(), Some(2));
    let o = run(Command::new(bin("ldcheck"))
        .env("LDCHECK_FORMAT", "yaml")
        .arg("/bin/sh"));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("LDCHECK_FORMAT"), "{}", stderr(&o));
    let o = run(Command::new(bin("ldcheck")).arg("/nonexistent/ldcheck-path"));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn host_binaries_resolve_and_static_files_are_fine() {
    // No root needed: the host's own /bin/sh resolves (the machine runs it).
    let o = run(Command::new(bin("ldcheck"))
        .env_remove("LD_LIBRARY_PATH")
        .args(["--format", "json", "/bin/sh"]));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("\"files\": 1"), "{}", stdout(&o));
    // The static musl ldcheck binary itself: no interpreter, no DT_NEEDED.
    let o = run(Command::new(bin("ldcheck")).arg(bin("ldcheck")));
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}
