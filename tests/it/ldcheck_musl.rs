//! ldcheck in musl (Alpine) roots, and its SARIF output. See tests/lib.rs
//! for the skip rule.
//!
//! The oracle is the real musl loader (Debian's `musl` package) in list
//! mode, what Alpine's ldd runs, in a chroot of a root the test assembles:
//! `chroot ROOT /lib/ld-musl-x86_64.so.1 --list FILE`. Every library it
//! lists (name and path) and every library it fails to load must be what
//! ldcheck's JSON says for the same file, for fixtures built with musl-gcc
//! and for every shared object of a musllinux wheel from PyPI.
//!
//! SARIF output is validated against the OASIS SARIF 2.1.0 schema
//! (tests/fixtures/sarif-schema-2.1.0.json, see SARIF-SCHEMA.md there) with
//! the `jsonschema` package of the .cache/validate venv.

use dockhand_tests::ldroots::*;
use dockhand_tests::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const MUSL_LOADER: &str = "/lib/ld-musl-x86_64.so.1";
/// The musllinux wheel: a compiled extension with auditwheel-bundled
/// libraries that find each other by $ORIGIN.
const WHEEL: &str = "pillow==13.0.0";

/// What one file loads: (name, path) found, and names that failed.
#[derive(Debug, Default, PartialEq, Eq)]
struct Libs {
    found: BTreeSet<(String, String)>,
    failed: BTreeSet<String>,
}

/// The host's musl loader (Debian puts the file under
/// /lib/x86_64-linux-musl/ and links /lib/ld-musl-x86_64.so.1 to it).
fn host_musl(test: &str) -> Option<PathBuf> {
    if !need_root(test) {
        return None;
    }
    let p = Path::new(MUSL_LOADER);
    if !p.exists() || !have("musl-gcc", &["--version"]) {
        skip(test, "needs musl and musl-tools (make setup)");
        return None;
    }
    Some(std::fs::canonicalize(p).unwrap())
}

/// A root with musl's loader as the only libc, and `path_file` as its
/// /etc/ld-musl-x86_64.path (none when None).
fn musl_root(loader: &Path, path_file: Option<&str>) -> (TempDir, PathBuf) {
    let t = TempDir::new("ldcheck-musl");
    let root = t.join("r");
    std::fs::create_dir_all(root.join("lib")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy(loader, root.join("lib/ld-musl-x86_64.so.1")).unwrap();
    if let Some(p) = path_file {
        std::fs::write(root.join("etc/ld-musl-x86_64.path"), p).unwrap();
    }
    (t, root)
}

/// The real loader's list for `file`, in the chroot.
fn oracle(root: &Path, file: &str, library_path: Option<&str>) -> Libs {
    // No PATH to look it up by: the environment is cleared.
    let mut c = Command::new("/usr/sbin/chroot");
    c.arg(root).args([MUSL_LOADER, "--list", file]).env_clear();
    if let Some(lp) = library_path {
        c.env("LD_LIBRARY_PATH", lp);
    }
    let o = run(&mut c);
    let mut l = Libs::default();
    for line in stdout(&o).lines() {
        // The loader's own first line has no "=>".
        let Some((name, rest)) = line.trim().split_once(" => ") else {
            continue;
        };
        let path = rest.split(" (0x").next().unwrap_or(rest);
        l.found.insert((name.to_string(), path.to_string()));
    }
    for line in stderr(&o).lines() {
        if let Some(rest) = line.strip_prefix("Error loading shared library ") {
            l.failed.insert(rest.split(": ").next().unwrap().to_string());
        }
    }
    l
}

/// ldcheck's JSON report for `paths` in the root, every file judged.
fn ldcheck_json(root: &Path, paths: &[&str], extra: &[&str]) -> (serde_json::Value, i32) {
    let o = run(Command::new(bin("ldcheck"))
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("LDCHECK_LIBC")
        .arg("--root")
        .arg(root)
        .args(["--format", "json", "--each-file"])
        .args(extra)
        .args(paths));
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&o), stderr(&o)));
    (v, o.status.code().unwrap_or(-1))
}

/// Per entry point, what ldcheck says it loads.
fn entries(v: &serde_json::Value) -> BTreeMap<String, Libs> {
    let mut m = BTreeMap::new();
    for e in v["entries"].as_array().unwrap() {
        let mut l = Libs::default();
        for lib in e["libraries"].as_array().unwrap() {
            let name = lib["soname"].as_str().unwrap().to_string();
            match lib["path"].as_str() {
                Some(p) => {
                    l.found.insert((name, p.to_string()));
                }
                None => {
                    l.failed.insert(name);
                }
            }
        }
        m.insert(e["path"].as_str().unwrap().to_string(), l);
    }
    m
}

/// Run ldcheck and the loader on every file ldcheck judged; panics with
/// every disagreement. Returns ldcheck's report, exit status and entries.
fn agree(
    root: &Path,
    paths: &[&str],
    library_path: Option<&str>,
) -> (serde_json::Value, i32, BTreeMap<String, Libs>) {
    let extra: Vec<&str> = library_path
        .map(|p| vec!["--library-path", p])
        .unwrap_or_default();
    let (v, code) = ldcheck_json(root, paths, &extra);
    assert_eq!(v["libc"], "musl", "{v:#}");
    let mine = entries(&v);
    assert!(!mine.is_empty(), "ldcheck judged nothing: {v:#}");
    let mut bad = Vec::new();
    for (file, l) in &mine {
        let real = oracle(root, file, library_path);
        if *l != real {
            bad.push(format!(
                "{file}:\n  ldcheck only: {:?} {:?}\n  musl only:    {:?} {:?}",
                l.found.difference(&real.found).collect::<Vec<_>>(),
                l.failed.difference(&real.failed).collect::<Vec<_>>(),
                real.found.difference(&l.found).collect::<Vec<_>>(),
                real.failed.difference(&l.failed).collect::<Vec<_>>(),
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} disagreements with musl's loader:\n{}",
        bad.len(),
        bad.join("\n")
    );
    (v, code, mine)
}

/// Compile `src` with `cc` into `out` (inside the root), with `args`;
/// runs in `cwd` so relative library paths are recorded as written.
fn cc(cc: &str, cwd: &Path, src: &str, out: &Path, args: &[&str]) {
    let dir = TempDir::new("ldcheck-musl-src");
    let c = dir.join("x.c");
    std::fs::write(&c, src).unwrap();
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let o = run(Command::new(cc)
        .current_dir(cwd)
        .arg("-o")
        .arg(out)
        .arg(&c)
        .args(args));
    assert!(o.status.success(), "{cc} {}: {}", out.display(), stderr(&o));
}

/// A shared library exporting `f` (+ `calls` of its own needs).
fn lib(root: &Path, at: &str, soname: Option<&str>, f: &str, links: &[&str]) {
    let soname = soname.map(|s| format!("-Wl,-soname,{s}"));
    let mut args = vec!["-shared", "-fPIC"];
    args.extend(soname.as_deref());
    args.extend(links);
    cc(
        "musl-gcc",
        root,
        &format!("int {f}(void){{return 1;}}"),
        &root.join(at.trim_start_matches('/')),
        &args,
    );
}

/// A program calling each of `fs`, linked with `links`.
fn exe(root: &Path, at: &str, fs: &[&str], links: &[&str]) {
    let decls: String = fs.iter().map(|f| format!("int {f}(void);")).collect();
    let calls: String = fs.iter().map(|f| format!("{f}()+")).collect();
    let src = format!("{decls} int main(void){{return {calls}0;}}");
    let mut args = vec!["-Wl,--allow-shlib-undefined"];
    args.extend(links);
    cc(
        "musl-gcc",
        root,
        &src,
        &root.join(at.trim_start_matches('/')),
        &args,
    );
}

#[test]
fn musl_gcc_fixtures_match_the_musl_loader() {
    let t = "musl_gcc_fixtures_match_the_musl_loader";
    let Some(loader) = host_musl(t) else { return };
    // The path file: a newline and a ':' separate, empty elements are skipped.
    let (_keep, root) = musl_root(&loader, Some("/opt/sys\n/usr/lib::/nonexistent\n"));
    let r = root.to_str().unwrap();
    let l = |d: &str| format!("-L{r}{d}");

    lib(&root, "/opt/rp/librp.so", None, "rp", &[]);
    lib(&root, "/opt/deep/libdeep.so", None, "deep", &[]);
    lib(&root, "/opt/sys/libsys.so", None, "sys", &[]);
    lib(&root, "/usr/lib/libver.so.1.0", None, "ver", &[]);
    std::os::unix::fs::symlink("libver.so.1.0", root.join("usr/lib/libver.so.1")).unwrap();
    std::os::unix::fs::symlink("libver.so.1.0", root.join("usr/lib/libalias.so")).unwrap();
    // librun needs libchain, which only the program's DT_RUNPATH finds:
    // musl searches the paths of every object up the chain (glibc would not).
    lib(&root, "/opt/app/lib/libchain.so", None, "chain", &[]);
    lib(
        &root,
        "/opt/app/lib/librun.so",
        None,
        "run",
        &[&l("/opt/app/lib"), "-lchain"],
    );
    // The same name in LD_LIBRARY_PATH and in DT_RPATH.
    lib(&root, "/opt/lp/liblp.so", None, "lp", &[]);
    lib(&root, "/opt/rp/liblp.so", None, "lp", &[]);
    lib(&root, "/opt/gone/libgone.so", None, "gone", &[]);
    lib(&root, "/opt/pl/libpath.so", None, "pathlib", &[]);

    exe(
        &root,
        "/opt/app/rpath",
        &["rp", "deep"],
        &[
            &l("/opt/rp"),
            &l("/opt/deep"),
            "-lrp",
            "-ldeep",
            "-Wl,--disable-new-dtags,-rpath,/opt/rp:$ORIGIN/../deep",
        ],
    );
    exe(
        &root,
        "/opt/app/runpath",
        &["run"],
        &[
            &l("/opt/app/lib"),
            "-lrun",
            "-Wl,--enable-new-dtags,-rpath,${ORIGIN}/lib",
        ],
    );
    exe(
        &root,
        "/opt/app/system",
        &["sys", "ver", "gone"],
        &[
            &l("/opt/sys"),
            &l("/usr/lib"),
            &l("/opt/gone"),
            "-lsys",
            "-l:libver.so.1",
            "-lgone",
        ],
    );
    // libver.so.1 and libalias.so are one file: loaded once.
    exe(
        &root,
        "/opt/app/alias",
        &["ver"],
        &[&l("/usr/lib"), "-l:libver.so.1", "-l:libalias.so"],
    );
    exe(
        &root,
        "/opt/app/ldpath",
        &["lp"],
        &[&l("/opt/lp"), "-llp", "-Wl,-rpath,/opt/rp"],
    );
    // A path with a token musl does not know is ignored whole.
    exe(
        &root,
        "/opt/app/badtoken",
        &["rp"],
        &[&l("/opt/rp"), "-lrp", "-Wl,-rpath,$LIB/x:/opt/rp"],
    );
    // A DT_NEEDED with a slash (relative: from the loader's cwd, /).
    exe(&root, "/opt/app/bypath", &["pathlib"], &["opt/pl/libpath.so"]);
    // glibc's names for libm and libpthread are musl's libc, the loader.
    lib(&root, "/opt/stub/libm.so.6", Some("libm.so.6"), "stubm", &[]);
    lib(
        &root,
        "/opt/stub/libpthread.so.0",
        Some("libpthread.so.0"),
        "stubp",
        &[],
    );
    exe(
        &root,
        "/opt/app/libm",
        &["stubm", "stubp"],
        &[&l("/opt/stub"), "-l:libm.so.6", "-l:libpthread.so.0"],
    );
    std::fs::remove_dir_all(root.join("opt/stub")).unwrap();
    // Not found at all.
    std::fs::remove_file(root.join("opt/gone/libgone.so")).unwrap();

    let (v, code, mine) = agree(&root, &["/opt", "/usr/lib"], None);
    assert_eq!(code, 1, "libgone.so is missing: {v:#}");
    let missing: Vec<&str> = v["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["soname"].as_str().unwrap())
        .collect();
    // libchain.so only for librun.so judged on its own (--each-file): the
    // program that loads it finds it by its own DT_RUNPATH.
    assert_eq!(missing, ["libchain.so", "libgone.so", "librp.so"], "{v:#}");
    assert_eq!(
        v["missing"][0]["needed_by"],
        serde_json::json!(["/opt/app/lib/librun.so"]),
        "{v:#}"
    );
    // What each fixture is for, said by the loader and ldcheck alike.
    let has = |f: &str, n: &str, p: &str| mine[f].found.contains(&(n.to_string(), p.to_string()));
    assert!(
        has("/opt/app/rpath", "libdeep.so", "/opt/app/../deep/libdeep.so"),
        "{mine:?}"
    );
    assert!(
        has("/opt/app/runpath", "libchain.so", "/opt/app/lib/libchain.so"),
        "{mine:?}"
    );
    assert!(
        has("/opt/app/system", "libsys.so", "/opt/sys/libsys.so"),
        "{mine:?}"
    );
    assert!(has("/opt/app/ldpath", "liblp.so", "/opt/rp/liblp.so"), "{mine:?}");
    assert!(mine["/opt/app/badtoken"].failed.contains("librp.so"), "{mine:?}");
    assert!(
        has("/opt/app/bypath", "opt/pl/libpath.so", "opt/pl/libpath.so"),
        "{mine:?}"
    );
    assert!(has("/opt/app/libm", "libm.so.6", MUSL_LOADER), "{mine:?}");
    assert!(has("/opt/app/libm", "libpthread.so.0", MUSL_LOADER), "{mine:?}");
    assert!(
        has("/opt/app/alias", "libver.so.1", "/usr/lib/libver.so.1"),
        "{mine:?}"
    );
    assert!(
        !mine["/opt/app/alias"]
            .found
            .iter()
            .any(|(n, _)| n == "libalias.so"),
        "{mine:?}"
    );

    // LD_LIBRARY_PATH comes before DT_RPATH.
    let (_, _, mine) = agree(&root, &["/opt", "/usr/lib"], Some("/opt/lp"));
    assert!(
        has_in(&mine, "/opt/app/ldpath", "liblp.so", "/opt/lp/liblp.so"),
        "{mine:?}"
    );

    // Without a path file: /lib:/usr/local/lib:/usr/lib; /opt/sys is not searched.
    std::fs::remove_file(root.join("etc/ld-musl-x86_64.path")).unwrap();
    let (_, _, mine) = agree(&root, &["/opt/app/system"], None);
    assert!(mine["/opt/app/system"].failed.contains("libsys.so"), "{mine:?}");
    assert!(
        has_in(&mine, "/opt/app/system", "libver.so.1", "/usr/lib/libver.so.1"),
        "{mine:?}"
    );

    // An empty path file: nothing is searched, not even the default.
    std::fs::write(root.join("etc/ld-musl-x86_64.path"), "").unwrap();
    let (_, _, mine) = agree(&root, &["/opt/app/system"], None);
    assert!(mine["/opt/app/system"].failed.contains("libver.so.1"), "{mine:?}");

    // The same tree judged by glibc's rules on request: no musl loader logic.
    let (v, _) = ldcheck_json(&root, &["/opt/app/system"], &["--libc", "glibc"]);
    assert_eq!(v["libc"], "glibc", "{v:#}");
}

fn has_in(m: &BTreeMap<String, Libs>, f: &str, n: &str, p: &str) -> bool {
    m[f].found.contains(&(n.to_string(), p.to_string()))
}

#[test]
fn musllinux_wheel_matches_the_musl_loader() {
    let t = "musllinux_wheel_matches_the_musl_loader";
    let Some(loader) = host_musl(t) else { return };
    if !have("python3", &["-m", "pip", "--version"]) {
        skip(t, "needs python3 with pip (python3-pip)");
        return;
    }
    let Some(whl) = wheel(t, WHEEL, &MUSLLINUX_X86_64) else {
        return;
    };
    // Alpine's own path file.
    let (_keep, root) = musl_root(&loader, Some("/lib:/usr/local/lib:/usr/lib\n"));
    unpack_wheel(&whl, &root.join("usr/lib/python3.11/site-packages"));
    let (v, code, mine) = agree(&root, &["/usr/lib/python3.11/site-packages"], None);
    // The one library the wheel leaves to the system (Alpine's zlib).
    assert_eq!(code, 1, "{v:#}");
    let missing: Vec<&str> = v["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["soname"].as_str().unwrap())
        .collect();
    assert_eq!(missing, ["libz.so.1"], "{v:#}");
    // Every shared object of the wheel was compared, and the bundled
    // libraries were found next to each other.
    let sos = mine.keys().filter(|k| k.contains(".so")).count();
    assert!(sos >= 20, "{sos} objects: {:?}", mine.keys());
    let bundled = mine
        .values()
        .flat_map(|l| &l.found)
        .filter(|(_, p)| p.contains("/pillow.libs/"))
        .count();
    assert!(bundled > 0, "{mine:?}");
}

#[test]
fn glibc_files_in_a_musl_root_are_named_with_their_loader() {
    let t = "glibc_files_in_a_musl_root_are_named_with_their_loader";
    let Some(loader) = host_musl(t) else { return };
    if !have("gcc", &["--version"]) {
        skip(t, "needs gcc");
        return;
    }
    let (_keep, root) = musl_root(&loader, None);
    // Linked against glibc: PT_INTERP /lib64/ld-linux-x86-64.so.2, GLIBC_ versions.
    cc(
        "gcc",
        &root,
        "#include <stdio.h>\nint main(int c,char**v){printf(\"%s\\n\",v[0]);return 0;}",
        &root.join("opt/g/hello"),
        &[],
    );
    // A manylinux-style extension module: no PT_INTERP, GLIBC_ versions.
    cc(
        "gcc",
        &root,
        "#include <string.h>\nvoid cp(char*d,const char*s,unsigned long n){memcpy(d,s,n);}",
        &root.join("opt/g/ext.so"),
        &["-shared", "-fPIC"],
    );
    let (v, code, _) = agree(&root, &["/opt/g"], None);
    assert_eq!(code, 1, "{v:#}");
    let w = &v["wrong_libc"];
    assert_eq!(w.as_array().unwrap().len(), 2, "{v:#}");
    assert_eq!(w[0]["path"], "/opt/g/ext.so", "{v:#}");
    assert_eq!(w[1]["path"], "/opt/g/hello", "{v:#}");
    for x in w.as_array().unwrap() {
        assert_eq!(x["expects"], "/lib64/ld-linux-x86-64.so.2", "{v:#}");
    }
    assert!(v["missing"].as_array().unwrap().is_empty(), "{v:#}");
    let o = run(Command::new(bin("ldcheck"))
        .arg("--root")
        .arg(&root)
        .arg("/opt/g"));
    let out = stdout(&o);
    assert!(
        out.contains(
            "glibc-linked in a musl root: /opt/g/hello expects glibc's loader /lib64/ld-linux-x86-64.so.2, \
             which this root lacks: install gcompat (apk add gcompat) or use a glibc-based image"
        ),
        "{out}"
    );
    // With glibc's loader in the root (gcompat's), the file runs.
    std::fs::create_dir_all(root.join("lib64")).unwrap();
    std::os::unix::fs::symlink(MUSL_LOADER, root.join("lib64/ld-linux-x86-64.so.2")).unwrap();
    let (v, code) = ldcheck_json(&root, &["/opt/g"], &[]);
    assert_eq!((code, v["libc"].as_str()), (0, Some("musl")), "{v:#}");
}

/// Validate SARIF text against the committed schema; returns the error.
fn sarif_errors(doc: &str) -> Option<String> {
    let py = repo().join(".cache/validate/bin/python");
    let schema = repo().join("tests/fixtures/sarif-schema-2.1.0.json");
    let code = "import json,sys,jsonschema\n\
                s=json.load(open(sys.argv[1])); d=json.load(sys.stdin)\n\
                v=jsonschema.Draft4Validator(s)\n\
                es=[f'{list(e.absolute_path)}: {e.message}' for e in v.iter_errors(d)]\n\
                print('\\n'.join(es)); sys.exit(1 if es else 0)";
    let mut child = Command::new(py)
        .args(["-c", code])
        .arg(schema)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), doc.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    (!o.status.success()).then(|| format!("{}{}", stdout(&o), stderr(&o)))
}

#[test]
fn sarif_output_is_valid_sarif_2_1_0() {
    let t = "sarif_output_is_valid_sarif_2_1_0";
    if !need_root(t) {
        return;
    }
    if !repo().join(".cache/validate/bin/python").exists() || !have("gcc", &["--version"]) {
        skip(t, "needs gcc and the .cache/validate venv (make setup)");
        return;
    }
    if !have("unshare", &["--version"]) {
        skip(t, "needs unshare (util-linux)");
        return;
    }
    // A glibc tree: a library whose version the program needs is replaced
    // by one without it (version error), a library deleted (missing), and
    // a CUDA runtime whose driver is too old (GPU finding).
    let tmp = TempDir::new("ldcheck-sarif");
    let root = tmp.join("r");
    let d = root.join("opt/x");
    std::fs::create_dir_all(&d).unwrap();
    let vs = tmp.join("v.map");
    std::fs::write(&vs, "V_1 { global: v1; }; V_2 { global: v2; } V_1;").unwrap();
    let ld = format!("-Wl,--version-script,{}", vs.display());
    let dl = d.to_str().unwrap();
    cc(
        "gcc",
        &d,
        "int v1(void){return 1;} int v2(void){return 2;}",
        &d.join("libv.so"),
        &["-shared", "-fPIC", &ld],
    );
    cc(
        "gcc",
        &d,
        "int g(void){return 1;}",
        &d.join("libgone.so"),
        &["-shared", "-fPIC"],
    );
    cc(
        "gcc",
        &d,
        "int cudaRuntimeGetVersion(int*v){*v=12040;return 0;}",
        &d.join("libcudart.so.12"),
        &["-shared", "-fPIC", "-Wl,-soname,libcudart.so.12"],
    );
    cc(
        "gcc",
        &d,
        "int v2(void); int g(void); int cudaRuntimeGetVersion(int*); int main(void){int x; return v2()+g()+cudaRuntimeGetVersion(&x);}",
        &d.join("app with space"),
        &[&format!("-L{dl}"), "-lv", "-lgone", "-l:libcudart.so.12", "-Wl,-rpath,$ORIGIN"],
    );
    std::fs::write(tmp.join("v1.map"), "V_1 { global: v1; v2; };").unwrap();
    let ld1 = format!("-Wl,--version-script,{}", tmp.join("v1.map").display());
    cc(
        "gcc",
        &d,
        "int v1(void){return 1;} int v2(void){return 2;}",
        &d.join("libv.so"),
        &["-shared", "-fPIC", &ld1],
    );
    std::fs::remove_file(d.join("libgone.so")).unwrap();
    // The host's glibc, so that only the planted faults are found.
    for f in ["lib64/ld-linux-x86-64.so.2", "lib/x86_64-linux-gnu/libc.so.6"] {
        let dst = root.join(f);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(Path::new("/").join(f), dst).unwrap();
    }
    let proc = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.57.02  Tue Jul 13 16:14:05 UTC 2021";
    let o = run(with_driver(Driver::Proc(proc), false)
        .arg(bin("ldcheck"))
        .arg("--root")
        .arg(&root)
        .args(["--format", "sarif", "/opt/x"]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let doc = stdout(&o);
    if let Some(e) = sarif_errors(&doc) {
        panic!("not valid SARIF 2.1.0: {e}\n{doc}");
    }
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    let run0 = &v["runs"][0];
    assert_eq!(run0["tool"]["driver"]["name"], "ldcheck");
    let results = run0["results"].as_array().unwrap();
    let ids: BTreeSet<&str> = results.iter().map(|r| r["ruleId"].as_str().unwrap()).collect();
    let want: BTreeSet<&str> = ["missing-library", "version-missing", "gpu-driver-too-old"].into();
    assert_eq!(ids, want, "{doc}");
    for r in results {
        let id = r["ruleId"].as_str().unwrap();
        let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap();
        let want = if id.starts_with("gpu-") {
            "opt/x/libcudart.so.12"
        } else {
            "opt/x/app%20with%20space"
        };
        assert_eq!(uri, want, "{doc}");
        let rules = run0["tool"]["driver"]["rules"].as_array().unwrap();
        assert_eq!(rules[r["ruleIndex"].as_u64().unwrap() as usize]["id"], id);
    }
    // A broken document is refused: the validation can fail.
    let broken = doc.replace("\"2.1.0\"", "\"2.0.0\"");
    assert!(sarif_errors(&broken).is_some());
}

#[test]
fn bad_libc_and_format_values_are_usage_errors() {
    let o = run(Command::new(bin("ldcheck")).args(["--libc", "uclibc", "/"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--libc") && stderr(&o).contains("glibc or musl"),
        "{}",
        stderr(&o)
    );
    let o = run(Command::new(bin("ldcheck")).env("LDCHECK_LIBC", "bad").arg("/"));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("ldcheck: LDCHECK_LIBC="), "{}", stderr(&o));
    let o = run(Command::new(bin("ldcheck")).args(["--format", "sarf", "/"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("sarif"), "{}", stderr(&o));
}
