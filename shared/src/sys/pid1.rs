//! What healthcheck needs to know about a process (PID 1) before signalling
//! it: its name, whether it catches a signal (the kernel drops a signal sent
//! to a namespace's init when init has no handler for it), and its age.
//! The parsers are pure so they can be tested on text.

use std::io;
use std::time::Duration;

/// The `Name:` of a process, from /proc/PID/status text.
pub fn parse_name(status: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Name:"))
        .map(|v| v.trim().to_string())
}

/// Whether the `SigCgt:` mask in /proc/PID/status text has signal `sig` set.
pub fn parse_caught(status: &str, sig: i32) -> Option<bool> {
    if !(1..=64).contains(&sig) {
        return None;
    }
    let hex = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?.trim();
    let mask = u64::from_str_radix(hex, 16).ok()?;
    Some(mask & (1u64 << (sig - 1)) != 0)
}

/// The start time (field 22, in clock ticks since boot) from /proc/PID/stat
/// text. The command name (field 2) may hold spaces and parentheses, so
/// fields are counted from the last ')'.
pub fn parse_start_ticks(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // Field 3 (state) is the first after ')'; field 22 is 19 further on.
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Seconds since boot from /proc/uptime text.
pub fn parse_uptime(text: &str) -> Option<f64> {
    text.split_whitespace()
        .next()?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// The age of a process started `start_ticks` after boot, `uptime` seconds
/// after boot, with `hz` ticks a second.
pub fn age_of(start_ticks: u64, hz: u64, uptime: f64) -> Duration {
    let started = start_ticks as f64 / hz.max(1) as f64;
    Duration::from_secs_f64((uptime - started).max(0.0))
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// A process's name and whether it catches `sig`, from /proc/PID/status.
pub fn name_and_caught(pid: i32, sig: i32) -> io::Result<(String, bool)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let name = parse_name(&s).ok_or_else(|| bad("no Name: line in /proc/PID/status"))?;
    let caught = parse_caught(&s, sig).ok_or_else(|| bad("no SigCgt: line in /proc/PID/status"))?;
    Ok((name, caught))
}

/// Clock ticks per second (USER_HZ), for /proc/PID/stat times.
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a configuration value; _SC_CLK_TCK is a
    // valid name, and an error (-1) is handled below.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 {
        v as u64
    } else {
        100
    }
}

/// The start time of `pid` in clock ticks since boot: it identifies one
/// incarnation of a PID (a restarted container's PID 1 has another).
pub fn start_ticks(pid: i32) -> io::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_start_ticks(&s).ok_or_else(|| bad("cannot read the start time from /proc/PID/stat"))
}

/// How long ago `pid` started, from /proc/PID/stat and /proc/uptime.
pub fn age(pid: i32) -> io::Result<Duration> {
    let ticks = start_ticks(pid)?;
    let up = parse_uptime(&std::fs::read_to_string("/proc/uptime")?)
        .ok_or_else(|| bad("cannot read /proc/uptime"))?;
    Ok(age_of(ticks, clock_ticks(), up))
}

/// Write `line` and a newline to the standard error of process `pid`
/// through /proc/PID/fd/2, in one write of at most PIPE_BUF bytes (longer
/// lines are cut), so it lands whole between the process's own lines. The
/// descriptor is opened non-blocking (a full pipe fails the write rather
/// than hanging the caller), appending, and never as a controlling
/// terminal. Opening needs the right to look into PID's descriptors (the
/// same user and PID dumpable, or CAP_SYS_PTRACE) and, for a pipe or a
/// terminal, the right to open that (Docker's log pipes are root's, 0600).
/// /proc/PID/fd/2 is followed on purpose: it leads to what PID writes to.
pub fn write_stderr_line(pid: i32, line: &str) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(format!("/proc/{pid}/fd/2"))?;
    const MAX: usize = 4095; // PIPE_BUF less the newline
    let mut end = line.len().min(MAX);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    let mut buf = Vec::with_capacity(end + 1);
    buf.extend_from_slice(&line.as_bytes()[..end]);
    buf.push(b'\n');
    let n = f.write(&buf)?;
    if n != buf.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short write"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tpython3\nUmask:\t0022\nState:\tS (sleeping)\nSigBlk:\t0000000000000000\n\
SigIgn:\t0000000001001000\nSigCgt:\t0000000180004002\n";

    #[test]
    fn status_fields() {
        assert_eq!(parse_name(STATUS).as_deref(), Some("python3"));
        assert_eq!(parse_caught(STATUS, 2), Some(true)); // INT: bit 1
        assert_eq!(parse_caught(STATUS, 15), Some(true)); // TERM: bit 14
        assert_eq!(parse_caught(STATUS, 9), Some(false));
        assert_eq!(parse_caught(STATUS, 10), Some(false));
        assert_eq!(parse_caught("Name: x\n", 15), None);
        assert_eq!(parse_caught(STATUS, 0), None);
    }

    #[test]
    fn stat_start_time_counts_from_last_paren() {
        let stat = "1 (my (odd) name) S 0 0 0 0 -1 4194560 89 0 0 0 0 0 0 0 20 0 1 0 142465 2990080 392";
        assert_eq!(parse_start_ticks(stat), Some(142465));
        assert_eq!(parse_start_ticks("1 (x) S 0"), None);
        assert_eq!(parse_uptime("1425.17 2343.88\n"), Some(1425.17));
        assert_eq!(parse_uptime("-1 0"), None);
        assert_eq!(
            age_of(142465, 100, 1425.17),
            Duration::from_secs_f64(1425.17 - 1424.65)
        );
        assert_eq!(age_of(200000, 100, 10.0), Duration::ZERO);
    }

    #[test]
    fn this_process_is_young_and_known() {
        let me = std::process::id() as i32;
        // This test process started moments ago, long after boot.
        assert!(age(me).unwrap() < Duration::from_secs(3600));
        assert!(start_ticks(me).unwrap() >= start_ticks(1).unwrap());
        let (name, _) = name_and_caught(me, 15).unwrap();
        assert!(!name.is_empty());
    }
}
