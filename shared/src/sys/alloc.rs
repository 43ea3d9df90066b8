//! A global allocator for short-lived tools that allocate and free many
//! small blocks: freed blocks up to 64 KiB are kept on per-size free lists
//! and reused, instead of going back to musl's malloc, whose unmapping of
//! emptied groups turns every file ldcheck reads into mmap/munmap calls and
//! fresh zeroed pages. Memory is never returned to the system before exit,
//! so it stays at the program's peak (rounded up to a power of two per block).

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

const MIN_SHIFT: usize = 4; // 16 bytes: room for the free-list link
const MAX_SHIFT: usize = 16; // 64 KiB
const CLASSES: usize = MAX_SHIFT - MIN_SHIFT + 1;

/// Power-of-two size classes with a free list each.
#[derive(Debug)]
pub struct Cached {
    heads: [AtomicPtr<u8>; CLASSES],
    locks: [AtomicBool; CLASSES],
}

impl Cached {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Cached {
        Cached {
            heads: [const { AtomicPtr::new(null_mut()) }; CLASSES],
            locks: [const { AtomicBool::new(false) }; CLASSES],
        }
    }
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

impl Cached {
    /// Take a class's lock if it is free. Never spins: on contention the
    /// caller goes to the system allocator with the class layout instead,
    /// which is valid for any block of the class either way.
    fn try_lock(&self, c: usize) -> bool {
        self.locks[c]
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }
    fn unlock(&self, c: usize) {
        self.locks[c].store(false, Ordering::Release);
    }
}

// SAFETY: every block handed out is either fresh from System with the
// class's size and 16-byte alignment, or a block of that same class that was
// freed and is no longer used by anyone; a free block's first 8 bytes hold
// the next free block (classes start at 16 bytes, so the link fits). The
// list of each class is only touched under that class's lock.
unsafe impl GlobalAlloc for Cached {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let Some(c) = class(&l) else {
            // SAFETY: forwarded unchanged; the caller's contract holds.
            return unsafe { System.alloc(l) };
        };
        if !self.try_lock(c) {
            // SAFETY: class layouts have a non-zero size.
            return unsafe { System.alloc(class_layout(c)) };
        }
        let head = self.heads[c].load(Ordering::Relaxed);
        if !head.is_null() {
            // SAFETY: `head` is a free block of this class; its first word is the link.
            let next = unsafe { (head as *mut *mut u8).read() };
            self.heads[c].store(next, Ordering::Relaxed);
            self.unlock(c);
            return head;
        }
        self.unlock(c);
        // SAFETY: class layouts have a non-zero size.
        unsafe { System.alloc(class_layout(c)) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        let Some(c) = class(&l) else {
            // SAFETY: blocks outside the classes came from System with this layout.
            return unsafe { System.dealloc(p, l) };
        };
        if !self.try_lock(c) {
            // SAFETY: every block of class `c`, cached or fresh, was
            // allocated from System with `class_layout(c)`.
            return unsafe { System.dealloc(p, class_layout(c)) };
        }
        // SAFETY: `p` is a block of class `c` (same layout as when allocated),
        // at least 16 bytes and 16-aligned, now unused: it may hold the link.
        unsafe { (p as *mut *mut u8).write(self.heads[c].load(Ordering::Relaxed)) };
        self.heads[c].store(p, Ordering::Relaxed);
        self.unlock(c);
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
        static A: Cached = Cached::new();
        let l = Layout::from_size_align(100, 8).unwrap();
        // SAFETY: matched alloc/dealloc/realloc with the same layouts.
        unsafe {
            let p = A.alloc(l);
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
    fn threads_share_it_safely() {
        static A: Cached = Cached::new();
        let hs: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..20_000usize {
                        let l = Layout::from_size_align(16 + (i * 7 + t) % 5000, 8).unwrap();
                        // SAFETY: each block is written, checked and freed with its layout.
                        unsafe {
                            let p = A.alloc(l);
                            p.write_bytes(t as u8, l.size());
                            assert_eq!(*p.add(l.size() - 1), t as u8);
                            A.dealloc(p, l);
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    }
}
