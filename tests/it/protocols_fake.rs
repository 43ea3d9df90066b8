//! mongodb://, kafka:// and dns:// targets through all three tools
//! (healthcheck, waitfor, ready --when).
//!
//! MongoDB and Kafka are not packaged in Debian, so the servers here are
//! FAKES written from the published wire specifications (MongoDB's wire
//! protocol and BSON spec; the Kafka protocol guide's ApiVersions v0), in
//! tests/fixtures/protocol_fakes.py. They parse what the tools send as
//! strictly as the specs allow and log each request, so a test sees both
//! the verdict and what went over the wire. Real servers are the subject of
//! tests/it/protocols.rs where they exist.
//!
//! dns:// uses a name from an /etc/hosts bound over the host's in a private
//! mount namespace (root and unshare(1) needed).

use dockhand_tests::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A fake server: the Python process, its port and the lines it logs.
struct Fake {
    child: Child,
    port: u16,
    lines: mpsc::Receiver<String>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Fake {
    /// The lines logged: at least `n` (each request is logged before its
    /// answer is sent, so after a tool ended every request of it is on its
    /// way; this waits, bounded, for our reader thread to pass them on),
    /// then whatever else is in already.
    fn seen(&self, n: usize) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        while v.len() < n {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(l) => v.push(l),
                Err(_) => panic!("the fake logged {v:?}, not {n} lines"),
            }
        }
        v.extend(self.lines.try_iter());
        v
    }
}

fn have_python(test: &str) -> bool {
    if have("python3", &["--version"]) {
        return true;
    }
    skip(test, "needs python3 for the protocol fakes");
    false
}

/// Start `protocol_fakes.py PROTO MODE` and wait (bounded) for its
/// "listening PORT" line.
fn fake(proto: &str, mode: &str) -> Fake {
    let mut child = Command::new("python3")
        .arg(repo().join("tests/fixtures/protocol_fakes.py"))
        .args([proto, mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 protocol_fakes.py");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the fake's listening line");
    let port = first
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"));
    Fake {
        child,
        port,
        lines: rx,
    }
}

fn tool(name: &str) -> Command {
    let mut c = Command::new(bin(name));
    c.env_clear().env("PATH", "/usr/bin:/bin");
    c
}

/// healthcheck TARGET: (exit code, its one stdout line).
fn hc(target: &str) -> (Option<i32>, String) {
    let o = run(tool("healthcheck").args(["--timeout", "5s", target]));
    let line = stdout(&o);
    assert_eq!(line.lines().count(), 1, "one line: {o:?}");
    (o.status.code(), line.trim_end().to_string())
}

/// waitfor with a bounded overall timeout.
fn waitfor(timeout: &str, target: &str) -> Output {
    run(tool("waitfor").args(["--timeout", timeout, "--interval", "100ms", target]))
}

/// ready --when TARGET --print up, bounded.
fn ready(timeout: &str, target: &str) -> Output {
    run(tool("ready").args([
        "--timeout",
        timeout,
        "--interval",
        "100ms",
        "--print",
        "up",
        "--when",
        target,
    ]))
}

fn assert_up_in_all_three(target: &str) {
    let o = waitfor("20s", target);
    assert_eq!(o.status.code(), Some(0), "waitfor: {o:?}");
    let o = ready("20s", target);
    assert_eq!(
        (o.status.code(), stdout(&o).trim()),
        (Some(0), "up"),
        "ready: {o:?}"
    );
}

// ------------------------------------------------------------------- MongoDB

#[test]
fn mongo_hello_ok_is_up() {
    if !have_python("mongo_hello_ok_is_up") {
        return;
    }
    let f = fake("mongo", "hello-ok");
    let t = format!("mongodb://127.0.0.1:{}", f.port);
    let (code, line) = hc(&t);
    assert_eq!(code, Some(0), "{line}");
    assert!(
        line.starts_with(&format!("healthy: {t} -> hello ok, primary in ")),
        "{line}"
    );
    assert_up_in_all_three(&t);
    let seen = f.seen(3);
    assert!(seen.iter().all(|l| l == "mongo OP_MSG hello"), "{seen:?}");
    assert!(seen.len() >= 3, "{seen:?}");
}

#[test]
fn mongo_ok_zero_is_not_ready_with_its_errmsg() {
    if !have_python("mongo_ok_zero_is_not_ready_with_its_errmsg") {
        return;
    }
    let f = fake("mongo", "hello-fail");
    let t = format!("mongodb://127.0.0.1:{}", f.port);
    let (code, line) = hc(&t);
    assert_eq!(code, Some(1), "{line}");
    assert_eq!(
        line,
        format!("unhealthy: {t} -> hello failed: node is recovering [code 91]")
    );
    let o = waitfor("1s", &t);
    assert_eq!(o.status.code(), Some(124), "{o:?}");
    assert!(
        stderr(&o).contains(&format!(
            "{t} is still down: hello failed: node is recovering [code 91]"
        )),
        "{o:?}"
    );
    let o = ready("1s", &t);
    assert_eq!(o.status.code(), Some(124), "{o:?}");
    assert!(stderr(&o).contains("node is recovering"), "{o:?}");
    // Not a reason to try the legacy way.
    assert!(f.seen(1).iter().all(|l| l == "mongo OP_MSG hello"));
}

#[test]
fn mongo_legacy_servers_get_is_master() {
    if !have_python("mongo_legacy_servers_get_is_master") {
        return;
    }
    // Closes the connection on OP_MSG (before 3.6), or has no hello command
    // (before 4.4.2): both are asked isMaster over OP_QUERY.
    for mode in ["legacy-close", "legacy-nohello"] {
        let f = fake("mongo", mode);
        let t = format!("mongodb://127.0.0.1:{}", f.port);
        let (code, line) = hc(&t);
        assert_eq!(code, Some(0), "{mode}: {line}");
        assert!(
            line.contains("-> isMaster ok, primary, legacy OP_QUERY in "),
            "{mode}: {line}"
        );
        assert_eq!(
            f.seen(2),
            ["mongo OP_MSG hello", "mongo OP_QUERY isMaster"],
            "{mode}"
        );
        assert_up_in_all_three(&t);
        let seen = f.seen(4);
        assert!(
            !seen.iter().any(|l| l.starts_with("bad request")),
            "{mode}: {seen:?}"
        );
    }
}

#[test]
fn mongo_garbage_and_huge_lengths_fail_cleanly() {
    if !have_python("mongo_garbage_and_huge_lengths_fail_cleanly") {
        return;
    }
    for (mode, want) in [
        (
            "huge",
            "not a MongoDB reply (message length 2147483647, more than the 1024 KiB this check reads)",
        ),
        (
            "garbage",
            "not a MongoDB reply (message length 1347703880, more than the 1024 KiB this check reads)",
        ),
    ] {
        let f = fake("mongo", mode);
        let t = format!("mongodb://127.0.0.1:{}", f.port);
        let (code, line) = hc(&t);
        assert_eq!(
            (code, line),
            (Some(1), format!("unhealthy: {t} -> {want}")),
            "{mode}"
        );
        let o = waitfor("500ms", &t);
        assert_eq!(o.status.code(), Some(124), "{o:?}");
        assert!(stderr(&o).contains(want), "{o:?}");
    }
}

// --------------------------------------------------------------------- Kafka

#[test]
fn kafka_error_code_zero_is_up() {
    if !have_python("kafka_error_code_zero_is_up") {
        return;
    }
    let f = fake("kafka", "ok");
    let t = format!("kafka://127.0.0.1:{}", f.port);
    let (code, line) = hc(&t);
    assert_eq!(code, Some(0), "{line}");
    assert!(
        line.starts_with(&format!("healthy: {t} -> ApiVersions ok, 4 APIs in ")),
        "{line}"
    );
    assert_up_in_all_three(&t);
    let seen = f.seen(3);
    assert!(
        seen.len() >= 3
            && seen.iter().all(
                |l| l.starts_with("kafka ApiVersions v0 correlation ") && l.ends_with(" client dockhand")
            ),
        "{seen:?}"
    );
}

#[test]
fn kafka_error_codes_are_not_ready_and_named() {
    if !have_python("kafka_error_codes_are_not_ready_and_named") {
        return;
    }
    let f = fake("kafka", "error:35");
    let t = format!("kafka://127.0.0.1:{}", f.port);
    let (code, line) = hc(&t);
    assert_eq!(
        (code, line),
        (
            Some(1),
            format!("unhealthy: {t} -> ApiVersions error_code 35 (UNSUPPORTED_VERSION)")
        )
    );
    let f = fake("kafka", "error:15");
    let t = format!("kafka://127.0.0.1:{}", f.port);
    let o = waitfor("500ms", &t);
    assert_eq!(o.status.code(), Some(124), "{o:?}");
    assert!(
        stderr(&o).contains("ApiVersions error_code 15 (COORDINATOR_NOT_AVAILABLE)"),
        "{o:?}"
    );
    let o = ready("500ms", &t);
    assert_eq!(o.status.code(), Some(124), "{o:?}");
    assert!(stderr(&o).contains("error_code 15"), "{o:?}");
}

#[test]
fn kafka_wrong_replies_fail_cleanly() {
    if !have_python("kafka_wrong_replies_fail_cleanly") {
        return;
    }
    for (mode, want) in [
        ("wrong-correlation", "not a Kafka reply (correlation_id "),
        (
            "huge",
            "not a Kafka reply (size 2147483647, more than the 1024 KiB this check reads)",
        ),
        (
            "garbage",
            "not a Kafka reply (size 1213486160, more than the 1024 KiB this check reads)",
        ),
    ] {
        let f = fake("kafka", mode);
        let t = format!("kafka://127.0.0.1:{}", f.port);
        let (code, line) = hc(&t);
        assert_eq!(code, Some(1), "{mode}: {line}");
        assert!(
            line.starts_with(&format!("unhealthy: {t} -> {want}")),
            "{mode}: {line}"
        );
    }
}

// ----------------------------------------------------------------------- DNS

#[test]
fn dns_names_from_a_private_hosts_file() {
    const T: &str = "dns_names_from_a_private_hosts_file";
    if !need_root(T) {
        return;
    }
    if !have("unshare", &["--version"]) {
        return skip(T, "needs unshare (util-linux)");
    }
    let dir = TempDir::new("dns");
    std::fs::write(
        dir.join("hosts"),
        "127.0.0.1 localhost\n10.1.2.3 svc.dockhand.test\n",
    )
    .unwrap();
    // No name server answers: nothing outside the hosts file resolves.
    std::fs::write(
        dir.join("resolv.conf"),
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )
    .unwrap();
    let script = r#"mount --bind "$1/hosts" /etc/hosts && mount --bind "$1/resolv.conf" /etc/resolv.conf &&
        "$2" dns://svc.dockhand.test; echo "hc=$?";
        "$3" --timeout 10s dns://svc.dockhand.test; echo "waitfor=$?";
        "$4" --timeout 10s --print up --when dns://svc.dockhand.test; echo "ready=$?";
        "$3" --timeout 1s dns://nothing.dockhand.invalid; echo "missing=$?""#;
    let o = run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(dir.path())
        .arg(bin("healthcheck"))
        .arg(bin("waitfor"))
        .arg(bin("ready"))
        .env_remove("NOTIFY_SOCKET"));
    let out = stdout(&o);
    let err = stderr(&o);
    assert!(
        out.contains("healthy: dns://svc.dockhand.test -> resolves to 10.1.2.3 in "),
        "{out}\n{err}"
    );
    for want in ["hc=0", "waitfor=0", "up\nready=0", "missing=124"] {
        assert!(out.contains(want), "{want}: {out}\n{err}");
    }
    assert!(err.contains("dns://svc.dockhand.test is up after"), "{err}");
    // The name that resolves nowhere: the wait ends naming the lookup,
    // whether the resolver said no or was still asking.
    assert!(
        err.contains("dns://nothing.dockhand.invalid is still down: cannot resolve nothing.dockhand.invalid")
            || err.contains(
                "dns://nothing.dockhand.invalid is still down: first attempt still resolving the name"
            ),
        "{err}"
    );
}
