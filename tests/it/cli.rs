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
        // The full line (commit, target, std) is checked in supply.rs.
        let want = format!("{t} {} (git ", env!("CARGO_PKG_VERSION"));
        assert!(stdout(&o).starts_with(&want), "{t}: {}", stdout(&o));
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
fn environment_values_that_are_not_utf8_are_usage_errors() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"/opt/\xff");
    // A tool's own variable and a variable it reads besides (never taken for unset).
    for (t, var, args) in [
        ("ldcheck", "LDCHECK_ROOT", &["/bin/true"][..]),
        ("ldcheck", "LD_LIBRARY_PATH", &["/bin/true"][..]),
        ("healthcheck", "HEALTHCHECK_TARGET", &[][..]),
        ("waitfor", "WAITFOR_TARGETS", &["--", "true"][..]),
        ("runas", "RUNAS_USER", &["true"][..]),
        ("ready", "NOTIFY_SOCKET", &["--", "true"][..]),
    ] {
        let o = run(Command::new(bin(t)).args(args).env(var, bad));
        assert_eq!(o.status.code(), Some(2), "{t} with {var} not UTF-8: {o:?}");
        let e = stderr(&o);
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(
            e.starts_with(&format!("{t}: {var} is set but not valid UTF-8")),
            "{e}"
        );
    }
}

#[test]
fn double_dash_ends_the_options_of_tools_that_run_no_command() {
    // Every operand counts, before and after `--`.
    let o = run(Command::new(bin("ldcheck")).args(["/bin/true", "--", "/bin/ls"]));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert!(stdout(&o).contains("ok: 2 ELF files"), "{}", stdout(&o));
    // After `--` a word that looks like a flag is an operand (here: no such path).
    let o = run(Command::new(bin("ldcheck")).args(["--", "--root"]));
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(stderr(&o).contains("--root: no such file"), "{}", stderr(&o));
    let o = run(Command::new(bin("healthcheck")).args(["--", "file:///"]));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
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
