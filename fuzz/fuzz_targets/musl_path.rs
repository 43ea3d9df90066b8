//! musl search paths from the audited image: the path file
//! (/etc/ld-musl-ARCH.path) split by `ldcheck::resolve::musl_split`, and a
//! DT_RPATH/DT_RUNPATH expanded by `musl_expand_origin`. Properties: never
//! panics; no element is empty or holds a separator; an expansion keeps
//! every byte that is not part of a `$ORIGIN` token, and refuses any other `$`.
#![no_main]

use ldcheck::resolve::{musl_expand_origin, musl_split};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for e in musl_split(&text) {
        assert!(!e.is_empty() && !e.contains([':', '\n']), "{e:?}");
    }
    let (spec, name) = text.split_once('\0').unwrap_or((&text, "/a/b"));
    if let Some(x) = musl_expand_origin(spec, name) {
        let origin = name.rfind('/').map_or(".", |i| &name[..i]);
        let tokens = spec.matches('$').count();
        let kept = spec.replace("${ORIGIN}", "").replace("$ORIGIN", "");
        assert_eq!(x.len(), kept.len() + tokens * origin.len(), "{spec:?} {name:?} {x:?}");
    } else {
        assert!(spec.contains('$'));
    }
});
