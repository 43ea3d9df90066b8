//! Signal masks, dispositions and a thread that turns signals into messages.
//!
//! Real-time signals (SIGRTMIN..SIGRTMAX) have no variant in nix's `Signal`,
//! so sets and dispositions here work on raw numbers and `sigset_t`.
//!
//! The signal state this process inherited (ignored set and blocked mask) is
//! read before `main`, from an `.init_array` entry: Rust's runtime sets
//! SIGPIPE to ignored before `main` whatever it was (std's `reset_sigpipe`
//! with the default `-Zon-broken-pipe`, unchanged in 1.95 and nightly; the
//! inherit option is nightly-only), so by `main` the inherited SIGPIPE
//! disposition is gone. `restore_inherited` puts that state back before exec,
//! so COMMAND sees what it would have seen had runas not been in between.

use nix::sys::signal::{SigSet, Signal};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The highest signal number on Linux (the kernel's sigset is 64 bits).
pub const MAX_SIGNAL: i32 = 64;

/// A set of signal numbers 1..=64, one bit each, as the kernel keeps them
/// (bit N-1 for signal N, the layout of SigIgn/SigBlk in /proc/PID/status).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sigs(pub u64);

impl Sigs {
    pub fn of(sigs: &[i32]) -> Sigs {
        let mut s = Sigs(0);
        for &n in sigs {
            s.add(n);
        }
        s
    }

    pub fn add(&mut self, n: i32) {
        if (1..=MAX_SIGNAL).contains(&n) {
            self.0 |= 1u64 << (n - 1);
        }
    }

    pub fn contains(self, n: i32) -> bool {
        (1..=MAX_SIGNAL).contains(&n) && self.0 & (1u64 << (n - 1)) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = i32> {
        (1..=MAX_SIGNAL).filter(move |&n| self.contains(n))
    }
}

/// SIGRTMIN..=SIGRTMAX as this C library defines them (musl: 35..=64,
/// glibc: 34..=64; the ones below are the library's own).
pub fn realtime() -> std::ops::RangeInclusive<i32> {
    libc::SIGRTMIN()..=libc::SIGRTMAX()
}

static CAPTURED: AtomicBool = AtomicBool::new(false);
static INHERITED_IGNORED: AtomicU64 = AtomicU64::new(0);
static INHERITED_BLOCKED: AtomicU64 = AtomicU64::new(0);

/// The signal state this process was started with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inherited {
    /// Signals whose disposition was SIG_IGN.
    pub ignored: Sigs,
    /// The blocked mask.
    pub blocked: Sigs,
}

/// What this process inherited, read before `main`; `None` if the reading
/// did not run (it always does on Linux with glibc or musl).
pub fn inherited() -> Option<Inherited> {
    if !CAPTURED.load(Ordering::Acquire) {
        return None;
    }
    Some(Inherited {
        ignored: Sigs(INHERITED_IGNORED.load(Ordering::Relaxed)),
        blocked: Sigs(INHERITED_BLOCKED.load(Ordering::Relaxed)),
    })
}

/// Whether signal `n` is ignored (SIG_IGN) now; `None` when the C library
/// refuses the number.
fn is_ignored(n: i32) -> Option<bool> {
    // SAFETY: sigaction is plain data; the kernel fills it in below.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries; `old` is valid and writable.
    if unsafe { libc::sigaction(n, std::ptr::null(), &mut old) } != 0 {
        return None;
    }
    Some(old.sa_sigaction == libc::SIG_IGN)
}

/// The calling thread's blocked mask, straight from the kernel (the C
/// library hides the numbers it reserves).
fn kernel_mask() -> Option<u64> {
    let mut old: u64 = 0;
    // SAFETY: a null new set only reads the mask; `old` is 8 writable bytes,
    // the size passed, which is the kernel's sigset size on Linux.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            std::ptr::null::<u64>(),
            &mut old as *mut u64,
            8usize,
        )
    };
    (r == 0).then_some(old)
}

/// Set the calling thread's blocked mask to exactly `mask`.
fn set_kernel_mask(mask: u64) -> io::Result<()> {
    // SAFETY: `mask` is 8 readable bytes, the size passed; a null old set
    // is allowed. The kernel itself never blocks SIGKILL or SIGSTOP.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Runs before `main` (and so before Rust's runtime ignores SIGPIPE): only
/// queries, no allocation, nothing that needs the runtime.
extern "C" fn capture_inherited() {
    let mut ignored = Sigs(0);
    for n in 1..=MAX_SIGNAL {
        if is_ignored(n) == Some(true) {
            ignored.add(n);
        }
    }
    let Some(blocked) = kernel_mask() else {
        return;
    };
    INHERITED_IGNORED.store(ignored.0, Ordering::Relaxed);
    INHERITED_BLOCKED.store(blocked, Ordering::Relaxed);
    CAPTURED.store(true, Ordering::Release);
}

// The C library runs every function in .init_array before `main` (glibc and
// musl, static or dynamic); `#[used]` keeps the entry through LTO, and rustc
// passes used statics of rlibs to the linker so it is not dropped there.
#[used]
#[link_section = ".init_array"]
static CAPTURE_INHERITED: extern "C" fn() = capture_inherited;

/// Signals this process set to SIG_IGN itself (`ignore`), besides SIGPIPE,
/// which Rust's runtime ignores.
static IGNORED_HERE: AtomicU64 = AtomicU64::new(0);

/// Put the signal state back to what this process inherited, for the
/// program about to be exec'd: each signal ignored then is ignored (a
/// handler installed meanwhile would become the default across exec), each
/// one ignored since (SIGPIPE by Rust's runtime, SIGTTIN and SIGTTOU by
/// `--init`) goes back to its default, and the blocked mask is the inherited
/// one. Other handlers need nothing: exec resets them to the default.
/// Without the inherited state (not read): nothing blocked and SIGPIPE at
/// its default.
pub fn restore_inherited() -> io::Result<()> {
    let Some(inh) = inherited() else {
        set_kernel_mask(0)?;
        return set_disposition(libc::SIGPIPE, libc::SIG_DFL);
    };
    for n in inh.ignored.iter() {
        if n != libc::SIGKILL && n != libc::SIGSTOP && usable(n) {
            set_disposition(n, libc::SIG_IGN)?;
        }
    }
    let mut since = Sigs(IGNORED_HERE.load(Ordering::Relaxed));
    since.add(libc::SIGPIPE);
    for n in since.iter().filter(|&n| !inh.ignored.contains(n)) {
        set_disposition(n, libc::SIG_DFL)?;
    }
    set_kernel_mask(inh.blocked.0)
}

fn set_disposition(n: i32, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: sigaction is plain data; zeroed means no flags and an empty mask.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = handler;
    // SAFETY: SIG_IGN and SIG_DFL run no code of ours; `act` is valid.
    if unsafe { libc::sigaction(n, &act, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ignore each of `sigs` in this process.
pub fn ignore(sigs: &[i32]) -> io::Result<()> {
    for &n in sigs {
        IGNORED_HERE.fetch_or(Sigs::of(&[n]).0, Ordering::Relaxed);
        set_disposition(n, libc::SIG_IGN)?;
    }
    Ok(())
}

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

/// Block `sigs` in the calling thread: every number 1..=64, real-time ones
/// and those the C library keeps for itself (musl: 32-34, glibc: 32-33)
/// included, which its sigset functions refuse, so the kernel's call is
/// made directly.
pub fn block(sigs: &[i32]) -> io::Result<()> {
    let mut mask = kernel_mask().ok_or_else(io::Error::last_os_error)?;
    mask |= Sigs::of(sigs).0;
    set_kernel_mask(mask)
}

/// Whether the C library lets a program use signal `n` (sigaction refuses
/// the ones it keeps for itself).
pub fn usable(n: i32) -> bool {
    (1..32).contains(&n) || realtime().contains(&n)
}

/// The name of signal `n` without the SIG prefix ("TERM", "RTMIN+3"), or its
/// number.
pub fn name(n: i32) -> String {
    if let Ok(s) = Signal::try_from(n) {
        return s.as_str().trim_start_matches("SIG").to_string();
    }
    if realtime().contains(&n) {
        return format!("RTMIN+{}", n - libc::SIGRTMIN());
    }
    n.to_string()
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

/// Install a handler that does nothing for each of `sigs` (real-time ones
/// included). An init that takes its signals with sigwait/sigtimedwait
/// needs this too: the kernel shows only installed handlers in
/// /proc/PID/status (SigCgt), and tools such as `healthcheck --kill-pid1`
/// read SigCgt to know whether a signal to PID 1 would be dropped; and a
/// signal inherited as ignored would be discarded before it could be taken
/// (SIGCHLD ignored would even make the kernel reap children by itself).
/// While the signals stay blocked the handler never runs; sigtimedwait
/// still takes them.
pub fn install_noop_handlers(sigs: &[i32]) -> io::Result<()> {
    // SAFETY: sigaction is plain data; zeroed means no flags, empty mask.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = ignore_delivery as extern "C" fn(libc::c_int) as libc::sighandler_t;
    act.sa_flags = libc::SA_RESTART;
    for &n in sigs {
        // SAFETY: the handler is an empty extern "C" function: it touches no
        // state, so it is async-signal-safe whenever it might run; `act` is
        // a valid sigaction.
        if unsafe { libc::sigaction(n, &act, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
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
        assert_eq!(name(libc::SIGRTMIN() + 3), "RTMIN+3");
    }

    #[test]
    fn sets_hold_real_time_signals() {
        let s = Sigs::of(&[1, 15, 64, 0, 65]);
        assert_eq!(s.0, 1 | 1 << 14 | 1 << 63);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![1, 15, 64]);
        assert!(usable(libc::SIGRTMAX()) && usable(libc::SIGTERM) && !usable(32) && !usable(65));
    }

    #[test]
    fn the_inherited_state_was_read_before_main() {
        // The test harness is a Rust program too: by now its runtime has
        // ignored SIGPIPE, yet the reading says what the parent gave us.
        let inh = inherited().expect("the .init_array entry ran");
        assert_eq!(is_ignored(libc::SIGPIPE), Some(true));
        // cargo (std's Command) starts the test binary with SIGPIPE at its
        // default.
        assert!(!inh.ignored.contains(libc::SIGPIPE), "{inh:?}");
    }
}
