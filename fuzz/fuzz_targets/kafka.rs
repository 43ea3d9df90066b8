//! What a Kafka broker (or anything on its port) answers to the ApiVersions
//! v0 request: `dockhand::check::kafka::judge_kafka`. Properties: never
//! panics; the verdict is one printable line of bounded length; up only when
//! the size is within the 1 MiB cap and the bytes there, the correlation_id
//! is ours, error_code is 0 and the api_keys array fits in the response.
#![no_main]

use dockhand::check::kafka::{judge_kafka, CORRELATION_ID, MAX_MESSAGE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let verdict = judge_kafka(data);
    let text = match &verdict {
        Ok(s) => s.as_str(),
        Err(e) => e.message.as_str(),
    };
    assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
    assert!(text.len() < 1024, "{} bytes", text.len());
    if verdict.is_ok() {
        let word = |at: usize| i32::from_be_bytes(data[at..at + 4].try_into().unwrap());
        let size = word(0);
        assert!(size >= 10 && size as usize <= MAX_MESSAGE && 4 + size as usize <= data.len());
        assert_eq!(word(4), CORRELATION_ID);
        assert_eq!(&data[8..10], &[0, 0]);
        let n = word(10);
        assert!(n >= 0 && 14 + 6 * n as usize <= 4 + size as usize);
    }
});
