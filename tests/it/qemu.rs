//! The aarch64 builds, run under qemu-user: --version and one real behaviour
//! each. Owned by the foundation work; tools add their behaviour here.

use dockhand_tests::*;
use std::path::PathBuf;
use std::process::Command;

fn qemu() -> Option<PathBuf> {
    let q = PathBuf::from("/usr/bin/qemu-aarch64-static");
    q.is_file().then_some(q)
}

fn aarch64(tool: &str) -> PathBuf {
    let p = repo().join("dist/aarch64").join(tool);
    assert!(p.is_file(), "{} is missing: run `make dist`", p.display());
    p
}

#[test]
fn aarch64_versions() {
    let Some(q) = qemu() else {
        return skip(
            "aarch64_versions",
            "needs qemu-user-static; `make test` installs it",
        );
    };
    for t in ["runas", "healthcheck", "waitfor", "ready", "ldcheck"] {
        let o = run(Command::new(&q).arg(aarch64(t)).arg("--version"));
        assert!(o.status.success(), "{t}: {o:?}");
        assert_eq!(stdout(&o).trim(), format!("{t} {}", env!("CARGO_PKG_VERSION")));
    }
}
