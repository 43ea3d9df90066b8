//! What a Redis server (or anything on its port) answers to waitfor's
//! `[AUTH] [SELECT] PING`: `dockhand::check::redis::judge_redis`. The first
//! byte says whether AUTH (bit 0) and SELECT (bit 1) were sent. Properties:
//! never panics; the verdict is one printable line of bounded length; up
//! only when the (last) reply line is exactly +PONG (and each of AUTH and
//! SELECT got +OK).
#![no_main]

use dockhand::check::redis::judge_redis;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flag, bytes)) = data.split_first() else {
        return;
    };
    let sent: Vec<&str> = [(1, "AUTH"), (2, "SELECT")]
        .iter()
        .filter(|(bit, _)| flag & bit != 0)
        .map(|(_, c)| *c)
        .collect();
    let verdict = judge_redis(bytes, &sent);
    let text = match &verdict {
        Ok(s) => s.as_str(),
        Err(e) => e.message.as_str(),
    };
    assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
    assert!(text.len() < 1024, "{} bytes", text.len());
    if verdict.is_ok() {
        // A peer that closes right after "+PONG\r" still said PONG.
        let want = [&b"+OK\r\n".repeat(sent.len())[..], b"+PONG\r"].concat();
        assert!(bytes.starts_with(&want), "{bytes:?} judged up");
    }
});
