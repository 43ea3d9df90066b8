//! Processes: fork, wait, kill, and reading a process's state from /proc.

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

/// What waitpid reported.
enum Waited {
    /// Nothing (WNOHANG and no child changed state, or no child at all).
    Nothing,
    Ended(i32, Exit),
    Stopped(i32, i32),
    /// Continued, or another state the caller did not ask about.
    Other,
}

/// waitpid(2) on raw numbers: nix's `WaitStatus` has no place for a child
/// killed or stopped by a real-time signal, and reports EINVAL after such a
/// child is already reaped.
fn waitpid_raw(pid: i32, flags: libc::c_int) -> io::Result<Waited> {
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: `status` is a valid, writable int; waitpid writes only it.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        if r < 0 {
            match nix::errno::Errno::last() {
                nix::errno::Errno::EINTR => continue,
                nix::errno::Errno::ECHILD => return Ok(Waited::Nothing),
                e => return Err(e.into()),
            }
        }
        if r == 0 {
            return Ok(Waited::Nothing);
        }
        return Ok(if libc::WIFEXITED(status) {
            Waited::Ended(r, Exit::Code(libc::WEXITSTATUS(status)))
        } else if libc::WIFSIGNALED(status) {
            Waited::Ended(r, Exit::Signal(libc::WTERMSIG(status)))
        } else if libc::WIFSTOPPED(status) {
            Waited::Stopped(r, libc::WSTOPSIG(status))
        } else {
            Waited::Other
        });
    }
}

/// Reap any child without blocking: `Ok(None)` when none has exited.
pub fn reap_any() -> io::Result<Option<(i32, Exit)>> {
    loop {
        match waitpid_raw(-1, libc::WNOHANG)? {
            Waited::Ended(pid, e) => return Ok(Some((pid, e))),
            Waited::Nothing => return Ok(None),
            Waited::Stopped(..) | Waited::Other => continue,
        }
    }
}

/// Block until `pid` exits.
pub fn wait_for(pid: i32) -> io::Result<Exit> {
    loop {
        match waitpid_raw(pid, 0)? {
            Waited::Ended(_, e) => return Ok(e),
            Waited::Nothing => return Err(io::Error::from_raw_os_error(libc::ECHILD)),
            Waited::Stopped(..) | Waited::Other => continue,
        }
    }
}

/// What happened to a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildEvent {
    Ended(Exit),
    /// Stopped by this signal (STOP, TSTP, TTIN, TTOU).
    Stopped(i32),
}

/// Like `reap_any`, but also report children that stopped (WUNTRACED);
/// continued ones are passed over.
pub fn reap_or_stopped() -> io::Result<Option<(i32, ChildEvent)>> {
    loop {
        match waitpid_raw(-1, libc::WNOHANG | libc::WUNTRACED)? {
            Waited::Ended(pid, e) => return Ok(Some((pid, ChildEvent::Ended(e)))),
            Waited::Stopped(pid, s) => return Ok(Some((pid, ChildEvent::Stopped(s)))),
            Waited::Nothing => return Ok(None),
            Waited::Other => continue,
        }
    }
}

/// Send signal `sig` (real-time ones included) to `pid` (negative: a
/// process group).
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill takes two integers and touches no memory of ours; a bad
    // signal number is refused with EINVAL.
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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

/// A way to notice that another process, not necessarily a child, has ended:
/// a pidfd where the kernel has them (Linux 5.3+), else the process's start
/// time from /proc, so that a recycled pid is not taken for the same process.
/// A zombie counts as ended.
#[derive(Debug)]
pub struct ProcessWatch {
    pid: i32,
    pidfd: Option<std::os::fd::OwnedFd>,
    start: Option<u64>,
}

impl ProcessWatch {
    /// Start watching `pid`; call it while the process is known to be alive
    /// (for the calling process itself: `ProcessWatch::new(getpid())`).
    pub fn new(pid: i32) -> ProcessWatch {
        ProcessWatch {
            pid,
            pidfd: pidfd_open(pid).ok(),
            start: proc_stat(pid).map(|(_, start)| start),
        }
    }

    /// Like `new` without a pidfd: what a kernel without pidfd_open (or a
    /// seccomp filter refusing it) gets. Lets tests drive that path.
    pub fn new_without_pidfd(pid: i32) -> ProcessWatch {
        ProcessWatch {
            pid,
            pidfd: None,
            start: proc_stat(pid).map(|(_, start)| start),
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Whether the process has ended.
    pub fn ended(&self) -> bool {
        if let Some(fd) = &self.pidfd {
            return pidfd_readable(fd, nix::poll::PollTimeout::ZERO);
        }
        match (self.start, proc_stat(self.pid)) {
            (Some(start), Some((state, now))) => now != start || state == 'Z' || state == 'X',
            (Some(_), None) => true,
            (None, _) => !alive(self.pid),
        }
    }

    /// Wait up to `limit` for the process to end; true when it has.
    pub fn wait_ended_for(&self, limit: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if self.ended() {
                return true;
            }
            let Some(left) = crate::clock::time_left(deadline) else {
                return false;
            };
            match &self.pidfd {
                Some(fd) => {
                    let ms = left.as_millis().clamp(1, 60_000) as u32;
                    let t = nix::poll::PollTimeout::try_from(ms).unwrap_or(nix::poll::PollTimeout::MAX);
                    pidfd_readable(fd, t);
                }
                None => std::thread::sleep(left.min(std::time::Duration::from_millis(200))),
            }
        }
    }

    /// Block until the process has ended.
    pub fn wait_ended(&self) {
        while !self.ended() {
            match &self.pidfd {
                Some(fd) => {
                    pidfd_readable(fd, nix::poll::PollTimeout::NONE);
                }
                None => std::thread::sleep(std::time::Duration::from_millis(200)),
            }
        }
    }
}

/// pidfd_open(2): a descriptor that becomes readable when `pid` ends. It is
/// always close-on-exec.
fn pidfd_open(pid: i32) -> io::Result<std::os::fd::OwnedFd> {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1;
    // it touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) })
}

/// Whether the pidfd is readable (its process ended), waiting up to `timeout`.
fn pidfd_readable(fd: &std::os::fd::OwnedFd, timeout: nix::poll::PollTimeout) -> bool {
    use std::os::fd::AsFd;
    loop {
        let mut fds = [nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(n) => return n > 0,
            Err(nix::errno::Errno::EINTR) => continue,
            // A pidfd that cannot be polled tells us nothing; say "ended" so
            // no watcher lingers on a broken handle.
            Err(_) => return true,
        }
    }
}

/// State letter and start time (clock ticks since boot) of `pid`, from
/// /proc/PID/stat; `None` when the process or /proc is not there.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or
    // parentheses itself, so count fields from the last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let start = f.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// Wait up to `timeout` (`None`: no limit) for one of `sigs`, which the
/// caller must have blocked in every thread. `Ok(None)` when the time passed.
/// The kernel's call is made directly, with its 64-bit set, so that the
/// numbers the C library keeps for itself (32-34) can be waited for too.
pub fn wait_signal(sigs: &[i32], timeout: Option<std::time::Duration>) -> io::Result<Option<i32>> {
    let set: u64 = crate::sys::signal::Sigs::of(sigs).0;
    let ts = timeout.map(nix::sys::time::TimeSpec::from);
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t.as_ref() as *const libc::timespec);
    loop {
        // SAFETY: `set` is 8 readable bytes, the size passed (the kernel's
        // sigset size on Linux); a null siginfo pointer is allowed; `ts_ptr`
        // is null or points to `ts`, which lives until the end of this
        // function.
        let r = unsafe {
            libc::syscall(
                libc::SYS_rt_sigtimedwait,
                &set as *const u64,
                std::ptr::null_mut::<libc::siginfo_t>(),
                ts_ptr,
                8usize,
            )
        };
        if r >= 0 {
            return Ok(Some(r as i32));
        }
        match nix::errno::Errno::last() {
            nix::errno::Errno::EAGAIN => return Ok(None),
            nix::errno::Errno::EINTR => continue,
            e => return Err(e.into()),
        }
    }
}

/// Wait (polling /proc, at most `limit`) until this process has one thread:
/// a thread that was joined may still be counted for a moment while the
/// kernel finishes it, and `fork` refuses while it is.
pub fn wait_single_threaded(limit: std::time::Duration) -> io::Result<()> {
    let start = std::time::Instant::now();
    while thread_count()? != 1 {
        if start.elapsed() >= limit {
            return Err(io::Error::other("other threads did not finish"));
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(())
}

/// Whether this process has any child left (running, stopped or not yet
/// reaped); nothing is reaped. waitid(2) with WNOWAIT answers ECHILD only
/// when there is none, which waitpid's WNOHANG cannot tell from "none has
/// changed state".
pub fn children_left() -> io::Result<bool> {
    loop {
        // SAFETY: siginfo_t is plain data, zeroed as waitid expects; the
        // kernel writes only into it. WNOWAIT leaves every child as it is.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t for the whole call.
        let r = unsafe {
            libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WSTOPPED | libc::WCONTINUED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return Ok(true);
        }
        match nix::errno::Errno::last() {
            nix::errno::Errno::EINTR => continue,
            nix::errno::Errno::ECHILD => return Ok(false),
            e => return Err(e.into()),
        }
    }
}

/// The children of this (single-threaded) process, from
/// /proc/PID/task/PID/children; where the kernel lacks that file, from the
/// parent field of every /proc/N/stat. At most `limit` of them. A child's
/// pid cannot be reused before this process reaps it, so signalling what
/// this returns reaches these processes and no others.
pub fn own_children(limit: usize) -> Vec<i32> {
    let me = getpid();
    if let Ok(s) = std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")) {
        return s
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .take(limit)
            .collect();
    }
    let mut found = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = s
            .rfind(')')
            .and_then(|i| s[i + 1..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<i32>().ok());
        if ppid == Some(me) {
            found.push(pid);
            if found.len() >= limit {
                break;
            }
        }
    }
    found
}
