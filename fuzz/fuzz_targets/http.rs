//! HTTP responses as healthcheck reads them (shared/src/check/http.rs):
//! `head_end`, `parse_head`, `Dechunk::feed`, driven the way `exchange` drives
//! them (head capped at MAX_HEAD, 1xx skipped, body capped at MAX_BODY), plus
//! the `--status` and `--header` flag parsers, a redirect's Location as
//! `resolve` reads it, and `show`, which prints server bytes. The first byte
//! picks the read size (and the base URL), so one input is seen split in
//! many ways.
//! Properties: never panics; the head never grows past MAX_HEAD; the decoded
//! body never exceeds MAX_BODY; chunked decoding gives the same bytes and the
//! same verdict whatever the split; a 204/304/1xx response has no body; a
//! head with its list values folded over lines (obs-fold) parses as the
//! unfolded one does; a Location only comes with a followed status, and what
//! it resolves to is a URL within MAX_URL that makes one request line, with
//! nothing unprintable; `show` prints no control character.
#![no_main]

use dockhand::check::http::{
    check_header, head_end, is_redirect, parse_head, parse_status, request, resolve, show, status_ok, Dechunk,
    Framing, Resolved, MAX_BODY, MAX_HEAD, MAX_URL,
};
use dockhand::target::Target;
use libfuzzer_sys::fuzz_target;

/// The head with every ", " after a line's first colon folded onto a new
/// line (",\r\n "): the same fields to an RFC 9112 recipient.
fn fold(head: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.len() * 2);
    for (i, line) in head.split_inclusive(|&b| b == b'\n').enumerate() {
        let colon = if i == 0 { None } else { line.iter().position(|&b| b == b':') };
        let Some(c) = colon else {
            out.extend_from_slice(line);
            continue;
        };
        out.extend_from_slice(&line[..=c]);
        let mut j = c + 1;
        while j < line.len() {
            if line[j..].starts_with(b", ") {
                out.extend_from_slice(b",\r\n ");
                j += 2;
            } else {
                out.push(line[j]);
                j += 1;
            }
        }
    }
    out
}

fn printable(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

const BASES: [&str; 4] = [
    "http://a/b/c/d;p?q",
    "http://127.0.0.1:8080/",
    "http://[::1]/x/y?z=1",
    "http://app.example/health",
];

/// A Location against one of the bases.
fn redirect(base: &str, location: &[u8]) {
    let Ok(Target::Http(base)) = Target::parse(base) else { panic!("{base}") };
    match resolve(&base, location) {
        Err(e) => assert!(printable(&e) && e.len() < 1024, "{e:?}"),
        Ok(Resolved::Http { url, .. }) => {
            assert!(url.path.starts_with('/') && url.path.len() <= MAX_URL, "{url:?}");
            assert!(!url.path.contains(|c: char| c.is_control() || c == ' '), "{url:?}");
            assert!(!url.host.is_empty() && printable(&url.text), "{url:?}");
            let r = request(&url, &[]);
            let text = String::from_utf8_lossy(&r);
            let first = text.lines().next().unwrap_or("");
            assert_eq!(first.matches(' ').count(), 2, "{text:?}");
        }
        Ok(Resolved::Other { text, host, .. }) => {
            assert!(printable(&text) && !text.contains(' ') && printable(&host), "{text:?}");
        }
    }
}

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

    // Printing server bytes, and a Location against one of the bases.
    assert!(printable(&show(data, 60)));
    redirect(BASES[step % BASES.len()], &data[..data.len().min(MAX_URL + 16)]);

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
            let parsed = parse_head(&buf[..end]);
            let folded = parse_head(&fold(&buf[..end]));
            assert_eq!(parsed.is_ok(), folded.is_ok(), "obs-fold changed the verdict");
            let Ok(head) = parsed else { return };
            if let Ok(f) = folded {
                assert_eq!((f.status, f.framing), (head.status, head.framing), "obs-fold changed the framing");
            }
            assert!(head.location.is_none() || is_redirect(head.status));
            if let Some(loc) = &head.location {
                redirect(BASES[0], loc);
            }
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
