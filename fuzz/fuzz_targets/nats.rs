//! What a NATS server (or anything on its port) sends: the INFO line on
//! connect (`judge_info`, with its small JSON reader) and the lines after
//! CONNECT and PING (`judge_replies`). The first byte picks which. Properties:
//! never panics; every message is one printable line of bounded length; INFO
//! is accepted only from an `INFO ` line; up only at a `PONG` line, with only
//! +OK, PING and INFO lines before it.
#![no_main]

use dockhand::check::nats::{judge_info, judge_replies};
use libfuzzer_sys::fuzz_target;

fn line_ok(text: &str) {
    assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
    assert!(text.len() < 1024, "{} bytes", text.len());
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    if which & 1 == 0 {
        match judge_info(bytes) {
            Ok((info, rest)) => {
                assert!(bytes.starts_with(b"INFO "), "{bytes:?} taken as INFO");
                assert!(rest.len() < bytes.len());
                if let Some(v) = &info.version {
                    line_ok(v);
                }
            }
            Err(e) => line_ok(&e.message),
        }
    } else {
        match judge_replies(bytes) {
            Ok(d) => {
                line_ok(&d);
                let mut lines = bytes.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
                let pong = lines.position(|l| l == b"PONG").expect("up without PONG");
                let before = bytes.split(|&b| b == b'\n').take(pong);
                for l in before {
                    let l = l.strip_suffix(b"\r").unwrap_or(l);
                    assert!(l == b"+OK" || l == b"PING" || l.starts_with(b"INFO "), "{l:?} before PONG");
                }
            }
            Err(e) => line_ok(&e.message),
        }
    }
});
