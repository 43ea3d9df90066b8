//! A minimal HTTP/1.1 probe over TCP or a unix socket, written over std
//! sockets so that one deadline bounds all of it (resolution, connect to
//! every address, request, response), so that what is read is capped
//! (16 KiB of headers, 64 KiB of body, whatever the server announces), and so
//! that nothing is followed: no redirects, no proxy environment variables.
//!
//! `parse_head` and `Dechunk` are pure, so the fuzz targets can drive them.

use super::CheckError;
use crate::net;
use crate::target::HttpUrl;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Most bytes of response head (status line and headers) read.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most bytes of body read (raw, before chunked decoding).
pub const MAX_BODY: usize = 64 * 1024;

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

/// Parse a response head (the status line and headers, up to and including
/// the blank line or without it). Pure: no I/O.
pub fn parse_head(bytes: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "malformed response (not text)".to_string())?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().unwrap_or("");
    let bad = || {
        format!(
            "malformed status line {:?}",
            first.chars().take(60).collect::<String>()
        )
    };
    let rest = first.strip_prefix("HTTP/1.").ok_or_else(bad)?;
    let mut parts = rest.splitn(3, ' ');
    let minor = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if minor.len() != 1 || !minor.as_bytes()[0].is_ascii_digit() {
        return Err(bad());
    }
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let status: u16 = code.parse().map_err(|_| bad())?;
    if !(100..=999).contains(&status) {
        return Err(bad());
    }
    let mut length: Option<u64> = None;
    let mut chunked = false;
    for line in lines {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!(
                "malformed header line {:?}",
                line.chars().take(60).collect::<String>()
            ));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<u64>()
                .ok()
                .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| format!("bad Content-Length {value:?}"))?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length headers".into());
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Only the last coding decides whether the body is chunked.
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("chunked"));
        }
    }
    let framing = if status < 200 || status == 204 || status == 304 {
        Framing::None
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::Close
    };
    Ok(Head { status, framing })
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
    let mut r = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: dockhand-healthcheck/{}\r\nAccept: */*\r\nConnection: close\r\n",
        url.path,
        url.host_header(),
        crate::VERSION
    );
    for h in headers {
        r.push_str(h.trim());
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
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

/// One probe: `Ok("200")` when the status (and the body, if asked) pass,
/// else `Err(reason)` ("connection refused", "status 500", "timed out"...).
pub fn check(url: &HttpUrl, deadline: Instant, opts: &Options) -> Result<String, CheckError> {
    let mut conn: Box<dyn Conn> = match &opts.unix_socket {
        Some(p) => Box::new(net::unix_connect(p, deadline)?),
        None => Box::new(net::connect(&url.host, url.port, deadline)?),
    };
    exchange(&mut *conn, url, deadline, opts)
}

fn exchange(
    c: &mut dyn Conn,
    url: &HttpUrl,
    deadline: Instant,
    opts: &Options,
) -> Result<String, CheckError> {
    let req = request(url, &opts.headers);
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

    if !status_ok(head.status, &opts.status) {
        return Err(format!("status {}", head.status).into());
    }
    let Some(needle) = opts.body_contains.as_deref() else {
        return Ok(head.status.to_string());
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
            return Ok(head.status.to_string());
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
                framing: Framing::Length(12)
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
                framing: Framing::Chunked
            }
        );
        let h = parse_head(b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n").unwrap();
        assert_eq!(h.framing, Framing::None);
        let h = parse_head(b"HTTP/1.1 500\n\n").unwrap();
        assert_eq!(
            h,
            Head {
                status: 500,
                framing: Framing::Close
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
        let u = serve(b"HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(check(&u, soon(), &Options::default()), Ok("301".into()));
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
}
