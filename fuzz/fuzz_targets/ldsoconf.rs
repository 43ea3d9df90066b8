//! /etc/ld.so.conf and its includes from the audited image (`--root`):
//! `ldcheck::ldsoconf::parse` and `glob_match`. Properties: never panics;
//! every line it returns is a non-empty word of the input; a pattern
//! without wildcards matches only itself.
#![no_main]

use ldcheck::ldsoconf::{glob_match, parse, Line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for l in parse(&text) {
        let (Line::Dir(w) | Line::Include(w)) = l;
        assert!(!w.is_empty() && text.contains(w.as_str()), "{w:?}");
    }
    // The first line as a pattern, the rest as names (bounded work: the
    // matcher is quadratic at worst, and the input is capped by libFuzzer).
    let mut lines = text.lines();
    let pat = lines.next().unwrap_or("");
    for name in lines.take(16) {
        let m = glob_match(pat, name);
        if !pat.contains(['*', '?']) {
            assert_eq!(m, pat == name, "{pat:?} {name:?}");
        }
    }
});
