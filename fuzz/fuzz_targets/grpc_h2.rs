//! What a gRPC server (or anything on its port) sends back to the health
//! check, from the first byte: HTTP/2 frames, HPACK header blocks, the gRPC
//! message and the verdict (`dockhand::check::grpc::judge_bytes`).
//! Properties: never panics, reads within its bounds; the verdict is one
//! printable line of bounded length; up only as "SERVING".
#![no_main]

use dockhand::check::grpc::judge_bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let verdict = judge_bytes(data);
    let text = match &verdict {
        Ok(s) => s.as_str(),
        Err(e) => e.message.as_str(),
    };
    assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
    assert!(text.len() < 1024, "{} bytes", text.len());
    if let Ok(s) = &verdict {
        assert_eq!(s, "SERVING");
    }
});
