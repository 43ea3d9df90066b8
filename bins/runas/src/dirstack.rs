//! One walker thread's stack of open directories, from the directory it was
//! handed down to the one it is reading: memory linear in depth (a name and a
//! few numbers per level, no path copies) and at most `max_open` descriptors
//! whatever the depth.
//!
//! A level whose descriptor was closed to stay within the bound is opened
//! again, by its recorded name, from the nearest level still open, and must
//! turn out to be the same directory (device and inode) as before; reading
//! resumes at the recorded position. `openat(fd, "..")` is never used: a
//! directory moved meanwhile would lead somewhere else. Which descriptors
//! stay open is chosen so that the open levels thin out geometrically below
//! the top: climbing back out of a chain N deep then costs O(N log N) opens.

use dockhand::sys::fs::{Dent, DirReader, Stat};
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A filesystem identity (uid, gid) to look up names with.
pub type Ids = (u32, u32);

/// getdents64 buffer per open directory.
const BUF: usize = 16 * 1024;

/// One name on the way down from PATH, shared by the levels below it (and by
/// directories handed to other threads): for messages and for reopening.
#[derive(Debug)]
pub struct Node {
    parent: Option<Arc<Node>>,
    name: CString,
}

impl Node {
    /// PATH itself.
    pub fn root() -> Arc<Node> {
        Arc::new(Node {
            parent: None,
            name: CString::default(),
        })
    }

    pub fn child(self: &Arc<Node>, name: &CStr) -> Arc<Node> {
        Arc::new(Node {
            parent: Some(Arc::clone(self)),
            name: name.to_owned(),
        })
    }

    /// The path of this level, PATH being `top`.
    pub fn path(&self, top: &Path) -> PathBuf {
        let mut names = Vec::new();
        let mut n = self;
        while let Some(p) = &n.parent {
            names.push(n.name.as_c_str());
            n = p;
        }
        let mut path = top.to_path_buf();
        for name in names.iter().rev() {
            path.push(std::ffi::OsStr::from_bytes(name.to_bytes()));
        }
        path
    }
}

impl Drop for Node {
    // Iteratively: dropping the last reference to a chain thousands deep
    // must not recurse once per level on a small thread stack.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(p) = next {
            next = match Arc::try_unwrap(p) {
                Ok(mut n) => n.parent.take(),
                Err(_) => None,
            };
        }
    }
}

/// Only root may add, remove or rename entries of a directory with this
/// status (root's, not writable by group or others: with an ACL the group
/// bits are its mask), and root may search it without CAP_DAC_*.
pub fn sealed(st: &Stat) -> bool {
    st.uid == 0 && st.mode & 0o022 == 0 && st.mode & 0o100 != 0
}

/// One directory on the stack.
pub struct Frame {
    pub node: Arc<Node>,
    /// What a reopened descriptor must be.
    pub dev: u64,
    pub ino: u64,
    /// The identity that names inside are looked up with (None: this
    /// thread's own), learnt when root was refused.
    pub inside: Option<Ids>,
    /// Whether the last entry looked at here needed a change (then the next
    /// one is opened before it is looked at).
    pub changing: bool,
    /// Only root may change its entries (root's, not writable by group or
    /// others): a name here cannot be swapped under the walk.
    pub sealed: bool,
    /// The directory itself is to be changed once its entries are done.
    pub pending: bool,
    pub fd: Option<OwnedFd>,
    pub reader: Option<DirReader>,
    /// Position after the last entry taken, to resume on a new descriptor.
    resume: Option<i64>,
}

impl Frame {
    pub fn new(node: Arc<Node>, fd: OwnedFd, st: &Stat, inside: Option<Ids>, pending: bool) -> Frame {
        Frame {
            node,
            dev: st.dev,
            ino: st.ino,
            inside,
            changing: pending,
            sealed: sealed(st),
            pending,
            fd: Some(fd),
            reader: None,
            resume: None,
        }
    }
}

/// Why a level could not be reopened.
pub enum Lost {
    /// Another directory (or none) is at its name now.
    Moved,
    Io(io::Error),
}

pub struct Stack {
    pub frames: Vec<Frame>,
    /// Indices of the frames with a descriptor, ascending; the first frame
    /// (handed to this thread, nothing below it to reopen it from) always.
    open: Vec<usize>,
    spare: Vec<DirReader>,
    max_open: usize,
}

impl Stack {
    pub fn new(max_open: usize) -> Stack {
        Stack {
            frames: Vec::new(),
            open: Vec::new(),
            spare: Vec::new(),
            max_open: max_open.max(2),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// A directory just opened becomes the top.
    pub fn push(&mut self, f: Frame) {
        debug_assert!(f.fd.is_some());
        self.frames.push(f);
        self.open.push(self.frames.len() - 1);
        self.trim();
    }

    /// Done with the top: it comes back with its descriptor (if it has one)
    /// for what is left to do to the directory itself.
    pub fn pop(&mut self) -> Option<Frame> {
        let mut f = self.frames.pop()?;
        if self.open.last() == Some(&self.frames.len()) {
            self.open.pop();
        }
        if let Some(mut r) = f.reader.take() {
            r.reset();
            self.spare.push(r);
        }
        Some(f)
    }

    /// Drop every frame from `k` up.
    pub fn truncate(&mut self, k: usize) {
        while self.frames.len() > k {
            self.pop();
        }
    }

    /// Close descriptors until at most `max_open` are open: never the first
    /// nor the top one; each time the one whose loss leaves the smallest gap
    /// between its neighbours relative to their distance from the top (ties:
    /// the deeper one), which spaces the open levels geometrically.
    fn trim(&mut self) {
        while self.open.len() > self.max_open {
            let top = self.open[self.open.len() - 1] as u128;
            let mut best: Option<(u128, u128, usize)> = None; // gap, distance, index in open
            for k in 1..self.open.len() - 1 {
                let (a, c) = (self.open[k - 1] as u128, self.open[k + 1] as u128);
                let (gap, dist) = (c - a, top - a + 1);
                // gap/dist < best_gap/best_dist, compared without division.
                let better = match best {
                    None => true,
                    Some((bg, bd, _)) => gap * bd <= bg * dist,
                };
                if better {
                    best = Some((gap, dist, k));
                }
            }
            let Some((_, _, k)) = best else { return };
            let i = self.open.remove(k);
            self.frames[i].fd = None;
            if let Some(mut r) = self.frames[i].reader.take() {
                r.reset();
                self.spare.push(r);
            }
        }
    }

    /// Give the top frame a descriptor again if it lost it: open each level
    /// above the nearest open one by name with `open`, which also says what
    /// it found; a level that is not the directory recorded there is `Lost`
    /// (with its index: the caller drops it and everything above).
    pub fn reopen_top(
        &mut self,
        mut open: impl FnMut(BorrowedFd<'_>, &mut Option<Ids>, &CStr) -> io::Result<(OwnedFd, Stat)>,
    ) -> Result<(), (usize, Lost)> {
        let Some(top) = self.frames.len().checked_sub(1) else {
            return Ok(());
        };
        if self.frames[top].fd.is_some() {
            return Ok(());
        }
        let from = self.open.last().copied().unwrap_or(0);
        for k in from + 1..=top {
            let (below, above) = self.frames.split_at_mut(k);
            let parent = &mut below[k - 1];
            let Some(pfd) = parent.fd.as_ref() else {
                return Err((k, Lost::Io(io::Error::other("no open directory to reopen from"))));
            };
            let f = &mut above[0];
            let (fd, st) = match open(pfd.as_fd(), &mut parent.inside, &f.node.name) {
                Ok(x) => x,
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)) => {
                    return Err((k, Lost::Moved))
                }
                Err(e) => return Err((k, Lost::Io(e))),
            };
            if (st.dev, st.ino) != (f.dev, f.ino) {
                return Err((k, Lost::Moved));
            }
            f.fd = Some(fd);
            self.open.push(k);
            self.trim();
        }
        Ok(())
    }

    /// The next entry of the top frame (which must have its descriptor).
    pub fn next(&mut self) -> io::Result<Option<Dent>> {
        let Some(f) = self.frames.last_mut() else {
            return Ok(None);
        };
        let Some(fd) = f.fd.as_ref() else {
            return Err(io::Error::other("directory not open"));
        };
        let r = match &mut f.reader {
            Some(r) => r,
            None => {
                let mut r = self.spare.pop().unwrap_or_else(|| DirReader::new(BUF));
                if let Some(pos) = f.resume {
                    r.seek(fd.as_fd(), pos)?;
                }
                f.reader.insert(r)
            }
        };
        let d = r.next(fd.as_fd())?;
        if let Some(d) = d {
            f.resume = Some(d.next);
        }
        Ok(d)
    }

    /// Descriptors open now (for tests).
    #[cfg(test)]
    fn open_count(&self) -> usize {
        self.frames.iter().filter(|f| f.fd.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dockhand::sys::fs;

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("runas-stack-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn opener(dir: BorrowedFd<'_>, _: &mut Option<Ids>, name: &CStr) -> io::Result<(OwnedFd, Stat)> {
        let fd = fs::open_dir_at(dir, name)?;
        let st = fs::fstat(fd.as_fd())?;
        Ok((fd, st))
    }

    /// Walk a chain `depth` deep with few descriptors, each level with a
    /// few files before and after the subdirectory: every entry is read
    /// exactly once, and the descriptors never exceed the bound.
    #[test]
    fn a_deep_chain_with_few_descriptors_reads_every_entry_once() {
        let p = tmp("chain");
        let depth = 300;
        let mut d = p.clone();
        for _ in 0..depth {
            for f in ["a", "b", "y", "z"] {
                std::fs::write(d.join(f), "").unwrap();
            }
            d = d.join("sub");
            std::fs::create_dir(&d).unwrap();
        }
        let root = fs::open_dir_nofollow(&p).unwrap();
        let st = fs::fstat(root.as_fd()).unwrap();
        let mut s = Stack::new(5);
        s.push(Frame::new(Node::root(), root, &st, None, false));
        let (mut files, mut dirs, mut reopened) = (0, 0, 0);
        while !s.is_empty() {
            if s.frames.last().unwrap().fd.is_none() {
                reopened += 1;
            }
            s.reopen_top(opener).map_err(|(k, _)| k).unwrap();
            assert!(s.open_count() <= 5);
            let Some(d) = s.next().unwrap() else {
                let _ = s.pop();
                continue;
            };
            let f = s.frames.last().unwrap();
            let name = f.reader.as_ref().unwrap().name(d).to_owned();
            if name.as_bytes() == b"sub" {
                dirs += 1;
                let fd = fs::open_dir_at(f.fd.as_ref().unwrap().as_fd(), &name).unwrap();
                let st = fs::fstat(fd.as_fd()).unwrap();
                let node = f.node.child(&name);
                s.push(Frame::new(node, fd, &st, None, false));
            } else {
                files += 1;
            }
        }
        assert_eq!((files, dirs), (4 * depth, depth));
        assert!(reopened > 0);
        std::fs::remove_dir_all(&p).unwrap();
    }

    /// A level moved away while its descriptor was closed is not reopened
    /// by name: what is there now is another directory.
    #[test]
    fn a_level_replaced_meanwhile_is_lost_not_followed() {
        let p = tmp("moved");
        std::fs::create_dir_all(p.join("a/b/c/d")).unwrap();
        let root = fs::open_dir_nofollow(&p).unwrap();
        let st = fs::fstat(root.as_fd()).unwrap();
        let mut s = Stack::new(2);
        s.push(Frame::new(Node::root(), root, &st, None, false));
        for name in [c"a", c"b", c"c", c"d"] {
            let f = s.frames.last().unwrap();
            let fd = fs::open_dir_at(f.fd.as_ref().unwrap().as_fd(), name).unwrap();
            let st = fs::fstat(fd.as_fd()).unwrap();
            let node = f.node.child(name);
            s.push(Frame::new(node, fd, &st, None, false));
        }
        assert_eq!(
            s.frames.last().unwrap().node.path(Path::new("/x")),
            Path::new("/x/a/b/c/d")
        );
        std::fs::rename(p.join("a/b"), p.join("moved")).unwrap();
        std::fs::create_dir_all(p.join("a/b/c")).unwrap();
        let _ = s.pop();
        match s.reopen_top(opener) {
            Err((k, Lost::Moved)) => assert_eq!(k, 2, "a/b is another directory now"),
            Err((k, _)) => panic!("error at {k}"),
            Ok(()) => panic!("reopened through a replaced directory"),
        }
        std::fs::remove_dir_all(&p).unwrap();
    }
}
