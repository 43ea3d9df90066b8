//! `--watchdog`: after readiness, keep checking the targets and send
//! `WATCHDOG=1` every half of `WATCHDOG_USEC` while they all pass, so a
//! manager (systemd's `WatchdogSec=`, `podman --sdnotify`) restarts a
//! service that stopped answering. Runs in the watcher until the service
//! ends.

use crate::systemd::{self, Notifier};
use dockhand::check::{self, Options};
use dockhand::sys::process::ProcessWatch;
use dockhand::target::Target;
use dockhand::{cli, out, Error};
use std::time::{Duration, Instant};

/// The watchdog interval from `WATCHDOG_USEC` (and `WATCHDOG_PID`, which,
/// when set, must name `service`, as sd_watchdog_enabled(3) has it).
/// `Ok(Err(why))`: no watchdog, for the reason given; a value that is not
/// a number is a usage error.
pub fn from_env(env: &dyn cli::Env, service: i32) -> Result<Result<Duration, String>, Error> {
    let Some(usec) = env.get("WATCHDOG_USEC")?.filter(|v| !v.is_empty()) else {
        return Ok(Err("WATCHDOG_USEC is not set".into()));
    };
    let usec = match usec.trim().parse::<u64>() {
        Ok(n) if n > 0 => n,
        _ => {
            return Err(Error::usage(format!(
                "WATCHDOG_USEC={usec:?} is not a positive number of microseconds"
            )))
        }
    };
    if let Some(pid) = env.get("WATCHDOG_PID")?.filter(|v| !v.is_empty()) {
        match pid.trim().parse::<i32>() {
            Ok(p) if p == service => {}
            Ok(p) if p > 0 => {
                return Ok(Err(format!(
                    "WATCHDOG_PID={p} is another process, not this service (PID {service})"
                )))
            }
            _ => return Err(Error::usage(format!("WATCHDOG_PID={pid:?} is not a process id"))),
        }
    }
    Ok(Ok(Duration::from_micros(usec)))
}

/// Check every target, each within `deadline`; the first that fails, with why.
fn first_down(targets: &[Target], deadline: Instant, opts: &Options) -> Option<(String, String)> {
    targets
        .iter()
        .find_map(|t| match check::check(t, deadline, opts) {
            Ok(_) => None,
            Err(e) => Some((t.to_string(), e.message)),
        })
}

/// Until the service ends: every `usec / 2`, check the targets; all up:
/// `WATCHDOG=1`; one down: nothing, so the manager's timer runs out. A change
/// between the two is one line on stderr and a `STATUS=`.
pub fn run(
    tool: &str,
    n: &Notifier,
    service: &ProcessWatch,
    targets: &[Target],
    every: Duration,
    attempt_timeout: Duration,
    opts: &Options,
) {
    let half = (every / 2).max(Duration::from_millis(1));
    let mut failing = false;
    loop {
        let round = Instant::now();
        if service.ended() {
            return;
        }
        match first_down(targets, round + attempt_timeout.min(half), opts) {
            None => {
                n.tell(tool, "WATCHDOG=1");
                if std::mem::replace(&mut failing, false) {
                    out::warn(tool, "watchdog: every target answers again; WATCHDOG=1 resumed");
                    n.tell(tool, &systemd::status("ready (watchdog checks pass again)"));
                }
            }
            Some((t, why)) => {
                if !std::mem::replace(&mut failing, true) {
                    let what = format!("watchdog: {t} is down ({why}); WATCHDOG=1 withheld");
                    out::warn(tool, &out::escape(what.as_bytes()));
                    n.tell(tool, &systemd::status(&what));
                }
            }
        }
        let next = round + half;
        if service.wait_ended_for(next.saturating_duration_since(Instant::now())) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment() {
        let e = |usec: &str, pid: &str| {
            let env = [("WATCHDOG_USEC", usec), ("WATCHDOG_PID", pid)];
            from_env(&env, 100)
        };
        assert_eq!(e("30000000", "").unwrap(), Ok(Duration::from_secs(30)));
        assert_eq!(e("500", "100").unwrap(), Ok(Duration::from_micros(500)));
        assert!(e("", "").unwrap().unwrap_err().contains("not set"));
        assert!(e("1000", "7").unwrap().unwrap_err().contains("WATCHDOG_PID=7"));
        for (u, p) in [("0", ""), ("x", ""), ("-5", ""), ("1000", "abc"), ("1000", "-1")] {
            let err = e(u, p).unwrap_err();
            assert_eq!(err.code(), 2, "{u} {p}");
        }
    }
}
