//! What every tool shares: --version, --help listing each environment
//! variable, and usage errors exiting 2 with one line naming the tool.

use dockhand_tests::*;
use std::process::Command;

const TOOLS: [&str; 5] = ["runas", "healthcheck", "waitfor", "ready", "ldcheck"];

#[test]
fn version_on_every_tool() {
    for t in TOOLS {
        let o = run(Command::new(bin(t)).arg("--version"));
        assert!(o.status.success(), "{t} --version: {o:?}");
        assert_eq!(stdout(&o).trim(), format!("{t} {}", env!("CARGO_PKG_VERSION")));
    }
}

#[test]
fn help_lists_environment_variables() {
    for t in TOOLS {
        let o = run(Command::new(bin(t)).arg("--help"));
        assert!(o.status.success(), "{t} --help: {o:?}");
        let h = stdout(&o);
        assert!(
            h.contains("Environment"),
            "{t} --help has no Environment section:\n{h}"
        );
        assert!(
            h.contains(&format!("{}_", t.to_uppercase())),
            "{t} --help names no variable:\n{h}"
        );
    }
}

#[test]
fn unknown_flag_is_a_one_line_usage_error() {
    for t in TOOLS {
        let o = run(Command::new(bin(t)).arg("--no-such-flag").arg("x"));
        assert_eq!(o.status.code(), Some(2), "{t}: {o:?}");
        let e = stderr(&o);
        assert!(e.starts_with(&format!("{t}: ")), "{t}: {e}");
        assert_eq!(e.trim_end().lines().count(), 1, "{t}: {e}");
    }
}

#[test]
fn binaries_are_static() {
    for t in TOOLS {
        let data = std::fs::read(bin(t)).unwrap();
        assert_eq!(&data[..4], b"\x7fELF", "{t}");
        // No PT_INTERP: the program needs no dynamic loader.
        let o = run(Command::new("readelf").args(["-l", "-d"]).arg(bin(t)));
        let s = stdout(&o);
        assert!(!s.contains("INTERP"), "{t} has PT_INTERP:\n{s}");
        assert!(!s.contains("(NEEDED)"), "{t} has DT_NEEDED:\n{s}");
    }
}
