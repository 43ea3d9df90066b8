//! Which file an object is: opened without following a swapped-in
//! symlink, parsed once, and remembered by path for every entry point.

use super::arch::Arch;
use super::Loader;
use crate::elf::{self, Elf};
use crate::root::Root;
use std::sync::Arc;

/// A parsed object, shared between entry points.
#[derive(Debug)]
pub struct Object {
    pub canon: String,
    pub id: (u64, u64),
    pub elf: Elf,
}

pub(super) enum Probe {
    Found(Arc<Object>),
    /// Not there, or of another class or machine: keep searching.
    Skip,
}

impl Loader<'_> {
    /// Seed the object cache with a file parsed during the walk.
    pub fn insert(&self, canon: &str, obj: Option<Arc<Object>>) {
        if let Ok(mut m) = self.objects.lock() {
            m.insert(canon.to_string(), obj);
        }
    }

    /// The parsed object at in-root path `p`, if it is a readable ELF file.
    pub fn object(&self, p: &str) -> Option<Arc<Object>> {
        // Every entry point probes the same paths: remember each answer.
        if let Some(o) = self.probes.lock().ok()?.get(p) {
            return o.clone();
        }
        let o = self.object_uncached(p);
        if let Ok(mut m) = self.probes.lock() {
            m.insert(p.to_string(), o.clone());
        }
        o
    }

    fn object_uncached(&self, p: &str) -> Option<Arc<Object>> {
        let canon = self.root.file(p)?;
        if let Some(o) = self.objects.lock().ok()?.get(&canon) {
            return o.clone();
        }
        let o = read_object(self.root, &canon, self.symbols).map(Arc::new);
        if let Ok(mut m) = self.objects.lock() {
            m.insert(canon, o.clone());
        }
        o
    }

    pub(super) fn probe(&self, path: &str, arch: &Arch) -> Probe {
        match self.object(path) {
            Some(o) if arch.accepts(&o.elf) => Probe::Found(o),
            _ => Probe::Skip,
        }
    }
}

thread_local! {
    static HEAD: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Parse an open file, reusing this thread's head buffer; None when it is
/// not an ELF file (told by the magic in the head, read once either way).
pub fn parse_file(f: &std::fs::File, size: u64, symbols: bool) -> Option<Result<Elf, String>> {
    HEAD.with(|h| {
        let buf = std::mem::take(&mut *h.borrow_mut());
        let src = elf::FileSource::with_buffer(f, size, buf);
        let r = elf::is_elf(src.head()).then(|| elf::parse_from(&src, symbols));
        *h.borrow_mut() = src.into_buffer();
        r
    })
}

/// Open the regular file at canonical in-root path `canon` for reading:
/// never through a symlink in its last component (the path is canonical:
/// one there now was swapped in since), never blocking on a FIFO. Returns
/// the file, its identity (device, inode) and size.
pub fn open_regular(root: &Root, canon: &str) -> Option<(std::fs::File, (u64, u64), u64)> {
    use std::os::unix::fs::MetadataExt;
    let f = dockhand::sys::fs::open_read_nofollow(&root.host_path(canon)).ok()?;
    let m = f.metadata().ok()?;
    m.is_file().then(|| (f, (m.dev(), m.ino()), m.len()))
}

/// Open and parse the file at canonical in-root path `canon`.
pub fn read_object(root: &Root, canon: &str, symbols: bool) -> Option<Object> {
    let (f, id, size) = open_regular(root, canon)?;
    let e = parse_file(&f, size, symbols)?.ok()?;
    Some(Object {
        canon: canon.to_string(),
        id,
        elf: e,
    })
}
