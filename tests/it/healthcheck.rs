//! Integration tests for healthcheck: the real static binary against real
//! loopback servers built here from std listeners, and PID 1 in a PID
//! namespace. See tests/lib.rs for the skip rule.

use dockhand_tests::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Requests the server has seen, in order.
type Seen = Arc<Mutex<Vec<String>>>;

/// Read one request head (up to the blank line), bounded by a timeout.
fn read_request(s: &mut TcpStream) -> String {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut b = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
        match s.read(&mut b) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// A server on `addr` (port 0) answering every connection on its own thread
/// with `respond`. Returns the port and the requests seen.
fn serve_on<F>(addr: &str, respond: F) -> Option<(u16, Seen)>
where
    F: Fn(&mut TcpStream, &str) + Send + Sync + 'static,
{
    let l = TcpListener::bind(addr).ok()?;
    let port = l.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    let respond = Arc::new(respond);
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let respond = respond.clone();
            let seen = seen2.clone();
            std::thread::spawn(move || {
                let req = read_request(&mut s);
                seen.lock().unwrap().push(req.clone());
                respond(&mut s, &req);
            });
        }
    });
    Some((port, seen))
}

fn serve<F>(respond: F) -> (u16, Seen)
where
    F: Fn(&mut TcpStream, &str) + Send + Sync + 'static,
{
    serve_on("127.0.0.1:0", respond).expect("bind 127.0.0.1")
}

/// A server that answers every request with `reply`.
fn fixed(reply: &'static str) -> (u16, Seen) {
    serve(move |s, _| {
        let _ = s.write_all(reply.as_bytes());
    })
}

fn hc(args: &[&str]) -> Output {
    run(Command::new(bin("healthcheck")).args(args))
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// A port that refuses every connection: one `HeldPort` (bound, never
/// listening) kept for the whole run, so no other program can take it.
fn dead_port() -> u16 {
    static HELD: std::sync::OnceLock<HeldPort> = std::sync::OnceLock::new();
    HELD.get_or_init(HeldPort::new).port()
}

#[test]
fn statuses_follow_the_kubernetes_rule() {
    for (reply, want_code, want) in [
        ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, "-> 200 in "),
        ("HTTP/1.1 204 No Content\r\n\r\n", 0, "-> 204 in "),
        (
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
            1,
            "-> status 404",
        ),
        (
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n",
            1,
            "-> status 500",
        ),
    ] {
        let (port, _) = fixed(reply);
        let url = format!("http://127.0.0.1:{port}/health");
        let o = hc(&[&url]);
        assert_eq!(code(&o), want_code, "{reply:?}: {o:?}");
        let line = stdout(&o);
        let prefix = if want_code == 0 {
            "healthy: GET "
        } else {
            "unhealthy: GET "
        };
        assert!(line.starts_with(&format!("{prefix}{url} {want}")), "{line}");
        assert_eq!(line.lines().count(), 1, "{line}");
    }
}

#[test]
fn no_follow_judges_the_redirect_itself() {
    // The Location points at a dead port: following it would fail.
    let dead = dead_port();
    let (port, seen) = serve(move |s, _| {
        let r =
            format!("HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:{dead}/\r\nContent-Length: 0\r\n\r\n");
        let _ = s.write_all(r.as_bytes());
    });
    let o = hc(&["--no-follow", &format!("http://127.0.0.1:{port}/old")]);
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(stdout(&o).contains("-> 301 in "), "{o:?}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    let o = run(Command::new(bin("healthcheck"))
        .arg(format!("http://127.0.0.1:{port}/old"))
        .env("HEALTHCHECK_NO_FOLLOW", "1"));
    assert_eq!(code(&o), 0, "{o:?}");
    assert_eq!(seen.lock().unwrap().len(), 2);
    // Followed by default: the dead port decides.
    let o = hc(&[&format!("http://127.0.0.1:{port}/old")]);
    assert_eq!(code(&o), 1, "{o:?}");
    assert!(
        stdout(&o).contains(&format!(
            "-> connection refused at http://127.0.0.1:{dead}/ (1 redirect)"
        )),
        "{o:?}"
    );
}

#[test]
fn status_flag_overrides_the_rule() {
    let (port, _) = fixed("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(code(&hc(&["--status", "200,404", &url])), 0);
    let (port, _) = fixed("HTTP/1.1 301 Moved\r\nContent-Length: 0\r\n\r\n");
    let o = hc(&["--status", "200-299", &format!("http://127.0.0.1:{port}/")]);
    assert_eq!(code(&o), 1, "{o:?}");
    assert!(stdout(&o).contains("status 301"), "{o:?}");
}

#[test]
fn refused_is_unhealthy() {
    let url = format!("http://127.0.0.1:{}/health", dead_port());
    let o = hc(&[&url]);
    assert_eq!(code(&o), 1, "{o:?}");
    assert_eq!(
        stdout(&o).trim(),
        format!("unhealthy: GET {url} -> connection refused")
    );
}

#[test]
fn accept_then_silence_is_bounded_by_the_timeout() {
    let (port, _) = serve(|_s, _| std::thread::sleep(Duration::from_secs(30)));
    let t = Instant::now();
    let o = hc(&["--timeout", "1s", &format!("http://127.0.0.1:{port}/")]);
    let took = t.elapsed();
    assert_eq!(code(&o), 1, "{o:?}");
    assert!(stdout(&o).contains("-> timed out after 1s"), "{o:?}");
    assert!(took >= Duration::from_millis(900), "gave up early: {took:?}");
    assert!(took < Duration::from_secs(6), "deadline did not hold: {took:?}");
}

#[test]
fn trickling_server_is_bounded_by_the_timeout() {
    // Headers one byte at a time, then a body one byte at a time.
    let (port, _) = serve(|s, _| {
        for b in b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
            .iter()
            .chain([b'x'; 1000].iter())
        {
            if s.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let url = format!("http://127.0.0.1:{port}/");
    for args in [
        vec!["--timeout", "1s", &url],
        vec!["--timeout", "6s", "--body-contains", "never", &url],
    ] {
        let t = Instant::now();
        let o = hc(&args);
        let took = t.elapsed();
        assert_eq!(code(&o), 1, "{o:?}");
        assert!(stdout(&o).contains("timed out after"), "{o:?}");
        let limit = if args[1] == "1s" { 6 } else { 12 };
        assert!(
            took < Duration::from_secs(limit),
            "deadline did not hold: {took:?}"
        );
    }
}

/// Peak RSS in KiB of one healthcheck run, measured by GNU time.
fn hc_peak_rss(test: &str, args: &[&str]) -> Option<(Output, u64)> {
    let mut cmd = vec![bin("healthcheck").into_os_string()];
    cmd.extend(args.iter().map(std::ffi::OsString::from));
    peak_rss(test, &cmd, run)
}

#[test]
fn huge_bodies_are_read_only_to_64k() {
    let big = |s: &mut TcpStream, head: &str| {
        let _ = s.write_all(head.as_bytes());
        let block = [b'a'; 65536];
        for _ in 0..160 {
            if s.write_all(&block).is_err() {
                return;
            }
        }
    };
    let (p10m, _) = serve(move |s, _| big(s, "HTTP/1.1 200 OK\r\nContent-Length: 10485760\r\n\r\n"));
    // Announces 4 GiB, sends 10 MiB: a client trusting the length would try to hold it.
    let (p4g, _) = serve(move |s, _| big(s, "HTTP/1.1 200 OK\r\nContent-Length: 4294967296\r\n\r\n"));
    for port in [p10m, p4g] {
        let url = format!("http://127.0.0.1:{port}/");
        let Some((o, kib)) = hc_peak_rss(
            "huge_bodies_are_read_only_to_64k",
            &["--timeout", "10s", "--body-contains", "needle", &url],
        ) else {
            return;
        };
        assert_eq!(code(&o), 1, "{o:?}");
        assert!(
            stdout(&o).contains("body does not contain \"needle\" (first 64 KiB read)"),
            "{o:?}"
        );
        assert!(kib < 8 * 1024, "peak RSS {kib} KiB for a huge body");
        // Without --body-contains the body is not read at all.
        let (o, kib) = hc_peak_rss("huge_bodies_are_read_only_to_64k", &[&url]).unwrap();
        assert_eq!(code(&o), 0, "{o:?}");
        assert!(kib < 8 * 1024, "peak RSS {kib} KiB");
    }
}

#[test]
fn body_contains_reads_plain_and_chunked_bodies() {
    let (port, _) = fixed("HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}");
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(code(&hc(&["--body-contains", "\"ok\"", &url])), 0);
    let o = hc(&["--body-contains", "degraded", &url]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("body does not contain \"degraded\""), "{o:?}");
    // The text spans two chunks, so it is only found when chunks are decoded.
    let (port, _) =
        fixed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nsta-\r\n5\r\nready\r\n0\r\n\r\n");
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(code(&hc(&["--body-contains", "sta-ready", &url])), 0);
    assert_eq!(code(&hc(&["--body-contains", "4\r\n", &url])), 1);
}

#[test]
fn headers_are_sent() {
    let (port, seen) = fixed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let o = hc(&[
        "--header",
        "Authorization: Bearer s3cret",
        "--header=X-Probe: 1",
        &format!("http://127.0.0.1:{port}/h?x=1"),
    ]);
    assert_eq!(code(&o), 0, "{o:?}");
    let req = seen.lock().unwrap()[0].clone();
    assert!(req.starts_with("GET /h?x=1 HTTP/1.1\r\n"), "{req}");
    assert!(req.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")), "{req}");
    assert!(req.contains("\r\nAuthorization: Bearer s3cret\r\n"), "{req}");
    assert!(req.contains("\r\nX-Probe: 1\r\n"), "{req}");
    let o = hc(&["--header", "X: a\nY: b", &format!("http://127.0.0.1:{port}/")]);
    assert_eq!(code(&o), 2, "{o:?}");
}

#[test]
fn ipv6_literal() {
    let Some((port, _)) = serve_on("[::1]:0", |s, _| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    }) else {
        return skip("ipv6_literal", "cannot bind [::1] (no IPv6 loopback here)");
    };
    let o = hc(&[&format!("http://[::1]:{port}/")]);
    assert_eq!(code(&o), 0, "{o:?}");
    let o = hc(&[&format!("tcp://[::1]:{port}")]);
    assert_eq!(code(&o), 0, "{o:?}");
}

#[test]
fn every_address_of_a_name_is_tried() {
    let (port, _) = fixed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let o = hc(&[&format!("http://localhost:{port}/")]);
    assert_eq!(code(&o), 0, "listener on 127.0.0.1 only: {o:?}");
    // A name with an IPv4 address first and ::1 second, and a listener on ::1
    // only: the first address is refused, the second must be tried. The name
    // comes from an /etc/hosts bound over the host's in a private mount
    // namespace, so the test does not depend on what the host's file lists.
    const T: &str = "every_address_of_a_name_is_tried";
    if !need_root(T) {
        return;
    }
    let Some((port, _)) = serve_on("[::1]:0", |s, _| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    }) else {
        return skip(T, "cannot bind [::1] (no IPv6 loopback here; the IPv6 half)");
    };
    let dir = TempDir::new("hosts");
    let hosts = dir.join("hosts");
    std::fs::write(
        &hosts,
        "127.0.0.1 localhost\n127.0.0.1 dual.test\n::1 dual.test\n",
    )
    .unwrap();
    let o = run(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount --bind "$1" /etc/hosts && exec "$2" "$3""#)
        .arg("sh")
        .arg(&hosts)
        .arg(bin("healthcheck"))
        .arg(format!("http://dual.test:{port}/")));
    assert_eq!(
        code(&o),
        0,
        "listener on ::1 only, second address of the name: {o:?}"
    );
}

#[test]
fn proxy_variables_are_ignored() {
    let (port, _) = fixed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let proxy = format!("http://127.0.0.1:{}", dead_port());
    let mut cmd = Command::new(bin("healthcheck"));
    for v in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"] {
        cmd.env(v, &proxy);
    }
    let o = run(cmd
        .env_remove("no_proxy")
        .env_remove("NO_PROXY")
        .arg(format!("http://127.0.0.1:{port}/")));
    assert_eq!(code(&o), 0, "{o:?}");
}

#[test]
fn http_over_a_unix_socket() {
    use std::os::unix::net::UnixListener;
    let dir = TempDir::new("hc-unix");
    let sock = dir.join("app.sock");
    let l = UnixListener::bind(&sock).unwrap();
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut b = [0u8; 4096];
            let n = s.read(&mut b).unwrap_or(0);
            seen2
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&b[..n]).into_owned());
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nready");
        }
    });
    let sp = sock.to_str().unwrap();
    let o = hc(&[
        "--unix-socket",
        sp,
        "--body-contains",
        "ready",
        "http://localhost/health",
    ]);
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(
        stdout(&o).starts_with(&format!(
            "healthy: GET http://localhost/health via unix://{sp} -> 200"
        )),
        "{o:?}"
    );
    assert!(seen.lock().unwrap()[0].starts_with("GET /health HTTP/1.1\r\nHost: localhost\r\n"));
    let o = hc(&[&format!("unix://{sp}")]);
    assert_eq!(code(&o), 0, "{o:?}");
    let o = hc(&[
        "--unix-socket",
        dir.join("none.sock").to_str().unwrap(),
        "http://localhost/",
    ]);
    assert_eq!(code(&o), 1, "{o:?}");
    assert!(stdout(&o).contains("no such file or directory"), "{o:?}");
}

#[test]
fn unix_socket_with_a_full_backlog_is_bounded_by_the_timeout() {
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = TempDir::new("hc-backlog");
    let sock = dir.join("hung.sock");
    // A server that never accepts: connects succeed until the backlog is full,
    // then a plain blocking connect waits for room.
    let _l = UnixListener::bind(&sock).unwrap();
    let made = Arc::new(AtomicUsize::new(0));
    let (made2, sock2) = (made.clone(), sock.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // "PID/task/TID": where the kernel says what this thread waits on.
        let _ = tx.send(std::fs::read_link("/proc/thread-self").unwrap());
        let mut keep = Vec::new();
        while let Ok(s) = UnixStream::connect(&sock2) {
            keep.push(s);
            made2.fetch_add(1, Ordering::SeqCst);
        }
    });
    // The backlog is full once the filler's own connect waits for room.
    let wchan = Path::new("/proc")
        .join(rx.recv_timeout(Duration::from_secs(30)).unwrap())
        .join("wchan");
    let until = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&wchan).unwrap_or_default() != "unix_wait_for_peer" {
        assert!(
            Instant::now() < until,
            "the filler never blocked ({} connections)",
            made.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let t = Instant::now();
    let o = hc(&[
        "--timeout",
        "1s",
        "--unix-socket",
        sock.to_str().unwrap(),
        "http://localhost/",
    ]);
    let took = t.elapsed();
    assert_eq!(code(&o), 1, "{o:?}");
    assert!(stdout(&o).contains("-> timed out after 1s"), "{o:?}");
    assert!(took < Duration::from_secs(6), "deadline did not hold: {took:?}");
}

#[test]
fn file_and_tcp_targets() {
    let dir = TempDir::new("hc-file");
    let f = dir.join("ready");
    let url = format!("file://{}", f.display());
    let o = hc(&[&url]);
    assert_eq!(code(&o), 1, "{o:?}");
    assert_eq!(
        stdout(&o).trim(),
        format!("unhealthy: {url} -> no such file or directory")
    );
    std::fs::write(&f, "").unwrap();
    let o = hc(&[&url]);
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(
        stdout(&o).starts_with(&format!("healthy: {url} -> exists in ")),
        "{o:?}"
    );
    let (port, _) = fixed("");
    let o = hc(&[&format!("127.0.0.1:{port}")]);
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(
        stdout(&o).starts_with(&format!("healthy: tcp://127.0.0.1:{port} -> connected in ")),
        "{o:?}"
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["--timeout", "soon", "h:1"][..],
        &[][..],
        &["--kill-after", "3", "h:1"][..],
        &["ftp://x"][..],
    ] {
        let o = hc(args);
        assert_eq!(code(&o), 2, "{args:?}: {o:?}");
        assert!(stderr(&o).starts_with("healthcheck: "), "{o:?}");
    }
    let o =
        run(Command::new(bin("healthcheck")).env("HEALTHCHECK_TARGET", format!("127.0.0.1:{}", dead_port())));
    assert_eq!(code(&o), 1, "target from the environment: {o:?}");
}

fn failure_number(line: &str) -> u32 {
    let i = line
        .find("(failure ")
        .unwrap_or_else(|| panic!("no failure count: {line}"))
        + 9;
    line[i..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn concurrent_probes_count_every_failure() {
    let dir = TempDir::new("hc-conc");
    let st = dir.join("state");
    let target = format!("tcp://127.0.0.1:{}", dead_port());
    let children: Vec<Child> = (0..20)
        .map(|_| {
            Command::new(bin("healthcheck"))
                .arg("--state")
                .arg(&st)
                .arg(&target)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut seen: Vec<u32> = children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert_eq!(code(&o), 1, "{o:?}");
            assert!(stderr(&o).is_empty(), "{o:?}");
            failure_number(&stdout(&o))
        })
        .collect();
    seen.sort();
    assert_eq!(seen, (1..=20).collect::<Vec<_>>());
    let text = std::fs::read_to_string(&st).unwrap();
    assert!(text.starts_with("failures=20"), "{text}");
    // A success resets the count.
    let (port, _) = fixed("");
    let o = run(Command::new(bin("healthcheck"))
        .arg("--state")
        .arg(&st)
        .arg(format!("127.0.0.1:{port}")));
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(std::fs::read_to_string(&st).unwrap().starts_with("failures=0"));
}

#[test]
fn corrupt_state_is_recreated_with_a_warning() {
    let dir = TempDir::new("hc-corrupt");
    let st = dir.join("state");
    std::fs::write(&st, b"\xff\x00 not a state file").unwrap();
    let target = format!("tcp://127.0.0.1:{}", dead_port());
    let o = run(Command::new(bin("healthcheck"))
        .arg("--state")
        .arg(&st)
        .arg(&target));
    assert_eq!(code(&o), 1, "{o:?}");
    assert!(stderr(&o).contains("was corrupt; recreated"), "{o:?}");
    assert_eq!(failure_number(&stdout(&o)), 1);
    let o = run(Command::new(bin("healthcheck"))
        .arg("--state")
        .arg(&st)
        .arg(&target));
    assert!(stderr(&o).is_empty(), "{o:?}");
    assert_eq!(failure_number(&stdout(&o)), 2);
}

#[test]
fn read_only_root_with_tmpfs_tmp() {
    const T: &str = "read_only_root_with_tmpfs_tmp";
    if !need_root(T) {
        return;
    }
    let Some(root) = busybox_root(T, "root:x:0:0::/:/bin/sh\n", "root:x:0:\n") else {
        return;
    };
    let r = root.path().to_str().unwrap();
    let port = dead_port();
    let probe = format!("/usr/local/bin/healthcheck --state /tmp/hc.state tcp://127.0.0.1:{port}");
    let script = format!(
        "mount --bind {r} {r} && mount -o remount,bind,ro {r} && \
         chroot {r} /bin/sh -c '{probe}; touch /x 2>/dev/null || echo root-is-read-only' && \
         mount -t tmpfs tmpfs {r}/tmp && chroot {r} /bin/sh -c '{probe}; {probe}'"
    );
    let o = run(Command::new("unshare").args(["--mount", "--fork", "sh", "-c", &script]));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{o:?}");
    // Read-only /tmp: still unhealthy, and says why nothing was counted.
    assert!(
        lines[0].contains("failures not counted: state file /tmp/hc.state: read-only file system"),
        "{o:?}"
    );
    assert_eq!(lines[1], "root-is-read-only");
    assert_eq!(failure_number(lines[2]), 1, "{o:?}");
    assert_eq!(failure_number(lines[3]), 2, "{o:?}");
}

/// A process running as PID 1 of a new PID namespace (with its own /proc).
struct PidNs {
    child: Child,
    /// Its PID as seen from here.
    pid: i32,
}

impl PidNs {
    // The child is waited for by Drop (or before the panic below).
    #[allow(clippy::zombie_processes)]
    fn start(test: &str, cmd: &[&str]) -> Option<PidNs> {
        if !need_root(test) {
            return None;
        }
        if !have("unshare", &["--version"]) || !have("nsenter", &["--version"]) {
            skip(test, "needs unshare and nsenter (util-linux)");
            return None;
        }
        let mut child = Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "--"])
            .args(cmd)
            .spawn()
            .unwrap();
        let me = child.id();
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let kids = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).unwrap_or_default();
            if let Some(pid) = kids.split_whitespace().next().and_then(|p| p.parse::<i32>().ok()) {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if !comm.is_empty() && comm.trim() != "unshare" {
                    return Some(PidNs { child, pid });
                }
            }
            if Instant::now() > until {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{test}: PID 1 of the namespace did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait until PID 1 catches `sig` (a shell sets its trap after starting).
    fn wait_caught(&self, sig: u32) {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
            let mask = s
                .lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .unwrap_or(0);
            if mask & (1 << (sig - 1)) != 0 {
                return;
            }
            assert!(Instant::now() < until, "PID 1 never set its trap");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// healthcheck run inside the namespace.
    fn probe(&self, args: &[&str]) -> Output {
        run(Command::new("nsenter")
            .arg("--target")
            .arg(self.pid.to_string())
            .args(["--pid", "--mount", "--"])
            .arg(bin("healthcheck"))
            .args(args))
    }

    /// Whether PID 1 is still running, after giving a signal time to land.
    fn alive(&mut self) -> bool {
        std::thread::sleep(Duration::from_millis(300));
        self.child.try_wait().unwrap().is_none()
    }

    /// Wait (bounded) for the namespace to end; its exit status.
    fn wait_end(&mut self, within: Duration) -> Option<i32> {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for PidNs {
    fn drop(&mut self) {
        // SIGKILL from outside the namespace always reaches its PID 1.
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[test]
fn kill_pid1_after_n_failures_and_after_the_start_period() {
    const T: &str = "kill_pid1_after_n_failures_and_after_the_start_period";
    let Some(mut ns) = PidNs::start(
        T,
        &["sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.05; done"],
    ) else {
        return;
    };
    ns.wait_caught(15);
    let dir = TempDir::new("hc-kill");
    let st = dir.join("state");
    let st = st.to_str().unwrap();
    let url = format!("http://127.0.0.1:{}/health", dead_port());
    // Inside the start period: reported, not counted, never a signal.
    for _ in 0..4 {
        let o = ns.probe(&[
            "--kill-pid1",
            "--kill-after",
            "3",
            "--start-period",
            "1h",
            "--state",
            st,
            &url,
        ]);
        assert_eq!(code(&o), 1, "{o:?}");
        assert!(stdout(&o).contains("(not counted: PID 1 is "), "{o:?}");
        assert!(stdout(&o).contains("start period 1h)"), "{o:?}");
    }
    assert!(ns.alive(), "PID 1 was signalled inside its start period");
    // After the start period: failures 1 and 2 leave it, failure 3 takes it down.
    for n in 1..=2 {
        let o = ns.probe(&[
            "--kill-pid1",
            "--kill-after",
            "3",
            "--start-period",
            "1ms",
            "--state",
            st,
            &url,
        ]);
        assert_eq!(code(&o), 1, "{o:?}");
        assert_eq!(
            stdout(&o).trim(),
            format!("unhealthy: GET {url} -> connection refused (failure {n} of 3)")
        );
        assert!(ns.alive(), "PID 1 went down after {n} failures");
    }
    let o = ns.probe(&[
        "--kill-pid1",
        "--kill-after",
        "3",
        "--start-period",
        "1ms",
        "--state",
        st,
        &url,
    ]);
    assert_eq!(code(&o), 1, "{o:?}");
    assert_eq!(
        stdout(&o).trim(),
        format!("unhealthy: GET {url} -> connection refused (failure 3 of 3; sending SIGTERM to PID 1 (sh))")
    );
    assert_eq!(
        ns.wait_end(Duration::from_secs(10)),
        Some(42),
        "PID 1 did not run its TERM trap"
    );
}

#[test]
fn a_success_resets_the_count_before_a_kill() {
    const T: &str = "a_success_resets_the_count_before_a_kill";
    let Some(mut ns) = PidNs::start(
        T,
        &["sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.05; done"],
    ) else {
        return;
    };
    ns.wait_caught(15);
    let dir = TempDir::new("hc-reset");
    let st = dir.join("state");
    let st = st.to_str().unwrap();
    let down = format!("tcp://127.0.0.1:{}", dead_port());
    let (port, _) = fixed("");
    let up = format!("tcp://127.0.0.1:{port}");
    for t in [&down, &up, &down, &up, &down] {
        let o = ns.probe(&["--kill-pid1", "--kill-after", "2", "--state", st, t]);
        assert_eq!(code(&o), if t == &up { 0 } else { 1 }, "{o:?}");
    }
    assert!(ns.alive(), "failures that were not consecutive took PID 1 down");
}

#[test]
fn pid1_without_a_term_handler_is_reported() {
    const T: &str = "pid1_without_a_term_handler_is_reported";
    let Some(mut ns) = PidNs::start(T, &["sleep", "600"]) else {
        return;
    };
    let dir = TempDir::new("hc-nohandler");
    let st = dir.join("state");
    let url = format!("http://127.0.0.1:{}/", dead_port());
    let o = ns.probe(&[
        "--kill-pid1",
        "--kill-after",
        "1",
        "--state",
        st.to_str().unwrap(),
        &url,
    ]);
    assert_eq!(code(&o), 1, "{o:?}");
    assert!(
        stderr(&o).contains(
            "PID 1 (sleep) has no handler for SIGTERM, so the kernel ignores it: run the service under runas --init"
        ),
        "{o:?}"
    );
    assert!(
        stdout(&o).contains("(failure 1 of 1; PID 1 (sleep) not signalled: no SIGTERM handler)"),
        "{o:?}"
    );
    assert!(ns.alive());
}

/// The lines of a request head named `name` (any case).
fn header_lines<'a>(req: &'a str, name: &str) -> Vec<&'a str> {
    req.split("\r\n")
        .skip(1)
        .filter(|l| l.split(':').next().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .collect()
}

#[test]
fn host_user_agent_and_accept_are_replaced() {
    let (port, seen) = fixed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    let url = format!("http://127.0.0.1:{port}/");
    let o = hc(&[
        "--header",
        "Host: app.example",
        "--header",
        "user-agent: probe/1",
        "--header",
        "Accept: application/json",
        &url,
    ]);
    assert_eq!(code(&o), 0, "{o:?}");
    let o = hc(&[
        "--header",
        "User-Agent:",
        "--header",
        "Accept:",
        "--header",
        "Host:",
        &url,
    ]);
    assert_eq!(code(&o), 0, "{o:?}");
    let seen = seen.lock().unwrap();
    assert_eq!(
        header_lines(&seen[0], "host"),
        ["Host: app.example"],
        "{}",
        seen[0]
    );
    assert_eq!(
        header_lines(&seen[0], "user-agent"),
        ["User-Agent: probe/1"],
        "{}",
        seen[0]
    );
    assert_eq!(
        header_lines(&seen[0], "accept"),
        ["Accept: application/json"],
        "{}",
        seen[0]
    );
    // Empty values: no User-Agent, no Accept, and the default Host.
    assert_eq!(
        header_lines(&seen[1], "host"),
        [format!("Host: 127.0.0.1:{port}")],
        "{}",
        seen[1]
    );
    assert!(header_lines(&seen[1], "user-agent").is_empty(), "{}", seen[1]);
    assert!(header_lines(&seen[1], "accept").is_empty(), "{}", seen[1]);
}

/// The path of a request line.
fn path_of(req: &str) -> &str {
    req.split(' ').nth(1).unwrap_or("")
}

fn redirect(s: &mut TcpStream, location: &str) {
    let r = format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n");
    let _ = s.write_all(r.as_bytes());
}

fn status(s: &mut TcpStream, status: &str) {
    let r = format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok");
    let _ = s.write_all(r.as_bytes());
}

#[test]
fn same_host_redirects_are_followed_to_the_final_answer() {
    let (port, seen) = serve(|s, req| match path_of(req) {
        "/to-500" => redirect(s, "/500"),
        "/500" => status(s, "500 Internal Server Error"),
        "/to-200" => redirect(s, "ok"),
        "/ok" => status(s, "200 OK"),
        "/loop" => redirect(s, "/loop"),
        p if p.starts_with("/chain/") => match p[7..].parse::<u32>() {
            Ok(0) => status(s, "200 OK"),
            Ok(n) => redirect(s, &format!("/chain/{}", n - 1)),
            Err(_) => status(s, "400 Bad Request"),
        },
        _ => status(s, "404 Not Found"),
    });
    let base = format!("http://127.0.0.1:{port}");
    for (path, want_code, want) in [
        ("/to-500", 1, format!("-> status 500 at {base}/500 (1 redirect)")),
        ("/to-200", 0, format!("-> 200 at {base}/ok (1 redirect) in ")),
        (
            "/loop",
            1,
            format!("-> redirect loop: {base}/loop again after 1 redirects"),
        ),
        (
            "/chain/9",
            0,
            format!("-> 200 at {base}/chain/0 (9 redirects) in "),
        ),
        (
            "/chain/10",
            1,
            format!("-> stopped after 10 redirects (the last to {base}/chain/0)"),
        ),
    ] {
        seen.lock().unwrap().clear();
        let o = hc(&[&format!("{base}{path}")]);
        assert_eq!(code(&o), want_code, "{path}: {o:?}");
        assert!(stdout(&o).contains(&want), "{path}: {o:?}");
        assert_eq!(stdout(&o).lines().count(), 1, "{o:?}");
        if path == "/chain/10" {
            assert_eq!(seen.lock().unwrap().len(), 10, "{path}");
        }
    }
}

#[test]
fn a_redirect_to_another_host_is_not_followed_and_counts() {
    // "localhost" is another host name than "127.0.0.1", even if it is the same machine.
    let (other, other_seen) = fixed("HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n");
    let (port, _) = serve(move |s, _| redirect(s, &format!("http://localhost:{other}/x")));
    let o = hc(&[&format!("http://127.0.0.1:{port}/")]);
    assert_eq!(code(&o), 0, "{o:?}");
    assert!(
        stdout(&o).contains(&format!(
            "-> 302 (redirect to http://localhost:{other}/x not followed: another host) in "
        )),
        "{o:?}"
    );
    assert!(other_seen.lock().unwrap().is_empty());
    // --status still judges the redirect itself.
    let o = hc(&["--status", "200", &format!("http://127.0.0.1:{port}/")]);
    assert_eq!(code(&o), 1, "{o:?}");
    assert!(stdout(&o).contains("-> status 302"), "{o:?}");
}

#[test]
fn the_timeout_bounds_every_hop_together() {
    // The second hop accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let sport = silent.local_addr().unwrap().port();
    let (port, _) = serve(move |s, _| redirect(s, &format!("http://127.0.0.1:{sport}/slow")));
    let start = Instant::now();
    let o = hc(&["--timeout", "1s", &format!("http://127.0.0.1:{port}/")]);
    let took = start.elapsed();
    drop(silent);
    assert_eq!(code(&o), 1, "{o:?}");
    assert!(
        stdout(&o).contains(&format!(
            "-> timed out after 1s at http://127.0.0.1:{sport}/slow (1 redirect)"
        )),
        "{o:?}"
    );
    // One bound for all hops (a generous margin for a loaded machine).
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn obs_text_and_obs_fold_are_healthy() {
    let (port, _) = serve(|s, _| {
        let _ = s.write_all(
            b"HTTP/1.1 200 Tr\xe8s bien\r\nServer: caf\xe9\r\nX-Folded: a,\r\n  b\r\nTransfer-Encoding: gzip,\r\n\tchunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        );
    });
    let o = hc(&["--body-contains", "ok", &format!("http://127.0.0.1:{port}/")]);
    assert_eq!(code(&o), 0, "{o:?}");
    // What the server sent is escaped when printed.
    let (port, _) = fixed("HTTP/1.1 200 OK\r\nCaf\u{e9} \u{1b}[2J\r\n\r\n");
    let o = hc(&[&format!("http://127.0.0.1:{port}/")]);
    assert_eq!(code(&o), 1, "{o:?}");
    let line = stdout(&o);
    assert!(
        line.contains(r#"malformed header line "Café \u{1b}[2J""#),
        "{line}"
    );
    assert!(!line.trim_end().chars().any(char::is_control), "{line:?}");
}

#[test]
fn nginx_routes_on_the_one_host_header() {
    let test = "nginx_routes_on_the_one_host_header";
    if !have("nginx", &["-v"]) {
        return skip(test, "nginx is not installed (apt-get install nginx-light)");
    }
    let dir = TempDir::new("nginx");
    let port = free_port();
    let d = dir.path().display();
    let conf = format!(
        "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 16; }}
http {{
  access_log off; absolute_redirect off;
  client_body_temp_path {d}/t1; proxy_temp_path {d}/t2; fastcgi_temp_path {d}/t3;
  uwsgi_temp_path {d}/t4; scgi_temp_path {d}/t5;
  server {{ listen 127.0.0.1:{port} default_server; server_name _; return 404; }}
  server {{ listen 127.0.0.1:{port}; server_name app.example;
    location = /health {{ return 200 ok; }}
    location = /old {{ return 302 /health; }}
  }}
}}
"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let mut nginx = Command::new("nginx")
        .args(["-e", &format!("{d}/error.log"), "-p"])
        .arg(dir.path())
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nginx");
    // Ready when the port accepts (or nginx has exited, which fails below).
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline || nginx.try_wait().unwrap().is_some() {
            let _ = nginx.kill();
            let out = nginx.wait_with_output().unwrap();
            panic!("nginx did not start: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = |p: &str| format!("http://127.0.0.1:{port}{p}");
    let routed = hc(&["--header", "Host: app.example", &url("/health")]);
    let unrouted = hc(&[&url("/health")]);
    let redirected = hc(&["--header", "Host: app.example", &url("/old")]);
    // What the probe used to send: two Host lines, which nginx refuses.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let two = format!(
        "GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: app.example\r\nConnection: close\r\n\r\n"
    );
    s.write_all(two.as_bytes()).unwrap();
    let answer = read_request(&mut s);
    let _ = nginx.kill();
    let _ = nginx.wait();
    // Two Host headers get 400 from nginx; one routes to app.example.
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(code(&routed), 0, "{routed:?}");
    assert!(stdout(&routed).contains("-> 200 in "), "{routed:?}");
    assert_eq!(code(&unrouted), 1, "{unrouted:?}");
    assert!(stdout(&unrouted).contains("-> status 404"), "{unrouted:?}");
    // A relative redirect keeps the Host given.
    assert_eq!(code(&redirected), 0, "{redirected:?}");
    assert!(
        stdout(&redirected).contains(&format!(
            "-> 200 at http://127.0.0.1:{port}/health (1 redirect) in "
        )),
        "{redirected:?}"
    );
}

// --------------------------------------------------- --successes (issue 18)

#[test]
fn successes_are_counted_in_the_state_file() {
    // A unix socket: it can go away and come back at the same address
    // without another test taking it in between (a TCP port could be).
    let dir = TempDir::new("hc-successes");
    let st = dir.join("state");
    let sock = dir.join("s.sock");
    let l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let t = format!("unix://{}", sock.display());
    let probe = || {
        let o = hc(&["--successes", "3", "--state", st.to_str().unwrap(), &t]);
        (code(&o), stdout(&o).trim_end().to_string())
    };
    for n in 1..=2 {
        let (c, line) = probe();
        assert_eq!(
            (c, line.as_str()),
            (
                1,
                &*format!("unhealthy: {t} -> connected (success {n} of 3 in a row)")
            )
        );
    }
    for _ in 0..2 {
        let (c, line) = probe();
        assert_eq!(c, 0, "{line}");
        assert!(
            line.starts_with(&format!("healthy: {t} -> connected in ")),
            "{line}"
        );
    }
    // The server goes away (its socket file stays, so a connect is
    // refused): a failure, and the count starts again.
    drop(l);
    let (c, line) = probe();
    assert_eq!(
        (c, line.as_str()),
        (1, &*format!("unhealthy: {t} -> connection refused (failure 1)"))
    );
    std::fs::remove_file(&sock).unwrap();
    let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let (c, line) = probe();
    assert_eq!(
        (c, line.as_str()),
        (
            1,
            &*format!("unhealthy: {t} -> connected (success 1 of 3 in a row)")
        )
    );
    let text = std::fs::read_to_string(&st).unwrap();
    assert!(text.starts_with("failures=0 successes=1"), "{text}");
    // From the environment too; a bad value is a usage error naming it.
    let o = run(Command::new(bin("healthcheck"))
        .args(["--state", st.to_str().unwrap(), &t])
        .env("HEALTHCHECK_SUCCESSES", "2"));
    assert_eq!(code(&o), 0, "{o:?}");
    let o = run(Command::new(bin("healthcheck"))
        .arg(&t)
        .env("HEALTHCHECK_SUCCESSES", "0"));
    assert_eq!(code(&o), 2, "{o:?}");
    assert!(stderr(&o).contains("HEALTHCHECK_SUCCESSES"), "{o:?}");
}

#[test]
fn successes_fail_closed_without_a_state_file() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let t = format!("tcp://{}", l.local_addr().unwrap());
    let o = hc(&["--successes", "2", "--state", "/proc/version/nope", &t]);
    assert_eq!(code(&o), 1, "{o:?}");
    assert!(
        stdout(&o).contains("-> connected (successes not counted: state file /proc/version/nope"),
        "{o:?}"
    );
}

// ---------------------------------------------------------------------------
// --log-to-pid1, and --kill-pid1 when the signal did not end PID 1 (issue 22)

/// Wait (10 s at most) until the file at `p` contains `what` `times` times; its text.
fn wait_file(p: &Path, what: &str, times: usize) -> String {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let t = std::fs::read_to_string(p).unwrap_or_default();
        if t.matches(what).count() >= times {
            return t;
        }
        assert!(
            Instant::now() < until,
            "{} never had {what:?} x{times}: {t}",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn log_to_pid1_writes_a_failing_probes_line_to_pid1s_stderr() {
    const T: &str = "log_to_pid1_writes_a_failing_probes_line_to_pid1s_stderr";
    let dir = TempDir::new("hc-log");
    let err = dir.join("pid1.err");
    let script = format!(
        "exec 2>>{}; trap 'exit 42' TERM; echo pid1: started >&2; while :; do sleep 0.05; done",
        err.display()
    );
    let Some(mut ns) = PidNs::start(T, &["sh", "-c", &script]) else {
        return;
    };
    ns.wait_caught(15);
    wait_file(&err, "pid1: started", 1);
    let url = format!("http://127.0.0.1:{}/health", dead_port());
    let o = ns.probe(&["--log-to-pid1", &url]);
    assert_eq!(code(&o), 1, "{o:?}");
    let line = stdout(&o).trim().to_string();
    assert_eq!(line, format!("unhealthy: GET {url} -> connection refused"));
    let text = wait_file(&err, "healthcheck: ", 1);
    assert_eq!(
        text,
        format!("pid1: started\nhealthcheck: {line}\n"),
        "one line, prefixed, after PID 1's own"
    );
    // A healthy probe writes nothing there; -q keeps stdout quiet, not PID 1's line.
    let (port, _) = fixed("");
    let o = ns.probe(&["--log-to-pid1", &format!("tcp://127.0.0.1:{port}")]);
    assert_eq!(code(&o), 0, "{o:?}");
    let o = ns.probe(&["--log-to-pid1", "-q", &url]);
    assert_eq!((code(&o), stdout(&o)), (1, String::new()), "{o:?}");
    let text = wait_file(&err, "healthcheck: ", 2);
    assert_eq!(text.lines().count(), 3, "{text}");

    // A user who may not open PID 1's descriptors: one line on the probe's
    // own stderr; the probe's result is unchanged.
    if have("setpriv", &["--version"]) {
        let hc = dir.join("healthcheck");
        std::fs::copy(bin("healthcheck"), &hc).unwrap();
        let o = run(Command::new("nsenter")
            .arg("--target")
            .arg(ns.pid.to_string())
            .args([
                "--pid",
                "--mount",
                "--",
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
            ])
            .arg(&hc)
            .args(["--log-to-pid1", &url]));
        assert_eq!(code(&o), 1, "{o:?}");
        assert_eq!(stdout(&o).trim(), line);
        assert!(
            stderr(&o)
                .contains("healthcheck: --log-to-pid1: cannot write to /proc/1/fd/2: permission denied"),
            "{o:?}"
        );
        assert_eq!(stderr(&o).lines().count(), 1, "{o:?}");
    } else {
        skip(T, "the permission case needs setpriv (util-linux)");
    }

    // The line that says PID 1 is signalled reaches it before the signal.
    let st = dir.join("state");
    let o = ns.probe(&[
        "--log-to-pid1",
        "--kill-pid1",
        "--kill-after",
        "1",
        "--state",
        st.to_str().unwrap(),
        &url,
    ]);
    assert_eq!(code(&o), 1, "{o:?}");
    assert_eq!(ns.wait_end(Duration::from_secs(10)), Some(42));
    let text = std::fs::read_to_string(&err).unwrap();
    assert!(
        text.ends_with(&format!(
            "healthcheck: unhealthy: GET {url} -> connection refused (failure 1 of 1; sending SIGTERM to PID 1 (sh))\n"
        )),
        "{text}"
    );
}

#[test]
fn kill_pid1_signals_once_and_then_says_pid1_did_not_end() {
    const T: &str = "kill_pid1_signals_once_and_then_says_pid1_did_not_end";
    let dir = TempDir::new("hc-once");
    let log = dir.join("pid1.log");
    let f = log.display();
    // PID 1 takes TERM and goes on running: what a hung shutdown looks like.
    let script =
        format!("trap 'echo term >> {f}' TERM; trap 'echo usr1 >> {f}' USR1; while :; do sleep 0.05; done");
    let Some(mut ns) = PidNs::start(T, &["sh", "-c", &script]) else {
        return;
    };
    ns.wait_caught(15);
    ns.wait_caught(10);
    let st = dir.join("state");
    let st = st.to_str().unwrap();
    let url = format!("http://127.0.0.1:{}/health", dead_port());
    let probe =
        |ns: &PidNs, target: &str| ns.probe(&["--kill-pid1", "--kill-after", "1", "--state", st, target]);
    let o = probe(&ns, &url);
    assert_eq!(
        stdout(&o).trim(),
        format!("unhealthy: GET {url} -> connection refused (failure 1 of 1; sending SIGTERM to PID 1 (sh))")
    );
    wait_file(&log, "term", 1);
    for n in [2, 3] {
        let o = probe(&ns, &url);
        assert_eq!(code(&o), 1, "{o:?}");
        let out = stdout(&o);
        assert!(
            out.starts_with(&format!(
                "unhealthy: GET {url} -> connection refused (failure {n} of 1; PID 1 (sh) is still the process \
                 an earlier probe sent SIGTERM (same start time): it caught the signal and did not end, and \
                 SIGTERM is not sent again;"
            )),
            "{o:?}"
        );
        assert!(
            out.contains("(the kernel drops even SIGKILL sent from inside a PID namespace to its init): run the service under runas --init, whose --grace KILLs"),
            "{o:?}"
        );
        assert_eq!(out.lines().count(), 1, "{o:?}");
    }
    assert!(std::fs::read_to_string(st).unwrap().contains("signalled=15"));
    // A USR1 sent after the probes is answered after any TERM they sent:
    // one TERM in all.
    let k = run(Command::new("kill").args(["-USR1", &ns.pid.to_string()]));
    assert!(k.status.success());
    let text = wait_file(&log, "usr1", 1);
    assert_eq!(text.matches("term").count(), 1, "{text}");
    assert!(ns.alive());
    // A success ends the run of failures; the next run signals again.
    let (port, _) = fixed("");
    assert_eq!(code(&probe(&ns, &format!("tcp://127.0.0.1:{port}"))), 0);
    let o = probe(&ns, &url);
    assert!(
        stdout(&o).contains("(failure 1 of 1; sending SIGTERM to PID 1 (sh))"),
        "{o:?}"
    );
    wait_file(&log, "term", 2);
}

#[test]
fn kill_pid1_says_a_runas_pid1_is_on_its_way_down() {
    const T: &str = "kill_pid1_says_a_runas_pid1_is_on_its_way_down";
    let runas = bin("runas");
    let Some(mut ns) = PidNs::start(
        T,
        &[
            runas.to_str().unwrap(),
            "--init",
            "--stop-delay",
            "1h",
            "root",
            "sh",
            "-c",
            "trap 'exit 42' TERM; while :; do sleep 0.05; done",
        ],
    ) else {
        return;
    };
    ns.wait_caught(15);
    let dir = TempDir::new("hc-runas");
    let st = dir.join("state");
    let st = st.to_str().unwrap();
    let url = format!("http://127.0.0.1:{}/health", dead_port());
    let args = ["--kill-pid1", "--kill-after", "1", "--state", st, &url];
    let o = ns.probe(&args);
    assert!(
        stdout(&o).contains("(failure 1 of 1; sending SIGTERM to PID 1 (runas))"),
        "{o:?}"
    );
    // runas holds the TERM for --stop-delay: the next probe says so.
    let o = ns.probe(&args);
    assert!(
        stdout(&o).contains(
            "(failure 2 of 1; PID 1 (runas) is still the process an earlier probe sent SIGTERM (same start \
             time), and SIGTERM is not sent again: runas passes it on after its --stop-delay"
        ),
        "{o:?}"
    );
    assert!(ns.alive());
}
