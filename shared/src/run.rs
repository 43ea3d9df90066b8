//! The one entry point every binary's `main` calls: run the tool, print its
//! error as one line starting with the tool name, exit with the error's code.

use crate::error::Error;
use crate::out;

/// Run `tool_main` with the process arguments (program name removed) and exit.
///
/// `--version` anywhere before a `--` is answered here, so every tool has it.
pub fn main(tool: &str, tool_main: fn(Vec<String>) -> Result<i32, Error>) -> ! {
    let args: Vec<String> = match std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(a) => a,
        Err(bad) => {
            out::warn(tool, &format!("argument is not valid UTF-8: {bad:?}"));
            std::process::exit(2);
        }
    };
    if wants_version(&args) {
        out::line(&version_line(tool));
        std::process::exit(0);
    }
    let code = match tool_main(args) {
        Ok(code) => code,
        Err(e) => {
            if let Some(msg) = e.message() {
                out::warn(tool, msg);
            }
            e.code()
        }
    };
    std::process::exit(code)
}

/// What `--version` prints, the same for every tool:
/// `runas 0.1.0 (git 62218de, x86_64-unknown-linux-musl, std rebuilt)`.
///
/// scripts/dist.sh sets the DOCKHAND_BUILD_* variables at build time (the
/// commit, the target triple, whether std was rebuilt for size or prebuilt);
/// a plain `cargo build` was told none of them and says "unknown".
pub fn version_line(tool: &str) -> String {
    fn or_unknown(v: Option<&'static str>) -> &'static str {
        v.filter(|s| !s.is_empty()).unwrap_or("unknown")
    }
    format!(
        "{tool} {} (git {}, {}, std {})",
        crate::VERSION,
        or_unknown(option_env!("DOCKHAND_BUILD_COMMIT")),
        or_unknown(option_env!("DOCKHAND_BUILD_TARGET")),
        or_unknown(option_env!("DOCKHAND_BUILD_STD")),
    )
}

fn wants_version(args: &[String]) -> bool {
    args.iter()
        .take_while(|a| a.as_str() != "--")
        .any(|a| a == "--version")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_only_before_double_dash() {
        let v = |s: &[&str]| wants_version(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert!(v(&["--version"]));
        assert!(v(&["--quiet", "--version"]));
        assert!(!v(&["x", "--", "app", "--version"]));
        assert!(!v(&[]));
    }

    #[test]
    fn version_line_has_four_parts() {
        let l = version_line("runas");
        let rest = l
            .strip_prefix(&format!("runas {} (git ", crate::VERSION))
            .unwrap();
        let inner = rest.strip_suffix(')').unwrap();
        let parts: Vec<&str> = inner.split(", ").collect();
        assert_eq!(parts.len(), 3, "{l}");
        assert!(parts[2].starts_with("std "), "{l}");
    }
}
