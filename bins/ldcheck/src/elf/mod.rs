//! A defensive ELF reader: just what the loader looks at (class, data,
//! machine, PT_INTERP, the dynamic section, symbol versions and, on request,
//! the dynamic symbol table). Both classes and both byte orders. Every offset
//! and count is checked against the file size and capped, so hostile input
//! gives an error, never a panic or a huge allocation. Reads are bounded
//! `read_at` calls, so a 1 GB libtorch costs a few kilobytes.

mod strings;
mod symbols;
mod versions;

use std::borrow::Cow;
use strings::DynStrings;

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

/// How the file writes its numbers: its byte order (EI_DATA) and, by its
/// class (EI_CLASS), how wide an address or offset is.
pub(crate) struct Encoding {
    c64: bool,
    be: bool,
}

impl Encoding {
    pub(crate) fn u16(&self, b: &[u8], o: usize) -> Option<u16> {
        let x: [u8; 2] = b.get(o..o + 2)?.try_into().ok()?;
        Some(if self.be {
            u16::from_be_bytes(x)
        } else {
            u16::from_le_bytes(x)
        })
    }
    pub(crate) fn u32(&self, b: &[u8], o: usize) -> Option<u32> {
        let x: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
        Some(if self.be {
            u32::from_be_bytes(x)
        } else {
            u32::from_le_bytes(x)
        })
    }
    pub(crate) fn u64(&self, b: &[u8], o: usize) -> Option<u64> {
        let x: [u8; 8] = b.get(o..o + 8)?.try_into().ok()?;
        Some(if self.be {
            u64::from_be_bytes(x)
        } else {
            u64::from_le_bytes(x)
        })
    }
    /// A word: 8 bytes in ELF64, 4 in ELF32.
    pub(crate) fn word(&self, b: &[u8], o: usize) -> Option<u64> {
        if self.c64 {
            self.u64(b, o)
        } else {
            self.u32(b, o).map(u64::from)
        }
    }
}

/// The NUL-terminated string at `off`, if it ends within `max` bytes.
pub(crate) fn cstr(tab: &[u8], off: u64, max: usize) -> Option<String> {
    let s = tab.get(usize::try_from(off).ok()?..)?;
    let end = s.iter().take(max + 1).position(|&c| c == 0)?;
    Some(String::from_utf8_lossy(&s[..end]).into_owned())
}

/// Parse an ELF image held in memory (the entry point fuzz targets use).
pub fn parse(data: &[u8]) -> Result<Elf, String> {
    parse_from(data, true)
}

pub(crate) struct Load {
    vaddr: u64,
    off: u64,
    filesz: u64,
}

pub(crate) fn vaddr_to_off(loads: &[Load], va: u64) -> Option<u64> {
    loads
        .iter()
        .find(|l| va >= l.vaddr && va - l.vaddr < l.filesz)
        .and_then(|l| l.off.checked_add(va - l.vaddr))
}

/// Parse from any source; `symbols` also reads the dynamic symbol table.
pub fn parse_from<S: Source + ?Sized>(src: &S, symbols: bool) -> Result<Elf, String> {
    let (enc, mut elf, tables) = header(src)?;
    if tables.phnum == 0 {
        return Ok(elf);
    }
    let (loads, dyn_seg) = program_headers(src, &enc, &tables, &mut elf)?;
    let Some((doff, dvaddr, dsz)) = dyn_seg else {
        return Ok(elf);
    };
    // A separate debug-info file (/usr/lib/debug/...) keeps the program
    // headers, but its .dynamic is SHT_NOBITS: there is nothing to read.
    if symbols::dynamic_is_nobits(src, &enc, dvaddr, tables.sections()) {
        return Ok(elf);
    }
    elf.dynamic = true;
    let tags = dynamic_tags(src, &enc, doff, dsz)?;
    elf.flags_1 = tags.flags_1;
    let (Some(strtab), Some(strsz)) = (tags.strtab, tags.strsz) else {
        return if tags.needed.is_empty() {
            Ok(elf)
        } else {
            Err("DT_NEEDED without a string table".into())
        };
    };
    let strs = DynStrings::new(src, &loads, strtab, strsz, symbols)?;
    let s = |v: u64| strs.name(v);
    elf.needed = tags.needed.iter().map(|&v| s(v)).collect::<Result<_, _>>()?;
    elf.soname = tags.soname.map(s).transpose()?;
    elf.runpath = tags.runpath.map(s).transpose()?;
    // The loader ignores DT_RPATH when DT_RUNPATH is present.
    elf.rpath = if elf.runpath.is_some() {
        None
    } else {
        tags.rpath.map(s).transpose()?
    };

    // (index -> name) of versions, for symbols: verneed's vna_other, verdef's vd_ndx.
    let mut vernames: Vec<(u16, String)> = Vec::new();
    if let Some(va) = tags.verneed {
        let (list, names) = versions::verneed(src, &enc, &loads, va, tags.verneednum, &strs)?;
        elf.verneed = list;
        vernames.extend(names);
    }
    if let Some(va) = tags.verdef {
        let (list, names) = versions::verdef(src, &enc, &loads, va, tags.verdefnum, &strs)?;
        elf.verdef = list;
        vernames.extend(names);
    }
    if symbols {
        if let Some(symva) = tags.symtab {
            let count = symbols::symbol_count(src, &enc, &loads, tags.hash, tags.gnu_hash, tables.sections())
                .unwrap_or(0)
                .min(MAX_SYMS);
            elf.symbols = Some(symbols::read_symbols(
                src,
                &enc,
                &loads,
                symva,
                tags.versym,
                count,
                strs.whole(),
                &vernames,
            )?);
        }
    }
    Ok(elf)
}

/// Where the program and section header tables are.
struct Tables {
    phoff: u64,
    phentsize: u16,
    phnum: u16,
    shoff: u64,
    shentsize: u16,
    shnum: u16,
}

impl Tables {
    fn sections(&self) -> (u64, u16, u16) {
        (self.shoff, self.shentsize, self.shnum)
    }
}

/// The ELF header: the encoding, the fields kept, and where the tables are.
fn header<S: Source + ?Sized>(src: &S) -> Result<(Encoding, Elf, Tables), String> {
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
    let enc = Encoding { c64, be };
    let ehsize = if c64 { 64 } else { 52 };
    let eh = src.read(0, ehsize).ok_or("truncated ELF header")?;
    let bad = || "truncated ELF header".to_string();
    let elf = Elf {
        class64: c64,
        big_endian: be,
        etype: enc.u16(&eh, 16).ok_or_else(bad)?,
        machine: enc.u16(&eh, 18).ok_or_else(bad)?,
        ..Elf::default()
    };
    let (phoff, phentsize, phnum, shoff, shentsize, shnum) = if c64 {
        (
            enc.u64(&eh, 32).ok_or_else(bad)?,
            enc.u16(&eh, 54).ok_or_else(bad)?,
            enc.u16(&eh, 56).ok_or_else(bad)?,
            enc.u64(&eh, 40).ok_or_else(bad)?,
            enc.u16(&eh, 58).ok_or_else(bad)?,
            enc.u16(&eh, 60).ok_or_else(bad)?,
        )
    } else {
        (
            u64::from(enc.u32(&eh, 28).ok_or_else(bad)?),
            enc.u16(&eh, 42).ok_or_else(bad)?,
            enc.u16(&eh, 44).ok_or_else(bad)?,
            u64::from(enc.u32(&eh, 32).ok_or_else(bad)?),
            enc.u16(&eh, 46).ok_or_else(bad)?,
            enc.u16(&eh, 48).ok_or_else(bad)?,
        )
    };
    let tables = Tables {
        phoff,
        phentsize,
        phnum,
        shoff,
        shentsize,
        shnum,
    };
    Ok((enc, elf, tables))
}

/// The program headers: PT_INTERP into `elf`; the PT_LOAD segments and
/// PT_DYNAMIC's (offset, address, size) returned.
#[allow(clippy::type_complexity)]
fn program_headers<S: Source + ?Sized>(
    src: &S,
    enc: &Encoding,
    t: &Tables,
    elf: &mut Elf,
) -> Result<(Vec<Load>, Option<(u64, u64, u64)>), String> {
    let (phoff, phentsize, phnum) = (t.phoff, t.phentsize, t.phnum);
    let want_ph = if enc.c64 { 56 } else { 32 };
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
        let p_type = enc.u32(&ph, o).ok_or("bad program header")?;
        let (off, vaddr, filesz) = if enc.c64 {
            (enc.u64(&ph, o + 8), enc.u64(&ph, o + 16), enc.u64(&ph, o + 32))
        } else {
            (
                enc.u32(&ph, o + 4).map(u64::from),
                enc.u32(&ph, o + 8).map(u64::from),
                enc.u32(&ph, o + 16).map(u64::from),
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
    Ok((loads, dyn_seg))
}

/// The dynamic section's entries ldcheck uses (addresses, string offsets, counts).
#[derive(Default)]
struct DynamicTags {
    needed: Vec<u64>,
    soname: Option<u64>,
    rpath: Option<u64>,
    runpath: Option<u64>,
    flags_1: u64,
    strtab: Option<u64>,
    strsz: Option<u64>,
    symtab: Option<u64>,
    versym: Option<u64>,
    hash: Option<u64>,
    gnu_hash: Option<u64>,
    verneed: Option<u64>,
    verneednum: u64,
    verdef: Option<u64>,
    verdefnum: u64,
}

fn dynamic_tags<S: Source + ?Sized>(
    src: &S,
    enc: &Encoding,
    doff: u64,
    dsz: u64,
) -> Result<DynamicTags, String> {
    let dynb = src
        .read(doff, dsz.min(MAX_DYN))
        .ok_or("dynamic section beyond the end of the file")?;
    let dent = if enc.c64 { 16 } else { 8 };
    let mut t = DynamicTags::default();
    for i in 0..dynb.len() / dent {
        let o = i * dent;
        let tag = enc.word(&dynb, o).ok_or("bad dynamic entry")?;
        let val = enc.word(&dynb, o + dent / 2).ok_or("bad dynamic entry")?;
        match tag {
            0 => break,
            1 if t.needed.len() < MAX_ENTRIES => t.needed.push(val),
            4 => t.hash = Some(val),
            5 => t.strtab = Some(val),
            6 => t.symtab = Some(val),
            10 => t.strsz = Some(val),
            14 => t.soname = Some(val),
            15 => t.rpath = Some(val),
            29 => t.runpath = Some(val),
            0x6ffffffb => t.flags_1 = val,
            0x6ffffef5 => t.gnu_hash = Some(val),
            0x6ffffff0 => t.versym = Some(val),
            0x6ffffffc => t.verdef = Some(val),
            0x6ffffffd => t.verdefnum = val,
            0x6ffffffe => t.verneed = Some(val),
            0x6fffffff => t.verneednum = val,
            _ => {}
        }
    }
    Ok(t)
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
