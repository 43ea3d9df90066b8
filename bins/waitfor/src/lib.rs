//! waitfor: wait until every target (TCP, HTTP, unix socket, file,
//! PostgreSQL, Redis) is up, in parallel, then exec the command, which keeps
//! waitfor's PID. Replaces wait-for-it.sh, dockerize -wait,
//! docker-compose-wait and pg_isready loops in entrypoints.
#![forbid(unsafe_code)]

use argh::FromArgs;
use dockhand::check::http;
use dockhand::check::tls;
use dockhand::cli::{self, Env, Flag, ProcessEnv, Tail};
use dockhand::duration::{self, human};
use dockhand::out;
use dockhand::target::Target;
use dockhand::wait::{self, Event, Stop, WaitOptions};
use dockhand::Error;
use std::path::PathBuf;
use std::time::Duration;

const TOOL: &str = "waitfor";

/// The most a refused connection (or a missing socket or file) waits for its retry.
pub const REFUSED_RETRY: Duration = Duration::from_millis(50);

#[derive(FromArgs, Debug)]
/// Wait for every TARGET (in parallel), then run COMMAND in waitfor's place, same PID:
/// waitfor [OPTIONS] TARGET... [-- COMMAND [ARGS...]]
#[argh(
    note = "Targets: host:port, tcp://host:port, http://host[:port]/path, https://host[:port]/path, unix:///path.sock, \
file:///path, postgres://[user@]host[:port][/db], redis://[[user]:password@]host[:port][/db] (user, password and db \
percent-decoded), mysql://host[:port], amqp://host[:port], nats://host[:port], mongodb://host[:port], kafka://host[:port], dns://name, grpc://host:port[/service], grpcs://host:port[/service] (SERVING); IPv6 as [::1]:5432.",
    error_code(0, "every target is up (and there is no COMMAND)"),
    error_code(2, "bad usage: flag, variable or target"),
    error_code(124, "timed out; COMMAND was not run"),
    error_code(126, "COMMAND cannot be executed"),
    error_code(127, "COMMAND not found"),
    error_code(143, "SIGTERM while waiting (128+N for signal N); COMMAND was not run")
)]
struct Args {
    /// overall limit (default 60s; 0 waits forever), e.g. 90s, 2m
    #[argh(option, from_str_fn(positive_or_zero))]
    timeout: Option<Duration>,

    /// longest delay between attempts at one target (default 1s); retries start at 25ms (a refused connection is retried every 50ms)
    #[argh(option, from_str_fn(positive))]
    interval: Option<Duration>,

    /// limit on one attempt (default 2s)
    #[argh(option, from_str_fn(positive))]
    attempt_timeout: Option<Duration>,

    /// HTTP statuses that count as up, e.g. 200 or 200-299 or 200,204 (default 200-399; repeatable)
    #[argh(option, from_str_fn(status_arg))]
    status: Vec<Vec<(u16, u16)>>,

    /// the HTTP body (first 64 KiB) must contain this text
    #[argh(option)]
    body_contains: Option<String>,

    /// extra HTTP request header "Name: value" (repeatable), as healthcheck's
    #[argh(option, from_str_fn(header_arg))]
    header: Vec<String>,

    /// send the HTTP requests over this unix socket
    #[argh(option)]
    unix_socket: Option<std::path::PathBuf>,

    /// judge the first HTTP response, without following a redirect
    #[argh(switch)]
    no_follow: bool,

    /// a target is up after this many successful attempts in a row, --interval apart (default 1)
    #[argh(option, from_str_fn(successes_arg))]
    successes: Option<u32>,
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

    /// print nothing while waiting (errors are still printed)
    #[argh(switch, short = 'q')]
    quiet: bool,

    /// what to wait for
    #[argh(positional)]
    targets: Vec<String>,
}

const FLAGS: &[Flag] = &[
    Flag::value("timeout", Some(|v| positive_or_zero(v).map(|_| ()))),
    Flag::value("interval", Some(|v| positive(v).map(|_| ()))),
    Flag::value("attempt-timeout", Some(|v| positive(v).map(|_| ()))),
    http::flags::STATUS_MULTI,
    http::flags::BODY_CONTAINS,
    http::flags::HEADER,
    http::flags::UNIX_SOCKET,
    http::flags::NO_FOLLOW,
    wait::SUCCESSES,
    tls::FLAGS[0],
    tls::FLAGS[1],
    tls::FLAGS[2],
    tls::FLAGS[3],
    Flag::switch("quiet"),
];

const EXTRA_ENV: &[(&str, &str)] = &[
    (
        "WAITFOR_TARGETS",
        "TARGET... when none is given (comma or space separated)",
    ),
    (
        "WAIT_HOSTS",
        "docker-compose-wait: host:port,... when no target is given otherwise",
    ),
    (
        "WAIT_PATHS",
        "docker-compose-wait: /path,... (files that must exist), likewise",
    ),
    (
        "WAIT_TIMEOUT",
        "docker-compose-wait: --timeout in seconds, used with WAIT_HOSTS/WAIT_PATHS",
    ),
];

fn positive_or_zero(v: &str) -> Result<Duration, String> {
    duration::parse(v)
}

fn positive(v: &str) -> Result<Duration, String> {
    let d = duration::parse(v)?;
    if d < Duration::from_millis(1) {
        return Err(format!("{v:?} is too short (at least 1ms)"));
    }
    Ok(d)
}

/// `200`, `200-299`, or a comma-separated list of those (healthcheck's parser).
pub fn status_arg(v: &str) -> Result<Vec<(u16, u16)>, String> {
    http::flags::status_arg(v)
}

fn header_arg(v: &str) -> Result<String, String> {
    http::flags::header_arg(v)
}

fn successes_arg(v: &str) -> Result<u32, String> {
    wait::successes_arg(v)
}

/// Everything waitfor needs, validated.
#[derive(Debug)]
pub struct Config {
    pub targets: Vec<Target>,
    pub wait: WaitOptions,
    pub quiet: bool,
    /// Empty: exit 0 when everything is up.
    pub command: Vec<String>,
}

/// Parse the command line and the environment into a `Config`.
pub fn config(args: &[String], env: &dyn Env) -> Result<Config, Error> {
    let (a, sp) = cli::parse_all::<Args>(TOOL, args, FLAGS, Tail::AfterDoubleDash, env, EXTRA_ENV)?;
    let mut timeout = a.timeout;
    // Where the targets come from, for messages: a bad one names its source.
    let (words, source): (Vec<String>, &str) = if !a.targets.is_empty() {
        (a.targets, "")
    } else if let Some(v) = env.get("WAITFOR_TARGETS")?.filter(|v| !v.trim().is_empty()) {
        (cli::env_list(&v), "WAITFOR_TARGETS: ")
    } else {
        let hosts = env.get("WAIT_HOSTS")?.unwrap_or_default();
        let paths = env.get("WAIT_PATHS")?.unwrap_or_default();
        let mut w = cli::env_list(&hosts);
        for p in cli::env_list(&paths) {
            w.push(if p.starts_with('/') {
                format!("file://{p}")
            } else {
                p
            });
        }
        if !w.is_empty() && timeout.is_none() {
            if let Some(t) = env.get("WAIT_TIMEOUT")?.filter(|t| !t.trim().is_empty()) {
                timeout =
                    Some(duration::parse(&t).map_err(|e| Error::usage(format!("WAIT_TIMEOUT={t:?}: {e}")))?);
            }
        }
        (w, "WAIT_HOSTS/WAIT_PATHS: ")
    };
    if words.is_empty() {
        return Err(Error::usage(
            "no target given (waitfor [OPTIONS] TARGET... [-- COMMAND]; or set WAITFOR_TARGETS or WAIT_HOSTS)",
        ));
    }
    let targets = words
        .iter()
        .map(|w| Target::parse(w).map_err(|e| Error::usage(format!("{source}{e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut wait = WaitOptions {
        timeout: timeout.unwrap_or(Duration::from_secs(60)),
        interval: a.interval.unwrap_or(Duration::from_secs(1)),
        attempt_timeout: a.attempt_timeout.unwrap_or(Duration::from_secs(2)),
        progress_every: (!a.quiet).then_some(Duration::from_secs(5)),
        handle_signals: true,
        // A refused connection or a missing socket/file costs the target
        // nothing to retry: poll those at this pace so a port that starts
        // listening is seen within ~50 ms (at ~0.3% of a core), while lookups,
        // timeouts and "not ready" answers back off to --interval.
        refused_retry: Some(REFUSED_RETRY),
        successes: a.successes.unwrap_or(1),
        ..WaitOptions::default()
    };
    wait.check.http = http::flags::options(
        http::flags::Given {
            status: a.status.into_iter().flatten().collect(),
            body_contains: a.body_contains,
            headers: a.header,
            unix_socket: a.unix_socket,
            no_follow: a.no_follow,
            cacert: a.cacert,
            insecure: a.insecure,
            cert: a.cert,
            key: a.key,
        },
        &targets,
    )?;
    Ok(Config {
        targets,
        wait,
        quiet: a.quiet,
        command: sp.command,
    })
}

/// Run waitfor with its arguments (program name removed); returns the exit status.
pub fn run(args: Vec<String>) -> Result<i32, Error> {
    let cfg = config(&args, &ProcessEnv)?;
    wait_for(&cfg)?;
    if cfg.command.is_empty() {
        return Ok(0);
    }
    Err(dockhand::exec::exec(&cfg.command))
}

/// Wait for every target of `cfg`, printing progress unless quiet.
pub fn wait_for(cfg: &Config) -> Result<(), Error> {
    let quiet = cfg.quiet;
    let mut report = |e: Event<'_>| {
        if quiet {
            return;
        }
        match e {
            Event::Up {
                target,
                after,
                detail,
            } => out::warn(TOOL, &format!("{target} is up after {} ({detail})", human(after))),
            Event::StillDown { elapsed, down } => {
                for (t, why) in down {
                    out::warn(
                        TOOL,
                        &format!("still waiting for {t} after {}: {why}", human(elapsed)),
                    );
                }
            }
        }
    };
    match wait::wait_all(&cfg.targets, &cfg.wait, None, &mut report) {
        Ok(()) => Ok(()),
        Err(Stop::Timeout(down)) => {
            for (t, why) in &down {
                out::warn(TOOL, &format!("{t} is still down: {why}"));
            }
            Err(Error::timeout(format!(
                "timed out after {} waiting for {} of {} target(s); not running the command",
                human(cfg.wait.timeout),
                down.len(),
                cfg.targets.len()
            )))
        }
        Err(Stop::Signal(n)) => Err(Error::Signal(
            n,
            format!(
                "got SIG{} while waiting; not running the command",
                dockhand::sys::signal::name(n)
            ),
        )),
        Err(Stop::Setup(e)) => Err(Error::failed(e)),
        // No cancel hook is given, so the wait is never cancelled.
        Err(Stop::Cancelled) => Err(Error::failed("the wait was cancelled")),
    }
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

    const NOENV: [(&str, &str); 0] = [];

    #[test]
    fn targets_flags_and_command() {
        let c = config(
            &s(&[
                "--timeout=5s",
                "db:5432",
                "redis://r",
                "--quiet",
                "--",
                "app",
                "--timeout",
                "1",
            ]),
            &NOENV,
        )
        .unwrap();
        assert_eq!(c.targets.len(), 2);
        assert_eq!(c.wait.timeout, Duration::from_secs(5));
        assert_eq!(c.wait.interval, Duration::from_secs(1));
        assert_eq!(c.wait.attempt_timeout, Duration::from_secs(2));
        assert!(c.quiet && c.wait.progress_every.is_none());
        assert_eq!(c.command, s(&["app", "--timeout", "1"]));
    }

    #[test]
    fn defaults() {
        let c = config(&s(&["db:1"]), &NOENV).unwrap();
        assert_eq!(c.wait.timeout, Duration::from_secs(60));
        assert!(c.command.is_empty() && !c.quiet);
        assert!(c.wait.progress_every.is_some());
    }

    #[test]
    fn environment_fallbacks() {
        let env = [
            ("WAITFOR_TARGETS", "a:1, http://b:2 file:///x"),
            ("WAITFOR_TIMEOUT", "0"),
            ("WAITFOR_INTERVAL", "250ms"),
            ("WAITFOR_ATTEMPT_TIMEOUT", "3s"),
            ("WAITFOR_QUIET", "yes"),
            ("WAITFOR_STATUS", "200-204,301"),
            ("WAIT_HOSTS", "ignored:1"),
        ];
        let c = config(&[], &env).unwrap();
        assert_eq!(c.targets.len(), 3);
        assert_eq!(c.wait.timeout, Duration::ZERO);
        assert_eq!(c.wait.interval, Duration::from_millis(250));
        assert_eq!(c.wait.attempt_timeout, Duration::from_secs(3));
        assert!(c.quiet);
        assert_eq!(c.wait.check.http.status, vec![(200, 204), (301, 301)]);
        // Command line targets win over WAITFOR_TARGETS.
        let c = config(&s(&["http://c:3"]), &env).unwrap();
        assert_eq!(c.targets, vec![Target::parse("http://c:3").unwrap()]);
        // The HTTP flags and --successes, from the environment as from the command line.
        let env = [
            ("WAITFOR_HEADER", "Authorization: Bearer a b"),
            ("WAITFOR_BODY_CONTAINS", "ok"),
            ("WAITFOR_UNIX_SOCKET", "/run/app.sock"),
            ("WAITFOR_NO_FOLLOW", "1"),
            ("WAITFOR_SUCCESSES", "3"),
        ];
        let c = config(&s(&["http://c/"]), &env).unwrap();
        let h = &c.wait.check.http;
        assert_eq!(h.headers, s(&["Authorization: Bearer a b"]));
        assert_eq!(h.body_contains.as_deref(), Some("ok"));
        assert_eq!(
            h.unix_socket.as_deref(),
            Some(std::path::Path::new("/run/app.sock"))
        );
        assert!(h.no_follow);
        assert_eq!(c.wait.successes, 3);
        assert_eq!(config(&s(&["c:1"]), &NOENV).unwrap().wait.successes, 1);
        let e = config(&s(&["c:1"]), &env).unwrap_err();
        assert!(
            e.code() == 2
                && e.to_string()
                    .contains("applies to http:// and https:// targets only"),
            "{e}"
        );
        let e = config(&s(&["c:1"]), &[("WAITFOR_SUCCESSES", "0")]).unwrap_err();
        assert!(
            e.code() == 2 && e.to_string().contains("WAITFOR_SUCCESSES"),
            "{e}"
        );
    }

    #[test]
    fn compose_wait_fallback_only_without_other_targets() {
        let env = [
            ("WAIT_HOSTS", "db:5432,cache:6379"),
            ("WAIT_PATHS", "/tmp/x"),
            ("WAIT_TIMEOUT", "7"),
        ];
        let c = config(&[], &env).unwrap();
        assert_eq!(c.targets.len(), 3);
        assert_eq!(c.targets[2], Target::parse("file:///tmp/x").unwrap());
        assert_eq!(c.wait.timeout, Duration::from_secs(7));
        // --timeout wins over WAIT_TIMEOUT; WAIT_TIMEOUT is ignored with explicit targets.
        assert_eq!(
            config(&s(&["--timeout", "3s"]), &env).unwrap().wait.timeout,
            Duration::from_secs(3)
        );
        let c = config(&s(&["x:1"]), &env).unwrap();
        assert_eq!((c.targets.len(), c.wait.timeout), (1, Duration::from_secs(60)));
        let e = config(&[], &[("WAIT_HOSTS", "db:1"), ("WAIT_TIMEOUT", "soon")]).unwrap_err();
        assert!(e.code() == 2 && e.to_string().contains("WAIT_TIMEOUT"), "{e}");
    }

    #[test]
    fn usage_errors_name_the_target() {
        for (args, want) in [
            (&["ftp://x:1"][..], "\"ftp://x:1\""),
            (&["db:70000"], "\"db:70000\""),
            (&[":5432"], "missing host"),
            (&["db:1", "--", "x"], ""),
            (&["--", "app"], "no target"),
            (&[], "no target"),
            (&["--interval", "0", "a:1"], "--interval"),
            (&["--status", "99", "a:1"], "--status"),
            (&["--status", "300-200", "a:1"], "--status"),
        ] {
            match config(&s(args), &NOENV) {
                Ok(_) if want.is_empty() => {}
                Ok(c) => panic!("{args:?} accepted: {c:?}"),
                Err(e) => {
                    assert_eq!(e.code(), 2, "{args:?}: {e}");
                    assert!(e.to_string().contains(want), "{args:?}: {e}");
                }
            }
        }
        let e = config(&[], &[("WAIT_HOSTS", "db:99999")]).unwrap_err();
        assert!(
            e.to_string().contains("WAIT_HOSTS") && e.to_string().contains("db:99999"),
            "{e}"
        );
    }

    #[test]
    fn status_forms() {
        assert_eq!(status_arg("200"), Ok(vec![(200, 200)]));
        assert_eq!(status_arg("200-299,404"), Ok(vec![(200, 299), (404, 404)]));
        assert!(status_arg("").is_err());
        assert!(status_arg("2xx").is_err());
    }
}
