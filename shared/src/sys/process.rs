//! Processes: fork, wait, kill, and reading a process's state from /proc.

use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io;

/// Which side of a fork this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    Parent { child: i32 },
    Child,
}

/// Number of threads in this process, from /proc/self/status.
pub fn thread_count() -> io::Result<usize> {
    let s = std::fs::read_to_string("/proc/self/status")?;
    s.lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no Threads: line in /proc/self/status"))
}

/// fork(2), refused unless this process has exactly one thread: in a forked
/// copy of a multi-threaded process another thread may have held a lock
/// (the allocator's, stdout's) that will never be released.
pub fn fork() -> io::Result<Forked> {
    if thread_count()? != 1 {
        return Err(io::Error::other(
            "fork refused: the process has more than one thread",
        ));
    }
    // SAFETY: the process is single-threaded (checked just above), so the
    // child is an exact copy with no lock held by a vanished thread.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Parent { child } => Ok(Forked::Parent {
            child: child.as_raw(),
        }),
        nix::unistd::ForkResult::Child => Ok(Forked::Child),
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// The shell convention: the code, or 128+N for signal N.
    pub fn status(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(n) => 128 + n,
        }
    }
}

/// Reap any child without blocking: `Ok(None)` when none has exited.
pub fn reap_any() -> io::Result<Option<(i32, Exit)>> {
    loop {
        match nix::sys::wait::waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, c)) => return Ok(Some((pid.as_raw(), Exit::Code(c)))),
            Ok(WaitStatus::Signaled(pid, s, _)) => return Ok(Some((pid.as_raw(), Exit::Signal(s as i32)))),
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(_) => continue,
            Err(nix::errno::Errno::ECHILD) => return Ok(None),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Block until `pid` exits.
pub fn wait_for(pid: i32) -> io::Result<Exit> {
    loop {
        match nix::sys::wait::waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => return Ok(Exit::Code(c)),
            Ok(WaitStatus::Signaled(_, s, _)) => return Ok(Exit::Signal(s as i32)),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Send signal `sig` to `pid` (negative: a process group).
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    let s = Signal::try_from(sig).map_err(io::Error::from)?;
    nix::sys::signal::kill(Pid::from_raw(pid), s).map_err(io::Error::from)
}

/// Whether `pid` exists (signal 0).
pub fn alive(pid: i32) -> bool {
    nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
}

pub fn getpid() -> i32 {
    nix::unistd::getpid().as_raw()
}

pub fn getppid() -> i32 {
    nix::unistd::getppid().as_raw()
}
