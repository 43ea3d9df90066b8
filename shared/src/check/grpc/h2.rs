//! A minimal HTTP/2 client (RFC 9113) for one request on stream 1: the
//! connection preface, SETTINGS and their ACK, HEADERS with CONTINUATION,
//! DATA, PING answered, WINDOW_UPDATE, RST_STREAM and GOAWAY. Generic over
//! the byte stream (`net::Stream`), so it runs the same over TCP, over TLS
//! and over bytes in memory (the fuzz target).
//!
//! Everything the server sends is bounded: frames by our
//! SETTINGS_MAX_FRAME_SIZE (the default, 16384), a header block by our
//! SETTINGS_MAX_HEADER_LIST_SIZE, the body, the count of frames and the
//! bytes read; every read and write by the probe's deadline.

use super::hpack::{self, Decoder, Fields};
use crate::check::CheckError;
use crate::net::{self, Stream};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Our SETTINGS_MAX_FRAME_SIZE: the protocol's default and minimum.
pub const MAX_FRAME: usize = 16384;
/// Our SETTINGS_HEADER_TABLE_SIZE (the default): the decoder's table bound.
pub const HEADER_TABLE: usize = 4096;
/// Our SETTINGS_MAX_HEADER_LIST_SIZE, also the bound on a header block's
/// bytes across HEADERS and CONTINUATION frames.
pub const MAX_HEADER_LIST: usize = 16384;
/// The most response body kept (a health response is 7 bytes); below the
/// initial flow-control window, so no WINDOW_UPDATE is needed.
pub const MAX_BODY: usize = 16384;
/// The most frames read in one exchange.
pub const MAX_FRAMES: usize = 256;
/// The most bytes read in one exchange.
pub const MAX_READ: usize = 256 * 1024;

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const PRIORITY: u8 = 2;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PUSH_PROMISE: u8 = 5;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const WINDOW_UPDATE: u8 = 8;
const CONTINUATION: u8 = 9;

const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY_FLAG: u8 = 0x20;

/// What the server answered on stream 1.
#[derive(Debug, Default)]
pub struct Response {
    /// The first header block (`:status`, content-type...).
    pub headers: Fields,
    /// The trailers; empty for a trailers-only response (all in `headers`)
    /// or a stream that ended on DATA.
    pub trailers: Fields,
    pub body: Vec<u8>,
}

/// The name of an HTTP/2 error code (RFC 9113 section 7).
pub fn error_name(code: u32) -> &'static str {
    match code {
        0 => "NO_ERROR",
        1 => "PROTOCOL_ERROR",
        2 => "INTERNAL_ERROR",
        3 => "FLOW_CONTROL_ERROR",
        4 => "SETTINGS_TIMEOUT",
        5 => "STREAM_CLOSED",
        6 => "FRAME_SIZE_ERROR",
        7 => "REFUSED_STREAM",
        8 => "CANCEL",
        9 => "COMPRESSION_ERROR",
        10 => "CONNECT_ERROR",
        11 => "ENHANCE_YOUR_CALM",
        12 => "INADEQUATE_SECURITY",
        13 => "HTTP_1_1_REQUIRED",
        _ => "unknown error code",
    }
}

fn frame(out: &mut Vec<u8>, ty: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[ty, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// What the client sends first, all at once: the preface, our SETTINGS,
/// the request's HEADERS (`fields`, in order) and its DATA with END_STREAM.
pub fn first_flight(fields: &[(&[u8], &[u8])], body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = PREFACE.to_vec();
    let mut settings = Vec::new();
    for (id, v) in [
        (0x1u16, HEADER_TABLE as u32), // SETTINGS_HEADER_TABLE_SIZE
        (0x2, 0),                      // SETTINGS_ENABLE_PUSH
        (0x6, MAX_HEADER_LIST as u32), // SETTINGS_MAX_HEADER_LIST_SIZE
    ] {
        settings.extend_from_slice(&id.to_be_bytes());
        settings.extend_from_slice(&v.to_be_bytes());
    }
    frame(&mut out, SETTINGS, 0, 0, &settings);
    let mut block = Vec::new();
    for (n, v) in fields {
        hpack::encode_literal(&mut block, n, v);
    }
    // The server's SETTINGS_MAX_FRAME_SIZE is at least 16384; ours is one
    // frame, with no CONTINUATION to write.
    if block.len() > MAX_FRAME || body.len() > MAX_FRAME {
        return Err("the request's headers are larger than 16 KiB".into());
    }
    frame(&mut out, HEADERS, END_HEADERS, 1, &block);
    frame(&mut out, DATA, END_STREAM, 1, body);
    Ok(out)
}

/// A stream with a deadline: every read and write first sets the time left.
pub struct Conn<S> {
    pub stream: S,
    pub deadline: Instant,
    read: usize,
    buf: Vec<u8>,
}

impl<S: Stream> Conn<S> {
    pub fn new(stream: S, deadline: Instant) -> Self {
        Conn {
            stream,
            deadline,
            read: 0,
            buf: Vec::new(),
        }
    }

    fn arm(&self) -> Result<(), CheckError> {
        self.stream
            .set_timeouts(net::left(self.deadline)?)
            .map_err(|e| net::io_error(&e))
    }

    pub fn send(&mut self, bytes: &[u8]) -> Result<(), CheckError> {
        let mut sent = 0;
        while sent < bytes.len() {
            self.arm()?;
            match self.stream.write(&bytes[sent..]) {
                Ok(0) => return Err("connection closed while sending".into()),
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(net::io_error(&e)),
            }
        }
        self.arm()?;
        self.stream.flush().map_err(|e| net::io_error(&e))
    }

    /// Fill `self.buf` to `n` bytes; `Ok(false)` if the peer closed first.
    fn fill(&mut self, n: usize) -> Result<bool, CheckError> {
        let mut chunk = [0u8; 4096];
        while self.buf.len() < n {
            if self.read >= MAX_READ {
                return Err(format!("more than {} KiB from the server", MAX_READ / 1024).into());
            }
            self.arm()?;
            let want = (n - self.buf.len()).min(chunk.len());
            match self.stream.read(&mut chunk[..want]) {
                Ok(0) => return Ok(false),
                Ok(k) => {
                    self.read += k;
                    self.buf.extend_from_slice(&chunk[..k]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(net::io_error(&e)),
            }
        }
        Ok(true)
    }
}

/// One frame as read.
struct Frame {
    ty: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

fn read_frame<S: Stream>(c: &mut Conn<S>, first: bool) -> Result<Frame, CheckError> {
    c.buf.clear();
    if !c.fill(9)? {
        return Err(if first && c.buf.is_empty() {
            "connection closed without a response (is it an HTTP/2 gRPC server?)".into()
        } else {
            "connection closed before the response ended".into()
        });
    }
    if first && c.buf.starts_with(b"HTTP/") {
        return Err("the server answered in HTTP/1.x, not HTTP/2 (is it a gRPC port?)".into());
    }
    let h = &c.buf[..9];
    let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
    let (ty, flags) = (h[3], h[4]);
    let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
    if len > MAX_FRAME {
        return Err(
            format!("a frame of {len} bytes, above our limit of {MAX_FRAME} (FRAME_SIZE_ERROR)").into(),
        );
    }
    if !c.fill(9 + len)? {
        return Err("connection closed in the middle of a frame".into());
    }
    Ok(Frame {
        ty,
        flags,
        stream,
        payload: c.buf[9..].to_vec(),
    })
}

/// The payload without its padding (PADDED flag).
fn unpad(f: &Frame) -> Result<&[u8], CheckError> {
    if f.flags & PADDED == 0 {
        return Ok(&f.payload);
    }
    let pad = *f.payload.first().ok_or("a padded frame without its pad length")? as usize;
    if pad >= f.payload.len() {
        return Err(format!(
            "padding of {pad} bytes in a frame of {} (PROTOCOL_ERROR)",
            f.payload.len()
        )
        .into());
    }
    Ok(&f.payload[1..f.payload.len() - pad])
}

fn proto(what: &str) -> CheckError {
    format!("{what} (PROTOCOL_ERROR)").into()
}

/// Send the first flight, then read until stream 1 ends. `Err` for
/// anything the protocol forbids, a reset stream, or a GOAWAY that drops it.
pub fn exchange<S: Stream>(c: &mut Conn<S>, first_flight: &[u8]) -> Result<Response, CheckError> {
    c.send(first_flight)?;
    let mut dec = Decoder::new(HEADER_TABLE);
    let mut resp = Response::default();
    let mut have_headers = false;
    let mut frames = 0;
    loop {
        frames += 1;
        if frames > MAX_FRAMES {
            return Err(format!("more than {MAX_FRAMES} frames without an answer").into());
        }
        let f = read_frame(c, frames == 1)?;
        if frames == 1 && f.ty != SETTINGS {
            return Err(proto("the server's first frame is not SETTINGS"));
        }
        match f.ty {
            DATA => {
                if f.stream != 1 || !have_headers {
                    return Err(proto("DATA before the response headers or on another stream"));
                }
                let data = unpad(&f)?;
                if resp.body.len() + data.len() > MAX_BODY {
                    return Err(format!("a response body above {} KiB", MAX_BODY / 1024).into());
                }
                resp.body.extend_from_slice(data);
                if f.flags & END_STREAM != 0 {
                    return Ok(resp);
                }
            }
            HEADERS => {
                if f.stream != 1 {
                    return Err(proto("HEADERS on a stream we did not open"));
                }
                let end_stream = f.flags & END_STREAM != 0;
                let mut block = unpad(&f)?;
                if f.flags & PRIORITY_FLAG != 0 {
                    block = block
                        .get(5..)
                        .ok_or_else(|| proto("a HEADERS frame too short for its priority"))?;
                }
                let mut block = block.to_vec();
                let mut flags = f.flags;
                // CONTINUATION frames follow with nothing in between; their
                // total is bounded, so a flood of them ends.
                while flags & END_HEADERS == 0 {
                    frames += 1;
                    if frames > MAX_FRAMES {
                        return Err(format!("more than {MAX_FRAMES} frames without an answer").into());
                    }
                    let k = read_frame(c, false)?;
                    if k.ty != CONTINUATION || k.stream != 1 {
                        return Err(proto("a header block not continued by CONTINUATION"));
                    }
                    if block.len() + k.payload.len() > MAX_HEADER_LIST {
                        return Err(format!("a header block above {} KiB", MAX_HEADER_LIST / 1024).into());
                    }
                    block.extend_from_slice(&k.payload);
                    flags = k.flags;
                }
                let into = if have_headers {
                    &mut resp.trailers
                } else {
                    &mut resp.headers
                };
                dec.decode(&block, into, MAX_HEADER_LIST)
                    .map_err(|e| CheckError::from(format!("{e} (COMPRESSION_ERROR)")))?;
                if have_headers && !end_stream {
                    return Err(proto("trailers without END_STREAM"));
                }
                have_headers = true;
                if end_stream {
                    return Ok(resp);
                }
            }
            CONTINUATION => return Err(proto("CONTINUATION without HEADERS")),
            SETTINGS => {
                if f.stream != 0 {
                    return Err(proto("SETTINGS on a stream"));
                }
                if f.flags & ACK != 0 {
                    if !f.payload.is_empty() {
                        return Err("a SETTINGS ACK with a payload (FRAME_SIZE_ERROR)".into());
                    }
                } else if f.payload.len() % 6 != 0 {
                    return Err("a SETTINGS frame of a length not a multiple of 6 (FRAME_SIZE_ERROR)".into());
                } else {
                    // Nothing the server sets changes what we send: our
                    // fields are literals and our frames small.
                    let mut ack = Vec::new();
                    frame(&mut ack, SETTINGS, ACK, 0, &[]);
                    c.send(&ack)?;
                }
            }
            PING => {
                if f.stream != 0 || f.payload.len() != 8 {
                    return Err(proto("a malformed PING"));
                }
                if f.flags & ACK == 0 {
                    let mut pong = Vec::new();
                    frame(&mut pong, PING, ACK, 0, &f.payload);
                    c.send(&pong)?;
                }
            }
            WINDOW_UPDATE if f.payload.len() != 4 => {
                return Err("a WINDOW_UPDATE not 4 bytes long (FRAME_SIZE_ERROR)".into())
            }
            PRIORITY if f.payload.len() != 5 => {
                return Err("a PRIORITY not 5 bytes long (FRAME_SIZE_ERROR)".into())
            }
            RST_STREAM => {
                let p = &f.payload;
                if p.len() != 4 || f.stream == 0 {
                    return Err(proto("a malformed RST_STREAM"));
                }
                let code = u32::from_be_bytes([p[0], p[1], p[2], p[3]]);
                if f.stream == 1 {
                    return Err(format!("the server reset the stream ({})", code_text(code)).into());
                }
            }
            GOAWAY => {
                let p = &f.payload;
                if p.len() < 8 || f.stream != 0 {
                    return Err(proto("a malformed GOAWAY"));
                }
                let last = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff;
                let code = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
                if code != 0 || last < 1 {
                    let debug = super::clean(&p[8..]);
                    let debug = if debug.is_empty() {
                        debug
                    } else {
                        format!(": {debug}")
                    };
                    return Err(format!("the server sent GOAWAY ({}){debug}", code_text(code)).into());
                }
                // A graceful shutdown that still serves stream 1: read on.
            }
            PUSH_PROMISE => return Err(proto("PUSH_PROMISE though we disabled push")),
            // WINDOW_UPDATE and PRIORITY of the right size, and frame
            // types we do not know, are ignored (section 4.1).
            _ => {}
        }
    }
}

fn code_text(code: u32) -> String {
    format!("{} {}", code, error_name(code))
}

/// Run an exchange over bytes in memory: what a server sent, as the fuzz
/// target and the unit tests drive it. What the client writes is dropped.
pub fn exchange_with(server_bytes: &[u8]) -> Result<Response, CheckError> {
    struct Mem<'a>(&'a [u8]);
    impl Read for Mem<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }
    impl Write for Mem<'_> {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Stream for Mem<'_> {
        fn set_timeouts(&self, _: Duration) -> io::Result<()> {
            Ok(())
        }
    }
    let deadline = Instant::now() + Duration::from_secs(3600);
    let mut c = Conn::new(Mem(server_bytes), deadline);
    exchange(&mut c, b"")
}
