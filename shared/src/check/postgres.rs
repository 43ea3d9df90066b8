//! PostgreSQL readiness, judged the way `pg_isready` (libpq's `PQping`) does:
//! send a protocol 3.0 StartupMessage and read the first reply. An
//! authentication request, or any error other than SQLSTATE 57P03
//! (cannot_connect_now: starting up, shutting down, hot standby off), means
//! the server is accepting connections. No password is ever sent.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use super::io::{clean, exchange, MAX_REPLY};
use super::{CheckError, Kind};
use crate::net;

/// SQLSTATE cannot_connect_now.
const CANNOT_CONNECT_NOW: &str = "57P03";

pub fn check(
    host: &str,
    port: u16,
    user: Option<&str>,
    db: Option<&str>,
    deadline: Instant,
) -> Result<String, CheckError> {
    let mut s = net::connect(host, port, deadline)?;
    let reply = exchange(
        &mut s,
        &startup_message(user.unwrap_or("postgres"), db),
        deadline,
        &complete,
    )
    .map_err(|e| e.context("no PostgreSQL reply"))?;
    let verdict = judge_postgres(&reply);
    // AuthenticationOk (trust) starts a session: end it with Terminate so the
    // server logs no "unexpected EOF". After any other authentication request
    // a Terminate would be a protocol violation in the server's log, and after
    // an error the server has already closed: just close.
    if reply.len() >= 9 && reply[0] == b'R' && reply[5..9] == [0, 0, 0, 0] {
        let _ = s.write_all(&[b'X', 0, 0, 0, 4]);
        let _ = s.shutdown(std::net::Shutdown::Write);
        drain(&mut s, deadline);
    }
    verdict
}

/// The StartupMessage: length, protocol 3.0, then name/value pairs, then a NUL.
pub fn startup_message(user: &str, db: Option<&str>) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    body.extend_from_slice(&196_608u32.to_be_bytes()); // 3 << 16 | 0
    let mut pair = |k: &str, v: &str| {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        // A NUL inside a value would end it early; the target parser never
        // lets one through, but do not send a malformed packet regardless.
        body.extend(v.bytes().filter(|&b| b != 0));
        body.push(0);
    };
    pair("user", user);
    if let Some(d) = db {
        pair("database", d);
    }
    pair("application_name", "dockhand");
    body.push(0);
    let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    msg
}

/// Whether `buf` holds the whole first message (or enough to judge it bad).
fn complete(buf: &[u8]) -> bool {
    match header(buf) {
        Some(Ok(total)) => buf.len() >= total,
        Some(Err(_)) => true,
        None => false,
    }
}

/// The total size of the first message from its 5-byte header, or why the
/// header cannot be a message; `None` until 5 bytes are there.
fn header(buf: &[u8]) -> Option<Result<usize, String>> {
    if buf.len() < 5 {
        return None;
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if !(4..MAX_REPLY).contains(&len) {
        return Some(Err(format!("message length {len}")));
    }
    Some(Ok(1 + len))
}

/// Judge the first bytes a server sent after our StartupMessage:
/// `Ok(detail)` when it is accepting connections, `Err(reason)` when not.
/// Pure, so a fuzz target can drive it.
pub fn judge_postgres(bytes: &[u8]) -> Result<String, CheckError> {
    let Some(&kind) = bytes.first() else {
        return Err("no reply (connection closed)".into());
    };
    let total = match header(bytes) {
        None => return Err(format!("not a PostgreSQL reply (only {} bytes)", bytes.len()).into()),
        Some(Err(why)) => {
            // A server that cannot even start a backend (fork failure) answers
            // with 'E' and plain text, no length.
            if kind == b'E'
                && bytes[1..]
                    .iter()
                    .all(|&b| b == 0 || b == b'\n' || (0x20..0x7f).contains(&b))
            {
                return Err(format!("server error: {}", clean(&bytes[1..])).into());
            }
            return Err(format!("not a PostgreSQL reply ({why})").into());
        }
        Some(Ok(t)) => t,
    };
    if bytes.len() < total {
        return Err(format!(
            "not a PostgreSQL reply (truncated at {} of {total} bytes)",
            bytes.len()
        )
        .into());
    }
    let body = &bytes[5..total];
    match kind {
        b'R' => {
            if body.len() < 4 {
                return Err("not a PostgreSQL reply (short authentication request)".into());
            }
            let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
            Ok(match code {
                0 => "accepting connections".to_string(),
                _ => format!("accepting connections ({} requested)", auth_name(code)),
            })
        }
        // NegotiateProtocolVersion comes before authentication: the server is
        // speaking the protocol to us.
        b'v' => Ok("accepting connections (protocol negotiation)".into()),
        b'E' => {
            let f = error_fields(body).ok_or("not a PostgreSQL reply (malformed ErrorResponse)")?;
            let msg = f.message.as_deref().unwrap_or("(no message)");
            match f.code.as_deref() {
                Some(CANNOT_CONNECT_NOW) => Err(CheckError::new(
                    Kind::NotReady,
                    format!("{msg} [{CANNOT_CONNECT_NOW}]"),
                )),
                Some(code) => Ok(format!("accepting connections (server said: {msg} [{code}])")),
                None => Err(format!("server error without SQLSTATE: {msg}").into()),
            }
        }
        other => Err(format!("not a PostgreSQL reply (message type {:?})", other as char).into()),
    }
}

fn auth_name(code: u32) -> &'static str {
    match code {
        2 => "Kerberos",
        3 => "password",
        5 => "MD5 password",
        7 | 8 => "GSSAPI",
        9 => "SSPI",
        10..=12 => "SASL",
        _ => "authentication",
    }
}

#[derive(Debug, Default)]
struct ErrorFields {
    code: Option<String>,
    message: Option<String>,
}

/// ErrorResponse body: (type byte, NUL-terminated string)* then a NUL.
fn error_fields(body: &[u8]) -> Option<ErrorFields> {
    let mut f = ErrorFields::default();
    let mut rest = body;
    loop {
        let (&t, r) = rest.split_first()?;
        if t == 0 {
            return Some(f);
        }
        let end = r.iter().position(|&b| b == 0)?;
        let v = clean(&r[..end]);
        match t {
            b'C' => f.code = Some(v),
            b'M' => f.message = Some(v),
            _ => {}
        }
        rest = &r[end + 1..];
    }
}

/// Read and discard until the peer closes (bounded), so closing our end does
/// not reset the connection over unread data.
fn drain(s: &mut TcpStream, deadline: Instant) {
    let mut chunk = [0u8; 2048];
    let mut total = 0;
    while total < MAX_REPLY {
        let Some(left) = crate::clock::time_left(deadline) else {
            return;
        };
        if s.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn error(code: &str, text: &str) -> Vec<u8> {
        let mut b = Vec::new();
        for (t, v) in [(b'S', "FATAL"), (b'V', "FATAL"), (b'C', code), (b'M', text)] {
            b.push(t);
            b.extend_from_slice(v.as_bytes());
            b.push(0);
        }
        b.push(0);
        msg(b'E', &b)
    }

    #[test]
    fn startup_message_layout() {
        let m = startup_message("app", Some("main"));
        assert_eq!(u32::from_be_bytes(m[0..4].try_into().unwrap()) as usize, m.len());
        assert_eq!(&m[4..8], &[0, 3, 0, 0]);
        assert!(m.windows(9).any(|w| w == b"user\0app\0"));
        assert!(m.windows(14).any(|w| w == b"database\0main\0"));
        assert_eq!(&m[m.len() - 2..], b"\0\0");
        assert!(!startup_message("postgres", None)
            .windows(8)
            .any(|w| w == b"database"));
    }

    #[test]
    fn authentication_requests_are_up() {
        assert_eq!(
            judge_postgres(&msg(b'R', &[0, 0, 0, 0])).unwrap(),
            "accepting connections"
        );
        let mut sasl = vec![0, 0, 0, 10];
        sasl.extend_from_slice(b"SCRAM-SHA-256\0\0");
        assert!(judge_postgres(&msg(b'R', &sasl)).unwrap().contains("SASL"));
        assert!(judge_postgres(&msg(b'R', &[0, 0, 0, 5, 1, 2, 3, 4]))
            .unwrap()
            .contains("MD5"));
    }

    #[test]
    fn starting_up_is_not_up() {
        let e = judge_postgres(&error("57P03", "the database system is starting up")).unwrap_err();
        assert_eq!(e, "the database system is starting up [57P03]");
        assert_eq!(e.kind, Kind::NotReady);
        let e = judge_postgres(&error(
            "57P03",
            "the database system is not accepting connections",
        ));
        assert!(e.unwrap_err().contains("not accepting connections"));
    }

    #[test]
    fn other_errors_mean_accepting() {
        for (code, text) in [
            ("28P01", "password authentication failed for user \"x\""),
            ("28000", "no pg_hba.conf entry for host"),
            ("3D000", "database \"nope\" does not exist"),
            ("53300", "sorry, too many clients already"),
        ] {
            let d = judge_postgres(&error(code, text)).unwrap();
            assert!(d.contains(code) && d.starts_with("accepting"), "{d}");
        }
    }

    #[test]
    fn garbage_is_not_up() {
        for bad in [
            &b""[..],
            b"HTTP/1.1 400 Bad Request\r\n\r\n",
            b"+PONG\r\n",
            b"R\0\0",
            b"R\0\0\0\x02",
            b"R\xff\xff\xff\xff",
            b"E\0\0\0\x09S\0",
            b"Z\0\0\0\x05I",
        ] {
            assert!(judge_postgres(bad).is_err(), "{bad:?}");
        }
        // Truncated and malformed ErrorResponse: no SQLSTATE, no terminator.
        assert!(judge_postgres(&msg(b'E', b"MPlain")).is_err());
        let mut e = error("57P03", "x");
        e.truncate(e.len() - 3);
        assert!(judge_postgres(&e).is_err());
        // The fork-failure form: 'E' then text.
        let e = judge_postgres(b"Ecould not fork new process for connection: x\n\0").unwrap_err();
        assert!(e.contains("could not fork"), "{e}");
    }

    #[test]
    fn messages_are_one_bounded_line() {
        let long = "x\n".repeat(500);
        let e = judge_postgres(&error("57P03", &long)).unwrap_err();
        assert!(!e.contains('\n') && e.len() < 300, "{e}");
    }

    #[test]
    fn completeness() {
        assert!(!complete(b"R\0\0"));
        assert!(!complete(b"R\0\0\0\x08\0\0"));
        assert!(complete(b"R\0\0\0\x08\0\0\0\0"));
        assert!(complete(b"R\xff\xff\xff\xff"));
    }
}
