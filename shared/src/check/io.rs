//! Talking to a server that answers a request with a short reply (the
//! PostgreSQL and Redis checks): one bounded send-and-read under the check's
//! deadline, and the server's text made fit for a one-line message.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use super::CheckError;
use crate::net;

/// The most we read of a reply: error messages are a few hundred bytes.
pub(crate) const MAX_REPLY: usize = 16 * 1024;

/// Server text made safe for a one-line message: no control characters, bounded.
pub(crate) fn clean(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let mut out: String = s
        .trim_end_matches(['\0', '\n', '\r'])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if s.chars().count() > 200 {
        out.push_str("...");
    }
    out
}

/// The first bytes of a reply that is not what the check expected, so the
/// message shows what answered instead (another protocol's greeting).
pub(crate) fn sample(b: &[u8]) -> String {
    let mut s = clean(&b[..b.len().min(40)]);
    if b.len() > 40 {
        s.push_str("...");
    }
    s
}

/// Send `request`, then read until `done` says the reply is complete, the
/// peer closes, `MAX_REPLY` bytes arrived, or `deadline` passes (an error, unless
/// some bytes came: the caller judges those).
pub(crate) fn exchange(
    s: &mut TcpStream,
    request: &[u8],
    deadline: Instant,
    done: &dyn Fn(&[u8]) -> bool,
) -> Result<Vec<u8>, CheckError> {
    exchange_upto(s, request, deadline, MAX_REPLY, done)
}

/// `exchange` reading at most `max` bytes, for replies that can be larger
/// than an error message (MongoDB's hello, Kafka's ApiVersions). The buffer
/// grows with what arrives, never to `max` up front.
pub(crate) fn exchange_upto(
    s: &mut TcpStream,
    request: &[u8],
    deadline: Instant,
    max: usize,
    done: &dyn Fn(&[u8]) -> bool,
) -> Result<Vec<u8>, CheckError> {
    s.set_write_timeout(Some(net::left(deadline)?))
        .map_err(|e| net::io_error(&e))?;
    s.write_all(request).map_err(|e| net::io_error(&e))?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 2048];
    while buf.len() < max && !done(&buf) {
        let t = match net::left(deadline) {
            Ok(t) => t,
            Err(e) if buf.is_empty() => return Err(e),
            Err(_) => break,
        };
        s.set_read_timeout(Some(t)).map_err(|e| net::io_error(&e))?;
        match s.read(&mut chunk) {
            Ok(0) if buf.is_empty() => return Err("connection closed without a reply".into()),
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n.min(max - buf.len())]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if buf.is_empty() => return Err(net::io_error(&e)),
            Err(_) => break,
        }
    }
    Ok(buf)
}
