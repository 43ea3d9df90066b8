//! ready: wait until every `--when` target answers, then announce readiness
//! (marker file, stdout line, sd_notify, s6 notification fd). With a command,
//! a watcher process does the waiting while the command runs as the original
//! process, keeping its pid, its signals and its exit status.
#![forbid(unsafe_code)]

pub mod marker;

use argh::FromArgs;
use dockhand::check::tls;
use dockhand::cli::{self, Flag, Tail};
use dockhand::sys::notify;
use dockhand::sys::process::{self, Forked, ProcessWatch};
use dockhand::target::Target;
use dockhand::wait::{self, Stop, WaitOptions};
use dockhand::{duration, out, Error};
use nix::sys::socket::UnixAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

const TOOL: &str = "ready";

/// How long the sd_notify barrier may take before we give up on it.
const BARRIER_WAIT: Duration = Duration::from_secs(5);

#[derive(FromArgs, Debug)]
/// Wait until every --when target answers, then announce readiness through
/// each channel given. With `-- COMMAND`, the command runs as this process
/// (same pid, signals, exit status) while a watcher process waits and announces.
#[argh(example = "ready --when http://127.0.0.1:8000/health --file /run/app.ready -- python -m app")]
struct Args {
    /// a target that must answer, repeatable: host:port, tcp://, http://, https://,
    /// unix://, file://, postgres://, redis://, grpc://, grpcs://
    #[argh(option, from_str_fn(target))]
    when: Vec<Target>,
    /// marker file: removed at start, written atomically (pid and time) when ready
    #[argh(option)]
    file: Option<PathBuf>,
    /// print this line on stdout when ready
    #[argh(option)]
    print: Option<String>,
    /// s6 notification fd (3 or more, open): write a newline to it and close it
    #[argh(option, from_str_fn(fd_number))]
    fd: Option<i32>,
    /// give up after this long (exit 124); 0 or unset: wait forever
    #[argh(option, from_str_fn(dur))]
    timeout: Option<Duration>,
    /// longest pause between attempts at one target (default 1s)
    #[argh(option, from_str_fn(dur))]
    interval: Option<Duration>,
    /// bound on one attempt (default 2s)
    #[argh(option, from_str_fn(dur))]
    attempt_timeout: Option<Duration>,
    /// https: trust only the CA certificates in this PEM file (default: the image's CA bundle, $SSL_CERT_FILE or $SSL_CERT_DIR)
    #[argh(option)]
    cacert: Option<PathBuf>,
    /// https: do not verify the server's certificate (what the kubelet does for HTTPS probes)
    #[argh(switch)]
    insecure: bool,
    /// https: client certificate (PEM) for servers that require one (mTLS)
    #[argh(option)]
    cert: Option<PathBuf>,
    /// https: the client certificate's private key (PEM; default: in the --cert file)
    #[argh(option)]
    key: Option<PathBuf>,
}

fn target(s: &str) -> Result<Target, String> {
    Target::arg(s)
}

fn dur(s: &str) -> Result<Duration, String> {
    duration::arg(s)
}

fn fd_number(s: &str) -> Result<i32, String> {
    match s.trim().parse::<i32>() {
        Ok(n) if n >= 3 => Ok(n),
        Ok(n) => Err(format!(
            "{n} is stdin, stdout or stderr; the notification fd must be 3 or more"
        )),
        Err(_) => Err(format!("{s:?} is not a file descriptor number")),
    }
}

fn fd_check(s: &str) -> Result<(), String> {
    fd_number(s).map(|_| ())
}

fn print_text(s: &str) -> Result<(), String> {
    if s.contains(['\n', '\r']) {
        Err("the --print text must be one line".into())
    } else {
        Ok(())
    }
}

const FLAGS: &[Flag] = &[
    Flag::multi("when", Some(Target::check)),
    Flag::value("file", None),
    Flag::value("print", Some(print_text)),
    Flag::value("fd", Some(fd_check)),
    Flag::value("timeout", Some(duration::check)),
    Flag::value("interval", Some(duration::check)),
    Flag::value("attempt-timeout", Some(duration::check)),
    tls::FLAGS[0],
    tls::FLAGS[1],
    tls::FLAGS[2],
    tls::FLAGS[3],
];

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    pub targets: Vec<Target>,
    pub file: Option<PathBuf>,
    pub print: Option<String>,
    pub fd: Option<i32>,
    pub notify: Option<UnixAddr>,
    pub wait: WaitOptions,
    pub command: Vec<String>,
}

/// Parse and validate the command line and environment. `notify_socket` is
/// the value of NOTIFY_SOCKET (empty or unset: no sd_notify).
pub fn parse(args: &[String], env: &dyn cli::Env, notify_socket: Option<&str>) -> Result<Config, Error> {
    let (a, split) = cli::parse_all::<Args>(
        TOOL,
        args,
        FLAGS,
        Tail::AfterDoubleDash,
        env,
        &[(
            "NOTIFY_SOCKET",
            "sd_notify socket (/path or @abstract); READY=1 is sent there",
        )],
    )?;
    if a.when.is_empty() {
        return Err(Error::usage("no --when target given (or READY_WHEN)"));
    }
    if split.had_double_dash && split.command.is_empty() {
        return Err(Error::usage("nothing after --: give the command to run"));
    }
    if let Some(t) = &a.print {
        print_text(t).map_err(Error::usage)?;
    }
    if let Some(f) = &a.file {
        let raw = std::os::unix::ffi::OsStrExt::as_bytes(f.as_os_str());
        if raw.is_empty() || raw.ends_with(b"/") || f.file_name().is_none() {
            return Err(Error::usage(format!("--file {f:?}: not a file path")));
        }
    }
    if let Some(n) = a.fd {
        if !notify::fd_is_open(n) {
            return Err(Error::usage(format!(
                "--fd {n}: fd {n} is not open (the supervisor must pass the notification fd)"
            )));
        }
    }
    let notify = match notify_socket.filter(|s| !s.is_empty()) {
        Some(s) => Some(notify::notify_addr(s).map_err(Error::usage)?),
        None => None,
    };
    for (name, v) in [
        ("--interval", a.interval),
        ("--attempt-timeout", a.attempt_timeout),
    ] {
        if v.is_some_and(|d| d < Duration::from_millis(1)) {
            return Err(Error::usage(format!("{name} must be 1ms or more")));
        }
    }
    let mut wait = WaitOptions {
        timeout: a.timeout.unwrap_or(Duration::ZERO),
        interval: a.interval.unwrap_or(Duration::from_secs(1)),
        attempt_timeout: a.attempt_timeout.unwrap_or(Duration::from_secs(2)),
        progress_every: None,
        handle_signals: true,
        ..WaitOptions::default()
    };
    wait.check.http.tls = tls::options(a.cacert, a.insecure, a.cert, a.key)?;
    Ok(Config {
        targets: a.when,
        file: a.file,
        print: a.print,
        fd: a.fd,
        notify,
        wait,
        command: split.command,
    })
}

/// Run ready with its arguments (program name removed); returns the exit status.
pub fn run(args: Vec<String>) -> Result<i32, Error> {
    let cfg = parse(&args, &cli::ProcessEnv, cli::var("NOTIFY_SOCKET")?.as_deref())?;
    // Before anything else runs: a marker from an earlier run (a persisted
    // volume, a restarted container) must never claim readiness.
    if let Some(f) = &cfg.file {
        marker::remove(f)
            .map_err(|e| Error::failed(format!("cannot remove the old marker {}: {e}", f.display())))?;
    }
    if cfg.command.is_empty() {
        standalone(&cfg)
    } else {
        Err(with_command(cfg))
    }
}

/// No command: wait, announce, exit.
fn standalone(cfg: &Config) -> Result<i32, Error> {
    match wait::wait_all(&cfg.targets, &cfg.wait, None, &mut |_| {}) {
        // The marker names the process that ran us: in `ready ... && exec app`
        // that is the shell about to become the app.
        Ok(()) => Ok(if announce(cfg, process::getppid()) { 0 } else { 1 }),
        Err(Stop::Timeout(down)) => Err(Error::timeout(not_ready(cfg, &down))),
        Err(Stop::Signal(n)) => Err(Error::Signal(n, String::new())),
        Err(Stop::Cancelled) => Err(Error::failed("the wait was cancelled")),
        Err(Stop::Setup(e)) => Err(Error::failed(e)),
    }
}

fn not_ready(cfg: &Config, down: &[(String, String)]) -> String {
    let list: Vec<String> = down.iter().map(|(t, e)| format!("{t} ({e})")).collect();
    format!(
        "not ready after {}: {}",
        duration::human(cfg.wait.timeout),
        list.join(", ")
    )
}

/// With a command: start the watcher, then become the command. Returns only
/// the error to exit with.
///
/// The watcher is a grandchild: the intermediate child exits at once and is
/// reaped here before the exec, so the watcher is re-parented to the nearest
/// subreaper or init (`runas --init`, `docker run --init`, tini), which reaps
/// it. It is never a child of the service, so a service that never calls
/// wait() is left with no zombie. The watcher learns of the service's end
/// through a pidfd (or the /proc start time) taken before the fork, and
/// stops then. Where the service itself is that reaper (it is PID 1, or a
/// subreaper), an exited watcher would be its zombie for good, so there the
/// watcher stays, asleep, until the service ends.
fn with_command(cfg: Config) -> Error {
    // Taken while we are certainly alive; the descriptor is close-on-exec.
    let service = ProcessWatch::new(process::getpid());
    // No thread exists yet (argument parsing starts none), so fork is sound.
    match process::fork() {
        Err(e) => Error::failed(format!("cannot fork the watcher: {e}")),
        Ok(Forked::Parent { child }) => {
            let _ = process::wait_for(child);
            drop(service);
            // The announcement is the watcher's: the service must not hold
            // the notification fd open or write to it.
            if let Some(fd) = cfg.fd {
                if let Err(e) = notify::set_cloexec(fd) {
                    return Error::failed(format!("cannot keep fd {fd} from the command: {e}"));
                }
            }
            dockhand::exec::exec(&cfg.command)
        }
        Ok(Forked::Child) => {
            let middle = process::getpid();
            match process::fork() {
                Ok(Forked::Parent { .. }) => std::process::exit(0),
                Ok(Forked::Child) => std::process::exit(watcher(&cfg, &service, middle)),
                Err(e) => {
                    out::warn(
                        TOOL,
                        &format!("cannot fork the watcher: {e}; readiness will not be announced"),
                    );
                    std::process::exit(1)
                }
            }
        }
    }
}

/// The watcher: wait for the targets while the service lives, announce,
/// and exit (or, where the service is our reaper, sleep until it ends).
fn watcher(cfg: &Config, service: &ProcessWatch, middle: i32) -> i32 {
    // The intermediate process exits right after forking us; wait (bounded)
    // until we have been handed to our reaper, to learn who that is.
    for _ in 0..5000 {
        if process::getppid() != middle {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let service_reaps_us = process::getppid() == service.pid();
    let opts = WaitOptions {
        // Signals are the service's business; ours keep their default action.
        handle_signals: false,
        ..cfg.wait.clone()
    };
    let ended = || service.ended();
    let code = match wait::wait_all(&cfg.targets, &opts, Some(&ended), &mut |_| {}) {
        Ok(()) if service.ended() => 0,
        Ok(()) => {
            if announce(cfg, service.pid()) {
                0
            } else {
                1
            }
        }
        Err(Stop::Timeout(down)) => {
            let e = Error::timeout(format!(
                "{}; giving up, the service keeps running",
                not_ready(cfg, &down)
            ));
            out::warn(TOOL, &e.to_string());
            e.code()
        }
        Err(Stop::Cancelled) => 0,
        Err(Stop::Signal(n)) => Error::Signal(n, String::new()).code(),
        Err(Stop::Setup(e)) => {
            out::warn(TOOL, &format!("{e}; readiness will not be announced"));
            Error::failed(e).code()
        }
    };
    if service_reaps_us {
        service.wait_ended();
    }
    code
}

/// Announce through every configured channel; false when one failed (each
/// failure is reported on stderr, and the other channels are still tried).
fn announce(cfg: &Config, pid: i32) -> bool {
    let mut ok = true;
    let mut fail = |what: String| {
        out::warn(TOOL, &what);
        ok = false;
    };
    if let Some(f) = &cfg.file {
        if let Err(e) = marker::write(f, &marker::content(pid, SystemTime::now())) {
            fail(format!("cannot write the marker {}: {e}", f.display()));
        }
    }
    if let Some(t) = &cfg.print {
        if let Err(e) = print_line(t) {
            fail(format!("cannot print to stdout: {e}"));
        }
    }
    if let Some(fd) = cfg.fd {
        if let Err(e) = notify::s6_notify(fd) {
            fail(format!("cannot notify on fd {fd}: {e}"));
        }
    }
    if let Some(addr) = &cfg.notify {
        match notify::sd_notify(addr, "READY=1", BARRIER_WAIT) {
            Ok(()) => {}
            // READY=1 was delivered; only its attribution is unconfirmed.
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => out::warn(
                TOOL,
                &format!(
                    "sent READY=1 to NOTIFY_SOCKET, but the barrier was not answered in {BARRIER_WAIT:?}"
                ),
            ),
            Err(e) => fail(format!("cannot send READY=1 to NOTIFY_SOCKET: {e}")),
        }
    }
    ok
}

/// One line on stdout in a single write, so it cannot be split by output of
/// the service sharing the same pipe. A closed stdout is not an error.
fn print_line(text: &str) -> std::io::Result<()> {
    let line = format!("{text}\n");
    let mut buf = line.as_bytes();
    while !buf.is_empty() {
        match nix::unistd::write(std::io::stdout(), buf) {
            Ok(n) => buf = &buf[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EPIPE) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_flags_table_matches_args() {
        assert_eq!(
            dockhand::cli::flags_disagree::<super::Args>(super::FLAGS),
            Vec::<String>::new()
        );
    }

    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_and_command() {
        let c = parse(
            &s(&[
                "--when",
                "db:5432",
                "--when=file:///run/x",
                "--print",
                "UP",
                "--",
                "app",
                "--when",
                "y",
            ]),
            &[("READY_TIMEOUT", "5s")],
            None,
        )
        .unwrap();
        assert_eq!(c.targets.len(), 2);
        assert_eq!(c.print.as_deref(), Some("UP"));
        assert_eq!(c.wait.timeout, Duration::from_secs(5));
        assert_eq!(c.command, s(&["app", "--when", "y"]));
        assert!(c.notify.is_none());
    }

    #[test]
    fn environment_fallbacks() {
        let env = [
            ("READY_WHEN", "db:5432, cache:6379"),
            ("READY_FILE", "/run/app.ready"),
            ("READY_PRINT", "APP_READY"),
            ("READY_INTERVAL", "250ms"),
        ];
        let c = parse(&[], &env, None).unwrap();
        assert_eq!(c.targets.len(), 2);
        assert_eq!(c.file, Some(PathBuf::from("/run/app.ready")));
        assert_eq!(c.print.as_deref(), Some("APP_READY"));
        assert_eq!(c.wait.interval, Duration::from_millis(250));
        assert_eq!(c.wait.timeout, Duration::ZERO);
    }

    #[test]
    fn usage_errors() {
        let e =
            |args: &[&str], env: &[(&str, &str); 1], ns: Option<&str>| parse(&s(args), env, ns).unwrap_err();
        let none = [("X", "")];
        for (args, what) in [
            (&["--file", "/x"][..], "--when"),
            (&["--when", "db:1", "--fd", "2"], "3 or more"),
            (&["--when", "db:1", "--fd", "x"], "--fd"),
            (&["--when", "db:1", "--fd", "987654"], "not open"),
            (&["--when", "nope://x"], "scheme"),
            (&["--when", "db:1", "--"], "command"),
            (&["--when", "db:1", "--file", "/tmp/"], "--file"),
        ] {
            let err = e(args, &none, None);
            assert_eq!(err.code(), 2, "{args:?}: {err}");
            assert!(err.to_string().contains(what), "{args:?}: {err}");
        }
        let err = e(&["--when", "db:1"], &[("READY_PRINT", "a\nb")], None);
        assert!(err.to_string().contains("READY_PRINT"), "{err}");
        let err = e(&["--when", "db:1"], &none, Some("relative"));
        assert!(err.to_string().contains("NOTIFY_SOCKET"), "{err}");
        assert_eq!(err.code(), 2);
    }

    #[test]
    fn notify_socket_is_parsed() {
        let c = parse(&s(&["--when", "db:1"]), &[("X", "")], Some("@ready-test")).unwrap();
        assert_eq!(c.notify.unwrap().as_abstract(), Some(&b"ready-test"[..]));
        let c = parse(&s(&["--when", "db:1"]), &[("X", "")], Some("")).unwrap();
        assert!(c.notify.is_none());
    }

    #[test]
    fn process_watch_sees_an_unrelated_end() {
        watch_sees_end(ProcessWatch::new);
        watch_sees_end(ProcessWatch::new_without_pidfd);
    }

    fn watch_sees_end(new: fn(i32) -> ProcessWatch) {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let w = new(child.id() as i32);
        assert!(!w.ended());
        child.kill().unwrap();
        // Not reaped yet: a zombie counts as ended.
        let t = std::time::Instant::now();
        while !w.ended() && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(w.ended());
        w.wait_ended();
        child.wait().unwrap();
    }
}
