//! The two protobuf messages of grpc.health.v1.Health/Check, by hand:
//! `HealthCheckRequest { string service = 1; }` and
//! `HealthCheckResponse { ServingStatus status = 1; }`, and the gRPC
//! length-prefixed framing around a message.

/// What a HealthCheckResponse's status field means.
pub fn status_name(s: u64) -> &'static str {
    match s {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "an unknown status",
    }
}

/// The status that means healthy.
pub const SERVING: u64 = 1;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The request, in its gRPC frame (uncompressed, 4-byte big-endian length).
pub fn request(service: &str) -> Vec<u8> {
    let mut msg = Vec::new();
    if !service.is_empty() {
        msg.push(0x0a); // field 1, length-delimited
        put_varint(&mut msg, service.len() as u64);
        msg.extend_from_slice(service.as_bytes());
    }
    let mut out = vec![0];
    out.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    out.extend_from_slice(&msg);
    out
}

fn varint(b: &[u8], p: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let c = *b.get(*p).ok_or("truncated protobuf varint")?;
        *p += 1;
        v |= u64::from(c & 0x7f) << shift;
        if c & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("protobuf varint longer than 10 bytes".into())
}

/// The status in a response body: exactly one uncompressed gRPC message
/// holding a HealthCheckResponse. Unknown fields are skipped; a missing
/// status is 0 (UNKNOWN), as proto3 defaults it.
pub fn response_status(body: &[u8]) -> Result<u64, String> {
    let (flag, rest) = match body {
        [] => return Err("no response message".into()),
        [f, rest @ ..] => (*f, rest),
    };
    if flag != 0 {
        return Err("the response message is compressed (not asked for, not supported)".into());
    }
    let len = rest
        .get(..4)
        .map(|l| u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize)
        .ok_or("truncated gRPC message header")?;
    let msg = &rest[4..];
    if msg.len() != len {
        return Err(format!(
            "the gRPC message says {len} bytes but {} came",
            msg.len()
        ));
    }
    let mut status = 0;
    let mut p = 0;
    while p < msg.len() {
        let tag = varint(msg, &mut p)?;
        match (tag >> 3, tag & 7) {
            (1, 0) => status = varint(msg, &mut p)?,
            (0, _) => return Err("protobuf field number 0".into()),
            (_, 0) => {
                varint(msg, &mut p)?;
            }
            (_, 1) => p += 8,
            (_, 5) => p += 4,
            (_, 2) => {
                let l = varint(msg, &mut p)?;
                p = p.saturating_add(usize::try_from(l).unwrap_or(usize::MAX));
            }
            (_, w) => return Err(format!("protobuf wire type {w} not expected")),
        }
        if p > msg.len() {
            return Err("truncated protobuf field".into());
        }
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes() {
        assert_eq!(request(""), [0, 0, 0, 0, 0]);
        assert_eq!(request("ab"), [0, 0, 0, 0, 4, 0x0a, 2, b'a', b'b']);
        let long = "s".repeat(200);
        let r = request(&long);
        assert_eq!(&r[..8], &[0, 0, 0, 0, 203, 0x0a, 0xc8, 0x01]);
    }

    #[test]
    fn responses() {
        assert_eq!(response_status(&[0, 0, 0, 0, 2, 8, 1]), Ok(1));
        assert_eq!(response_status(&[0, 0, 0, 0, 0]), Ok(0));
        // Unknown fields of every wire type are skipped; the last status wins.
        let body = [
            0, 0, 0, 0, 18, 8, 2, 0x10, 0x96, 1, 0x1a, 2, b'h', b'i', 0x25, 1, 2, 3, 4, 0x29, 0, 0, 0, 0, 0,
            0, 0, 0,
        ];
        assert_eq!(
            response_status(&body[..]).unwrap_err(),
            "the gRPC message says 18 bytes but 23 came"
        );
        let mut b = vec![0, 0, 0, 0, 23];
        b.extend_from_slice(&body[5..]);
        assert_eq!(response_status(&b), Ok(2));
        for (bad, why) in [
            (&[][..], "no response message"),
            (&[1, 0, 0, 0, 0][..], "compressed"),
            (&[0, 0, 0][..], "truncated gRPC message header"),
            (&[0, 0, 0, 0, 2, 8][..], "says 2 bytes but 1 came"),
            (&[0, 0, 0, 0, 1, 8][..], "truncated protobuf varint"),
            (&[0, 0, 0, 0, 2, 0x12, 5][..], "truncated protobuf field"),
            (&[0, 0, 0, 0, 1, 0x0b][..], "wire type 3"),
            (
                &[
                    0, 0, 0, 0, 11, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                ][..],
                "longer than 10 bytes",
            ),
        ] {
            let e = response_status(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }
}
