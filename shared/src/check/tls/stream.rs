//! The TLS connection: the handshake under the check's deadline, then a
//! stream that reads and writes plaintext, each socket operation bounded by
//! the time left.

use super::trust;
use super::why;
use super::TlsOptions;
use crate::check::CheckError;
use crate::net::{self, Stream};
use rustls::pki_types::ServerName;
use rustls::ClientConnection;
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// TLS over `S`, after a completed handshake.
pub struct TlsStream<S: Stream> {
    conn: ClientConnection,
    sock: S,
    /// Every socket read and write ends by then (`set_timeouts` moves it).
    deadline: Cell<Instant>,
}

impl<S: Stream> std::fmt::Debug for TlsStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("alpn", &self.alpn())
            .finish_non_exhaustive()
    }
}

/// Connect TLS over `sock` to `host` (a name or an IP address: sent as SNI
/// when a name, and what the certificate must be for), offering the ALPN
/// protocols `alpn` (e.g. `b"h2"`; none when empty). The handshake ends by
/// `deadline`, and so does every later read and write unless
/// `set_timeouts` moves it.
pub fn connect<S: Stream>(
    mut sock: S,
    host: &str,
    opts: &TlsOptions,
    alpn: &[&[u8]],
    deadline: Instant,
) -> Result<TlsStream<S>, CheckError> {
    let (config, trusted) = trust::client_config(opts, alpn)?;
    let name = ServerName::try_from(host.to_string())
        .map_err(|_| format!("{host:?} is not a host name TLS can verify"))?;
    let mut conn =
        ClientConnection::new(config, name).map_err(|e| why::handshake(&e, host, &trusted, opts))?;
    while conn.is_handshaking() || conn.wants_write() {
        sock.set_timeouts(net::left(deadline)?)
            .map_err(|e| net::io_error(&e))?;
        if conn.wants_write() {
            match conn.write_tls(&mut sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(net::io_error(&e).context("TLS handshake")),
            }
            continue;
        }
        match conn.read_tls(&mut sock) {
            Ok(0) => return Err("TLS handshake: the server closed the connection".into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(net::io_error(&e).context("TLS handshake")),
        }
        if let Err(e) = conn.process_new_packets() {
            // Tell the server why (an alert), as far as the time allows.
            if let Ok(t) = net::left(deadline) {
                let _ = sock.set_timeouts(t.min(Duration::from_millis(200)));
                let _ = conn.write_tls(&mut sock);
            }
            return Err(why::handshake(&e, host, &trusted, opts));
        }
    }
    Ok(TlsStream {
        conn,
        sock,
        deadline: Cell::new(deadline),
    })
}

impl<S: Stream> TlsStream<S> {
    /// The protocol the server chose by ALPN, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// Bound the next socket operation by the deadline.
    fn bound(&self) -> io::Result<()> {
        match crate::clock::time_left(self.deadline.get()) {
            Some(t) => self.sock.set_timeouts(t),
            None => Err(io::ErrorKind::TimedOut.into()),
        }
    }

    /// Send what rustls has queued.
    fn flush_tls(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            self.bound()?;
            match self.conn.write_tls(&mut self.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<S: Stream> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                // The peer closed TCP without close_notify. Many HTTP
                // servers do; what was read is judged as it is (a probe
                // reads a status and at most a bounded body).
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            self.flush_tls()?;
            self.bound()?;
            match self.conn.read_tls(&mut self.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            self.conn
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, why::after(&e)))?;
        }
    }
}

impl<S: Stream> Write for TlsStream<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.conn.writer().write(buf)?;
        self.flush_tls()?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.conn.writer().flush()?;
        self.flush_tls()
    }
}

impl<S: Stream> Stream for TlsStream<S> {
    fn set_timeouts(&self, d: Duration) -> io::Result<()> {
        self.deadline.set(Instant::now() + d);
        self.sock.set_timeouts(d)
    }
}
