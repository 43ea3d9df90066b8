//! Integration tests for ready: the real static binary, real sockets, pipes
//! and processes. See tests/lib.rs for the skip rule.
//!
//! Tests that look for the watcher make this test process a child subreaper,
//! so an orphaned watcher comes to us (not to the machine's init) and we can
//! tell it exited, reap it, and see that it was never the service's child.

use dockhand_tests::*;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Generous bound for anything that should take milliseconds.
const LONG: Duration = Duration::from_secs(15);

fn ready() -> Command {
    tool("ready")
}

/// A 127.0.0.1 port that refuses connections while the result is held
/// (bound, never listening; see `HeldPort`).
fn closed_port() -> HeldPort {
    HeldPort::new()
}

/// Lines of a child's stdout, read on a thread, so every wait is bounded.
struct Lines(mpsc::Receiver<String>);

impl Lines {
    fn of(child: &mut Child) -> Lines {
        Lines::read(child.stdout.take().expect("stdout piped"))
    }
    fn read(out: impl std::io::Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { return };
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Lines(rx)
    }
    fn next(&self) -> Option<String> {
        self.0.recv_timeout(LONG).ok()
    }
    /// Every line until EOF (bounded).
    fn rest(&self) -> Vec<String> {
        let mut v = Vec::new();
        while let Ok(l) = self.0.recv_timeout(LONG) {
            v.push(l);
        }
        v
    }
}

fn wait_bounded(child: &mut Child) -> std::process::ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if t.elapsed() > LONG {
            let _ = child.kill();
            panic!("process {} did not exit in {LONG:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn become_subreaper() {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no memory.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(r, 0, "prctl(PR_SET_CHILD_SUBREAPER)");
}

/// The one process besides `service` whose environment carries `tag`: the
/// watcher (the intermediate process is gone once the service has exec'd).
fn find_watcher(tag: &str, service: u32) -> i32 {
    let needle = format!("READY_TEST_TAG={tag}");
    let t = Instant::now();
    loop {
        let mut found = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            if pid as u32 == service {
                continue;
            }
            if let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) {
                if env.split(|&b| b == 0).any(|kv| kv == needle.as_bytes()) {
                    found.push(pid);
                }
            }
        }
        if found.len() == 1 {
            return found[0];
        }
        assert!(found.len() < 2, "more than one watcher: {found:?}");
        assert!(t.elapsed() < LONG, "no watcher process found");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// (state letter, ppid) of a process, from /proc.
fn state_ppid(pid: i32) -> Option<(char, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut f = s[s.rfind(')')? + 1..].split_whitespace();
    let state = f.next()?.chars().next()?;
    Some((state, f.next()?.parse().ok()?))
}

/// Reap our child `pid` (bounded); its exit code.
fn reap(pid: i32) -> i32 {
    let t = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes one int through a valid pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid({pid}): {}", std::io::Error::last_os_error());
        if r == pid {
            assert!(
                libc::WIFEXITED(status),
                "watcher {pid} ended with status {status:#x}"
            );
            return libc::WEXITSTATUS(status);
        }
        assert!(t.elapsed() < LONG, "watcher {pid} did not exit in {LONG:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn tag() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[test]
fn print_line_appears_on_stdout() {
    let o = run(ready().args(["--when", "file:///", "--print", "APP_READY"]));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(stdout(&o), "APP_READY\n");
}

#[test]
fn timeout_without_command_exits_124() {
    let held = closed_port();
    let port = held.addr();
    let o = run(ready().args(["--when", &port, "--timeout", "300ms", "--print", "NO"]));
    assert_eq!(o.status.code(), Some(124), "{o:?}");
    assert_eq!(stdout(&o), "", "announced although not ready");
    let e = stderr(&o);
    assert!(e.starts_with("ready: ") && e.contains(&port), "{e}");
}

#[test]
fn timeout_from_the_environment() {
    let down = closed_port();
    let o = run(ready()
        .args(["--when", &down.addr()])
        .env("READY_TIMEOUT", "200ms"));
    assert_eq!(o.status.code(), Some(124), "{o:?}");
}

#[test]
fn bad_fd_is_a_usage_error() {
    // Through sh, so fd 9 is surely closed (`9>&-`) or open (`9>/dev/null`).
    let via_sh = |script: &str, env: Option<&str>| {
        let mut c = Command::new("sh");
        c.args(["-c", &format!("exec \"$0\" --when file:/// {script}")])
            .arg(bin("ready"));
        c.env_remove("READY_FD");
        if let Some(v) = env {
            c.env("READY_FD", v);
        }
        run(&mut c)
    };
    for fd in ["2", "0", "x", "9"] {
        let o = via_sh(&format!("--fd {fd} 9>&-"), None);
        assert_eq!(o.status.code(), Some(2), "--fd {fd}: {o:?}");
        let e = stderr(&o);
        assert!(e.starts_with("ready: ") && e.contains("--fd"), "{o:?}");
    }
    let o = via_sh("9>&-", Some("9"));
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    // The same fd, open, is accepted.
    let o = via_sh("--fd 9 9>/dev/null", None);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let o = via_sh("9>/dev/null", Some("9"));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
}

#[test]
fn s6_fd_gets_a_newline_and_is_closed() {
    // fd 3 is the pipe to us; stdout goes elsewhere, so EOF on our pipe
    // means ready closed fd 3.
    let o = run(Command::new("sh")
        .args(["-c", "exec \"$0\" --when file:/// --fd 3 3>&1 >/dev/null"])
        .arg(bin("ready")));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(o.stdout, b"\n");
}

#[test]
fn s6_fd_with_a_command_is_held_by_the_watcher_only() {
    // The service runs on (reading stdin) while our pipe is its fd 3's other
    // end: EOF after the newline shows the watcher closed it and the service
    // never inherited it.
    let mut child = Command::new("sh")
        .args([
            "-c",
            "exec \"$0\" --when file:/// --fd 3 -- sh -c 'read x; exit 0' 3>&1 >/dev/null",
        ])
        .arg(bin("ready"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Lines::of(&mut child);
    assert_eq!(lines.rest(), vec![String::new()]);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the service should still run"
    );
    drop(child.stdin.take());
    assert_eq!(wait_bounded(&mut child).code(), Some(0));
}

/// One datagram and the fd passed with it, if any.
fn recv_with_fd(sock: &UnixDatagram) -> (Vec<u8>, Option<OwnedFd>) {
    let n = note(sock);
    (n.text.into_bytes(), n.fd)
}

/// Receive READY=1 then BARRIER=1 with a pipe fd; check that `child` waits
/// for us to close that fd before it goes on, then close it.
fn expect_sd_notify(sock: &UnixDatagram, child: &mut Child, child_exits: bool) {
    sock.set_read_timeout(Some(LONG)).unwrap();
    let (m, fd) = recv_with_fd(sock);
    // READY=1 first, then its STATUS= (and MAINPID= from a watcher).
    assert!(
        m.starts_with(b"READY=1\nSTATUS=ready after "),
        "{:?}",
        String::from_utf8_lossy(&m)
    );
    assert!(fd.is_none());
    let (m, fd) = recv_with_fd(sock);
    assert_eq!(m, b"BARRIER=1");
    let fd = fd.expect("BARRIER=1 carries an fd");
    let meta = std::fs::metadata(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd))).unwrap();
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()),
        "not a pipe"
    );
    if child_exits {
        // While we hold the barrier fd, ready must not have finished.
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            child.try_wait().unwrap().is_none(),
            "ready exited before the barrier was answered"
        );
    }
    drop(fd);
}

#[test]
fn sd_notify_on_a_path_socket() {
    let d = TempDir::new("ready-notify");
    let path = d.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let mut child = ready()
        .args(["--when", "file:///"])
        .env("NOTIFY_SOCKET", &path)
        .spawn()
        .unwrap();
    expect_sd_notify(&sock, &mut child, true);
    assert_eq!(wait_bounded(&mut child).code(), Some(0));
}

#[test]
fn sd_notify_on_an_abstract_socket_from_the_watcher() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("dockhand-ready-test-{}", tag());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = UnixDatagram::bind_addr(&addr).unwrap();
    let mut child = ready()
        .args(["--when", "file:///", "--", "sh", "-c", "read x; exit 0"])
        .env("NOTIFY_SOCKET", format!("@{name}"))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    expect_sd_notify(&sock, &mut child, false);
    drop(child.stdin.take());
    assert_eq!(wait_bounded(&mut child).code(), Some(0));
}

#[test]
fn bad_notify_socket_is_a_usage_error() {
    let o = run(ready()
        .args(["--when", "file:///"])
        .env("NOTIFY_SOCKET", "not/absolute"));
    assert_eq!(o.status.code(), Some(2), "{o:?}");
}

fn check_marker(text: &str) -> Result<i32, String> {
    let mut lines = text.split_inclusive('\n');
    let pid = lines
        .next()
        .and_then(|l| l.strip_prefix("pid="))
        .and_then(|l| l.strip_suffix('\n'))
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("bad pid line in {text:?}"))?;
    let time = lines
        .next()
        .and_then(|l| l.strip_prefix("time="))
        .ok_or_else(|| format!("bad time line in {text:?}"))?;
    if time.len() != "2026-01-01T00:00:00Z\n".len() || !time.ends_with("Z\n") || lines.next().is_some() {
        return Err(format!("bad marker {text:?}"));
    }
    Ok(pid)
}

#[test]
fn marker_is_never_seen_partial() {
    let d = TempDir::new("ready-atomic");
    let m = d.join("app.ready");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (m, stop) = (m.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut full, mut bad) = (0usize, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match std::fs::read_to_string(&m) {
                    Ok(t) => match check_marker(&t) {
                        Ok(_) => full += 1,
                        Err(e) => bad.push(e),
                    },
                    Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}"),
                }
            }
            (full, bad)
        })
    };
    for _ in 0..25 {
        let o = run(ready().args(["--when", "file:///", "--file"]).arg(&m));
        assert_eq!(o.status.code(), Some(0), "{o:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (full, bad) = reader.join().unwrap();
    assert!(
        bad.is_empty(),
        "the reader saw {} partial markers: {:?}",
        bad.len(),
        &bad[..1]
    );
    assert!(full > 0, "the reader never saw a marker");
    // The marker names the process that ran ready (this test), and no
    // temporary file is left next to it.
    assert_eq!(
        check_marker(&std::fs::read_to_string(&m).unwrap()),
        Ok(std::process::id() as i32)
    );
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
}

#[test]
fn stale_marker_is_removed_before_the_command_starts() {
    let d = TempDir::new("ready-stale");
    let m = d.join("app.ready");
    std::fs::write(&m, "pid=1\ntime=2000-01-01T00:00:00Z\n").unwrap();
    let down = closed_port();
    let o = run(ready()
        .args(["--when", &down.addr(), "--file"])
        .arg(&m)
        .args([
            "--",
            "sh",
            "-c",
            "if [ -e \"$0\" ]; then echo present; else echo absent; fi",
        ])
        .arg(&m));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(stdout(&o), "absent\n");
    assert!(!m.exists(), "never ready, yet a marker exists");
}

#[test]
fn marker_symlink_is_replaced_not_followed() {
    let d = TempDir::new("ready-link");
    let victim = d.join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let m = d.join("app.ready");
    std::os::unix::fs::symlink(&victim, &m).unwrap();
    let o = run(ready().args(["--when", "file:///", "--file"]).arg(&m));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(!std::fs::symlink_metadata(&m).unwrap().file_type().is_symlink());
    assert!(check_marker(&std::fs::read_to_string(&m).unwrap()).is_ok());
}

#[test]
fn command_keeps_pid_and_exit_status() {
    let mut child = ready()
        .args(["--when", "file:///", "--", "sh", "-c", "echo $$; exit 7"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Lines::of(&mut child);
    assert_eq!(lines.next(), Some(child.id().to_string()));
    assert_eq!(wait_bounded(&mut child).code(), Some(7));
}

#[test]
fn command_gets_the_signals() {
    let mut child = ready()
        .args(["--when", "file:///", "--", "sh", "-c", "echo up; exec sleep 60"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Lines::of(&mut child);
    assert_eq!(lines.next().as_deref(), Some("up"));
    // `exec sleep` keeps the pid: TERM to ready's pid reaches the service.
    // Wait for that exec, so the signal is surely for sleep, not sh.
    let comm = format!("/proc/{}/comm", child.id());
    let until = Instant::now() + LONG;
    while std::fs::read_to_string(&comm).unwrap_or_default().trim() != "sleep" {
        assert!(Instant::now() < until, "sh never exec'd sleep");
        std::thread::sleep(Duration::from_millis(5));
    }
    let k = run(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    assert!(k.status.success(), "{k:?}");
    assert_eq!(wait_bounded(&mut child).signal(), Some(libc::SIGTERM));
}

#[test]
fn command_not_found_is_127() {
    let o = run(ready().args(["--when", "file:///", "--", "/nonexistent/dockhand-app"]));
    assert_eq!(o.status.code(), Some(127), "{o:?}");
}

#[test]
fn watcher_announces_then_exits_and_is_not_the_services_child() {
    become_subreaper();
    let d = TempDir::new("ready-watch");
    let gate = d.join("gate");
    let m = d.join("app.ready");
    let t = tag();
    let mut child = ready()
        .arg("--when")
        .arg(format!("file://{}", gate.display()))
        .args(["--interval", "50ms", "--print", "APP_READY", "--file"])
        .arg(&m)
        .args(["--", "sh", "-c", "echo started; read x; echo bye"])
        .env("READY_TEST_TAG", &t)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Lines::of(&mut child);
    assert_eq!(lines.next().as_deref(), Some("started"));
    let w = find_watcher(&t, child.id());
    // Re-parented to us (the subreaper), not a child of the service.
    assert_eq!(state_ppid(w).map(|s| s.1), Some(std::process::id() as i32));
    assert!(!m.exists());
    std::fs::write(&gate, "").unwrap();
    assert_eq!(lines.next().as_deref(), Some("APP_READY"));
    // It exits by itself once it has announced, while the service runs on.
    assert_eq!(reap(w), 0);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the service should still run"
    );
    assert_eq!(
        check_marker(&std::fs::read_to_string(&m).unwrap()),
        Ok(child.id() as i32)
    );
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert_eq!(lines.next().as_deref(), Some("bye"));
    assert_eq!(wait_bounded(&mut child).code(), Some(0));
}

#[test]
fn service_that_dies_first_gets_no_announcement_and_leaves_no_watcher() {
    become_subreaper();
    let d = TempDir::new("ready-dies");
    let m = d.join("app.ready");
    let t = tag();
    let down = closed_port();
    let mut child = ready()
        .args(["--when", &down.addr(), "--print", "APP_READY", "--file"])
        .arg(&m)
        .args(["--", "sh", "-c", "echo started; read x; exit 3"])
        .env("READY_TEST_TAG", &t)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Lines::of(&mut child);
    assert_eq!(lines.next().as_deref(), Some("started"));
    let w = find_watcher(&t, child.id());
    // Polling a refused port, the watcher spends its time asleep between
    // attempts: it gets there (a busy loop never would), however loaded the
    // machine is when we look.
    let until = Instant::now() + LONG;
    while state_ppid(w).map(|s| s.0) != Some('S') {
        assert!(
            Instant::now() < until,
            "the watcher never waited: {:?}",
            state_ppid(w)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(child.stdin.take());
    assert_eq!(wait_bounded(&mut child).code(), Some(3));
    // The watcher notices and exits without announcing; once reaped, nothing
    // of it is left.
    assert_eq!(reap(w), 0);
    assert!(state_ppid(w).is_none(), "watcher {w} still in /proc");
    assert_eq!(lines.rest(), Vec::<String>::new(), "announced for a dead service");
    assert!(!m.exists(), "marker written for a dead service");
}

#[test]
fn watcher_stays_asleep_when_the_service_is_its_reaper() {
    // Where the service itself would reap the watcher (it is PID 1 or a
    // subreaper), an exited watcher would be its zombie for good: so the
    // watcher sleeps after announcing and ends with the service.
    become_subreaper();
    let t = tag();
    let mut cmd = ready();
    cmd.args([
        "--when",
        "file:///",
        "--print",
        "APP_READY",
        "--",
        "sh",
        "-c",
        "echo started; read x; exit 0",
    ])
    .env("READY_TEST_TAG", &t)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped());
    // SAFETY: prctl is async-signal-safe and touches no memory; the flag
    // survives the exec of ready, so ready (then the service) is a subreaper.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let lines = Lines::of(&mut child);
    let mut got = vec![lines.next().unwrap(), lines.next().unwrap()];
    got.sort();
    assert_eq!(got, ["APP_READY", "started"]);
    let w = find_watcher(&t, child.id());
    for _ in 0..10 {
        let (state, ppid) = state_ppid(w).expect("watcher gone");
        assert_ne!(state, 'Z', "the watcher is a zombie of the service");
        assert_eq!(ppid, child.id() as i32);
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(child.stdin.take());
    assert_eq!(wait_bounded(&mut child).code(), Some(0));
    // Handed on to us once the service is gone, and it exits at once.
    assert_eq!(reap(w), 0);
}

#[test]
fn command_timeout_gives_up_but_the_service_runs_on() {
    // The service goes on only once the watcher has said it gives up (its
    // line on stderr), so the watcher surely gave up while it ran.
    let down = closed_port();
    let mut child = ready()
        .args(["--when", &down.addr(), "--timeout", "200ms", "--print", "NO"])
        .args(["--", "sh", "-c", "read x; echo alive; exit 5"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines() {
            let Ok(l) = l else { return };
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    let said = rx.recv_timeout(LONG).expect("the watcher said nothing");
    assert!(said.contains("giving up"), "{said}");
    let lines = Lines::of(&mut child);
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert_eq!(lines.rest(), ["alive"]);
    assert_eq!(wait_bounded(&mut child).code(), Some(5));
    let more: Vec<String> = rx.try_iter().collect();
    assert!(more.is_empty(), "{more:?}");
}

#[test]
fn as_pid_1_the_watcher_is_never_a_zombie() {
    // `docker run IMAGE ready ... -- app` with no init: ready's process is
    // PID 1. The service lists its PID namespace after the announcement.
    let test = "as_pid_1_the_watcher_is_never_a_zombie";
    if !need_root(test) {
        return;
    }
    if !have("unshare", &["--pid", "--fork", "--mount-proc", "true"]) {
        skip(
            test,
            "unshare --pid --fork --mount-proc does not work here (util-linux, CAP_SYS_ADMIN)",
        );
        return;
    }
    // The service lists its namespace once the watcher has announced (the
    // marker is written before the line is printed); bounded to 60 s.
    let d = TempDir::new("ready-pid1");
    let m = d.join("app.ready");
    let script = "i=0; while [ ! -e \"$0\" ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; \
                  for f in /proc/[0-9]*/stat; do read -r l < \"$f\" && echo \"$l\"; done";
    let o = run(Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(bin("ready"))
        .args(["--when", "file:///", "--print", "APP_READY", "--file"])
        .arg(&m)
        .args(["--", "sh", "-c", script])
        .arg(&m));
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = stdout(&o);
    assert!(out.lines().any(|l| l == "APP_READY"), "{out}");
    // pid (comm) state ppid ...
    let procs: Vec<(i32, String, char, i32)> = out
        .lines()
        .filter(|l| l.contains(") "))
        .map(|l| {
            let (head, rest) = l.rsplit_once(") ").unwrap();
            let (pid, comm) = head.split_once(" (").unwrap();
            let mut f = rest.split_whitespace();
            let state = f.next().unwrap().chars().next().unwrap();
            (
                pid.parse().unwrap(),
                comm.to_string(),
                state,
                f.next().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert!(
        procs.iter().all(|p| p.2 != 'Z'),
        "a zombie in the namespace: {procs:?}"
    );
    let watcher: Vec<_> = procs.iter().filter(|p| p.1 == "ready").collect();
    assert_eq!(watcher.len(), 1, "{procs:?}");
    assert_eq!(
        watcher[0].3, 1,
        "the watcher's parent should be the service, PID 1: {procs:?}"
    );
}

/// One sd_notify datagram as systemd reads it: the text, the sender's pid
/// from SCM_CREDENTIALS (the socket has SO_PASSCRED, so the kernel attaches
/// them to every message), and a passed fd (BARRIER=1).
struct Note {
    text: String,
    pid: i32,
    fd: Option<OwnedFd>,
}

/// A notify socket at `dir/notify.sock` with SO_PASSCRED, as systemd's.
fn notify_listener(dir: &std::path::Path) -> (UnixDatagram, std::path::PathBuf) {
    use std::os::fd::AsRawFd;
    let path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    let one: libc::c_int = 1;
    // SAFETY: SO_PASSCRED takes an int flag; pointer and length describe `one`.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PASSCRED,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as _,
        )
    };
    assert_eq!(r, 0, "SO_PASSCRED: {}", std::io::Error::last_os_error());
    (sock, path)
}

/// The next datagram within `within`, or None.
fn try_note(sock: &UnixDatagram, within: Duration) -> Option<Note> {
    use std::os::fd::AsRawFd;
    sock.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = [0u64; 16];
    // SAFETY: msghdr is plain data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    // SAFETY: every pointer in msg refers to a live local buffer of the
    // stated length; the socket's read timeout bounds the call.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock, "recvmsg: {e}");
        return None;
    }
    let (mut pid, mut fd) = (0, None);
    // SAFETY: the CMSG_* macros walk the control buffer the kernel just
    // filled, within msg_controllen; the data is read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let raw = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>());
                fd = Some(OwnedFd::from_raw_fd(raw));
            }
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_CREDENTIALS {
                pid = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::ucred>()).pid;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let text = String::from_utf8(buf[..n as usize].to_vec()).unwrap();
    Some(Note { text, pid, fd })
}

fn note(sock: &UnixDatagram) -> Note {
    try_note(sock, LONG).unwrap_or_else(|| panic!("no sd_notify message in {LONG:?}"))
}

/// Lines of a child's stderr, read on a thread.
fn err_lines(child: &mut Child) -> Lines {
    Lines::read(child.stderr.take().expect("stderr piped"))
}

#[test]
fn sd_notify_status_extend_mainpid_and_ready_come_as_the_service() {
    let d = TempDir::new("ready-notify-creds");
    let (sock, path) = notify_listener(d.path());
    let up = d.join("up");
    let t = tag();
    let mut child = ready()
        .args([
            "--when",
            &format!("file://{}", up.display()),
            "--interval",
            "100ms",
        ])
        .args(["--", "sh", "-c", "read x; exit 0"])
        .env("NOTIFY_SOCKET", &path)
        .env("READY_TEST_TAG", &t)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let service = child.id() as i32;
    let watcher = find_watcher(&t, child.id());
    // As root (CAP_SYS_ADMIN) the watcher speaks as the service, which is
    // what systemd's NotifyAccess=main checks.
    let from = if may_speak_for_others() { service } else { watcher };
    // While the file is missing: STATUS= with the reason, and
    // EXTEND_TIMEOUT_USEC= of twice the 1s pace.
    let n = note(&sock);
    let want = format!("STATUS=waiting for file://{}: ", up.display());
    assert!(n.text.starts_with(&want), "{}", n.text);
    assert_eq!(n.text.lines().count(), 2, "{}", n.text);
    assert!(n.text.ends_with("\nEXTEND_TIMEOUT_USEC=2000000"), "{}", n.text);
    assert_eq!(n.pid, from, "{}", n.text);
    std::fs::write(&up, "").unwrap();
    let n = loop {
        let n = note(&sock);
        if !n.text.starts_with("STATUS=waiting for ") {
            break n;
        }
        assert_eq!(n.pid, from);
    };
    let lines: Vec<&str> = n.text.lines().collect();
    assert_eq!(lines.len(), 3, "{}", n.text);
    assert_eq!(lines[0], "READY=1");
    assert!(lines[1].starts_with("STATUS=ready after "), "{}", n.text);
    assert!(
        lines[1].ends_with(&format!(": file://{} answered", up.display())),
        "{}",
        n.text
    );
    assert_eq!(lines[2], format!("MAINPID={service}"));
    assert_eq!(n.pid, from);
    let b = note(&sock);
    assert_eq!(b.text, "BARRIER=1");
    assert_eq!(b.pid, from);
    assert!(b.fd.is_some());
    drop(child.stdin.take());
    assert_eq!(wait_bounded(&mut child).code(), Some(0));
}

/// Whether this test process holds CAP_SYS_ADMIN (bit 21 of CapEff).
fn may_speak_for_others() -> bool {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = s.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap();
    u64::from_str_radix(eff.trim(), 16).unwrap() & (1 << 21) != 0
}

#[test]
fn sd_notify_unprivileged_says_notifyaccess_all_is_needed() {
    use std::os::unix::fs::PermissionsExt;
    if !need_root("sd_notify_unprivileged_says_notifyaccess_all_is_needed") {
        return;
    }
    let d = TempDir::new("ready-notify-unpriv");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let (sock, path) = notify_listener(d.path());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
    let t = tag();
    // As nobody: no CAP_SYS_ADMIN, so no speaking as another pid.
    let mut child = ready()
        .args(["--when", "file:///", "--", "sh", "-c", "read x; exit 0"])
        .env("NOTIFY_SOCKET", &path)
        .env("READY_TEST_TAG", &t)
        .uid(65534)
        .gid(65534)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let service = child.id() as i32;
    let watcher = find_watcher(&t, child.id());
    let err = err_lines(&mut child);
    let line = err.next().expect("a line about NotifyAccess");
    assert!(
        line.starts_with("ready: sd_notify messages go out from the watcher")
            && line.contains(&format!("PID {service}"))
            && line.ends_with("NotifyAccess=all for them to count"),
        "{line}"
    );
    let n = note(&sock);
    assert!(n.text.starts_with("READY=1\n"), "{}", n.text);
    assert!(n.text.ends_with(&format!("\nMAINPID={service}")), "{}", n.text);
    assert_eq!(n.pid, watcher);
    assert_eq!(note(&sock).text, "BARRIER=1");
    drop(child.stdin.take());
    assert_eq!(wait_bounded(&mut child).code(), Some(0));
    assert_eq!(err.rest(), Vec::<String>::new());
}

#[test]
fn watchdog_pings_while_the_checks_pass_and_stops_when_one_fails() {
    become_subreaper();
    let d = TempDir::new("ready-watchdog");
    let (sock, path) = notify_listener(d.path());
    let up = d.join("up");
    std::fs::write(&up, "").unwrap();
    let t = tag();
    let mut child = ready()
        .args(["--when", &format!("file://{}", up.display()), "--watchdog"])
        .args(["--", "sh", "-c", "read x; exit 0"])
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "200000")
        .env("READY_TEST_TAG", &t)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let service = child.id() as i32;
    let watcher = find_watcher(&t, child.id());
    let from = if may_speak_for_others() { service } else { watcher };
    let err = err_lines(&mut child);
    if from == watcher {
        // Not privileged: first the line about NotifyAccess=all.
        assert!(err.next().unwrap().contains("NotifyAccess=all"));
    }
    assert!(note(&sock).text.starts_with("READY=1\n"));
    drop(note(&sock).fd.expect("BARRIER=1 with its fd"));
    for _ in 0..3 {
        let n = note(&sock);
        assert_eq!((n.text.as_str(), n.pid), ("WATCHDOG=1", from));
    }
    // The target goes away: one STATUS= says so, and WATCHDOG=1 stops.
    std::fs::remove_file(&up).unwrap();
    let down = loop {
        let n = note(&sock);
        if n.text != "WATCHDOG=1" {
            break n.text;
        }
    };
    let what = format!("watchdog: file://{} is down (", up.display());
    assert!(down.starts_with(&format!("STATUS={what}")), "{down}");
    assert!(down.ends_with("); WATCHDOG=1 withheld"), "{down}");
    // Five cycles at least: not one WATCHDOG=1 (nor anything else) comes.
    if let Some(n) = try_note(&sock, Duration::from_secs(1)) {
        panic!("sent while the target was down: {}", n.text);
    }
    let l = err.next().unwrap();
    assert!(l.starts_with(&format!("ready: {what}")), "{l}");
    // Back up: WATCHDOG=1 again, and a STATUS= saying so.
    std::fs::write(&up, "").unwrap();
    assert_eq!(note(&sock).text, "WATCHDOG=1");
    assert_eq!(note(&sock).text, "STATUS=ready (watchdog checks pass again)");
    assert_eq!(note(&sock).text, "WATCHDOG=1");
    assert_eq!(
        err.next().unwrap(),
        "ready: watchdog: every target answers again; WATCHDOG=1 resumed"
    );
    // The service ends: so does the watcher, reaped by its reaper (us).
    drop(child.stdin.take());
    assert_eq!(wait_bounded(&mut child).code(), Some(0));
    assert_eq!(reap(watcher), 0);
}

/// A real HTTP receiver (Python's http.server) on a free loopback port:
/// each POST is answered 204 and printed as one line "PATH TYPE BODY".
fn http_receiver() -> Option<(Child, u16, Lines)> {
    if !have("python3", &["-c", "import http.server"]) {
        skip("ready report tests", "python3 is not installed");
        return None;
    }
    let script = r#"
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', '0')))
        print(self.path, self.headers.get('Content-Type'), body.decode(), flush=True)
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
    let mut c = Command::new("python3")
        .args(["-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Lines::of(&mut c);
    let port = lines.next().expect("the receiver's port").parse().unwrap();
    Some((c, port, lines))
}

#[test]
fn report_posts_the_startup_json_to_a_real_receiver() {
    let Some((mut rx, port, got)) = http_receiver() else {
        return;
    };
    let d = TempDir::new("ready-report");
    let sbom = d.join("sbom.cdx.json");
    std::fs::write(&sbom, "{\"bomFormat\":\"CycloneDX\"}\n").unwrap();
    let sum = run(Command::new("sha256sum").arg(&sbom));
    let want_sha = stdout(&sum).split_whitespace().next().unwrap().to_string();
    let mut child = ready()
        .args([
            "--when",
            "file:///",
            "--report",
            &format!("http://127.0.0.1:{port}/ingest"),
        ])
        .args(["--report-name", "api", "--report-sbom", sbom.to_str().unwrap()])
        .args(["--", "sh", "-c", "read x; exit 0"])
        .env("GIT_SHA", "abc\"123\n")
        .env("IMAGE_TAG", "v1.2")
        .env_remove("BUILD_DATE")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = err_lines(&mut child);
    let line = got.next().expect("a POST at the receiver");
    let rest = line.strip_prefix("/ingest application/json ").expect(&line);
    let v: serde_json::Value = serde_json::from_str(rest).unwrap();
    assert_eq!(v["schema"], "dockhand.ready.report/1");
    assert_eq!(v["service"], "api");
    assert_eq!(v["pid"], child.id());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(v["host"], host.trim());
    assert_eq!(v["targets"], serde_json::json!(["file:///"]));
    assert_eq!(
        v["build"],
        serde_json::json!({"GIT_SHA": "abc\"123\n", "IMAGE_TAG": "v1.2"})
    );
    assert_eq!(v["sbom"]["sha256"], want_sha.as_str());
    assert_eq!(v["sbom"]["path"], sbom.to_str().unwrap());
    let secs = v["ready_seconds"].as_f64().unwrap();
    assert!(secs >= 0.0, "{secs}");
    assert!(v["started_at"].as_str().unwrap().ends_with('Z'));
    assert!(v["ready_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        err.next().unwrap(),
        format!("ready: startup report sent to http://127.0.0.1:{port}/ingest (status 204, attempt 1)")
    );
    drop(child.stdin.take());
    assert_eq!(wait_bounded(&mut child).code(), Some(0));
    assert_eq!(err.rest(), Vec::<String>::new());
    let _ = rx.kill();
    let _ = rx.wait();
}

#[test]
fn report_to_a_receiver_that_is_down_fails_in_one_line_and_the_service_runs() {
    let down = closed_port();
    let mut child = ready()
        .args(["--when", "file:///", "--print", "UP"])
        .args(["--report", &format!("http://{}/ingest", down.addr())])
        .args(["--", "sh", "-c", "echo service-started; read x; exit 0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = Lines::of(&mut child);
    let err = err_lines(&mut child);
    let mut seen = vec![out.next().unwrap(), out.next().unwrap()];
    seen.sort();
    assert_eq!(seen, ["UP", "service-started"]);
    // The report gives up within its 10s bound (waited for up to 60s).
    let line = err
        .0
        .recv_timeout(Duration::from_secs(60))
        .expect("the report's outcome");
    let want = format!(
        "ready: startup report to http://{}/ingest not sent: connection refused (",
        down.addr()
    );
    assert!(line.starts_with(&want), "{line}");
    assert!(line.ends_with("); the service is not affected"), "{line}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "the service should still run"
    );
    drop(child.stdin.take());
    assert_eq!(wait_bounded(&mut child).code(), Some(0));
    assert_eq!(err.rest(), Vec::<String>::new());
}

// ------------------------------------ --successes and the HTTP options (issue 18)

#[test]
fn successes_need_that_many_in_a_row() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    // 200, 503 (the count starts again), then 200: up at the 5th request.
    let (port, seen) = http_fake(None, {
        let n = Arc::new(AtomicUsize::new(0));
        move |_| match n.fetch_add(1, Ordering::SeqCst) {
            1 => http_response("503 Service Unavailable", ""),
            _ => http_response("200 OK", "ok"),
        }
    });
    let t = format!("http://127.0.0.1:{port}/");
    let o = run(ready().args([
        "--timeout",
        "60s",
        "--interval",
        "20ms",
        "--successes",
        "3",
        "--print",
        "up",
        "--when",
        &t,
    ]));
    assert_eq!((o.status.code(), stdout(&o).trim()), (Some(0), "up"), "{o:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 5);
    let o = run(ready().args(["--when", &t]).env("READY_SUCCESSES", "0"));
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(stderr(&o).contains("READY_SUCCESSES"), "{o:?}");
}

#[test]
fn http_status_header_body_and_unix_socket() {
    let (port, _) = http_fake(None, |req| {
        if req.lines().any(|l| l.eq_ignore_ascii_case("x-probe: yes")) {
            http_response("503 Service Unavailable", "state: draining")
        } else {
            http_response("401 Unauthorized", "")
        }
    });
    let t = format!("http://127.0.0.1:{port}/");
    let o = run(ready().args([
        "--timeout",
        "20s",
        "--status",
        "503",
        "--header",
        "X-Probe: yes",
        "--body-contains",
        "draining",
        "--print",
        "up",
        "--when",
        &t,
    ]));
    assert_eq!((o.status.code(), stdout(&o).trim()), (Some(0), "up"), "{o:?}");
    // Each option decides: without --status 503 the 503 is not up; without
    // the header, a 401; a body text that is not there.
    for args in [
        &["--header", "X-Probe: yes"][..],
        &["--status", "503"][..],
        &[
            "--status",
            "503",
            "--header",
            "X-Probe: yes",
            "--body-contains",
            "ready",
        ][..],
    ] {
        let o = run(ready()
            .args(["--timeout", "300ms"])
            .args(args)
            .args(["--when", &t]));
        assert_eq!(o.status.code(), Some(124), "{args:?}: {o:?}");
    }
    let dir = TempDir::new("ready-http-unix");
    let sock = dir.join("app.sock");
    http_fake(Some(&sock), |_| http_response("200 OK", "ok"));
    let o = run(ready().args([
        "--timeout",
        "20s",
        "--unix-socket",
        sock.to_str().unwrap(),
        "--print",
        "up",
        "--when",
        "http://app/health",
    ]));
    assert_eq!((o.status.code(), stdout(&o).trim()), (Some(0), "up"), "{o:?}");
    let o = run(ready().args(["--body-contains", "x", "--when", "127.0.0.1:1"]));
    assert_eq!(o.status.code(), Some(2), "{o:?}");
}
