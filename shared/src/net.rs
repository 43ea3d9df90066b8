//! Name resolution and connects bounded by a deadline, trying every address a
//! name resolves to (under musl `localhost` may give ::1 first while the
//! service listens on 127.0.0.1 only).

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
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
            let s = s.split(" (os error").next().unwrap_or(&s).to_string();
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                None => s,
            }
        }
    }
}

/// Resolve `host:port` within `timeout`. IP literals need no lookup. A name
/// that does not resolve yet is an error like any other, so callers retry it.
pub fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    // getaddrinfo has no timeout of its own: run it on a thread and stop
    // waiting for it at the deadline (the thread ends when the lookup does).
    let (tx, rx) = mpsc::channel();
    let h = host.to_string();
    let spawned = std::thread::Builder::new().stack_size(64 * 1024).spawn(move || {
        let _ = tx.send(
            (h.as_str(), port)
                .to_socket_addrs()
                .map(|a| a.collect::<Vec<_>>()),
        );
    });
    if spawned.is_err() {
        return Err(format!("cannot resolve {host}: no thread for the lookup"));
    }
    match rx.recv_timeout(timeout) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(format!("{host}: name has no addresses")),
        Ok(Err(e)) => Err(format!("cannot resolve {host}: {}", describe_lookup(&e))),
        Err(_) => Err(format!("cannot resolve {host}: lookup timed out")),
    }
}

fn describe_lookup(e: &io::Error) -> String {
    let s = e.to_string();
    if s.contains("failed to lookup address")
        || s.contains("Name does not resolve")
        || s.contains("not known")
    {
        "name does not resolve".into()
    } else {
        describe(e)
    }
}

/// Connect to the first address of `host:port` that answers before `deadline`.
/// Each address gets a fair share of the time left, so one black-holed
/// address cannot eat the whole deadline.
pub fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err("timed out".into());
    }
    let addrs = resolve(host, port, left)?;
    let mut last = String::from("timed out");
    for (i, addr) in addrs.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timed out".into());
        }
        let share = left / (addrs.len() - i) as u32;
        let share = share.max(Duration::from_millis(1));
        match TcpStream::connect_timeout(addr, share) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => {
                last = if addrs.len() > 1 {
                    format!("{} ({addr})", describe(&e))
                } else {
                    describe(&e)
                };
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
) -> Result<std::os::unix::net::UnixStream, String> {
    use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, UnixAddr};
    use std::os::fd::AsRawFd;
    let left = |deadline: Instant| match deadline.saturating_duration_since(Instant::now()) {
        d if d.is_zero() => Err("timed out".to_string()),
        d => Ok(d),
    };
    let t = left(deadline)?;
    let errno = |e: nix::errno::Errno| describe(&io::Error::from(e));
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(errno)?;
    socket::setsockopt(
        &fd,
        sockopt::SendTimeout,
        &nix::sys::time::TimeVal::new(t.as_secs() as _, t.subsec_micros().max(1) as _),
    )
    .map_err(errno)?;
    let addr = UnixAddr::new(path).map_err(errno)?;
    loop {
        match socket::connect(fd.as_raw_fd(), &addr) {
            Ok(()) => return Ok(std::os::unix::net::UnixStream::from(fd)),
            // The wait for room in the backlog ended at the send timeout.
            Err(nix::errno::Errno::EAGAIN) => return Err("timed out".into()),
            Err(nix::errno::Errno::EINTR) => left(deadline).map(drop)?,
            Err(e) => return Err(errno(e)),
        }
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
        assert_eq!(e, "connection refused");
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
    }
}
