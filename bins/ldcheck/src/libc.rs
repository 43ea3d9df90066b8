//! Which C library's loader a root runs its programs with: glibc's
//! (ld-linux, ld.so.cache, symbol versions) or musl's (Alpine: one
//! /lib/ld-musl-ARCH.so.1 that is also libc, a path file, no cache, no
//! versions). Told from the loader files in the root, or by --libc.

use crate::elf;
use crate::root::Root;

/// The C library whose loader rules a root is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Libc {
    #[default]
    Glibc,
    Musl,
}

impl Libc {
    pub fn as_str(self) -> &'static str {
        match self {
            Libc::Glibc => "glibc",
            Libc::Musl => "musl",
        }
    }
}

/// Parse a --libc value.
pub fn parse(v: &str) -> Result<Libc, String> {
    match v {
        "glibc" => Ok(Libc::Glibc),
        "musl" => Ok(Libc::Musl),
        _ => Err(format!("unknown libc {v:?} (use glibc or musl)")),
    }
}

/// musl's name for a machine (in its loader's and path file's names).
pub fn musl_arch(machine: u16) -> Option<&'static str> {
    match machine {
        elf::EM_X86_64 => Some("x86_64"),
        elf::EM_AARCH64 => Some("aarch64"),
        _ => None,
    }
}

/// Where musl's loader for a machine lies (PT_INTERP of musl programs).
pub fn musl_loader(machine: u16) -> Option<&'static str> {
    match machine {
        elf::EM_X86_64 => Some("/lib/ld-musl-x86_64.so.1"),
        elf::EM_AARCH64 => Some("/lib/ld-musl-aarch64.so.1"),
        _ => None,
    }
}

/// glibc's loaders, by the names programs carry in PT_INTERP.
pub const GLIBC_LOADERS: &[&str] = &[
    "/lib64/ld-linux-x86-64.so.2",
    "/lib/ld-linux-x86-64.so.2",
    "/lib/ld-linux-aarch64.so.1",
    "/lib64/ld-linux-aarch64.so.1",
];

/// Where a glibc root keeps libc.so.6 (Debian's multiarch directories,
/// and lib64 for Red Hat's layout).
const GLIBC_LIBCS: &[&str] = &[
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "/lib/aarch64-linux-gnu/libc.so.6",
    "/usr/lib/aarch64-linux-gnu/libc.so.6",
    "/lib64/libc.so.6",
    "/usr/lib64/libc.so.6",
];

/// The root's C library: musl when it has musl's loader and no glibc
/// libc.so.6 of its own (a Debian root with the musl package installed
/// is still glibc's; Alpine's compatibility links to the musl loader do
/// not make it glibc). A handful of lookups per run, none per file.
pub fn detect(root: &Root) -> Libc {
    let musl: Vec<String> = [elf::EM_X86_64, elf::EM_AARCH64]
        .iter()
        .filter_map(|&m| root.file(musl_loader(m)?))
        .collect();
    if musl.is_empty() {
        return Libc::Glibc;
    }
    let glibc = GLIBC_LIBCS
        .iter()
        .filter_map(|p| root.file(p))
        .any(|c| !musl.contains(&c));
    if glibc {
        Libc::Glibc
    } else {
        Libc::Musl
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_by_loader_files() {
        let t = std::env::temp_dir().join(format!("ldcheck-libc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        std::fs::create_dir_all(t.join("lib")).unwrap();
        assert_eq!(detect(&Root::new(&t)), Libc::Glibc, "no loader at all");
        std::fs::write(t.join("lib/ld-musl-x86_64.so.1"), b"x").unwrap();
        assert_eq!(detect(&Root::new(&t)), Libc::Musl);
        // Alpine's libc6-compat: glibc's names linked to the musl loader.
        std::fs::create_dir_all(t.join("lib64")).unwrap();
        std::os::unix::fs::symlink("/lib/ld-musl-x86_64.so.1", t.join("lib64/libc.so.6")).unwrap();
        assert_eq!(detect(&Root::new(&t)), Libc::Musl);
        // A glibc of its own: Debian with the musl package.
        std::fs::create_dir_all(t.join("lib/x86_64-linux-gnu")).unwrap();
        std::fs::write(t.join("lib/x86_64-linux-gnu/libc.so.6"), b"g").unwrap();
        assert_eq!(detect(&Root::new(&t)), Libc::Glibc);
        assert_eq!(parse("musl"), Ok(Libc::Musl));
        assert!(parse("uclibc").is_err());
        let _ = std::fs::remove_dir_all(&t);
    }
}
