//! File operations relative to directory fds that never follow a symlink:
//! what a tree walk needs to change ownership inside a directory an
//! unprivileged user controls (openat O_NOFOLLOW|O_DIRECTORY, fstatat and
//! fchownat with AT_SYMLINK_NOFOLLOW, O_PATH handles, raw getdents64), and
//! opening a PATH given on the command line one component at a time.

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;
use std::ffi::{CStr, CString, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The parts of `struct stat` a chown walk looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    /// The mount it is on (statx's STX_MNT_ID, Linux 5.8+): tells a bind
    /// mount of the same filesystem, which `dev` cannot. None on older kernels.
    pub mnt_id: Option<u64>,
}

const STATX_BASIC_STATS: u32 = 0x7ff;
const STATX_MNT_ID: u32 = 0x1000;

/// st_dev as glibc and musl encode a (major, minor) pair.
fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (u64::from(major), u64::from(minor));
    ((ma & 0xffff_f000) << 32) | ((ma & 0xfff) << 8) | ((mi & 0xffff_ff00) << 12) | (mi & 0xff)
}

/// statx(dir, name, flags) with the basic fields and the mount ID; None
/// when the kernel or a seccomp filter refuses statx itself (ENOSYS, EPERM):
/// the caller falls back to fstatat.
fn statx(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> Option<io::Result<Stat>> {
    let mut sx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    loop {
        // SAFETY: `name` is NUL-terminated and `sx` is valid for writes of a
        // struct statx for the whole call; the kernel writes at most that.
        let r = unsafe {
            libc::syscall(
                libc::SYS_statx,
                dir.as_raw_fd(),
                name.as_ptr(),
                flags,
                STATX_BASIC_STATS | STATX_MNT_ID,
                sx.as_mut_ptr(),
            )
        };
        if r == 0 {
            break;
        }
        match Errno::last() {
            Errno::EINTR => continue,
            Errno::ENOSYS | Errno::EPERM => return None,
            e => return Some(Err(e.into())),
        }
    }
    // SAFETY: zero-initialised and filled in by a successful statx.
    let sx = unsafe { sx.assume_init() };
    Some(Ok(Stat {
        dev: makedev(sx.stx_dev_major, sx.stx_dev_minor),
        ino: sx.stx_ino,
        mode: u32::from(sx.stx_mode),
        nlink: u64::from(sx.stx_nlink),
        uid: sx.stx_uid,
        gid: sx.stx_gid,
        mnt_id: (sx.stx_mask & STATX_MNT_ID != 0).then_some(sx.stx_mnt_id),
    }))
}

impl Stat {
    fn from(s: nix::sys::stat::FileStat) -> Stat {
        Stat {
            dev: s.st_dev,
            ino: s.st_ino,
            mode: s.st_mode,
            nlink: s.st_nlink as _,
            uid: s.st_uid,
            gid: s.st_gid,
            mnt_id: None,
        }
    }

    /// On another mount than `o`: another filesystem, or (when the kernel
    /// tells mount IDs) a bind mount of the same one.
    pub fn other_mount(&self, o: &Stat) -> bool {
        self.dev != o.dev || matches!((self.mnt_id, o.mnt_id), (Some(a), Some(b)) if a != b)
    }
    pub fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }
    pub fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }
    /// A character or block device node.
    pub fn is_device(&self) -> bool {
        matches!(self.mode & libc::S_IFMT, libc::S_IFCHR | libc::S_IFBLK)
    }
    /// Same inode (device and inode number).
    pub fn same_file(&self, o: &Stat) -> bool {
        self.dev == o.dev && self.ino == o.ino
    }
}

/// fstat on any fd, O_PATH ones included.
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    if let Some(r) = statx(fd, c"", libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW) {
        return r;
    }
    nix::sys::stat::fstatat(fd, c"", AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW)
        .map(Stat::from)
        .map_err(io::Error::from)
}

/// fstatat(dir, name, AT_SYMLINK_NOFOLLOW): a symlink is described, not followed.
pub fn lstat_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Stat> {
    if let Some(r) = statx(dir, name, libc::AT_SYMLINK_NOFOLLOW) {
        return r;
    }
    nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map(Stat::from)
        .map_err(io::Error::from)
}

/// Open the directory `name` inside `dir` for reading; a symlink or
/// anything else that is not a directory fails with ENOTDIR or ELOOP.
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    nix::fcntl::openat(dir, name, DIR_FLAGS, Mode::empty()).map_err(io::Error::from)
}

/// An O_PATH handle on the directory `name` inside `dir` (a symlink or a
/// non-directory fails): looking it up needs search permission on `dir`
/// only, not read permission on the directory itself; `open_dir_handle`
/// then opens it for reading, possibly as another filesystem identity.
pub fn open_dir_handle_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    nix::fcntl::openat(dir, name, flags, Mode::empty()).map_err(io::Error::from)
}

/// Open the directory an O_PATH handle pins for reading (through its own
/// "." entry: the very inode, whatever its name points at by now).
pub fn open_dir_handle(h: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    nix::fcntl::openat(h, c".", DIR_FLAGS, Mode::empty()).map_err(io::Error::from)
}

/// How directories are opened for reading: never through a symlink in the
/// last component, never as anything but a directory, never blocking.
const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_NOCTTY)
    .union(OFlag::O_NONBLOCK);

/// An O_PATH handle on `name` itself (a symlink is not followed): opening it
/// has no side effects, even for a FIFO or a device, and the handle pins the
/// inode so a later chown cannot land on a file swapped in meanwhile.
pub fn open_path_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    nix::fcntl::openat(dir, name, flags, Mode::empty()).map_err(io::Error::from)
}

/// Open a file for reading without following a symlink in its last
/// component (ELOOP) and without blocking on a FIFO (O_NONBLOCK, which reads
/// of regular files ignore). openat rather than open: musl's open() spends
/// an extra fcntl call on O_CLOEXEC.
pub fn open_read_nofollow(path: &Path) -> io::Result<std::fs::File> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
    nix::fcntl::openat(nix::fcntl::AT_FDCWD, path, flags, Mode::empty())
        .map(std::fs::File::from)
        .map_err(io::Error::from)
}

/// The contents of the regular file at `path`, at most `max` bytes: opened
/// as `open_read_nofollow` does (a FIFO is refused, never waited on), and a
/// larger file is an error rather than read whole.
pub fn read_regular_capped(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let f = open_read_nofollow(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut v = Vec::new();
    f.take(max.saturating_add(1)).read_to_end(&mut v)?;
    if v.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {max} bytes"),
        ));
    }
    Ok(v)
}

/// Open the directory at `path` for reading; a symlink in its last
/// component is not followed (ELOOP), anything not a directory fails.
pub fn open_dir_nofollow(path: &Path) -> io::Result<OwnedFd> {
    nix::fcntl::openat(nix::fcntl::AT_FDCWD, path, DIR_FLAGS, Mode::empty()).map_err(io::Error::from)
}

/// Change the owner of what `fd` refers to (O_PATH handles and symlinks
/// included: fchownat with AT_EMPTY_PATH acts on the fd's own inode).
pub fn chown_fd(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    nix::unistd::fchownat(
        fd,
        c"",
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        AtFlags::AT_EMPTY_PATH | AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(io::Error::from)
}

/// Change the owner of `name` in `dir` itself (a symlink is changed, not
/// followed). Only for a directory nobody but root can change: elsewhere the
/// name could be swapped between the look and the change; use `chown_fd`
/// on an O_PATH handle.
pub fn chown_at(dir: BorrowedFd<'_>, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    nix::unistd::fchownat(
        dir,
        name,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(io::Error::from)
}

/// Set the mode of an open directory (not subject to the umask).
pub fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    nix::sys::stat::fchmod(fd, Mode::from_bits_truncate(mode as libc::mode_t)).map_err(io::Error::from)
}

/// Reads a directory with getdents64 into a caller-sized buffer (musl's
/// readdir reads 2 KiB at a time, which costs a syscall every ~60 entries).
#[derive(Debug)]
pub struct DirReader {
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

/// One directory entry: its name's offset in the buffer and its d_type.
#[derive(Clone, Copy, Debug)]
pub struct Dent {
    at: usize,
    pub d_type: u8,
    /// The directory position just after this entry (d_off): `seek` there on
    /// a new descriptor of the same directory resumes after it.
    pub next: i64,
}

pub const DT_UNKNOWN: u8 = libc::DT_UNKNOWN;
pub const DT_DIR: u8 = libc::DT_DIR;
pub const DT_REG: u8 = libc::DT_REG;
pub const DT_LNK: u8 = libc::DT_LNK;

// struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
const OFF_AT: usize = 8;
const RECLEN_AT: usize = 16;
const TYPE_AT: usize = 18;
const NAME_AT: usize = 19;

impl DirReader {
    /// A reader with a buffer of `size` bytes (at least 1 KiB).
    pub fn new(size: usize) -> DirReader {
        DirReader {
            buf: vec![0u8; size.max(1024)],
            pos: 0,
            len: 0,
        }
    }

    /// Forget what was read, to reuse the buffer on another directory.
    pub fn reset(&mut self) {
        self.pos = 0;
        self.len = 0;
    }

    /// Continue reading `fd` at `pos`, a `Dent::next` from an earlier
    /// descriptor of the same directory (lseek takes the kernel's cookie).
    pub fn seek(&mut self, fd: BorrowedFd<'_>, pos: i64) -> io::Result<()> {
        self.reset();
        nix::unistd::lseek(fd, pos, nix::unistd::Whence::SeekSet)
            .map(drop)
            .map_err(io::Error::from)
    }

    fn fill(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        loop {
            // SAFETY: the buffer is valid for writes of buf.len() bytes for
            // the whole call; the kernel writes at most that many and returns
            // how many it wrote. fd is a valid open descriptor (borrowed).
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    fd.as_raw_fd(),
                    self.buf.as_mut_ptr(),
                    self.buf.len(),
                )
            };
            if n < 0 {
                let e = Errno::last();
                if e == Errno::EINTR {
                    continue;
                }
                return Err(e.into());
            }
            self.pos = 0;
            self.len = n as usize;
            return Ok(self.len);
        }
    }

    /// The next entry other than `.` and `..`, reading more as needed;
    /// `None` at the end of the directory.
    pub fn next(&mut self, fd: BorrowedFd<'_>) -> io::Result<Option<Dent>> {
        loop {
            if self.pos >= self.len && self.fill(fd)? == 0 {
                return Ok(None);
            }
            let rec = &self.buf[self.pos..self.len];
            if rec.len() < NAME_AT + 1 {
                return Err(io::Error::other("getdents64 returned a truncated record"));
            }
            let reclen = u16::from_ne_bytes([rec[RECLEN_AT], rec[RECLEN_AT + 1]]) as usize;
            if reclen < NAME_AT + 1 || reclen > rec.len() {
                return Err(io::Error::other("getdents64 returned a bad record length"));
            }
            let mut off = [0u8; 8];
            off.copy_from_slice(&rec[OFF_AT..OFF_AT + 8]);
            let d = Dent {
                at: self.pos,
                d_type: rec[TYPE_AT],
                next: i64::from_ne_bytes(off),
            };
            self.pos += reclen;
            let name = self.name_bytes(d, reclen);
            if name == b"." || name == b".." {
                continue;
            }
            return Ok(Some(d));
        }
    }

    fn name_bytes(&self, d: Dent, reclen: usize) -> &[u8] {
        let field = &self.buf[d.at + NAME_AT..d.at + reclen];
        let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
        &field[..end]
    }

    /// The name of an entry `next` returned (valid until the next `next`).
    pub fn name(&self, d: Dent) -> &CStr {
        let reclen = u16::from_ne_bytes([self.buf[d.at + RECLEN_AT], self.buf[d.at + RECLEN_AT + 1]]);
        let field = &self.buf[d.at + NAME_AT..d.at + reclen as usize];
        // The kernel NUL-terminates every name within its record; `next`
        // checked the record length, so a NUL is present.
        CStr::from_bytes_until_nul(field).unwrap_or(c"")
    }
}

/// A PATH from the command line, opened or found missing.
#[derive(Debug)]
pub enum Found {
    /// The directory, opened for reading.
    Dir(OwnedFd),
    /// The deepest existing ancestor (an O_PATH handle) and the names still
    /// to create below it, in order.
    Missing { parent: OwnedFd, rest: Vec<CString> },
}

/// Symlinks followed while resolving one PATH, as the kernel's limit.
const MAX_HOPS: usize = 40;

fn cstring(b: &[u8], path: &Path) -> Result<CString, String> {
    CString::new(b).map_err(|_| format!("{}: contains a NUL byte", path.display()))
}

fn open_start(absolute: bool) -> io::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let at = if absolute { c"/" } else { c"." };
    nix::fcntl::openat(nix::fcntl::AT_FDCWD, at, flags, Mode::empty()).map_err(io::Error::from)
}

fn push_front(comps: &mut Vec<OsString>, p: &Path) -> bool {
    // comps is kept reversed (next component last), so prepend = push in reverse.
    let mut new: Vec<OsString> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => new.push(n.to_os_string()),
            Component::ParentDir => new.push(OsString::from("..")),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    comps.extend(new.into_iter().rev());
    p.is_absolute()
}

/// Open the directory PATH one component at a time with O_NOFOLLOW. A
/// symlink as the last component is refused (whoever owns the parent could
/// have pointed it at /etc); one earlier in the path is followed only when
/// root owns it (the image made it, not a user of the volume). Nothing is
/// created: a missing part comes back as `Found::Missing`.
pub fn open_dir_path(path: &Path) -> Result<Found, String> {
    let shown = crate::out::escape_path(path);
    let mut comps: Vec<OsString> = Vec::new();
    let absolute = push_front(&mut comps, path);
    let mut cur = open_start(absolute).map_err(|e| format!("{shown}: {e}"))?;
    let mut hops = 0;
    while let Some(c) = comps.pop() {
        let name = cstring(c.as_bytes(), path)?;
        let last = comps.is_empty();
        let fd = match open_path_at(cur.as_fd(), &name) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let mut rest = vec![name];
                while let Some(c) = comps.pop() {
                    if c == ".." {
                        return Err(format!("{shown}: a missing directory is followed by \"..\""));
                    }
                    rest.push(cstring(c.as_bytes(), path)?);
                }
                return Ok(Found::Missing { parent: cur, rest });
            }
            Err(e) => return Err(format!("{shown}: {:?}: {e}", c)),
        };
        let st = fstat(fd.as_fd()).map_err(|e| format!("{shown}: {e}"))?;
        if st.is_symlink() {
            if last {
                return Err(format!(
                    "{shown} is a symbolic link; runas never follows one there (give the real path)"
                ));
            }
            if st.uid != 0 {
                return Err(format!(
                    "{shown}: component {c:?} is a symbolic link owned by uid {}; only root-owned links \
                     are followed (give the real path)",
                    st.uid
                ));
            }
            hops += 1;
            if hops > MAX_HOPS {
                return Err(format!("{shown}: too many symbolic links"));
            }
            let target = nix::fcntl::readlinkat(fd.as_fd(), c"").map_err(|e| format!("{shown}: {e}"))?;
            if push_front(&mut comps, Path::new(&target)) {
                cur = open_start(true).map_err(|e| format!("{shown}: {e}"))?;
            }
            continue;
        }
        if !st.is_dir() {
            return Err(if last {
                format!("{shown} exists and is not a directory")
            } else {
                format!("{shown}: component {c:?} is not a directory")
            });
        }
        cur = fd;
    }
    open_dir_handle_as_owner(cur.as_fd())
        .map(Found::Dir)
        .map_err(|e| format!("{shown}: {e}"))
}

/// `open_dir_handle`, and when that is refused (root without CAP_DAC_*, a
/// directory mode 0700 of its owner's), again with the filesystem identity
/// of the directory's owner.
pub fn open_dir_handle_as_owner(h: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    match open_dir_handle(h) {
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
            let s = fstat(h)?;
            super::privs::with_fs_ids(s.uid, s.gid, || open_dir_handle(h))?
        }
        r => r,
    }
}

/// Create the missing part of a PATH: every directory 0755, the last one
/// owned by `uid`:`gid` (those above it stay root's). Returns the last one,
/// opened for reading. An entry that appears meanwhile is used only if it is
/// a real directory.
pub fn create_dirs(parent: BorrowedFd<'_>, rest: &[CString], uid: u32, gid: u32) -> io::Result<OwnedFd> {
    let mut cur: Option<OwnedFd> = None;
    for (i, name) in rest.iter().enumerate() {
        let at = cur.as_ref().map_or(parent, |f| f.as_fd());
        match nix::sys::stat::mkdirat(at, name.as_c_str(), Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        let fd = open_dir_at(at, name)?;
        chmod_fd(fd.as_fd(), 0o755)?;
        if i + 1 == rest.len() {
            chown_fd(fd.as_fd(), uid, gid)?;
        }
        cur = Some(fd);
    }
    cur.ok_or_else(|| io::Error::other("nothing to create"))
}

/// `dir/name` for messages.
pub fn join(dir: &Path, name: &CStr) -> PathBuf {
    dir.join(std::ffi::OsStr::from_bytes(name.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tmp(tag: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("dockhand-fs-{tag}-"))
            .tempdir()
            .unwrap()
    }

    fn names(dir: &Path, bufsize: usize) -> Vec<(String, u8)> {
        let f = std::fs::File::open(dir).unwrap();
        let mut r = DirReader::new(bufsize);
        let mut out = Vec::new();
        while let Some(d) = r.next(f.as_fd()).unwrap() {
            out.push((r.name(d).to_string_lossy().into_owned(), d.d_type));
        }
        out.sort();
        out
    }

    #[test]
    fn capped_reads_take_only_small_regular_files() {
        let scratch = tmp("capped");
        let d = scratch.path();
        std::fs::write(d.join("f"), b"0123456789").unwrap();
        assert_eq!(read_regular_capped(&d.join("f"), 10).unwrap(), b"0123456789");
        assert!(read_regular_capped(&d.join("f"), 9).is_err());
        // A FIFO without a writer: refused at once, not waited on.
        nix::unistd::mkfifo(&d.join("p"), Mode::from_bits_truncate(0o600)).unwrap();
        assert!(read_regular_capped(&d.join("p"), 10).is_err());
        symlink("f", d.join("l")).unwrap();
        assert!(read_regular_capped(&d.join("l"), 10).is_err());
        assert!(read_regular_capped(d, 10).is_err());
    }

    #[test]
    fn reads_every_entry_with_small_buffers() {
        let scratch = tmp("read");
        let d = scratch.path();
        for i in 0..300 {
            std::fs::write(d.join(format!("file-with-a-longish-name-{i:04}")), "").unwrap();
        }
        std::fs::create_dir(d.join("sub")).unwrap();
        let all = names(d, 1024);
        assert_eq!(all.len(), 301);
        assert!(all.contains(&("sub".to_string(), DT_DIR)));
        assert!(!all.iter().any(|(n, _)| n == "." || n == ".."));
        assert_eq!(names(d, 64 * 1024), all);
    }

    #[test]
    fn open_dir_path_refuses_links_and_files() {
        let scratch = tmp("open");
        let d = scratch.path();
        std::fs::create_dir_all(d.join("real/sub")).unwrap();
        std::fs::write(d.join("file"), "").unwrap();
        symlink(d.join("real"), d.join("link")).unwrap();
        assert!(matches!(open_dir_path(&d.join("real")), Ok(Found::Dir(_))));
        let e = open_dir_path(&d.join("link")).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        let e = open_dir_path(&d.join("file")).unwrap_err();
        assert!(e.contains("not a directory"), "{e}");
        match open_dir_path(&d.join("new/a/b")) {
            Ok(Found::Missing { rest, .. }) => assert_eq!(rest, [c"new", c"a", c"b"]),
            other => panic!("{other:?}"),
        }
        // A link in the middle, owned by whoever runs the test: followed only if root.
        let through = open_dir_path(&d.join("link/sub"));
        if nix::unistd::geteuid().is_root() {
            assert!(matches!(through, Ok(Found::Dir(_))), "{through:?}");
        } else {
            assert!(through.unwrap_err().contains("owned by uid"));
        }
    }

    #[test]
    fn stat_does_not_follow() {
        let scratch = tmp("stat");
        let d = scratch.path();
        symlink("/nonexistent", d.join("dangling")).unwrap();
        let dir = std::fs::File::open(d).unwrap();
        let s = lstat_at(dir.as_fd(), c"dangling").unwrap();
        assert!(s.is_symlink());
        let h = open_path_at(dir.as_fd(), c"dangling").unwrap();
        assert!(fstat(h.as_fd()).unwrap().same_file(&s));
        let e = open_dir_at(dir.as_fd(), c"dangling").unwrap_err().raw_os_error();
        assert!(matches!(e, Some(libc::ELOOP | libc::ENOTDIR)), "{e:?}");
    }
}
