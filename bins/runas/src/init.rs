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
//!
//! Terminal: when runas's process group holds the terminal's foreground,
//! COMMAND gets a process group of its own and the foreground, so Ctrl-C
//! reaches COMMAND (and its group) and not the init. COMMAND starts with the
//! signal state runas inherited (ignored set and blocked mask), as under
//! `tini -s`. See `on_stopped` for what happens when COMMAND stops.

use dockhand::error::Error;
use dockhand::sys::process::{self, ChildEvent, Exit, Forked};
use dockhand::sys::{privs, signal};
use dockhand::{exec, out};
use std::time::{Duration, Instant};

/// The default --grace: below Docker's 10 s stop timeout.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(8);

/// Signals the init does not pass on. KILL and STOP cannot be caught.
/// CHLD is the init's own business. SEGV, BUS, FPE, ILL, TRAP and SYS are
/// what the kernel raises for a process's own faults: sent from outside,
/// they mean nothing for COMMAND. TTIN and TTOU are the terminal's stops for
/// background reads and writes: the init ignores them (it hands the terminal
/// to COMMAND and may write a warning from a background group), and the
/// terminal sends them to COMMAND's group itself; a TTIN/TTOU sent to runas
/// by hand is dropped rather than stopping COMMAND.
const NOT_FORWARDED: &[i32] = &[
    libc::SIGKILL,
    libc::SIGSTOP,
    libc::SIGCHLD,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGSYS,
    libc::SIGTTIN,
    libc::SIGTTOU,
];

/// Signals passed on to COMMAND: every number 1..=64 but NOT_FORWARDED, so
/// every real-time one (SIGRTMIN+3 is systemd's stop signal), including
/// 32-34, which runas's C library (musl) keeps for itself but a glibc
/// program calls SIGRTMIN (34) and Docker sends for `SIGRTMIN`.
pub fn forwarded() -> Vec<i32> {
    (1..=signal::MAX_SIGNAL)
        .filter(|n| !NOT_FORWARDED.contains(n))
        .collect()
}

/// Signals after which COMMAND gets --grace to exit before SIGKILL.
fn stops(sig: i32) -> bool {
    matches!(sig, libc::SIGTERM | libc::SIGINT | libc::SIGQUIT)
}

/// How the init runs COMMAND and ends it.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// After TERM, INT or QUIT (or COMMAND's end), how long before KILL.
    pub grace: Duration,
    /// How long a first TERM waits before it is passed on.
    pub stop_delay: Option<Duration>,
    /// Pass signals on to COMMAND's process group, not COMMAND alone.
    pub signal_group: bool,
    /// Start COMMAND in a new session when stdin is a terminal.
    pub setsid: bool,
}

/// Run `command` under this init; returns the exit status for runas.
pub fn run(command: &[String], opts: Options) -> Result<i32, Error> {
    let mut sigs = forwarded();
    sigs.push(libc::SIGCHLD);
    // Blocked before the fork, so nothing arrives between fork and the wait
    // loop unnoticed; the child restores the inherited mask just before exec.
    signal::block(&sigs).map_err(|e| Error::failed(format!("cannot block signals: {e}")))?;
    // Visible handlers (SigCgt), so `healthcheck --kill-pid1` sees that this
    // init takes TERM; they also undo an inherited SIG_IGN, which would
    // discard the signal (or, for CHLD, reap children behind our back).
    // exec in the child resets them.
    // (Only the ones the C library lets us touch; the others stay at their
    // default, which blocking makes harmless.)
    let handled: Vec<i32> = sigs.iter().copied().filter(|&n| signal::usable(n)).collect();
    signal::install_noop_handlers(&handled)
        .map_err(|e| Error::failed(format!("cannot install signal handlers: {e}")))?;
    // The init hands the terminal over from what becomes a background group,
    // and may write to it from there: neither may stop it. tini does the same.
    signal::ignore(&[libc::SIGTTIN, libc::SIGTTOU])
        .map_err(|e| Error::failed(format!("cannot ignore SIGTTIN/SIGTTOU: {e}")))?;
    let pid1 = process::getpid() == 1;
    if !pid1 {
        // Orphans of COMMAND come to us, not to whoever started runas.
        if let Err(e) = privs::set_child_subreaper() {
            out::warn(crate::TOOL, &format!("cannot become a child subreaper: {e}"));
        }
    }
    let own_group = privs::process_group();
    // Only a foreground init passes the terminal on: one started in the
    // background (`runas --init ... &`) must not take it from the shell.
    let foreground = privs::stdin_is_tty() && privs::terminal_foreground().ok() == Some(own_group);
    process::wait_single_threaded(Duration::from_secs(2))
        .map_err(|e| Error::failed(format!("cannot fork: {e}")))?;
    let child = match process::fork() {
        Ok(Forked::Child) => child(command, opts.setsid, foreground),
        Ok(Forked::Parent { child }) => child,
        Err(e) => return Err(Error::failed(format!("cannot fork: {e}"))),
    };
    let s = Supervisor {
        child,
        pid1,
        own_group,
        opts,
    };
    let status = s.supervise(&sigs);
    if foreground && privs::terminal_foreground().is_ok_and(|g| g != own_group) {
        // Give the terminal back, so that whoever started runas (a script
        // under a terminal) is not left in a background group.
        let _ = privs::give_terminal(own_group);
    }
    status
}

fn child(command: &[String], setsid: bool, foreground: bool) -> ! {
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
        // nothing else; with the terminal's foreground, pass that on (SIGTTOU
        // is ignored here, so tcsetpgrp from what is now a background group
        // cannot stop us). exec below restores the inherited dispositions.
        let _ = privs::own_process_group();
        if foreground {
            if let Err(e) = privs::give_terminal(privs::process_group()) {
                out::warn(
                    crate::TOOL,
                    &format!("cannot give the terminal to the command: {e}"),
                );
            }
        }
    }
    let e = exec::exec(command);
    if let Some(m) = e.message() {
        out::warn(crate::TOOL, m);
    }
    std::process::exit(e.code())
}

struct Supervisor {
    child: i32,
    pid1: bool,
    own_group: i32,
    opts: Options,
}

/// Most children signalled one by one at shutdown; more are left to the
/// next round (each round reads the list again).
const MAX_CHILDREN: usize = 4096;

/// Rounds of KILL after --grace, each waiting up to 100 ms for SIGCHLD.
const KILL_ROUNDS: u32 = 50;

impl Supervisor {
    /// COMMAND's process group: its own, unless it moved.
    fn group(&self) -> i32 {
        privs::process_group_of(self.child).unwrap_or(self.child)
    }

    /// Send `sig` to COMMAND's process group, or to COMMAND alone.
    fn signal_group(&self, sig: i32) {
        let g = self.group();
        if g == self.own_group || process::kill(-g, sig).is_err() {
            let _ = process::kill(self.child, sig);
        }
    }

    /// Pass `sig` on: to COMMAND, or with --signal-group to its group.
    fn forward(&self, sig: i32) {
        if self.opts.signal_group {
            self.signal_group(sig);
        } else {
            let _ = process::kill(self.child, sig);
        }
    }

    fn supervise(&self, sigs: &[i32]) -> Result<i32, Error> {
        let wait_err = |e: std::io::Error| Error::failed(format!("waiting for signals: {e}"));
        // When COMMAND gets KILL (after TERM, INT or QUIT), and, once it has
        // ended, what is left.
        let mut grace_end: Option<Instant> = None;
        // When a TERM held back by --stop-delay is passed on.
        let mut delayed: Option<Instant> = None;
        // The first stop signal passed on (TERM, INT or QUIT).
        let mut stop_sent: Option<i32> = None;
        // Whether COMMAND's group got KILL after --grace.
        let mut killed = false;
        let exit = loop {
            let next = match (grace_end, delayed) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timeout = next.map(|d| d.saturating_duration_since(Instant::now()));
            let got = process::wait_signal(sigs, timeout).map_err(wait_err)?;
            let now = Instant::now();
            if delayed.is_some_and(|d| now >= d) {
                delayed = None;
                out::warn(crate::TOOL, "--stop-delay is over: passing SIGTERM on");
                self.stop(libc::SIGTERM, &mut stop_sent, &mut grace_end);
            }
            if grace_end.is_some_and(|d| now >= d) && got != Some(libc::SIGCHLD) {
                out::warn(
                    crate::TOOL,
                    "command still running after --grace; sending KILL to its process group",
                );
                self.signal_group(libc::SIGKILL);
                // Only COMMAND's end wakes the loop now; what it leaves is
                // KILLed at once after it (the grace is spent).
                grace_end = None;
                delayed = None;
                killed = true;
                stop_sent.get_or_insert(libc::SIGKILL);
                continue;
            }
            match got {
                None => {}
                Some(libc::SIGCHLD) => {
                    if let Some(exit) = self.reap()? {
                        break exit;
                    }
                }
                Some(libc::SIGTERM) if delayed.is_some() => {
                    delayed = None;
                    out::warn(crate::TOOL, "second SIGTERM: passing SIGTERM on now");
                    self.stop(libc::SIGTERM, &mut stop_sent, &mut grace_end);
                }
                Some(libc::SIGINT) if delayed.is_some() => {
                    // The INT replaces the held TERM: one stop signal, the
                    // last one asked for (a shell without an INT trap
                    // would die of the INT before running its TERM trap).
                    delayed = None;
                    out::warn(
                        crate::TOOL,
                        "SIGINT during --stop-delay: passing SIGINT on now, instead of the SIGTERM",
                    );
                    self.stop(libc::SIGINT, &mut stop_sent, &mut grace_end);
                }
                Some(libc::SIGTERM) if stop_sent.is_none() && self.opts.stop_delay.is_some() => {
                    let d = self.opts.stop_delay.unwrap_or_default();
                    out::warn(
                        crate::TOOL,
                        &format!(
                            "got SIGTERM; passing it on after --stop-delay {} (another TERM passes it on now; an INT goes on now in its place)",
                            dockhand::duration::human(d)
                        ),
                    );
                    delayed = Some(now + d);
                }
                Some(sig) => self.stop(sig, &mut stop_sent, &mut grace_end),
            }
        };
        let grace_end = if killed { Some(Instant::now()) } else { grace_end };
        self.drain(sigs, exit, stop_sent, grace_end)
    }

    /// Pass `sig` on; a stop signal starts --grace (once).
    fn stop(&self, sig: i32, stop_sent: &mut Option<i32>, grace_end: &mut Option<Instant>) {
        self.forward(sig);
        if stops(sig) {
            stop_sent.get_or_insert(sig);
            grace_end.get_or_insert(Instant::now() + self.opts.grace);
        }
    }

    /// COMMAND has ended with `exit`. Whatever it left behind (its process
    /// group, and every process now runas's child: orphans come to PID 1, or
    /// to runas as a child subreaper) gets the stop signal that was passed
    /// on (TERM when none was), unless it already had it through
    /// --signal-group; runas reaps until no child is left or --grace
    /// (counted from the stop signal when there was one) has passed, then
    /// KILLs what is left, round by round as their own children come to
    /// it. Not kill(-1): outside PID 1 that is every process the user may
    /// signal, on the host too. Returns COMMAND's status.
    fn drain(
        &self,
        sigs: &[i32],
        exit: Exit,
        stop_sent: Option<i32>,
        grace_end: Option<Instant>,
    ) -> Result<i32, Error> {
        let status = exit.status();
        if !self.children_left()? {
            return Ok(status);
        }
        let deadline = grace_end.unwrap_or_else(|| Instant::now() + self.opts.grace);
        let sig = stop_sent.unwrap_or(libc::SIGTERM);
        if Instant::now() < deadline {
            let group_has_it = self.opts.signal_group && stop_sent.is_some();
            // Said before it is done, so that the log shows the cause first.
            let n = process::own_children(MAX_CHILDREN).len();
            out::warn(
                crate::TOOL,
                &format!(
                    "command ended (status {status}); sending SIG{} to what it left ({n} processes) and \
                     waiting for them up to --grace",
                    signal::name(sig)
                ),
            );
            self.signal_rest(sig, !group_has_it);
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let got = process::wait_signal(sigs, Some(left))
                .map_err(|e| Error::failed(format!("waiting for signals: {e}")))?;
            match got {
                None => break,
                Some(libc::SIGCHLD) => {
                    self.reap_rest()?;
                    if !self.children_left()? {
                        return Ok(status);
                    }
                }
                Some(s) => self.signal_rest(s, true),
            }
        }
        let n = process::own_children(MAX_CHILDREN).len();
        out::warn(
            crate::TOOL,
            &format!("{n} processes left by the command still running after --grace; sending KILL"),
        );
        for _ in 0..KILL_ROUNDS {
            self.signal_rest(libc::SIGKILL, true);
            let _ = process::wait_signal(&[libc::SIGCHLD], Some(Duration::from_millis(100)));
            self.reap_rest()?;
            if !self.children_left()? {
                return Ok(status);
            }
        }
        out::warn(
            crate::TOOL,
            "processes left by the command did not end after KILL; exiting with the command's status",
        );
        Ok(status)
    }

    /// Send `sig` to COMMAND's process group (when `group`; runas made it
    /// for COMMAND, so it is never runas's own) and to each child of runas
    /// outside it. A child cannot be replaced by another process under the
    /// same pid before runas reaps it.
    fn signal_rest(&self, sig: i32, group: bool) {
        let g = self.child;
        let own = g == self.own_group;
        if group && !own {
            let _ = process::kill(-g, sig);
        }
        for k in process::own_children(MAX_CHILDREN) {
            if own || privs::process_group_of(k).ok() != Some(g) {
                let _ = process::kill(k, sig);
            }
        }
    }

    fn children_left(&self) -> Result<bool, Error> {
        process::children_left().map_err(|e| Error::failed(format!("waiting for children: {e}")))
    }

    /// Reap every child that has ended (COMMAND is gone already).
    fn reap_rest(&self) -> Result<(), Error> {
        loop {
            match process::reap_or_stopped() {
                Ok(Some(_)) => {}
                Ok(None) => return Ok(()),
                Err(e) => return Err(Error::failed(format!("waiting for children: {e}"))),
            }
        }
    }

    /// Reap every child that has exited; the main child's status when it is
    /// one. A stopped main child is dealt with on the way; a stopped orphan
    /// is left to whoever stopped it.
    fn reap(&self) -> Result<Option<Exit>, Error> {
        let mut main = None;
        loop {
            match process::reap_or_stopped() {
                Ok(Some((pid, ChildEvent::Ended(exit)))) if pid == self.child => main = Some(exit),
                Ok(Some((pid, ChildEvent::Stopped(sig)))) if pid == self.child && main.is_none() => {
                    self.on_stopped(sig)
                }
                Ok(Some(_)) => {}
                Ok(None) => return Ok(main),
                Err(e) => return Err(Error::failed(format!("waiting for children: {e}"))),
            }
        }
    }

    /// COMMAND stopped (waitpid's WUNTRACED), so it cannot go on by itself.
    ///
    /// Stopped from the terminal (TSTP: Ctrl-Z; TTIN/TTOU: terminal use from
    /// the background) under a job-control shell (runas's parent is in the
    /// same session but another process group, as a shell's job is): runas
    /// stops too, as the job it is part of, so the shell's `fg`, `bg` and
    /// `kill -CONT %1` work; when continued, it passes the terminal's
    /// foreground on if it has it and continues COMMAND's group.
    ///
    /// Otherwise (PID 1, or no job control above), nothing else would resume
    /// COMMAND, so runas does what a shell would and says so on stderr:
    /// TTIN/TTOU give COMMAND's group the terminal and continue it; TSTP
    /// continues it; STOP, sent on purpose, is left until a CONT comes
    /// (runas passes CONT on).
    fn on_stopped(&self, sig: i32) {
        let from_terminal = matches!(sig, libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU);
        if from_terminal && !self.pid1 && privs::job_control_above() {
            let _ = process::kill(process::getpid(), libc::SIGSTOP);
            // Continued.
            if privs::stdin_is_tty() && privs::terminal_foreground().ok() == Some(self.own_group) {
                let _ = privs::give_terminal(self.group());
            }
            self.signal_group(libc::SIGCONT);
            return;
        }
        let name = signal::name(sig);
        match sig {
            libc::SIGTTIN | libc::SIGTTOU => {
                if let Err(e) = privs::give_terminal(self.group()) {
                    out::warn(
                        crate::TOOL,
                        &format!(
                            "command stopped by SIG{name} (terminal use from the background) and cannot be \
                             given the terminal ({e}); it stays stopped"
                        ),
                    );
                    return;
                }
                out::warn(
                    crate::TOOL,
                    &format!("command stopped by SIG{name}; gave it the terminal and continued it"),
                );
            }
            libc::SIGTSTP => out::warn(
                crate::TOOL,
                "command stopped by SIGTSTP (Ctrl-Z); nothing above runas could resume it, so runas continues it",
            ),
            _ => {
                out::warn(
                    crate::TOOL,
                    &format!("command stopped by SIG{name}; it stays stopped until runas gets SIGCONT"),
                );
                return;
            }
        }
        self.signal_group(libc::SIGCONT);
    }
}
