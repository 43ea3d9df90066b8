//! GPU awareness: the libraries the NVIDIA container toolkit injects at run
//! time, the CUDA runtime version a tree carries, and the CUDA minimum-driver
//! table checked against the host's driver.

use serde::Serialize;

/// Sonames the NVIDIA container toolkit mounts from the host driver at run
/// time (its "utility", "compute", "video", "graphics" and "display" lists).
const DRIVER_LIBS: &[&str] = &[
    "libcuda.so.1",
    "libcudadebugger.so.1",
    "libnvidia-ml.so.1",
    "libnvidia-ptxjitcompiler.so.1",
    "libnvidia-nvvm.so.4",
    "libnvidia-opencl.so.1",
    "libnvidia-cfg.so.1",
    "libnvidia-allocator.so.1",
    "libnvidia-encode.so.1",
    "libnvidia-opticalflow.so.1",
    "libnvcuvid.so.1",
    "libnvidia-fbc.so.1",
    "libnvidia-ifr.so.1",
    "libnvoptix.so.1",
    "libnvidia-ngx.so.1",
    "libGLX_nvidia.so.0",
    "libEGL_nvidia.so.0",
    "libGLESv2_nvidia.so.2",
    "libGLESv1_CM_nvidia.so.1",
    "libnvidia-egl-gbm.so.1",
    "libnvidia-egl-wayland.so.1",
];

/// Driver libraries whose soname carries the driver version (libnvidia-glcore.so.535.104.05).
const DRIVER_VERSIONED: &[&str] = &[
    "libnvidia-glcore.so.",
    "libnvidia-tls.so.",
    "libnvidia-glsi.so.",
    "libnvidia-eglcore.so.",
    "libnvidia-rtcore.so.",
    "libnvidia-glvkspirv.so.",
    "libnvidia-gpucomp.so.",
    "libnvidia-compiler.so.",
    "libnvidia-pkcs11.so.",
    "libnvidia-vulkan-producer.so.",
];

/// Whether the driver provides `soname` at run time.
pub fn driver_provided(soname: &str) -> bool {
    DRIVER_LIBS.contains(&soname) || DRIVER_VERSIONED.iter().any(|p| soname.starts_with(p))
}

/// Whether a file name says the tree carries CUDA (turns GPU mode on).
pub fn is_cuda_file(name: &str) -> bool {
    [
        "libcudart.so",
        "libcublas",
        "libcudnn",
        "libnccl",
        "libcufft",
        "libcusparse",
        "libnvrtc",
        "libnvJitLink",
        "libtorch_cuda",
    ]
    .iter()
    .any(|p| name.starts_with(p))
}

/// Minimum Linux driver for each CUDA release (NVIDIA's CUDA Toolkit release
/// notes, table "CUDA Toolkit and Corresponding Driver Versions": the lowest
/// of a release's rows, its GA or RC), newest first. The rows up to 12.4 are
/// tested against tests/fixtures/cuda-driver-table.txt, a copy of that table.
const MIN_DRIVER: &[(&str, &str)] = &[
    ("13.0", "580.65.06"),
    ("12.9", "575.51.03"),
    ("12.8", "570.26"),
    ("12.6", "560.28.03"),
    ("12.5", "555.42.02"),
    ("12.4", "550.54.14"),
    ("12.3", "545.23.06"),
    ("12.2", "535.54.03"),
    ("12.1", "530.30.02"),
    ("12.0", "525.60.13"),
    ("11.8", "520.61.05"),
    ("11.7", "515.43.04"),
    ("11.6", "510.39.01"),
    ("11.5", "495.29.05"),
    ("11.4", "470.42.01"),
    ("11.3", "465.19.01"),
    ("11.2", "460.27.03"),
    ("11.1", "455.23"),
    ("11.0", "450.36.06"),
    ("10.2", "440.33"),
    ("10.1", "418.39"),
    ("10.0", "410.48"),
];

/// Minor-version compatibility: any runtime of a major release runs on this driver or newer.
const MINOR_COMPAT: &[(u32, &str)] = &[(13, "580.65.06"), (12, "525.60.13"), (11, "450.80.02")];

/// Dotted numbers compared numerically ("535.104.05" < "535.129.03").
pub fn vkey(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriverCheck {
    pub cuda: String,
    /// The release's own minimum (or, for a bare major, the compatibility one).
    pub needs: Option<String>,
    /// The minimum for the major release through minor-version compatibility.
    pub minor_compat: Option<String>,
    /// "ok", "minor-version-compatibility", "too-old" or "unknown".
    pub verdict: &'static str,
}

/// Judge `driver` for CUDA runtime `cuda` ("12.4" or "12.4.127").
pub fn check_driver(cuda: &str, driver: &str) -> DriverCheck {
    let mm: Vec<&str> = cuda.split('.').take(2).collect();
    let major: u32 = mm.first().and_then(|m| m.parse().ok()).unwrap_or(0);
    let minor = mm.join(".");
    let d = vkey(driver);
    let exact = MIN_DRIVER.iter().find(|(c, _)| *c == minor).map(|(_, m)| *m);
    let compat = MINOR_COMPAT.iter().find(|(m, _)| *m == major).map(|(_, v)| *v);
    let (verdict, needs) = match (exact, compat) {
        (Some(m), _) if d >= vkey(m) => ("ok", Some(m)),
        (_, Some(c)) if d >= vkey(c) => ("minor-version-compatibility", exact.or(Some(c))),
        (Some(m), _) => ("too-old", Some(m)),
        (None, Some(c)) => ("too-old", Some(c)),
        // A release newer than the table: only the same driver major can tell.
        (None, None) => ("unknown", None),
    };
    DriverCheck {
        cuda: cuda.to_string(),
        needs: needs.map(str::to_string),
        minor_compat: compat.map(str::to_string),
        verdict,
    }
}

/// The driver version from /proc/driver/nvidia/version's text
/// ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug ...")
/// or /sys/module/nvidia/version ("535.104.05").
pub fn parse_driver_version(text: &str) -> Option<String> {
    let line = text
        .lines()
        .find(|l| l.contains("NVRM version") || !l.trim().is_empty())?;
    let rest = line.split("Kernel Module").nth(1).unwrap_or(line);
    rest.split_whitespace()
        .find(|w| {
            w.split('.').count() >= 2
                && w.split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
}

/// The CUDA version a file name or a wheel's dist-info directory tells:
/// libcudart.so.12.4.127 -> 12.4.127, libcudart.so.12 -> 12,
/// nvidia_cuda_runtime_cu12-12.9.79.dist-info -> 12.9.79.
pub fn cuda_version_from_name(name: &str) -> Option<String> {
    if let Some(v) = name.strip_prefix("libcudart.so.") {
        return (!v.is_empty() && v.split('.').all(|p| p.parse::<u32>().is_ok())).then(|| v.to_string());
    }
    let d = name.strip_suffix(".dist-info")?;
    let (pkg, ver) = d.split_once('-')?;
    if pkg.starts_with("nvidia_cuda_runtime_cu") {
        return Some(ver.to_string());
    }
    None
}

/// A wheel's name and version from its dist-info directory when it is an
/// NVIDIA CUDA wheel (nvidia_cublas_cu12-12.4.5.8.dist-info).
pub fn nvidia_wheel(name: &str) -> Option<String> {
    let d = name.strip_suffix(".dist-info")?;
    let (pkg, ver) = d.split_once('-')?;
    let cu = pkg.rsplit_once("_cu")?.1;
    (pkg.starts_with("nvidia_") && cu.bytes().all(|b| b.is_ascii_digit()) && !cu.is_empty())
        .then(|| format!("{} {ver}", pkg.replace('_', "-")))
}

/// The host's driver and devices (always the host's, whatever --root is).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Host {
    pub driver: Option<String>,
    pub devices: Vec<String>,
}

pub fn host() -> Host {
    let driver = ["/proc/driver/nvidia/version", "/sys/module/nvidia/version"]
        .iter()
        .find_map(|p| {
            let b = dockhand::sys::fs::read_regular_capped(std::path::Path::new(p), 4096).ok()?;
            parse_driver_version(&String::from_utf8_lossy(&b))
        });
    let mut devices: Vec<String> = std::fs::read_dir("/dev")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with("nvidia"))
                .map(|n| format!("/dev/{n}"))
                .collect()
        })
        .unwrap_or_default();
    devices.sort();
    Host { driver, devices }
}

/// A driver stub on a search path: the CUDA toolkit's link-time
/// libcuda.so (targets/*/lib/stubs) loaded at run time instead of the
/// driver's fails every CUDA call with error 34, CUDA_ERROR_STUB_LIBRARY
/// (numba#9732, NVIDIA/warp#219).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Stub {
    /// The stub file, through the directory that reaches it.
    pub library: String,
    /// What puts the directory on the search path: "DT_RUNPATH of FILE",
    /// "DT_RPATH of FILE", "LD_LIBRARY_PATH", an ld.so.conf file, or
    /// "ld.so.cache" (an entry no configuration file names).
    pub reached_by: String,
    /// The search path element as written there.
    pub element: String,
}

/// Whether a directory is a stubs directory (…/stubs, or inside one).
pub fn is_stubs_dir(dir: &str) -> bool {
    let d = dir.trim_end_matches('/');
    d.ends_with("/stubs") || d.contains("/stubs/")
}

/// Whether a file name is a driver library the toolkit ships a stub of.
pub fn is_driver_stub(name: &str) -> bool {
    ["libcuda.so", "libnvidia-ml.so"]
        .iter()
        .any(|p| name == *p || name.strip_prefix(p).is_some_and(|v| v.starts_with('.')))
}

/// The driver stubs in directory `dir` of the root, sorted.
fn stubs_in(root: &crate::root::Root, dir: &str) -> Vec<String> {
    if !is_stubs_dir(dir) {
        return Vec::new();
    }
    let Some((canon, crate::root::Kind::Dir)) = root.resolve(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = root
        .list(&canon)
        .map(|s| {
            s.into_iter()
                .map(String::from)
                .filter(|n| is_driver_stub(n))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every driver stub a search path of the root reaches: the DT_RUNPATH
/// and DT_RPATH of the ELF files checked, LD_LIBRARY_PATH, the
/// directories /etc/ld.so.conf names (ldconfig runs again when the
/// container toolkit injects the driver), and ld.so.cache.
pub fn stubs(
    root: &crate::root::Root,
    objs: &[(String, std::sync::Arc<crate::resolve::Object>)],
    library_path: Option<&str>,
    cache: Option<&crate::ldcache::Cache>,
) -> Vec<Stub> {
    use crate::resolve::{expand, Arch};
    let mut out = std::collections::BTreeSet::new();
    let mut add = |dir: &str, reached_by: &str, element: &str| {
        for n in stubs_in(root, dir) {
            out.insert(Stub {
                library: format!("{}/{n}", dir.trim_end_matches('/')),
                reached_by: reached_by.to_string(),
                element: element.to_string(),
            });
        }
    };
    for (p, o) in objs {
        let Some(arch) = Arch::for_elf(&o.elf) else {
            continue;
        };
        let origin = match p.rfind('/') {
            Some(0) | None => "/",
            Some(i) => &p[..i],
        };
        for (tag, spec) in [("DT_RUNPATH", &o.elf.runpath), ("DT_RPATH", &o.elf.rpath)] {
            let Some(spec) = spec.as_deref().filter(|s| s.contains("stubs")) else {
                continue;
            };
            for el in spec.split(':').filter(|e| e.contains("stubs")) {
                if let Some(d) = expand(el, Some(origin), arch) {
                    add(&d, &format!("{tag} of {p}"), el);
                }
            }
        }
    }
    for el in library_path.unwrap_or("").split([':', ';']) {
        if el.contains("stubs") && !el.contains('$') {
            add(el, "LD_LIBRARY_PATH", el);
        }
    }
    let conf = crate::ldsoconf::dirs(root);
    for (d, file) in &conf {
        add(d, file, d);
    }
    for e in cache.map(|c| c.entries.as_slice()).unwrap_or_default() {
        let (dir, name) = e.value.rsplit_once('/').unwrap_or(("", &e.value));
        if is_stubs_dir(dir) && is_driver_stub(name) && !conf.iter().any(|(d, _)| d == dir) {
            out.insert(Stub {
                library: e.value.clone(),
                reached_by: "ld.so.cache".into(),
                element: dir.to_string(),
            });
        }
    }
    out.into_iter().collect()
}

/// A cuda-compat libcuda in the image (/usr/local/cuda*/compat) and what
/// happens to it on this host (NVIDIA's "CUDA Compatibility" guide,
/// forward compatibility; nvidia-docker#1515 for error 804).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Compat {
    pub path: String,
    pub version: String,
    /// "forward-compatibility" (newer than the host's driver: used only on
    /// GPUs that support forward compatibility, error 804 elsewhere),
    /// "host-driver" (not newer: the host's libcuda is used, this one is
    /// ignored) or "no-driver" (no driver visible here: not judged).
    pub verdict: &'static str,
}

/// The driver version a compat libcuda's file name carries
/// (libcuda.so.550.54.15 -> 550.54.15).
pub fn compat_version(name: &str) -> Option<String> {
    let v = name.strip_prefix("libcuda.so.")?;
    let parts: Vec<&str> = v.split('.').collect();
    (parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
    .then(|| v.to_string())
}

/// Judge a compat libcuda of driver version `compat` on a host with `driver`.
pub fn judge_compat(compat: &str, driver: Option<&str>) -> &'static str {
    match driver {
        None => "no-driver",
        Some(d) if vkey(compat) > vkey(d) => "forward-compatibility",
        Some(_) => "host-driver",
    }
}

/// The compat libcudas under /usr/local/cuda*/compat, each file once
/// (/usr/local/cuda is usually a link to /usr/local/cuda-X.Y), judged
/// against `driver`.
pub fn compat(root: &crate::root::Root, driver: Option<&str>) -> Vec<Compat> {
    let mut dirs: Vec<String> = root
        .list("/usr/local")
        .map(|s| {
            s.into_iter()
                .map(String::from)
                .filter(|n| n == "cuda" || n.starts_with("cuda-"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for d in dirs {
        let dir = format!("/usr/local/{d}/compat");
        let Some((canon, crate::root::Kind::Dir)) = root.resolve(&dir) else {
            continue;
        };
        let mut names: Vec<String> = root
            .list(&canon)
            .map(|s| s.into_iter().map(String::from).collect())
            .unwrap_or_default();
        names.sort();
        for n in names {
            let Some(version) = compat_version(&n) else {
                continue;
            };
            if !seen.insert(format!("{canon}/{n}")) {
                continue;
            }
            out.push(Compat {
                path: format!("{dir}/{n}"),
                verdict: judge_compat(&version, driver),
                version,
            });
        }
    }
    out
}

/// The report's lines on driver stubs and compat libcudas (`driver`: the
/// host's, when visible).
pub fn finding_lines(stubs: &[Stub], compat: &[Compat], driver: Option<&str>) -> Vec<String> {
    let mut v = Vec::new();
    for s in stubs {
        v.push(format!(
            "gpu: CUDA driver stub {} is on the search path ({}: {}): loaded at run time instead of \
             the driver's library, every CUDA call fails with error 34 (CUDA_ERROR_STUB_LIBRARY); \
             stubs are for linking only: take {} off that path",
            s.library, s.reached_by, s.element, s.element
        ));
    }
    for c in compat {
        let d = driver.unwrap_or("?");
        v.push(match c.verdict {
            "forward-compatibility" => format!(
                "gpu: {} ({}) is newer than this host's driver {d}: with it on the search path, \
                 CUDA runs by forward compatibility, only on data-center GPUs that support it \
                 (check `nvidia-smi -q`'s Product Brand against NVIDIA's CUDA Compatibility guide); \
                 other GPUs fail with error 804 (CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE)",
                c.path, c.version
            ),
            "host-driver" => format!(
                "gpu: {} ({}) is not newer than this host's driver {d}: the driver's own libcuda \
                 is used and the compat one is not needed",
                c.path, c.version
            ),
            _ => format!(
                "gpu: {} ({}): no NVIDIA driver visible here; on the GPU host compare \
                 `nvidia-smi --query-gpu=driver_version --format=csv,noheader` with {}: \
                 an older driver needs a data-center GPU that supports forward compatibility \
                 (`nvidia-smi -q`, Product Brand; error 804 otherwise), a driver as new or newer \
                 uses its own libcuda",
                c.path, c.version, c.version
            ),
        });
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_libraries() {
        assert!(driver_provided("libcuda.so.1"));
        assert!(driver_provided("libnvidia-ml.so.1"));
        assert!(driver_provided("libnvidia-glcore.so.535.104.05"));
        assert!(!driver_provided("libcudart.so.12"));
        assert!(!driver_provided("libGL.so.1"));
    }

    #[test]
    fn driver_table_matches_nvidias() {
        // NVIDIA's table as published (tests/fixtures names the source):
        // for each release from 10.0 on, ldcheck's minimum is the lowest
        // driver of that release's rows, and no release is left out.
        let text = include_str!("../../../tests/fixtures/cuda-driver-table.txt");
        let mut published: Vec<(String, String)> = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        {
            let (release, driver) = line.split_once(" | ").expect("release | driver");
            let version = release
                .trim_start_matches("CUDA ")
                .split([' ', '('])
                .next()
                .unwrap();
            let minor = version.split('.').take(2).collect::<Vec<_>>().join(".");
            let driver = driver.trim().to_string();
            match published.iter_mut().find(|(m, _)| *m == minor) {
                Some((_, low)) if vkey(&driver) < vkey(low) => *low = driver,
                Some(_) => {}
                None => published.push((minor, driver)),
            }
        }
        assert_eq!(published.len(), 23, "{published:?}");
        let newest = vkey(&published[0].0);
        for (minor, low) in &published {
            if vkey(minor) < vkey("10.0") {
                continue;
            }
            let ours = MIN_DRIVER.iter().find(|(c, _)| c == minor).map(|(_, d)| *d);
            assert_eq!(ours, Some(low.as_str()), "CUDA {minor}");
        }
        for (c, _) in MIN_DRIVER.iter().filter(|(c, _)| vkey(c) <= newest) {
            assert!(
                published.iter().any(|(m, _)| m == c),
                "CUDA {c} is not in NVIDIA's table"
            );
        }
    }

    #[test]
    fn driver_table() {
        assert_eq!(check_driver("12.4", "550.54.15").verdict, "ok");
        assert_eq!(check_driver("12.4.127", "550.54.14").verdict, "ok");
        let c = check_driver("12.4", "535.104.05");
        assert_eq!(c.verdict, "minor-version-compatibility");
        assert_eq!(c.needs.as_deref(), Some("550.54.14"));
        assert_eq!(c.minor_compat.as_deref(), Some("525.60.13"));
        // A bare major: compatibility is all that can be judged.
        let c = check_driver("12", "470.57.02");
        assert_eq!((c.verdict, c.needs.as_deref()), ("too-old", Some("525.60.13")));
        assert_eq!(
            check_driver("13", "580.65.06").verdict,
            "minor-version-compatibility"
        );
        assert_eq!(check_driver("12.0", "525.60.12").verdict, "too-old");
        assert_eq!(check_driver("12.1", "470.82.01").verdict, "too-old");
        assert_eq!(
            check_driver("11.8", "450.80.02").verdict,
            "minor-version-compatibility"
        );
        assert_eq!(check_driver("11.8", "450.36.06").verdict, "too-old");
        assert_eq!(check_driver("12.9", "575.51.03").verdict, "ok");
        assert_eq!(
            check_driver("12.7", "560.28.03").verdict,
            "minor-version-compatibility"
        );
        assert_eq!(check_driver("14.0", "999.1").verdict, "unknown");
        // Numeric, not lexical: 535.104 > 535.54.
        assert!(vkey("535.104.05") > vkey("535.54.03"));
    }

    #[test]
    fn driver_version_text() {
        let proc =
            "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023\n\
                    GCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n";
        assert_eq!(parse_driver_version(proc).as_deref(), Some("535.104.05"));
        let open = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build\n";
        assert_eq!(parse_driver_version(open).as_deref(), Some("550.54.14"));
        assert_eq!(parse_driver_version("550.90.07\n").as_deref(), Some("550.90.07"));
        assert_eq!(parse_driver_version("garbage"), None);
    }

    #[test]
    fn cuda_versions_from_names() {
        assert_eq!(cuda_version_from_name("libcudart.so.12").as_deref(), Some("12"));
        assert_eq!(
            cuda_version_from_name("libcudart.so.11.8.89").as_deref(),
            Some("11.8.89")
        );
        assert_eq!(
            cuda_version_from_name("nvidia_cuda_runtime_cu12-12.9.79.dist-info").as_deref(),
            Some("12.9.79")
        );
        assert_eq!(cuda_version_from_name("libcudart.so"), None);
        assert_eq!(
            nvidia_wheel("nvidia_cublas_cu12-12.4.5.8.dist-info").as_deref(),
            Some("nvidia-cublas-cu12 12.4.5.8")
        );
        assert_eq!(nvidia_wheel("numpy-2.0.dist-info"), None);
    }

    #[test]
    fn stub_and_compat_names() {
        assert!(is_stubs_dir("/usr/local/cuda/targets/x86_64-linux/lib/stubs"));
        assert!(is_stubs_dir("/usr/local/cuda/lib64/stubs/"));
        assert!(is_stubs_dir("/opt/stubs/x"));
        assert!(!is_stubs_dir("/opt/mystubs"));
        assert!(is_driver_stub("libcuda.so"));
        assert!(is_driver_stub("libcuda.so.1"));
        assert!(is_driver_stub("libnvidia-ml.so"));
        assert!(!is_driver_stub("libcudart.so"));
        assert!(!is_driver_stub("libcuda.sox"));
        assert_eq!(
            compat_version("libcuda.so.550.54.15").as_deref(),
            Some("550.54.15")
        );
        assert_eq!(compat_version("libcuda.so.1"), None);
        assert_eq!(compat_version("libcuda.so.550..15"), None);
        assert_eq!(
            judge_compat("550.54.15", Some("535.104.05")),
            "forward-compatibility"
        );
        assert_eq!(judge_compat("550.54.15", Some("550.54.15")), "host-driver");
        assert_eq!(judge_compat("550.54.15", Some("555.42.02")), "host-driver");
        assert_eq!(judge_compat("550.54.15", None), "no-driver");
    }
}
