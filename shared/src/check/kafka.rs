//! Kafka readiness: an ApiVersions request (api_key 18, version 0, which
//! every broker since 0.10 answers, and newer ones answer in the v0 layout
//! even when they reject the version) is answered with error_code 0.
//!
//! Written from the Kafka protocol guide (kafka.apache.org/protocol): a
//! request is a 4-byte big-endian size, then the request header v1
//! (api_key, api_version, correlation_id, client_id), then the body (empty
//! for ApiVersions v0). The response is a size, the correlation_id, then
//! error_code and the array of [api_key, min_version, max_version]. The
//! announced size is bounded by `MAX_MESSAGE`, and the array's count by the
//! bytes there. `judge_kafka` is pure, for fuzzing.

use std::time::Instant;

use super::io::exchange_upto;
use super::{CheckError, Kind};
use crate::net;

/// The port a kafka:// target without one uses.
pub const DEFAULT_PORT: u16 = 9092;
/// The most bytes of one response we read (1 MiB; an ApiVersions response
/// is well under 1 KiB).
pub const MAX_MESSAGE: usize = 1 << 20;
/// Our correlation_id; the response must repeat it.
pub const CORRELATION_ID: i32 = 0x6468_6b31;
const API_VERSIONS: i16 = 18;

pub fn check(host: &str, port: u16, deadline: Instant) -> Result<String, CheckError> {
    let mut s = net::connect(host, port, deadline)?;
    let reply = exchange_upto(
        &mut s,
        &api_versions_request(),
        deadline,
        MAX_MESSAGE + 4,
        &complete,
    )
    .map_err(|e| e.context("no Kafka reply"))?;
    judge_kafka(&reply)
}

/// ApiVersions v0 with header v1 and client_id "dockhand".
pub fn api_versions_request() -> Vec<u8> {
    let client = b"dockhand";
    let mut body = Vec::with_capacity(32);
    body.extend_from_slice(&API_VERSIONS.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&CORRELATION_ID.to_be_bytes());
    body.extend_from_slice(&(client.len() as i16).to_be_bytes());
    body.extend_from_slice(client);
    let mut m = (body.len() as i32).to_be_bytes().to_vec();
    m.extend_from_slice(&body);
    m
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Whether `buf` holds the whole response, or enough to tell it is bad.
fn complete(buf: &[u8]) -> bool {
    match i32_at(buf, 0) {
        Some(n) if (0..=MAX_MESSAGE as i32).contains(&n) => buf.len() >= 4 + n as usize,
        Some(_) => true,
        None => false,
    }
}

/// The name of an error code a starting or unhappy broker may answer.
fn error_name(code: i16) -> &'static str {
    match code {
        -1 => "UNKNOWN_SERVER_ERROR",
        5 => "LEADER_NOT_AVAILABLE",
        7 => "REQUEST_TIMED_OUT",
        8 => "BROKER_NOT_AVAILABLE",
        14 => "COORDINATOR_LOAD_IN_PROGRESS",
        15 => "COORDINATOR_NOT_AVAILABLE",
        35 => "UNSUPPORTED_VERSION",
        _ => "see the Kafka protocol guide",
    }
}

/// Judge the bytes a broker sent back to our ApiVersions request.
pub fn judge_kafka(b: &[u8]) -> Result<String, CheckError> {
    let bad = |why: String| CheckError::from(format!("not a Kafka reply ({why})"));
    if b.is_empty() {
        return Err("no reply (connection closed)".into());
    }
    let Some(size) = i32_at(b, 0) else {
        return Err(bad(format!("only {} bytes", b.len())));
    };
    if size < 6 {
        return Err(bad(format!("size {size}")));
    }
    if size as i64 > MAX_MESSAGE as i64 {
        return Err(bad(format!(
            "size {size}, more than the {} KiB this check reads",
            MAX_MESSAGE / 1024
        )));
    }
    let m = b
        .get(4..4 + size as usize)
        .ok_or_else(|| bad(format!("truncated at {} of {} bytes", b.len(), 4 + size as usize)))?;
    let id = i32_at(m, 0).unwrap_or(0);
    if id != CORRELATION_ID {
        return Err(bad(format!("correlation_id {id}, not our request's")));
    }
    let code = i16::from_be_bytes([m[4], m[5]]);
    if code != 0 {
        return Err(CheckError::new(
            Kind::NotReady,
            format!("ApiVersions error_code {code} ({})", error_name(code)),
        ));
    }
    let n = i32_at(m, 6).ok_or_else(|| bad("no api_keys array".into()))?;
    let room = (m.len() - 10) / 6;
    if n < 0 || n as usize > room {
        return Err(bad(format!("{n} api_keys in {} bytes", m.len() - 10)));
    }
    Ok(format!("ApiVersions ok, {n} APIs"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(id: i32, code: i16, keys: &[(i16, i16, i16)]) -> Vec<u8> {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&code.to_be_bytes());
        m.extend_from_slice(&(keys.len() as i32).to_be_bytes());
        for (k, lo, hi) in keys {
            for v in [k, lo, hi] {
                m.extend_from_slice(&v.to_be_bytes());
            }
        }
        let mut out = (m.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&m);
        out
    }

    #[test]
    fn request_layout() {
        let r = api_versions_request();
        assert_eq!(i32_at(&r, 0), Some(r.len() as i32 - 4));
        assert_eq!(&r[4..8], &[0, 18, 0, 0]);
        assert_eq!(i32_at(&r, 8), Some(CORRELATION_ID));
        assert_eq!(&r[12..], b"\0\x08dockhand");
    }

    #[test]
    fn error_code_zero_is_up() {
        let r = response(CORRELATION_ID, 0, &[(0, 0, 9), (18, 0, 3)]);
        assert_eq!(judge_kafka(&r).unwrap(), "ApiVersions ok, 2 APIs");
        assert!(complete(&r) && !complete(&r[..r.len() - 1]));
    }

    #[test]
    fn error_codes_are_named() {
        let e = judge_kafka(&response(CORRELATION_ID, 35, &[(18, 0, 3)])).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (Kind::NotReady, "ApiVersions error_code 35 (UNSUPPORTED_VERSION)")
        );
        let e = judge_kafka(&response(CORRELATION_ID, 15, &[])).unwrap_err();
        assert!(e.contains("15 (COORDINATOR_NOT_AVAILABLE)"), "{e}");
    }

    #[test]
    fn garbage_fails_cleanly() {
        let e = judge_kafka(&response(7, 0, &[])).unwrap_err();
        assert!(e.contains("correlation_id 7"), "{e}");
        let e = judge_kafka(b"\x7f\xff\xff\xff").unwrap_err();
        assert!(e.contains("more than the 1024 KiB"), "{e}");
        assert!(complete(b"\x7f\xff\xff\xff") && complete(b"\xff\xff\xff\xff"));
        let mut lying = response(CORRELATION_ID, 0, &[(18, 0, 3)]);
        lying[13] = 200;
        assert!(judge_kafka(&lying).unwrap_err().contains("api_keys"));
        for bad in [
            &b""[..],
            b"\0\0",
            b"\0\0\0\x02ab",
            b"HTTP/1.1 400 Bad Request\r\n",
        ] {
            assert!(judge_kafka(bad).is_err(), "{bad:?}");
        }
        let good = response(CORRELATION_ID, 0, &[(18, 0, 3)]);
        for i in 0..good.len() {
            assert!(judge_kafka(&good[..i]).is_err());
        }
    }
}
