//! AMQP 0-9-1 readiness (RabbitMQ): send the protocol header; the broker is
//! up when it answers with a Connection.Start method frame. A broker that
//! does not speak 0-9-1 answers with the header of the version it does and
//! closes, which is not up. Nothing more is sent: no credentials are needed.

use std::time::Instant;

use super::io::{clean, exchange, sample, MAX_REPLY};
use super::CheckError;
use crate::net;

/// "AMQP", protocol id 0, version 0-9-1.
pub const HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";

/// The largest frame payload we accept: RabbitMQ's Connection.Start is about
/// 500 bytes; `exchange` reads at most `MAX_REPLY` in all.
const MAX_FRAME: usize = MAX_REPLY - 8;

const FRAME_METHOD: u8 = 1;
const FRAME_END: u8 = 0xce;
const CONNECTION: u16 = 10;
const START: u16 = 10;
const CLOSE: u16 = 50;

pub fn check(host: &str, port: u16, deadline: Instant) -> Result<String, CheckError> {
    let mut s = net::connect(host, port, deadline)?;
    let reply = exchange(&mut s, HEADER, deadline, &complete).map_err(|e| e.context("no AMQP reply"))?;
    judge_amqp(&reply)
}

/// The payload size from a frame's 7-byte header (type, channel, size);
/// `None` until 7 bytes are there.
fn frame_size(buf: &[u8]) -> Option<usize> {
    let h = buf.get(3..7)?;
    Some(u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize)
}

/// Whether `buf` holds a protocol header, the first frame, or enough to
/// judge it bad.
fn complete(buf: &[u8]) -> bool {
    if buf.first().is_some_and(|&b| b != FRAME_METHOD) {
        let header = b"AMQP".starts_with(&buf[..buf.len().min(4)]);
        return !header || buf.len() >= HEADER.len();
    }
    match frame_size(buf) {
        Some(n) if n > MAX_FRAME => true,
        Some(n) => buf.len() >= 8 + n,
        None => false,
    }
}

/// Judge what a broker sent after our protocol header: `Ok(detail)` for
/// Connection.Start, `Err` for a protocol header (naming the version the
/// broker offers) or anything else. Pure, so a fuzz target can drive it.
pub fn judge_amqp(bytes: &[u8]) -> Result<String, CheckError> {
    if bytes.is_empty() {
        return Err("no reply (connection closed)".into());
    }
    let not_amqp =
        |why: String| CheckError::from(format!("not an AMQP 0-9-1 reply ({why}): {:?}", sample(bytes)));
    if let Some(h) = bytes.strip_prefix(b"AMQP") {
        return Err(match h {
            [id, major, minor, rev, ..] => {
                format!("the server offers AMQP {major}-{minor}-{rev} (protocol id {id}), not 0-9-1").into()
            }
            _ => not_amqp("short protocol header".into()),
        });
    }
    let Some(size) = frame_size(bytes) else {
        return Err(not_amqp(format!("only {} bytes", bytes.len())));
    };
    if bytes[0] != FRAME_METHOD {
        return Err(not_amqp(format!("frame type {}", bytes[0])));
    }
    if size > MAX_FRAME {
        return Err(not_amqp(format!("frame size {size}")));
    }
    if bytes.len() < 8 + size {
        return Err(not_amqp(format!(
            "truncated at {} of {} bytes",
            bytes.len(),
            8 + size
        )));
    }
    if bytes[7 + size] != FRAME_END {
        return Err(not_amqp("no frame end".into()));
    }
    let channel = u16::from_be_bytes([bytes[1], bytes[2]]);
    if channel != 0 {
        return Err(not_amqp(format!("channel {channel}")));
    }
    let p = &bytes[7..7 + size];
    let (Some(class), Some(method)) = (be16(p, 0), be16(p, 2)) else {
        return Err(not_amqp("short method frame".into()));
    };
    match (class, method) {
        (CONNECTION, START) => start(&p[4..]).ok_or_else(|| not_amqp("malformed Connection.Start".into())),
        (CONNECTION, CLOSE) => {
            let code = be16(p, 4).ok_or_else(|| not_amqp("short Connection.Close".into()))?;
            let text = shortstr(p, 6).map(|(t, _)| clean(t)).unwrap_or_default();
            Err(format!("the server closed the connection: {code} {text}").into())
        }
        _ => Err(not_amqp(format!("method {class}.{method}, not Connection.Start"))),
    }
}

fn be16(p: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*p.get(at)?, *p.get(at + 1)?]))
}

fn be32(p: &[u8], at: usize) -> Option<usize> {
    let b = p.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// A short string (length byte) at `at`: its bytes and where the next field starts.
fn shortstr(p: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let n = *p.get(at)? as usize;
    Some((p.get(at + 1..at + 1 + n)?, at + 1 + n))
}

/// A long string (or table: 4-byte length) at `at`.
fn longstr(p: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let n = be32(p, at)?;
    Some((p.get(at + 4..(at + 4).checked_add(n)?)?, at + 4 + n))
}

/// Connection.Start's arguments: version-major, version-minor, then the
/// server-properties table, mechanisms and locales (long strings). The
/// detail names the product and version when the table has them.
fn start(p: &[u8]) -> Option<String> {
    let (&major, &minor) = (p.first()?, p.get(1)?);
    let (props, next) = longstr(p, 2)?;
    let (_mechanisms, next) = longstr(p, next)?;
    longstr(p, next)?;
    let find = |key: &[u8]| table_string(props, key).map(clean);
    let who = match (find(b"product"), find(b"version")) {
        (Some(p), Some(v)) => format!(" from {p} {v}"),
        (Some(p), None) => format!(" from {p}"),
        _ => String::new(),
    };
    Some(format!("Connection.Start (AMQP {major}-{minor}){who}"))
}

/// The long-string value of `key` in a field table, walking entries until it
/// is found or a value of a type we cannot size is met.
fn table_string<'a>(t: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut at = 0;
    while at < t.len() {
        let (name, next) = shortstr(t, at)?;
        let kind = *t.get(next)?;
        let v = next + 1;
        let fixed = match kind {
            b't' | b'b' | b'B' => 1,
            b's' | b'u' => 2,
            b'I' | b'i' | b'f' => 4,
            b'D' => 5,
            b'l' | b'L' | b'd' | b'T' => 8,
            b'V' => 0,
            b'S' | b'F' | b'A' | b'x' => {
                let (value, end) = longstr(t, v)?;
                if kind == b'S' && name == key {
                    return Some(value);
                }
                at = end;
                continue;
            }
            _ => return None,
        };
        at = v + fixed;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![kind];
        f.extend_from_slice(&channel.to_be_bytes());
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        f.extend_from_slice(payload);
        f.push(FRAME_END);
        f
    }

    fn long(v: &[u8]) -> Vec<u8> {
        let mut out = (v.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(v);
        out
    }

    fn entry(name: &str, kind: u8, value: &[u8]) -> Vec<u8> {
        let mut e = vec![name.len() as u8];
        e.extend_from_slice(name.as_bytes());
        e.push(kind);
        e.extend_from_slice(value);
        e
    }

    /// Connection.Start laid out as RabbitMQ 3.10 sends it (abridged table).
    fn start_frame() -> Vec<u8> {
        let caps = [entry("publisher_confirms", b't', &[1]), entry("x", b'l', &[0; 8])].concat();
        let props = [
            entry("capabilities", b'F', &long(&caps)),
            entry("cluster_name", b'S', &long(b"rabbit@h")),
            entry("product", b'S', &long(b"RabbitMQ")),
            entry("version", b'S', &long(b"3.10.8")),
        ]
        .concat();
        let mut p = vec![0, 10, 0, 10, 0, 9];
        p.extend_from_slice(&long(&props));
        p.extend_from_slice(&long(b"AMQPLAIN PLAIN"));
        p.extend_from_slice(&long(b"en_US"));
        frame(1, 0, &p)
    }

    #[test]
    fn connection_start_is_up() {
        let f = start_frame();
        assert_eq!(
            judge_amqp(&f).unwrap(),
            "Connection.Start (AMQP 0-9) from RabbitMQ 3.10.8"
        );
        assert!(complete(&f) && !complete(&f[..f.len() - 1]) && !complete(&f[..5]));
        // Without product and version in the table: still up.
        let mut p = vec![0, 10, 0, 10, 0, 9];
        p.extend_from_slice(&long(&entry("weird", b'Z', &[1, 2])));
        p.extend_from_slice(&long(b"PLAIN"));
        p.extend_from_slice(&long(b"en_US"));
        assert_eq!(
            judge_amqp(&frame(1, 0, &p)).unwrap(),
            "Connection.Start (AMQP 0-9)"
        );
    }

    #[test]
    fn a_protocol_header_back_names_the_version_offered() {
        let e = judge_amqp(b"AMQP\x00\x01\x00\x00").unwrap_err();
        assert_eq!(e, "the server offers AMQP 1-0-0 (protocol id 0), not 0-9-1");
        let e = judge_amqp(b"AMQP\x01\x01\x00\x0a").unwrap_err();
        assert!(e.contains("AMQP 1-0-10 (protocol id 1)"), "{e}");
        assert!(complete(b"AMQP\x00\x01\x00\x00") && !complete(b"AMQP\x00"));
        assert!(complete(b"HTTP/1.1") && complete(b"-"));
    }

    #[test]
    fn anything_else_is_not_up() {
        let good = start_frame();
        let mut bad_end = good.clone();
        *bad_end.last_mut().unwrap() = 0;
        let mut chan1 = good.clone();
        chan1[2] = 1;
        let mut close = vec![0, 10, 0, 50, 1, 64, 6];
        close.extend_from_slice(b"denied\0\0\0\0");
        let e = judge_amqp(&frame(1, 0, &close)).unwrap_err();
        assert_eq!(e, "the server closed the connection: 320 denied");
        for bad in [
            vec![],
            b"AMQP".to_vec(),
            b"\x01\0\0".to_vec(),
            b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
            b"INFO {}\r\n".to_vec(),
            b"\x01\0\0\xff\xff\xff\xff".to_vec(),
            good[..good.len() - 2].to_vec(),
            bad_end,
            chan1,
            frame(2, 0, &good[7..good.len() - 1]),
            frame(1, 0, &[0, 10, 0, 11]),
            frame(1, 0, &[0, 10]),
            frame(1, 0, &[0, 10, 0, 10, 0, 9, 0xff, 0xff, 0xff, 0xff]),
            frame(1, 0, &[0, 10, 0, 10, 0, 9, 0, 0, 0, 0]),
        ] {
            assert!(judge_amqp(&bad).is_err(), "{bad:?}");
        }
        let e = judge_amqp(b"HTTP/1.1 400 Bad Request\r\n\r\n").unwrap_err();
        assert!(
            e.starts_with("not an AMQP 0-9-1 reply (frame type 72)") && e.contains("HTTP/1.1 400"),
            "{e}"
        );
    }
}
