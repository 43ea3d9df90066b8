//! ready: wait until every `--when` target answers, then announce readiness
//! (marker file, stdout line, sd_notify, s6 notification fd). With a command,
//! a watcher process does the waiting while the command runs as the original
//! process, keeping its pid, its signals and its exit status.
#![forbid(unsafe_code)]

pub mod marker;
pub mod report;
pub mod systemd;
pub mod watchdog;

mod config;
pub use config::{parse, Config};

use dockhand::cli;
use dockhand::sys::notify;
use dockhand::sys::process::{self, Forked, ProcessWatch};
use dockhand::wait::{self, Event, Stop, WaitOptions};
use dockhand::{duration, out, Error};
use std::time::{Duration, Instant, SystemTime};
use systemd::Notifier;

const TOOL: &str = "ready";

/// How long the sd_notify barrier may take before we give up on it.
const BARRIER_WAIT: Duration = Duration::from_secs(5);

/// Run ready with its arguments (program name removed); returns the exit status.
pub fn run(args: Vec<String>) -> Result<i32, Error> {
    let start = Start {
        at: SystemTime::now(),
        clock: Instant::now(),
    };
    let cfg = parse(&args, &cli::ProcessEnv, cli::var("NOTIFY_SOCKET")?.as_deref())?;
    for n in &cfg.notes {
        out::warn(TOOL, n);
    }
    // Before anything else runs: a marker from an earlier run (a persisted
    // volume, a restarted container) must never claim readiness.
    if let Some(f) = &cfg.file {
        marker::remove(f)
            .map_err(|e| Error::failed(format!("cannot remove the old marker {}: {e}", f.display())))?;
    }
    if cfg.command.is_empty() {
        standalone(&cfg, &start)
    } else {
        Err(with_command(cfg, start))
    }
}

/// When ready started, by the wall clock (for reports) and the monotonic one.
struct Start {
    at: SystemTime,
    clock: Instant,
}

/// `wait::wait_all`, telling the notify socket (when there is one) which
/// targets are still down, with EXTEND_TIMEOUT_USEC so a slow start does
/// not hit the manager's start timeout.
fn wait_telling(
    cfg: &Config,
    opts: &WaitOptions,
    cancel: Option<&dyn Fn() -> bool>,
    n: Option<&Notifier>,
) -> Result<(), Stop> {
    let pace = systemd::pace(cfg.wait.interval);
    let opts = WaitOptions {
        progress_every: n.map(|_| pace),
        ..opts.clone()
    };
    wait::wait_all(&cfg.targets, &opts, cancel, &mut |e| {
        if let (Some(n), Event::StillDown { down, .. }) = (n, e) {
            let down: Vec<(String, String)> =
                down.iter().map(|(t, w)| (t.to_string(), w.to_string())).collect();
            n.tell(
                TOOL,
                &format!("{}\n{}", systemd::waiting(&down), systemd::extend(pace)),
            );
        }
    })
}

/// No command: wait, announce, exit.
fn standalone(cfg: &Config, start: &Start) -> Result<i32, Error> {
    // The messages come from this process, which is not the service: only
    // NotifyAccess=all takes them (as it always has for READY=1 here).
    let n = cfg.notify.map(|a| Notifier::new(TOOL, a, process::getpid()));
    match wait_telling(cfg, &cfg.wait, None, n.as_ref()) {
        // The marker names the process that ran us: in `ready ... && exec app`
        // that is the shell about to become the app.
        Ok(()) => Ok(
            if announce(cfg, process::getppid(), n.as_ref(), start.clock.elapsed(), false) {
                0
            } else {
                1
            },
        ),
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
fn with_command(cfg: Config, start: Start) -> Error {
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
                Ok(Forked::Child) => std::process::exit(watcher(&cfg, &service, middle, &start)),
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
fn watcher(cfg: &Config, service: &ProcessWatch, middle: i32, start: &Start) -> i32 {
    // The intermediate process exits right after forking us; wait (bounded)
    // until we have been handed to our reaper, to learn who that is.
    for _ in 0..5000 {
        if process::getppid() != middle {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let service_reaps_us = process::getppid() == service.pid();
    let n = cfg.notify.map(|a| Notifier::new(TOOL, a, service.pid()));
    let opts = WaitOptions {
        // Signals are the service's business; ours keep their default action.
        handle_signals: false,
        ..cfg.wait.clone()
    };
    let ended = || service.ended();
    let code = match wait_telling(cfg, &opts, Some(&ended), n.as_ref()) {
        Ok(()) if service.ended() => 0,
        Ok(()) => {
            let took = start.clock.elapsed();
            let ok = announce(cfg, service.pid(), n.as_ref(), took, true);
            let reporter = cfg
                .report
                .clone()
                .and_then(|r| spawn_report(r, cfg, service.pid(), start, took));
            if let (Some(every), Some(n)) = (cfg.watchdog, &n) {
                watchdog::run(
                    TOOL,
                    n,
                    service,
                    &cfg.targets,
                    every,
                    cfg.wait.attempt_timeout,
                    &cfg.wait.check,
                );
            }
            // The report may still be on its way; the watcher waits for it,
            // but never past the service's end.
            if let Some(h) = reporter {
                while !h.is_finished() {
                    if service.wait_ended_for(Duration::from_millis(100)) {
                        break;
                    }
                }
            }
            if ok {
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
            if let Some(n) = &n {
                n.tell(TOOL, &systemd::status(&not_ready(cfg, &down)));
            }
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

/// Send the startup report on a thread of its own (so a watchdog is not
/// held up by it); its outcome is one line on stderr.
fn spawn_report(
    r: report::Settings,
    cfg: &Config,
    pid: i32,
    start: &Start,
    took: Duration,
) -> Option<std::thread::JoinHandle<()>> {
    let facts = report::Facts {
        pid,
        started: start.at,
        took,
        targets: cfg.targets.iter().map(|t| t.to_string()).collect(),
    };
    let attempt = cfg.wait.attempt_timeout;
    let spawned = std::thread::Builder::new().stack_size(256 * 1024).spawn(move || {
        let env = |name: &str| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned());
        let body = report::document(&r, &facts, &report::host_name(), &env);
        out::warn(TOOL, &report::send(&r.url, &body, attempt));
    });
    match spawned {
        Ok(h) => Some(h),
        Err(e) => {
            out::warn(
                TOOL,
                &format!("startup report not sent: cannot start its thread: {e}"),
            );
            None
        }
    }
}

/// Announce through every configured channel; false when one failed (each
/// failure is reported on stderr, and the other channels are still tried).
/// `pid` is the service's; `mainpid`: whether sd_notify says MAINPID=pid.
fn announce(cfg: &Config, pid: i32, n: Option<&Notifier>, took: Duration, mainpid: bool) -> bool {
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
    if let Some(n) = n {
        let mut more = systemd::status(&format!(
            "ready after {}: {} answered",
            duration::human(took),
            cfg.targets
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if mainpid {
            more.push_str(&format!("\nMAINPID={pid}"));
        }
        match n.ready(TOOL, &more, BARRIER_WAIT) {
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
    use super::*;

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
