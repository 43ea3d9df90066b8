//! The benchmark's chown floor: what the system calls of a safe chown walk cost on this machine,
//! with nothing else around them. Shown beside `runas --chown` and `chown -R` in the chown
//! section, so that a reader can tell how much of runas's time is the calls themselves.
//!
//! Safe means what runas does for each entry: look at it first (statx, without following a
//! link: its owner, type and link count decide whether it may be changed), then change it
//! (fchownat, relative to its directory) only when its owner differs. chown -R makes the second
//! call only. Directories are read with the standard library (getdents), spread over one thread
//! per CPU through a shared list; no checks of link counts, devices or mounts are made, no
//! messages, no counts: this is a measuring stick, not a tool.
//!
//! Usage: chown_floor TREE UID GID (x86_64 Linux; exit 1 on any error)
//! Built by bench/bench.py with rustc alone (no crates); not part of the shipped tools.

use std::ffi::{c_char, c_int, c_long, CString};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

extern "C" {
    fn syscall(n: c_long, ...) -> c_long;
    fn fchownat(dirfd: c_int, path: *const c_char, uid: u32, gid: u32, flags: c_int) -> c_int;
}

const SYS_STATX: c_long = 332; // x86_64
const AT_SYMLINK_NOFOLLOW: c_int = 0x100;
const AT_EMPTY_PATH: c_int = 0x1000;
/// STATX_BASIC_STATS | STATX_MNT_ID, as runas asks for.
const MASK: u32 = 0x7ff | 0x1000;

/// (uid, gid) of `name` in `dir` (an empty name: `dir` itself).
fn owner(dir: c_int, name: &CString) -> (u32, u32) {
    let mut buf = [0u8; 256];
    let flags = if name.as_bytes().is_empty() {
        AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW
    } else {
        AT_SYMLINK_NOFOLLOW
    };
    // SAFETY: `name` is NUL-terminated; `buf` is larger than struct statx.
    let r = unsafe { syscall(SYS_STATX, dir, name.as_ptr(), flags, MASK, buf.as_mut_ptr()) };
    if r != 0 {
        fail(&format!("statx: {}", std::io::Error::last_os_error()));
    }
    let u32_at = |o: usize| u32::from_ne_bytes(buf[o..o + 4].try_into().unwrap());
    (u32_at(20), u32_at(24))
}

fn give(dir: c_int, name: &CString, uid: u32, gid: u32) {
    if owner(dir, name) != (uid, gid) {
        let flags = if name.as_bytes().is_empty() {
            AT_EMPTY_PATH
        } else {
            AT_SYMLINK_NOFOLLOW
        };
        // SAFETY: `name` is NUL-terminated.
        if unsafe { fchownat(dir, name.as_ptr(), uid, gid, flags) } != 0 {
            fail(&format!("fchownat: {}", std::io::Error::last_os_error()));
        }
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("chown_floor: {msg}");
    std::process::exit(1)
}

/// Directories to walk, and how many threads are waiting for one.
struct Work {
    dirs: Mutex<(Vec<PathBuf>, usize)>,
    more: Condvar,
    threads: usize,
}

impl Work {
    fn take(&self) -> Option<PathBuf> {
        let mut g = self.dirs.lock().unwrap();
        loop {
            if let Some(d) = g.0.pop() {
                return Some(d);
            }
            g.1 += 1;
            if g.1 == self.threads {
                self.more.notify_all();
                return None;
            }
            g = self.more.wait(g).unwrap();
            if g.1 == self.threads {
                return None;
            }
            g.1 -= 1;
        }
    }

    fn walk(&self, uid: u32, gid: u32) {
        while let Some(path) = self.take() {
            let dir = File::open(&path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
            let fd = dir.as_raw_fd();
            for e in std::fs::read_dir(&path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display()))) {
                let e = e.unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
                let name = CString::new(e.file_name().as_bytes()).unwrap();
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let mut g = self.dirs.lock().unwrap();
                    g.0.push(e.path());
                    self.more.notify_one();
                }
                give(fd, &name, uid, gid);
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        fail("usage: chown_floor TREE UID GID");
    }
    let id = |s: &str| {
        s.parse::<u32>()
            .unwrap_or_else(|_| fail(&format!("not an id: {s}")))
    };
    let (uid, gid) = (id(&args[2]), id(&args[3]));
    let top = File::open(&args[1]).unwrap_or_else(|e| fail(&format!("{}: {e}", args[1])));
    give(top.as_raw_fd(), &CString::default(), uid, gid);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let work = Work {
        dirs: Mutex::new((vec![PathBuf::from(&args[1])], 0)),
        more: Condvar::new(),
        threads,
    };
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| work.walk(uid, gid));
        }
    });
}
