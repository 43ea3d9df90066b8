//! gRPC health checks: `grpc.health.v1.Health/Check` over HTTP/2 with prior
//! knowledge (h2c), or over TLS with ALPN h2 (`grpcs://`), written over std sockets like the HTTP check so that one
//! deadline bounds all of it. SERVING is up; NOT_SERVING, UNKNOWN,
//! SERVICE_UNKNOWN and any non-zero grpc-status are not, and are named.
//!
//! The parts answer one question each: `h2` (the HTTP/2 exchange), `hpack`
//! (header compression), `proto` (the two messages). `judge` is pure, so
//! the fuzz target can drive the whole response path.

pub mod h2;
pub mod hpack;
pub mod proto;

use super::http::Options as HttpOptions;
use super::io::clean;
use super::{CheckError, Kind};
use crate::net;
use std::time::Instant;

/// The method every check calls.
pub const PATH: &str = "/grpc.health.v1.Health/Check";

/// The `:authority` we send: `host:port` as the target gives them (IPv6 in
/// brackets). grpc-health-probe sends the address text as it came, which
/// breaks for `:port` addresses; the port is always written here.
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Whether "Name: value" can go out as gRPC metadata (`--header`). Names
/// the protocol or the connection owns are refused; `Host` sets
/// `:authority` and `User-Agent` replaces ours.
pub fn check_metadata(h: &str) -> Result<(), String> {
    super::http::check_header(h)?;
    let name = h.split_once(':').map(|(n, _)| n.trim()).unwrap_or("");
    let lower = name.to_ascii_lowercase();
    let owned = matches!(
        lower.as_str(),
        "content-type"
            | "te"
            | "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "upgrade"
    );
    if owned || lower.starts_with("grpc-") {
        return Err(format!(
            "{h:?}: {name} is set by the gRPC check itself, not by --header"
        ));
    }
    Ok(())
}

/// The request's header fields, in the order gRPC wants them: pseudo-headers
/// first, then content-type and te, then the metadata given.
pub fn request_fields(authority: &str, tls: bool, headers: &[String]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let split = |h: &String| {
        let (n, v) = h.split_once(':').unwrap_or((h, ""));
        (n.trim().to_ascii_lowercase(), v.trim().to_string())
    };
    let given: Vec<(String, String)> = headers.iter().map(split).collect();
    let pick = |name: &str| given.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let authority = pick("host")
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| authority.to_string());
    let agent = pick("user-agent").unwrap_or_else(|| format!("dockhand/{}", crate::VERSION));
    let mut f: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b":method".to_vec(), b"POST".to_vec()),
        (
            b":scheme".to_vec(),
            if tls { b"https".to_vec() } else { b"http".to_vec() },
        ),
        (b":path".to_vec(), PATH.as_bytes().to_vec()),
        (b":authority".to_vec(), authority.into_bytes()),
        (b"content-type".to_vec(), b"application/grpc".to_vec()),
        (b"te".to_vec(), b"trailers".to_vec()),
    ];
    if !agent.is_empty() {
        f.push((b"user-agent".to_vec(), agent.into_bytes()));
    }
    for (n, v) in given {
        if n != "host" && n != "user-agent" {
            f.push((n.into_bytes(), v.into_bytes()));
        }
    }
    f
}

/// One probe of `service` ("" is the server as a whole) at `host:port`,
/// over TLS when `tls` (ALPN h2, verified as `opts.tls` says), sending
/// `opts.headers` as metadata.
pub fn check(
    host: &str,
    port: u16,
    service: &str,
    tls: bool,
    opts: &HttpOptions,
    deadline: Instant,
) -> Result<String, CheckError> {
    let fields = request_fields(&authority(host, port), tls, &opts.headers);
    let refs: Vec<(&[u8], &[u8])> = fields.iter().map(|(n, v)| (&n[..], &v[..])).collect();
    let flight = h2::first_flight(&refs, &proto::request(service))?;
    let tcp = net::connect(host, port, deadline)?;
    if !tls {
        return judge(&h2::exchange(&mut h2::Conn::new(tcp, deadline), &flight)?);
    }
    over_tls(tcp, host, &opts.tls, &flight, deadline)
}

#[cfg(feature = "tls")]
fn over_tls(
    tcp: std::net::TcpStream,
    host: &str,
    opts: &super::tls::TlsOptions,
    flight: &[u8],
    deadline: Instant,
) -> Result<String, CheckError> {
    let s = super::tls::connect(tcp, host, opts, &[b"h2"], deadline)?;
    // gRPC needs HTTP/2; a server that did not choose it by ALPN would read
    // our preface as something else.
    if s.alpn() != Some(b"h2") {
        return Err("the TLS server did not agree to HTTP/2 (ALPN h2): not a gRPC server?".into());
    }
    judge(&h2::exchange(&mut h2::Conn::new(s, deadline), flight)?)
}

#[cfg(not(feature = "tls"))]
fn over_tls(
    _: std::net::TcpStream,
    _: &str,
    _: &super::tls::TlsOptions,
    _: &[u8],
    _: Instant,
) -> Result<String, CheckError> {
    Err("grpcs:// is not in this build (the tls feature of dockhand-shared)".into())
}

fn field<'a>(fields: &'a hpack::Fields, name: &str) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(n, _)| n == name.as_bytes())
        .map(|(_, v)| &v[..])
}

/// The name of a gRPC status code.
pub fn code_name(code: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.get(code as usize).copied().unwrap_or("not a gRPC code")
}

/// grpc-message is percent-encoded (the gRPC HTTP/2 protocol); decoded
/// leniently, then made fit for one line.
fn message(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = |c: Option<&u8>| c.and_then(|&c| (c as char).to_digit(16));
        match (raw[i], hex(raw.get(i + 1)), hex(raw.get(i + 2))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    clean(&out)
}

/// Judge what the server answered: `Ok("SERVING")`, else why not.
pub fn judge(r: &h2::Response) -> Result<String, CheckError> {
    let status = field(&r.headers, ":status").ok_or("a response without :status")?;
    if status != b"200" {
        return Err(format!("HTTP status {} (not a gRPC answer)", clean(status)).into());
    }
    if let Some(ct) = field(&r.headers, "content-type") {
        if !ct.starts_with(b"application/grpc") {
            return Err(format!("content-type {:?} is not gRPC", clean(ct)).into());
        }
    }
    // Trailers, or the headers alone for a trailers-only response.
    let trailers = if r.trailers.is_empty() {
        &r.headers
    } else {
        &r.trailers
    };
    let code = field(trailers, "grpc-status").ok_or("the response ended without a grpc-status")?;
    let code: u32 = std::str::from_utf8(code)
        .ok()
        .filter(|c| !c.is_empty() && c.len() <= 10 && c.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("grpc-status {:?} is not a number", clean(code)))?;
    if code != 0 {
        let msg = field(trailers, "grpc-message").map(message).unwrap_or_default();
        let msg = if msg.is_empty() { msg } else { format!(": {msg}") };
        return Err(format!("grpc-status {code} ({}){msg}", code_name(code)).into());
    }
    match proto::response_status(&r.body)? {
        proto::SERVING => Ok("SERVING".into()),
        s @ 0..=3 => Err(CheckError::new(Kind::NotReady, proto::status_name(s))),
        s => Err(CheckError::new(
            Kind::NotReady,
            format!("status {s} ({})", proto::status_name(s)),
        )),
    }
}

/// Run the response path over a server's bytes in memory: frames, HPACK,
/// the message and the judgement. For the fuzz target.
pub fn judge_bytes(server_bytes: &[u8]) -> Result<String, CheckError> {
    judge(&h2::exchange_with(server_bytes)?)
}

#[cfg(test)]
mod tests;
