//! The hash maps the tools keep in memory (ldcheck keeps maps of paths and
//! sonames and looks them up tens of thousands of times per run). std's
//! SipHash-1-3 costs more than the lookups it serves, so these use foldhash's
//! fast hasher: seeded per process from the kernel's randomness (through
//! std), so names in a hostile tree cannot be chosen in advance to collide.
//! That is the "minimal DoS resistance" hashbrown's default hasher aims
//! for, not a cryptographic guarantee.

use std::collections::{HashMap, HashSet};

/// How the maps below build their hashers: foldhash, randomly seeded.
pub type FastHasher = foldhash::fast::RandomState;
/// A HashMap with the fast seeded hasher.
pub type FastMap<K, V> = HashMap<K, V, FastHasher>;
/// A HashSet with the fast seeded hasher.
pub type FastSet<T> = HashSet<T, FastHasher>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    #[test]
    fn equal_keys_hash_equal_and_near_keys_differ() {
        let s = FastHasher::default();
        let h = |v: &str| s.hash_one(v);
        assert_eq!(h("libc.so.6"), s.hash_one("libc.so.6".to_string()));
        let names = [
            "",
            "a",
            "ab",
            "ab\0",
            "abc",
            "libc.so.6",
            "libc.so.7",
            "libc.so.60",
        ];
        let mut seen = std::collections::HashSet::new();
        for n in names {
            assert!(seen.insert(h(n)), "{n:?} collides");
        }
    }

    #[test]
    fn maps_work() {
        let mut m: FastMap<String, usize> = FastMap::default();
        for i in 0..10_000 {
            m.insert(format!("/lib/lib{i}.so.1"), i);
        }
        for i in 0..10_000 {
            assert_eq!(m[&format!("/lib/lib{i}.so.1")], i);
        }
    }
}
