//! A fast keyed hasher for the tools' in-memory maps (ldcheck keeps maps of
//! paths and sonames and looks them up tens of thousands of times per run).
//! std's SipHash-1-3 costs more than the lookups it serves; this folds
//! 8 bytes per 64x64->128-bit multiply instead. It is keyed with two random
//! words per process (taken from std's RandomState, which the kernel seeds),
//! so file names in a hostile tree cannot be chosen in advance to collide:
//! the same "minimal DoS resistance" hashbrown's default hasher aims for,
//! not a cryptographic guarantee.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// A HashMap with the fast keyed hasher.
pub type FastMap<K, V> = HashMap<K, V, Fold>;
/// A HashSet with the fast keyed hasher.
pub type FastSet<T> = HashSet<T, Fold>;

/// Multiply, then fold the 128-bit product onto 64 bits: every input bit
/// reaches many output bits.
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// An odd constant with well-spread bits (2^64 / golden ratio).
const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// The process's two keys, drawn once.
fn keys() -> (u64, u64) {
    static KEYS: OnceLock<(u64, u64)> = OnceLock::new();
    *KEYS.get_or_init(|| {
        let r = std::collections::hash_map::RandomState::new();
        // Never zero: a zero key would let `fold` collapse the state.
        (r.hash_one(0x5eed_u64) | 1, r.hash_one(0xfeed_u64) | 1)
    })
}

/// Builds hashers with the process's keys.
#[derive(Clone, Copy, Debug)]
pub struct Fold {
    k0: u64,
    k1: u64,
}

impl Default for Fold {
    fn default() -> Fold {
        let (k0, k1) = keys();
        Fold { k0, k1 }
    }
}

impl BuildHasher for Fold {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher {
            h: self.k0,
            k: self.k1,
        }
    }
}

/// The hasher `Fold` builds.
#[derive(Clone, Debug)]
pub struct FoldHasher {
    h: u64,
    k: u64,
}

impl FoldHasher {
    #[inline]
    fn word(&mut self, w: u64) {
        self.h = fold(self.h ^ w, K);
    }
}

impl Hasher for FoldHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.word(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        // The length goes in too, so "ab" and "ab\0" differ: for the last
        // partial word its low byte lands in the top byte, which the tail
        // (at most 7 bytes) leaves zero.
        self.word(u64::from_le_bytes(w) ^ (bytes.len() as u64).rotate_right(8));
    }
    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.word(u64::from(v));
    }
    #[inline]
    fn write_u16(&mut self, v: u16) {
        self.word(u64::from(v));
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.word(u64::from(v));
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.word(v);
    }
    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.word(v as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        fold(self.h, self.k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h<T: std::hash::Hash + ?Sized>(v: &T) -> u64 {
        Fold::default().hash_one(v)
    }

    #[test]
    fn equal_keys_hash_equal_and_near_keys_differ() {
        assert_eq!(h("libc.so.6"), h(&"libc.so.6".to_string()));
        let names = [
            "",
            "a",
            "ab",
            "ab\0",
            "abc",
            "libc.so.6",
            "libc.so.7",
            "libm.so.6",
            "libc.so.60",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            "/usr/lib/x86_64-linux-gnu/libc.so.7",
        ];
        let mut seen = std::collections::HashSet::new();
        for n in names {
            assert!(seen.insert(h(n)), "{n:?} collides");
        }
        assert_ne!(h(&(1u16, "x")), h(&(2u16, "x")));
        assert_ne!(h(&(1usize, 2usize)), h(&(2usize, 1usize)));
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
        // Spread: the low 12 bits (bucket indices) of 10,000 similar paths
        // land in most of the 4096 buckets.
        let buckets: std::collections::HashSet<u64> = (0..10_000)
            .map(|i| h(&format!("/lib/lib{i}.so.1")) & 0xfff)
            .collect();
        assert!(buckets.len() > 3500, "{} buckets", buckets.len());
    }
}
