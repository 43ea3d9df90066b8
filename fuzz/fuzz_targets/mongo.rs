//! What a MongoDB server (or anything on its port) answers to the `hello`
//! OP_MSG or the legacy `isMaster` OP_QUERY: `dockhand::check::mongo`'s
//! `parse_reply` (message header, OP_MSG sections, OP_REPLY layout) and its
//! bounded BSON reader `fields`, then `judge`. Properties: never panics; the
//! verdict is one printable line of bounded length; up only for a whole
//! OP_MSG or OP_REPLY, within the 1 MiB cap, answering our requestID.
#![no_main]

use dockhand::check::mongo::{fields, judge, parse_reply, MAX_MESSAGE, REQUEST_ID};
use libfuzzer_sys::fuzz_target;

fn printable(text: &str) {
    assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
    assert!(text.len() < 1024, "{} bytes", text.len());
}

fuzz_target!(|data: &[u8]| {
    // The BSON reader alone, on any bytes.
    if let Ok(f) = fields(data) {
        if let Some(m) = &f.errmsg {
            printable(m);
        }
    }
    let verdict = parse_reply(data).and_then(|r| judge(&r.fields, "hello").map(|d| (r.opcode, d)));
    let text = match &verdict {
        Ok((_, s)) => s.as_str(),
        Err(e) => e.message.as_str(),
    };
    printable(text);
    if let Ok((opcode, _)) = verdict {
        let word = |at: usize| i32::from_le_bytes(data[at..at + 4].try_into().unwrap());
        let len = word(0);
        assert!(len >= 16 && len as usize <= MAX_MESSAGE && len as usize <= data.len());
        assert_eq!(word(8), REQUEST_ID);
        assert!(opcode == 1 || opcode == 2013, "opcode {opcode}");
    }
});
