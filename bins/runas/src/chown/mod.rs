//! `--chown PATH`: give a directory tree to the target user, safely and fast.
//!
//! Safety: every step is relative to an open directory fd and never follows
//! a symlink (directories are opened O_NOFOLLOW|O_DIRECTORY, entries are
//! looked at with AT_SYMLINK_NOFOLLOW, a link is changed itself). A name
//! must not be swapped between the look and the change (for a hard link to
//! /etc/shadow, say): in a directory only root may change ("sealed": root's,
//! not group- or other-writable) nobody can, so an entry there is looked at
//! and changed by name; another uid's directory that needs a change anyway
//! is made root's first, and every directory gets its new owner only once
//! its entries are done. Elsewhere an entry is changed through an O_PATH
//! handle on the inode that was looked at. Other filesystems,
//! multiply-linked files and device nodes are left alone unless asked for.
//!
//! Directories root may not read (root without CAP_DAC_OVERRIDE and
//! CAP_DAC_READ_SEARCH, a directory mode 0700 of the service's) are opened
//! and looked into with the owner's filesystem ids (setfsuid, per thread);
//! every change is made with the fsuid back at root, which CAP_CHOWN needs.
//!
//! Speed: only entries whose owner differs are changed. An entry costs one
//! fstatat when it is correct and one fchownat more when it is not (chown
//! -R makes one call per entry; two threads on two cores make up for it).
//! In a directory that is not sealed, once an entry needed a change the next
//! are opened (O_PATH) first and looked at through the handle. Threads (as
//! many as there are cores, at most 4) each walk depth first with their own
//! stack of directories (see dirstack: memory linear in depth, a bounded
//! number of descriptors) and hand a directory to the shared queue only
//! while the queue is short.
//!
//! This file is the walk: the threads, the queue, and what is decided for
//! each entry. `Stats` (in stats.rs) is what a walk reports.

mod stats;

pub use stats::Stats;

use crate::dirstack::{sealed, Frame, Ids, Lost, Node, Stack};
use dockhand::out;
use dockhand::sys::fs::{self, DT_DIR};
use dockhand::sys::privs;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// How to walk.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Descend into (and change) other mounts inside PATH (other
    /// filesystems, and bind mounts of PATH's own).
    pub cross_mounts: bool,
    /// Change non-directories that have more than one hard link.
    pub hardlinks: bool,
    /// Change character and block device nodes.
    pub devices: bool,
    /// Worker threads (1 or more).
    pub threads: usize,
}

impl Options {
    /// One per CPU this process may run on (its affinity mask and cgroup
    /// quota: `docker run --cpus 1` gives one), at most 4.
    pub fn threads_for_this_machine() -> usize {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4)
    }
}

/// Warnings printed per PATH before they are only counted.
const MAX_WARNINGS: usize = 20;
/// Directory descriptors a walker thread keeps open, whatever the depth
/// (with at most 4 threads, a queue of at most 2 per thread and a few
/// handles in use, runas stays under 64 descriptors).
const FDS_PER_THREAD: usize = 10;

/// A directory handed to whichever thread is idle.
struct Job {
    node: Arc<Node>,
    fd: OwnedFd,
    stat: fs::Stat,
    inside: Option<Ids>,
    pending: bool,
}

/// A subdirectory found, opened and entered.
struct Child {
    fd: OwnedFd,
    stat: fs::Stat,
    inside: Option<Ids>,
    /// Its own owner differs: change it once its entries are done.
    pending: bool,
}

#[derive(Default)]
struct Queue {
    jobs: Vec<Job>,
    idle: usize,
    done: bool,
}

struct Walk<'a> {
    uid: u32,
    gid: u32,
    /// PATH as given, for messages.
    path: &'a Path,
    /// The PATH itself: entries on another mount are left alone.
    top: fs::Stat,
    /// This process's own filesystem ids: no use switching to them.
    me: Ids,
    opts: Options,
    queue: Mutex<Queue>,
    cv: Condvar,
    queued: AtomicUsize,
    warned: AtomicUsize,
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// Run `f` with the filesystem ids `ids` (None: as this thread is).
fn as_ids<T>(ids: Option<Ids>, f: impl Fn() -> io::Result<T>) -> io::Result<T> {
    match ids {
        None => f(),
        Some((u, g)) => privs::with_fs_ids(u, g, f)?,
    }
}

impl Walk<'_> {
    fn warn(&self, msg: impl FnOnce() -> String) {
        if self.warned.fetch_add(1, Ordering::Relaxed) < MAX_WARNINGS {
            out::warn(crate::TOOL, &msg());
        }
    }

    fn shown(&self, node: &Node, name: Option<&CStr>) -> String {
        let mut p = node.path(self.path);
        if let Some(n) = name {
            p = fs::join(&p, n);
        }
        out::escape_path(&p).into_owned()
    }

    fn error(&self, st: &mut Stats, node: &Node, name: Option<&CStr>, what: &str, e: io::Error) {
        st.errors += 1;
        let hint = if errno(&e) == libc::EACCES {
            " (even as its owner: root needs CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH here)"
        } else {
            ""
        };
        self.warn(|| format!("{}: cannot {what}: {e}{hint}", self.shown(node, name)));
    }

    fn owned(&self, s: &fs::Stat) -> bool {
        s.uid == self.uid && s.gid == self.gid
    }

    /// `f`, a lookup of a name in `dir`, with the identity names in `dir`
    /// are looked up with; when refused, learn that identity (the owner of
    /// `dir`, as it is now) and try once more.
    fn lookup<T>(
        &self,
        dir: BorrowedFd<'_>,
        inside: &mut Option<Ids>,
        f: impl Fn() -> io::Result<T>,
    ) -> io::Result<T> {
        match as_ids(*inside, &f) {
            Err(e) if errno(&e) == libc::EACCES => {
                let s = fs::fstat(dir)?;
                let ids = (s.uid, s.gid);
                if Some(ids) == *inside || (inside.is_none() && ids == self.me) {
                    return Err(e);
                }
                *inside = (ids != self.me).then_some(ids);
                as_ids(*inside, &f)
            }
            r => r,
        }
    }

    /// Open the subdirectory `name` of `dir` for reading. When root may not
    /// read it, look it up (O_PATH) as for any name in `dir`, then open it
    /// through that handle as its owner. Returns what it found out: its
    /// status when it had to look, and the identity it was opened with.
    fn open_dir(
        &self,
        dir: BorrowedFd<'_>,
        inside: &mut Option<Ids>,
        name: &CStr,
    ) -> io::Result<(OwnedFd, Option<fs::Stat>, Option<Ids>)> {
        match self.lookup(dir, inside, || fs::open_dir_at(dir, name)) {
            Err(e) if errno(&e) == libc::EACCES => {
                let h = self.lookup(dir, inside, || fs::open_dir_handle_at(dir, name))?;
                let s = fs::fstat(h.as_fd())?;
                let (fd, ids) = self.open_handle(h.as_fd(), &s)?;
                Ok((fd, Some(s), ids))
            }
            r => r.map(|fd| (fd, None, None)),
        }
    }

    /// Open the directory an O_PATH handle `h` (with status `s`) pins, as
    /// this thread or else as its owner.
    fn open_handle(&self, h: BorrowedFd<'_>, s: &fs::Stat) -> io::Result<(OwnedFd, Option<Ids>)> {
        match fs::open_dir_handle(h) {
            Err(e) if errno(&e) == libc::EACCES && (s.uid, s.gid) != self.me => {
                let ids = (s.uid, s.gid);
                as_ids(Some(ids), || fs::open_dir_handle(h)).map(|fd| (fd, Some(ids)))
            }
            r => r.map(|fd| (fd, None)),
        }
    }

    /// Reopen a level of a stack by name (see dirstack).
    fn reopen(
        &self,
        dir: BorrowedFd<'_>,
        inside: &mut Option<Ids>,
        name: &CStr,
    ) -> io::Result<(OwnedFd, fs::Stat)> {
        let (fd, s, _) = self.open_dir(dir, inside, name)?;
        let s = match s {
            Some(s) => s,
            None => fs::fstat(fd.as_fd())?,
        };
        Ok((fd, s))
    }

    /// A directory just opened (with its status if already known): count
    /// it and return it to be walked unless it is on another mount. It is
    /// changed itself only after its entries (`finish`): while root owns it,
    /// nobody else can swap its names under the walk.
    fn enter(
        &self,
        fd: OwnedFd,
        s: Option<fs::Stat>,
        opened_as: Option<Ids>,
        st: &mut Stats,
        node: &Node,
        name: Option<&CStr>,
    ) -> Option<Child> {
        let s = match s {
            Some(s) => s,
            None => match fs::fstat(fd.as_fd()) {
                Ok(s) => s,
                Err(e) => {
                    self.error(st, node, name, "stat", e);
                    return None;
                }
            },
        };
        st.seen += 1;
        if s.other_mount(&self.top) && !self.opts.cross_mounts {
            st.other_fs += 1;
            return None;
        }
        let pending = !self.owned(&s);
        let mut inside = opened_as.filter(|&o| o != self.me);
        let mut s = s;
        if pending && !sealed(&s) && s.mode & 0o022 == 0 && s.mode & 0o100 != 0 {
            // Another uid's directory that will change anyway: make it root's
            // first, so that nobody else can swap its names while they are
            // changed by name; it gets its new owner in `finish`. Looked at
            // again afterwards: the old owner may have changed its mode.
            let now = fs::chown_fd(fd.as_fd(), 0, 0).and_then(|()| fs::fstat(fd.as_fd()));
            match now {
                Ok(n) => {
                    s = n;
                    inside = None;
                }
                Err(e) => self.error(st, node, name, "change owner of", e),
            }
        }
        Some(Child {
            fd,
            stat: s,
            // Opened as its owner: look inside as its owner.
            inside,
            pending,
        })
    }

    /// A directory whose entries are done: change it if it differs.
    fn finish(&self, f: Frame, st: &mut Stats) {
        if !f.pending {
            return;
        }
        let Some(fd) = f.fd else { return };
        match fs::chown_fd(fd.as_fd(), self.uid, self.gid) {
            Ok(()) => st.changed += 1,
            Err(e) => self.error(st, &f.node, None, "change owner of", e),
        }
    }

    /// One directory entry. Returns a subdirectory to walk.
    #[allow(clippy::too_many_arguments)]
    fn visit(
        &self,
        dir: BorrowedFd<'_>,
        inside: &mut Option<Ids>,
        changing: &mut bool,
        sealed: bool,
        node: &Node,
        name: &CStr,
        d_type: u8,
        st: &mut Stats,
    ) -> Option<Child> {
        let raced_or = |st: &mut Stats, e: io::Error, what: &str, also: &[i32]| {
            if errno(&e) == libc::ENOENT || also.contains(&errno(&e)) {
                st.raced += 1;
            } else {
                self.error(st, node, Some(name), what, e);
            }
        };
        if d_type == DT_DIR {
            match self.open_dir(dir, inside, name) {
                Ok((fd, s, ids)) => return self.enter(fd, s, ids, st, node, Some(name)),
                // Replaced by a link or a file since it was listed: look again.
                Err(e) if matches!(errno(&e), libc::ELOOP | libc::ENOTDIR) => {}
                Err(e) => {
                    raced_or(st, e, "open", &[]);
                    return None;
                }
            }
        }
        // In a sealed directory (only root may change it) a name cannot be
        // swapped: look by name and change by name, two calls, as fast as
        // chown -R's one per entry on two cores. Elsewhere a handle first
        // where the last entry needed a change (most will), else the cheaper
        // look by name (most will need nothing) and a handle if it differs.
        let (h, s) = if *changing && !sealed {
            let h = match self.lookup(dir, inside, || fs::open_path_at(dir, name)) {
                Ok(h) => h,
                Err(e) => {
                    raced_or(st, e, "open", &[]);
                    return None;
                }
            };
            match fs::fstat(h.as_fd()) {
                Ok(s) => (Some(h), s),
                Err(e) => {
                    self.error(st, node, Some(name), "stat", e);
                    return None;
                }
            }
        } else {
            match self.lookup(dir, inside, || fs::lstat_at(dir, name)) {
                Ok(s) => (None, s),
                Err(e) => {
                    raced_or(st, e, "stat", &[]);
                    return None;
                }
            }
        };
        if s.is_dir() {
            let opened = match &h {
                Some(h) => self
                    .open_handle(h.as_fd(), &s)
                    .map(|(fd, ids)| (fd, Some(s), ids)),
                None => self.open_dir(dir, inside, name),
            };
            return match opened {
                Ok((fd, s2, ids)) => self.enter(fd, s2, ids, st, node, Some(name)),
                Err(e) => {
                    raced_or(st, e, "open", &[libc::ELOOP, libc::ENOTDIR]);
                    None
                }
            };
        }
        st.seen += 1;
        if s.other_mount(&self.top) && !self.opts.cross_mounts {
            st.other_fs += 1;
            return None;
        }
        *changing = !self.owned(&s);
        if !*changing || !self.may_change(st, &s, node, name) {
            return None;
        }
        if sealed && h.is_none() {
            match fs::chown_at(dir, name, self.uid, self.gid) {
                Ok(()) => st.changed += 1,
                Err(e) => raced_or(st, e, "change owner of", &[]),
            }
            return None;
        }
        // Change it through a handle on the very inode looked at.
        let h = match h {
            Some(h) => h,
            None => {
                let h = match self.lookup(dir, inside, || fs::open_path_at(dir, name)) {
                    Ok(h) => h,
                    Err(e) => {
                        raced_or(st, e, "open", &[]);
                        return None;
                    }
                };
                let now = match fs::fstat(h.as_fd()) {
                    Ok(n) => n,
                    Err(e) => {
                        self.error(st, node, Some(name), "stat", e);
                        return None;
                    }
                };
                if !now.same_file(&s) || now.is_dir() {
                    st.raced += 1;
                    return None;
                }
                if !self.may_change(st, &now, node, name) {
                    return None;
                }
                h
            }
        };
        match fs::chown_fd(h.as_fd(), self.uid, self.gid) {
            Ok(()) => st.changed += 1,
            Err(e) => self.error(st, node, Some(name), "change owner of", e),
        }
        None
    }

    /// Whether a non-directory that differs may be changed: not a device
    /// node, not multiply linked (unless asked for); warns when not.
    fn may_change(&self, st: &mut Stats, s: &fs::Stat, node: &Node, name: &CStr) -> bool {
        if s.is_device() && !self.opts.devices {
            st.devices += 1;
            self.warn(|| {
                format!(
                    "{}: left alone: a device node (--chown-devices changes it)",
                    self.shown(node, Some(name))
                )
            });
            return false;
        }
        if s.nlink > 1 && !self.opts.hardlinks {
            st.hardlinked += 1;
            self.warn(|| {
                format!(
                    "{}: left alone: it has {} hard links (one may be a file from outside; --chown-hardlinks \
                     changes it)",
                    self.shown(node, Some(name)),
                    s.nlink
                )
            });
            return false;
        }
        true
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
        let mut stack = Stack::new(FDS_PER_THREAD);
        while let Some(job) = self.take() {
            stack.push(Frame::new(job.node, job.fd, &job.stat, job.inside, job.pending));
            while !stack.is_empty() {
                if let Err((k, lost)) = stack.reopen_top(|d, i, n| self.reopen(d, i, n)) {
                    let node = Arc::clone(&stack.frames[k].node);
                    match lost {
                        Lost::Moved => {
                            st.raced += 1;
                            self.warn(|| {
                                format!(
                                    "{}: moved or replaced during the walk; what is below it now was not looked at",
                                    self.shown(&node, None)
                                )
                            });
                        }
                        Lost::Io(e) => self.error(&mut st, &node, None, "open again", e),
                    }
                    stack.truncate(k);
                    continue;
                }
                let d = match stack.next() {
                    Ok(Some(d)) => d,
                    Ok(None) => {
                        if let Some(f) = stack.pop() {
                            self.finish(f, &mut st);
                        }
                        continue;
                    }
                    Err(e) => {
                        if let Some(f) = stack.pop() {
                            self.error(&mut st, &f.node, None, "read directory", e);
                            self.finish(f, &mut st);
                        }
                        continue;
                    }
                };
                let Some(Frame {
                    node,
                    inside,
                    changing,
                    sealed,
                    fd: Some(fd),
                    reader: Some(reader),
                    ..
                }) = stack.frames.last_mut()
                else {
                    continue;
                };
                let name = reader.name(d);
                let Some(c) = self.visit(
                    fd.as_fd(),
                    inside,
                    changing,
                    *sealed,
                    node,
                    name,
                    d.d_type,
                    &mut st,
                ) else {
                    continue;
                };
                let node = node.child(name);
                if self.opts.threads > 1 && self.queued.load(Ordering::Relaxed) < self.opts.threads {
                    self.give(Job {
                        node,
                        fd: c.fd,
                        stat: c.stat,
                        inside: c.inside,
                        pending: c.pending,
                    });
                } else {
                    stack.push(Frame::new(node, c.fd, &c.stat, c.inside, c.pending));
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
            out::warn(
                crate::TOOL,
                &format!("{}: cannot stat: {e}", out::escape_path(path)),
            );
            return st;
        }
    };
    let walk = Walk {
        uid,
        gid,
        path,
        top,
        me: (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw()),
        opts: Options {
            threads: opts.threads.max(1),
            ..opts
        },
        queue: Mutex::new(Queue::default()),
        cv: Condvar::new(),
        queued: AtomicUsize::new(0),
        warned: AtomicUsize::new(0),
    };
    let node = Node::root();
    let Some(c) = walk.enter(root, Some(top), None, &mut st, &node, None) else {
        return st;
    };
    walk.give(Job {
        node,
        fd: c.fd,
        stat: c.stat,
        inside: c.inside,
        pending: c.pending,
    });
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
            &format!("{}: {extra} more warnings not shown", out::escape_path(path)),
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
                out::warn(
                    crate::TOOL,
                    &format!("{}: cannot create: {e}", out::escape_path(path)),
                );
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
mod tests;
