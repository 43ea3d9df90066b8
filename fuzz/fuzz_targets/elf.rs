//! ELF files as ldcheck reads them from an untrusted tree: `ldcheck::elf::parse`
//! (and `parse_from` without symbols, the default path). Properties: never
//! panics, never allocates from an unchecked count (libFuzzer's -rss_limit_mb
//! and -malloc_limit_mb catch that); lists stay within the reader's caps;
//! reading symbols does not change what the loader-relevant fields say.
#![no_main]

use ldcheck::elf::{is_elf, parse, parse_from};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let full = parse(data);
    let plain = parse_from(data, false);
    if full.is_ok() || plain.is_ok() {
        assert!(is_elf(data));
    }
    if let Ok(e) = &plain {
        assert!(e.needed.len() <= 65536 && e.verneed.len() <= 65536 && e.verdef.len() <= 65536);
        assert!(e.symbols.is_none());
        assert!(
            e.rpath.is_none() || e.runpath.is_none(),
            "DT_RPATH must be dropped when DT_RUNPATH is there"
        );
        if let Ok(f) = &full {
            assert_eq!(f.needed, e.needed);
            assert_eq!(f.soname, e.soname);
            assert_eq!(f.rpath, e.rpath);
            assert_eq!(f.runpath, e.runpath);
            assert_eq!(f.interp, e.interp);
            assert_eq!(f.verneed, e.verneed);
        }
    }
    if let Ok(Some(s)) = full.as_ref().map(|e| e.symbols.as_ref()) {
        assert!(s.undefined.len() + s.defined.len() <= 2_000_000);
    }
});
