//! Replacing a small file atomically, for healthcheck's state file and
//! ready's marker: a reader sees the old content or the new, never a part.
//! Everything happens relative to a directory fd and never through a name
//! someone else may have planted: the temporary gets a fresh random name and
//! is created with O_CREAT|O_EXCL|O_NOFOLLOW, then renamed over the target
//! (rename replaces a symlink there, it does not follow it).
//!
//! Not O_TMPFILE + linkat: linkat cannot replace an existing name, so a
//! named temporary and a rename would still be needed, and O_TMPFILE is
//! missing on some filesystems (overlayfs before 4.x kernels, some FUSE ones).

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use std::ffi::{CStr, CString, OsStr};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Temporary names tried before giving up (a collision with a random name
/// means someone is guessing them, or the directory is full of leftovers).
const TRIES: usize = 8;

/// 64 random bits from getrandom(2); when it is unavailable (old kernel,
/// seccomp) a mix of the time, the pid and a counter. Only uniqueness
/// matters: O_EXCL refuses any name that exists, however it was guessed.
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: `b` is valid for writes of b.len() bytes for the whole call;
    // the kernel writes at most that many. GRND_NONBLOCK: never waits for
    // the entropy pool at early boot.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), libc::GRND_NONBLOCK) };
    if n == b.len() as isize {
        return u64::from_ne_bytes(b);
    }
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos ^ (u64::from(std::process::id()) << 32) ^ COUNTER.fetch_add(1, Ordering::Relaxed);
    // splitmix64's finaliser spreads the bits.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `.NAME.<16 hex digits>.TAG`: a hidden sibling of `name` nobody can predict.
pub fn sibling_name(name: &CStr, tag: &str) -> CString {
    let mut v = Vec::with_capacity(name.to_bytes().len() + tag.len() + 20);
    v.push(b'.');
    v.extend_from_slice(name.to_bytes());
    v.extend_from_slice(format!(".{:016x}.{tag}", random_u64()).as_bytes());
    // `name` came from a CStr and the rest is ASCII: no NUL inside.
    CString::new(v).unwrap_or_default()
}

/// Replace `name` in `dir` by a regular file holding `data`, created with
/// `mode` (less the umask). `dir` may be an O_PATH handle, but then a
/// durable write cannot sync the directory. `durable`: fsync the file before the rename and the directory
/// after it, so that a crash leaves the old or the new content, never an
/// empty file; worth it for a marker written once, not for a counter updated
/// by every probe on a tmpfs. On an error nothing is left behind.
pub fn write_at(dir: BorrowedFd<'_>, name: &CStr, data: &[u8], mode: u32, durable: bool) -> io::Result<()> {
    let flags = OFlag::O_WRONLY
        | OFlag::O_CREAT
        | OFlag::O_EXCL
        | OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC
        | OFlag::O_NOCTTY;
    let mode = Mode::from_bits_truncate(mode as libc::mode_t);
    for _ in 0..TRIES {
        let tmp = sibling_name(name, "tmp");
        let fd = match nix::fcntl::openat(dir, tmp.as_c_str(), flags, mode) {
            Ok(fd) => fd,
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut f = std::fs::File::from(fd);
        let done = f
            .write_all(data)
            .and_then(|()| if durable { f.sync_all() } else { Ok(()) })
            .and_then(|()| nix::fcntl::renameat(dir, tmp.as_c_str(), dir, name).map_err(io::Error::from));
        if let Err(e) = done {
            let _ = nix::unistd::unlinkat(dir, tmp.as_c_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
            return Err(e);
        }
        if durable {
            match nix::unistd::fsync(dir) {
                // Some filesystems cannot sync a directory, and an O_PATH
                // handle (an unreadable directory) cannot be synced; the
                // file itself is.
                Ok(()) | Err(Errno::EINVAL | Errno::EBADF) => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary name after 8 random tries",
    ))
}

/// The directory holding `path` (opened for reading, or as an O_PATH handle
/// when it is write-only for us) and the file name in it. Symlinks above the
/// last component are followed: the caller chose the directory; the last
/// component is what `write_at` never follows.
pub fn parent_of(path: &Path) -> io::Result<(OwnedFd, CString)> {
    let name = path
        .file_name()
        .filter(|n| *n != OsStr::new("..") && *n != OsStr::new("."))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path has no file name"))?;
    let name = CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the path contains a NUL byte"))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let dir = match nix::fcntl::openat(nix::fcntl::AT_FDCWD, parent, flags, Mode::empty()) {
        Err(Errno::EACCES) => {
            let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
            nix::fcntl::openat(nix::fcntl::AT_FDCWD, parent, flags, Mode::empty())?
        }
        r => r?,
    };
    Ok((dir, name))
}

/// Replace the file at `path` atomically (see `write_at`).
pub fn write(path: &Path, data: &[u8], mode: u32, durable: bool) -> io::Result<()> {
    let (dir, name) = parent_of(path)?;
    write_at(dir.as_fd(), &name, data, mode, durable)
}

/// Move whatever `name` in `dir` is (a symlink, a FIFO, a directory with
/// all it holds) out of the way, to a fresh hidden sibling `.NAME.<hex>.aside`,
/// without opening or following it. Returns the new name.
pub fn set_aside_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<CString> {
    let aside = sibling_name(name, "aside");
    nix::fcntl::renameat(dir, name, dir, aside.as_c_str())?;
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("dockhand-atomic-{tag}-"))
            .tempdir()
            .unwrap()
    }

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_without_following_and_leaves_nothing_behind() {
        let scratch = tmp("write");
        let d = scratch.path();
        let victim = d.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        std::os::unix::fs::symlink(&victim, d.join("f")).unwrap();
        for durable in [false, true] {
            write(&d.join("f"), b"new", 0o600, durable).unwrap();
            assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
            assert!(std::fs::symlink_metadata(d.join("f")).unwrap().is_file());
            assert_eq!(std::fs::read(d.join("f")).unwrap(), b"new");
            assert_eq!(names(d), ["f", "victim"]);
        }
        // A directory at the name is not replaced, and no temporary stays.
        std::fs::create_dir(d.join("sub")).unwrap();
        assert!(write(&d.join("sub"), b"x", 0o600, false).is_err());
        assert_eq!(names(d), ["f", "sub", "victim"]);
        assert!(write(&d.join(".."), b"x", 0o600, false).is_err());
    }

    #[test]
    fn set_aside_moves_the_entry_itself() {
        let scratch = tmp("aside");
        let d = scratch.path();
        std::fs::create_dir(d.join("s")).unwrap();
        std::fs::write(d.join("s/inner"), "x").unwrap();
        let dir = std::fs::File::open(d).unwrap();
        let aside = set_aside_at(dir.as_fd(), c"s").unwrap();
        let aside = aside.to_str().unwrap();
        assert!(aside.starts_with(".s.") && aside.ends_with(".aside"), "{aside}");
        assert_eq!(std::fs::read_to_string(d.join(aside).join("inner")).unwrap(), "x");
        assert!(!d.join("s").exists());
        assert_ne!(sibling_name(c"s", "t"), sibling_name(c"s", "t"));
    }
}
