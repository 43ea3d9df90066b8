//! `--chown PATH`: give a directory tree to the target user, safely and fast.
//!
//! Safety: every step is relative to an open directory fd and never follows
//! a symlink (directories are opened O_NOFOLLOW|O_DIRECTORY, entries are
//! looked at with AT_SYMLINK_NOFOLLOW, a link is changed itself). An entry is
//! changed through an O_PATH handle whose inode is checked against what was
//! looked at, so swapping a name for a link to /etc/shadow meanwhile changes
//! nothing. Other filesystems and multiply-linked files are left alone
//! unless asked for.
//!
//! Speed: only entries whose owner differs are changed, so a correct tree
//! costs one getdents64 per batch and one fstatat per entry. Threads (as many
//! as there are cores, at most 4) each walk depth first with their own stack
//! of open directories and hand a directory to the shared queue only while
//! the queue is short, so idle threads find work and memory stays bounded by
//! tree depth, not width.

use dockhand::duration;
use dockhand::out;
use dockhand::sys::fs::{self, DirReader, DT_DIR};
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How to walk.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Descend into (and change) other mounts inside PATH (other
    /// filesystems, and bind mounts of PATH's own).
    pub cross_mounts: bool,
    /// Change non-directories that have more than one hard link.
    pub hardlinks: bool,
    /// Worker threads (1 or more).
    pub threads: usize,
}

impl Options {
    pub fn threads_for_this_machine() -> usize {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4)
    }
}

/// What happened under one PATH.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub seen: u64,
    pub changed: u64,
    /// Non-directories with more than one hard link, left alone.
    pub hardlinked: u64,
    /// Entries on another mount, left alone (and not descended into).
    pub other_fs: u64,
    /// Entries that vanished or were replaced while being looked at.
    pub raced: u64,
    pub errors: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.seen += o.seen;
        self.changed += o.changed;
        self.hardlinked += o.hardlinked;
        self.other_fs += o.other_fs;
        self.raced += o.raced;
        self.errors += o.errors;
    }

    pub fn skipped(&self) -> u64 {
        self.hardlinked + self.other_fs + self.raced
    }

    /// The one summary line for PATH (without the tool name).
    pub fn summary(&self, path: &Path, created: bool, took: Duration) -> String {
        let mut s = format!("{}: ", path.display());
        if created {
            s.push_str("created; ");
        }
        s.push_str(&format!(
            "{} seen, {} changed, {} skipped",
            self.seen,
            self.changed,
            self.skipped()
        ));
        let why: Vec<String> = [
            (self.hardlinked, "hard-linked"),
            (self.other_fs, "on another mount"),
            (self.raced, "changed during the walk"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, w)| format!("{n} {w}"))
        .collect();
        if !why.is_empty() {
            s.push_str(&format!(" ({})", why.join(", ")));
        }
        if self.errors > 0 {
            s.push_str(&format!(", {} errors", self.errors));
        }
        s.push_str(&format!(" in {}", duration::human(took)));
        s
    }
}

/// Warnings printed per PATH before they are only counted.
const MAX_WARNINGS: usize = 20;
/// getdents64 buffer per open directory.
const BUF: usize = 16 * 1024;

struct Job {
    fd: OwnedFd,
    path: PathBuf,
}

struct Frame {
    fd: OwnedFd,
    path: PathBuf,
    reader: DirReader,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    idle: usize,
    done: bool,
}

struct Walk {
    uid: u32,
    gid: u32,
    /// The PATH itself: entries on another mount are left alone.
    top: fs::Stat,
    opts: Options,
    queue: Mutex<Queue>,
    cv: Condvar,
    queued: AtomicUsize,
    warned: AtomicUsize,
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

impl Walk {
    fn warn(&self, msg: impl FnOnce() -> String) {
        if self.warned.fetch_add(1, Ordering::Relaxed) < MAX_WARNINGS {
            out::warn(crate::TOOL, &msg());
        }
    }

    fn error(&self, st: &mut Stats, path: &Path, what: &str, e: io::Error) {
        st.errors += 1;
        let hint = if errno(&e) == libc::EACCES {
            " (root needs CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH to walk directories it does not own)"
        } else {
            ""
        };
        self.warn(|| format!("{}: cannot {what}: {e}{hint}", path.display()));
    }

    fn owned(&self, s: &fs::Stat) -> bool {
        s.uid == self.uid && s.gid == self.gid
    }

    /// A directory just opened: count it, change it if needed, and return it
    /// to be walked unless it is on another mount.
    fn enter(&self, fd: OwnedFd, path: PathBuf, st: &mut Stats) -> Option<(OwnedFd, PathBuf)> {
        let s = match fs::fstat(fd.as_fd()) {
            Ok(s) => s,
            Err(e) => {
                self.error(st, &path, "stat", e);
                return None;
            }
        };
        st.seen += 1;
        if s.other_mount(&self.top) && !self.opts.cross_mounts {
            st.other_fs += 1;
            return None;
        }
        if !self.owned(&s) {
            match fs::chown_fd(fd.as_fd(), self.uid, self.gid) {
                Ok(()) => st.changed += 1,
                Err(e) => self.error(st, &path, "change owner of", e),
            }
        }
        Some((fd, path))
    }

    /// One directory entry. Returns a subdirectory to walk.
    fn visit(
        &self,
        dir: BorrowedFd<'_>,
        dir_path: &Path,
        name: &CStr,
        d_type: u8,
        st: &mut Stats,
    ) -> Option<(OwnedFd, PathBuf)> {
        if d_type == DT_DIR {
            match fs::open_dir_at(dir, name) {
                Ok(fd) => return self.enter(fd, fs::join(dir_path, name), st),
                Err(e) if errno(&e) == libc::ENOENT => {
                    st.raced += 1;
                    return None;
                }
                // Replaced by a link or a file since it was listed: look again.
                Err(e) if matches!(errno(&e), libc::ELOOP | libc::ENOTDIR) => {}
                Err(e) => {
                    self.error(st, &fs::join(dir_path, name), "open", e);
                    return None;
                }
            }
        }
        let s = match fs::lstat_at(dir, name) {
            Ok(s) => s,
            Err(e) if errno(&e) == libc::ENOENT => {
                st.raced += 1;
                return None;
            }
            Err(e) => {
                self.error(st, &fs::join(dir_path, name), "stat", e);
                return None;
            }
        };
        if s.is_dir() {
            return match fs::open_dir_at(dir, name) {
                Ok(fd) => self.enter(fd, fs::join(dir_path, name), st),
                Err(e) if matches!(errno(&e), libc::ENOENT | libc::ELOOP | libc::ENOTDIR) => {
                    st.raced += 1;
                    None
                }
                Err(e) => {
                    self.error(st, &fs::join(dir_path, name), "open", e);
                    None
                }
            };
        }
        st.seen += 1;
        if s.other_mount(&self.top) && !self.opts.cross_mounts {
            st.other_fs += 1;
            return None;
        }
        if self.owned(&s) {
            return None;
        }
        if s.nlink > 1 && !self.opts.hardlinks {
            self.hardlinked(st, dir_path, name, s.nlink);
            return None;
        }
        // Change it through a handle on the very inode looked at above.
        let h = match fs::open_path_at(dir, name) {
            Ok(h) => h,
            Err(e) if errno(&e) == libc::ENOENT => {
                st.raced += 1;
                return None;
            }
            Err(e) => {
                self.error(st, &fs::join(dir_path, name), "open", e);
                return None;
            }
        };
        let now = match fs::fstat(h.as_fd()) {
            Ok(n) => n,
            Err(e) => {
                self.error(st, &fs::join(dir_path, name), "stat", e);
                return None;
            }
        };
        if !now.same_file(&s) || now.is_dir() {
            st.raced += 1;
            return None;
        }
        if now.nlink > 1 && !self.opts.hardlinks {
            self.hardlinked(st, dir_path, name, now.nlink);
            return None;
        }
        match fs::chown_fd(h.as_fd(), self.uid, self.gid) {
            Ok(()) => st.changed += 1,
            Err(e) => self.error(st, &fs::join(dir_path, name), "change owner of", e),
        }
        None
    }

    fn hardlinked(&self, st: &mut Stats, dir_path: &Path, name: &CStr, n: u64) {
        st.hardlinked += 1;
        self.warn(|| {
            format!(
                "{}: left alone: it has {n} hard links (one may be a file from outside; --chown-hardlinks changes it)",
                fs::join(dir_path, name).display()
            )
        });
    }

    /// Take a job from the queue, or None when every thread is out of work.
    fn take(&self) -> Option<Job> {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(j) = q.jobs.pop() {
                self.queued.store(q.jobs.len(), Ordering::Relaxed);
                return Some(j);
            }
            if q.done {
                return None;
            }
            q.idle += 1;
            if q.idle == self.opts.threads {
                q.done = true;
                self.cv.notify_all();
                return None;
            }
            q = self.cv.wait(q).unwrap_or_else(|p| p.into_inner());
            q.idle -= 1;
        }
    }

    fn give(&self, job: Job) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.jobs.push(job);
        self.queued.store(q.jobs.len(), Ordering::Relaxed);
        self.cv.notify_one();
    }

    fn worker(&self) -> Stats {
        let mut st = Stats::default();
        let mut frames: Vec<Frame> = Vec::new();
        let mut spare: Vec<DirReader> = Vec::new();
        while let Some(job) = self.take() {
            frames.push(Frame {
                fd: job.fd,
                path: job.path,
                reader: spare.pop().unwrap_or_else(|| DirReader::new(BUF)),
            });
            while let Some(top) = frames.last_mut() {
                let d = match top.reader.next(top.fd.as_fd()) {
                    Ok(Some(d)) => d,
                    Ok(None) => {
                        if let Some(mut f) = frames.pop() {
                            f.reader.reset();
                            spare.push(f.reader);
                        }
                        continue;
                    }
                    Err(e) => {
                        let path = top.path.clone();
                        self.error(&mut st, &path, "read directory", e);
                        if let Some(mut f) = frames.pop() {
                            f.reader.reset();
                            spare.push(f.reader);
                        }
                        continue;
                    }
                };
                let name = top.reader.name(d);
                let Some((fd, path)) = self.visit(top.fd.as_fd(), &top.path, name, d.d_type, &mut st) else {
                    continue;
                };
                if self.opts.threads > 1 && self.queued.load(Ordering::Relaxed) < self.opts.threads {
                    self.give(Job { fd, path });
                } else {
                    frames.push(Frame {
                        fd,
                        path,
                        reader: spare.pop().unwrap_or_else(|| DirReader::new(BUF)),
                    });
                }
            }
        }
        st
    }
}

/// Walk the directory `root` (opened from `path`) and give every entry that
/// differs to `uid`:`gid`. Warnings go to stderr; the counts come back.
pub fn chown_tree(root: OwnedFd, path: &Path, uid: u32, gid: u32, opts: Options) -> Stats {
    let mut st = Stats::default();
    let top = match fs::fstat(root.as_fd()) {
        Ok(s) => s,
        Err(e) => {
            st.errors += 1;
            out::warn(crate::TOOL, &format!("{}: cannot stat: {e}", path.display()));
            return st;
        }
    };
    let walk = Walk {
        uid,
        gid,
        top,
        opts: Options {
            threads: opts.threads.max(1),
            ..opts
        },
        queue: Mutex::new(Queue::default()),
        cv: Condvar::new(),
        queued: AtomicUsize::new(0),
        warned: AtomicUsize::new(0),
    };
    let Some((fd, p)) = walk.enter(root, path.to_path_buf(), &mut st) else {
        return st;
    };
    walk.give(Job { fd, path: p });
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for _ in 1..walk.opts.threads {
            match std::thread::Builder::new()
                .name("chown".into())
                .stack_size(256 * 1024)
                .spawn_scoped(s, || walk.worker())
            {
                Ok(h) => handles.push(h),
                // Fewer threads than planned: the others must not wait for it.
                Err(_) => {
                    let mut q = walk.queue.lock().unwrap_or_else(|p| p.into_inner());
                    q.idle += 1;
                }
            }
        }
        st.add(&walk.worker());
        for h in handles {
            match h.join() {
                Ok(s) => st.add(&s),
                Err(_) => st.errors += 1,
            }
        }
    });
    let extra = walk.warned.load(Ordering::Relaxed).saturating_sub(MAX_WARNINGS);
    if extra > 0 {
        out::warn(
            crate::TOOL,
            &format!("{}: {extra} more warnings not shown", path.display()),
        );
    }
    st
}

/// Run `--chown` for one PATH that validation found: create it if missing,
/// walk it, print its summary line. Returns the counts.
pub fn apply(found: fs::Found, path: &Path, uid: u32, gid: u32, opts: Options) -> Stats {
    let start = Instant::now();
    let (root, created) = match found {
        fs::Found::Dir(fd) => (fd, false),
        fs::Found::Missing { parent, rest } => match fs::create_dirs(parent.as_fd(), &rest, uid, gid) {
            Ok(fd) => (fd, true),
            Err(e) => {
                out::warn(crate::TOOL, &format!("{}: cannot create: {e}", path.display()));
                return Stats {
                    errors: 1,
                    ..Stats::default()
                };
            }
        },
    };
    let st = chown_tree(root, path, uid, gid, opts);
    out::warn(crate::TOOL, &st.summary(path, created, start.elapsed()));
    st
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_says_why() {
        let s = Stats {
            seen: 10,
            changed: 3,
            hardlinked: 1,
            other_fs: 2,
            raced: 0,
            errors: 0,
        };
        assert_eq!(
            s.summary(Path::new("/data"), false, Duration::from_millis(250)),
            "/data: 10 seen, 3 changed, 3 skipped (1 hard-linked, 2 on another mount) in 250ms"
        );
        let s = Stats {
            seen: 1,
            ..Stats::default()
        };
        assert_eq!(
            s.summary(Path::new("/new"), true, Duration::from_secs(1)),
            "/new: created; 1 seen, 0 changed, 0 skipped in 1s"
        );
    }

    fn tree(tag: &str, dirs: usize, files: usize) -> PathBuf {
        let p = std::env::temp_dir().join(format!("runas-walk-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        for d in 0..dirs {
            let dir = p.join(format!("d{d}")).join("inner");
            std::fs::create_dir_all(&dir).unwrap();
            for f in 0..files {
                std::fs::write(dir.join(format!("f{f}")), "").unwrap();
            }
        }
        p
    }

    fn me() -> (u32, u32) {
        (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw())
    }

    // As any user: a tree already owned by us is seen in full and unchanged,
    // with one thread or several.
    #[test]
    fn counts_every_entry_and_changes_nothing_when_owned() {
        let p = tree("count", 20, 30);
        let (u, g) = me();
        for threads in [1, 2, 4] {
            let root = match fs::open_dir_path(&p).unwrap() {
                fs::Found::Dir(fd) => fd,
                other => panic!("{other:?}"),
            };
            let opts = Options {
                cross_mounts: false,
                hardlinks: false,
                threads,
            };
            let st = chown_tree(root, &p, u, g, opts);
            // root + 20 dirs + 20 inner + 600 files
            assert_eq!(st.seen, 641, "threads={threads}");
            assert_eq!(st.changed, 0);
            assert_eq!(st.errors, 0);
        }
        std::fs::remove_dir_all(&p).unwrap();
    }
}
