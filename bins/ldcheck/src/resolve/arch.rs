//! What the loader for each machine looks like: its directories, its
//! interpreter, and the hwcaps subdirectories this CPU makes it try.

use crate::elf::{self, Elf};
use crate::ldcache;

/// What the loader for one machine looks like.
#[derive(Debug, Clone)]
pub struct Arch {
    pub machine: u16,
    pub class64: bool,
    pub cache_flags: i32,
    pub default_dirs: &'static [&'static str],
    pub interp: &'static str,
    pub lib: &'static str,
    pub platform: String,
    /// Subdirectories tried in every directory, best first, "" last.
    pub subdirs: Vec<String>,
    /// The glibc-hwcaps names the CPU supports, best first (for the cache).
    pub glibc_hwcaps: Vec<&'static str>,
}

impl Arch {
    /// The loader rules for objects of this machine, or None for machines
    /// ldcheck does not judge (worked out once per machine and run).
    pub fn for_elf(e: &Elf) -> Option<&'static Arch> {
        static X86_64: std::sync::OnceLock<Option<Arch>> = std::sync::OnceLock::new();
        static AARCH64: std::sync::OnceLock<Option<Arch>> = std::sync::OnceLock::new();
        match (e.machine, e.class64) {
            (elf::EM_X86_64, true) => X86_64.get_or_init(|| Arch::build(elf::EM_X86_64)).as_ref(),
            (elf::EM_AARCH64, true) => AARCH64.get_or_init(|| Arch::build(elf::EM_AARCH64)).as_ref(),
            _ => None,
        }
    }

    fn build(machine: u16) -> Option<Arch> {
        let e = Elf {
            machine,
            class64: true,
            ..Elf::default()
        };
        match (e.machine, e.class64) {
            (elf::EM_X86_64, true) => {
                // The CPU is asked once (and /proc/cpuinfo read once) per run.
                static CPU: std::sync::OnceLock<(Vec<&'static str>, String)> = std::sync::OnceLock::new();
                let (glibc_hwcaps, platform) = CPU
                    .get_or_init(|| {
                        if cfg!(target_arch = "x86_64") {
                            (x86_levels(), x86_platform())
                        } else {
                            (Vec::new(), "x86_64".to_string())
                        }
                    })
                    .clone();
                let mut subdirs: Vec<String> =
                    glibc_hwcaps.iter().map(|l| format!("glibc-hwcaps/{l}")).collect();
                subdirs.extend(legacy_subdirs(&platform, &["x86_64"]));
                Some(Arch {
                    machine: e.machine,
                    class64: true,
                    cache_flags: ldcache::FLAGS_X86_64,
                    default_dirs: &[
                        "/lib/x86_64-linux-gnu",
                        "/usr/lib/x86_64-linux-gnu",
                        "/lib",
                        "/usr/lib",
                    ],
                    interp: "/lib64/ld-linux-x86-64.so.2",
                    lib: "lib/x86_64-linux-gnu",
                    platform,
                    subdirs,
                    glibc_hwcaps,
                })
            }
            (elf::EM_AARCH64, true) => Some(Arch {
                machine: e.machine,
                class64: true,
                cache_flags: ldcache::FLAGS_AARCH64,
                default_dirs: &[
                    "/lib/aarch64-linux-gnu",
                    "/usr/lib/aarch64-linux-gnu",
                    "/lib",
                    "/usr/lib",
                ],
                interp: "/lib/ld-linux-aarch64.so.1",
                lib: "lib/aarch64-linux-gnu",
                platform: "aarch64".into(),
                subdirs: legacy_subdirs("aarch64", aarch64_hwcaps()),
                glibc_hwcaps: Vec::new(),
            }),
            _ => None,
        }
    }

    pub(super) fn accepts(&self, e: &Elf) -> bool {
        e.machine == self.machine
            && e.class64 == self.class64
            && matches!(e.etype, elf::ET_DYN | elf::ET_EXEC)
    }
}

/// glibc 2.36's legacy hwcaps subdirectories: every subset of
/// (tls, platform, hwcaps...) in decreasing binary order, as ld.so prints
/// them with LD_DEBUG=libs.
pub fn legacy_subdirs(platform: &str, hwcaps: &[&str]) -> Vec<String> {
    let mut elems = vec!["tls", platform];
    elems.extend_from_slice(hwcaps);
    let n = elems.len();
    let mut out: Vec<String> = Vec::new();
    for mask in (0..(1u32 << n)).rev() {
        let parts: Vec<&str> = (0..n)
            .filter(|i| mask & (1 << (n - 1 - i)) != 0)
            .map(|i| elems[i])
            .collect();
        let s = parts.join("/");
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
fn x86_levels() -> Vec<&'static str> {
    use std::arch::is_x86_feature_detected as f;
    let v2 = f!("cmpxchg16b") && f!("popcnt") && f!("sse3") && f!("sse4.1") && f!("sse4.2") && f!("ssse3");
    let v3 = v2
        && f!("avx")
        && f!("avx2")
        && f!("bmi1")
        && f!("bmi2")
        && f!("f16c")
        && f!("fma")
        && f!("lzcnt")
        && f!("movbe")
        && f!("xsave");
    let v4 = v3 && f!("avx512f") && f!("avx512bw") && f!("avx512cd") && f!("avx512dq") && f!("avx512vl");
    [(v4, "x86-64-v4"), (v3, "x86-64-v3"), (v2, "x86-64-v2")]
        .into_iter()
        .filter(|(ok, _)| *ok)
        .map(|(_, n)| n)
        .collect()
}

#[cfg(not(target_arch = "x86_64"))]
fn x86_levels() -> Vec<&'static str> {
    Vec::new()
}

/// AT_PLATFORM as glibc 2.36 sets it on x86_64: "haswell" on Intel CPUs
/// with AVX2 and friends, else "x86_64".
#[cfg(target_arch = "x86_64")]
fn x86_platform() -> String {
    use std::arch::is_x86_feature_detected as f;
    let intel = std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| {
            c.lines()
                .any(|l| l.starts_with("vendor_id") && l.contains("GenuineIntel"))
        })
        .unwrap_or(false);
    let haswell =
        f!("avx2") && f!("fma") && f!("bmi1") && f!("bmi2") && f!("lzcnt") && f!("movbe") && f!("popcnt");
    if intel && haswell { "haswell" } else { "x86_64" }.to_string()
}

#[cfg(not(target_arch = "x86_64"))]
fn x86_platform() -> String {
    "x86_64".to_string()
}

/// glibc 2.36's legacy hwcaps on aarch64: the platform ("aarch64") and,
/// of the CPU's features, only "atomics" (LSE, ARMv8.1) names a
/// subdirectory (the loader's LD_DEBUG=libs search paths under
/// qemu-aarch64 show tls/aarch64/atomics ... atomics, ""). On an aarch64
/// machine the CPU is asked (/proc/cpuinfo's Features); judging an aarch64
/// image from another machine, atomics is assumed: every ARMv8.1 and later
/// CPU (Graviton2 on, Ampere, Grace) has it.
fn aarch64_hwcaps() -> &'static [&'static str] {
    if !cfg!(target_arch = "aarch64") {
        return &["atomics"];
    }
    let atomics = std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| {
            c.lines()
                .filter(|l| l.starts_with("Features"))
                .any(|l| l.split_whitespace().any(|w| w == "atomics"))
        })
        .unwrap_or(true);
    if atomics {
        &["atomics"]
    } else {
        &[]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_order_matches_glibc_debug_output() {
        // glibc 2.36's aarch64 loader under qemu-aarch64 (LD_DEBUG=libs).
        assert_eq!(
            legacy_subdirs("aarch64", &["atomics"]),
            [
                "tls/aarch64/atomics",
                "tls/aarch64",
                "tls/atomics",
                "tls",
                "aarch64/atomics",
                "aarch64",
                "atomics",
                ""
            ]
        );
        assert_eq!(
            legacy_subdirs("x86_64", &["x86_64"]),
            [
                "tls/x86_64/x86_64",
                "tls/x86_64",
                "tls",
                "x86_64/x86_64",
                "x86_64",
                ""
            ]
        );
        assert_eq!(
            legacy_subdirs("haswell", &["x86_64"]),
            [
                "tls/haswell/x86_64",
                "tls/haswell",
                "tls/x86_64",
                "tls",
                "haswell/x86_64",
                "haswell",
                "x86_64",
                ""
            ]
        );
    }
}
