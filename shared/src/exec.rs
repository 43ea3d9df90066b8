//! Replace this process with a command, the way a shell would find it but
//! with no shell: 127 when it is not found, 126 when it cannot be executed.

use crate::error::Error;
use nix::errno::Errno;
use std::ffi::CString;
use std::path::{Path, PathBuf};

/// The PATH used when the environment has none (Debian's default for root).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn cstring(s: &str, what: &str) -> Result<CString, Error> {
    CString::new(s).map_err(|_| Error::usage(format!("{what} contains a NUL byte: {s:?}")))
}

/// Candidate paths for `cmd`: itself when it has a slash, else each PATH entry.
pub fn candidates(cmd: &str, path_env: Option<&str>) -> Vec<PathBuf> {
    if cmd.contains('/') {
        return vec![PathBuf::from(cmd)];
    }
    path_env
        .unwrap_or(DEFAULT_PATH)
        .split(':')
        .map(|d| {
            if d.is_empty() {
                Path::new(".").join(cmd)
            } else {
                Path::new(d).join(cmd)
            }
        })
        .collect()
}

/// Exec `argv` (argv[0] is the command). Returns only on failure, with the
/// error to exit with. The signal state this process inherited (ignored set, blocked mask) is
/// restored for the new program first.
pub fn exec(argv: &[String]) -> Error {
    let Some(cmd) = argv.first() else {
        return Error::usage("no command given");
    };
    if cmd.is_empty() {
        return Error::NotFound("the command is an empty string".into());
    }
    let args: Vec<CString> = match argv.iter().map(|a| cstring(a, "an argument")).collect() {
        Ok(a) => a,
        Err(e) => return e,
    };
    if let Err(e) = crate::sys::signal::restore_inherited() {
        return Error::failed(format!("cannot reset signals before exec: {e}"));
    }
    let path_env = std::env::var("PATH").ok();
    let mut denied: Option<PathBuf> = None;
    for p in candidates(cmd, path_env.as_deref()) {
        let Some(ps) = p.to_str() else { continue };
        let Ok(c) = cstring(ps, "the command path") else {
            continue;
        };
        let err = match nix::unistd::execv(&c, &args) {
            Ok(never) => match never {},
            Err(e) => e,
        };
        match err {
            Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP | Errno::ENAMETOOLONG => {}
            Errno::EACCES | Errno::EPERM => {
                denied.get_or_insert(p.clone());
            }
            Errno::ENOEXEC => {
                return Error::CannotExecute(format!(
                    "cannot execute {}: not a program this system can run (a script needs a #! line)",
                    p.display()
                ))
            }
            other => {
                return Error::CannotExecute(format!("cannot execute {}: {}", p.display(), other.desc()))
            }
        }
        if cmd.contains('/') {
            break;
        }
    }
    if let Some(p) = denied {
        let why = if p.is_dir() {
            "is a directory"
        } else {
            "permission denied"
        };
        return Error::CannotExecute(format!("cannot execute {}: {why}", p.display()));
    }
    if cmd.contains('/') {
        Error::NotFound(format!("{cmd}: no such file"))
    } else {
        Error::NotFound(format!(
            "{cmd}: command not found in PATH ({})",
            path_env.as_deref().unwrap_or(DEFAULT_PATH)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_path_rules() {
        assert_eq!(candidates("/bin/sh", Some("/x")), vec![PathBuf::from("/bin/sh")]);
        assert_eq!(candidates("./run", None), vec![PathBuf::from("./run")]);
        assert_eq!(
            candidates("sh", Some("/a::/b")),
            vec![
                PathBuf::from("/a/sh"),
                PathBuf::from("./sh"),
                PathBuf::from("/b/sh")
            ]
        );
        assert_eq!(candidates("sh", None).len(), DEFAULT_PATH.split(':').count());
    }
}
