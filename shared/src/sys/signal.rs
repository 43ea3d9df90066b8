//! Signal masks and a thread that turns signals into messages.

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use std::io;

fn set_of(sigs: &[i32]) -> io::Result<SigSet> {
    let mut set = SigSet::empty();
    for &s in sigs {
        set.add(Signal::try_from(s).map_err(io::Error::from)?);
    }
    Ok(set)
}

/// Block `sigs` in the calling thread (threads spawned later inherit the
/// mask), then start a thread that waits for them with sigwait and calls
/// `on_signal` for each. Call it before spawning other threads, or those
/// threads may take the signal instead.
pub fn spawn_waiter<F>(sigs: &[i32], mut on_signal: F) -> io::Result<()>
where
    F: FnMut(i32) + Send + 'static,
{
    let set = set_of(sigs)?;
    set.thread_block().map_err(io::Error::from)?;
    std::thread::Builder::new()
        .name("signals".into())
        .stack_size(64 * 1024)
        .spawn(move || loop {
            match set.wait() {
                Ok(sig) => on_signal(sig as i32),
                Err(_) => return,
            }
        })?;
    Ok(())
}

/// Block `sigs` in the calling thread and return the previous mask.
pub fn block(sigs: &[i32]) -> io::Result<SigSet> {
    let set = set_of(sigs)?;
    let mut old = SigSet::empty();
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
        .map_err(io::Error::from)?;
    Ok(old)
}

/// Put signal state back to what a freshly exec'd program expects: nothing
/// blocked, and SIGPIPE at its default (the Rust runtime ignores SIGPIPE, and
/// an ignored signal stays ignored across exec, which would break
/// `yes | head` inside the service).
pub fn reset_for_exec() -> io::Result<()> {
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(io::Error::from)?;
    // SAFETY: installing SIG_DFL registers no Rust code as a handler, so no
    // handler can run with broken invariants; SIGPIPE is a valid signal.
    unsafe { nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigDfl) }
        .map_err(io::Error::from)?;
    Ok(())
}

/// The name of signal `n` without the SIG prefix ("TERM"), or its number.
pub fn name(n: i32) -> String {
    match Signal::try_from(n) {
        Ok(s) => s.as_str().trim_start_matches("SIG").to_string(),
        Err(_) => n.to_string(),
    }
}

/// Parse a signal name or number: TERM, SIGTERM, term, 15.
pub fn parse(s: &str) -> Result<i32, String> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i32>() {
        return Signal::try_from(n)
            .map(|s| s as i32)
            .map_err(|_| format!("{s:?} is not a signal number"));
    }
    let up = t.to_ascii_uppercase();
    let full = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    full.parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| format!("{s:?} is not a signal name (e.g. TERM, INT, KILL, USR1)"))
}

extern "C" fn ignore_delivery(_: libc::c_int) {}

/// Install a handler that does nothing for each of `sigs`. An init that
/// takes its signals with sigwait/sigtimedwait needs this too: the kernel
/// shows only installed handlers in /proc/PID/status (SigCgt), and tools
/// such as `healthcheck --kill-pid1` read SigCgt to know whether a signal to
/// PID 1 would be dropped. While the signals stay blocked the handler never
/// runs; sigtimedwait still takes them.
pub fn install_noop_handlers(sigs: &[i32]) -> io::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler};
    let act = SigAction::new(
        SigHandler::Handler(ignore_delivery),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for &s in sigs {
        let sig = Signal::try_from(s).map_err(io::Error::from)?;
        // SAFETY: the handler is an empty extern "C" function: it touches no
        // state, so it is async-signal-safe whenever it might run.
        unsafe { sigaction(sig, &act) }.map_err(io::Error::from)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("TERM"), Ok(15));
        assert_eq!(parse("sigkill"), Ok(9));
        assert_eq!(parse("10"), Ok(10));
        assert!(parse("NOPE").is_err());
        assert!(parse("999").is_err());
        assert_eq!(name(15), "TERM");
    }
}
