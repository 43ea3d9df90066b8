//! Helpers for the ldcheck tests (ldcheck.rs, ldcheck_gpu.rs, ldcheck_musl.rs,
//! ldcheck_aarch64.rs): the cached Debian roots built by scripts/rootfs.sh,
//! private copies of them, wheels from PyPI downloaded once into a cache, and
//! ldcheck run with a simulated host GPU driver.

use crate::{bin, have, need_root, repo, run, skip, stderr, stdout, TempDir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Debian minbase root (x86_64).
pub const MINBASE: &str = "/var/cache/dockhand/rootfs-minbase";
/// The Debian arm64 root (debootstrap's first stage, ldconfig run).
pub const ARM64: &str = "/var/cache/dockhand/rootfs-arm64";
/// The qemu that runs the arm64 root's programs, copied into that root.
pub const QEMU: &str = "/usr/bin/qemu-aarch64-static";
/// Wheels downloaded from PyPI, kept between runs.
pub const WHEELS: &str = "/var/cache/dockhand/wheels";

/// The root at `dir`, built by scripts/rootfs.sh (with ROOTFS_ARCH=`arch`
/// when given) if missing; None after `skip` when the script fails.
fn cached_root(test: &str, dir: &str, arch: Option<&str>) -> Option<PathBuf> {
    let mut c = Command::new(repo().join("scripts/rootfs.sh"));
    if let Some(a) = arch {
        c.env("ROOTFS_ARCH", a);
    }
    let o = run(c.arg(dir));
    if !o.status.success() {
        skip(test, &format!("scripts/rootfs.sh failed: {}", stderr(&o).trim()));
        return None;
    }
    Some(PathBuf::from(dir))
}

/// The cached minbase root, built when missing (needs root and chroot).
pub fn minbase(test: &str) -> Option<PathBuf> {
    if !need_root(test) {
        return None;
    }
    if !have("chroot", &["--version"]) {
        skip(test, "needs chroot (coreutils)");
        return None;
    }
    cached_root(test, MINBASE, None)
}

/// The cached arm64 root, built when missing (needs root and qemu).
pub fn arm64_root(test: &str) -> Option<PathBuf> {
    if !need_root(test) {
        return None;
    }
    if !Path::new(QEMU).is_file() {
        skip(test, "needs qemu-user-static (make setup installs it)");
        return None;
    }
    cached_root(test, ARM64, Some("arm64"))
}

/// A private copy of a cached root, at `r` in the returned directory: hard
/// links (tests only delete files or add new ones; ldconfig replaces its
/// cache by rename), so the cached root is never modified; a full copy when
/// hard links cannot be made.
pub fn copy_root(src: &Path) -> TempDir {
    let t = TempDir::new("ldcheck-root");
    let dst = t.join("r");
    let ok = Command::new("cp")
        .arg("-al")
        .arg(src)
        .arg(&dst)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        let _ = std::fs::remove_dir_all(&dst);
        let s = Command::new("cp").arg("-a").arg(src).arg(&dst).status().unwrap();
        assert!(s.success(), "cannot copy {}", src.display());
    }
    t
}

/// Which wheels to download: pip's `--platform` tags, and words a cached
/// wheel's file name must contain to be one of them.
pub struct Platform {
    pub tags: &'static [&'static str],
    pub name_has: &'static [&'static str],
}

pub const MANYLINUX_X86_64: Platform = Platform {
    tags: &["manylinux2014_x86_64", "manylinux_2_17_x86_64"],
    name_has: &["manylinux", "x86_64"],
};

pub const MANYLINUX_AARCH64: Platform = Platform {
    tags: &["manylinux2014_aarch64", "manylinux_2_17_aarch64"],
    name_has: &["manylinux", "aarch64"],
};

pub const MUSLLINUX_X86_64: Platform = Platform {
    tags: &["musllinux_1_2_x86_64"],
    name_has: &["musllinux", "x86_64"],
};

/// The wheel of `spec` (`project` or `project==version`) for `platform`
/// (CPython 3.11), downloaded once into WHEELS; None after `skip` when pip
/// cannot download it.
pub fn wheel(test: &str, spec: &str, platform: &Platform) -> Option<PathBuf> {
    std::fs::create_dir_all(WHEELS).unwrap();
    // A wheel's file name starts `project_name-` or `project_name-version-`.
    let prefix = match spec.split_once("==") {
        Some((p, v)) => format!("{}-{v}-", p.replace('-', "_")),
        None => format!("{}-", spec.replace('-', "_")),
    }
    .to_lowercase();
    let find = || {
        std::fs::read_dir(WHEELS)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let n = p.file_name().unwrap().to_string_lossy().to_lowercase();
                n.starts_with(&prefix)
                    && n.ends_with(".whl")
                    && platform.name_has.iter().all(|w| n.contains(w))
            })
    };
    if find().is_none() {
        let mut c = Command::new("python3");
        c.args(["-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]);
        for t in platform.tags {
            c.args(["--platform", t]);
        }
        let o = run(c.args(["--python-version", "3.11", "-d", WHEELS, spec]));
        if !o.status.success() {
            skip(
                test,
                &format!("pip download {spec} failed: {}", stderr(&o).trim()),
            );
            return None;
        }
    }
    find()
}

/// Unpack a wheel into `dest` (created when missing).
pub fn unpack_wheel(whl: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let o = run(Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(whl)
        .arg(dest));
    assert!(o.status.success(), "unzip {}: {}", whl.display(), stderr(&o));
}

/// The wheel of `project` for `platform`, unpacked into the root under
/// /opt/venv/site-packages.
pub fn install_wheel(test: &str, root: &Path, project: &str, platform: &Platform) -> Option<()> {
    let whl = wheel(test, project, platform)?;
    unpack_wheel(&whl, &root.join("opt/venv/site-packages"));
    Some(())
}

/// The host's NVIDIA driver as ldcheck is to see it.
pub enum Driver<'a> {
    /// None visible.
    Absent,
    /// /proc/driver/nvidia/version holds this text.
    Proc(&'a str),
    /// /sys/module/nvidia/version holds this version.
    Sys(&'a str),
}

/// A command that runs the program and arguments added to it in a private
/// mount namespace whose /proc/driver and /sys/module show `driver` and
/// nothing else of the host's, with /dev/nvidia0 and /dev/nvidiactl when
/// `devices`: what the host of a GPU container shows. Needs root and
/// unshare.
pub fn with_driver(driver: Driver, devices: bool) -> Command {
    let (dir, text) = match driver {
        Driver::Absent => ("", ""),
        Driver::Proc(t) => ("/proc/driver/nvidia", t),
        Driver::Sys(t) => ("/sys/module/nvidia", t),
    };
    // $1: the directory of the version file ("" for none); $2: its text;
    // $3: "devices" or ""; then the command.
    let script = "set -e; mount -t tmpfs none /proc/driver; mount -t tmpfs none /sys/module; \
                  if [ -n \"$1\" ]; then mkdir \"$1\"; printf '%s\\n' \"$2\" > \"$1/version\"; fi; \
                  if [ -n \"$3\" ]; then mount -t tmpfs none /dev; : > /dev/nvidia0; : > /dev/nvidiactl; fi; \
                  shift 3; exec \"$@\"";
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"])
        .args([dir, text, if devices { "devices" } else { "" }]);
    c
}

/// ldcheck with `args`, then `path`, on `root`, under `with_driver`;
/// asserts that it wrote nothing on stderr. Returns (stdout, exit status).
pub fn ldcheck_with_driver(
    root: &Path,
    driver: Driver,
    devices: bool,
    args: &[&str],
    path: &str,
) -> (String, i32) {
    let o = run(with_driver(driver, devices)
        .arg(bin("ldcheck"))
        .env_remove("LD_LIBRARY_PATH")
        .arg("--root")
        .arg(root)
        .args(args)
        .arg(path));
    let err = stderr(&o);
    assert!(err.is_empty(), "stderr: {err}");
    (stdout(&o), o.status.code().unwrap_or(-1))
}
