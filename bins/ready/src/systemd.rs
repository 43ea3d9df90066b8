//! The sd_notify messages ready sends: `STATUS=` and `EXTEND_TIMEOUT_USEC=`
//! while waiting, `READY=1` with `STATUS=` and `MAINPID=` once ready, and
//! `WATCHDOG=1` after. Each goes out with the service's pid as its
//! credentials where the kernel lets us (see `dockhand::sys::notify`), so a
//! manager that only listens to the main process (systemd's
//! `NotifyAccess=main`) takes them.

use dockhand::out;
use dockhand::sys::{notify, process};
use nix::sys::socket::UnixAddr;
use std::cell::Cell;
use std::io;
use std::time::Duration;

/// Longest reason kept per target in a `STATUS=` line.
const REASON_MAX: usize = 200;
/// Longest `STATUS=` value sent.
const STATUS_MAX: usize = 1024;

/// One sender of sd_notify messages for one service.
pub struct Notifier {
    addr: UnixAddr,
    /// The pid the messages are about (`MAINPID=`), and, when `as_service`
    /// holds, the pid they claim to come from.
    service: i32,
    as_service: Cell<bool>,
    /// A failed send of a message other than READY=1 is said once.
    warned: Cell<bool>,
}

impl Notifier {
    /// A sender for the messages about `service`. When this process is not
    /// the service and may not speak for it, one line says so at once.
    pub fn new(tool: &str, addr: UnixAddr, service: i32) -> Notifier {
        let me = process::getpid();
        let as_service = service != me && notify::may_send_as_another_pid();
        if service != me && !as_service {
            out::warn(tool, &cannot_speak_for(service, me));
        }
        Notifier {
            addr,
            service,
            as_service: Cell::new(as_service),
            warned: Cell::new(false),
        }
    }

    pub fn service(&self) -> i32 {
        self.service
    }

    /// Send `msg` (with a barrier when `barrier` is given) as the service
    /// where we may; refused (EPERM) once, the rest go out as ourselves.
    fn send(&self, tool: &str, msg: &str, barrier: Option<Duration>) -> io::Result<()> {
        let go = |as_pid: Option<i32>| match barrier {
            Some(b) => notify::sd_notify(&self.addr, msg, b, as_pid),
            None => notify::notify_as(&self.addr, msg, as_pid),
        };
        if self.as_service.get() {
            match go(Some(self.service)) {
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    self.as_service.set(false);
                    out::warn(tool, &cannot_speak_for(self.service, process::getpid()));
                }
                r => return r,
            }
        }
        go(None)
    }

    /// A message that may be lost without harm (STATUS=, WATCHDOG=1): a
    /// failure is said once.
    pub fn tell(&self, tool: &str, msg: &str) {
        if let Err(e) = self.send(tool, msg, None) {
            if !self.warned.replace(true) {
                out::warn(tool, &format!("cannot send to NOTIFY_SOCKET: {e}"));
            }
        }
    }

    /// READY=1 (and `more` fields), then the barrier.
    pub fn ready(&self, tool: &str, more: &str, barrier: Duration) -> io::Result<()> {
        self.send(tool, &format!("READY=1\n{more}"), Some(barrier))
    }
}

fn cannot_speak_for(service: i32, me: i32) -> String {
    format!(
        "sd_notify messages go out from the watcher (PID {me}), not as the service (PID {service}): \
         that needs CAP_SYS_ADMIN; a systemd unit needs NotifyAccess=all for them to count"
    )
}

/// The `STATUS=` value while waiting: each target still down with its
/// last error. Control characters are escaped (a newline would start a
/// field of its own), and the line is bounded.
pub fn waiting(down: &[(String, String)]) -> String {
    let parts: Vec<String> = down
        .iter()
        .map(|(t, why)| format!("{}: {}", clip(t, REASON_MAX), clip(why, REASON_MAX)))
        .collect();
    status(&format!("waiting for {}", parts.join("; ")))
}

/// `STATUS=` with `text` made one bounded line.
pub fn status(text: &str) -> String {
    format!("STATUS={}", clip(text, STATUS_MAX))
}

/// `EXTEND_TIMEOUT_USEC=` for messages sent every `every`: twice that, so
/// one late message does not let the start timeout pass.
pub fn extend(every: Duration) -> String {
    format!("EXTEND_TIMEOUT_USEC={}", (every * 2).as_micros())
}

/// `s` escaped (no control character survives) and cut to `max` bytes on a
/// character boundary, with "..." when cut.
fn clip(s: &str, max: usize) -> String {
    let e = out::escape(s.as_bytes());
    if e.len() <= max {
        return e.into_owned();
    }
    let mut end = max;
    while !e.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &e[..end])
}

/// How often the waiting messages go out: the retry interval, kept within
/// 1s..10s so the manager hears often enough and not too often.
pub fn pace(interval: Duration) -> Duration {
    interval.clamp(Duration::from_secs(1), Duration::from_secs(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_stay_one_line_and_bounded() {
        let down = vec![
            ("tcp://db:5432".to_string(), "connection refused".to_string()),
            ("http://x/".to_string(), "status 500\nREADY=1".to_string()),
        ];
        let s = waiting(&down);
        assert_eq!(
            s,
            "STATUS=waiting for tcp://db:5432: connection refused; http://x/: status 500\\u{a}READY=1"
        );
        assert!(!s.contains('\n'));
        let long = vec![("t".to_string(), "é".repeat(1000))];
        let s = waiting(&long);
        assert!(s.len() <= "STATUS=".len() + STATUS_MAX + 3, "{}", s.len());
        assert!(s.ends_with("..."));
    }

    #[test]
    fn extend_is_twice_the_pace() {
        assert_eq!(extend(Duration::from_secs(1)), "EXTEND_TIMEOUT_USEC=2000000");
        assert_eq!(pace(Duration::from_millis(50)), Duration::from_secs(1));
        assert_eq!(pace(Duration::from_secs(60)), Duration::from_secs(10));
        assert_eq!(pace(Duration::from_secs(3)), Duration::from_secs(3));
    }
}
