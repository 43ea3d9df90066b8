//! The aarch64 builds, run under qemu-user (Debian's qemu-user-static):
//! `--version` and one real behaviour each. qemu-user passes execve to the
//! host kernel, so an aarch64 runas can exec the host's own programs.

use dockhand_tests::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn qemu(test: &str) -> Option<PathBuf> {
    let q = PathBuf::from("/usr/bin/qemu-aarch64-static");
    if q.is_file() {
        Some(q)
    } else {
        skip(
            test,
            "needs qemu-user-static (/usr/bin/qemu-aarch64-static); `make test` installs it",
        );
        None
    }
}

fn aarch64(tool: &str) -> PathBuf {
    let p = repo().join("dist/aarch64").join(tool);
    assert!(p.is_file(), "{} is missing: run `make dist`", p.display());
    let head = std::fs::read(&p).unwrap();
    // e_machine at offset 18: 183 is EM_AARCH64.
    assert_eq!(
        u16::from_le_bytes([head[18], head[19]]),
        183,
        "{} is not an aarch64 ELF",
        p.display()
    );
    p
}

#[test]
fn aarch64_versions() {
    let Some(q) = qemu("aarch64_versions") else { return };
    for t in ["runas", "healthcheck", "waitfor", "ready", "ldcheck"] {
        let o = run(Command::new(&q).arg(aarch64(t)).arg("--version"));
        assert!(o.status.success(), "{t}: {o:?}");
        // The full line (commit, target, std) is checked in supply.rs.
        let want = format!("{t} {} (git ", env!("CARGO_PKG_VERSION"));
        assert!(stdout(&o).starts_with(&want), "{t}: {}", stdout(&o));
    }
}

#[test]
fn aarch64_runas_drops_to_nobody() {
    let Some(q) = qemu("aarch64_runas_drops_to_nobody") else {
        return;
    };
    if !need_root("aarch64_runas_drops_to_nobody") {
        return;
    }
    let o = run(Command::new(&q).arg(aarch64("runas")).args([
        "65534:65534",
        "/bin/sh",
        "-c",
        "id -u; id -g; id -G",
    ]));
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    assert!(
        out.split_whitespace().all(|w| w == "65534"),
        "ids after the drop: {out:?}"
    );
}

/// A one-shot HTTP server answering 200 to every connection, for `count` connections.
fn http_server(count: usize) -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        for _ in 0..count {
            let Ok((mut s, _)) = l.accept() else { return };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (port, h)
}

#[test]
fn aarch64_healthcheck_probes_http() {
    let Some(q) = qemu("aarch64_healthcheck_probes_http") else {
        return;
    };
    let (port, h) = http_server(1);
    let o = run(Command::new(&q)
        .arg(aarch64("healthcheck"))
        .arg(format!("http://127.0.0.1:{port}/health")));
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).starts_with("healthy:"), "{}", stdout(&o));
    h.join().unwrap();
    let o = run(Command::new(&q)
        .arg(aarch64("healthcheck"))
        .arg(format!("tcp://127.0.0.1:{port}")));
    assert_eq!(o.status.code(), Some(1), "a closed port is unhealthy: {o:?}");
}

#[test]
fn aarch64_waitfor_waits_then_execs() {
    let Some(q) = qemu("aarch64_waitfor_waits_then_execs") else {
        return;
    };
    // Refused while waitfor starts; the same socket then listens, and stays
    // open until waitfor is done (no re-bind, no fixed window).
    let held = HeldPort::new();
    let child = Command::new(&q)
        .arg(aarch64("waitfor"))
        .args(["--timeout", "60s", &held.addr(), "--", "/bin/echo", "started"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_sleeping(child.id());
    let _l = held.listen();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o).trim(), "started");
}

#[test]
fn aarch64_ready_announces() {
    let Some(q) = qemu("aarch64_ready_announces") else {
        return;
    };
    let d = TempDir::new("qemu-ready");
    let target = d.join("up");
    std::fs::write(&target, "").unwrap();
    let marker = d.join("app.ready");
    let o = run(Command::new(&q).arg(aarch64("ready")).args([
        "--when",
        &format!("file://{}", target.display()),
        "--file",
        marker.to_str().unwrap(),
        "--print",
        "APP_READY",
    ]));
    assert!(o.status.success(), "{o:?}");
    assert_eq!(stdout(&o).trim(), "APP_READY");
    assert!(marker.is_file(), "marker not written");
}

#[test]
fn aarch64_ldcheck_audits_a_tree() {
    let Some(q) = qemu("aarch64_ldcheck_audits_a_tree") else {
        return;
    };
    // The x86_64 dist binaries are static: nothing to resolve, exit 0.
    let o = run(Command::new(&q)
        .arg(aarch64("ldcheck"))
        .args(["--format", "json"])
        .arg(bin_dir()));
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    assert!(out.contains("\"files\""), "{out}");
    assert!(
        out.contains("\"missing\":[]") || out.contains("\"missing\": []"),
        "{out}"
    );
}
