//! The small state file that counts consecutive failures between probes.
//!
//! Each probe is a separate process, and Docker may start one while another
//! still runs, so every update holds an exclusive flock on the file, and
//! replaces it atomically (write a temporary file, rename it over). A waiter
//! that locked a file which was renamed away meanwhile notices (the path
//! names another inode) and locks the new one. The file is opened without
//! following symlinks and must belong to us: /tmp is shared.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
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
}

impl State {
    /// `failures=3 pid1=142465`
    pub fn format(&self) -> String {
        match self.pid1_start {
            Some(t) => format!("failures={} pid1={t}\n", self.failures),
            None => format!("failures={}\n", self.failures),
        }
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
                _ => return None,
            }
        }
        seen.then_some(st)
    }
}

/// The default state file for a target: one per target, under /tmp (a
/// tmpfs /tmp works on a read-only root).
pub fn default_path(key: &str) -> PathBuf {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    PathBuf::from(format!("/tmp/healthcheck-{h:016x}.state"))
}

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
}

fn err(path: &Path, e: impl std::fmt::Display) -> String {
    let e = e.to_string();
    let e = e.split(" (os error").next().unwrap_or(&e).to_lowercase();
    format!("state file {}: {e}", path.display())
}

/// Lock the file at `path` (creating it), making sure the lock is on the file
/// the path names now. Waits for other probes until `deadline`.
fn lock(path: &Path, deadline: Instant) -> Result<Flock<File>, String> {
    let me = nix::unistd::geteuid().as_raw();
    loop {
        let mut f = open(path).map_err(|e| err(path, e))?;
        let locked = loop {
            match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                Ok(l) => break l,
                Err((back, nix::errno::Errno::EWOULDBLOCK)) | Err((back, nix::errno::Errno::EINTR)) => {
                    if Instant::now() >= deadline {
                        return Err(err(path, "timed out waiting for its lock"));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                    f = back;
                }
                Err((_, e)) => return Err(err(path, e.desc())),
            }
        };
        let held = locked.metadata().map_err(|e| err(path, e))?;
        if !held.is_file() {
            return Err(err(path, "not a regular file"));
        }
        if held.uid() != me {
            // Someone else's file in a shared /tmp: never trust its count.
            drop(locked);
            std::fs::remove_file(path).map_err(|e| err(path, format!("owned by uid {}: {e}", held.uid())))?;
            continue;
        }
        match std::fs::symlink_metadata(path) {
            Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => return Ok(locked),
            // Replaced or removed while we waited: lock the current one.
            _ => continue,
        }
    }
}

/// What `update` saw and did.
#[derive(Debug)]
pub struct Updated {
    pub state: State,
    /// Set when the old file was unreadable or corrupt and was recreated.
    pub warning: Option<String>,
}

/// Read the state under the lock, let `f` compute the next one from it
/// (`None`: no usable previous state), and replace the file if it changed.
pub fn update(
    path: &Path,
    deadline: Instant,
    f: impl FnOnce(Option<State>) -> State,
) -> Result<Updated, String> {
    let mut locked = lock(path, deadline)?;
    let mut bytes = Vec::new();
    let mut warning = None;
    let old = match (&mut *locked).take(4096).read_to_end(&mut bytes) {
        Ok(_) if bytes.is_empty() => None,
        Ok(_) => match std::str::from_utf8(&bytes).ok().and_then(State::parse) {
            Some(s) => Some(s),
            None => {
                warning = Some(format!("state file {} was corrupt; recreated", path.display()));
                None
            }
        },
        Err(e) => {
            warning = Some(format!("{} (unreadable); recreated", err(path, e)));
            None
        }
    };
    let new = f(old);
    if old != Some(new) || warning.is_some() {
        write_atomic(path, &new.format())?;
    }
    drop(locked);
    Ok(Updated { state: new, warning })
}

/// Replace `path` with `text`: a new file beside it, renamed over it.
fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // We hold the lock, so a leftover is from a probe that died mid-write.
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(|e| err(&tmp, e))?;
    f.write_all(text.as_bytes()).map_err(|e| err(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(path, e)
    })
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
            },
            State {
                failures: 0,
                pid1_start: None,
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
    }

    #[test]
    fn update_counts_and_recreates_corrupt_files() {
        let d = dir("upd");
        let p = d.join("s");
        let soon = || Instant::now() + Duration::from_secs(2);
        let inc = |o: Option<State>| State {
            failures: o.map_or(0, |s| s.failures) + 1,
            pid1_start: None,
        };
        assert_eq!(update(&p, soon(), inc).unwrap().state.failures, 1);
        assert_eq!(update(&p, soon(), inc).unwrap().state.failures, 2);
        std::fs::write(&p, "\u{0}garbage").unwrap();
        let u = update(&p, soon(), inc).unwrap();
        assert_eq!(u.state.failures, 1);
        assert!(u.warning.unwrap().contains("corrupt"));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "failures=1\n");
        assert!(!d.join("s.tmp").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn symlinked_state_file_is_refused() {
        let d = dir("link");
        let target = d.join("victim");
        std::fs::write(&target, "keep").unwrap();
        let p = d.join("s");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        let r = update(&p, Instant::now() + Duration::from_secs(1), |_| State::default());
        assert!(r.is_err(), "{r:?}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
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
