//! Redis readiness: PING answers +PONG. A server loading its dataset answers
//! -LOADING and is not up yet; with a password, AUTH is sent first (pipelined)
//! and must answer +OK.

use std::time::Instant;

use super::postgres::{clean, exchange};
use crate::net;

pub fn check(host: &str, port: u16, password: Option<&str>, deadline: Instant) -> Result<String, String> {
    let mut s = net::connect(host, port, deadline)?;
    let mut req = Vec::with_capacity(64);
    if let Some(p) = password {
        req.extend_from_slice(&command(&["AUTH", p]));
    }
    req.extend_from_slice(&command(&["PING"]));
    let done = if password.is_some() { two_lines } else { one_line };
    let reply = exchange(&mut s, &req, deadline, done).map_err(|e| format!("no Redis reply: {e}"))?;
    judge_redis(&reply, password.is_some())
}

/// A command as a RESP array of bulk strings (safe for any password bytes).
pub fn command(args: &[&str]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a.as_bytes());
        v.extend_from_slice(b"\r\n");
    }
    v
}

fn lines(buf: &[u8]) -> usize {
    buf.windows(2).filter(|w| w == b"\r\n").count()
}

fn one_line(buf: &[u8]) -> bool {
    lines(buf) >= 1
}

fn two_lines(buf: &[u8]) -> bool {
    lines(buf) >= 2
}

/// Judge what a server sent back for `[AUTH] PING`: `Ok(detail)` when PING
/// answered +PONG (and AUTH, when sent, +OK). Pure, for fuzzing.
pub fn judge_redis(bytes: &[u8], sent_auth: bool) -> Result<String, String> {
    let mut it = bytes.split(|&b| b == b'\n');
    let mut next = || -> Result<&[u8], String> {
        match it.next() {
            Some(l) if l.ends_with(b"\r") => Ok(&l[..l.len() - 1]),
            Some([]) | None if bytes.is_empty() => Err("no reply (connection closed)".into()),
            Some([]) | None => Err("the reply ended early".into()),
            Some(l) => Err(format!("not a Redis reply: {:?}", clean(l))),
        }
    };
    if sent_auth {
        let l = next()?;
        if l != b"+OK" {
            return Err(match l.strip_prefix(b"-") {
                Some(e) => format!("AUTH failed: {}", clean(e)),
                None => format!("AUTH failed: unexpected reply {:?}", clean(l)),
            });
        }
    }
    let l = next()?;
    if l == b"+PONG" {
        return Ok("PONG".into());
    }
    Err(match l.strip_prefix(b"-") {
        Some(e) if e.starts_with(b"LOADING") => format!("loading the dataset in memory ({})", clean(e)),
        Some(e) => format!("redis said: {}", clean(e)),
        None => format!("not a PONG: {:?}", clean(l)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_encodes_as_resp_array() {
        assert_eq!(command(&["PING"]), b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(
            command(&["AUTH", "a b\r\n"]),
            b"*2\r\n$4\r\nAUTH\r\n$5\r\na b\r\n\r\n"
        );
    }

    #[test]
    fn pong_is_up() {
        assert_eq!(judge_redis(b"+PONG\r\n", false).unwrap(), "PONG");
        assert_eq!(judge_redis(b"+OK\r\n+PONG\r\n", true).unwrap(), "PONG");
    }

    #[test]
    fn loading_and_errors_are_not_up() {
        let e = judge_redis(b"-LOADING Redis is loading the dataset in memory\r\n", false).unwrap_err();
        assert!(e.contains("loading the dataset"), "{e}");
        let e = judge_redis(b"-NOAUTH Authentication required.\r\n", false).unwrap_err();
        assert_eq!(e, "redis said: NOAUTH Authentication required.");
        let e = judge_redis(
            b"-WRONGPASS invalid username-password pair\r\n-NOAUTH x\r\n",
            true,
        )
        .unwrap_err();
        assert!(e.starts_with("AUTH failed: WRONGPASS"), "{e}");
    }

    #[test]
    fn wrong_replies_are_not_up() {
        for (bad, auth) in [
            (&b""[..], false),
            (b"+PONG", false),
            (b"+PONG\n", false),
            (b"$4\r\nPONG\r\n", false),
            (b"+PONGX\r\n", false),
            (b"HTTP/1.1 400 Bad Request\r\n", false),
            (b"+OK\r\n", true),
            (b"+PONG\r\n", true),
            (b"\xff\xfe\r\n", false),
        ] {
            assert!(judge_redis(bad, auth).is_err(), "{bad:?}");
        }
        assert_eq!(
            judge_redis(b"", false).unwrap_err(),
            "no reply (connection closed)"
        );
    }
}
