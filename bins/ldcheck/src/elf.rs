//! A defensive ELF reader: just what the loader looks at (class, data,
//! machine, PT_INTERP, the dynamic section, symbol versions and, on request,
//! the dynamic symbol table). Both classes and both byte orders. Every offset
//! and count is checked against the file size and capped, so hostile input
//! gives an error, never a panic or a huge allocation. Reads are bounded
//! `read_at` calls, so a 1 GB libtorch costs a few kilobytes.

use std::borrow::Cow;

pub const EM_386: u16 = 3;
pub const EM_ARM: u16 = 40;
pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;
pub const ET_EXEC: u16 = 2;
pub const ET_DYN: u16 = 3;
pub const DF_1_NODEFLIB: u64 = 0x800;
const VER_FLG_WEAK: u16 = 0x2;

/// Caps on what one file may make us read.
const MAX_PHNUM: usize = 4096;
const MAX_DYN: u64 = 1 << 20;
const MAX_STRTAB: u64 = 64 << 20;
const MAX_VER: u64 = 4 << 20;
const MAX_SYMS: u64 = 2_000_000;
const MAX_ENTRIES: usize = 65536;
/// The longest name (DT_NEEDED, paths, versions) read; longer is an error.
const MAX_NAME: usize = 8192;
/// All the names of one file together (DT_NEEDED, paths, version names):
/// real files need a few KiB; hostile ones must not multiply one long string.
const MAX_NAMES_TOTAL: usize = 1 << 20;
/// The longest symbol name kept (mangled C++ names run to a few KiB).
const MAX_SYMBOL_NAME: usize = 64 << 10;
/// Strings are read in chunks this big (small reads keep the allocator calm).
const CHUNK: u64 = 1024;

/// Random access to the bytes of a file (a slice, or an open file).
pub trait Source {
    fn size(&self) -> u64;
    /// Exactly `len` bytes at `off`, or None when they are not all there.
    fn read(&self, off: u64, len: u64) -> Option<Cow<'_, [u8]>>;
}

impl Source for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read(&self, off: u64, len: u64) -> Option<Cow<'_, [u8]>> {
        let end = off.checked_add(len)?;
        if end > self.len() as u64 {
            return None;
        }
        Some(Cow::Borrowed(&self[off as usize..end as usize]))
    }
}

/// An open file read with `pread`; the first 16 KiB (headers, and for most
/// libraries the dynamic strings and version sections) are read once.
pub struct FileSource<'a> {
    file: &'a std::fs::File,
    size: u64,
    head: Vec<u8>,
}

impl<'a> FileSource<'a> {
    pub fn new(file: &'a std::fs::File, size: u64) -> FileSource<'a> {
        use std::os::unix::fs::FileExt;
        let mut head = vec![0u8; size.min(16 << 10) as usize];
        let n = file.read_at(&mut head, 0).unwrap_or(0);
        head.truncate(n);
        FileSource { file, size, head }
    }

    /// The first bytes of the file, as read.
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// Give the head buffer back for the next file (saves an allocation per file).
    pub fn into_buffer(self) -> Vec<u8> {
        self.head
    }

    /// Like `new`, reusing `buf` for the head.
    pub fn with_buffer(file: &'a std::fs::File, size: u64, mut buf: Vec<u8>) -> FileSource<'a> {
        use std::os::unix::fs::FileExt;
        buf.resize(size.min(16 << 10) as usize, 0);
        let n = file.read_at(&mut buf, 0).unwrap_or(0);
        buf.truncate(n);
        FileSource {
            file,
            size,
            head: buf,
        }
    }
}

impl Source for FileSource<'_> {
    fn size(&self) -> u64 {
        self.size
    }
    fn read(&self, off: u64, len: u64) -> Option<Cow<'_, [u8]>> {
        use std::os::unix::fs::FileExt;
        let end = off.checked_add(len)?;
        if end > self.size || len > (256 << 20) {
            return None;
        }
        if end <= self.head.len() as u64 {
            return Some(Cow::Borrowed(&self.head[off as usize..end as usize]));
        }
        let mut buf = vec![0u8; len as usize];
        self.file.read_exact_at(&mut buf, off).ok()?;
        Some(Cow::Owned(buf))
    }
}

/// One DT_VERNEED entry: versions this object needs from the library `file`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verneed {
    pub file: String,
    /// (version name, weak)
    pub versions: Vec<(String, bool)>,
}

/// Dynamic symbols, read only when asked (`--symbols`).
#[derive(Debug, Clone, Default)]
pub struct Symbols {
    /// Undefined, non-weak: (name, version).
    pub undefined: Vec<(String, Option<String>)>,
    /// Exported: (name, version).
    pub defined: Vec<(String, Option<String>)>,
}

/// What ldcheck needs to know about one ELF file.
#[derive(Debug, Clone, Default)]
pub struct Elf {
    pub class64: bool,
    pub big_endian: bool,
    pub machine: u16,
    pub etype: u16,
    pub interp: Option<String>,
    pub dynamic: bool,
    pub soname: Option<String>,
    pub needed: Vec<String>,
    /// DT_RPATH; None when DT_RUNPATH is present (the loader ignores it then).
    pub rpath: Option<String>,
    pub runpath: Option<String>,
    pub flags_1: u64,
    pub verneed: Vec<Verneed>,
    /// Version names this object defines (DT_VERDEF), base version included.
    pub verdef: Vec<String>,
    pub symbols: Option<Symbols>,
}

/// True when the bytes start with the ELF magic.
pub fn is_elf(head: &[u8]) -> bool {
    head.len() >= 4 && head[..4] == *b"\x7fELF"
}

struct R {
    c64: bool,
    be: bool,
}

impl R {
    fn u16(&self, b: &[u8], o: usize) -> Option<u16> {
        let x: [u8; 2] = b.get(o..o + 2)?.try_into().ok()?;
        Some(if self.be {
            u16::from_be_bytes(x)
        } else {
            u16::from_le_bytes(x)
        })
    }
    fn u32(&self, b: &[u8], o: usize) -> Option<u32> {
        let x: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
        Some(if self.be {
            u32::from_be_bytes(x)
        } else {
            u32::from_le_bytes(x)
        })
    }
    fn u64(&self, b: &[u8], o: usize) -> Option<u64> {
        let x: [u8; 8] = b.get(o..o + 8)?.try_into().ok()?;
        Some(if self.be {
            u64::from_be_bytes(x)
        } else {
            u64::from_le_bytes(x)
        })
    }
    /// A word: 8 bytes in ELF64, 4 in ELF32.
    fn word(&self, b: &[u8], o: usize) -> Option<u64> {
        if self.c64 {
            self.u64(b, o)
        } else {
            self.u32(b, o).map(u64::from)
        }
    }
}

/// The NUL-terminated string at `off`, if it ends within `max` bytes.
fn cstr(tab: &[u8], off: u64, max: usize) -> Option<String> {
    let s = tab.get(usize::try_from(off).ok()?..)?;
    let end = s.iter().take(max + 1).position(|&c| c == 0)?;
    Some(String::from_utf8_lossy(&s[..end]).into_owned())
}

/// Parse an ELF image held in memory (the entry point fuzz targets use).
pub fn parse(data: &[u8]) -> Result<Elf, String> {
    parse_from(data, true)
}

struct Load {
    vaddr: u64,
    off: u64,
    filesz: u64,
}

fn vaddr_to_off(loads: &[Load], va: u64) -> Option<u64> {
    loads
        .iter()
        .find(|l| va >= l.vaddr && va - l.vaddr < l.filesz)
        .and_then(|l| l.off.checked_add(va - l.vaddr))
}

/// Parse from any source; `symbols` also reads the dynamic symbol table.
pub fn parse_from<S: Source + ?Sized>(src: &S, symbols: bool) -> Result<Elf, String> {
    let ident = src.read(0, 16).ok_or("too short for an ELF header")?;
    if !is_elf(&ident) {
        return Err("not an ELF file".into());
    }
    let c64 = match ident[4] {
        1 => false,
        2 => true,
        c => return Err(format!("bad ELF class {c}")),
    };
    let be = match ident[5] {
        1 => false,
        2 => true,
        d => return Err(format!("bad ELF data encoding {d}")),
    };
    let r = R { c64, be };
    let ehsize = if c64 { 64 } else { 52 };
    let eh = src.read(0, ehsize).ok_or("truncated ELF header")?;
    let bad = || "truncated ELF header".to_string();
    let mut elf = Elf {
        class64: c64,
        big_endian: be,
        etype: r.u16(&eh, 16).ok_or_else(bad)?,
        machine: r.u16(&eh, 18).ok_or_else(bad)?,
        ..Elf::default()
    };
    let (phoff, phentsize, phnum, shoff, shentsize, shnum) = if c64 {
        (
            r.u64(&eh, 32).ok_or_else(bad)?,
            r.u16(&eh, 54).ok_or_else(bad)?,
            r.u16(&eh, 56).ok_or_else(bad)?,
            r.u64(&eh, 40).ok_or_else(bad)?,
            r.u16(&eh, 58).ok_or_else(bad)?,
            r.u16(&eh, 60).ok_or_else(bad)?,
        )
    } else {
        (
            u64::from(r.u32(&eh, 28).ok_or_else(bad)?),
            r.u16(&eh, 42).ok_or_else(bad)?,
            r.u16(&eh, 44).ok_or_else(bad)?,
            u64::from(r.u32(&eh, 32).ok_or_else(bad)?),
            r.u16(&eh, 46).ok_or_else(bad)?,
            r.u16(&eh, 48).ok_or_else(bad)?,
        )
    };
    let want_ph = if c64 { 56 } else { 32 };
    if phnum == 0 {
        return Ok(elf);
    }
    if usize::from(phentsize) < want_ph || usize::from(phnum) > MAX_PHNUM {
        return Err("bad program header table".into());
    }
    let ph = src
        .read(phoff, u64::from(phentsize) * u64::from(phnum))
        .ok_or("program headers beyond the end of the file")?;
    let mut loads = Vec::new();
    let mut dyn_seg = None;
    for i in 0..usize::from(phnum) {
        let o = i * usize::from(phentsize);
        let p_type = r.u32(&ph, o).ok_or("bad program header")?;
        let (off, vaddr, filesz) = if c64 {
            (r.u64(&ph, o + 8), r.u64(&ph, o + 16), r.u64(&ph, o + 32))
        } else {
            (
                r.u32(&ph, o + 4).map(u64::from),
                r.u32(&ph, o + 8).map(u64::from),
                r.u32(&ph, o + 16).map(u64::from),
            )
        };
        let (off, vaddr, filesz) = (
            off.ok_or("bad program header")?,
            vaddr.ok_or("bad program header")?,
            filesz.ok_or("bad program header")?,
        );
        match p_type {
            1 => loads.push(Load { vaddr, off, filesz }),
            2 => dyn_seg = Some((off, vaddr, filesz)),
            3 => {
                let b = src
                    .read(off, filesz.min(4096))
                    .ok_or("PT_INTERP beyond the end of the file")?;
                let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                elf.interp = Some(String::from_utf8_lossy(&b[..end]).into_owned());
            }
            _ => {}
        }
    }
    let Some((doff, dvaddr, dsz)) = dyn_seg else {
        return Ok(elf);
    };
    // A separate debug-info file (/usr/lib/debug/...) keeps the program
    // headers, but its .dynamic is SHT_NOBITS: there is nothing to read.
    if dynamic_is_nobits(src, &r, dvaddr, (shoff, shentsize, shnum)) {
        return Ok(elf);
    }
    elf.dynamic = true;
    let dynb = src
        .read(doff, dsz.min(MAX_DYN))
        .ok_or("dynamic section beyond the end of the file")?;
    let dent = if c64 { 16 } else { 8 };
    let (mut strtab, mut strsz, mut symtab, mut versym, mut hash, mut gnu_hash) =
        (None, None, None, None, None, None);
    let (mut verneed, mut verneednum, mut verdef, mut verdefnum) = (None, 0u64, None, 0u64);
    let (mut needed, mut soname, mut rpath, mut runpath) = (Vec::new(), None, None, None);
    for i in 0..dynb.len() / dent {
        let o = i * dent;
        let tag = r.word(&dynb, o).ok_or("bad dynamic entry")?;
        let val = r.word(&dynb, o + dent / 2).ok_or("bad dynamic entry")?;
        match tag {
            0 => break,
            1 if needed.len() < MAX_ENTRIES => needed.push(val),
            4 => hash = Some(val),
            5 => strtab = Some(val),
            6 => symtab = Some(val),
            10 => strsz = Some(val),
            14 => soname = Some(val),
            15 => rpath = Some(val),
            29 => runpath = Some(val),
            0x6ffffffb => elf.flags_1 = val,
            0x6ffffef5 => gnu_hash = Some(val),
            0x6ffffff0 => versym = Some(val),
            0x6ffffffc => verdef = Some(val),
            0x6ffffffd => verdefnum = val,
            0x6ffffffe => verneed = Some(val),
            0x6fffffff => verneednum = val,
            _ => {}
        }
    }
    let (Some(strtab), Some(strsz)) = (strtab, strsz) else {
        return if needed.is_empty() {
            Ok(elf)
        } else {
            Err("DT_NEEDED without a string table".into())
        };
    };
    let stroff = vaddr_to_off(&loads, strtab).ok_or("string table outside the loaded segments")?;
    let strsz = strsz.min(MAX_STRTAB).min(src.size().saturating_sub(stroff));
    // The whole table only when symbols need it; else each string with a small read.
    let whole = if symbols {
        Some(
            src.read(stroff, strsz)
                .ok_or("string table beyond the end of the file")?,
        )
    } else {
        None
    };
    // Otherwise strings come from 1 KiB chunks read on demand and kept (the
    // needed names and version names cluster in a few of them).
    let chunks: std::cell::RefCell<Vec<(u64, Vec<u8>)>> = std::cell::RefCell::new(Vec::new());
    let name_at = |v: u64| -> Result<String, String> {
        let bad = || "bad string table offset".to_string();
        if let Some(w) = &whole {
            return cstr(w, v, MAX_NAME).ok_or_else(bad);
        }
        if v >= strsz {
            return Err(bad());
        }
        let mut bytes = Vec::new();
        let mut at = v;
        // A string may span chunks; names longer than MAX_NAME are refused.
        while bytes.len() <= MAX_NAME {
            let start = at & !(CHUNK - 1);
            if !chunks.borrow().iter().any(|(s, _)| *s == start) {
                let len = strsz.checked_sub(start).ok_or_else(bad)?.min(CHUNK);
                let c = src.read(stroff + start, len).ok_or_else(bad)?.into_owned();
                let mut cs = chunks.borrow_mut();
                if cs.len() >= 64 {
                    cs.remove(0);
                }
                cs.push((start, c));
            }
            let cs = chunks.borrow();
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
    };
    let total = std::cell::Cell::new(0usize);
    let s = |v: u64| -> Result<String, String> {
        let n = name_at(v)?;
        total.set(total.get() + n.len());
        if total.get() > MAX_NAMES_TOTAL {
            return Err(format!("names add up to more than {MAX_NAMES_TOTAL} bytes"));
        }
        Ok(n)
    };
    elf.needed = needed.into_iter().map(s).collect::<Result<_, _>>()?;
    elf.soname = soname.map(s).transpose()?;
    elf.runpath = runpath.map(s).transpose()?;
    // The loader ignores DT_RPATH when DT_RUNPATH is present.
    elf.rpath = if elf.runpath.is_some() {
        None
    } else {
        rpath.map(s).transpose()?
    };

    // (index -> name) of versions, for symbols: verneed's vna_other, verdef's vd_ndx.
    let mut vernames: Vec<(u16, String)> = Vec::new();
    // Version sections are small: read a 2 KiB window, and more only if that was not enough.
    let windowed = |va: u64, what: &str, parse: &mut dyn FnMut(&[u8]) -> Result<(), String>| {
        let off = vaddr_to_off(&loads, va).ok_or_else(|| format!("{what} outside the loaded segments"))?;
        let left = src.size().saturating_sub(off);
        let mut res = Err(format!("bad {what}"));
        for want in [2 << 10, MAX_VER] {
            let b = src
                .read(off, left.min(want))
                .ok_or_else(|| format!("bad {what}"))?;
            res = parse(&b);
            if res.is_ok() || left <= want {
                break;
            }
        }
        res
    };
    if let Some(va) = verneed {
        let mut parse = |b: &[u8]| -> Result<(), String> {
            let (mut list, mut names) = (Vec::new(), Vec::new());
            let mut at = 0usize;
            // Entries may share one chain of auxiliaries: count them all.
            let mut steps = 0usize;
            for _ in 0..verneednum.min(MAX_ENTRIES as u64) {
                let cnt = r.u16(b, at + 2).ok_or("bad verneed entry")?;
                let file = s(u64::from(r.u32(b, at + 4).ok_or("bad verneed entry")?))?;
                let mut aux = at.checked_add(r.u32(b, at + 8).ok_or("bad verneed entry")? as usize);
                let mut vn = Verneed {
                    file,
                    versions: Vec::new(),
                };
                for _ in 0..cnt {
                    steps += 1;
                    if steps > MAX_ENTRIES {
                        return Err(format!("more than {MAX_ENTRIES} DT_VERNEED auxiliary entries"));
                    }
                    let a = aux.ok_or("bad vernaux entry")?;
                    let flags = r.u16(b, a + 4).ok_or("bad vernaux entry")?;
                    let other = r.u16(b, a + 6).ok_or("bad vernaux entry")?;
                    let name = s(u64::from(r.u32(b, a + 8).ok_or("bad vernaux entry")?))?;
                    names.push((other & 0x7fff, name.clone()));
                    vn.versions.push((name, flags & VER_FLG_WEAK != 0));
                    let next = r.u32(b, a + 12).ok_or("bad vernaux entry")?;
                    if next == 0 {
                        break;
                    }
                    aux = a.checked_add(next as usize);
                }
                list.push(vn);
                let next = r.u32(b, at + 12).ok_or("bad verneed entry")?;
                if next == 0 {
                    break;
                }
                at = at.checked_add(next as usize).ok_or("bad verneed entry")?;
            }
            elf.verneed = list;
            vernames.extend(names);
            Ok(())
        };
        windowed(va, "DT_VERNEED", &mut parse)?;
    }
    if let Some(va) = verdef {
        let mut parse = |b: &[u8]| -> Result<(), String> {
            let (mut list, mut names) = (Vec::new(), Vec::new());
            let mut at = 0usize;
            for _ in 0..verdefnum.min(MAX_ENTRIES as u64) {
                let ndx = r.u16(b, at + 4).ok_or("bad verdef entry")?;
                let aux = at.checked_add(r.u32(b, at + 12).ok_or("bad verdef entry")? as usize);
                let name = s(u64::from(
                    r.u32(b, aux.ok_or("bad verdef")?).ok_or("bad verdaux entry")?,
                ))?;
                names.push((ndx & 0x7fff, name.clone()));
                list.push(name);
                let next = r.u32(b, at + 16).ok_or("bad verdef entry")?;
                if next == 0 {
                    break;
                }
                at = at.checked_add(next as usize).ok_or("bad verdef entry")?;
            }
            elf.verdef = list;
            vernames.extend(names);
            Ok(())
        };
        windowed(va, "DT_VERDEF", &mut parse)?;
    }
    if symbols {
        if let Some(symva) = symtab {
            let count = symbol_count(src, &r, &loads, hash, gnu_hash, (shoff, shentsize, shnum))
                .unwrap_or(0)
                .min(MAX_SYMS);
            let strs = whole.as_deref().unwrap_or(&[]);
            elf.symbols = Some(read_symbols(
                src, &r, &loads, symva, versym, count, strs, &vernames,
            )?);
        }
    }
    Ok(elf)
}

fn dynamic_is_nobits<S: Source + ?Sized>(src: &S, r: &R, vaddr: u64, sh: (u64, u16, u16)) -> bool {
    let (shoff, shentsize, shnum) = sh;
    let want = if r.c64 { 64 } else { 40 };
    if shoff == 0 || usize::from(shentsize) < want || shnum == 0 {
        return false;
    }
    let Some(b) = src.read(shoff, u64::from(shentsize) * u64::from(shnum)) else {
        return false;
    };
    (0..usize::from(shnum)).any(|i| {
        let o = i * usize::from(shentsize);
        let addr = if r.c64 {
            r.u64(&b, o + 16)
        } else {
            r.u32(&b, o + 12).map(u64::from)
        };
        r.u32(&b, o + 4) == Some(8) && addr == Some(vaddr) && vaddr != 0
    })
}

/// How many entries the dynamic symbol table has: from the section header
/// (SHT_DYNSYM) when there is one, else DT_HASH's nchain, else by walking
/// DT_GNU_HASH's chains.
fn symbol_count<S: Source + ?Sized>(
    src: &S,
    r: &R,
    loads: &[Load],
    hash: Option<u64>,
    gnu_hash: Option<u64>,
    sh: (u64, u16, u16),
) -> Option<u64> {
    let (shoff, shentsize, shnum) = sh;
    let want = if r.c64 { 64 } else { 40 };
    if shoff != 0 && usize::from(shentsize) >= want && shnum > 0 {
        if let Some(b) = src.read(shoff, u64::from(shentsize) * u64::from(shnum)) {
            for i in 0..usize::from(shnum) {
                let o = i * usize::from(shentsize);
                if r.u32(&b, o + 4) == Some(11) {
                    let (size, ent) = if r.c64 {
                        (r.u64(&b, o + 32)?, r.u64(&b, o + 56)?)
                    } else {
                        (u64::from(r.u32(&b, o + 20)?), u64::from(r.u32(&b, o + 36)?))
                    };
                    return (ent != 0).then(|| size / ent);
                }
            }
        }
    }
    if let Some(h) = hash {
        let b = src.read(vaddr_to_off(loads, h)?, 8)?;
        return Some(u64::from(r.u32(&b, 4)?));
    }
    let off = vaddr_to_off(loads, gnu_hash?)?;
    let hd = src.read(off, 16)?;
    let (nbuckets, symoffset, bloom) = (
        r.u32(&hd, 0)? as u64,
        r.u32(&hd, 4)? as u64,
        r.u32(&hd, 8)? as u64,
    );
    let word = if r.c64 { 8 } else { 4 };
    let boff = off.checked_add(16)?.checked_add(bloom.checked_mul(word)?)?;
    let buckets = src.read(boff, nbuckets.checked_mul(4)?)?;
    let max = (0..nbuckets as usize)
        .filter_map(|i| r.u32(&buckets, i * 4))
        .max()? as u64;
    if max < symoffset {
        return Some(symoffset);
    }
    let chains = boff.checked_add(nbuckets * 4)?;
    for i in max..max.saturating_add(MAX_SYMS) {
        let b = src.read(chains.checked_add((i - symoffset).checked_mul(4)?)?, 4)?;
        if r.u32(&b, 0)? & 1 == 1 {
            return Some(i + 1);
        }
    }
    None
}

#[allow(clippy::too_many_arguments)]
fn read_symbols<S: Source + ?Sized>(
    src: &S,
    r: &R,
    loads: &[Load],
    symva: u64,
    versym: Option<u64>,
    count: u64,
    strs: &[u8],
    vernames: &[(u16, String)],
) -> Result<Symbols, String> {
    let ent = if r.c64 { 24 } else { 16 };
    let off = vaddr_to_off(loads, symva).ok_or("DT_SYMTAB outside the loaded segments")?;
    let count = count.min(src.size().saturating_sub(off) / ent);
    let b = src
        .read(off, count * ent)
        .ok_or("symbol table beyond the end of the file")?;
    let vs = versym
        .and_then(|va| vaddr_to_off(loads, va))
        .and_then(|o| src.read(o, count * 2));
    // Version index (15 bits) -> name, the first definition winning.
    let mut by_index: Vec<Option<&str>> = vec![None; 1 << 15];
    for (n, v) in vernames.iter().rev() {
        by_index[usize::from(*n & 0x7fff)] = Some(v.as_str());
    }
    // Names may share bytes (suffix merging), but not without end.
    let budget = strs.len().saturating_mul(2).saturating_add(MAX_NAMES_TOTAL);
    let mut total = 0usize;
    let mut out = Symbols::default();
    for i in 1..count as usize {
        let o = i * ent as usize;
        let name = r.u32(&b, o).ok_or("bad symbol")?;
        let (info, other, shndx) = if r.c64 {
            (b[o + 4], b[o + 5], r.u16(&b, o + 6).ok_or("bad symbol")?)
        } else {
            (b[o + 12], b[o + 13], r.u16(&b, o + 14).ok_or("bad symbol")?)
        };
        let bind = info >> 4;
        let typ = info & 0xf;
        if name == 0 || bind == 0 || typ == 3 || typ == 4 {
            continue;
        }
        let idx = vs
            .as_ref()
            .and_then(|v| r.u16(v, i * 2))
            .map(|x| x & 0x7fff)
            .unwrap_or(1);
        let ver = (idx > 1)
            .then(|| by_index[usize::from(idx)].map(str::to_string))
            .flatten();
        let Some(n) = cstr(strs, u64::from(name), MAX_SYMBOL_NAME) else {
            continue;
        };
        total += n.len();
        if total > budget {
            return Err("symbol names add up to more than twice the string table".into());
        }
        if shndx == 0 {
            if bind != 2 {
                out.undefined.push((n, ver));
            }
        } else if other & 3 == 0 || other & 3 == 3 {
            out.defined.push((n, ver));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Vec<u8> {
        std::fs::read(std::env::current_exe().unwrap()).unwrap()
    }

    #[test]
    fn reads_the_test_binary() {
        let e = parse(&me()).unwrap();
        assert!(e.class64 || cfg!(target_pointer_width = "32"));
        #[cfg(target_arch = "x86_64")]
        assert_eq!(e.machine, EM_X86_64);
    }

    #[test]
    fn truncations_and_garbage_never_panic() {
        let data = me();
        let n = data.len().min(1 << 16);
        for cut in (0..n).step_by(97) {
            let _ = parse(&data[..cut]);
        }
        // Flip bytes in the header and program headers.
        let mut d = data[..data.len().min(1 << 20)].to_vec();
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            let i = (x as usize >> 8) % 512.min(d.len());
            d[i] = (x >> 3) as u8;
            let _ = parse(&d);
        }
        // Mutations anywhere in a small real library, symbols included.
        if let Ok(lib) = std::fs::read("/lib/x86_64-linux-gnu/libdl.so.2") {
            let mut d = lib.clone();
            for _ in 0..3000 {
                x = x.wrapping_mul(1103515245).wrapping_add(12345);
                let i = (x as usize >> 4) % d.len();
                d[i] = (x >> 7) as u8;
                if (x >> 9) & 7 == 0 {
                    d.copy_from_slice(&lib);
                }
                let _ = parse_from(&d[..], true);
            }
        }
        assert!(parse(b"\x7fELF").is_err());
        assert!(parse(b"nope").is_err());
    }

    #[test]
    fn system_libc_versions() {
        for p in [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
        ] {
            let Ok(d) = std::fs::read(p) else { continue };
            let e = parse(&d).unwrap();
            assert_eq!(e.soname.as_deref(), Some("libc.so.6"));
            assert!(e.verdef.iter().any(|v| v == "GLIBC_2.2.5" || v == "GLIBC_2.17"));
            let f = std::fs::File::open(p).unwrap();
            let s = FileSource::new(&f, d.len() as u64);
            let e2 = parse_from(&s, true).unwrap();
            let syms = e2.symbols.unwrap();
            assert!(syms.defined.iter().any(|(n, v)| n == "printf" && v.is_some()));
        }
    }
}
