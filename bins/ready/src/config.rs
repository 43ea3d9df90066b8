//! ready's command line: the flags (`Args`, `FLAGS`), their environment
//! variables, and `parse`, which validates them into a `Config` before
//! anything is done.

use crate::{report, watchdog, TOOL};
use argh::FromArgs;
use dockhand::check::http;
use dockhand::check::tls;
use dockhand::cli::{self, Flag, Tail};
use dockhand::sys::notify;
use dockhand::sys::process;
use dockhand::target::{HttpUrl, Target};
use dockhand::wait::{self, WaitOptions};
use dockhand::{duration, Error};
use nix::sys::socket::UnixAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(FromArgs, Debug)]
/// Wait until every --when target answers, then announce readiness through
/// each channel given. With `-- COMMAND`, the command runs as this process
/// (same pid, signals, exit status) while a watcher process waits and announces.
#[argh(example = "ready --when http://127.0.0.1:8000/health --file /run/app.ready -- python -m app")]
struct Args {
    /// a target that must answer, repeatable: host:port, tcp://, http://, https://,
    /// unix://, file://, postgres://, redis://, mysql://, amqp://, nats://,
    /// mongodb://, kafka://, dns://, grpc://, grpcs://
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
    /// with a command and WATCHDOG_USEC: keep checking once ready and send
    /// WATCHDOG=1 every half of it while every target answers
    #[argh(switch)]
    watchdog: bool,
    /// with a command: once ready, POST a JSON startup report to this
    /// http:// URL (bounded, retried; never delays or fails the service)
    #[argh(option, from_str_fn(report_url))]
    report: Option<HttpUrl>,
    /// the service name in the report (default: the command's base name)
    #[argh(option)]
    report_name: Option<String>,
    /// an environment variable to report as build identity, repeatable
    /// (default: GIT_SHA, IMAGE_TAG, BUILD_DATE)
    #[argh(option, from_str_fn(report_env))]
    report_env: Vec<String>,
    /// a file (an SBOM) whose sha256 goes in the report
    #[argh(option)]
    report_sbom: Option<PathBuf>,
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
    unix_socket: Option<PathBuf>,
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
}

fn report_url(s: &str) -> Result<HttpUrl, String> {
    match Target::arg(s)? {
        Target::Http(u) if s.trim_start().starts_with("http://") => Ok(u),
        _ => Err(format!("{s:?}: the report goes to an http:// URL")),
    }
}

fn report_url_check(s: &str) -> Result<(), String> {
    report_url(s).map(|_| ())
}

fn report_env(s: &str) -> Result<String, String> {
    report::env_name(s).map(|()| s.to_string())
}

fn report_name_check(s: &str) -> Result<(), String> {
    if s.is_empty() || s.chars().any(char::is_control) {
        Err("the --report-name must be one non-empty line".into())
    } else {
        Ok(())
    }
}

fn status_arg(v: &str) -> Result<Vec<(u16, u16)>, String> {
    http::flags::status_arg(v)
}

fn header_arg(v: &str) -> Result<String, String> {
    http::flags::header_arg(v)
}

fn successes_arg(v: &str) -> Result<u32, String> {
    wait::successes_arg(v)
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
    Flag::switch("watchdog"),
    Flag::value("report", Some(report_url_check)),
    Flag::value("report-name", Some(report_name_check)),
    Flag::multi("report-env", Some(report::env_name)),
    Flag::value("report-sbom", None),
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
    /// `--watchdog` in force: WATCHDOG_USEC.
    pub watchdog: Option<Duration>,
    /// `--report`.
    pub report: Option<report::Settings>,
    /// Lines to print at start (a `--watchdog` that cannot act, and why).
    pub notes: Vec<String>,
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
        &[
            (
                "NOTIFY_SOCKET",
                "sd_notify socket (/path or @abstract); STATUS=, READY=1 ... are sent there",
            ),
            (
                "WATCHDOG_USEC",
                "the manager's watchdog interval (for --watchdog)",
            ),
            (
                "WATCHDOG_PID",
                "when set, --watchdog acts only if it is this process",
            ),
        ],
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
    let mut notes = Vec::new();
    let mut watchdog = None;
    if a.watchdog {
        if split.command.is_empty() {
            return Err(Error::usage("--watchdog needs a command to watch (-- COMMAND)"));
        }
        match (&notify, watchdog::from_env(env, process::getpid())?) {
            (None, _) => notes.push("--watchdog: NOTIFY_SOCKET is not set; no watchdog".to_string()),
            (Some(_), Err(why)) => notes.push(format!("--watchdog: {why}; no watchdog")),
            (Some(_), Ok(every)) => watchdog = Some(every),
        }
    }
    if let Some(n) = &a.report_name {
        report_name_check(n).map_err(Error::usage)?;
    }
    let report = match a.report {
        None if a.report_name.is_some() || !a.report_env.is_empty() || a.report_sbom.is_some() => {
            return Err(Error::usage(
                "--report-name, --report-env and --report-sbom go with --report URL",
            ))
        }
        None => None,
        Some(url) => {
            let Some(cmd) = split.command.first() else {
                return Err(Error::usage(
                    "--report needs a command (-- COMMAND): the watcher sends it",
                ));
            };
            let base = cmd.rsplit('/').next().unwrap_or(cmd);
            Some(report::Settings {
                url,
                name: a.report_name.unwrap_or_else(|| base.to_string()),
                env: if a.report_env.is_empty() {
                    report::DEFAULT_ENV.iter().map(|s| s.to_string()).collect()
                } else {
                    a.report_env
                },
                sbom: a.report_sbom,
            })
        }
    };
    let mut wait = WaitOptions {
        timeout: a.timeout.unwrap_or(Duration::ZERO),
        interval: a.interval.unwrap_or(Duration::from_secs(1)),
        attempt_timeout: a.attempt_timeout.unwrap_or(Duration::from_secs(2)),
        progress_every: None,
        handle_signals: true,
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
        &a.when,
    )?;
    Ok(Config {
        targets: a.when,
        file: a.file,
        print: a.print,
        fd: a.fd,
        notify,
        wait,
        command: split.command,
        watchdog,
        report,
        notes,
    })
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
    fn watchdog_and_report_settings() {
        let me = process::getpid().to_string();
        let env = [("WATCHDOG_USEC", "2000000"), ("WATCHDOG_PID", me.as_str())];
        let args = s(&["--when", "db:1", "--watchdog", "--", "/usr/bin/app", "x"]);
        let c = parse(&args, &env, Some("@sock")).unwrap();
        assert_eq!(c.watchdog, Some(Duration::from_secs(2)));
        assert!(c.notes.is_empty() && c.report.is_none());
        // Another process's watchdog, or no notify socket: a note, no watchdog.
        let c = parse(
            &args,
            &[("WATCHDOG_USEC", "2000000"), ("WATCHDOG_PID", "1")],
            Some("@sock"),
        )
        .unwrap();
        assert_eq!(c.watchdog, None);
        assert!(c.notes[0].contains("WATCHDOG_PID=1"), "{:?}", c.notes);
        let c = parse(&args, &env, None).unwrap();
        assert_eq!(c.watchdog, None);
        assert!(c.notes[0].contains("NOTIFY_SOCKET"), "{:?}", c.notes);
        let err = parse(&args, &[("WATCHDOG_USEC", "soon")], Some("@sock")).unwrap_err();
        assert!(
            err.to_string().contains("WATCHDOG_USEC") && err.code() == 2,
            "{err}"
        );

        let args = s(&[
            "--when",
            "db:1",
            "--report",
            "http://obs:8080/in",
            "--",
            "/usr/bin/app",
        ]);
        let r = parse(&args, &[("READY_REPORT_SBOM", "/sbom.json")], None)
            .unwrap()
            .report
            .unwrap();
        assert_eq!(
            (r.url.host.as_str(), r.url.port, r.url.path.as_str()),
            ("obs", 8080, "/in")
        );
        assert_eq!(r.name, "app");
        assert_eq!(r.env, report::DEFAULT_ENV);
        assert_eq!(r.sbom, Some(PathBuf::from("/sbom.json")));
        let env = [
            ("READY_REPORT_ENV", "VERSION, COMMIT"),
            ("READY_REPORT_NAME", "api"),
        ];
        let r = parse(&args, &env, None).unwrap().report.unwrap();
        assert_eq!(
            (r.name.as_str(), r.env.clone()),
            ("api", s(&["VERSION", "COMMIT"]))
        );
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
            (&["--when", "db:1", "--watchdog"], "--watchdog needs a command"),
            (
                &["--when", "db:1", "--report", "http://x/"],
                "--report needs a command",
            ),
            (&["--when", "db:1", "--report", "tcp://x:1", "--", "a"], "http://"),
            (
                &["--when", "db:1", "--report-env", "A-B"],
                "environment variable name",
            ),
            (&["--when", "db:1", "--report-name", ""], "--report-name"),
            (
                &["--when", "db:1", "--report-sbom", "/s", "--", "a"],
                "go with --report",
            ),
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
    fn http_options_and_successes() {
        let env = [
            ("READY_STATUS", "200,503"),
            ("READY_HEADER", "Authorization: Bearer a b"),
            ("READY_SUCCESSES", "2"),
        ];
        let c = parse(&s(&["--when", "http://h/", "--body-contains", "ok"]), &env, None).unwrap();
        let h = &c.wait.check.http;
        assert_eq!(h.status, vec![(200, 200), (503, 503)]);
        assert_eq!(h.headers, s(&["Authorization: Bearer a b"]));
        assert_eq!(h.body_contains.as_deref(), Some("ok"));
        assert_eq!(c.wait.successes, 2);
        let c = parse(&s(&["--when", "h:1"]), &[("X", "")], None).unwrap();
        assert_eq!(c.wait.successes, 1);
        for (args, want) in [
            (
                &["--when", "h:1", "--status", "200"][..],
                "--status applies to http:// and https:// targets only",
            ),
            (&["--when", "http://h/", "--successes", "0"][..], "--successes"),
            (&["--when", "http://h/", "--unix-socket", "rel"][..], "absolute"),
        ] {
            let e = parse(&s(args), &[("X", "")], None).unwrap_err();
            assert!(e.code() == 2 && e.to_string().contains(want), "{args:?}: {e}");
        }
    }
}
