//! What a Redis server (or anything on its port) answers to waitfor's
//! `[AUTH] PING`: `dockhand::check::redis::judge_redis`. The first byte says
//! whether AUTH was sent. Properties: never panics; the verdict is one
//! printable line of bounded length; up only when the (last) reply line is
//! exactly +PONG (and AUTH got +OK).
#![no_main]

use dockhand::check::redis::judge_redis;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flag, bytes)) = data.split_first() else {
        return;
    };
    let auth = flag & 1 == 1;
    let verdict = judge_redis(bytes, auth);
    let text = match &verdict {
        Ok(s) | Err(s) => s,
    };
    assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
    assert!(text.len() < 1024, "{} bytes", text.len());
    if verdict.is_ok() {
        // A peer that closes right after "+PONG\r" still said PONG.
        let want: &[u8] = if auth { b"+OK\r\n+PONG\r" } else { b"+PONG\r" };
        assert!(bytes.starts_with(want), "{bytes:?} judged up");
    }
});
