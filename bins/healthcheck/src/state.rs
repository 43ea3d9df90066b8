//! The small state file that counts consecutive failures (and, for
//! --successes, consecutive successes) between probes.
//!
//! Each probe is a separate process, and Docker may start one while another
//! still runs, so every update holds an exclusive flock on the file, and
//! replaces it atomically (`dockhand::sys::atomic`: a random temporary
//! created with O_EXCL|O_NOFOLLOW, renamed over it). A waiter that locked a
//! file which was renamed away meanwhile notices (the name now points to
//! another inode) and locks the new one.
//!
//! /tmp is shared, so nothing found there is trusted. The default file lives
//! in a private directory, /tmp/dockhand-<euid> (0700, ours). Whatever sits at
//! the state path that is not a regular file of ours with one link (a
//! symlink, a FIFO, a directory, someone else's file) is set aside under a
//! random name with a warning: never opened through, written through or
//! waited on, and counting goes on in a new file.

use dockhand::sys::atomic;
use dockhand::sys::fs::{self, Stat};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What is kept between probes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Consecutive failures counted so far.
    pub failures: u32,
    /// Start time of PID 1 (clock ticks since boot) when they were counted:
    /// a restarted container (same /tmp, new PID 1) starts again from zero.
    pub pid1_start: Option<u64>,
    /// Consecutive successes counted so far (written only when not 0, so a
    /// file of a probe without --successes reads as before).
    pub successes: u32,
    /// The signal a probe sent to that PID 1 in this run of failures: the
    /// next probes do not send it again.
    pub signalled: Option<i32>,
}

impl State {
    /// `failures=3 pid1=142465 signalled=15`, `failures=0 successes=2`
    pub fn format(&self) -> String {
        let mut s = format!("failures={}", self.failures);
        if self.successes != 0 {
            s.push_str(&format!(" successes={}", self.successes));
        }
        if let Some(t) = self.pid1_start {
            s.push_str(&format!(" pid1={t}"));
        }
        if let Some(n) = self.signalled {
            s.push_str(&format!(" signalled={n}"));
        }
        s.push('\n');
        s
    }

    /// The inverse of `format`; `None` for anything else.
    pub fn parse(text: &str) -> Option<State> {
        let mut st = State::default();
        let mut seen = false;
        for word in text.split_whitespace() {
            let (k, v) = word.split_once('=')?;
            let digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
            match k {
                "failures" if digits && !seen => {
                    st.failures = v.parse().ok()?;
                    seen = true;
                }
                "pid1" if digits && st.pid1_start.is_none() => st.pid1_start = Some(v.parse().ok()?),
                "successes" if digits && seen && st.successes == 0 => st.successes = v.parse().ok()?,
                "signalled" if digits && st.signalled.is_none() => {
                    st.signalled = Some(v.parse().ok().filter(|n| (1..=64).contains(n))?)
                }
                _ => return None,
            }
        }
        seen.then_some(st)
    }
}

/// The private directory of this effective user for default state files.
pub fn private_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/dockhand-{}", nix::unistd::geteuid().as_raw()))
}

/// The default state file for a target: one per target, in `private_dir()`
/// (a tmpfs /tmp works on a read-only root).
pub fn default_path(key: &str) -> PathBuf {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    private_dir().join(format!("healthcheck-{h:016x}.state"))
}

/// Entries set aside in one update before giving up: someone keeps
/// planting them faster than we move them.
const MAX_ASIDE: usize = 8;

/// An error for a one-line message: lower case, without "(os error N)".
fn plain(e: impl std::fmt::Display) -> String {
    dockhand::error::without_errno(&e.to_string()).to_lowercase()
}

fn err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("state file {}: {}", path.display(), plain(e))
}

/// Why `st` is not ours to use, or None when it is.
fn planted(st: &Stat, me: u32, want_dir: bool) -> Option<String> {
    let kind = match st.mode & libc::S_IFMT {
        libc::S_IFREG if !want_dir => None,
        libc::S_IFDIR if want_dir => None,
        libc::S_IFREG => Some("a file"),
        libc::S_IFLNK => Some("a symbolic link"),
        libc::S_IFIFO => Some("a FIFO"),
        libc::S_IFDIR => Some("a directory"),
        libc::S_IFSOCK => Some("a socket"),
        _ => Some("a device"),
    };
    if let Some(k) = kind {
        return Some(format!("was {k}"));
    }
    if st.uid != me {
        return Some(format!("was owned by uid {}", st.uid));
    }
    if !want_dir && st.nlink != 1 {
        return Some(format!("had {} hard links", st.nlink));
    }
    None
}

/// Move a planted `name` in `dir` out of the way and say so (the caller
/// puts "state file" or "state directory" in front, of either). None when
/// it is gone already: a concurrent probe moved it.
fn set_aside(dir: BorrowedFd<'_>, name: &CStr, shown: &Path, why: &str) -> Result<Option<String>, String> {
    let aside = match atomic::set_aside_at(dir, name) {
        Ok(a) => a,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => {
            return Err(format!(
                "{}: {why} and cannot be set aside: {}; pass --state FILE",
                shown.display(),
                plain(e)
            ))
        }
    };
    let aside = shown.with_file_name(std::ffi::OsStr::from_bytes(aside.to_bytes()));
    Ok(Some(format!(
        "{} {why}; set aside as {}",
        shown.display(),
        aside.display()
    )))
}

/// Open (creating it) the private directory: a directory of ours, 0700.
/// Anything else at its name is set aside; when that is not allowed (not
/// root, someone else's entry in a sticky /tmp) nothing is counted.
fn open_private(dir: &Path, warnings: &mut Vec<String>) -> Result<OwnedFd, String> {
    let derr = |e: &dyn std::fmt::Display| format!("state directory {}: {}", dir.display(), plain(e));
    let me = nix::unistd::geteuid().as_raw();
    let (tmp, name) = atomic::parent_of(dir).map_err(|e| derr(&e))?;
    for _ in 0..MAX_ASIDE {
        match nix::sys::stat::mkdirat(tmp.as_fd(), name.as_c_str(), Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(derr(&io::Error::from(e))),
        }
        let st = match fs::lstat_at(tmp.as_fd(), &name) {
            Ok(st) => st,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(derr(&e)),
        };
        if let Some(why) = planted(&st, me, true) {
            let w = set_aside(tmp.as_fd(), &name, dir, &why).map_err(|e| format!("state directory {e}"))?;
            warnings.extend(w.map(|w| format!("state directory {w}")));
            continue;
        }
        let fd = match fs::open_dir_at(tmp.as_fd(), &name) {
            Ok(fd) => fd,
            // Replaced between the look and the open: look again.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR | libc::ENOENT)) => {
                continue
            }
            Err(e) => return Err(derr(&e)),
        };
        let held = fs::fstat(fd.as_fd()).map_err(|e| derr(&e))?;
        if !held.same_file(&st) {
            continue;
        }
        if held.mode & 0o077 != 0 {
            // Ours, but others could write in it: what they may have put
            // there is checked file by file; from now on they cannot.
            fs::chmod_fd(fd.as_fd(), 0o700).map_err(|e| derr(&e))?;
        }
        return Ok(fd);
    }
    Err(derr(&"keeps being replaced; pass --state FILE"))
}

/// The directory to work in and the file name in it.
fn open_dir(path: &Path, warnings: &mut Vec<String>) -> Result<(OwnedFd, CString), String> {
    let private = private_dir();
    match (path.parent(), path.file_name()) {
        (Some(p), Some(name)) if p == private => {
            let name = CString::new(name.as_bytes()).map_err(|_| err(path, "contains a NUL byte"))?;
            Ok((open_private(&private, warnings)?, name))
        }
        _ => atomic::parent_of(path).map_err(|e| err(path, e)),
    }
}

const OPEN_FLAGS: OFlag = OFlag::O_RDWR
    .union(OFlag::O_CREAT)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_NONBLOCK)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_NOCTTY);

/// Lock the file `name` in `dir` (creating it), making sure the lock is on
/// the file the name points to now. Waits for other probes until `deadline`.
fn lock(
    dir: BorrowedFd<'_>,
    name: &CStr,
    path: &Path,
    deadline: Instant,
    warnings: &mut Vec<String>,
) -> Result<Flock<File>, String> {
    let me = nix::unistd::geteuid().as_raw();
    let mut asides = 0;
    loop {
        if Instant::now() >= deadline {
            return Err(err(path, "timed out waiting for its lock"));
        }
        // Look before opening: opening a device can have side effects.
        match fs::lstat_at(dir, name) {
            // A file with no links left was replaced by a concurrent probe's
            // rename between the name's lookup and the stat (seen under
            // gVisor): not planted, look again.
            Ok(st) if st.nlink == 0 && st.mode & libc::S_IFMT == libc::S_IFREG => {
                std::thread::yield_now();
                continue;
            }
            Ok(st) => {
                if let Some(why) = planted(&st, me, false) {
                    asides += 1;
                    if asides > MAX_ASIDE {
                        return Err(err(
                            path,
                            "keeps being replaced by something that is not a state file",
                        ));
                    }
                    let w = set_aside(dir, name, path, &why).map_err(|e| format!("state file {e}"))?;
                    warnings.extend(w.map(|w| format!("state file {w}")));
                    continue;
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(err(path, e)),
        }
        let mut f = match nix::fcntl::openat(dir, name, OPEN_FLAGS, Mode::from_bits_truncate(0o600)) {
            Ok(fd) => File::from(fd),
            // Planted between the look and the open: look again.
            Err(Errno::ELOOP | Errno::EISDIR | Errno::ENXIO) => continue,
            Err(e) => return Err(err(path, io::Error::from(e))),
        };
        let locked = loop {
            match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Ok(l) => break l,
                Err((back, Errno::EWOULDBLOCK)) | Err((back, Errno::EINTR)) => {
                    if Instant::now() >= deadline {
                        return Err(err(path, "timed out waiting for its lock"));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                    f = back;
                }
                Err((_, e)) => return Err(err(path, e.desc())),
            }
        };
        let held = fs::fstat(locked.as_fd()).map_err(|e| err(path, e))?;
        if planted(&held, me, false).is_some() {
            // Swapped in after the look; the next look sets it aside.
            continue;
        }
        match fs::lstat_at(dir, name) {
            Ok(now) if now.same_file(&held) => return Ok(locked),
            // Replaced or removed while we waited: lock the current one.
            _ => continue,
        }
    }
}

/// What `update` saw and did.
#[derive(Debug)]
pub struct Updated {
    pub state: State,
    /// Set, as one line, when something other than a state file was found
    /// and set aside, or the old file was unreadable or corrupt and recreated.
    pub warning: Option<String>,
}

/// Read the state under the lock, let `f` compute the next one from it
/// (`None`: no usable previous state), and replace the file if it changed.
pub fn update(
    path: &Path,
    deadline: Instant,
    f: impl FnOnce(Option<State>) -> State,
) -> Result<Updated, String> {
    let mut warnings = Vec::new();
    let (dir, name) = open_dir(path, &mut warnings)?;
    let mut locked = lock(dir.as_fd(), &name, path, deadline, &mut warnings)?;
    let mut bytes = Vec::new();
    let mut rewrite = !warnings.is_empty();
    let old = match (&mut *locked).take(4096).read_to_end(&mut bytes) {
        Ok(_) if bytes.is_empty() => None,
        Ok(_) => match std::str::from_utf8(&bytes).ok().and_then(State::parse) {
            Some(s) => Some(s),
            None => {
                warnings.push(format!("state file {} was corrupt; recreated", path.display()));
                rewrite = true;
                None
            }
        },
        Err(e) => {
            warnings.push(format!("{} (unreadable); recreated", err(path, e)));
            rewrite = true;
            None
        }
    };
    let new = f(old);
    if old != Some(new) || rewrite {
        // No fsync: the count is worth nothing after a reboot (a new PID 1
        // resets it anyway), and probes run every few seconds.
        atomic::write_at(dir.as_fd(), &name, new.format().as_bytes(), 0o600, false)
            .map_err(|e| err(path, e))?;
    }
    drop(locked);
    let warning = (!warnings.is_empty()).then(|| warnings.join("; "));
    Ok(Updated { state: new, warning })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hc-state-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn format_round_trips_and_garbage_is_rejected() {
        for s in [
            State {
                failures: 3,
                pid1_start: Some(142465),
                successes: 0,
                signalled: None,
            },
            State {
                failures: 0,
                pid1_start: None,
                successes: 4,
                signalled: None,
            },
            State {
                failures: 4,
                pid1_start: Some(7),
                successes: 0,
                signalled: Some(15),
            },
        ] {
            assert_eq!(State::parse(&s.format()), Some(s));
        }
        for bad in [
            "",
            "x",
            "failures=",
            "failures=-1",
            "failures=1 failures=2",
            "pid1=3",
            "failures=1 z=2",
            "successes=2",
            "failures=0 successes=1 successes=2",
            "failures=1 signalled=0",
            "failures=1 signalled=65",
            "failures=1 signalled=15 signalled=15",
        ] {
            assert_eq!(State::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn default_path_is_per_target() {
        let a = default_path("http://127.0.0.1:8000/health");
        assert_eq!(a, default_path("http://127.0.0.1:8000/health"));
        assert_ne!(a, default_path("http://127.0.0.1:8001/health"));
        assert!(a.starts_with("/tmp") && a.to_string_lossy().ends_with(".state"));
        assert_eq!(a.parent(), Some(private_dir().as_path()));
    }

    #[test]
    fn update_counts_and_recreates_corrupt_files() {
        let d = dir("upd");
        let p = d.join("s");
        let soon = || Instant::now() + Duration::from_secs(2);
        let inc = |o: Option<State>| State {
            failures: o.map_or(0, |s| s.failures) + 1,
            pid1_start: None,
            ..State::default()
        };
        assert_eq!(update(&p, soon(), inc).unwrap().state.failures, 1);
        assert_eq!(update(&p, soon(), inc).unwrap().state.failures, 2);
        std::fs::write(&p, "\u{0}garbage").unwrap();
        let u = update(&p, soon(), inc).unwrap();
        assert_eq!(u.state.failures, 1);
        assert!(u.warning.unwrap().contains("corrupt"));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "failures=1\n");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn symlinked_state_file_is_set_aside_not_followed() {
        let d = dir("link");
        let target = d.join("victim");
        std::fs::write(&target, "keep").unwrap();
        let p = d.join("s");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        let soon = || Instant::now() + Duration::from_secs(1);
        let r = update(&p, soon(), |_| State::default()).unwrap();
        let w = r.warning.unwrap();
        assert!(w.contains("was a symbolic link; set aside as"), "{w}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "failures=0\n");
        // The link itself is kept, moved aside.
        let aside: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|e| std::fs::symlink_metadata(e).unwrap().file_type().is_symlink())
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        assert!(w.ends_with(&aside[0].display().to_string()), "{w}");
        // Once a real file is there, no more warnings.
        assert!(update(&p, soon(), |_| State::default())
            .unwrap()
            .warning
            .is_none());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn fifos_directories_and_foreign_files_are_set_aside() {
        let d = dir("planted");
        let soon = || Instant::now() + Duration::from_secs(5);
        let inc = |o: Option<State>| State {
            failures: o.map_or(0, |s| s.failures) + 1,
            pid1_start: None,
            ..State::default()
        };
        let fifo = d.join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
        let w = update(&fifo, soon(), inc).unwrap().warning.unwrap();
        assert!(w.contains("was a FIFO; set aside"), "{w}");
        let sub = d.join("sub");
        std::fs::create_dir_all(sub.join("inner")).unwrap();
        let w = update(&sub, soon(), inc).unwrap().warning.unwrap();
        assert!(w.contains("was a directory; set aside"), "{w}");
        assert_eq!(update(&sub, soon(), inc).unwrap().state.failures, 2);
        let linked = d.join("linked");
        std::fs::write(&linked, "failures=7\n").unwrap();
        std::fs::hard_link(&linked, d.join("other")).unwrap();
        let u = update(&linked, soon(), inc).unwrap();
        assert!(u.warning.unwrap().contains("had 2 hard links"));
        assert_eq!(u.state.failures, 1);
        assert_eq!(std::fs::read_to_string(d.join("other")).unwrap(), "failures=7\n");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn parallel_updates_lose_nothing() {
        let d = dir("par");
        let p = d.join("s");
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        update(&p, Instant::now() + Duration::from_secs(10), |o| State {
                            failures: o.map_or(0, |s| s.failures) + 1,
                            pid1_start: None,
                            ..State::default()
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "failures=80\n");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
