//! Helpers for the tests that drive a real Docker engine with the examples
//! (swarm.rs, allinone.rs): running docker, building the local images through
//! docker/images.sh, and polling for a state with a deadline.

use crate::{bin, bin_dir, have, repo, run, skip, stderr, stdout};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// True when a Docker engine answers; otherwise skip (fail under CI).
pub fn available(test: &str) -> bool {
    if have("docker", &["info"]) {
        return true;
    }
    skip(test, "no Docker engine answers `docker info`");
    false
}

pub fn docker(args: &[&str]) -> Output {
    run(Command::new("docker").args(args).stdin(Stdio::null()))
}

/// Run docker; panic with its output unless it succeeds; stdout trimmed.
pub fn docker_ok(args: &[&str]) -> String {
    let o = docker(args);
    assert!(
        o.status.success(),
        "docker {args:?} failed: {}{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o).trim().to_string()
}

/// docker's stdout, trimmed, or "" when it fails (a container already gone).
pub fn docker_or_empty(args: &[&str]) -> String {
    let o = docker(args);
    if o.status.success() {
        stdout(&o).trim().to_string()
    } else {
        String::new()
    }
}

fn images_sh() -> PathBuf {
    repo().join("docker/images.sh")
}

/// `docker/images.sh ARGS`: the image reference it prints; panics with its error.
pub fn images(args: &[&str]) -> String {
    let o = run(Command::new(images_sh()).args(args).stdin(Stdio::null()));
    assert!(
        o.status.success(),
        "docker/images.sh {args:?} failed: {}",
        stderr(&o)
    );
    stdout(&o).lines().last().unwrap_or_default().trim().to_string()
}

/// The toolkit image (docker/Dockerfile) from the binaries under test, as TAG.
pub fn toolkit(tag: &str) -> String {
    for t in ["runas", "healthcheck", "waitfor", "ready", "ldcheck"] {
        bin(t);
    }
    images(&["toolkit", bin_dir().to_str().unwrap(), tag])
}

/// `docker build` through docker/images.sh (it picks the builder this machine
/// has); panics with the build's output when it fails.
pub fn build(args: &[&str]) {
    let o = run(Command::new(images_sh())
        .arg("build")
        .args(args)
        .stdin(Stdio::null()));
    assert!(
        o.status.success(),
        "docker build {args:?} failed:\n{}{}",
        stdout(&o),
        stderr(&o)
    );
}

/// Poll `f` every 250 ms until it is true; panic naming `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return;
        }
        assert!(
            Instant::now() < end,
            "timed out after {limit:?} waiting until {what}"
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// `docker logs` of a container, stdout and stderr together.
pub fn logs(name: &str) -> String {
    let o = docker(&["logs", name]);
    format!("{}{}", stdout(&o), stderr(&o))
}
