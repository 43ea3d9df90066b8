//! A minimal HTTP/1.1 probe over TCP or a unix socket, written over std
//! sockets so that one deadline bounds all of it (resolution, connect to
//! every address, request, response), so that what is read is capped
//! (16 KiB of headers, 64 KiB of body, whatever the server announces), and so
//! that redirects are followed the way the kubelet follows them (same host
//! name only, at most 10 requests) and proxy environment variables are not.
//!
//! `parse_head`, `Dechunk`, `resolve` and `request` are pure, so the fuzz
//! targets can drive them.

use super::CheckError;
use crate::net;
use crate::target::{HttpUrl, Target};
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

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

/// Check one `Name: value` request header: a token name, no line breaks.
pub fn check_header(h: &str) -> Result<(), String> {
    let Some((name, value)) = h.split_once(':') else {
        return Err(format!("{h:?} is not a header (use \"Name: value\")"));
    };
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(tchar) {
        return Err(format!("{h:?}: {name:?} is not a header name"));
    }
    if value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
        return Err(format!("{h:?}: line breaks are not allowed in a header value"));
    }
    Ok(())
}

/// How the body of a response is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body at all (1xx, 204, 304).
    None,
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// A parsed response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub framing: Framing,
    /// The first Location header of a redirect (301, 302, 303, 307, 308),
    /// trimmed, folded lines joined; `None` for other statuses.
    pub location: Option<Vec<u8>>,
}

/// The statuses a client follows (Go's, and so the kubelet's): the others
/// in 300-399 (300, 304, ...) are final answers.
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Where the head ends (the index just past the blank line), or `None` when
/// more bytes are needed. Bare `\n` line ends are accepted, as most clients do.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(p) = buf[i..].iter().position(|&b| b == b'\n') {
        let nl = i + p;
        // The line that starts right after this newline: empty means the end.
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            _ => i = nl + 1,
        }
    }
    None
}

/// Server bytes made printable for a message: quoted, at most `max` bytes,
/// UTF-8 text kept, control characters escaped, other bytes as `\xNN`.
pub fn show(bytes: &[u8], max: usize) -> String {
    let cut = &bytes[..bytes.len().min(max)];
    let mut s = String::with_capacity(cut.len() + 5);
    s.push('"');
    for chunk in cut.utf8_chunks() {
        for c in chunk.valid().chars() {
            s.extend(c.escape_debug());
        }
        for b in chunk.invalid() {
            let _ = write!(s, "\\x{b:02x}");
        }
    }
    s.push('"');
    if cut.len() < bytes.len() {
        s.push_str("...");
    }
    s
}

/// Optional whitespace (SP, HTAB) off both ends.
fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// What a head says about framing and redirects, filled field by field.
#[derive(Default)]
struct Fields {
    length: Option<u64>,
    chunked: bool,
    location: Option<Vec<u8>>,
}

impl Fields {
    fn field(&mut self, name: &[u8], value: &[u8], want_location: bool) -> Result<(), String> {
        let value = trim_ows(value);
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("bad Content-Length {}", show(value, 60)))?;
            if self.length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length headers".into());
            }
            self.length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Only the last coding decides whether the body is chunked.
            self.chunked = value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|c| trim_ows(c).eq_ignore_ascii_case(b"chunked"));
        } else if want_location && self.location.is_none() && name.eq_ignore_ascii_case(b"location") {
            self.location = Some(value.to_vec());
        }
        Ok(())
    }
}

/// Parse a response head (the status line and headers, up to and including
/// the blank line or without it). Pure: no I/O. Field values and the reason
/// phrase may hold any bytes (obs-text, RFC 9110 §5.5); a line that starts
/// with a space or tab continues the field before it (obs-fold, RFC 9112
/// §5.2) and is joined to it with one space.
pub fn parse_head(bytes: &[u8]) -> Result<Head, String> {
    let mut lines = bytes
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next().unwrap_or(b"");
    let bad = || format!("malformed status line {}", show(first, 60));
    // HTTP/1.x SP 3DIGIT [SP reason-phrase]
    let rest = first.strip_prefix(b"HTTP/1.").ok_or_else(bad)?;
    let ok = rest.len() >= 5
        && rest[0].is_ascii_digit()
        && rest[1] == b' '
        && rest[2..5].iter().all(u8::is_ascii_digit)
        && rest.get(5).is_none_or(|&b| b == b' ');
    if !ok {
        return Err(bad());
    }
    let status = rest[2..5].iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    if !(100..=999).contains(&status) {
        return Err(bad());
    }
    let want_location = is_redirect(status);
    let mut fields = Fields::default();
    // The field being read: its name and value, and the joined value once a
    // folded line has continued it (allocated only then).
    let mut open: Option<(&[u8], &[u8])> = None;
    let mut folded: Option<Vec<u8>> = None;
    for line in lines {
        if line.is_empty() {
            break;
        }
        if matches!(line[0], b' ' | b'\t') {
            // Before the first field there is nothing to continue: such a
            // line is skipped (RFC 9112 §2.2 allows either that or rejecting).
            if let Some((_, v)) = open {
                let j = folded.get_or_insert_with(|| trim_ows(v).to_vec());
                j.push(b' ');
                j.extend_from_slice(trim_ows(line));
            }
            continue;
        }
        if let Some((n, v)) = open.take() {
            fields.field(n, folded.take().as_deref().unwrap_or(v), want_location)?;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(format!("malformed header line {}", show(line, 60)));
        };
        open = Some((&line[..colon], &line[colon + 1..]));
    }
    if let Some((n, v)) = open {
        fields.field(n, folded.as_deref().unwrap_or(v), want_location)?;
    }
    let framing = if status < 200 || status == 204 || status == 304 {
        Framing::None
    } else if fields.chunked {
        Framing::Chunked
    } else if let Some(n) = fields.length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    Ok(Head {
        status,
        framing,
        location: fields.location,
    })
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum St {
    #[default]
    Size,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    EndLf,
    Done,
}

/// An incremental decoder of `Transfer-Encoding: chunked`. Pure: feed it
/// bytes as they arrive; it never holds more than `out` does.
#[derive(Clone, Debug, Default)]
pub struct Dechunk {
    st: St,
    size: u64,
    digits: u8,
}

impl Dechunk {
    /// Decode `input`, appending data to `out` (at most up to `limit` bytes
    /// of `out`; the rest of the data is dropped). `Ok(true)` once the last
    /// chunk and the trailers are complete.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<bool, String> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.st {
                St::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        if self.digits >= 15 {
                            return Err("chunk size too large".into());
                        }
                        self.size = self.size * 16 + (b as char).to_digit(16).unwrap_or(0) as u64;
                        self.digits += 1;
                    }
                    b';' | b' ' | b'\t' if self.digits > 0 => self.st = St::Ext,
                    b'\r' if self.digits > 0 => self.st = St::SizeLf,
                    b'\n' if self.digits > 0 => self.size_done(),
                    _ => return Err("malformed chunked body".into()),
                },
                St::Ext => match b {
                    b'\r' => self.st = St::SizeLf,
                    b'\n' => self.size_done(),
                    _ => {}
                },
                St::SizeLf => {
                    if b != b'\n' {
                        return Err("malformed chunked body".into());
                    }
                    self.size_done();
                }
                St::Data => {
                    let n = (self.size.min((input.len() - i) as u64)) as usize;
                    let room = limit.saturating_sub(out.len()).min(n);
                    out.extend_from_slice(&input[i..i + room]);
                    self.size -= n as u64;
                    if self.size == 0 {
                        self.st = St::DataCr;
                    }
                    i += n;
                    continue;
                }
                St::DataCr => match b {
                    b'\r' => self.st = St::DataLf,
                    b'\n' => self.next_chunk(),
                    _ => return Err("malformed chunked body".into()),
                },
                St::DataLf => {
                    if b != b'\n' {
                        return Err("malformed chunked body".into());
                    }
                    self.next_chunk();
                }
                St::TrailerStart => match b {
                    b'\r' => self.st = St::EndLf,
                    b'\n' => self.st = St::Done,
                    _ => self.st = St::TrailerLine,
                },
                St::TrailerLine => {
                    if b == b'\n' {
                        self.st = St::TrailerStart;
                    }
                }
                St::EndLf => {
                    if b != b'\n' {
                        return Err("malformed chunked body".into());
                    }
                    self.st = St::Done;
                }
                St::Done => return Ok(true),
            }
            i += 1;
        }
        Ok(self.st == St::Done)
    }

    fn size_done(&mut self) {
        self.st = if self.size == 0 {
            St::TrailerStart
        } else {
            St::Data
        };
    }

    fn next_chunk(&mut self) {
        self.st = St::Size;
        self.size = 0;
        self.digits = 0;
    }
}

/// The bytes of the request.
pub fn request(url: &HttpUrl, headers: &[String]) -> Vec<u8> {
    build_request(url, headers, true)
}

/// `Name: value` split, the value trimmed.
fn split_header(h: &str) -> (&str, &str) {
    let (n, v) = h.split_once(':').unwrap_or((h, ""));
    (n.trim(), v.trim())
}

/// The request, with the kubelet's rules for the headers given: a Host,
/// User-Agent or Accept header replaces ours (the first one given counts for
/// Host and User-Agent), an empty User-Agent or Accept is not sent, an empty
/// Host leaves ours. `user_host`: whether a given Host counts (Go drops it
/// after a redirect to an absolute URL).
fn build_request(url: &HttpUrl, headers: &[String], user_host: bool) -> Vec<u8> {
    let mut host = None;
    let mut agent = None;
    let mut accept = false;
    for h in headers {
        let (n, v) = split_header(h);
        if n.eq_ignore_ascii_case("host") {
            host = host.or(Some(v));
        } else if n.eq_ignore_ascii_case("user-agent") {
            agent = agent.or(Some(v));
        } else if n.eq_ignore_ascii_case("accept") {
            accept = true;
        }
    }
    let ours;
    let host = match host.filter(|v| user_host && !v.is_empty()) {
        Some(v) => v,
        None => {
            ours = url.host_header();
            &ours
        }
    };
    let mut r =
        String::with_capacity(160 + url.path.len() + headers.iter().map(|h| h.len() + 2).sum::<usize>());
    for part in ["GET ", &url.path, " HTTP/1.1\r\nHost: ", host, "\r\n"] {
        r.push_str(part);
    }
    match agent {
        None => {
            for part in ["User-Agent: dockhand-healthcheck/", crate::VERSION, "\r\n"] {
                r.push_str(part);
            }
        }
        Some("") => {}
        Some(v) => {
            for part in ["User-Agent: ", v, "\r\n"] {
                r.push_str(part);
            }
        }
    }
    if !accept {
        r.push_str("Accept: */*\r\n");
    }
    r.push_str("Connection: close\r\n");
    for h in headers {
        let (n, v) = split_header(h);
        let ours = n.eq_ignore_ascii_case("host") || n.eq_ignore_ascii_case("user-agent");
        if ours || (v.is_empty() && n.eq_ignore_ascii_case("accept")) {
            continue;
        }
        r.push_str(h.trim());
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// Where a redirect leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    /// An http:// URL. `relative`: the Location had no scheme.
    Http { url: HttpUrl, relative: bool },
    /// Somewhere this client does not go: another scheme, or an http URL it
    /// cannot parse. `host`: the host name, `""` when there is none.
    Other { host: String, text: String, why: Why },
}

/// Why a redirect cannot be followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    Https,
    Scheme,
    Unparsable,
}

/// Resolve a Location against the URL that answered it (RFC 3986 §5.2,
/// strict: `http:g` is not relative). Spaces and bytes past ASCII are
/// percent-encoded, as browsers and Go do; other control bytes, or a
/// Location or result longer than `MAX_URL`, are an error. The fragment is
/// dropped. Pure: no I/O.
pub fn resolve(base: &HttpUrl, location: &[u8]) -> Result<Resolved, String> {
    let too_long = || format!("redirect Location longer than {} KiB", MAX_URL / 1024);
    if location.len() > MAX_URL {
        return Err(too_long());
    }
    let mut s = String::with_capacity(location.len());
    for &b in location {
        match b {
            0x21..=0x7e => s.push(b as char),
            b' ' | 0x80..=0xff => {
                let _ = write!(s, "%{b:02X}");
            }
            _ => return Err(format!("bad redirect Location {}", show(location, 60))),
        }
    }
    let s = s.split('#').next().unwrap_or("");
    let scheme = match s.find([':', '/', '?']) {
        Some(i) if s.as_bytes()[i] == b':' && is_scheme(&s[..i]) => Some((&s[..i], &s[i + 1..])),
        _ => None,
    };
    let (scheme, rest) = match scheme {
        Some(sr) => sr,
        None if s.starts_with("//") => ("http", s),
        None => {
            let url = relative(base, s);
            if url.path.len() > MAX_URL {
                return Err(too_long());
            }
            return Ok(Resolved::Http { url, relative: true });
        }
    };
    let host = rest
        .strip_prefix("//")
        .map(hostname)
        .unwrap_or_default()
        .to_string();
    let other = |why| Resolved::Other {
        host: host.clone(),
        text: s.to_string(),
        why,
    };
    if scheme.eq_ignore_ascii_case("https") {
        return Ok(other(Why::Https));
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Ok(other(Why::Scheme));
    }
    if !rest.starts_with("//") {
        return Ok(other(Why::Unparsable));
    }
    let Ok(Target::Http(mut url)) = Target::parse(&format!("http:{rest}")) else {
        return Ok(other(Why::Unparsable));
    };
    let (path, query) = split_query(&url.path);
    url.path = with_query(remove_dots(path), query);
    if url.path.len() > MAX_URL {
        return Err(too_long());
    }
    url.text = format!("http://{}{}", url.host_header(), url.path);
    Ok(Resolved::Http {
        url,
        relative: scheme_less(location),
    })
}

/// Whether the Location had no scheme (`//host/x` has none), which decides
/// whether a Host header given is kept, as Go decides it.
fn scheme_less(location: &[u8]) -> bool {
    let s = String::from_utf8_lossy(location);
    !matches!(s.find([':', '/', '?', '#']), Some(i) if s.as_bytes()[i] == b':' && is_scheme(&s[..i]))
}

/// RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
fn is_scheme(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// The host name of an authority (`user@[::1]:80` gives `::1`).
fn hostname(after_slashes: &str) -> &str {
    let auth = after_slashes.split(['/', '?']).next().unwrap_or("");
    let hp = auth.rsplit_once('@').map_or(auth, |(_, hp)| hp);
    if let Some(v6) = hp.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    hp.rsplit_once(':').map_or(hp, |(h, _)| h)
}

fn split_query(p: &str) -> (&str, Option<&str>) {
    match p.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (p, None),
    }
}

fn with_query(mut path: String, query: Option<&str>) -> String {
    if let Some(q) = query {
        path.push('?');
        path.push_str(q);
    }
    path
}

/// A reference without scheme or authority, against `base` (RFC 3986 §5.2.2).
fn relative(base: &HttpUrl, r: &str) -> HttpUrl {
    let (bpath, bquery) = split_query(&base.path);
    let (rpath, rquery) = split_query(r);
    let path = if rpath.is_empty() {
        with_query(bpath.to_string(), rquery.or(bquery))
    } else if rpath.starts_with('/') {
        with_query(remove_dots(rpath), rquery)
    } else {
        let dir = &bpath[..bpath.rfind('/').map_or(0, |i| i + 1)];
        with_query(remove_dots(&format!("{dir}{rpath}")), rquery)
    };
    HttpUrl {
        host: base.host.clone(),
        port: base.port,
        text: format!("http://{}{path}", base.host_header()),
        path,
    }
}

/// RFC 3986 §5.2.4 for a path that starts with `/` (one is added if not).
pub fn remove_dots(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut segs = path.strip_prefix('/').unwrap_or(path).split('/').peekable();
    while let Some(seg) = segs.next() {
        let last = segs.peek().is_none();
        match seg {
            "." | ".." => {
                if seg == ".." {
                    out.pop();
                }
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    let mut r = String::with_capacity(path.len() + 1);
    for s in &out {
        r.push('/');
        r.push_str(s);
    }
    if r.is_empty() {
        r.push('/');
    }
    r
}

/// A stream whose every read and write can be bounded.
trait Conn: Read + Write {
    fn set_timeouts(&self, d: Duration) -> io::Result<()>;
}

impl Conn for std::net::TcpStream {
    fn set_timeouts(&self, d: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(d))?;
        self.set_write_timeout(Some(d))
    }
}

impl Conn for UnixStream {
    fn set_timeouts(&self, d: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(d))?;
        self.set_write_timeout(Some(d))
    }
}

/// The time left before `deadline`, or "timed out". Zero is not a valid
/// socket timeout (it means "never"), so it counts as passed.
fn left(deadline: Instant) -> Result<Duration, CheckError> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        Err(CheckError::timed_out())
    } else {
        Ok(d)
    }
}

fn io_err(e: io::Error) -> CheckError {
    net::io_error(&e)
}

/// One read bounded by the deadline; `Ok(0)` at end of stream.
fn read_some(c: &mut dyn Conn, buf: &mut [u8], deadline: Instant) -> Result<usize, CheckError> {
    loop {
        c.set_timeouts(left(deadline)?).map_err(io_err)?;
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
            v.port == next.port && v.path == next.path && v.host.eq_ignore_ascii_case(&next.host)
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
        Some(p) => Box::new(net::unix_connect(p, deadline)?),
        None => Box::new(net::connect(&url.host, url.port, deadline)?),
    };
    let req = build_request(url, &opts.headers, user_host);
    exchange(&mut *conn, url, &req, first_host, deadline, opts)
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
        Resolved::Other {
            text,
            why: Why::Https,
            ..
        } => not(&text, "https is not in this build"),
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
        c.set_timeouts(left(deadline)?).map_err(io_err)?;
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
mod tests {
    use super::*;

    #[test]
    fn status_rule() {
        assert!(status_ok(200, &[]) && status_ok(301, &[]) && status_ok(399, &[]));
        assert!(!status_ok(404, &[]) && !status_ok(500, &[]) && !status_ok(199, &[]));
        let r = parse_status("200,204").unwrap();
        assert!(status_ok(204, &r) && !status_ok(201, &r));
        let r = parse_status("200-299, 418").unwrap();
        assert!(status_ok(250, &r) && status_ok(418, &r) && !status_ok(301, &r));
        for bad in ["", "2000", "99", "abc", "300-200", "600", "20x"] {
            assert!(parse_status(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_are_checked() {
        assert!(check_header("Authorization: Bearer x").is_ok());
        assert!(check_header("X-A:").is_ok());
        assert!(check_header("no colon").is_err());
        assert!(check_header("Bad Name: x").is_err());
        assert!(check_header(": x").is_err());
        assert!(check_header("X: a\r\nInjected: 1").is_err());
    }

    #[test]
    fn head_end_finds_blank_line() {
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\n\r\nbody"), Some(19));
        assert_eq!(head_end(b"HTTP/1.1 200 OK\nA: b\n\nbody"), Some(22));
        assert_eq!(head_end(b"HTTP/1.1 200 OK\r\nA: b\r\n"), None);
        assert_eq!(head_end(b""), None);
        assert_eq!(head_end(b"\n"), None);
    }

    #[test]
    fn parse_head_framing() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n").unwrap();
        assert_eq!(
            h,
            Head {
                status: 200,
                framing: Framing::Length(12),
                location: None,
            }
        );
        let h = parse_head(
            b"HTTP/1.0 404 Not Found\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            h,
            Head {
                status: 404,
                framing: Framing::Chunked,
                location: None,
            }
        );
        let h = parse_head(b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::None);
        let h = parse_head(b"HTTP/1.1 500\n\n").unwrap();
        assert_eq!(
            h,
            Head {
                status: 500,
                framing: Framing::Close,
                location: None,
            }
        );
        let h = parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 4294967296\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Length(4_294_967_296));
    }

    #[test]
    fn parse_head_rejects_garbage() {
        for bad in [
            &b"HTTP/2 200\r\n\r\n"[..],
            b"ICY 200 OK\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 099 x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"\xff\xfe",
            b"",
        ] {
            assert!(parse_head(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    fn dechunk_all(input: &[u8], step: usize) -> Result<(Vec<u8>, bool), String> {
        let mut d = Dechunk::default();
        let mut out = Vec::new();
        let mut done = false;
        for piece in input.chunks(step.max(1)) {
            done = d.feed(piece, &mut out, 1 << 20)?;
        }
        Ok((out, done))
    }

    #[test]
    fn dechunk_in_any_split() {
        let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n";
        for step in [1, 2, 3, 7, 100] {
            assert_eq!(
                dechunk_all(body, step).unwrap(),
                (b"hello, world".to_vec(), true),
                "step {step}"
            );
        }
        // Bare LF line ends and upper-case hex.
        assert_eq!(
            dechunk_all(b"A\nabcdefghij\n0\n\n", 4).unwrap(),
            (b"abcdefghij".to_vec(), true)
        );
        // Incomplete: data so far, not done.
        assert_eq!(dechunk_all(b"5\r\nhel", 2).unwrap(), (b"hel".to_vec(), false));
    }

    #[test]
    fn dechunk_rejects_and_limits() {
        assert!(dechunk_all(b"zz\r\n", 1).is_err());
        assert!(dechunk_all(b"\r\n", 1).is_err());
        assert!(dechunk_all(b"3\r\nabcX\r\n", 1).is_err());
        assert!(dechunk_all(b"ffffffffffffffffff\r\n", 1).is_err());
        let mut d = Dechunk::default();
        let mut out = Vec::new();
        assert!(!d.feed(b"10\r\n0123456789abcdef", &mut out, 4).unwrap());
        assert_eq!(out, b"0123");
    }

    #[test]
    fn request_has_host_and_headers() {
        let Ok(crate::target::Target::Http(u)) = crate::target::Target::parse("http://[::1]:81/h?x=1") else {
            panic!()
        };
        let r = String::from_utf8(request(&u, &["X-Token: a".into()])).unwrap();
        assert!(r.starts_with("GET /h?x=1 HTTP/1.1\r\nHost: [::1]:81\r\n"), "{r}");
        assert!(
            r.contains("\r\nConnection: close\r\n") && r.ends_with("X-Token: a\r\n\r\n"),
            "{r}"
        );
    }

    /// A one-shot server on a loopback port answering `reply` to the first request.
    fn serve(reply: &'static [u8]) -> HttpUrl {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                let mut b = [0u8; 1024];
                let _ = s.read(&mut b);
                let _ = s.write_all(reply);
            }
        });
        let Ok(crate::target::Target::Http(u)) =
            crate::target::Target::parse(&format!("http://127.0.0.1:{port}/"))
        else {
            panic!()
        };
        u
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn live_statuses_and_body() {
        // The same host name on another port: followed (to a port nothing listens on).
        let u = serve(b"HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            check(&u, soon(), &Options::default()),
            Err(CheckError::new(
                crate::check::Kind::Refused,
                "connection refused at http://127.0.0.1:1/ (1 redirect)"
            ))
        );
        let u = serve(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(check(&u, soon(), &Options::default()), Err("status 500".into()));
        let u = serve(b"HTTP/1.1 103 Early\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
        let o = Options {
            body_contains: Some("cd".into()),
            ..Options::default()
        };
        assert_eq!(check(&u, soon(), &o), Ok("200".into()));
        let u = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef");
        let o = Options {
            body_contains: Some("de".into()),
            ..Options::default()
        };
        let e = check(&u, soon(), &o).unwrap_err();
        assert!(e.contains("body does not contain"), "{e}");
        let u = serve(b"garbage\r\n\r\n");
        assert!(check(&u, soon(), &Options::default())
            .unwrap_err()
            .contains("malformed status line"));
    }

    fn url(s: &str) -> HttpUrl {
        let Ok(Target::Http(u)) = Target::parse(s) else {
            panic!("{s}")
        };
        u
    }

    fn req_text(u: &HttpUrl, headers: &[&str], user_host: bool) -> String {
        let h: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
        String::from_utf8(build_request(u, &h, user_host)).unwrap()
    }

    fn count_lines(req: &str, name: &str) -> usize {
        req.split("\r\n")
            .filter(|l| l.split(':').next().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .count()
    }

    #[test]
    fn headers_replace_as_the_kubelet_does() {
        let u = url("http://127.0.0.1:81/h");
        let ua = format!("User-Agent: dockhand-healthcheck/{}", crate::VERSION);
        // Defaults.
        let r = req_text(&u, &[], true);
        assert!(
            r.contains("\r\nHost: 127.0.0.1:81\r\n") && r.contains(&ua) && r.contains("\r\nAccept: */*\r\n")
        );
        // Replaced, whatever the case of the name: exactly one of each.
        let r = req_text(
            &u,
            &["host: app.example", "User-Agent: probe/1", "ACCEPT: text/plain"],
            true,
        );
        assert!(r.contains("\r\nHost: app.example\r\n"), "{r}");
        assert!(r.contains("\r\nUser-Agent: probe/1\r\n"), "{r}");
        assert!(r.contains("\r\nACCEPT: text/plain\r\n"), "{r}");
        for name in ["host", "user-agent", "accept"] {
            assert_eq!(count_lines(&r, name), 1, "{name}: {r}");
        }
        // An empty value drops User-Agent and Accept; an empty Host leaves ours.
        let r = req_text(&u, &["User-Agent:", "Accept:  ", "Host:"], true);
        assert_eq!(count_lines(&r, "user-agent"), 0, "{r}");
        assert_eq!(count_lines(&r, "accept"), 0, "{r}");
        assert!(r.contains("\r\nHost: 127.0.0.1:81\r\n"), "{r}");
        // Given twice: the first Host and User-Agent count; Accept lines all go.
        let r = req_text(
            &u,
            &[
                "Host: a",
                "Host: b",
                "User-Agent: x",
                "User-Agent: y",
                "Accept: a",
                "Accept: b",
            ],
            true,
        );
        assert!(
            r.contains("\r\nHost: a\r\n") && count_lines(&r, "host") == 1,
            "{r}"
        );
        assert!(
            r.contains("\r\nUser-Agent: x\r\n") && count_lines(&r, "user-agent") == 1,
            "{r}"
        );
        assert_eq!(count_lines(&r, "accept"), 2, "{r}");
        // After a redirect to an absolute URL, the given Host no longer counts.
        let r = req_text(&u, &["Host: app.example"], false);
        assert!(
            r.contains("\r\nHost: 127.0.0.1:81\r\n") && count_lines(&r, "host") == 1,
            "{r}"
        );
        // Other headers, empty or not, go as given.
        let r = req_text(&u, &["X-Empty:", "X-A: 1"], true);
        assert!(r.ends_with("\r\nX-Empty:\r\nX-A: 1\r\n\r\n"), "{r}");
    }

    #[test]
    fn obs_text_and_obs_fold_are_accepted() {
        // Latin-1 in the reason phrase and in a value.
        let h = parse_head(b"HTTP/1.1 200 Caf\xe9\r\nServer: caf\xe9\r\nContent-Length: 2\r\n\r\n").unwrap();
        assert_eq!((h.status, h.framing), (200, Framing::Length(2)));
        // A folded value is joined with one space.
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nX-Long: a\r\n  b\r\nTransfer-Encoding: gzip,\r\n\tchunked\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        let h = parse_head(b"HTTP/1.1 302 Found\r\nLocation: /a\r\n b\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(h.location.as_deref(), Some(&b"/a b"[..]));
        // A folded Content-Length is still one number or an error.
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n 2\r\n\r\n").is_err());
        // Whitespace before the first field is skipped.
        let h = parse_head(b"HTTP/1.1 200 OK\r\n Content-Length: 9\r\nContent-Length: 3\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::Length(3));
        // Location only for statuses that are followed; the first one counts.
        let h = parse_head(b"HTTP/1.1 300 Choices\r\nLocation: /a\r\n\r\n").unwrap();
        assert_eq!(h.location, None);
        let h = parse_head(b"HTTP/1.1 307 T\r\nLocation:\t/a \r\nLocation: /b\r\n\r\n").unwrap();
        assert_eq!(h.location.as_deref(), Some(&b"/a"[..]));
        // Still rejected: a line without a colon, shown escaped.
        let e = parse_head(b"HTTP/1.1 200 OK\r\n\x1b[2J caf\xe9 \xc3\xa9\r\n\r\n").unwrap_err();
        assert_eq!(e, r#"malformed header line "\u{1b}[2J caf\xe9 é""#);
        let e = parse_head(b"HTTP/1.1 2\x1b]0;x\x07 OK\r\n\r\n").unwrap_err();
        assert!(!e.chars().any(char::is_control), "{e}");
    }

    #[test]
    fn show_escapes_and_clips() {
        assert_eq!(show(b"ok \"q\" \\", 60), r#""ok \"q\" \\""#);
        assert_eq!(show(b"\r\n\0\xff", 60), r#""\r\n\0\xff""#);
        assert_eq!(show(b"abcdef", 3), r#""abc"..."#);
    }

    fn resolved(base: &str, loc: &str) -> String {
        match resolve(&url(base), loc.as_bytes()).unwrap() {
            Resolved::Http { url, .. } => url.text,
            Resolved::Other { text, why, .. } => format!("{why:?} {text}"),
        }
    }

    #[test]
    fn locations_resolve_as_rfc3986_says() {
        // RFC 3986 §5.4, with http://a/b/c/d;p?q as the base.
        let base = "http://a/b/c/d;p?q";
        for (r, want) in [
            ("g:h", "Scheme g:h"),
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g/"),
            ("?y", "http://a/b/c/d;p?y"),
            ("g?y", "http://a/b/c/g?y"),
            ("#s", "http://a/b/c/d;p?q"),
            ("g#s", "http://a/b/c/g"),
            ("g?y#s", "http://a/b/c/g?y"),
            (";x", "http://a/b/c/;x"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("./", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("../../../../g", "http://a/g"),
            ("/./g", "http://a/g"),
            ("/../g", "http://a/g"),
            ("g.", "http://a/b/c/g."),
            (".g", "http://a/b/c/.g"),
            ("g..", "http://a/b/c/g.."),
            ("..g", "http://a/b/c/..g"),
            ("./../g", "http://a/b/g"),
            ("./g/.", "http://a/b/c/g/"),
            ("g/./h", "http://a/b/c/g/h"),
            ("g/../h", "http://a/b/c/h"),
            ("g;x=1/./y", "http://a/b/c/g;x=1/y"),
            ("g;x=1/../y", "http://a/b/c/y"),
            ("g?y/./x", "http://a/b/c/g?y/./x"),
            ("g#s/../x", "http://a/b/c/g"),
            ("http:g", "Unparsable http:g"),
            // Beyond the RFC's table.
            ("HTTP://A:8080/x/../y", "http://A:8080/y"),
            ("https://a/x", "Https https://a/x"),
            ("http://u:p@a/x", "Unparsable http://u:p@a/x"),
            ("/caf\u{e9} x", "http://a/caf%C3%A9%20x"),
        ] {
            assert_eq!(resolved(base, r), want, "{r:?}");
        }
        // An empty segment in the base is kept.
        let base = "http://a//x/y";
        for (r, want) in [("g", "http://a//x/g"), ("../g", "http://a//g")] {
            assert_eq!(resolved(base, r), want, "{r:?}");
        }
        let host = |loc: &str| match resolve(&url("http://a/b/c/d;p?q"), loc.as_bytes()).unwrap() {
            Resolved::Other { host, .. } => host,
            Resolved::Http { url, .. } => url.host,
        };
        assert_eq!(host("https://u@[::1]:8443/x"), "::1");
        assert_eq!(host("ftp://files.example:21"), "files.example");
        assert_eq!(host("mailto:x@y"), "");
        assert!(resolve(&url(base), b"/a\x01b").is_err());
        assert!(resolve(&url(base), &vec![b'a'; MAX_URL + 1]).is_err());
        assert!(
            resolve(&url(base), &vec![0xe9; MAX_URL / 2]).is_err(),
            "grows past MAX_URL encoded"
        );
    }

    /// A server on a loopback port answering every connection with
    /// `reply(path, port)`; returns its port and the requests seen.
    fn routes(reply: fn(&str, u16) -> Vec<u8>) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut buf = Vec::new();
                let mut b = [0u8; 1024];
                while head_end(&buf).is_none() {
                    match s.read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&b[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&buf).into_owned();
                let path = req.split(' ').nth(1).unwrap_or("").to_string();
                seen2.lock().unwrap().push(req);
                let _ = s.write_all(&reply(&path, port));
            }
        });
        (port, seen)
    }

    fn to(location: &str) -> Vec<u8> {
        format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n").into_bytes()
    }

    fn answer(status: &str) -> Vec<u8> {
        format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok").into_bytes()
    }

    #[test]
    fn redirects_follow_the_kubelet_rule() {
        let (port, seen) = routes(|path, port| match path {
            "/to-500" => to("/500"),
            "/500" => answer("500 Oops"),
            "/to-200" => to(&format!("http://127.0.0.1:{port}/a/../ok?x=1")),
            "/ok?x=1" => answer("200 OK"),
            "/away" => to("http://localhost:1/nowhere"),
            "/tls" => to("https://127.0.0.1/secure"),
            "/ftp" => to("ftp://127.0.0.1/x"),
            "/loop" => to("/loop2"),
            "/loop2" => to("/loop"),
            "/empty" => to(""),
            p if p.starts_with("/chain/") => {
                // /chain/N redirects to /chain/N-1; /chain/0 answers 200.
                let n: u32 = p[7..].parse().unwrap_or(0);
                if n == 0 {
                    answer("200 OK")
                } else {
                    to(&format!("/chain/{}", n - 1))
                }
            }
            _ => answer("404 Not Found"),
        });
        let at = |p: &str| url(&format!("http://127.0.0.1:{port}{p}"));
        let base = format!("http://127.0.0.1:{port}");
        let o = Options::default();
        assert_eq!(
            check(&at("/to-500"), soon(), &o),
            Err(format!("status 500 at {base}/500 (1 redirect)").into())
        );
        assert_eq!(
            check(&at("/to-200"), soon(), &o),
            Ok(format!("200 at {base}/ok?x=1 (1 redirect)"))
        );
        assert_eq!(
            check(&at("/away"), soon(), &o),
            Ok("302 (redirect to http://localhost:1/nowhere not followed: another host)".into())
        );
        assert_eq!(
            check(&at("/tls"), soon(), &o),
            Ok("302 (redirect to https://127.0.0.1/secure not followed: https is not in this build)".into())
        );
        assert_eq!(
            check(&at("/ftp"), soon(), &o),
            Err("cannot follow the redirect to ftp://127.0.0.1/x".into())
        );
        assert_eq!(
            check(&at("/loop"), soon(), &o),
            Err(format!("redirect loop: {base}/loop again after 2 redirects").into())
        );
        assert_eq!(check(&at("/empty"), soon(), &o), Ok("302".into()));
        // Nine redirects are followed; the tenth fails, after ten requests.
        assert_eq!(
            check(&at("/chain/9"), soon(), &o),
            Ok(format!("200 at {base}/chain/0 (9 redirects)"))
        );
        seen.lock().unwrap().clear();
        assert_eq!(
            check(&at("/chain/10"), soon(), &o),
            Err(format!("stopped after 10 redirects (the last to {base}/chain/0)").into())
        );
        assert_eq!(seen.lock().unwrap().len(), 10);
        // --status judges the final response; a 3xx not followed is judged too.
        let o200 = Options {
            status: vec![(200, 200)],
            ..Options::default()
        };
        assert!(check(&at("/to-200"), soon(), &o200).is_ok());
        assert_eq!(check(&at("/away"), soon(), &o200), Err("status 302".into()));
        // No following: the first answer decides, as before.
        let nf = Options {
            no_follow: true,
            ..Options::default()
        };
        seen.lock().unwrap().clear();
        assert_eq!(check(&at("/to-500"), soon(), &nf), Ok("302".into()));
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_given_host_is_kept_on_relative_redirects_only() {
        let (port, seen) = routes(|path, port| match path {
            "/rel" => to("/abs"),
            "/abs" => to(&format!("http://127.0.0.1:{port}/end")),
            _ => answer("200 OK"),
        });
        let o = Options {
            headers: vec!["Host: app.example".into(), "X-Token: t".into()],
            ..Options::default()
        };
        let u = url(&format!("http://127.0.0.1:{port}/rel"));
        assert!(check(&u, soon(), &o).is_ok());
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3, "{seen:?}");
        for (req, host) in seen
            .iter()
            .zip(["app.example", "app.example", &format!("127.0.0.1:{port}")])
        {
            assert!(req.contains(&format!("\r\nHost: {host}\r\n")), "{req}");
            assert_eq!(count_lines(req, "host"), 1, "{req}");
            assert!(req.contains("\r\nX-Token: t\r\n"), "{req}");
        }
    }

    #[test]
    fn the_deadline_bounds_all_hops() {
        // The second hop accepts and never answers.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let silent = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let _keep: Vec<_> = l.incoming().take(4).collect();
        });
        let u = {
            // A first hop that redirects to the silent port.
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let p = l.local_addr().unwrap().port();
            std::thread::spawn(move || {
                if let Ok((mut s, _)) = l.accept() {
                    let mut b = [0u8; 1024];
                    let _ = s.read(&mut b);
                    let _ = s.write_all(&to(&format!("http://127.0.0.1:{silent}/slow")));
                }
            });
            url(&format!("http://127.0.0.1:{p}/"))
        };
        let start = Instant::now();
        let e = check(&u, start + Duration::from_millis(300), &Options::default()).unwrap_err();
        assert_eq!(
            e,
            format!("timed out at http://127.0.0.1:{silent}/slow (1 redirect)")
        );
        // The kind survives the hop's suffix: healthcheck and wait branch on it.
        assert_eq!(e.kind, crate::check::Kind::TimedOut);
        // Bounded by the one deadline (generous margin for a loaded machine).
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
    }
}
