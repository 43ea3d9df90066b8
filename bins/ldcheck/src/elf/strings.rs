//! The dynamic string table: names read by offset, either from the whole
//! table (when symbols need it) or from small chunks read on demand, with
//! one budget for all the names a file may make ldcheck keep.

use super::{cstr, vaddr_to_off, Load, Source, CHUNK, MAX_NAME, MAX_NAMES_TOTAL, MAX_STRTAB};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};

pub(super) struct DynStrings<'s, S: Source + ?Sized> {
    src: &'s S,
    /// File offset and size of the table (capped at the file's end).
    off: u64,
    size: u64,
    /// The whole table, when read whole.
    whole: Option<Cow<'s, [u8]>>,
    /// Otherwise strings come from 1 KiB chunks read on demand and kept (the
    /// needed names and version names cluster in a few of them).
    chunks: RefCell<Vec<(u64, Vec<u8>)>>,
    /// Bytes of names handed out so far.
    total: Cell<usize>,
}

impl<'s, S: Source + ?Sized> DynStrings<'s, S> {
    /// The table at address `strtab`, `strsz` bytes; read whole when `whole`.
    pub(super) fn new(
        src: &'s S,
        loads: &[Load],
        strtab: u64,
        strsz: u64,
        whole: bool,
    ) -> Result<Self, String> {
        let off = vaddr_to_off(loads, strtab).ok_or("string table outside the loaded segments")?;
        let size = strsz.min(MAX_STRTAB).min(src.size().saturating_sub(off));
        // The whole table only when symbols need it; else each string with a small read.
        let whole = if whole {
            Some(
                src.read(off, size)
                    .ok_or("string table beyond the end of the file")?,
            )
        } else {
            None
        };
        Ok(DynStrings {
            src,
            off,
            size,
            whole,
            chunks: RefCell::new(Vec::new()),
            total: Cell::new(0),
        })
    }

    /// The whole table (empty when it was not read whole).
    pub(super) fn whole(&self) -> &[u8] {
        self.whole.as_deref().unwrap_or(&[])
    }

    /// The name at offset `v`, counted against the file's names budget.
    pub(super) fn name(&self, v: u64) -> Result<String, String> {
        let n = self.name_at(v)?;
        self.total.set(self.total.get() + n.len());
        if self.total.get() > MAX_NAMES_TOTAL {
            return Err(format!("names add up to more than {MAX_NAMES_TOTAL} bytes"));
        }
        Ok(n)
    }

    fn name_at(&self, v: u64) -> Result<String, String> {
        let bad = || "bad string table offset".to_string();
        if let Some(w) = &self.whole {
            return cstr(w, v, MAX_NAME).ok_or_else(bad);
        }
        if v >= self.size {
            return Err(bad());
        }
        let mut bytes = Vec::new();
        let mut at = v;
        // A string may span chunks; names longer than MAX_NAME are refused.
        while bytes.len() <= MAX_NAME {
            let start = at & !(CHUNK - 1);
            if !self.chunks.borrow().iter().any(|(s, _)| *s == start) {
                let len = self.size.checked_sub(start).ok_or_else(bad)?.min(CHUNK);
                let c = self.src.read(self.off + start, len).ok_or_else(bad)?.into_owned();
                let mut cs = self.chunks.borrow_mut();
                if cs.len() >= 64 {
                    cs.remove(0);
                }
                cs.push((start, c));
            }
            let cs = self.chunks.borrow();
            let c = &cs.iter().find(|(s, _)| *s == start).ok_or_else(bad)?.1;
            let piece = c.get((at - start) as usize..).ok_or_else(bad)?;
            if let Some(end) = piece.iter().position(|&b| b == 0) {
                bytes.extend_from_slice(&piece[..end]);
                return Ok(String::from_utf8_lossy(&bytes).into_owned());
            }
            if piece.is_empty() {
                return Err(bad());
            }
            bytes.extend_from_slice(piece);
            at = start + c.len() as u64;
        }
        Err(bad())
    }
}
