//! /etc/ld.so.cache from the audited image (`--root`): `ldcheck::ldcache::parse`
//! and `Cache::lookup`. Properties: never panics or allocates from an
//! unchecked count; at most 2^20 entries; a lookup returns a value that is one
//! of the entries for that name.
#![no_main]

use ldcheck::ldcache::{parse, FLAGS_AARCH64, FLAGS_X86_64};
use libfuzzer_sys::fuzz_target;

const HWCAPS: &[&str] = &["x86-64-v4", "x86-64-v3", "x86-64-v2"];

fuzz_target!(|data: &[u8]| {
    let Ok(cache) = parse(data) else { return };
    assert!(cache.entries.len() <= 1 << 20);
    for e in cache.entries.iter().take(64) {
        for flags in [FLAGS_X86_64, FLAGS_AARCH64, e.flags] {
            for hw in [HWCAPS, &[][..]] {
                if let Some(v) = cache.lookup(&e.key, flags, hw) {
                    assert!(
                        cache
                            .entries
                            .iter()
                            .any(|x| x.key == e.key && x.value == v && x.flags == flags),
                        "{v:?} is not an entry for {:?}",
                        e.key
                    );
                }
            }
        }
    }
    let _ = cache.lookup("libc.so.6", FLAGS_X86_64, HWCAPS);
});
