//! MongoDB readiness: the `hello` command, sent on the admin database in an
//! OP_MSG (opcode 2013, MongoDB 3.6 and later), answers `ok: 1`. A server
//! that closes the connection on OP_MSG (before 3.6), or answers that it has
//! no `hello` command (before 4.4.2), is asked the legacy way instead: an
//! OP_QUERY (opcode 2004) of `isMaster` on `admin.$cmd`, answered by an
//! OP_REPLY (opcode 1). No credentials are sent: `hello` and `isMaster` need
//! none.
//!
//! Written from MongoDB's published wire protocol and BSON (bsonspec.org)
//! specifications. The reader is bounded: a reply's announced length must be
//! at most `MAX_MESSAGE` (MongoDB allows 48 MB messages; a hello reply is
//! under a few KiB), and every length inside is checked against the bytes
//! there before it is used. `parse_reply` and `judge` are pure, for fuzzing.

use std::time::Instant;

use super::io::{clean, exchange_upto};
use super::{CheckError, Kind};
use crate::net;

/// The port a mongodb:// target without one uses.
pub const DEFAULT_PORT: u16 = 27017;
/// The most bytes of one reply we read (1 MiB); a longer announced length
/// fails the check with a message saying so.
pub const MAX_MESSAGE: usize = 1 << 20;

const OP_REPLY: i32 = 1;
const OP_QUERY: i32 = 2004;
const OP_MSG: i32 = 2013;
/// Our requestID; the reply's responseTo must repeat it.
pub const REQUEST_ID: i32 = 0x6468_6b31;
/// MongoDB's CommandNotFound error code.
const COMMAND_NOT_FOUND: i64 = 59;

pub fn check(host: &str, port: u16, deadline: Instant) -> Result<String, CheckError> {
    let mut s = net::connect(host, port, deadline)?;
    let why_legacy = match exchange_upto(&mut s, &hello_request(), deadline, MAX_MESSAGE, &complete) {
        Ok(reply) => {
            let r = parse_reply(&reply)?;
            if r.opcode == OP_MSG && !hello_unsupported(&r.fields) {
                return judge(&r.fields, "hello");
            }
            match r.fields.errmsg.as_deref() {
                Some(m) => format!("hello: {m}"),
                None => "answered OP_MSG with OP_REPLY".to_string(),
            }
        }
        Err(e) if closed(&e) => "closed the connection on OP_MSG".to_string(),
        Err(e) => return Err(e.context("no MongoDB reply")),
    };
    drop(s);
    let mut s = net::connect(host, port, deadline)?;
    let reply = exchange_upto(&mut s, &is_master_request(), deadline, MAX_MESSAGE, &complete)
        .map_err(|e| e.context(&format!("no MongoDB reply to isMaster (the server {why_legacy})")))?;
    let r = parse_reply(&reply)?;
    if r.opcode != OP_REPLY {
        return Err(format!("not a MongoDB reply (opcode {} to OP_QUERY)", r.opcode).into());
    }
    judge(&r.fields, "isMaster").map(|d| format!("{d}, legacy OP_QUERY"))
}

/// The server went away without answering: what a server that does not
/// speak OP_MSG does.
fn closed(e: &CheckError) -> bool {
    e.kind == Kind::Other
        && (e.message.starts_with("connection closed") || e.message.starts_with("connection reset"))
}

/// Whether an answer to `hello` says the command or OP_MSG is unknown.
pub fn hello_unsupported(f: &Fields) -> bool {
    if f.ok == Some(true) {
        return false;
    }
    let m = f.errmsg.as_deref().unwrap_or("").to_ascii_lowercase();
    f.code == Some(COMMAND_NOT_FOUND)
        || m.contains("no such command")
        || m.contains("hello")
        || m.contains("op_msg")
}

/// The 16-byte message header.
fn header(out: &mut Vec<u8>, opcode: i32) {
    out.extend_from_slice(&0i32.to_le_bytes()); // messageLength, set at the end
    out.extend_from_slice(&REQUEST_ID.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // responseTo
    out.extend_from_slice(&opcode.to_le_bytes());
}

fn set_length(m: &mut [u8]) {
    let n = m.len() as i32;
    m[..4].copy_from_slice(&n.to_le_bytes());
}

/// OP_MSG: flagBits 0, one kind-0 section holding {hello: 1, $db: "admin"}.
pub fn hello_request() -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    header(&mut m, OP_MSG);
    m.extend_from_slice(&0u32.to_le_bytes());
    m.push(0);
    m.extend_from_slice(&document(&[
        ("hello", Value::Int(1)),
        ("$db", Value::Str("admin")),
    ]));
    set_length(&mut m);
    m
}

/// OP_QUERY on admin.$cmd: {isMaster: 1}, numberToReturn -1 (one document).
pub fn is_master_request() -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    header(&mut m, OP_QUERY);
    m.extend_from_slice(&0i32.to_le_bytes()); // flags
    m.extend_from_slice(b"admin.$cmd\0");
    m.extend_from_slice(&0i32.to_le_bytes()); // numberToSkip
    m.extend_from_slice(&(-1i32).to_le_bytes()); // numberToReturn
    m.extend_from_slice(&document(&[("isMaster", Value::Int(1))]));
    set_length(&mut m);
    m
}

/// The two BSON element types our requests use.
enum Value<'a> {
    Int(i32),
    Str(&'a str),
}

/// A BSON document of `fields` (names hold no NUL: they are ours).
fn document(fields: &[(&str, Value<'_>)]) -> Vec<u8> {
    let mut d = vec![0; 4];
    for (name, v) in fields {
        match v {
            Value::Int(n) => {
                d.push(0x10);
                d.extend_from_slice(name.as_bytes());
                d.push(0);
                d.extend_from_slice(&n.to_le_bytes());
            }
            Value::Str(s) => {
                d.push(0x02);
                d.extend_from_slice(name.as_bytes());
                d.push(0);
                d.extend_from_slice(&(s.len() as i32 + 1).to_le_bytes());
                d.extend_from_slice(s.as_bytes());
                d.push(0);
            }
        }
    }
    d.push(0);
    set_length(&mut d);
    d
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Whether `buf` holds the whole reply, or enough to tell it is bad.
fn complete(buf: &[u8]) -> bool {
    match i32_at(buf, 0) {
        Some(n) if (16..=MAX_MESSAGE as i32).contains(&n) => buf.len() >= n as usize,
        Some(_) => true,
        None => false,
    }
}

/// What a reply document says, from its top-level fields.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fields {
    /// `ok` as a truth value (1.0, 1, true are ok); `None` when absent.
    pub ok: Option<bool>,
    pub errmsg: Option<String>,
    pub code: Option<i64>,
    /// `isWritablePrimary` (hello) or `ismaster` (isMaster).
    pub primary: Option<bool>,
}

/// A reply's opcode and the fields of its (first) document.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub opcode: i32,
    pub fields: Fields,
}

/// Parse one reply message (OP_MSG or OP_REPLY) to our request.
pub fn parse_reply(b: &[u8]) -> Result<Reply, CheckError> {
    let bad = |why: String| CheckError::from(format!("not a MongoDB reply ({why})"));
    if b.is_empty() {
        return Err("no reply (connection closed)".into());
    }
    let Some(len) = i32_at(b, 0) else {
        return Err(bad(format!("only {} bytes", b.len())));
    };
    if len < 16 {
        return Err(bad(format!("message length {len}")));
    }
    if len as i64 > MAX_MESSAGE as i64 {
        return Err(bad(format!(
            "message length {len}, more than the {} KiB this check reads",
            MAX_MESSAGE / 1024
        )));
    }
    let len = len as usize;
    if b.len() < len {
        return Err(bad(format!("truncated at {} of {len} bytes", b.len())));
    }
    let m = &b[..len];
    let response_to = i32_at(m, 8).unwrap_or(0);
    if response_to != REQUEST_ID {
        return Err(bad(format!("responseTo {response_to}, not our request")));
    }
    let opcode = i32_at(m, 12).unwrap_or(0);
    let doc = match opcode {
        OP_MSG => msg_body(&m[16..]).map_err(bad)?,
        OP_REPLY => reply_doc(&m[16..]).map_err(bad)?,
        other => return Err(bad(format!("opcode {other}"))),
    };
    let fields = fields(doc).map_err(|e| bad(format!("bad BSON: {e}")))?;
    Ok(Reply { opcode, fields })
}

/// The body (kind-0 section) of an OP_MSG after the header.
fn msg_body(b: &[u8]) -> Result<&[u8], String> {
    let flags = i32_at(b, 0).ok_or("no flagBits")? as u32;
    let mut rest = &b[4..];
    if flags & 1 != 0 {
        // checksumPresent: a CRC-32C ends the message.
        rest = rest.get(..rest.len().saturating_sub(4)).unwrap_or(&[]);
    }
    let mut body = None;
    while let Some((&kind, r)) = rest.split_first() {
        let size = i32_at(r, 0).ok_or("truncated section")?;
        if size < 5 || size as usize > r.len() {
            return Err(format!("section length {size}"));
        }
        let (sec, after) = r.split_at(size as usize);
        match kind {
            0 if body.is_none() => body = Some(sec),
            0 => return Err("two body sections".into()),
            // A document sequence: an identifier and documents, not ours to read.
            1 => {}
            k => return Err(format!("section kind {k}")),
        }
        rest = after;
    }
    body.ok_or_else(|| "no body section".to_string())
}

/// The first document of an OP_REPLY after the header.
fn reply_doc(b: &[u8]) -> Result<&[u8], String> {
    // responseFlags (4), cursorID (8), startingFrom (4), numberReturned (4).
    let returned = i32_at(b, 16).ok_or("short OP_REPLY")?;
    if returned < 1 {
        return Err(format!("{returned} documents returned"));
    }
    Ok(&b[20..])
}

/// The top-level fields of the BSON document at the start of `b` that say
/// whether the command worked. Embedded documents are skipped by length,
/// never descended into.
pub fn fields(b: &[u8]) -> Result<Fields, String> {
    let len = i32_at(b, 0).ok_or("short document")?;
    if len < 5 || len as usize > b.len() {
        return Err(format!("document length {len}"));
    }
    let doc = &b[..len as usize];
    if doc[doc.len() - 1] != 0 {
        return Err("document not terminated".into());
    }
    let mut f = Fields::default();
    let mut at = 4;
    let end = doc.len() - 1;
    while at < end {
        let t = doc[at];
        let name_end = doc[at + 1..end]
            .iter()
            .position(|&c| c == 0)
            .ok_or("unterminated name")?
            + at
            + 1;
        let name = &doc[at + 1..name_end];
        let v = name_end + 1;
        let size = value_size(t, &doc[v..end])?;
        let val = &doc[v..v + size];
        match name {
            b"ok" => f.ok = Some(truth(t, val).ok_or("ok is not a number")?),
            b"errmsg" | b"$err" if t == 0x02 => f.errmsg = Some(clean(&val[4..val.len() - 1])),
            b"code" => f.code = int(t, val),
            b"isWritablePrimary" | b"ismaster" => f.primary = truth(t, val),
            _ => {}
        }
        at = v + size;
    }
    Ok(f)
}

/// How many bytes the value of type `t` at the start of `b` takes.
fn value_size(t: u8, b: &[u8]) -> Result<usize, String> {
    let counted = |extra: usize, min: i32| -> Result<usize, String> {
        let n = i32_at(b, 0).ok_or("truncated value")?;
        if n < min {
            return Err(format!("value length {n}"));
        }
        Ok(n as usize + extra)
    };
    let cstring = |from: usize| -> Result<usize, String> {
        let p = b.get(from..).and_then(|r| r.iter().position(|&c| c == 0));
        Ok(from + p.ok_or("unterminated string")? + 1)
    };
    let size = match t {
        0x01 | 0x09 | 0x11 | 0x12 => 8,
        0x13 => 16,
        0x07 => 12,
        0x08 => 1,
        0x10 => 4,
        0x06 | 0x0A | 0x7F | 0xFF => 0,
        // string, JavaScript code, symbol: length (with the NUL), bytes, NUL.
        0x02 | 0x0D | 0x0E => {
            let n = counted(4, 1)?;
            if b.get(n - 1) != Some(&0) {
                return Err("string not terminated".into());
            }
            n
        }
        0x03 | 0x04 | 0x0F => counted(0, 5)?,
        0x05 => counted(5, 0)?,
        0x0B => cstring(cstring(0)?)?,
        0x0C => counted(4, 1)? + 12,
        other => return Err(format!("element type {other:#04x}")),
    };
    if size > b.len() {
        return Err("value runs past the document".into());
    }
    Ok(size)
}

/// A number or boolean as a truth value: non-zero is true.
fn truth(t: u8, v: &[u8]) -> Option<bool> {
    match t {
        0x01 => Some(f64::from_le_bytes(v.try_into().ok()?) != 0.0),
        0x08 => Some(v[0] != 0),
        _ => int(t, v).map(|n| n != 0),
    }
}

fn int(t: u8, v: &[u8]) -> Option<i64> {
    match t {
        0x10 => Some(i32::from_le_bytes(v.try_into().ok()?) as i64),
        0x12 => Some(i64::from_le_bytes(v.try_into().ok()?)),
        0x01 => {
            let d = f64::from_le_bytes(v.try_into().ok()?);
            (d.fract() == 0.0 && d.abs() < 1e15).then_some(d as i64)
        }
        _ => None,
    }
}

/// Judge the fields of the answer to `command`: up when ok is 1.
pub fn judge(f: &Fields, command: &str) -> Result<String, CheckError> {
    match f.ok {
        Some(true) => Ok(match f.primary {
            Some(true) => format!("{command} ok, primary"),
            Some(false) => format!("{command} ok, not primary"),
            None => format!("{command} ok"),
        }),
        Some(false) => {
            let msg = f.errmsg.as_deref().unwrap_or("(no errmsg)");
            let code = f.code.map(|c| format!(" [code {c}]")).unwrap_or_default();
            Err(CheckError::new(
                Kind::NotReady,
                format!("{command} failed: {msg}{code}"),
            ))
        }
        None => Err(format!("{command} reply has no ok field").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply message around `doc`: OP_MSG or OP_REPLY.
    fn reply(opcode: i32, doc: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        header(&mut m, opcode);
        m[8..12].copy_from_slice(&REQUEST_ID.to_le_bytes());
        if opcode == OP_MSG {
            m.extend_from_slice(&0u32.to_le_bytes());
            m.push(0);
        } else {
            m.extend_from_slice(&[0; 16]);
            m.extend_from_slice(&1i32.to_le_bytes());
        }
        m.extend_from_slice(doc);
        set_length(&mut m);
        m
    }

    fn raw_doc(elements: &[u8]) -> Vec<u8> {
        let mut d = ((elements.len() + 5) as i32).to_le_bytes().to_vec();
        d.extend_from_slice(elements);
        d.push(0);
        d
    }

    fn double(name: &str, v: f64) -> Vec<u8> {
        let mut e = vec![0x01];
        e.extend_from_slice(name.as_bytes());
        e.push(0);
        e.extend_from_slice(&v.to_le_bytes());
        e
    }

    fn string(name: &str, v: &str) -> Vec<u8> {
        let mut e = vec![0x02];
        e.extend_from_slice(name.as_bytes());
        e.push(0);
        e.extend_from_slice(&(v.len() as i32 + 1).to_le_bytes());
        e.extend_from_slice(v.as_bytes());
        e.push(0);
        e
    }

    #[test]
    fn requests_are_well_formed() {
        let h = hello_request();
        assert_eq!(i32_at(&h, 0), Some(h.len() as i32));
        assert_eq!(i32_at(&h, 12), Some(OP_MSG));
        let body = &h[21..];
        assert_eq!(i32_at(body, 0), Some(body.len() as i32));
        assert!(h.windows(6).any(|w| w == b"hello\0"));
        assert!(h.windows(10).any(|w| w == b"$db\0\x06\0\0\0ad"));
        let q = is_master_request();
        assert_eq!(i32_at(&q, 0), Some(q.len() as i32));
        assert_eq!(i32_at(&q, 12), Some(OP_QUERY));
        assert!(q.windows(11).any(|w| w == b"admin.$cmd\0"));
        assert_eq!((i32_at(&q, 31), i32_at(&q, 35)), (Some(0), Some(-1)));
    }

    #[test]
    fn ok_one_is_up_in_every_number_type() {
        let mut int_ok = vec![0x10];
        int_ok.extend_from_slice(b"ok\0");
        int_ok.extend_from_slice(&1i32.to_le_bytes());
        let mut with_sub = vec![0x03];
        with_sub.extend_from_slice(b"topologyVersion\0");
        with_sub.extend_from_slice(&raw_doc(&double("ok", 0.0)));
        with_sub.extend_from_slice(&double("ok", 1.0));
        for els in [double("ok", 1.0), int_ok, with_sub] {
            let r = parse_reply(&reply(OP_MSG, &raw_doc(&els))).unwrap();
            assert_eq!(judge(&r.fields, "hello").unwrap(), "hello ok");
        }
        let mut els = vec![0x08];
        els.extend_from_slice(b"isWritablePrimary\0\x01");
        els.extend_from_slice(&double("ok", 1.0));
        let r = parse_reply(&reply(OP_MSG, &raw_doc(&els))).unwrap();
        assert_eq!(judge(&r.fields, "hello").unwrap(), "hello ok, primary");
        let r = parse_reply(&reply(OP_REPLY, &raw_doc(&double("ok", 1.0)))).unwrap();
        assert_eq!(r.opcode, OP_REPLY);
    }

    #[test]
    fn ok_zero_says_the_errmsg_and_may_ask_for_the_legacy_way() {
        let mut els = double("ok", 0.0);
        els.extend_from_slice(&string("errmsg", "node is recovering\n"));
        let r = parse_reply(&reply(OP_MSG, &raw_doc(&els))).unwrap();
        let e = judge(&r.fields, "hello").unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (Kind::NotReady, "hello failed: node is recovering")
        );
        assert!(!hello_unsupported(&r.fields));
        let mut els = double("ok", 0.0);
        els.extend_from_slice(&string("errmsg", "no such command: 'hello'"));
        let r = parse_reply(&reply(OP_MSG, &raw_doc(&els))).unwrap();
        assert!(hello_unsupported(&r.fields));
        assert!(!hello_unsupported(&Fields {
            ok: Some(true),
            ..Fields::default()
        }));
    }

    #[test]
    fn garbage_fails_cleanly() {
        let good = reply(OP_MSG, &raw_doc(&double("ok", 1.0)));
        let mut huge = good.clone();
        huge[..4].copy_from_slice(&(64i32 << 20).to_le_bytes());
        let e = parse_reply(&huge).unwrap_err();
        assert!(e.contains("more than the 1024 KiB"), "{e}");
        assert!(complete(&huge[..4]));
        let mut other = good.clone();
        other[8] ^= 1;
        assert!(parse_reply(&other).unwrap_err().contains("responseTo"));
        for bad in [
            &b""[..],
            b"HTTP/1.1 400 Bad Request\r\n\r\n",
            &good[..good.len() - 1],
            b"\x10\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
        ] {
            assert!(parse_reply(bad).is_err(), "{bad:?}");
        }
        // A string whose length runs past the document.
        let mut s = string("errmsg", "x");
        s[8] = 100;
        assert!(fields(&raw_doc(&s)).is_err());
        // Every prefix and every one-byte change of a good reply is judged without panicking.
        for i in 0..good.len() {
            let _ = parse_reply(&good[..i]);
            let mut g = good.clone();
            g[i] ^= 0xff;
            let _ = parse_reply(&g);
        }
    }
}
