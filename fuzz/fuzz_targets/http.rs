//! HTTP responses as healthcheck reads them (shared/src/check/http.rs):
//! `head_end`, `parse_head`, `Dechunk::feed`, driven the way `exchange` drives
//! them (head capped at MAX_HEAD, 1xx skipped, body capped at MAX_BODY), plus
//! the `--status` and `--header` flag parsers. The first byte picks the read
//! size, so one input is seen split in many ways.
//! Properties: never panics; the head never grows past MAX_HEAD; the decoded
//! body never exceeds MAX_BODY; chunked decoding gives the same bytes and the
//! same verdict whatever the split; a 204/304/1xx response has no body.
#![no_main]

use dockhand::check::http::{
    check_header, head_end, parse_head, parse_status, status_ok, Dechunk, Framing, MAX_BODY, MAX_HEAD,
};
use libfuzzer_sys::fuzz_target;

fn dechunk(input: &[u8], step: usize) -> (Result<bool, String>, Vec<u8>) {
    let mut d = Dechunk::default();
    let mut out = Vec::new();
    let mut done = Ok(false);
    for piece in input.chunks(step.max(1)) {
        done = d.feed(piece, &mut out, MAX_BODY);
        assert!(out.len() <= MAX_BODY);
        if !matches!(done, Ok(false)) {
            break;
        }
    }
    (done, out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&step, data)) = data.split_first() else {
        return;
    };
    let step = step as usize % 64 + 1;

    // Flag parsers (their text comes from the Dockerfile, still never panic).
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(r) = parse_status(s) {
            assert!(r
                .iter()
                .all(|&(lo, hi)| (100..=599).contains(&lo) && lo <= hi && hi <= 599));
            let _ = status_ok(200, &r);
        }
        if check_header(s).is_ok() {
            assert!(!s.contains(['\r', '\n', '\0']), "{s:?}");
        }
    }

    // The head loop of `exchange`.
    let mut buf: Vec<u8> = Vec::new();
    let mut pos = 0;
    let (head, rest) = loop {
        if let Some(end) = head_end(&buf) {
            assert!(end <= buf.len());
            let Ok(head) = parse_head(&buf[..end]) else { return };
            assert!((100..=999).contains(&head.status));
            if head.status < 200 || head.status == 204 || head.status == 304 {
                assert_eq!(head.framing, Framing::None);
            }
            if (100..200).contains(&head.status) && head.status != 101 {
                buf.drain(..end);
                continue;
            }
            break (head, buf.split_off(end));
        }
        if buf.len() >= MAX_HEAD {
            return;
        }
        let want = (MAX_HEAD - buf.len()).min(step);
        let n = want.min(data.len() - pos);
        if n == 0 {
            // Connection closed in the middle of the headers; parse_head on a
            // partial head must still not panic.
            let _ = parse_head(&buf);
            return;
        }
        buf.extend_from_slice(&data[pos..pos + n]);
        pos += n;
        assert!(buf.len() <= MAX_HEAD);
    };
    let body = [&rest[..], &data[pos..]].concat();

    match head.framing {
        Framing::Chunked => {
            let capped = &body[..body.len().min(MAX_BODY)];
            let (a, out_a) = dechunk(capped, capped.len());
            let (b, out_b) = dechunk(capped, step);
            assert_eq!(a.is_ok(), b.is_ok(), "verdict depends on the split");
            if a.is_ok() {
                assert_eq!(a, b, "completion depends on the split");
                assert_eq!(out_a, out_b, "data depends on the split");
            }
        }
        Framing::Length(n) => {
            // exchange never allocates from Content-Length: it copies what came.
            let take = body.len().min(MAX_BODY).min(n.min(usize::MAX as u64) as usize);
            assert!(take <= MAX_BODY);
        }
        Framing::None | Framing::Close => {}
    }
});
