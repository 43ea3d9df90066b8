//! A minimal HTTP/1.1 probe over TCP or a unix socket, and over TLS for
//! https:// (the `tls` feature, `super::tls`), written over std
//! sockets so that one deadline bounds all of it (resolution, connect to
//! every address, request, response), so that what is read is capped
//! (16 KiB of headers, 64 KiB of body, whatever the server announces), and so
//! that redirects are followed the way the kubelet follows them (same host
//! name only, at most 10 requests) and proxy environment variables are not.
//!
//! `parse_head`, `Dechunk`, `resolve` and `request` are pure, so the fuzz
//! targets can drive them.
//!
//! This file answers "did the probe pass?": it sends the request and reads
//! the answer over one connection per hop, and follows redirects. The parts
//! it builds on are split by question: `url` (where does a redirect lead),
//! `request` (what bytes are sent), `response` (what did the server say).

mod request;
mod response;
mod url;

pub use request::{check_header, request};
pub use response::{head_end, is_redirect, parse_head, show, Dechunk, Framing, Head};
pub use url::{remove_dots, resolve, Resolved, Why};

use super::CheckError;
use crate::net;
use crate::target::HttpUrl;
use net::Stream as Conn;
use request::build_request;
use std::io;
use std::time::Instant;

/// Most bytes of response head (status line and headers) read.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most bytes of body read (raw, before chunked decoding).
pub const MAX_BODY: usize = 64 * 1024;
/// Longest redirect Location, and longest URL a redirect may lead to.
pub const MAX_URL: usize = 8 * 1024;
/// Most requests one probe makes when following redirects: the kubelet's
/// (Go's) limit, so the 10th redirect in a row fails the probe.
pub const MAX_REQUESTS: usize = 10;

/// What an HTTP check accepts and sends.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Accepted status ranges (inclusive); empty means 200-399.
    pub status: Vec<(u16, u16)>,
    /// Extra request headers, "Name: value".
    pub headers: Vec<String>,
    /// The body must contain this text (only the first 64 KiB are read).
    pub body_contains: Option<String>,
    /// Send the request over this unix socket instead of TCP.
    pub unix_socket: Option<std::path::PathBuf>,
    /// Judge the first response as it is, without following its redirect.
    pub no_follow: bool,
    /// How https:// is verified (also after a redirect from http://).
    pub tls: super::tls::TlsOptions,
}

/// Whether `status` passes: 200-399 (the Kubernetes rule) unless `ranges` says otherwise.
pub fn status_ok(status: u16, ranges: &[(u16, u16)]) -> bool {
    if ranges.is_empty() {
        (200..=399).contains(&status)
    } else {
        ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&status))
    }
}

/// Parse `200`, `200,204`, `200-299,301` into inclusive ranges of 100-599.
pub fn parse_status(s: &str) -> Result<Vec<(u16, u16)>, String> {
    let code = |p: &str| -> Result<u16, String> {
        let p = p.trim();
        match p.parse::<u16>() {
            Ok(n) if p.len() == 3 && (100..=599).contains(&n) => Ok(n),
            _ => Err(format!("{p:?} is not an HTTP status (100-599)")),
        }
    };
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (code(a)?, code(b)?),
            None => {
                let c = code(part)?;
                (c, c)
            }
        };
        if lo > hi {
            return Err(format!("{:?}: the range is backwards", part.trim()));
        }
        out.push((lo, hi));
    }
    if out.is_empty() {
        return Err("empty status list (use e.g. 200,204 or 200-299)".into());
    }
    Ok(out)
}

fn io_err(e: io::Error) -> CheckError {
    net::io_error(&e)
}

/// One read bounded by the deadline; `Ok(0)` at end of stream.
fn read_some(c: &mut dyn Conn, buf: &mut [u8], deadline: Instant) -> Result<usize, CheckError> {
    loop {
        c.set_timeouts(net::left(deadline)?).map_err(io_err)?;
        match c.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err(e)),
        }
    }
}

/// What one request came to.
enum Answer {
    /// The final answer: the detail of a success.
    Done(String),
    /// A redirect to follow: where, and whether the Location had no scheme.
    Follow(HttpUrl, bool),
}

/// One probe: `Ok("200")` when the status (and the body, if asked) pass,
/// else `Err(reason)` ("connection refused", "status 500", "timed out"...).
/// Redirects to the same host name are followed (not with `no_follow`), all
/// within `deadline`; the detail or reason then names the final URL.
pub fn check(url: &HttpUrl, deadline: Instant, opts: &Options) -> Result<String, CheckError> {
    match hop(url, &url.host, true, deadline, opts)? {
        Answer::Done(detail) => Ok(detail),
        Answer::Follow(next, relative) => follow(url, next, relative, deadline, opts),
    }
}

/// The kubelet's rule, which is Go's client with a redirect check: a
/// redirect to the same host name is followed, the 10th redirect in a row
/// fails, and the final response decides. A loop fails as soon as a URL
/// comes round again, rather than after 10 requests.
fn follow(
    first: &HttpUrl,
    mut next: HttpUrl,
    mut relative: bool,
    deadline: Instant,
    opts: &Options,
) -> Result<String, CheckError> {
    let mut visited = vec![first.clone()];
    // A Host header given is kept only while every Location is relative (Go's rule).
    let mut user_host = true;
    loop {
        let n = visited.len();
        let at = |u: &HttpUrl| {
            format!(
                " at {} ({n} redirect{})",
                clip(&u.text),
                if n == 1 { "" } else { "s" }
            )
        };
        if n >= MAX_REQUESTS {
            return Err(format!("stopped after {n} redirects (the last to {})", clip(&next.text)).into());
        }
        let same = |v: &HttpUrl| {
            v.tls == next.tls
                && v.port == next.port
                && v.path == next.path
                && v.host.eq_ignore_ascii_case(&next.host)
        };
        if visited.iter().any(same) {
            return Err(format!("redirect loop: {} again after {n} redirects", clip(&next.text)).into());
        }
        user_host &= relative;
        match hop(&next, &first.host, user_host, deadline, opts) {
            Ok(Answer::Done(detail)) => return Ok(format!("{detail}{}", at(&next))),
            Ok(Answer::Follow(u, r)) => {
                visited.push(std::mem::replace(&mut next, u));
                relative = r;
            }
            Err(e) => return Err(e.suffixed(&at(&next))),
        }
    }
}

/// A URL for a message: at most 200 bytes (URLs here are ASCII).
fn clip(s: &str) -> std::borrow::Cow<'_, str> {
    match s.get(..200) {
        Some(head) if s.len() > 200 => format!("{head}...").into(),
        _ => s.into(),
    }
}

/// One request and its response, on a connection of its own.
fn hop(
    url: &HttpUrl,
    first_host: &str,
    user_host: bool,
    deadline: Instant,
    opts: &Options,
) -> Result<Answer, CheckError> {
    let mut conn: Box<dyn Conn> = match &opts.unix_socket {
        Some(p) => over_tls(url, net::unix_connect(p, deadline)?, deadline, opts)?,
        None => over_tls(url, net::connect(&url.host, url.port, deadline)?, deadline, opts)?,
    };
    let req = build_request(url, &opts.headers, user_host);
    exchange(&mut *conn, url, &req, first_host, deadline, opts)
}

/// The connection as the request goes over it: TLS for https://, verified
/// against the URL's host name, else as it is.
#[cfg(feature = "tls")]
fn over_tls<S: Conn + 'static>(
    url: &HttpUrl,
    sock: S,
    deadline: Instant,
    opts: &Options,
) -> Result<Box<dyn Conn>, CheckError> {
    if !url.tls {
        return Ok(Box::new(sock));
    }
    let tls = super::tls::connect(sock, &url.host, &opts.tls, &[b"http/1.1"], deadline)?;
    Ok(Box::new(tls))
}

#[cfg(not(feature = "tls"))]
fn over_tls<S: Conn + 'static>(
    url: &HttpUrl,
    sock: S,
    _deadline: Instant,
    _opts: &Options,
) -> Result<Box<dyn Conn>, CheckError> {
    if url.tls {
        return Err("https is not in this build (the tls feature of dockhand-shared)".into());
    }
    Ok(Box::new(sock))
}

/// What to do with a redirect: follow it, or judge this response with a note
/// on why not.
fn next_step(first_host: &str, base: &HttpUrl, location: &[u8]) -> Result<Result<Answer, String>, String> {
    let not = |text: &str, why: &str| Ok(Err(format!(" (redirect to {} not followed: {why})", clip(text))));
    match resolve(base, location)? {
        Resolved::Http { url, relative } if url.host.eq_ignore_ascii_case(first_host) => {
            Ok(Ok(Answer::Follow(url, relative)))
        }
        Resolved::Http { url, .. } => not(&url.text, "another host"),
        Resolved::Other { host, text, .. } if !host.eq_ignore_ascii_case(first_host) => {
            not(&text, "another host")
        }
        Resolved::Other { text, .. } => Err(format!("cannot follow the redirect to {}", clip(&text))),
    }
}

fn exchange(
    c: &mut dyn Conn,
    url: &HttpUrl,
    req: &[u8],
    first_host: &str,
    deadline: Instant,
    opts: &Options,
) -> Result<Answer, CheckError> {
    let mut sent = 0;
    while sent < req.len() {
        c.set_timeouts(net::left(deadline)?).map_err(io_err)?;
        match c.write(&req[sent..]) {
            Ok(0) => return Err("connection closed while sending the request".into()),
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }

    // Read the head; 1xx interim responses (103 Early Hints) are skipped.
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let (head, mut body) = loop {
        if let Some(end) = head_end(&buf) {
            let head = parse_head(&buf[..end])?;
            if (100..200).contains(&head.status) && head.status != 101 {
                buf.drain(..end);
                continue;
            }
            break (head, buf.split_off(end));
        }
        if buf.len() >= MAX_HEAD {
            return Err(format!("response headers larger than {} KiB", MAX_HEAD / 1024).into());
        }
        let want = (MAX_HEAD - buf.len()).min(chunk.len());
        let n = read_some(c, &mut chunk[..want], deadline)?;
        if n == 0 {
            return Err(if buf.is_empty() {
                "connection closed without a response".into()
            } else {
                "connection closed in the middle of the headers".into()
            });
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    drop(buf);

    // A redirect not followed is judged like any response, with a note.
    let mut note = String::new();
    // An empty Location is no redirect (Go's rule).
    let location = head
        .location
        .as_deref()
        .filter(|l| !l.is_empty() && !opts.no_follow);
    if let Some(loc) = location {
        match next_step(first_host, url, loc)? {
            Ok(follow) => return Ok(follow),
            Err(why) => note = why,
        }
    }
    if !status_ok(head.status, &opts.status) {
        return Err(format!("status {}", head.status).into());
    }
    let Some(needle) = opts.body_contains.as_deref() else {
        return Ok(Answer::Done(format!("{}{note}", head.status)));
    };

    // Read at most MAX_BODY raw bytes, decoding chunks as they come, and stop
    // as soon as the text is seen or the body is complete.
    let mut decoded: Vec<u8> = Vec::new();
    let mut dechunk = Dechunk::default();
    let mut raw_read = 0usize;
    let mut complete = false;
    let mut scanned = 0usize;
    let mut pending = std::mem::take(&mut body);
    loop {
        let data = &pending[..pending.len().min(MAX_BODY - raw_read)];
        raw_read += data.len();
        match head.framing {
            Framing::None => complete = true,
            Framing::Chunked => complete = dechunk.feed(data, &mut decoded, MAX_BODY)?,
            Framing::Length(n) => {
                let take = data.len().min(n.saturating_sub(decoded.len() as u64) as usize);
                decoded.extend_from_slice(&data[..take]);
                complete = decoded.len() as u64 >= n;
            }
            Framing::Close => decoded.extend_from_slice(data),
        }
        // Only the new bytes (and a needle's length before them) can hold a new match.
        if contains(
            &decoded[scanned.saturating_sub(needle.len())..],
            needle.as_bytes(),
        ) {
            return Ok(Answer::Done(format!("{}{note}", head.status)));
        }
        scanned = decoded.len();
        if complete || raw_read >= MAX_BODY {
            break;
        }
        let n = read_some(c, &mut chunk, deadline)?;
        if n == 0 {
            break;
        }
        pending.clear();
        pending.extend_from_slice(&chunk[..n]);
    }
    let read = if raw_read >= MAX_BODY && !complete {
        format!(" (first {} KiB read)", MAX_BODY / 1024)
    } else {
        String::new()
    };
    Err(format!("status {}, body does not contain {needle:?}{read}", head.status).into())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests;
