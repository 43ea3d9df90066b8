//! The body of a Health/Check response: one gRPC length-prefixed message
//! holding a HealthCheckResponse (`dockhand::check::grpc::proto`).
//! Properties: never panics; a status comes back only from a well-framed,
//! uncompressed message whose length matches.
#![no_main]

use dockhand::check::grpc::proto::{response_status, status_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match response_status(data) {
        Ok(s) => {
            assert!(data.len() >= 5 && data[0] == 0);
            let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
            assert_eq!(len, data.len() - 5);
            let _ = status_name(s);
        }
        Err(e) => assert!(!e.contains('\n') && e.len() < 200, "{e}"),
    }
});
