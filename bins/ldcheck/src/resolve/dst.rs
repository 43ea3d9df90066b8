//! Dynamic string tokens: `$ORIGIN`, `$LIB` and `$PLATFORM` in DT_NEEDED,
//! DT_RPATH, DT_RUNPATH and LD_LIBRARY_PATH, expanded as ld.so does.

use super::arch::Arch;

/// The directory of a path ($ORIGIN of an object at that path).
pub(super) fn dirname(p: &str) -> String {
    match p.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => p[..i].to_string(),
        None => ".".into(),
    }
}

/// Expand $ORIGIN, $LIB and $PLATFORM (with or without braces). None when
/// $ORIGIN is needed and unknown (the loader drops such an element).
pub fn expand(s: &str, origin: Option<&str>, arch: &Arch) -> Option<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let mut done = false;
        for (name, val) in [
            ("ORIGIN", origin),
            ("LIB", Some(arch.lib)),
            ("PLATFORM", Some(arch.platform.as_str())),
        ] {
            let braced = format!("{{{name}}}");
            let len = if after.starts_with(&braced) {
                braced.len()
            } else if after.starts_with(name)
                && !after[name.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            {
                name.len()
            } else {
                continue;
            };
            out.push_str(val?);
            rest = &after[len..];
            done = true;
            break;
        }
        if !done {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elf::{self, Elf};

    fn x86() -> &'static Arch {
        Arch::for_elf(&Elf {
            machine: elf::EM_X86_64,
            class64: true,
            ..Elf::default()
        })
        .unwrap()
    }

    #[test]
    fn dst_expansion() {
        let a = x86();
        assert_eq!(expand("$ORIGIN/../lib", Some("/a/b"), a).unwrap(), "/a/b/../lib");
        assert_eq!(expand("${ORIGIN}/x", Some("/a"), a).unwrap(), "/a/x");
        assert_eq!(
            expand("/usr/$LIB/x", None, a).unwrap(),
            "/usr/lib/x86_64-linux-gnu/x"
        );
        assert_eq!(
            expand("/p/${PLATFORM}", None, a).unwrap(),
            format!("/p/{}", a.platform)
        );
        assert_eq!(expand("$ORIGINAL/x", Some("/a"), a).unwrap(), "$ORIGINAL/x");
        assert_eq!(expand("$ORIGIN", None, a), None);
        assert_eq!(expand("/a$", None, a).unwrap(), "/a$");
    }

    #[test]
    fn dirnames() {
        assert_eq!(dirname("/a/b/c.so"), "/a/b");
        assert_eq!(dirname("/c.so"), "/");
        assert_eq!(dirname("c.so"), ".");
    }
}
