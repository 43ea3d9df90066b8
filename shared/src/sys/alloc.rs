//! A global allocator for short-lived tools that allocate and free many
//! small blocks (ldcheck). Blocks up to 64 KiB are rounded up to a power of
//! two; each thread carves them from 256 KiB chunks it takes from the
//! system allocator and keeps freed ones on its own per-size free lists, so
//! the common path is a few instructions with no lock and no shared cache
//! line. musl's malloc, by contrast, locks, and unmaps emptied groups, which
//! turned every file ldcheck read into mmap/munmap calls and fresh zeroed
//! pages.
//!
//! The contract, which only suits a process that exits soon after its work:
//! - memory is never returned to the system before exit: the footprint
//!   stays at the program's peak;
//! - a block freed by another thread than the one that allocated it goes on
//!   the freeing thread's list and stays with that thread;
//! - when a thread ends, the blocks on its lists and the rest of its chunk
//!   are never used again. ldcheck starts its 16 to 32 reader threads once
//!   per run, so what is lost is bounded by what those threads held at
//!   their peak, and freed at exit with everything else.
//!
//! Larger blocks go straight to the system allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr::null_mut;

const MIN_SHIFT: usize = 4; // 16 bytes: room for the free-list link
const MAX_SHIFT: usize = 16; // 64 KiB
const CLASSES: usize = MAX_SHIFT - MIN_SHIFT + 1;
/// What a thread takes from the system at a time for its small blocks.
const CHUNK: usize = 256 << 10;

/// Power-of-two size classes with per-thread free lists and bump chunks.
#[derive(Debug)]
pub struct PerThreadPools;

impl PerThreadPools {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> PerThreadPools {
        PerThreadPools
    }
}

/// One thread's free lists and the rest of its current chunk. Plain cells
/// with a const initialiser and no destructor: the thread-local needs no
/// registration or allocation, so the allocator may use it.
struct Local {
    heads: [Cell<*mut u8>; CLASSES],
    next: Cell<*mut u8>,
    end: Cell<*mut u8>,
}

thread_local! {
    static LOCAL: Local = const {
        Local {
            heads: [const { Cell::new(null_mut()) }; CLASSES],
            next: Cell::new(null_mut()),
            end: Cell::new(null_mut()),
        }
    };
}

/// The class of a layout, or None when it goes straight to the system.
fn class(l: &Layout) -> Option<usize> {
    if l.align() > 16 || l.size() > 1 << MAX_SHIFT {
        return None;
    }
    let size = l.size().max(1 << MIN_SHIFT).next_power_of_two();
    Some(size.trailing_zeros() as usize - MIN_SHIFT)
}

fn class_layout(c: usize) -> Layout {
    // 16-byte alignment covers every layout a class accepts.
    Layout::from_size_align(1 << (c + MIN_SHIFT), 16).expect("valid class layout")
}

impl Local {
    /// A fresh block of class `c` from this thread's chunk, taking a new
    /// chunk when the current one is used up (its tail is left unused).
    fn carve(&self, c: usize) -> *mut u8 {
        let size = 1usize << (c + MIN_SHIFT);
        let (next, end) = (self.next.get(), self.end.get());
        if !next.is_null() && (end as usize) - (next as usize) >= size {
            self.next.set(next.wrapping_add(size));
            return next;
        }
        let chunk = Layout::from_size_align(CHUNK, 16).expect("valid chunk layout");
        // SAFETY: a non-zero size. The chunk is never freed: its blocks
        // live on free lists until the process exits.
        let p = unsafe { System.alloc(chunk) };
        if p.is_null() {
            return p;
        }
        self.next.set(p.wrapping_add(size));
        self.end.set(p.wrapping_add(CHUNK));
        p
    }
}

// SAFETY: every block of class `c` is 1 << (c + 4) bytes, 16-aligned: carved
// from a 16-aligned chunk at an offset that is a multiple of 16 (sizes are multiples
// of 16), or fresh from System with `class_layout(c)`. A block is on at
// most one thread's free list, and only while nobody uses it; a free block's
// first 8 bytes hold the next free block (classes start at 16 bytes). Class
// blocks are never handed back to System, since carved ones did not come
// from it one by one.
unsafe impl GlobalAlloc for PerThreadPools {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let Some(c) = class(&l) else {
            // SAFETY: forwarded unchanged; the caller's contract holds.
            return unsafe { System.alloc(l) };
        };
        let p = LOCAL.try_with(|t| {
            let head = t.heads[c].get();
            if head.is_null() {
                return t.carve(c);
            }
            // SAFETY: `head` is a free block of this class; its first word is the link.
            t.heads[c].set(unsafe { (head as *mut *mut u8).read() });
            head
        });
        match p {
            Ok(p) => p,
            // SAFETY: class layouts have a non-zero size.
            Err(_) => unsafe { System.alloc(class_layout(c)) },
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        let Some(c) = class(&l) else {
            // SAFETY: blocks outside the classes came from System with this layout.
            return unsafe { System.dealloc(p, l) };
        };
        // Without this thread's lists (only while the thread is torn down)
        // the block is left unused rather than given to System.
        let _ = LOCAL.try_with(|t| {
            // SAFETY: `p` is a block of class `c`, at least 16 bytes and
            // 16-aligned, now unused: it may hold the link.
            unsafe { (p as *mut *mut u8).write(t.heads[c].get()) };
            t.heads[c].set(p);
        });
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        let new = Layout::from_size_align(new_size, l.align()).expect("realloc layout");
        match (class(&l), class(&new)) {
            // Same block size: nothing to move.
            (Some(a), Some(b)) if a == b => p,
            // SAFETY: both outside the classes: System owns the block.
            (None, None) => unsafe { System.realloc(p, l, new_size) },
            _ => {
                // SAFETY: standard move: allocate, copy the smaller size, free.
                unsafe {
                    let q = self.alloc(new);
                    if !q.is_null() {
                        std::ptr::copy_nonoverlapping(p, q, l.size().min(new_size));
                        self.dealloc(p, l);
                    }
                    q
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let c = |s, a| class(&Layout::from_size_align(s, a).unwrap());
        assert_eq!(c(1, 1), Some(0));
        assert_eq!(c(16, 8), Some(0));
        assert_eq!(c(17, 8), Some(1));
        assert_eq!(c(65536, 8), Some(CLASSES - 1));
        assert_eq!(c(65537, 8), None);
        assert_eq!(c(64, 32), None);
    }

    #[test]
    fn blocks_are_reused_and_hold_their_data() {
        static A: PerThreadPools = PerThreadPools::new();
        let l = Layout::from_size_align(100, 8).unwrap();
        // SAFETY: matched alloc/dealloc/realloc with the same layouts.
        unsafe {
            let p = A.alloc(l);
            assert_eq!(p as usize % 16, 0);
            p.write_bytes(7, 100);
            A.dealloc(p, l);
            let q = A.alloc(l);
            assert_eq!(p, q, "a freed block of the class comes back");
            q.write_bytes(9, 100);
            let r = A.realloc(q, l, 120); // same 128-byte class
            assert_eq!(r, q);
            let s = A.realloc(r, Layout::from_size_align(120, 8).unwrap(), 1000);
            assert_eq!(*s.add(99), 9, "data survives a move");
            A.dealloc(s, Layout::from_size_align(1000, 8).unwrap());
            let big = Layout::from_size_align(1 << 20, 8).unwrap();
            let b = A.alloc(big);
            assert!(!b.is_null());
            A.dealloc(b, big);
        }
    }

    #[test]
    fn carved_blocks_do_not_overlap() {
        static A: PerThreadPools = PerThreadPools::new();
        // More than a chunk's worth of several sizes, all live at once.
        let mut live: Vec<(usize, usize)> = Vec::new();
        for i in 0..3000usize {
            let size = 16 << (i % 9);
            let l = Layout::from_size_align(size, 16).unwrap();
            // SAFETY: a valid layout; the block is checked and freed below.
            let p = unsafe { A.alloc(l) };
            assert!(!p.is_null());
            assert_eq!(p as usize % 16, 0);
            // SAFETY: `size` bytes at `p` are ours.
            unsafe { p.write_bytes(i as u8, size) };
            live.push((p as usize, size));
        }
        let mut sorted = live.clone();
        sorted.sort();
        for w in sorted.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "blocks overlap");
        }
        for (i, (p, size)) in live.into_iter().enumerate() {
            // SAFETY: allocated above with this size and alignment.
            unsafe {
                assert_eq!(*(p as *const u8).add(size - 1), i as u8);
                A.dealloc(p as *mut u8, Layout::from_size_align(size, 16).unwrap());
            }
        }
    }

    #[test]
    fn threads_share_it_safely() {
        static A: PerThreadPools = PerThreadPools::new();
        // Blocks cross threads: allocated on one, freed on another.
        let (tx, rx) = std::sync::mpsc::channel::<(usize, usize)>();
        let freer = std::thread::spawn(move || {
            for (p, size) in rx {
                // SAFETY: each block arrives once, with the layout it was allocated with.
                unsafe { A.dealloc(p as *mut u8, Layout::from_size_align(size, 8).unwrap()) };
            }
        });
        let hs: Vec<_> = (0..4)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000usize {
                        let l = Layout::from_size_align(16 + (i * 7 + t) % 5000, 8).unwrap();
                        // SAFETY: each block is written, checked and freed with its layout.
                        unsafe {
                            let p = A.alloc(l);
                            p.write_bytes(t as u8, l.size());
                            assert_eq!(*p.add(l.size() - 1), t as u8);
                            if i % 3 == 0 {
                                tx.send((p as usize, l.size())).unwrap();
                            } else {
                                A.dealloc(p, l);
                            }
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        for h in hs {
            h.join().unwrap();
        }
        freer.join().unwrap();
    }
}
