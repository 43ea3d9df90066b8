//! What a PostgreSQL server (or anything listening on its port) answers to
//! waitfor's StartupMessage: `dockhand::check::postgres::judge_postgres`.
//! Properties: never panics; the verdict is one printable line of bounded
//! length (it is printed in waitfor's progress); nothing but an
//! AuthenticationRequest, NegotiateProtocolVersion or an ErrorResponse with a
//! SQLSTATE other than 57P03 counts as up.
#![no_main]

use dockhand::check::postgres::judge_postgres;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let verdict = judge_postgres(data);
    let text = match &verdict {
        Ok(s) => s.as_str(),
        Err(e) => e.message.as_str(),
    };
    assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
    assert!(text.len() < 1024, "{} bytes", text.len());
    if verdict.is_ok() {
        assert!(
            matches!(data.first(), Some(b'R' | b'v' | b'E')),
            "{data:?} judged up"
        );
        assert!(data.len() >= 5);
    }
});
