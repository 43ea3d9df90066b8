//! What the server said: the response head parser (status line, framing,
//! Location; obs-text and obs-fold accepted) and the incremental decoder of
//! chunked bodies. Pure: no I/O, so the fuzz targets drive it.

use std::fmt::Write as _;

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

/// Where a chunked body is between bytes: in a chunk-size line, its
/// extension or line end, in chunk data or its line end, in the trailers,
/// or done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ChunkState {
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
    state: ChunkState,
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
            match self.state {
                ChunkState::Size => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        if self.digits >= 15 {
                            return Err("chunk size too large".into());
                        }
                        self.size = self.size * 16 + (b as char).to_digit(16).unwrap_or(0) as u64;
                        self.digits += 1;
                    }
                    b';' | b' ' | b'\t' if self.digits > 0 => self.state = ChunkState::Ext,
                    b'\r' if self.digits > 0 => self.state = ChunkState::SizeLf,
                    b'\n' if self.digits > 0 => self.size_done(),
                    _ => return Err("malformed chunked body".into()),
                },
                ChunkState::Ext => match b {
                    b'\r' => self.state = ChunkState::SizeLf,
                    b'\n' => self.size_done(),
                    _ => {}
                },
                ChunkState::SizeLf => {
                    if b != b'\n' {
                        return Err("malformed chunked body".into());
                    }
                    self.size_done();
                }
                ChunkState::Data => {
                    let n = (self.size.min((input.len() - i) as u64)) as usize;
                    let room = limit.saturating_sub(out.len()).min(n);
                    out.extend_from_slice(&input[i..i + room]);
                    self.size -= n as u64;
                    if self.size == 0 {
                        self.state = ChunkState::DataCr;
                    }
                    i += n;
                    continue;
                }
                ChunkState::DataCr => match b {
                    b'\r' => self.state = ChunkState::DataLf,
                    b'\n' => self.next_chunk(),
                    _ => return Err("malformed chunked body".into()),
                },
                ChunkState::DataLf => {
                    if b != b'\n' {
                        return Err("malformed chunked body".into());
                    }
                    self.next_chunk();
                }
                ChunkState::TrailerStart => match b {
                    b'\r' => self.state = ChunkState::EndLf,
                    b'\n' => self.state = ChunkState::Done,
                    _ => self.state = ChunkState::TrailerLine,
                },
                ChunkState::TrailerLine => {
                    if b == b'\n' {
                        self.state = ChunkState::TrailerStart;
                    }
                }
                ChunkState::EndLf => {
                    if b != b'\n' {
                        return Err("malformed chunked body".into());
                    }
                    self.state = ChunkState::Done;
                }
                ChunkState::Done => return Ok(true),
            }
            i += 1;
        }
        Ok(self.state == ChunkState::Done)
    }

    fn size_done(&mut self) {
        self.state = if self.size == 0 {
            ChunkState::TrailerStart
        } else {
            ChunkState::Data
        };
    }

    fn next_chunk(&mut self) {
        self.state = ChunkState::Size;
        self.size = 0;
        self.digits = 0;
    }
}
