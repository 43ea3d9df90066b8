//! Readiness notification: sd_notify datagrams (to the socket named by
//! `NOTIFY_SOCKET`, then a barrier so the message is attributed before the
//! sender exits) and s6 notification fds (a newline, then close).

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    self, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr, UnixCredentials,
};
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

/// Where a `NOTIFY_SOCKET` value points: `/path` is a socket file, `@name`
/// a Linux abstract socket (the `@` stands for the leading NUL byte).
///
/// The address length matters for abstract names: the name is every byte up
/// to the length, so a length covering trailing NULs would name another
/// socket. The length here is exactly the family field, the NUL and the name.
pub fn notify_addr(value: &str) -> Result<UnixAddr, String> {
    let bad = |why: &str| format!("NOTIFY_SOCKET={value:?}: {why}");
    if value.contains('\0') {
        return Err(bad("contains a NUL byte"));
    }
    if let Some(name) = value.strip_prefix('@') {
        if name.is_empty() {
            return Err(bad("empty abstract socket name"));
        }
        UnixAddr::new_abstract(name.as_bytes()).map_err(|_| bad("abstract socket name is too long"))
    } else if value.starts_with('/') {
        crate::cli::unix_socket_path(value.as_ref()).map_err(|e| bad(&e))?;
        UnixAddr::new(value).map_err(|e| bad(&e.to_string()))
    } else {
        Err(bad(
            "not an absolute path or an @abstract name (vsock is not supported)",
        ))
    }
}

/// Send one datagram `msg` to `addr`, passing `fds` with SCM_RIGHTS and,
/// with `as_pid`, SCM_CREDENTIALS naming that process as the sender.
///
/// The kernel accepts a pid other than our own only from a sender with
/// CAP_SYS_ADMIN over its pid namespace (else EPERM); the uid and gid sent
/// are our real ones, which need no privilege. A receiver with SO_PASSCRED
/// (systemd) then sees `as_pid` as the sender, which is what its
/// `NotifyAccess=main` checks.
fn send(addr: &UnixAddr, msg: &str, fds: &[i32], as_pid: Option<i32>) -> io::Result<()> {
    let sock = socket::socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    let iov = [IoSlice::new(msg.as_bytes())];
    let creds = as_pid.map(|pid| {
        UnixCredentials::from(libc::ucred {
            pid,
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        })
    });
    let mut cmsgs: Vec<ControlMessage> = Vec::with_capacity(2);
    if !fds.is_empty() {
        cmsgs.push(ControlMessage::ScmRights(fds));
    }
    if let Some(c) = &creds {
        cmsgs.push(ControlMessage::ScmCredentials(c));
    }
    loop {
        match socket::sendmsg(sock.as_raw_fd(), &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, Some(addr)) {
            Ok(n) if n == msg.len() => return Ok(()),
            Ok(_) => return Err(io::Error::other("datagram truncated")),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// sd_notify: send `msg` (e.g. `READY=1`), then `BARRIER=1` carrying the
/// write end of a pipe, and wait up to `barrier` for the receiver to close
/// it. The receiver (systemd) closes it only after it has handled every
/// earlier message, so the sender may then exit without its message being
/// dropped as coming from an unknown process.
///
/// An error from the first send is returned; a barrier that is not answered
/// in time is `ErrorKind::TimedOut` (the message itself was delivered).
/// `as_pid`: see `notify_as`.
pub fn sd_notify(addr: &UnixAddr, msg: &str, barrier: Duration, as_pid: Option<i32>) -> io::Result<()> {
    send(addr, msg, &[], as_pid)?;
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    send(addr, "BARRIER=1", &[w.as_raw_fd()], as_pid)?;
    // Our copy must go, or the read end would never see the hang-up.
    drop(w);
    wait_hangup(&r, barrier)
}

/// Send one sd_notify datagram `msg` (`STATUS=...`, `WATCHDOG=1`) without a
/// barrier. With `as_pid`, the message claims to come from that process
/// (SCM_CREDENTIALS): a pid not our own needs CAP_SYS_ADMIN, and without it
/// the send fails with `PermissionDenied` (EPERM) and nothing is sent.
pub fn notify_as(addr: &UnixAddr, msg: &str, as_pid: Option<i32>) -> io::Result<()> {
    send(addr, msg, &[], as_pid)
}

/// Whether this process may send sd_notify messages as another process
/// (`as_pid`): it holds CAP_SYS_ADMIN (bit 21 of CapEff in
/// /proc/self/status), which the kernel asks of a sender naming a pid not
/// its own. A send can still be refused (a pid namespace owned by another
/// user namespace): callers fall back on EPERM.
pub fn may_send_as_another_pid() -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    s.lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_SYS_ADMIN) != 0)
}

/// Wait until every write end of the pipe whose read end is `r` is closed.
fn wait_hangup(r: &impl AsFd, limit: Duration) -> io::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let Some(left) = crate::clock::time_left(deadline) else {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the notify socket did not answer the barrier",
            ));
        };
        let ms = PollTimeout::try_from(left.as_millis().clamp(1, 60_000) as u32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, ms) {
            Ok(0) => continue,
            Ok(_) => {
                let rev = fds[0].revents().unwrap_or(PollFlags::empty());
                if rev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
                    return Ok(());
                }
                // Data on a barrier pipe is not part of the protocol: read it
                // away so poll does not spin, and keep waiting for the hang-up.
                let mut buf = [0u8; 64];
                let _ = nix::unistd::read(r.as_fd(), &mut buf);
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether `fd` is an open file descriptor in this process.
pub fn fd_is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags; any integer is a
    // valid argument (a closed or negative one fails with EBADF).
    fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1
}

/// Mark `fd` close-on-exec, so a program exec'd from here does not inherit it.
pub fn set_cloexec(fd: i32) -> io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD change only the descriptor's flags, touch no
    // memory, and fail with EBADF for a descriptor that is not open.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// s6 readiness: write a newline to the notification fd `fd`, then close it.
///
/// `fd` must be a descriptor this process inherited and that no Rust object
/// owns (the s6 notification-fd, checked with `fd_is_open`); fds 0-2 are
/// refused.
pub fn s6_notify(fd: i32) -> io::Result<()> {
    if fd < 3 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the notification fd must be 3 or more",
        ));
    }
    let written = loop {
        // SAFETY: the buffer is a valid 1-byte slice for the whole call; a
        // bad fd fails with EBADF.
        let n = unsafe { libc::write(fd, b"\n".as_ptr().cast(), 1) };
        if n == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        break if n == 1 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        };
    };
    // SAFETY: the fd was inherited and is owned by no Rust object (see the
    // doc comment), so closing it invalidates nothing else in this process.
    // It is closed even when the write failed: s6 only needs it gone then.
    let closed = unsafe { libc::close(fd) };
    written?;
    if closed == -1 {
        let e = io::Error::last_os_error();
        // EINTR on Linux still closes the fd; anything else is worth saying.
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::SockaddrLike;
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::UnixDatagram;

    /// Offset of sun_path in sockaddr_un: the 2-byte family field on Linux.
    const OFF: u32 = 2;

    #[test]
    fn abstract_address_length_is_exact() {
        let a = notify_addr("@dockhand/x").unwrap();
        // family + the leading NUL + the 10-byte name, no trailing NUL.
        assert_eq!(a.len(), OFF + 1 + 10);
        assert_eq!(a.as_abstract(), Some(&b"dockhand/x"[..]));
        let long = format!("@{}", "n".repeat(107));
        assert_eq!(notify_addr(&long).unwrap().len(), OFF + 108);
        assert!(notify_addr(&format!("@{}", "n".repeat(108))).is_err());
    }

    #[test]
    fn path_address_length_covers_the_path() {
        let a = notify_addr("/run/systemd/notify").unwrap();
        assert_eq!(a.len(), OFF + "/run/systemd/notify".len() as u32);
        assert_eq!(a.path(), Some(std::path::Path::new("/run/systemd/notify")));
        let p = format!("/{}", "p".repeat(106));
        assert_eq!(notify_addr(&p).unwrap().len(), OFF + 107);
        assert!(notify_addr(&format!("/{}", "p".repeat(107))).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        for v in ["", "@", "relative/sock", "vsock:2:1234", "/a\0b"] {
            let e = notify_addr(v).unwrap_err();
            assert!(e.starts_with("NOTIFY_SOCKET="), "{v:?}: {e}");
        }
    }

    #[test]
    fn abstract_datagram_arrives_with_barrier_fd() {
        let name = format!("dockhand-notify-unit-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let to = notify_addr(&format!("@{name}")).unwrap();
        let h = std::thread::spawn(move || sd_notify(&to, "READY=1", Duration::from_secs(10), None));
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        // Receiving without room for control data discards the passed fd,
        // which the sender sees as the barrier's hang-up.
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"BARRIER=1");
        drop(rx);
        h.join().unwrap().unwrap();
    }

    /// What a receiver with SO_PASSCRED (systemd) reads: the text and the
    /// sender's pid from SCM_CREDENTIALS.
    fn recv_creds(rx: &UnixDatagram) -> (String, i32) {
        let mut buf = [0u8; 256];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!(libc::ucred);
        let m = socket::recvmsg::<()>(rx.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).unwrap();
        let mut pid = 0;
        for c in m.cmsgs().unwrap() {
            if let socket::ControlMessageOwned::ScmCredentials(u) = c {
                pid = u.pid();
            }
        }
        let n = m.bytes;
        (String::from_utf8_lossy(&buf[..n]).into_owned(), pid)
    }

    #[test]
    fn credentials_name_the_pid_asked_for_when_privileged() {
        let dir = std::env::temp_dir().join(format!("dockhand-notify-cred-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("n.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        socket::setsockopt(&rx, socket::sockopt::PassCred, &true).unwrap();
        let to = notify_addr(path.to_str().unwrap()).unwrap();
        let me = std::process::id() as i32;
        notify_as(&to, "STATUS=plain", None).unwrap();
        assert_eq!(recv_creds(&rx), ("STATUS=plain".to_string(), me));
        notify_as(&to, "STATUS=as me", Some(me)).unwrap();
        assert_eq!(recv_creds(&rx), ("STATUS=as me".to_string(), me));
        // Another pid: allowed only with CAP_SYS_ADMIN, refused (nothing
        // sent) without it.
        let parent = nix::unistd::getppid().as_raw();
        let sys_admin = may_send_as_another_pid();
        match notify_as(&to, "STATUS=as parent", Some(parent)) {
            Ok(()) => {
                assert!(sys_admin, "sent as another pid without CAP_SYS_ADMIN");
                assert_eq!(recv_creds(&rx), ("STATUS=as parent".to_string(), parent));
            }
            Err(e) => {
                assert!(!sys_admin, "refused with CAP_SYS_ADMIN: {e}");
                assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unanswered_barrier_times_out() {
        let (r, _w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let e = wait_hangup(&r, Duration::from_millis(50)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn fd_checks() {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        assert!(fd_is_open(r.as_raw_fd()));
        assert!(!fd_is_open(-1));
        assert!(s6_notify(2).is_err());
        let raw = std::os::fd::IntoRawFd::into_raw_fd(w);
        s6_notify(raw).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(nix::unistd::read(&r, &mut buf).unwrap(), 1);
        assert_eq!(buf[0], b'\n');
    }
}
