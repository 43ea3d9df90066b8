//! `--init`: stay as a tiny init instead of exec'ing. Already running as the
//! target user, it forks COMMAND, forwards every catchable signal to it,
//! reaps every zombie (orphans included), SIGKILLs COMMAND's process group
//! when it outlives --grace after TERM/INT/QUIT, and exits with COMMAND's
//! status (128+N when signal N killed it).
//!
//! Why it matters: the kernel drops a signal sent to a PID namespace's init
//! when init has no handler for it, even SIGKILL sent from inside, so a
//! service that is PID 1 and does not handle SIGTERM ignores `docker stop`.
//! Here the signals are blocked and taken with sigtimedwait, which counts as
//! handling them.

use dockhand::error::Error;
use dockhand::sys::process::{self, Exit, Forked};
use dockhand::sys::{privs, signal};
use dockhand::{exec, out};
use std::time::{Duration, Instant};

/// The default --grace: below Docker's 10 s stop timeout.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(8);

/// Signals passed on to COMMAND: every catchable one except those the kernel
/// raises for the process's own faults and the terminal stops for background
/// reads and writes (tini's choice).
pub const FORWARDED: &[i32] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGPIPE,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGSTKFLT,
    libc::SIGCONT,
    libc::SIGTSTP,
    libc::SIGURG,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGWINCH,
    libc::SIGIO,
    libc::SIGPWR,
];

/// Signals after which COMMAND gets --grace to exit before SIGKILL.
fn stops(sig: i32) -> bool {
    matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)
}

/// Run `command` under this init; returns the exit status for runas.
pub fn run(command: &[String], grace: Duration, setsid: bool) -> Result<i32, Error> {
    let mut sigs = FORWARDED.to_vec();
    sigs.push(libc::SIGCHLD);
    // Blocked before the fork, so nothing arrives between fork and the wait
    // loop unnoticed; the child unblocks them just before exec.
    signal::block(&sigs).map_err(|e| Error::failed(format!("cannot block signals: {e}")))?;
    // Visible handlers (SigCgt), so `healthcheck --kill-pid1` sees that this
    // init takes TERM; exec in the child resets them to the default.
    signal::install_noop_handlers(FORWARDED)
        .map_err(|e| Error::failed(format!("cannot install signal handlers: {e}")))?;
    if process::getpid() != 1 {
        // Orphans of COMMAND come to us, not to whoever started runas.
        if let Err(e) = privs::set_child_subreaper() {
            out::warn(crate::TOOL, &format!("cannot become a child subreaper: {e}"));
        }
    }
    process::wait_single_threaded(Duration::from_secs(2))
        .map_err(|e| Error::failed(format!("cannot fork: {e}")))?;
    let child = match process::fork() {
        Ok(Forked::Child) => child(command, setsid),
        Ok(Forked::Parent { child }) => child,
        Err(e) => return Err(Error::failed(format!("cannot fork: {e}"))),
    };
    supervise(child, &sigs, grace)
}

fn child(command: &[String], setsid: bool) -> ! {
    let tty = privs::stdin_is_tty();
    if setsid && tty {
        // A new session has no controlling terminal: nothing in it can push
        // input into the terminal (TIOCSTI) of whoever attached it.
        if let Err(e) = privs::new_session() {
            out::warn(crate::TOOL, &format!("--setsid: cannot start a new session: {e}"));
            std::process::exit(1);
        }
    } else {
        // Its own process group, so the grace kill reaches all of it and
        // nothing else; with a terminal, make that group the foreground one
        // (SIGTTOU is still blocked here, so this cannot stop us).
        let _ = privs::own_process_group();
        if tty {
            let _ = privs::take_terminal();
        }
    }
    let e = exec::exec(command);
    if let Some(m) = e.message() {
        out::warn(crate::TOOL, m);
    }
    std::process::exit(e.code())
}

/// What to do when the time runs out.
fn kill_group(child: i32) {
    if process::kill(-child, libc::SIGKILL).is_err() {
        let _ = process::kill(child, libc::SIGKILL);
    }
}

fn supervise(child: i32, sigs: &[i32], grace: Duration) -> Result<i32, Error> {
    let mut deadline: Option<Instant> = None;
    loop {
        let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let got = process::wait_signal(sigs, timeout)
            .map_err(|e| Error::failed(format!("waiting for signals: {e}")))?;
        match got {
            None => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    out::warn(
                        crate::TOOL,
                        "command still running after --grace; sending KILL to its process group",
                    );
                    kill_group(child);
                    deadline = None;
                }
            }
            Some(libc::SIGCHLD) => {
                if let Some(exit) = reap(child)? {
                    return Ok(exit.status());
                }
            }
            Some(sig) => {
                let _ = process::kill(child, sig);
                if stops(sig) && deadline.is_none() {
                    deadline = Some(Instant::now() + grace);
                }
            }
        }
    }
}

/// Reap every child that has exited; the main child's status when it is one.
fn reap(child: i32) -> Result<Option<Exit>, Error> {
    let mut main = None;
    loop {
        match process::reap_any() {
            Ok(Some((pid, exit))) => {
                if pid == child {
                    main = Some(exit);
                }
            }
            Ok(None) => return Ok(main),
            Err(e) => return Err(Error::failed(format!("waiting for children: {e}"))),
        }
    }
}
