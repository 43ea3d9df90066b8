//! healthcheck: one probe of a target, with Docker and Kubernetes exit codes
//! (0 healthy, 1 unhealthy, 2 usage), one line of output for `docker
//! inspect`'s Health.Log, and optionally taking the container down by
//! signalling PID 1 after N consecutive failures.
#![forbid(unsafe_code)]

pub mod state;

use argh::FromArgs;
use dockhand::check::{self, http, tls, CheckError, Kind};
use dockhand::cli::{self, Env, Flag, Tail};
use dockhand::duration;
use dockhand::sys::{pid1, process, signal};
use dockhand::target::Target;
use dockhand::{out, Error};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const TOOL: &str = "healthcheck";

#[derive(FromArgs, Debug)]
/// Probe TARGET once: exit 0 when healthy, 1 when not, 2 on a usage error.
/// TARGET: http://host:port/path, https://host:port/path, tcp://host:port (or host:port),
/// unix:///path.sock, file:///path, postgres://host:port, redis://host:port,
/// mysql://host:port, amqp://host:port, nats://host:port, mongodb://host:port,
/// kafka://host:port, dns://name, grpc://host:port[/service],
/// grpcs://host:port[/service].
struct Args {
    /// bound on the whole probe: resolution, connect, request, response (default 3s)
    #[argh(option, from_str_fn(duration_arg))]
    timeout: Option<Duration>,
    /// accepted HTTP statuses, e.g. 200,204 or 200-299 (default 200-399)
    #[argh(option, from_str_fn(status_arg))]
    status: Option<Vec<(u16, u16)>>,
    /// the HTTP body (first 64 KiB) must contain this text
    #[argh(option)]
    body_contains: Option<String>,
    /// extra HTTP request header "Name: value" (repeatable); Host, User-Agent and Accept replace ours, and an empty User-Agent or Accept sends none; for grpc:// it is metadata (Host sets :authority)
    #[argh(option, from_str_fn(header_arg))]
    header: Vec<String>,
    /// send the HTTP request over this unix socket
    #[argh(option)]
    unix_socket: Option<PathBuf>,
    /// judge the first HTTP response, without following a redirect to the same host
    #[argh(switch)]
    no_follow: bool,
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
    /// signal PID 1 after --kill-after consecutive failures
    #[argh(switch)]
    kill_pid1: bool,
    /// consecutive failures before PID 1 is signalled (default 3)
    #[argh(option, from_str_fn(count_arg))]
    kill_after: Option<u32>,
    /// no signal while PID 1 is younger than this, and failures are not counted (default 0)
    #[argh(option, from_str_fn(duration_arg))]
    start_period: Option<Duration>,
    /// the signal for PID 1 (default TERM)
    #[argh(option, from_str_fn(signal_arg))]
    kill_signal: Option<i32>,
    /// healthy only once this many probes in a row succeeded, counted in the state file (default 1)
    #[argh(option, from_str_fn(successes_arg))]
    successes: Option<u32>,
    /// file counting consecutive failures and successes (default /tmp/dockhand-<euid>/healthcheck-<hash of TARGET>.state)
    #[argh(option)]
    state: Option<PathBuf>,
    /// print nothing on stdout; the exit status says it all
    #[argh(switch, short = 'q')]
    quiet: bool,
    /// also write the line of a failing probe to PID 1's stderr (docker logs, kubectl logs)
    #[argh(switch)]
    log_to_pid1: bool,
    /// what to probe (or $HEALTHCHECK_TARGET)
    #[argh(positional)]
    target: Option<String>,
}

fn duration_arg(v: &str) -> Result<Duration, String> {
    duration::parse(v)
}
fn status_arg(v: &str) -> Result<Vec<(u16, u16)>, String> {
    http::flags::status_arg(v)
}
fn header_arg(v: &str) -> Result<String, String> {
    http::flags::header_arg(v)
}
fn successes_arg(v: &str) -> Result<u32, String> {
    dockhand::wait::successes_arg(v)
}
fn count_arg(v: &str) -> Result<u32, String> {
    match v.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{v:?} is not a count of at least 1")),
    }
}
fn signal_arg(v: &str) -> Result<i32, String> {
    signal::parse(v)
}

/// The flags that can come from `HEALTHCHECK_<FLAG>`. A header from the
/// environment is one header (values hold spaces), not a list.
const FLAGS: &[Flag] = &[
    Flag::value("timeout", Some(duration::check)),
    http::flags::STATUS,
    http::flags::BODY_CONTAINS,
    http::flags::HEADER,
    http::flags::UNIX_SOCKET,
    http::flags::NO_FOLLOW,
    tls::FLAGS[0],
    tls::FLAGS[1],
    tls::FLAGS[2],
    tls::FLAGS[3],
    Flag::switch("kill-pid1"),
    Flag::value("kill-after", Some(|v| count_arg(v).map(|_| ()))),
    Flag::value("start-period", Some(duration::check)),
    Flag::value("kill-signal", Some(|v| signal::parse(v).map(|_| ()))),
    dockhand::wait::SUCCESSES,
    Flag::value("state", None),
    Flag::switch("quiet"),
    Flag::switch("log-to-pid1"),
];

/// Taking the container down.
#[derive(Debug, Clone)]
pub struct Kill {
    pub after: u32,
    pub start_period: Duration,
    pub signal: i32,
}

/// The validated command line.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: Target,
    pub timeout: Duration,
    pub http: http::Options,
    pub kill: Option<Kill>,
    /// Where failures are counted (`None`: they are not).
    pub state: Option<PathBuf>,
    /// Consecutive successes needed to report healthy (1: this probe's own).
    pub successes: u32,
    pub quiet: bool,
    /// Write the line of a failing probe to PID 1's stderr too.
    pub log_to_pid1: bool,
}

/// Parse and validate the command line and environment.
pub fn config(args: &[String], env: &dyn Env) -> Result<Config, Error> {
    let (a, _) = cli::parse_all::<Args>(
        TOOL,
        args,
        FLAGS,
        Tail::None,
        env,
        &[("HEALTHCHECK_TARGET", "TARGET")],
    )?;
    let given = match a.target {
        Some(t) => Some(t),
        None => env.get("HEALTHCHECK_TARGET")?.filter(|t| !t.is_empty()),
    };
    let text = match given {
        Some(t) => t,
        None => {
            return Err(Error::usage(
                "missing TARGET (or $HEALTHCHECK_TARGET), e.g. http://127.0.0.1:8000/health",
            ))
        }
    };
    let target = Target::parse(&text).map_err(Error::usage)?;
    let timeout = a.timeout.unwrap_or(Duration::from_secs(3));
    if timeout.is_zero() {
        return Err(Error::usage("--timeout must be more than 0"));
    }
    let http = http::flags::options(
        http::flags::Given {
            status: a.status.unwrap_or_default(),
            body_contains: a.body_contains,
            headers: a.header,
            unix_socket: a.unix_socket,
            no_follow: a.no_follow,
            cacert: a.cacert,
            insecure: a.insecure,
            cert: a.cert,
            key: a.key,
        },
        std::slice::from_ref(&target),
    )?;
    let successes = a.successes.unwrap_or(1);
    for (given, flag) in [
        (a.kill_after.is_some(), "--kill-after"),
        (a.start_period.is_some(), "--start-period"),
        (a.kill_signal.is_some(), "--kill-signal"),
    ] {
        if given && !a.kill_pid1 {
            return Err(Error::usage(format!("{flag} needs --kill-pid1")));
        }
    }
    let kill = a.kill_pid1.then(|| Kill {
        after: a.kill_after.unwrap_or(3),
        start_period: a.start_period.unwrap_or(Duration::ZERO),
        signal: a.kill_signal.unwrap_or(15),
    });
    let state = match a.state {
        Some(p) => Some(p),
        None if kill.is_some() || successes > 1 => {
            let key = match &http.unix_socket {
                Some(s) => format!("{target} {}", s.display()),
                None => target.to_string(),
            };
            Some(state::default_path(&key))
        }
        None => None,
    };
    Ok(Config {
        target,
        timeout,
        http,
        kill,
        state,
        successes,
        quiet: a.quiet,
        log_to_pid1: a.log_to_pid1,
    })
}

/// What was probed, for the output line: `GET http://...` or the target.
pub fn describe(cfg: &Config) -> String {
    match (&cfg.target, &cfg.http.unix_socket) {
        (Target::Http(u), Some(s)) => format!("GET {} via unix://{}", u.text, s.display()),
        (Target::Http(u), None) => format!("GET {}", u.text),
        (t, _) => t.to_string(),
    }
}

/// The reason for the output line; a probe that ran out of time says how
/// long it was given: "timed out after 3s". Decided by the kind only: a
/// message can hold what the server sent, which may say anything.
pub fn timeout_reason(e: &CheckError, timeout: Duration) -> String {
    if e.kind != Kind::TimedOut {
        return e.message.clone();
    }
    let limit = duration::human(timeout);
    // Our timed-out messages say "timed out" ("no Redis reply: timed out",
    // "[::1]:80: timed out"), after a redirect followed by where ("timed out
    // at URL (1 redirect)"): the limit goes right after those words. A URL
    // cannot hold the space, so the first match is ours. The other form is a
    // fallback.
    match e.message.find("timed out") {
        Some(i) => {
            let (head, tail) = e.message.split_at(i + "timed out".len());
            format!("{head} after {limit}{tail}")
        }
        None => format!("{} (timed out after {limit})", e.message),
    }
}

/// Run healthcheck with its arguments (program name removed); returns the exit status.
pub fn run(args: Vec<String>) -> Result<i32, Error> {
    let cfg = config(&args, &cli::ProcessEnv)?;
    let start = Instant::now();
    let deadline = start + cfg.timeout;
    let opts = check::Options {
        http: cfg.http.clone(),
    };
    let result = check::check(&cfg.target, deadline, &opts);
    let took = start.elapsed();
    let what = describe(&cfg);
    let mut pending = None;
    // With --successes N, a success is counted first: it is healthy only
    // as the Nth in a row.
    let not_yet = match &result {
        Ok(_) if cfg.successes > 1 => account(&cfg, true, &mut pending),
        _ => None,
    };
    let line = match &result {
        Ok(detail) => match &not_yet {
            None => format!("healthy: {what} -> {detail} in {}", duration::human(took)),
            Some(n) => format!("unhealthy: {what} -> {detail} ({n})"),
        },
        Err(reason) => {
            let reason = timeout_reason(reason, cfg.timeout);
            let note = account(&cfg, false, &mut pending)
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            format!("unhealthy: {what} -> {reason}{note}")
        }
    };
    if result.is_ok() && cfg.successes <= 1 {
        account(&cfg, true, &mut pending);
    }
    if !cfg.quiet {
        out::line(&line);
    }
    if cfg.log_to_pid1 && result.is_err() {
        log_to_pid1(&line);
    }
    // The line goes out before the signal: when PID 1 ends, the kernel kills
    // everything left in its PID namespace, this probe included, and the
    // line would be lost.
    if let Some(p) = pending {
        if let Err(e) = process::kill(1, p.signal) {
            out::warn(
                TOOL,
                &format!(
                    "cannot send {} to PID 1 ({}): {}",
                    p.name,
                    p.comm,
                    dockhand::net::describe(&e)
                ),
            );
        }
    }
    Ok(if result.is_ok() && not_yet.is_none() { 0 } else { 1 })
}

/// A signal for PID 1, sent once the output line is out.
struct PendingSignal {
    signal: i32,
    name: String,
    comm: String,
}

/// `--log-to-pid1`: the line, escaped and prefixed, on PID 1's stderr,
/// which is what `docker logs` and `kubectl logs` show (Docker keeps the
/// probe's own output only in `docker inspect`). Not when this probe is
/// PID 1 (its stderr is that already). A failure is one line on our own
/// stderr and changes nothing else.
fn log_to_pid1(line: &str) {
    if process::getpid() == 1 {
        return;
    }
    let text = format!("{TOOL}: {}", out::escape(line.as_bytes()));
    match pid1::write_stderr_line(1, &text) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => out::warn(
            TOOL,
            "--log-to-pid1: PID 1's stderr is a full pipe (nothing reads it); line not written",
        ),
        Err(e) => out::warn(
            TOOL,
            &format!(
                "--log-to-pid1: cannot write to /proc/1/fd/2: {} (the probe needs PID 1's user and the right to open its stderr, or CAP_SYS_PTRACE: docker run --cap-add SYS_PTRACE)",
                dockhand::net::describe(&e)
            ),
        ),
    }
}

/// What PID 1 is, for deciding whether to signal it.
enum Pid1 {
    /// Signalling would do nothing, and why (for the output line).
    Not(String),
    /// PID 1's name; it catches the signal.
    Catches(String),
}

/// Whether PID 1 can take `sig` (it must catch it, or the kernel drops it).
fn pid1_takes(sig: i32) -> Pid1 {
    let name = format!("SIG{}", signal::name(sig));
    if process::getpid() == 1 {
        return Pid1::Not("not signalled: healthcheck itself is PID 1".into());
    }
    match pid1::name_and_caught(1, sig) {
        Err(e) => Pid1::Not(format!(
            "PID 1 not signalled: cannot read /proc/1/status: {}",
            dockhand::net::describe(&e)
        )),
        Ok((comm, false)) => {
            out::warn(
                TOOL,
                &format!(
                    "PID 1 ({comm}) has no handler for {name}, so the kernel ignores it: run the service under runas --init"
                ),
            );
            Pid1::Not(format!("PID 1 ({comm}) not signalled: no {name} handler"))
        }
        Ok((comm, true)) => Pid1::Catches(comm),
    }
}

/// Count the result in the state file and, after enough failures, signal
/// PID 1 once: the state keeps the signal sent to this PID 1 (known by its
/// start time), and the next failing probes say that PID 1 did not end
/// instead of sending it again. Returns the note for the output line of a
/// failure, and for a success under --successes N, what keeps it from
/// counting as healthy yet (fewer than N in a row, or no state file to
/// count them in: fail closed).
fn account(cfg: &Config, healthy: bool, pending: &mut Option<PendingSignal>) -> Option<String> {
    let path = cfg.state.as_ref()?;
    let pid1_start = pid1::start_ticks(1).ok();
    // Failures inside the start period are not counted (Docker's rule), and
    // PID 1 is never signalled then; an unknown age counts as young.
    let young = match &cfg.kill {
        Some(k) if !healthy && !k.start_period.is_zero() => match pid1::age(1) {
            Ok(age) if age >= k.start_period => None,
            Ok(age) => Some(format!(
                "not counted: PID 1 is {} old, start period {}",
                duration::human(age),
                duration::human(k.start_period)
            )),
            Err(e) => Some(format!("not counted: cannot tell the age of PID 1: {e}")),
        },
        _ => None,
    };
    // Read before the lock, which is held for microseconds.
    let takes = match &cfg.kill {
        Some(k) if !healthy && young.is_none() => Some(pid1_takes(k.signal)),
        _ => None,
    };
    let mut fire = false;
    // The lock is held for microseconds; a second is plenty even when the
    // probe used all of its time.
    let updated = state::update(path, Instant::now() + Duration::from_secs(1), |old| {
        let old = old.filter(|o| o.pid1_start == pid1_start).unwrap_or_default();
        let failures = if healthy {
            0
        } else if young.is_some() {
            old.failures
        } else {
            old.failures.saturating_add(1)
        };
        let successes = if healthy {
            old.successes.saturating_add(1)
        } else {
            0
        };
        // A success ends the run of failures: a later run may signal again.
        let mut signalled = if healthy { None } else { old.signalled };
        if let (Some(k), Some(Pid1::Catches(_))) = (&cfg.kill, &takes) {
            if failures >= k.after && signalled != Some(k.signal) {
                signalled = Some(k.signal);
                fire = true;
            }
        }
        state::State {
            failures,
            pid1_start,
            successes,
            signalled,
        }
    });
    let updated = match updated {
        Ok(u) => u,
        Err(e) => {
            if healthy && cfg.successes > 1 {
                return Some(format!("successes not counted: {e}"));
            }
            if healthy {
                out::warn(TOOL, &e);
            }
            return Some(format!("failures not counted: {e}"));
        }
    };
    if let Some(w) = &updated.warning {
        out::warn(TOOL, w);
    }
    if healthy {
        let n = updated.state.successes;
        return (n < cfg.successes).then(|| format!("success {n} of {} in a row", cfg.successes));
    }
    if let Some(y) = young {
        return Some(y);
    }
    let n = updated.state.failures;
    let Some(k) = &cfg.kill else {
        return Some(format!("failure {n}"));
    };
    let count = format!("failure {n} of {}", k.after);
    if n < k.after {
        return Some(count);
    }
    let name = format!("SIG{}", signal::name(k.signal));
    let note = match takes {
        Some(Pid1::Catches(comm)) if fire => {
            let line = format!("sending {name} to PID 1 ({comm})");
            *pending = Some(PendingSignal {
                signal: k.signal,
                name,
                comm,
            });
            line
        }
        // runas --init may hold the signal (--stop-delay) and ends its
        // service within --grace: it is on its way down, not hung.
        Some(Pid1::Catches(comm)) if comm == "runas" => format!(
            "PID 1 (runas) is still the process an earlier probe sent {name} (same start time), and {name} \
             is not sent again: runas passes it on after its --stop-delay and KILLs the service's process \
             group after --grace"
        ),
        Some(Pid1::Catches(comm)) => format!(
            "PID 1 ({comm}) is still the process an earlier probe sent {name} (same start time): it caught \
             the signal and did not end, and {name} is not sent again; nothing inside the container can \
             end it (the kernel drops even SIGKILL sent from inside a PID namespace to its init): run the \
             service under runas --init, whose --grace KILLs the service's process group and exits"
        ),
        Some(Pid1::Not(why)) => why,
        None => String::new(),
    };
    Some(format!("{count}; {note}"))
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
    fn defaults() {
        let c = config(&s(&["http://127.0.0.1:8000/health"]), &[("X", "")]).unwrap();
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert!(c.kill.is_none() && c.state.is_none() && !c.quiet);
        assert_eq!(describe(&c), "GET http://127.0.0.1:8000/health");
        let c = config(&s(&["--kill-pid1", "http://127.0.0.1:8000/health"]), &[("X", "")]).unwrap();
        let k = c.kill.unwrap();
        assert_eq!((k.after, k.start_period, k.signal), (3, Duration::ZERO, 15));
        assert!(c.state.unwrap().starts_with("/tmp"));
    }

    #[test]
    fn environment_fills_in() {
        let env = [
            ("HEALTHCHECK_TARGET", "tcp://127.0.0.1:5432"),
            ("HEALTHCHECK_TIMEOUT", "250ms"),
            ("HEALTHCHECK_KILL_PID1", "yes"),
            ("HEALTHCHECK_KILL_AFTER", "5"),
            ("HEALTHCHECK_KILL_SIGNAL", "INT"),
        ];
        let c = config(&[], &env).unwrap();
        assert_eq!(c.target.to_string(), "tcp://127.0.0.1:5432");
        assert_eq!(c.timeout, Duration::from_millis(250));
        let k = c.kill.unwrap();
        assert_eq!((k.after, k.signal), (5, 2));
        let env = [("HEALTHCHECK_HEADER", "Authorization: Bearer a b")];
        let c = config(&s(&["http://h/"]), &env).unwrap();
        assert_eq!(c.http.headers, s(&["Authorization: Bearer a b"]));
        assert!(!c.http.no_follow);
        let c = config(&s(&["http://h/"]), &[("HEALTHCHECK_NO_FOLLOW", "1")]).unwrap();
        assert!(c.http.no_follow);
        let c = config(&s(&["--no-follow", "http://h/"]), &[("X", "")]).unwrap();
        assert!(c.http.no_follow);
        // gRPC metadata comes from --header too.
        let c = config(&s(&["--header", "x-token: t", "grpc://h:1/svc"]), &[("X", "")]).unwrap();
        assert_eq!(c.http.headers, s(&["x-token: t"]));
        let c = config(&s(&["--insecure", "grpcs://h:1/svc"]), &[("X", "")]).unwrap();
        assert!(c.http.tls.insecure);
    }

    #[test]
    fn usage_errors_name_the_problem() {
        let env = [("X", "")];
        let long_sock = format!("/{}", "s".repeat(107));
        let long_unix = format!("unix://{long_sock}");
        for (args, want) in [
            (&[][..], "missing TARGET"),
            (&["--timeout", "0", "h:1"][..], "--timeout"),
            (&["--status", "200", "tcp://h:1"][..], "--status"),
            (&["--unix-socket", "/s", "file:///x"][..], "--unix-socket"),
            (&["--kill-after", "2", "h:1"][..], "needs --kill-pid1"),
            (&["--kill-pid1", "--kill-after", "0", "h:1"][..], "--kill-after"),
            (
                &["--kill-pid1", "--kill-signal", "NOPE", "h:1"][..],
                "--kill-signal",
            ),
            (&["--header", "bad", "http://h/"][..], "--header"),
            (&["--no-follow", "h:1"][..], "--no-follow"),
            (
                &["--header", "grpc-timeout: 1S", "grpc://h:1"][..],
                "set by the gRPC check",
            ),
            (
                &["--status", "200", "grpc://h:1"][..],
                "--status applies to http:// and https://",
            ),
            (
                &["--insecure", "grpc://h:1"][..],
                "--insecure applies to http://, https:// and grpcs://",
            ),
            (&["ftp://h"][..], "unknown scheme"),
            (
                &["--unix-socket", &long_sock, "http://h/"][..],
                "socket path is too long",
            ),
            (&[long_unix.as_str()][..], "socket path is too long"),
        ] {
            let e = config(&s(args), &env).unwrap_err();
            assert_eq!(e.code(), 2, "{args:?}");
            assert!(e.to_string().contains(want), "{args:?}: {e}");
        }
        let e = config(&s(&["h:1"]), &[("HEALTHCHECK_KILL_AFTER", "x")]).unwrap_err();
        assert!(e.to_string().contains("HEALTHCHECK_KILL_AFTER"), "{e}");
    }

    #[test]
    fn successes_need_a_state_file() {
        let c = config(&s(&["h:1"]), &[("X", "")]).unwrap();
        assert_eq!((c.successes, c.state.is_none()), (1, true));
        let c = config(&s(&["h:1"]), &[("HEALTHCHECK_SUCCESSES", "3")]).unwrap();
        assert_eq!(c.successes, 3);
        assert!(c.state.unwrap().starts_with(state::private_dir()));
        let e = config(&s(&["--successes", "0", "h:1"]), &[("X", "")]).unwrap_err();
        assert!(e.code() == 2 && e.to_string().contains("--successes"), "{e}");
    }

    #[test]
    fn timeout_reason_says_how_long() {
        let t = |kind, m: &str| CheckError::new(kind, m);
        assert_eq!(
            timeout_reason(&CheckError::timed_out(), Duration::from_secs(3)),
            "timed out after 3s"
        );
        assert_eq!(
            timeout_reason(
                &t(Kind::TimedOut, "cannot resolve db: lookup timed out"),
                Duration::from_millis(500)
            ),
            "cannot resolve db: lookup timed out after 500ms"
        );
        assert_eq!(
            timeout_reason(&t(Kind::TimedOut, "[::1]:80: timed out"), Duration::from_secs(1)),
            "[::1]:80: timed out after 1s"
        );
        assert_eq!(
            timeout_reason(
                &t(Kind::TimedOut, "timed out at http://h:81/slow (1 redirect)"),
                Duration::from_secs(1)
            ),
            "timed out after 1s at http://h:81/slow (1 redirect)"
        );
        assert_eq!(
            timeout_reason(&"status 500".into(), Duration::from_secs(3)),
            "status 500"
        );
        // What the server said is never rewritten, whatever it says.
        for m in [
            "redis said: ERR timed out",
            "status 200, body does not contain \"timed out\"",
        ] {
            assert_eq!(timeout_reason(&t(Kind::Other, m), Duration::from_secs(3)), m);
        }
    }
}
