//! MySQL and MariaDB readiness, judged as `mysqladmin ping` judges a server
//! alive: on connect the server speaks first, with its initial handshake
//! packet (protocol 10). A server that will not take the connection sends an
//! ERR packet instead (too many connections, host blocked), which is not up.
//! Nothing is sent: no credentials are needed, and closing after the
//! handshake leaves no half-done login behind.

use std::time::Instant;

use super::io::{clean, exchange, sample, MAX_REPLY};
use super::{CheckError, Kind};
use crate::net;

/// The largest handshake packet payload we accept: real ones are about 100
/// bytes; `exchange` reads at most `MAX_REPLY` in all.
const MAX_PACKET: usize = MAX_REPLY - 4;

pub fn check(host: &str, port: u16, deadline: Instant) -> Result<String, CheckError> {
    let mut s = net::connect(host, port, deadline)?;
    let reply = exchange(&mut s, &[], deadline, &complete).map_err(|e| e.context("no MySQL handshake"))?;
    judge_mysql(&reply)
}

/// The payload length from a packet's 4-byte header (3 bytes little-endian,
/// then the sequence number); `None` until 4 bytes are there.
fn payload_len(buf: &[u8]) -> Option<usize> {
    let h = buf.get(..4)?;
    Some(u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize)
}

/// Whether `buf` holds the first packet (or enough to judge it bad).
fn complete(buf: &[u8]) -> bool {
    match payload_len(buf) {
        Some(n) if n > MAX_PACKET => true,
        Some(n) => buf.len() >= 4 + n,
        None => false,
    }
}

/// Judge the first bytes a server sent on connect: `Ok(detail)` for a
/// protocol 10 handshake, `Err` for an ERR packet (kind `NotReady`, with the
/// server's message) or anything else. Pure, so a fuzz target can drive it.
pub fn judge_mysql(bytes: &[u8]) -> Result<String, CheckError> {
    if bytes.is_empty() {
        return Err("no handshake (connection closed)".into());
    }
    let not_mysql =
        |why: String| CheckError::from(format!("not a MySQL handshake ({why}): {:?}", sample(bytes)));
    let Some(len) = payload_len(bytes) else {
        return Err(not_mysql(format!("only {} bytes", bytes.len())));
    };
    if len == 0 || len > MAX_PACKET {
        return Err(not_mysql(format!("packet length {len}")));
    }
    if bytes.len() < 4 + len {
        return Err(not_mysql(format!(
            "truncated at {} of {} bytes",
            bytes.len(),
            4 + len
        )));
    }
    if bytes[3] != 0 {
        return Err(not_mysql(format!("sequence number {}", bytes[3])));
    }
    let p = &bytes[4..4 + len];
    match p[0] {
        0xff => Err(err_packet(&p[1..]).unwrap_or_else(|| not_mysql("short ERR packet".into()))),
        10 => handshake(&p[1..]).ok_or_else(|| not_mysql("malformed protocol 10 handshake".into())),
        9 => Err("the server speaks MySQL protocol 9 (MySQL 3.x), too old to check".into()),
        b => Err(not_mysql(format!("protocol byte {b:#04x}"))),
    }
}

/// HandshakeV10 after the protocol byte: the server version (NUL-terminated),
/// connection id (4), auth data part 1 (8), a zero filler, capabilities (2);
/// the rest is optional and not needed.
fn handshake(p: &[u8]) -> Option<String> {
    let nul = p.iter().position(|&b| b == 0)?;
    let fixed = p.get(nul + 1..nul + 16)?;
    if fixed[12] != 0 || nul == 0 {
        return None;
    }
    // MariaDB puts "5.5.5-" in front for clients that parse the version.
    let v = clean(&p[..nul]);
    let v = v.strip_prefix("5.5.5-").unwrap_or(&v);
    Some(format!("handshake from {v}"))
}

/// ERR_Packet after the 0xff: error code (2, little-endian), then the
/// message; a "#" and a five-character SQLSTATE may come first (only once
/// the client said it speaks protocol 4.1, so not before the handshake, but
/// accepted either way).
fn err_packet(p: &[u8]) -> Option<CheckError> {
    let code = u16::from_le_bytes([*p.first()?, *p.get(1)?]);
    let mut msg = &p[2..];
    if msg.first() == Some(&b'#') && msg.len() >= 6 {
        msg = &msg[6..];
    }
    Some(CheckError::new(
        Kind::NotReady,
        format!("MySQL error {code}: {}", clean(msg)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u32).to_le_bytes()[..3].to_vec();
        v.push(seq);
        v.extend_from_slice(payload);
        v
    }

    /// A handshake laid out as MariaDB 10.11 sends it.
    fn v10(version: &str) -> Vec<u8> {
        let mut p = vec![10];
        p.extend_from_slice(version.as_bytes());
        p.push(0);
        p.extend_from_slice(&7u32.to_le_bytes());
        p.extend_from_slice(b"abcdefgh\0");
        p.extend_from_slice(&[0xfe, 0xf7, 8, 2, 0, 0xff, 0x81, 21]);
        p.extend_from_slice(&[0; 6]);
        p.extend_from_slice(&[0x1d, 0, 0, 0]);
        p.extend_from_slice(b"ijklmnopqrst\0mysql_native_password\0");
        packet(0, &p)
    }

    fn err(code: u16, text: &str) -> Vec<u8> {
        let mut p = vec![0xff];
        p.extend_from_slice(&code.to_le_bytes());
        p.extend_from_slice(text.as_bytes());
        packet(0, &p)
    }

    #[test]
    fn a_protocol_10_handshake_is_up() {
        assert_eq!(
            judge_mysql(&v10("5.5.5-10.11.19-MariaDB-0+deb12u1")).unwrap(),
            "handshake from 10.11.19-MariaDB-0+deb12u1"
        );
        assert_eq!(judge_mysql(&v10("8.0.36")).unwrap(), "handshake from 8.0.36");
        let h = v10("8.0.36");
        assert!(complete(&h) && !complete(&h[..h.len() - 1]) && !complete(&h[..3]));
    }

    #[test]
    fn an_err_packet_first_is_not_ready_with_the_servers_words() {
        // As MariaDB sends it when max_connections is reached.
        let e = judge_mysql(&err(1040, "Too many connections")).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (Kind::NotReady, "MySQL error 1040: Too many connections")
        );
        let e = judge_mysql(&err(1129, "Host '10.0.0.9' is blocked\x1b[31m\nbecause")).unwrap_err();
        assert_eq!(e, "MySQL error 1129: Host '10.0.0.9' is blocked [31m because");
        let e = judge_mysql(&err(1045, "#28000Access denied")).unwrap_err();
        assert_eq!(e, "MySQL error 1045: Access denied");
        let long = "x\n".repeat(5000);
        let e = judge_mysql(&err(1040, &long)).unwrap_err();
        assert!(!e.contains('\n') && e.len() < 300, "{e}");
    }

    #[test]
    fn anything_else_is_not_up() {
        let mut bad_filler = v10("8.0.36");
        bad_filler[4 + 1 + 7 + 4 + 8] = 1;
        let mut seq1 = v10("8.0.36");
        seq1[3] = 1;
        let mut no_nul = vec![10];
        no_nul.extend_from_slice(&[b'8'; 40]);
        for bad in [
            vec![],
            b"\x05\0".to_vec(),
            b"INFO {\"server_id\":\"x\"}\r\n".to_vec(),
            b"+PONG\r\n".to_vec(),
            b"AMQP\0\0\x09\x01".to_vec(),
            b"\0\0\0\0".to_vec(),
            bad_filler,
            seq1,
            packet(0, &no_nul),
            packet(0, &[10, b'8', 0, 1, 2]),
            packet(0, &[10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            packet(0, &[0xff, 0x10]),
            packet(0, b"\x09old\0"),
            v10("8.0.36")[..30].to_vec(),
        ] {
            assert!(judge_mysql(&bad).is_err(), "{bad:?}");
            assert_ne!(judge_mysql(&bad).unwrap_err().kind, Kind::NotReady, "{bad:?}");
        }
        let e = judge_mysql(b"INFO {\"server_id\":\"x\"}\r\n").unwrap_err();
        assert!(
            e.starts_with("not a MySQL handshake (packet length ") && e.contains("INFO {"),
            "{e}"
        );
        assert!(judge_mysql(&packet(0, b"\x09old\0"))
            .unwrap_err()
            .contains("protocol 9"));
    }
}
