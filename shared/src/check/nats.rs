//! NATS readiness: the server speaks first with `INFO {json}`; then
//! `CONNECT` and `PING` are sent and the server is up when it answers `PONG`
//! (`+OK` lines are skipped; `-ERR '...'` is not up, with the server's
//! words). No credentials are sent: when INFO says the server requires them
//! (or TLS), the INFO line itself is the answer, as an authentication request
//! is for PostgreSQL, and CONNECT is not tried.

use std::time::Instant;

use super::io::{clean, exchange, sample};
use super::{CheckError, Kind};
use crate::net;

/// What is sent once INFO is in: no echo of +OK, then a PING.
pub const CONNECT: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n";

pub fn check(host: &str, port: u16, deadline: Instant) -> Result<String, CheckError> {
    let mut s = net::connect(host, port, deadline)?;
    let first = exchange(&mut s, &[], deadline, &first_line_in).map_err(|e| e.context("no NATS INFO"))?;
    let (info, rest) = judge_info(&first)?;
    if let Some(why) = info.login_needed() {
        return Ok(format!("INFO{} ({why}: CONNECT not tried)", info.from()));
    }
    // A server at its connection limit says so right after INFO.
    if decided(rest) {
        return judge_replies(rest).map(|d| format!("{d}{}", info.from()));
    }
    let reply = exchange(&mut s, CONNECT, deadline, &|b| decided(&[rest, b].concat()))
        .map_err(|e| e.context("no NATS reply to PING"))?;
    judge_replies(&[rest, &reply].concat()).map(|d| format!("{d}{}", info.from()))
}

/// What the INFO line says that the check needs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Info {
    pub version: Option<String>,
    pub auth_required: bool,
    pub tls_required: bool,
}

impl Info {
    /// Why CONNECT without credentials cannot succeed, if it cannot.
    fn login_needed(&self) -> Option<&'static str> {
        match (self.tls_required, self.auth_required) {
            (true, _) => Some("TLS required"),
            (_, true) => Some("authentication required"),
            _ => None,
        }
    }

    fn from(&self) -> String {
        match &self.version {
            Some(v) => format!(" from nats-server {v}"),
            None => String::new(),
        }
    }
}

/// Whether the first line is in, or the bytes so far cannot start one a
/// NATS server sends first (another protocol's greeting without a newline).
fn first_line_in(b: &[u8]) -> bool {
    let n = b.len().min(5);
    b.contains(&b'\n') || !(b"INFO ".starts_with(&b[..n]) || b"-ERR ".starts_with(&b[..n]))
}

/// The first line of NATS text, without its CRLF, and what follows it;
/// `None` until a whole line is there.
fn line(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let n = b.iter().position(|&c| c == b'\n')?;
    let l = &b[..n];
    Some((l.strip_suffix(b"\r").unwrap_or(l), &b[n + 1..]))
}

/// Judge the bytes a server sent on connect: the INFO line and any bytes
/// after it, or why it is not a NATS server. Pure, for fuzzing.
pub fn judge_info(bytes: &[u8]) -> Result<(Info, &[u8]), CheckError> {
    if bytes.is_empty() {
        return Err("no INFO (connection closed)".into());
    }
    let not_nats = |why: &str| CheckError::from(format!("not a NATS server ({why}): {:?}", sample(bytes)));
    let Some((l, rest)) = line(bytes) else {
        return Err(not_nats("no INFO line"));
    };
    if let Some(e) = l.strip_prefix(b"-ERR") {
        return Err(server_error(e));
    }
    let Some(json) = l.strip_prefix(b"INFO ") else {
        return Err(not_nats("no INFO line"));
    };
    let fields = json_object(json).ok_or_else(|| not_nats("INFO is not a JSON object"))?;
    let mut info = Info::default();
    for (k, v) in fields {
        match k {
            b"version" => {
                info.version = v
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .map(clean)
            }
            b"auth_required" => info.auth_required = v == b"true",
            b"tls_required" => info.tls_required = v == b"true",
            _ => {}
        }
    }
    Ok((info, rest))
}

/// Whether the server's lines so far hold a verdict (PONG or -ERR).
fn decided(mut b: &[u8]) -> bool {
    while let Some((l, rest)) = line(b) {
        if l == b"PONG" || l.starts_with(b"-ERR") {
            return true;
        }
        b = rest;
    }
    false
}

/// Judge the lines a server sent after INFO (its answers to CONNECT and
/// PING): up at `PONG`, not at `-ERR`. Pure, for fuzzing.
pub fn judge_replies(mut bytes: &[u8]) -> Result<String, CheckError> {
    let all = bytes;
    while let Some((l, rest)) = line(bytes) {
        match l {
            b"PONG" => return Ok("PONG".into()),
            // +OK (verbose), a PING of the server's own, an INFO update.
            b"+OK" | b"PING" => {}
            _ if l.starts_with(b"INFO ") => {}
            _ if l.starts_with(b"-ERR") => return Err(server_error(&l[4..])),
            _ => return Err(format!("not a NATS reply: {:?}", sample(l)).into()),
        }
        bytes = rest;
    }
    Err(match all {
        [] => "no reply to PING (connection closed)".into(),
        _ => format!("no PONG (the reply ended early): {:?}", sample(all)).into(),
    })
}

/// `-ERR 'text'`: the server will not take this connection.
fn server_error(e: &[u8]) -> CheckError {
    let e = e.trim_ascii();
    let e = e
        .strip_prefix(b"'")
        .and_then(|e| e.strip_suffix(b"'"))
        .unwrap_or(e);
    CheckError::new(Kind::NotReady, format!("NATS error: {}", clean(e)))
}

/// The top-level members of a JSON object, values as raw text (strings
/// keep their quotes); `None` when it is not one object. Bounded by the
/// input: every step consumes at least one byte.
fn json_object(b: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let mut out = Vec::new();
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return (ws(b, i + 1) == b.len()).then_some(out);
    }
    loop {
        let end = string_end(b, i)?;
        let key = &b[i + 1..end - 1];
        i = ws(b, end);
        if b.get(i) != Some(&b':') {
            return None;
        }
        let start = ws(b, i + 1);
        let stop = value_end(b, start)?;
        out.push((key, &b[start..stop]));
        i = ws(b, stop);
        match b.get(i)? {
            b',' => i = ws(b, i + 1),
            b'}' => return (ws(b, i + 1) == b.len()).then_some(out),
            _ => return None,
        }
    }
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// The index just past the string starting at `i` (which must be a quote).
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match b.get(j)? {
            b'"' => return Some(j + 1),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
}

/// The index just past the value starting at `i`: a string, an object or
/// array (nested, strings inside skipped), or a literal.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match b.get(j)? {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let n = b[i..]
                .iter()
                .position(|c| matches!(c, b',' | b'}' | b']') || c.is_ascii_whitespace());
            let end = i + n.unwrap_or(b.len() - i);
            (end > i).then_some(end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &[u8] = b"INFO {\"server_id\":\"NA6C\",\"server_name\":\"NA6C\",\"version\":\"2.9.10\",\"proto\":1,\"go\":\"go1.19.8\",\"host\":\"127.0.0.1\",\"port\":4222,\"headers\":true,\"max_payload\":1048576,\"client_id\":5,\"client_ip\":\"127.0.0.1\"} \r\n";

    #[test]
    fn info_then_pong_is_up() {
        let (info, rest) = judge_info(INFO).unwrap();
        assert_eq!(
            info,
            Info {
                version: Some("2.9.10".into()),
                auth_required: false,
                tls_required: false
            }
        );
        assert!(rest.is_empty() && info.login_needed().is_none());
        assert_eq!(judge_replies(b"PONG\r\n").unwrap(), "PONG");
        assert_eq!(
            judge_replies(b"+OK\r\nINFO {}\r\nPING\r\nPONG\r\n").unwrap(),
            "PONG"
        );
        assert!(!first_line_in(b"INF") && !first_line_in(INFO.split_at(30).0) && first_line_in(INFO));
        assert!(first_line_in(b"\x64\0\0\0\x0a5.5") && !first_line_in(b"-ERR 'x"));
        assert!(decided(b"+OK\r\nPONG\r\n") && !decided(b"+OK\r\nPON") && decided(b"-ERR 'x'\r\n"));
    }

    #[test]
    fn auth_or_tls_required_is_answered_by_info() {
        let (info, _) =
            judge_info(b"INFO {\"auth_required\" : true, \"x\":[1,{\"a\":\"]}\"}],\"version\":\"2.10\"}\r\n")
                .unwrap();
        assert_eq!(info.login_needed(), Some("authentication required"));
        assert_eq!(info.version.as_deref(), Some("2.10"));
        let (info, _) = judge_info(b"INFO {\"tls_required\":true,\"auth_required\":true}\r\n").unwrap();
        assert_eq!(info.login_needed(), Some("TLS required"));
        // A string that looks like the field is not the field.
        let (info, _) = judge_info(b"INFO {\"name\":\"\\\"auth_required\\\":true\"}\r\n").unwrap();
        assert_eq!(info.login_needed(), None);
    }

    #[test]
    fn err_is_not_ready_with_the_servers_words() {
        let e = judge_replies(b"-ERR 'Authorization Violation'\r\n").unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (Kind::NotReady, "NATS error: Authorization Violation")
        );
        let e = judge_replies(b"+OK\r\n-ERR 'maximum connections exceeded'\r\nPONG\r\n").unwrap_err();
        assert_eq!(e, "NATS error: maximum connections exceeded");
        let e = judge_info(b"-ERR 'x\x1b[2J'\r\n").unwrap_err();
        assert_eq!(e, "NATS error: x [2J");
    }

    #[test]
    fn anything_else_is_not_up() {
        for bad in [
            &b""[..],
            b"INFO {}",
            b"INFO\r\n",
            b"INFO {\r\n",
            b"INFO {\"a\":}\r\n",
            b"INFO {\"a\":1,}\r\n",
            b"INFO {\"a\":1} x\r\n",
            b"INFO {\"a\":[1,2}\r\n",
            b"INFO {\"a\r\n",
            b"info {}\r\n",
            b"+PONG\r\n",
            b"\x0a\0\0\0\x0a8.0.36\0",
            b"HTTP/1.1 400 Bad Request\r\n",
        ] {
            assert!(judge_info(bad).is_err(), "{bad:?}");
        }
        for bad in [&b""[..], b"+OK\r\n", b"PONG", b"PONGX\r\n", b"+PONG\r\n", b"\r\n"] {
            assert!(judge_replies(bad).is_err(), "{bad:?}");
        }
        let e = judge_info(b"HTTP/1.1 400 Bad Request\r\n").unwrap_err();
        assert_eq!(
            e,
            "not a NATS server (no INFO line): \"HTTP/1.1 400 Bad Request\""
        );
    }
}
