//! Helpers for the integration tests: where the real binaries are, temporary
//! directories, and the skip rule. A test that needs root, Docker, qemu or a
//! server prints why it is skipped; under CI (CI=true) it fails instead, so
//! nothing is silently skipped where it must run.

pub mod engine;
pub mod ldroots;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Whether this run is CI (CI=true), where nothing may be skipped.
pub fn ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Directory holding the binaries under test: $DOCKHAND_BIN_DIR, else
/// dist/x86_64 (what `make dist` builds).
pub fn bin_dir() -> PathBuf {
    std::env::var_os("DOCKHAND_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("dist/x86_64"))
}

/// Path of one tool's binary; panics with the fix when it is missing.
pub fn bin(tool: &str) -> PathBuf {
    let p = bin_dir().join(tool);
    assert!(
        p.is_file(),
        "{} is missing: run `make dist` (or set DOCKHAND_BIN_DIR)",
        p.display()
    );
    p
}

/// One tool's command with none of its own variables inherited from where
/// the tests run (`<TOOL>_*`; also waitfor's `WAIT_*` and ready's
/// `NOTIFY_SOCKET`), so a test sees only what it sets itself.
pub fn tool(name: &str) -> Command {
    let mut c = Command::new(bin(name));
    let prefix = format!("{}_", name.to_ascii_uppercase());
    for (k, _) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        let own = k.starts_with(&prefix)
            || (name == "waitfor" && k.starts_with("WAIT_"))
            || (name == "ready" && k == "NOTIFY_SOCKET");
        if own {
            c.env_remove(k);
        }
    }
    c
}

/// Call when a requirement is missing: under CI this fails the test; else it
/// prints why the test is skipped and returns, so the caller can `return`.
pub fn skip(test: &str, why: &str) {
    if ci() {
        panic!("{test}: cannot run under CI=true: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// True when `cmd` runs (found in PATH and exits 0 with these args).
pub fn have(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Require root; returns false (after printing or panicking, see `skip`).
pub fn need_root(test: &str) -> bool {
    if is_root() {
        return true;
    }
    skip(test, "needs root (namespaces, chroot, chown, setuid)");
    false
}

/// A directory removed on drop.
#[derive(Debug)]
pub struct TempDir(tempfile::TempDir);

impl TempDir {
    /// A new empty directory named after `tag`, mode 0755 (less the umask)
    /// as a plain mkdir makes it: tests that drop privileges or chroot into
    /// it need others to be able to search it.
    pub fn new(tag: &str) -> TempDir {
        let d = tempfile::Builder::new()
            .prefix(&format!("dockhand-{tag}-"))
            .permissions(std::fs::Permissions::from_mode(0o755))
            .tempdir()
            .unwrap();
        TempDir(d)
    }
    pub fn path(&self) -> &Path {
        self.0.path()
    }
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.path().join(p)
    }
}

/// Run a command and capture everything.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether process `pid` holds the socket listening on 127.0.0.1:`port`, so
/// that a connection there reaches it and not another test's server that
/// took the same "free" port: /proc/net/tcp gives the listening socket's
/// inode, /proc/PID/fd links to it.
pub fn listens_on(pid: u32, port: u16) -> bool {
    let Ok(tcp) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let local = format!("0100007F:{port:04X}");
    let sockets: Vec<String> = tcp
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // 0A: TCP_LISTEN.
            (f.len() > 9 && f[1] == local && f[3] == "0A").then(|| format!("socket:[{}]", f[9]))
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|e| {
        std::fs::read_link(e.path()).is_ok_and(|l| sockets.iter().any(|s| l.as_os_str() == s.as_str()))
    })
}

/// A 127.0.0.1 TCP port held by a socket bound without listen(): a connect
/// to it is refused (ECONNREFUSED) every time while this is held, and
/// nothing else can take the port meanwhile (no SO_REUSEADDR), unlike a port
/// that was free a moment ago. `listen` opens the same socket later.
#[derive(Debug)]
pub struct HeldPort {
    fd: std::os::fd::OwnedFd,
    port: u16,
}

impl HeldPort {
    pub fn new() -> HeldPort {
        use std::os::fd::FromRawFd;
        // SAFETY: socket(2) takes no pointers; the result is checked.
        let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(raw >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_in is plain old data; all zeroes is valid.
        let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: `sa` is a valid sockaddr_in of `len` bytes for both calls,
        // and getsockname writes at most `len` bytes into it.
        unsafe {
            let p = &mut sa as *mut libc::sockaddr_in as *mut libc::sockaddr;
            assert_eq!(
                libc::bind(raw, p, len),
                0,
                "bind: {}",
                std::io::Error::last_os_error()
            );
            assert_eq!(libc::getsockname(raw, p, &mut len), 0, "getsockname");
        }
        HeldPort {
            fd,
            port: u16::from_be(sa.sin_port),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Start listening on the port (never released in between).
    pub fn listen(self) -> std::net::TcpListener {
        use std::os::fd::AsRawFd;
        // SAFETY: listen(2) on a socket we own; no pointers.
        let r = unsafe { libc::listen(self.fd.as_raw_fd(), 128) };
        assert_eq!(r, 0, "listen: {}", std::io::Error::last_os_error());
        std::net::TcpListener::from(self.fd)
    }
}

impl Default for HeldPort {
    fn default() -> Self {
        HeldPort::new()
    }
}

/// The state letter of process (or thread) `pid` in /proc; None once it is gone.
pub fn proc_state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 1..].split_whitespace().next()?.chars().next()
}

/// Wait (up to a generous 30 s) until process `pid` is asleep in the
/// kernel (state S: started, and now waiting on something) or gone. Whether
/// it sleeps already when this returns only sharpens a test; what the test
/// then asserts must hold either way.
pub fn wait_sleeping(pid: u32) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match proc_state(pid) {
            None | Some('S') => return,
            _ if std::time::Instant::now() > until => panic!("process {pid} never went to sleep"),
            _ => std::thread::sleep(std::time::Duration::from_millis(5)),
        }
    }
}

/// Build a minimal root filesystem for chroot tests: busybox-static with its
/// applets under /bin, the dockhand binaries under /usr/local/bin, and the
/// given /etc/passwd and /etc/group. Returns None (after `skip`) when
/// busybox-static is not installed.
pub fn busybox_root(test: &str, passwd: &str, group: &str) -> Option<TempDir> {
    let bb = Path::new("/bin/busybox");
    if !bb.is_file() {
        skip(
            test,
            "needs busybox-static (/bin/busybox); `make test` installs it",
        );
        return None;
    }
    let root = TempDir::new("root");
    for d in ["bin", "etc", "tmp", "proc", "dev", "usr/local/bin", "data"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(bb, root.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "cat", "id", "sleep", "ls", "true", "false", "kill", "echo", "stat", "ps", "touch", "mkdir",
        "ln", "env", "grep", "wc", "readlink", "chmod", "rm",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    for tool in ["runas", "healthcheck", "waitfor", "ready", "ldcheck"] {
        let src = bin_dir().join(tool);
        if src.is_file() {
            std::fs::copy(&src, root.join("usr/local/bin").join(tool)).unwrap();
        }
    }
    std::fs::write(root.join("etc/passwd"), passwd).unwrap();
    std::fs::write(root.join("etc/group"), group).unwrap();
    std::fs::set_permissions(
        root.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    Some(root)
}

/// Owner (uid, gid) of `p` itself, not following a symlink.
pub fn owner(p: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid())
}

/// Run `cmd` under GNU time and return its output and peak RSS in KiB.
/// `run_it` runs the prepared command (plainly, or bounded by a timeout).
/// None (after `skip`) when /usr/bin/time is not installed.
pub fn peak_rss<S: AsRef<std::ffi::OsStr>>(
    test: &str,
    cmd: &[S],
    run_it: impl FnOnce(&mut Command) -> Output,
) -> Option<(Output, u64)> {
    if !Path::new("/usr/bin/time").is_file() {
        skip(
            test,
            "needs /usr/bin/time (Debian package time; scripts/setup.sh installs it)",
        );
        return None;
    }
    let dir = TempDir::new("rss");
    let f = dir.join("rss");
    let o = run_it(
        Command::new("/usr/bin/time")
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&f)
            .args(cmd),
    );
    // GNU time puts "Command exited with non-zero status 1" before the number.
    let text = std::fs::read_to_string(&f).unwrap();
    let kib = text.lines().last().and_then(|l| l.trim().parse().ok());
    let kib = kib.unwrap_or_else(|| panic!("GNU time wrote {text:?}"));
    Some((o, kib))
}

/// A small HTTP server for the HTTP-option tests of waitfor and ready: each
/// connection's request head (read up to the blank line, at most 16 KiB,
/// 5 s) goes to `respond`, whose bytes are sent back before the connection
/// is closed. Listens on 127.0.0.1, or on the unix socket `unix` when given.
/// Returns the port (0 for a unix socket) and the count of requests seen.
pub fn http_fake(
    unix: Option<&Path>,
    respond: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    // Counted before the answer goes out: a client that got its answer
    // finds its request counted.
    fn answer<S: Read + Write>(mut s: S, respond: &dyn Fn(&str) -> Vec<u8>, count: &AtomicUsize) {
        let mut head = Vec::new();
        let mut b = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match s.read(&mut b) {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&b[..n]),
            }
        }
        let reply = respond(&String::from_utf8_lossy(&head));
        count.fetch_add(1, Ordering::SeqCst);
        let _ = s.write_all(&reply);
    }
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let respond = Arc::new(respond);
    let timeout = Some(std::time::Duration::from_secs(5));
    let port = match unix {
        Some(p) => {
            let l = std::os::unix::net::UnixListener::bind(p).unwrap();
            std::thread::spawn(move || {
                for s in l.incoming().flatten() {
                    let _ = s.set_read_timeout(timeout);
                    answer(s, &*respond, &c);
                }
            });
            0
        }
        None => {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            std::thread::spawn(move || {
                for s in l.incoming().flatten() {
                    let _ = s.set_read_timeout(timeout);
                    answer(s, &*respond, &c);
                }
            });
            port
        }
    };
    (port, count)
}

/// An HTTP/1.1 response with `status` and `body`, closing the connection.
pub fn http_response(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
