//! What an AMQP broker (or anything on its port) answers to the AMQP 0-9-1
//! protocol header: `dockhand::check::amqp::judge_amqp`. Properties: never
//! panics; the verdict is one printable line of bounded length; up only for
//! a method frame on channel 0 carrying Connection.Start (class 10, method
//! 10) and ending in 0xCE; a protocol header back is never up.
#![no_main]

use dockhand::check::amqp::judge_amqp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let verdict = judge_amqp(data);
    let text = match &verdict {
        Ok(s) => s.as_str(),
        Err(e) => e.message.as_str(),
    };
    assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
    assert!(text.len() < 1024, "{} bytes", text.len());
    if verdict.is_ok() {
        let size = u32::from_be_bytes(data[3..7].try_into().unwrap()) as usize;
        assert!(
            data[..3] == [1, 0, 0] && data[7..11] == [0, 10, 0, 10] && data[7 + size] == 0xce,
            "{data:?} judged up"
        );
    }
});
