//! mysql://, amqp:// and nats:// through the real static binaries
//! (healthcheck, waitfor, ready --when) against real MariaDB, RabbitMQ and
//! NATS servers from Debian's packages, each started by its test on a free
//! loopback port with its own data in a temporary directory and torn down at
//! the end; and small fake servers, written from the published wire formats
//! (MySQL client/server protocol, AMQP 0-9-1, NATS client protocol), for
//! what the real servers will not send: a version mismatch, garbage.
//! See tests/lib.rs for the skip rule.

use dockhand_tests::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Generous bound for a server to start on a loaded machine.
const BOOT: Duration = Duration::from_secs(240);

fn healthcheck() -> Command {
    tool("healthcheck")
}

fn waitfor() -> Command {
    tool("waitfor")
}

fn ready() -> Command {
    tool("ready")
}

/// Run `cmd` to its end, killing it (and failing) after `limit`.
fn run_within(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    finish_within(child, limit)
}

fn finish_within(mut child: Child, limit: Duration) -> Output {
    let end = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > end {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("still running after {limit:?}: {}{}", stdout(&o), stderr(&o));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// healthcheck TARGET with a 5 s timeout: (exit code, its one stdout line).
fn probe(target: &str) -> (i32, String) {
    let o = run_within(
        healthcheck().args(["--timeout", "5s", target]),
        Duration::from_secs(60),
    );
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "{out}{}", stderr(&o));
    assert!(!out.trim_end().chars().any(|c| c.is_control()), "{out:?}");
    (o.status.code().unwrap_or(-1), out.trim_end().to_string())
}

/// Wait until `log` holds `needle`, failing with the log if `server` exits
/// first or `limit` passes.
fn wait_log(server: &mut Child, log: &Path, needle: &str, limit: Duration) {
    let end = Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        if let Some(st) = server.try_wait().unwrap() {
            panic!("server exited ({st}) before {needle:?}:\n{text}");
        }
        assert!(Instant::now() < end, "no {needle:?} after {limit:?}:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A server process in its own process group, stopped with SIGTERM to the
/// group (then SIGKILL if it lingers) when dropped.
struct Server {
    child: Child,
    /// Run after the group is gone (RabbitMQ's epmd daemonises away from it).
    after: Option<Box<dyn FnOnce()>>,
}

impl Server {
    fn start(cmd: &mut Command) -> Server {
        use std::os::unix::process::CommandExt;
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Server { child, after: None }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        let end = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
        if let Some(f) = self.after.take() {
            f();
        }
    }
}

fn need(test: &str, path: &str, pkg: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    skip(
        test,
        &format!("needs {path} (Debian package {pkg}; `make setup` installs it)"),
    );
    false
}

/// A fake server: each connection is handed to `talk` on its own thread.
fn fake(talk: impl Fn(&mut TcpStream) + Send + Sync + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let talk = std::sync::Arc::new(talk);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let talk = talk.clone();
            std::thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                talk(&mut s);
                // Hold the connection until the client is done with it.
                let mut sink = [0u8; 256];
                while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
    });
    port
}

/// Read exactly `n` bytes (what a client sends before the server answers).
fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    let _ = s.read_exact(&mut b);
    b
}

// ------------------------------------------------------------------ MariaDB

struct Maria {
    _dir: TempDir,
    server: Server,
    port: u16,
}

/// mariadb-install-db into a temporary directory, then mariadbd on a free
/// loopback port, waited for until it logs "ready for connections".
fn mariadb(test: &str, extra: &[&str]) -> Option<Maria> {
    if !need(test, "/usr/sbin/mariadbd", "mariadb-server")
        || !need(test, "/usr/bin/mariadb-install-db", "mariadb-server")
    {
        return None;
    }
    let dir = TempDir::new("mariadb");
    let data = dir.join("data");
    // As root the server must be told to stay root; otherwise it runs as
    // whoever runs the test, which owns the directory.
    let user: &[&str] = if is_root() { &["--user=root"] } else { &[] };
    let o = run(Command::new("mariadb-install-db")
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(["--skip-test-db", "--auth-root-authentication-method=normal"])
        .args(user));
    assert!(
        o.status.success(),
        "mariadb-install-db: {}{}",
        stdout(&o),
        stderr(&o)
    );
    let port = free_port();
    let log = dir.join("log");
    let mut server = Server::start(
        Command::new("/usr/sbin/mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.join("s.sock").display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=16M",
            ])
            .args(user)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    wait_log(&mut server.child, &log, "ready for connections", BOOT);
    Some(Maria {
        _dir: dir,
        server,
        port,
    })
}

#[test]
fn real_mariadb_handshake_is_up_and_too_many_connections_is_not() {
    let test = "real_mariadb_handshake_is_up_and_too_many_connections_is_not";
    // The smallest limit MariaDB takes (10, and 1 more for an admin), and
    // unauthenticated connections kept for as long as the test needs.
    let Some(m) = mariadb(test, &["--max-connections=10", "--connect-timeout=600"]) else {
        return;
    };
    let t = format!("mysql://127.0.0.1:{}", m.port);
    let (code, line) = probe(&t);
    assert_eq!(code, 0, "{line}");
    assert!(
        line.starts_with(&format!("healthy: {t} -> handshake from 10.")) && line.contains("MariaDB"),
        "{line}"
    );
    // A login in the URL is accepted, never sent, never shown.
    let (code, line) = probe(&format!("mysql://root:s3cretpw@127.0.0.1:{}/mysql", m.port));
    assert_eq!(code, 0, "{line}");
    assert!(!line.contains("s3cretpw") && !line.contains("root"), "{line}");

    // Fill every slot with connections that never log in, until the server
    // answers a new one with an ERR packet.
    let mut held = Vec::new();
    let refused = loop {
        assert!(held.len() < 64, "MariaDB never refused a connection");
        let mut s = TcpStream::connect(("127.0.0.1", m.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut head = [0u8; 5];
        s.read_exact(&mut head).unwrap();
        if head[4] == 0xff {
            break s;
        }
        held.push(s);
    };
    drop(refused);
    let (code, line) = probe(&t);
    assert_eq!(
        (code, line.as_str()),
        (
            1,
            format!("unhealthy: {t} -> MySQL error 1040: Too many connections").as_str()
        )
    );
    let o = run_within(
        waitfor().args(["--timeout", "1s", &t, "--", "echo", "ran"]),
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).contains(&format!(
            "{t} is still down: MySQL error 1040: Too many connections"
        )),
        "{}",
        stderr(&o)
    );
    // Slots free again: waitfor sees it up and runs the command.
    drop(held);
    let o = run_within(
        waitfor().args(["--timeout", "60s", &t, "--", "echo", "ran"]),
        Duration::from_secs(120),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "ran\n");

    // The other protocols' checks fail at once with a clear line: MariaDB
    // speaks first, and not AMQP or NATS.
    let (code, line) = probe(&format!("amqp://127.0.0.1:{}", m.port));
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains("not an AMQP 0-9-1 reply (frame type 100)"),
        "{line}"
    );
    let (code, line) = probe(&format!("nats://127.0.0.1:{}", m.port));
    assert_eq!(code, 1, "{line}");
    assert!(line.contains("not a NATS server (no INFO line)"), "{line}");
    drop(m.server);
}

// ---------------------------------------------------------------- RabbitMQ

#[test]
fn real_rabbitmq_is_waited_for_until_connection_start() {
    let test = "real_rabbitmq_is_waited_for_until_connection_start";
    let script = "/usr/lib/rabbitmq/bin/rabbitmq-server";
    if !need(test, script, "rabbitmq-server") {
        return;
    }
    let dir = TempDir::new("rabbitmq");
    let held = HeldPort::new();
    let port = held.port();
    let t = format!("amqp://127.0.0.1:{port}");
    let waiting = waitfor()
        .args(["--timeout", "300s", &t, "--", "echo", "go"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_sleeping(waiting.id());
    // The broker binds the port itself: released just before it starts.
    // Its own epmd on a port of its own, so stopping it stops no one else's.
    drop(held);
    let epmd = free_port().to_string();
    let log = dir.join("stdout");
    let mut server = Server::start(
        Command::new(script)
            .env("HOME", dir.path())
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("ERL_EPMD_PORT", &epmd)
            .env("RABBITMQ_NODENAME", format!("dockhand{port}@localhost"))
            .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", dir.join("log"))
            .env("RABBITMQ_PID_FILE", dir.join("pid"))
            .env("RABBITMQ_CONFIG_FILE", dir.join("none"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.join("none.config"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("plugins"))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null()),
    );
    server.after = Some(Box::new(move || {
        let _ = Command::new("epmd")
            .args(["-port", &epmd, "-kill"])
            .env("ERL_EPMD_PORT", &epmd)
            .stdout(Stdio::null())
            .status();
    }));
    let o = finish_within(waiting, BOOT + BOOT);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(o.status.code(), Some(0), "{}\n{text}", stderr(&o));
    assert_eq!(stdout(&o), "go\n");
    assert!(
        stderr(&o).contains(&format!("{t} is up after"))
            && stderr(&o).contains("Connection.Start (AMQP 0-9) from RabbitMQ 3."),
        "{}",
        stderr(&o)
    );
    // Up means the broker said so: its log says its listener is there.
    wait_log(&mut server.child, &log, "Starting broker... completed", BOOT);

    // ready --when announces it too.
    let o = run_within(
        ready().args(["--when", &t, "--timeout", "30s", "--print", "BROKER_READY"]),
        Duration::from_secs(60),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "BROKER_READY\n");

    // RabbitMQ waits for the client to speak: checks that wait for the
    // server to speak first end at their timeout with a clear line.
    let (code, line) = probe(&format!("mysql://127.0.0.1:{port}"));
    assert_eq!(
        (code, line.as_str()),
        (
            1,
            format!("unhealthy: mysql://127.0.0.1:{port} -> no MySQL handshake: timed out after 5s").as_str()
        )
    );
    let (code, line) = probe(&format!("nats://127.0.0.1:{port}"));
    assert_eq!(
        (code, line.as_str()),
        (
            1,
            format!("unhealthy: nats://127.0.0.1:{port} -> no NATS INFO: timed out after 5s").as_str()
        )
    );
    drop(server);
}

// -------------------------------------------------------------------- NATS

fn nats_server(test: &str, args: &[&str]) -> Option<(Server, u16, TempDir)> {
    if !need(test, "/usr/sbin/nats-server", "nats-server") {
        return None;
    }
    let dir = TempDir::new("nats");
    let port = free_port();
    let log = dir.join("log");
    let mut server = Server::start(
        Command::new("/usr/sbin/nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap()),
    );
    wait_log(&mut server.child, &log, "Server is ready", BOOT);
    Some((server, port, dir))
}

#[test]
fn real_nats_answers_pong_and_its_errors_are_not_up() {
    let test = "real_nats_answers_pong_and_its_errors_are_not_up";
    let Some((_s, port, _d)) = nats_server(test, &[]) else {
        return;
    };
    let t = format!("nats://127.0.0.1:{port}");
    let (code, line) = probe(&t);
    assert_eq!(code, 0, "{line}");
    assert!(
        line.starts_with(&format!("healthy: {t} -> PONG from nats-server 2.")),
        "{line}"
    );
    let o = run_within(
        ready().args(["--when", &t, "--timeout", "30s", "--print", "NATS_READY"]),
        Duration::from_secs(60),
    );
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), "NATS_READY\n"),
        "{}",
        stderr(&o)
    );
    // Other protocols' checks against it fail at once, naming what answered.
    let (code, line) = probe(&format!("mysql://127.0.0.1:{port}"));
    assert_eq!(code, 1, "{line}");
    assert!(
        line.contains("not a MySQL handshake (packet length ") && line.contains("INFO {"),
        "{line}"
    );
    let (code, line) = probe(&format!("amqp://127.0.0.1:{port}"));
    assert_eq!(code, 1, "{line}");
    assert!(line.contains("not an AMQP 0-9-1 reply (frame type 73)"), "{line}");

    // A server at its connection limit sends INFO, then -ERR.
    let dir = TempDir::new("nats-conf");
    std::fs::write(dir.join("conf"), "max_connections: 1\n").unwrap();
    let conf = dir.join("conf").display().to_string();
    let Some((_full, port, _d)) = nats_server(test, &["-c", &conf]) else {
        return;
    };
    let t = format!("nats://127.0.0.1:{port}");
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    client.write_all(b"CONNECT {}\r\nPING\r\n").unwrap();
    let mut got = Vec::new();
    while !got.ends_with(b"PONG\r\n") {
        let mut b = [0u8; 4096];
        let n = client.read(&mut b).unwrap();
        assert!(n > 0 && got.len() < 65536, "{got:?}");
        got.extend_from_slice(&b[..n]);
    }
    let (code, line) = probe(&t);
    assert_eq!(
        (code, line.as_str()),
        (
            1,
            format!("unhealthy: {t} -> NATS error: maximum connections exceeded").as_str()
        )
    );
    drop(client);
    let o = run_within(
        waitfor().args(["--timeout", "60s", &t, "--", "echo", "ran"]),
        Duration::from_secs(120),
    );
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(0), "ran\n"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn real_nats_with_auth_is_up_at_info_and_no_password_is_shown() {
    let test = "real_nats_with_auth_is_up_at_info_and_no_password_is_shown";
    let Some((_s, port, _d)) = nats_server(test, &["--user", "app", "--pass", "s3cretpw"]) else {
        return;
    };
    let (code, line) = probe(&format!("nats://app:s3cretpw@127.0.0.1:{port}"));
    assert_eq!(code, 0, "{line}");
    assert!(
        line.starts_with(&format!(
            "healthy: nats://127.0.0.1:{port} -> INFO from nats-server 2."
        )) && line.contains("(authentication required: CONNECT not tried) in ")
            && !line.contains("s3cretpw"),
        "{line}"
    );
}

// ------------------------------------------------------------------- fakes

/// What the real servers will not send, from the published formats: an AMQP
/// broker offering another version, and garbage on each port. None of it is
/// up, each says why in one line, and none of it hangs.
#[test]
fn version_mismatch_and_garbage_are_not_up() {
    // AMQP 0-9-1 section 4.2.2: a server that does not accept the client's
    // header answers with its own and closes.
    let amqp10 = fake(|s| {
        read_n(s, 8);
        let _ = s.write_all(b"AMQP\x00\x01\x00\x00");
    });
    let t = format!("amqp://127.0.0.1:{amqp10}");
    let o = run_within(
        waitfor().args(["--timeout", "1s", &t, "--", "echo", "ran"]),
        Duration::from_secs(60),
    );
    assert_eq!(
        (o.status.code(), stdout(&o).as_str()),
        (Some(124), ""),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(&format!(
            "{t} is still down: the server offers AMQP 1-0-0 (protocol id 0), not 0-9-1"
        )),
        "{}",
        stderr(&o)
    );
    // A plain listener answering an HTTP error to anything.
    let http = fake(|s| {
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n\x1b[2J");
    });
    for (scheme, why) in [
        ("amqp", "not an AMQP 0-9-1 reply (frame type 72)"),
        ("mysql", "not a MySQL handshake (packet length "),
        ("nats", "not a NATS server (no INFO line)"),
    ] {
        let (code, line) = probe(&format!("{scheme}://127.0.0.1:{http}"));
        assert_eq!(code, 1, "{line}");
        assert!(line.contains(why) && line.contains("HTTP/1.1 400"), "{line}");
    }
    // The fuzz seeds, served: the handshake-shaped ones are up, the rest not.
    let seeds = repo().join("fuzz/corpus");
    for (scheme, file, up) in [
        ("mysql", "mariadb-handshake", true),
        ("mysql", "too-many-connections", false),
        ("mysql", "err-sqlstate", false),
        ("mysql", "nats-info", false),
        ("amqp", "connection-start", true),
        ("amqp", "amqp-1.0-header", false),
        ("amqp", "connection-close", false),
    ] {
        let bytes = std::fs::read(seeds.join(scheme).join(file)).unwrap();
        let port = fake(move |s| {
            if scheme == "amqp" {
                read_n(s, 8);
            }
            let _ = s.write_all(&bytes);
        });
        let (code, line) = probe(&format!("{scheme}://127.0.0.1:{port}"));
        assert_eq!(code, if up { 0 } else { 1 }, "{file}: {line}");
    }
    // NATS: +OK lines are skipped; -ERR after CONNECT is not up.
    for (reply, up, want) in [
        (&b"+OK\r\nPONG\r\n"[..], true, "PONG"),
        (
            b"-ERR 'Authorization Violation'\r\n",
            false,
            "NATS error: Authorization Violation",
        ),
        (b"+PONG\r\n", false, "not a NATS reply"),
    ] {
        let port = fake(move |s| {
            let _ = s.write_all(b"INFO {\"version\":\"9.9\"}\r\n");
            let mut got = Vec::new();
            while !got.ends_with(b"PING\r\n") && got.len() < 4096 {
                let mut b = [0u8; 512];
                match s.read(&mut b) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&b[..n]),
                }
            }
            assert!(got.starts_with(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n"));
            let _ = s.write_all(reply);
        });
        let (code, line) = probe(&format!("nats://127.0.0.1:{port}"));
        assert_eq!(code, if up { 0 } else { 1 }, "{line}");
        assert!(line.contains(want), "{line}");
    }
}
