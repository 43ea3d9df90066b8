//! Redis readiness: PING answers +PONG. A server loading its dataset answers
//! -LOADING and is not up yet. With a password, AUTH is sent first (with the
//! user too, for a Redis 6 ACL user), and with a database SELECT; all are
//! pipelined, and each must answer +OK.

use std::time::Instant;

use super::io::{clean, exchange};
use super::{CheckError, Kind};
use crate::net;

/// How to talk to the server: who to be and which database to use.
#[derive(Clone, Copy, Debug, Default)]
pub struct Login<'a> {
    pub user: Option<&'a str>,
    pub password: Option<&'a str>,
    pub db: Option<u32>,
}

impl Login<'_> {
    /// The commands sent before PING, each answered +OK when it works.
    fn preamble(&self) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        match (self.user, self.password) {
            (Some(u), Some(p)) => v.push(command(&["AUTH", u, p])),
            (None, Some(p)) => v.push(command(&["AUTH", p])),
            _ => {}
        }
        if let Some(n) = self.db {
            v.push(command(&["SELECT", &n.to_string()]));
        }
        v
    }

    /// The names of the preamble's commands, for `judge_redis`.
    pub fn sent(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.password.is_some() {
            v.push("AUTH");
        }
        if self.db.is_some() {
            v.push("SELECT");
        }
        v
    }
}

pub fn check(host: &str, port: u16, login: &Login<'_>, deadline: Instant) -> Result<String, CheckError> {
    let mut s = net::connect(host, port, deadline)?;
    let mut req: Vec<u8> = login.preamble().concat();
    req.extend_from_slice(&command(&["PING"]));
    let sent = login.sent();
    let want = sent.len() + 1;
    let reply = exchange(&mut s, &req, deadline, &|b: &[u8]| lines(b) >= want)
        .map_err(|e| e.context("no Redis reply"))?;
    judge_redis(&reply, &sent)
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

/// Judge what a server sent back for the commands named in `sent` (AUTH,
/// SELECT) then PING: `Ok(detail)` when each of those answered +OK and PING
/// +PONG. Pure, for fuzzing.
pub fn judge_redis(bytes: &[u8], sent: &[&str]) -> Result<String, CheckError> {
    let mut it = bytes.split(|&b| b == b'\n');
    let mut next = || -> Result<&[u8], CheckError> {
        match it.next() {
            Some(l) if l.ends_with(b"\r") => Ok(&l[..l.len() - 1]),
            Some([]) | None if bytes.is_empty() => Err("no reply (connection closed)".into()),
            Some([]) | None => Err("the reply ended early".into()),
            Some(l) => Err(format!("not a Redis reply: {:?}", clean(l)).into()),
        }
    };
    for cmd in sent {
        let l = next()?;
        if l != b"+OK" {
            return Err(match l.strip_prefix(b"-") {
                Some(e) if e.starts_with(b"LOADING") => loading(e),
                Some(e) => format!("{cmd} failed: {}", clean(e)).into(),
                None => format!("{cmd} failed: unexpected reply {:?}", clean(l)).into(),
            });
        }
    }
    let l = next()?;
    if l == b"+PONG" {
        return Ok("PONG".into());
    }
    Err(match l.strip_prefix(b"-") {
        Some(e) if e.starts_with(b"LOADING") => loading(e),
        Some(e) => format!("redis said: {}", clean(e)).into(),
        None => format!("not a PONG: {:?}", clean(l)).into(),
    })
}

fn loading(e: &[u8]) -> CheckError {
    CheckError::new(
        Kind::NotReady,
        format!("loading the dataset in memory ({})", clean(e)),
    )
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
    fn the_preamble_follows_the_login() {
        let l = Login {
            user: Some("app"),
            password: Some("p@ss"),
            db: Some(2),
        };
        assert_eq!(
            l.preamble().concat(),
            b"*3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$4\r\np@ss\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n"
        );
        assert_eq!(l.sent(), ["AUTH", "SELECT"]);
        let l = Login {
            password: Some("pw"),
            ..Login::default()
        };
        assert_eq!(l.preamble().concat(), command(&["AUTH", "pw"]));
        assert!(Login::default().preamble().is_empty() && Login::default().sent().is_empty());
    }

    #[test]
    fn pong_is_up() {
        assert_eq!(judge_redis(b"+PONG\r\n", &[]).unwrap(), "PONG");
        assert_eq!(judge_redis(b"+OK\r\n+PONG\r\n", &["AUTH"]).unwrap(), "PONG");
        assert_eq!(
            judge_redis(b"+OK\r\n+OK\r\n+PONG\r\n", &["AUTH", "SELECT"]).unwrap(),
            "PONG"
        );
    }

    #[test]
    fn loading_and_errors_are_not_up() {
        let e = judge_redis(b"-LOADING Redis is loading the dataset in memory\r\n", &[]).unwrap_err();
        assert!(e.contains("loading the dataset"), "{e}");
        assert_eq!(e.kind, Kind::NotReady);
        let e = judge_redis(b"-NOAUTH Authentication required.\r\n", &[]).unwrap_err();
        assert_eq!(e, "redis said: NOAUTH Authentication required.");
        assert_eq!(e.kind, Kind::Other);
        let e = judge_redis(
            b"-WRONGPASS invalid username-password pair\r\n-NOAUTH x\r\n",
            &["AUTH"],
        )
        .unwrap_err();
        assert!(e.starts_with("AUTH failed: WRONGPASS"), "{e}");
        let e = judge_redis(
            b"+OK\r\n-ERR DB index is out of range\r\n+PONG\r\n",
            &["AUTH", "SELECT"],
        )
        .unwrap_err();
        assert_eq!(e, "SELECT failed: ERR DB index is out of range");
        // Server text that says "timed out" is still just what the server said.
        let e = judge_redis(b"-ERR timed out\r\n", &[]).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (Kind::Other, "redis said: ERR timed out")
        );
    }

    #[test]
    fn wrong_replies_are_not_up() {
        for (bad, sent) in [
            (&b""[..], &[][..]),
            (b"+PONG", &[]),
            (b"+PONG\n", &[]),
            (b"$4\r\nPONG\r\n", &[]),
            (b"+PONGX\r\n", &[]),
            (b"HTTP/1.1 400 Bad Request\r\n", &[]),
            (b"+OK\r\n", &["AUTH"]),
            (b"+PONG\r\n", &["AUTH"]),
            (b"+OK\r\n+PONG\r\n", &["AUTH", "SELECT"]),
            (b"\xff\xfe\r\n", &[]),
        ] {
            assert!(judge_redis(bad, sent).is_err(), "{bad:?}");
        }
        assert_eq!(judge_redis(b"", &[]).unwrap_err(), "no reply (connection closed)");
    }
}
