//! Name resolution and connects bounded by a deadline, trying every address a
//! name resolves to (under musl `localhost` may give ::1 first while the
//! service listens on 127.0.0.1 only).

use crate::check::phase::{self, Phase};
use crate::check::{CheckError, Kind};
use crate::sys::addrinfo::{self, LookupError};
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A short lower-case description of an I/O error for one-line reports:
/// "connection refused", "timed out", "no route to host"...
pub fn describe(e: &io::Error) -> String {
    use io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset by peer".into(),
        ConnectionAborted => "connection aborted".into(),
        TimedOut | WouldBlock => "timed out".into(),
        NotFound => "no such file or directory".into(),
        PermissionDenied => "permission denied".into(),
        UnexpectedEof => "connection closed early".into(),
        BrokenPipe => "connection closed (broken pipe)".into(),
        AddrNotAvailable => "address not available".into(),
        _ => {
            let s = e.to_string();
            // "No route to host (os error 113)" -> "no route to host"
            let s = crate::error::without_errno(&s).to_string();
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                None => s,
            }
        }
    }
}

/// The kind of an I/O error for a check: refused, missing, timed out or other.
pub fn io_error(e: &io::Error) -> CheckError {
    use io::ErrorKind::*;
    let kind = match e.kind() {
        ConnectionRefused => Kind::Refused,
        NotFound => Kind::Missing,
        TimedOut | WouldBlock => Kind::TimedOut,
        _ => Kind::Other,
    };
    CheckError::new(kind, describe(e))
}

fn errno_error(e: nix::errno::Errno) -> CheckError {
    io_error(&io::Error::from(e))
}

/// The time left before `deadline`, or a timed-out error once it passed:
/// what every check sets as its socket timeout before each step.
pub(crate) fn left(deadline: Instant) -> Result<Duration, CheckError> {
    crate::clock::time_left(deadline).ok_or_else(CheckError::timed_out)
}

/// Resolve `host:port` within `timeout`. IP literals need no lookup. A name
/// that does not resolve yet is an error like any other, so callers retry it.
pub fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, CheckError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    phase::enter(Phase::Resolving);
    // getaddrinfo has no timeout of its own: run it on a thread and stop
    // waiting for it at the deadline (the thread ends when the lookup does).
    let (tx, rx) = mpsc::channel();
    let h = host.to_string();
    let spawned = std::thread::Builder::new().stack_size(64 * 1024).spawn(move || {
        let _ = tx.send(addrinfo::lookup(&h, port));
    });
    let fail = |kind, why: &str| CheckError::new(kind, format!("cannot resolve {host}: {why}"));
    if spawned.is_err() {
        return Err(fail(Kind::Other, "no thread for the lookup"));
    }
    match rx.recv_timeout(timeout) {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(e)) => Err(fail(Kind::Lookup, &describe_lookup(e))),
        Err(_) => Err(fail(Kind::TimedOut, "lookup timed out")),
    }
}

/// getaddrinfo's code in words of our own (the C libraries word it differently).
fn describe_lookup(e: LookupError) -> String {
    match e {
        LookupError::NoName => "name does not resolve".into(),
        LookupError::Again => "no answer from the name server yet (temporary failure)".into(),
        LookupError::Fail => "the name server failed".into(),
        LookupError::System(errno) => describe(&io::Error::from_raw_os_error(errno)),
        LookupError::Other(code) => format!("lookup failed (getaddrinfo code {code})"),
    }
}

/// Connect to the first address of `host:port` that answers before `deadline`.
/// Each address gets a fair share of the time left, so one black-holed
/// address cannot eat the whole deadline.
pub fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, CheckError> {
    let addrs = resolve(host, port, left(deadline)?)?;
    phase::enter(Phase::Connecting);
    let mut last = CheckError::timed_out();
    for (i, addr) in addrs.iter().enumerate() {
        let left = left(deadline)?;
        let share = left / (addrs.len() - i) as u32;
        let share = share.max(Duration::from_millis(1));
        match TcpStream::connect_timeout(addr, share) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                phase::enter(Phase::Waiting);
                return Ok(s);
            }
            Err(e) => {
                last = io_error(&e);
                // "[::1]:80: timed out": the message still ends with what
                // happened, as healthcheck's "timed out after 3s" expects.
                if addrs.len() > 1 {
                    last.message = format!("{addr}: {}", last.message);
                }
            }
        }
    }
    Err(last)
}

/// Connect to a unix stream socket by `deadline`. A blocking connect to a
/// listener whose backlog is full (a hung server) waits for room, bounded
/// only by the socket's send timeout, which `UnixStream::connect` cannot set
/// before connecting: so the socket is made and bounded first.
pub fn unix_connect(
    path: &std::path::Path,
    deadline: Instant,
) -> Result<std::os::unix::net::UnixStream, CheckError> {
    use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, UnixAddr};
    use std::os::fd::AsRawFd;
    let t = left(deadline)?;
    phase::enter(Phase::Connecting);
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(errno_error)?;
    socket::setsockopt(
        &fd,
        sockopt::SendTimeout,
        &nix::sys::time::TimeVal::new(t.as_secs() as _, t.subsec_micros().max(1) as _),
    )
    .map_err(errno_error)?;
    let addr = UnixAddr::new(path).map_err(errno_error)?;
    loop {
        match socket::connect(fd.as_raw_fd(), &addr) {
            Ok(()) => {
                phase::enter(Phase::Waiting);
                return Ok(std::os::unix::net::UnixStream::from(fd));
            }
            // The wait for room in the backlog ended at the send timeout.
            Err(nix::errno::Errno::EAGAIN) => return Err(CheckError::timed_out()),
            Err(nix::errno::Errno::EINTR) => left(deadline).map(drop)?,
            Err(e) => return Err(errno_error(e)),
        }
    }
}

/// A connected stream whose every read and write can be bounded: what a
/// check talks over (TCP, a unix socket, TLS over either).
pub trait Stream: io::Read + io::Write {
    /// Bound each following read and write by `d`.
    fn set_timeouts(&self, d: Duration) -> io::Result<()>;
}

impl Stream for TcpStream {
    fn set_timeouts(&self, d: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(d))?;
        self.set_write_timeout(Some(d))
    }
}

impl Stream for std::os::unix::net::UnixStream {
    fn set_timeouts(&self, d: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(d))?;
        self.set_write_timeout(Some(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn connects_to_a_listener_and_reports_refused() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let dl = Instant::now() + Duration::from_secs(2);
        assert!(connect("127.0.0.1", port, dl).is_ok());
        drop(l);
        let e = connect("127.0.0.1", port, Instant::now() + Duration::from_secs(2)).unwrap_err();
        assert_eq!(e, CheckError::new(Kind::Refused, "connection refused"));
        // A deadline already passed: timed out, whatever the port would say.
        let e = connect("127.0.0.1", port, Instant::now()).unwrap_err();
        assert_eq!(e.kind, Kind::TimedOut);
    }

    #[test]
    fn localhost_tries_every_address() {
        // Listen on IPv4 only; "localhost" may resolve to ::1 first.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(connect("localhost", port, Instant::now() + Duration::from_secs(2)).is_ok());
    }

    #[test]
    fn unresolvable_name_is_an_error_not_a_panic() {
        let e = resolve("no-such-host.invalid", 80, Duration::from_secs(5)).unwrap_err();
        assert!(e.contains("no-such-host.invalid"), "{e}");
        // Without DNS the resolver may say "no answer yet" instead of "no
        // such name": either way it is a lookup failure, whatever the libc.
        assert_eq!(e.kind, Kind::Lookup, "{e}");
        // A name with a NUL names nothing, decided without the resolver.
        let e = resolve("a\0b", 80, Duration::from_secs(5)).unwrap_err();
        assert_eq!(
            e,
            CheckError::new(Kind::Lookup, "cannot resolve a\0b: name does not resolve")
        );
    }

    #[test]
    fn a_connect_that_hangs_is_in_the_connecting_phase() {
        use crate::check::phase::{self, Tracker};
        use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
        use std::os::fd::AsRawFd;
        use std::sync::Arc;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let p = dir.join("s.sock");
        // A listener nobody accepts on, with a backlog of 1 filled by
        // non-blocking connects until the kernel says it is full: a blocking
        // connect then waits for room, so the attempt stays in "connecting".
        let addr = UnixAddr::new(&p).unwrap();
        let lfd = socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        socket::bind(lfd.as_raw_fd(), &addr).unwrap();
        socket::listen(&lfd, socket::Backlog::new(1).unwrap()).unwrap();
        let _l = std::os::unix::net::UnixListener::from(lfd);
        let mut filler = Vec::new();
        loop {
            let fd = socket::socket(
                AddressFamily::Unix,
                SockType::Stream,
                SockFlag::SOCK_NONBLOCK,
                None,
            )
            .unwrap();
            match socket::connect(fd.as_raw_fd(), &addr) {
                Ok(()) => filler.push(fd),
                Err(nix::errno::Errno::EAGAIN) => break,
                Err(e) => panic!("{e}"),
            }
            assert!(filler.len() < 100, "the backlog never filled");
        }
        let t = Arc::new(Tracker::default());
        let t2 = t.clone();
        let p2 = p.clone();
        let h = std::thread::spawn(move || {
            phase::watch(t2);
            unix_connect(&p2, Instant::now() + Duration::from_secs(60))
        });
        let end = Instant::now() + Duration::from_secs(30);
        while t.get() != phase::Phase::Connecting && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(t.get(), phase::Phase::Connecting);
        // Room in the backlog: the connect completes, the phase moves on.
        drop(filler.pop());
        let mut conns = Vec::new();
        let l = &_l;
        l.set_nonblocking(true).unwrap();
        while let Ok((c, _)) = l.accept() {
            conns.push(c);
        }
        assert!(h.join().unwrap().is_ok());
        assert_eq!(t.get(), phase::Phase::Waiting);
    }

    #[test]
    fn unix_connect_kinds() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let p = dir.join("s.sock");
        let soon = || Instant::now() + Duration::from_secs(2);
        assert_eq!(unix_connect(&p, soon()).unwrap_err().kind, Kind::Missing);
        // A socket file nobody listens on any more: refused.
        drop(std::os::unix::net::UnixListener::bind(&p).unwrap());
        assert_eq!(unix_connect(&p, soon()).unwrap_err().kind, Kind::Refused);
    }
}
