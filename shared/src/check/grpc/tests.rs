//! The response path over bytes in memory: well-formed answers, and hostile
//! frames, each failing with one line.

use super::h2::exchange_with;
use super::hpack::encode_literal;
use super::*;

fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    v.extend_from_slice(&[ty, flags]);
    v.extend_from_slice(&stream.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (n, v) in fields {
        encode_literal(&mut b, n.as_bytes(), v.as_bytes());
    }
    b
}

const SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

fn head() -> Vec<u8> {
    frame(
        1,
        4,
        1,
        &block(&[(":status", "200"), ("content-type", "application/grpc")]),
    )
}

fn answer(status: u8) -> Vec<u8> {
    let mut v = SETTINGS.to_vec();
    v.extend(head());
    v.extend(frame(0, 0, 1, &[0, 0, 0, 0, 2, 8, status]));
    v.extend(frame(1, 5, 1, &block(&[("grpc-status", "0")])));
    v
}

fn judged(bytes: &[u8]) -> Result<String, CheckError> {
    judge_bytes(bytes)
}

#[test]
fn serving_and_not() {
    assert_eq!(judged(&answer(1)), Ok("SERVING".into()));
    for (s, name) in [
        (0, "UNKNOWN"),
        (2, "NOT_SERVING"),
        (3, "SERVICE_UNKNOWN"),
        (9, "status 9 (an unknown status)"),
    ] {
        let e = judged(&answer(s)).unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (Kind::NotReady, name));
    }
}

#[test]
fn control_frames_between_are_handled() {
    let mut v = SETTINGS.to_vec();
    v.extend(frame(6, 0, 0, b"12345678")); // PING
    v.extend(frame(8, 0, 0, &[0, 0, 1, 0])); // WINDOW_UPDATE
    v.extend(frame(0xfa, 0, 0, b"unknown type"));
    v.extend(frame(4, 1, 0, &[])); // SETTINGS ACK
    v.extend(frame(7, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0])); // graceful GOAWAY keeping stream 1
                                                         // Headers split over CONTINUATION, padded with priority.
    let b = block(&[(":status", "200"), ("content-type", "application/grpc+proto")]);
    let mut p = vec![3, 0, 0, 0, 0, 16];
    p.extend_from_slice(&b[..4]);
    p.extend_from_slice(&[0, 0, 0]);
    v.extend(frame(1, 0x8 | 0x20, 1, &p));
    v.extend(frame(9, 0, 1, &b[4..10]));
    v.extend(frame(9, 4, 1, &b[10..]));
    v.extend(frame(0, 0x8, 1, &[2, 0, 0, 0, 0, 2, 8, 1, 0, 0]));
    v.extend(frame(0, 0, 1, &[]));
    v.extend(frame(
        1,
        5,
        1,
        &block(&[("grpc-status", "0"), ("grpc-message", "")]),
    ));
    assert_eq!(judged(&v), Ok("SERVING".into()));
}

#[test]
fn grpc_errors_are_named() {
    let mut v = SETTINGS.to_vec();
    v.extend(frame(
        1,
        5,
        1,
        &block(&[
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-status", "12"),
            ("grpc-message", "Method%20not%20found%0a!"),
        ]),
    ));
    assert_eq!(
        judged(&v).unwrap_err(),
        "grpc-status 12 (UNIMPLEMENTED): Method not found !"
    );
    let mut v = SETTINGS.to_vec();
    v.extend(head());
    v.extend(frame(1, 5, 1, &block(&[("grpc-status", "5")])));
    assert_eq!(judged(&v).unwrap_err(), "grpc-status 5 (NOT_FOUND)");
    let mut v = SETTINGS.to_vec();
    v.extend(frame(
        1,
        5,
        1,
        &block(&[(":status", "404"), ("content-type", "text/html")]),
    ));
    assert_eq!(judged(&v).unwrap_err(), "HTTP status 404 (not a gRPC answer)");
    let mut v = SETTINGS.to_vec();
    v.extend(head());
    v.extend(frame(0, 1, 1, &[0, 0, 0, 0, 2, 8, 1]));
    assert_eq!(
        judged(&v).unwrap_err(),
        "the response ended without a grpc-status"
    );
}

fn fails(bytes: &[u8]) -> String {
    let e = exchange_with(bytes).unwrap_err();
    assert!(!e.message.contains('\n'), "{e}");
    e.message
}

fn after_settings(more: &[u8]) -> Vec<u8> {
    let mut v = SETTINGS.to_vec();
    v.extend_from_slice(more);
    v
}

#[test]
fn hostile_frames_fail_cleanly() {
    // A huge frame length: refused before anything is read or allocated.
    assert_eq!(
        fails(&after_settings(&[0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1])),
        "a frame of 16777215 bytes, above our limit of 16384 (FRAME_SIZE_ERROR)"
    );
    // Padding as long as the frame.
    let mut v = after_settings(&head());
    v.extend(frame(0, 0x8, 1, &[6, 1, 2, 3, 4, 5]));
    assert_eq!(fails(&v), "padding of 6 bytes in a frame of 6 (PROTOCOL_ERROR)");
    assert_eq!(
        fails(&after_settings(&frame(1, 0x8, 1, &[]))),
        "a padded frame without its pad length"
    );
    // A CONTINUATION flood: big ones hit the header-block bound...
    let mut v = after_settings(&frame(1, 0, 1, &[]));
    for _ in 0..5 {
        v.extend(frame(9, 0, 1, &[0; 16384]));
    }
    assert_eq!(fails(&v), "a header block above 16 KiB");
    // ...and empty ones the frame count.
    let mut v = after_settings(&frame(1, 0, 1, &[]));
    for _ in 0..300 {
        v.extend(frame(9, 0, 1, &[]));
    }
    assert_eq!(fails(&v), "more than 256 frames without an answer");
    // Endless PINGs too.
    let mut v = SETTINGS.to_vec();
    for _ in 0..300 {
        v.extend(frame(6, 0, 0, b"12345678"));
    }
    assert_eq!(fails(&v), "more than 256 frames without an answer");
    // A dynamic table size update above our SETTINGS_HEADER_TABLE_SIZE.
    assert_eq!(
        fails(&after_settings(&frame(1, 4, 1, &[0x3f, 0xe1, 0x3f]))),
        "HPACK: table size update to 8192 is above our limit of 4096 (COMPRESSION_ERROR)"
    );
    // Something else between HEADERS and CONTINUATION.
    let mut v = after_settings(&frame(1, 0, 1, &[]));
    v.extend(frame(6, 0, 0, b"12345678"));
    assert_eq!(
        fails(&v),
        "a header block not continued by CONTINUATION (PROTOCOL_ERROR)"
    );
    assert_eq!(
        fails(&after_settings(&frame(9, 4, 1, &[]))),
        "CONTINUATION without HEADERS (PROTOCOL_ERROR)"
    );
    // Resets and GOAWAY.
    assert_eq!(
        fails(&after_settings(&frame(3, 0, 1, &[0, 0, 0, 7]))),
        "the server reset the stream (7 REFUSED_STREAM)"
    );
    assert_eq!(
        fails(&after_settings(&frame(
            7,
            0,
            0,
            &[0, 0, 0, 0, 0, 0, 0, 11, b'c', b'a', b'l', b'm', b'\n']
        ))),
        "the server sent GOAWAY (11 ENHANCE_YOUR_CALM): calm"
    );
    // Malformed control frames.
    assert_eq!(
        fails(&after_settings(&frame(4, 0, 0, &[0; 5]))),
        "a SETTINGS frame of a length not a multiple of 6 (FRAME_SIZE_ERROR)"
    );
    assert_eq!(
        fails(&after_settings(&frame(6, 0, 0, &[0; 7]))),
        "a malformed PING (PROTOCOL_ERROR)"
    );
    assert_eq!(
        fails(&after_settings(&frame(5, 4, 1, &[0; 4]))),
        "PUSH_PROMISE though we disabled push (PROTOCOL_ERROR)"
    );
    assert_eq!(
        fails(&after_settings(&frame(0, 0, 1, &[1]))),
        "DATA before the response headers or on another stream (PROTOCOL_ERROR)"
    );
    assert_eq!(
        fails(&after_settings(&frame(1, 4, 3, &[]))),
        "HEADERS on a stream we did not open (PROTOCOL_ERROR)"
    );
    // Not HTTP/2 at all, nothing, or cut short.
    assert_eq!(
        fails(b"HTTP/1.1 400 Bad Request\r\n\r\n"),
        "the server answered in HTTP/1.x, not HTTP/2 (is it a gRPC port?)"
    );
    assert_eq!(
        fails(b""),
        "connection closed without a response (is it an HTTP/2 gRPC server?)"
    );
    assert_eq!(
        fails(&frame(1, 4, 1, &[])),
        "the server's first frame is not SETTINGS (PROTOCOL_ERROR)"
    );
    assert_eq!(
        fails(&after_settings(&[0, 0, 9, 0, 0])),
        "connection closed before the response ended"
    );
    assert_eq!(
        fails(&after_settings(&[0, 0, 9, 0, 0, 0, 0, 0, 1, 1])),
        "connection closed in the middle of a frame"
    );
    // A body beyond its bound.
    let mut v = after_settings(&head());
    for _ in 0..2 {
        v.extend(frame(0, 0, 1, &[0; 10000]));
    }
    assert_eq!(fails(&v), "a response body above 16 KiB");
}

#[test]
fn request_is_well_formed() {
    let f = request_fields(
        &authority("::1", 50051),
        true,
        &["X-Token: s3cret".into(), "host: api.example".into()],
    );
    let names: Vec<&[u8]> = f.iter().map(|(n, _)| &n[..]).collect();
    assert_eq!(
        names,
        [
            &b":method"[..],
            b":scheme",
            b":path",
            b":authority",
            b"content-type",
            b"te",
            b"user-agent",
            b"x-token"
        ]
    );
    assert_eq!(f[1].1, b"https");
    assert_eq!(f[3].1, b"api.example");
    assert_eq!(f[7].1, b"s3cret");
    let f = request_fields(&authority("::1", 50051), false, &["User-Agent:".into()]);
    assert_eq!(f[3].1, b"[::1]:50051");
    assert!(f.iter().all(|(n, _)| n != b"user-agent"));
    // The first flight decodes as a server would read it.
    let refs: Vec<(&[u8], &[u8])> = f.iter().map(|(n, v)| (&n[..], &v[..])).collect();
    let flight = h2::first_flight(&refs, &proto::request("svc")).unwrap();
    assert!(flight.starts_with(h2::PREFACE));
    for (h, ok) in [
        ("x-token: a", true),
        ("Authorization: Bearer x", true),
        ("grpc-timeout: 1S", false),
        ("Content-Type: text/plain", false),
        ("TE: gzip", false),
        ("bad header", false),
    ] {
        assert_eq!(check_metadata(h).is_ok(), ok, "{h}");
    }
}

#[test]
fn answers_captured_from_grpcio() {
    // What grpcio 1.85.1's health service sent to our request (the fuzz
    // seeds): Huffman-coded, indexed header fields, and trailers.
    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/grpc_h2/");
    let judged = |name: &str| judge_bytes(&std::fs::read(format!("{corpus}{name}")).unwrap());
    assert_eq!(judged("serving"), Ok("SERVING".into()));
    assert_eq!(judged("not_serving").unwrap_err(), "NOT_SERVING");
    assert_eq!(judged("not_found").unwrap_err(), "grpc-status 5 (NOT_FOUND)");
}
