//! ldcheck's GPU findings on driver stubs and cuda-compat libraries, in a
//! copy of the Debian minbase root (scripts/rootfs.sh) with stand-ins built
//! by gcc: the toolkit's stub libcuda.so (soname libcuda.so.1) and a
//! program linked against it. The host's driver is simulated by
//! `ldroots::ldcheck_with_driver` (tests/ldroots.rs): a private mount
//! namespace whose /proc/driver/nvidia/version says what the test wants
//! (or, for "no driver", holds nothing).

use dockhand_tests::ldroots::*;
use dockhand_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const STUBS: &str = "/usr/local/cuda-12.4/targets/x86_64-linux/lib/stubs";

/// A copy of the cached minbase root (needs gcc and unshare too).
fn root(test: &str) -> Option<(TempDir, PathBuf)> {
    if !need_root(test) {
        return None;
    }
    for cmd in ["gcc", "unshare"] {
        if !have(cmd, &["--version"]) {
            skip(test, &format!("needs {cmd}"));
            return None;
        }
    }
    let t = copy_root(&minbase(test)?);
    let r = t.join("r");
    Some((t, r))
}

fn gcc(args: &[&str]) {
    let o = run(Command::new("gcc").args(args));
    assert!(o.status.success(), "gcc {args:?}: {}", stderr(&o));
}

/// The toolkit's stub, at `dir/libcuda.so` in the root, and /opt/g/app
/// linked against it with `link` flags (a DT_RUNPATH, or nothing).
fn build(root: &Path, dir: &str, link: &[&str]) {
    let src = TempDir::new("ldcheck-gpu-src");
    std::fs::write(src.join("c.c"), "int cuInit(unsigned f){return (int)f;}").unwrap();
    std::fs::write(
        src.join("m.c"),
        "int cuInit(unsigned); int main(void){return cuInit(0);}",
    )
    .unwrap();
    let stub = root.join(dir.trim_start_matches('/'));
    std::fs::create_dir_all(&stub).unwrap();
    let lib = stub.join("libcuda.so");
    let c = src.join("c.c");
    gcc(&[
        "-shared",
        "-fPIC",
        "-Wl,-soname,libcuda.so.1",
        "-o",
        lib.to_str().unwrap(),
        c.to_str().unwrap(),
    ]);
    std::fs::create_dir_all(root.join("opt/g")).unwrap();
    let app = root.join("opt/g/app");
    let m = src.join("m.c");
    let mut args = vec![
        "-o",
        app.to_str().unwrap(),
        m.to_str().unwrap(),
        lib.to_str().unwrap(),
    ];
    args.extend_from_slice(link);
    gcc(&args);
}

/// ldcheck on /opt/g with the host's driver at `driver` (None: no driver
/// visible), in a private mount namespace; (stdout, exit status).
fn ldcheck(root: &Path, driver: Option<&str>, args: &[&str]) -> (String, i32) {
    let text = driver.map(|d| format!("NVRM version: NVIDIA UNIX x86_64 Kernel Module  {d}  Release Build"));
    let driver = match &text {
        Some(t) => Driver::Proc(t),
        None => Driver::Absent,
    };
    ldcheck_with_driver(root, driver, false, args, "/opt/g")
}

fn json(root: &Path, driver: Option<&str>, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["--format", "json"];
    a.extend_from_slice(args);
    let (out, _) = ldcheck(root, driver, &a);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn cuda_stub_reached_through_runpath_is_flagged() {
    let t = "cuda_stub_reached_through_runpath_is_flagged";
    let Some((_keep, root)) = root(t) else { return };
    let rp = format!("-Wl,-rpath,{STUBS}");
    build(&root, STUBS, &[&rp]);
    let (out, code) = ldcheck(&root, None, &[]);
    assert_eq!(code, 1, "{out}");
    let want = format!(
        "gpu: CUDA driver stub {STUBS}/libcuda.so is on the search path (DT_RUNPATH of /opt/g/app: {STUBS}): "
    );
    assert!(out.contains(&want), "{out}");
    assert!(out.contains("error 34 (CUDA_ERROR_STUB_LIBRARY)"), "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap()
            .ends_with(", 1 CUDA driver stub on a search path"),
        "{out}"
    );
    let v = json(&root, None, &[]);
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(
        v["gpu"]["stubs"][0]["reached_by"], "DT_RUNPATH of /opt/g/app",
        "{v}"
    );
    assert_eq!(v["gpu"]["stubs"][0]["element"], STUBS, "{v}");
    // SARIF: one result for the stub, located at the stub file.
    let (out, _) = ldcheck(&root, None, &["--format", "sarif"]);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let stubs: Vec<_> = s["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["ruleId"] == "cuda-driver-stub")
        .collect();
    assert_eq!(stubs.len(), 1, "{out}");
    assert_eq!(
        stubs[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        format!("{}/libcuda.so", STUBS.trim_start_matches('/')),
        "{out}"
    );

    // $ORIGIN spelled: the element as written, the directory it reaches.
    let (_keep2, root2) = self::root(t).unwrap();
    build(&root2, "/opt/g/stubs", &["-Wl,-rpath,$ORIGIN/stubs"]);
    let v = json(&root2, None, &[]);
    assert_eq!(v["gpu"]["stubs"][0]["library"], "/opt/g/stubs/libcuda.so", "{v}");
    assert_eq!(v["gpu"]["stubs"][0]["element"], "$ORIGIN/stubs", "{v}");

    // The same program with a DT_RUNPATH elsewhere: libcuda.so.1 comes from
    // the driver at run time, nothing to flag.
    let (_keep3, root3) = self::root(t).unwrap();
    build(&root3, STUBS, &["-Wl,-rpath,/opt/lib"]);
    let (out, code) = ldcheck(&root3, None, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("driver stub"), "{out}");
    assert!(
        out.contains("provided by the driver at run time: libcuda.so.1"),
        "{out}"
    );
}

#[test]
fn cuda_stub_reached_through_ld_library_path_is_flagged() {
    let t = "cuda_stub_reached_through_ld_library_path_is_flagged";
    let Some((_keep, root)) = root(t) else { return };
    build(&root, "/usr/local/cuda-12.4/lib64/stubs", &[]);
    let lp = "/opt/x:/usr/local/cuda-12.4/lib64/stubs/";
    let (out, code) = ldcheck(&root, None, &["--library-path", lp]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "gpu: CUDA driver stub /usr/local/cuda-12.4/lib64/stubs/libcuda.so is on the search path \
             (LD_LIBRARY_PATH: /usr/local/cuda-12.4/lib64/stubs/)"
        ),
        "{out}"
    );
    // Without it: nothing.
    let (out, code) = ldcheck(&root, None, &["--library-path", "/opt/x"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("driver stub"), "{out}");
}

/// A stubs directory in ld.so.conf: ldconfig maps libcuda.so.1 to the stub
/// (the real loader then loads it, as its trace shows), and ldcheck names
/// the configuration file.
#[test]
fn cuda_stub_reached_through_ld_so_conf_is_flagged() {
    let t = "cuda_stub_reached_through_ld_so_conf_is_flagged";
    let Some((_keep, root)) = root(t) else { return };
    build(&root, STUBS, &[]);
    std::fs::write(
        root.join("etc/ld.so.conf.d/zz-cuda-stubs.conf"),
        format!("# toolkit stubs\n{STUBS}\n"),
    )
    .unwrap();
    // Before ldconfig: the configuration alone (the container toolkit runs ldconfig).
    let (out, code) = ldcheck(&root, None, &[]);
    assert_eq!(code, 1, "{out}");
    let want = format!(
        "gpu: CUDA driver stub {STUBS}/libcuda.so is on the search path (/etc/ld.so.conf.d/zz-cuda-stubs.conf: {STUBS})"
    );
    assert!(out.contains(&want), "{out}");
    let o = run(Command::new("chroot").arg(&root).arg("/sbin/ldconfig"));
    assert!(o.status.success(), "{}", stderr(&o));
    // The real loader takes the stub for libcuda.so.1.
    let o = run(Command::new("chroot").arg(&root).args([
        "env",
        "-i",
        "LD_TRACE_LOADED_OBJECTS=1",
        "/lib64/ld-linux-x86-64.so.2",
        "/opt/g/app",
    ]));
    assert!(
        stdout(&o).contains(&format!("libcuda.so.1 => {STUBS}/libcuda.so.1")),
        "{}",
        stdout(&o)
    );
    let v = json(&root, None, &[]);
    let stubs = v["gpu"]["stubs"].as_array().unwrap();
    assert!(
        stubs
            .iter()
            .any(|s| s["reached_by"] == "/etc/ld.so.conf.d/zz-cuda-stubs.conf"
                && s["library"] == format!("{STUBS}/libcuda.so.1")),
        "{v}"
    );
    let lib = v["entries"][0]["libraries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["soname"] == "libcuda.so.1")
        .cloned()
        .unwrap();
    assert_eq!(lib["path"], format!("{STUBS}/libcuda.so.1"), "{v}");
    assert_eq!(lib["found_by"], "ld.so.cache", "{v}");
}

/// cuda-compat's libcuda (/usr/local/cuda-12.4/compat, reached also as
/// /usr/local/cuda/compat) against the host's driver.
#[test]
fn cuda_compat_is_judged_against_the_host_driver() {
    let t = "cuda_compat_is_judged_against_the_host_driver";
    let Some((_keep, root)) = root(t) else { return };
    build(&root, "/usr/local/cuda-12.4/compat", &[]);
    let compat = root.join("usr/local/cuda-12.4/compat");
    std::fs::rename(compat.join("libcuda.so"), compat.join("libcuda.so.550.54.15")).unwrap();
    std::os::unix::fs::symlink("libcuda.so.550.54.15", compat.join("libcuda.so.1")).unwrap();
    std::os::unix::fs::symlink("cuda-12.4", root.join("usr/local/cuda")).unwrap();

    // An older host driver: forward compatibility, data-center GPUs only.
    let (out, code) = ldcheck(&root, Some("535.104.05"), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(
            "gpu: /usr/local/cuda/compat/libcuda.so.550.54.15 (550.54.15) is newer than this host's driver 535.104.05"
        ),
        "{out}"
    );
    assert!(out.contains("error 804"), "{out}");
    // Once, though two directory names reach it.
    assert_eq!(out.matches("libcuda.so.550.54.15 (").count(), 1, "{out}");
    let v = json(&root, Some("535.104.05"), &[]);
    assert_eq!(v["gpu"]["compat"][0]["verdict"], "forward-compatibility", "{v}");
    assert_eq!(v["gpu"]["compat"][0]["version"], "550.54.15", "{v}");
    assert_eq!(v["gpu"]["compat"].as_array().unwrap().len(), 1, "{v}");

    // The same driver, or a newer one: the host's libcuda is used.
    for d in ["550.54.15", "560.35.03"] {
        let (out, code) = ldcheck(&root, Some(d), &[]);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains(&format!(
                "(550.54.15) is not newer than this host's driver {d}: the driver's own libcuda is used"
            )),
            "{out}"
        );
    }
    // No driver visible: what to check on the GPU host.
    let (out, code) = ldcheck(&root, None, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("(550.54.15): no NVIDIA driver visible here; on the GPU host compare `nvidia-smi"),
        "{out}"
    );
    assert_eq!(json(&root, None, &[])["gpu"]["compat"][0]["verdict"], "no-driver");
}
