//! The dynamic symbol table (read only for `--symbols`): how many entries
//! it has, and its defined and undefined names with their versions; and
//! the section-header check for a debug file's empty .dynamic.

use super::{
    cstr, vaddr_to_off, Encoding, Load, Source, Symbols, MAX_NAMES_TOTAL, MAX_SYMBOL_NAME, MAX_SYMS,
};

/// True when the section at `vaddr` is SHT_NOBITS (a debug file's .dynamic).
pub(super) fn dynamic_is_nobits<S: Source + ?Sized>(
    src: &S,
    enc: &Encoding,
    vaddr: u64,
    sh: (u64, u16, u16),
) -> bool {
    let (shoff, shentsize, shnum) = sh;
    let want = if enc.c64 { 64 } else { 40 };
    if shoff == 0 || usize::from(shentsize) < want || shnum == 0 {
        return false;
    }
    let Some(b) = src.read(shoff, u64::from(shentsize) * u64::from(shnum)) else {
        return false;
    };
    (0..usize::from(shnum)).any(|i| {
        let o = i * usize::from(shentsize);
        let addr = if enc.c64 {
            enc.u64(&b, o + 16)
        } else {
            enc.u32(&b, o + 12).map(u64::from)
        };
        enc.u32(&b, o + 4) == Some(8) && addr == Some(vaddr) && vaddr != 0
    })
}

/// How many entries the dynamic symbol table has: from the section header
/// (SHT_DYNSYM) when there is one, else DT_HASH's nchain, else by walking
/// DT_GNU_HASH's chains.
pub(super) fn symbol_count<S: Source + ?Sized>(
    src: &S,
    enc: &Encoding,
    loads: &[Load],
    hash: Option<u64>,
    gnu_hash: Option<u64>,
    sh: (u64, u16, u16),
) -> Option<u64> {
    let (shoff, shentsize, shnum) = sh;
    let want = if enc.c64 { 64 } else { 40 };
    if shoff != 0 && usize::from(shentsize) >= want && shnum > 0 {
        if let Some(b) = src.read(shoff, u64::from(shentsize) * u64::from(shnum)) {
            for i in 0..usize::from(shnum) {
                let o = i * usize::from(shentsize);
                if enc.u32(&b, o + 4) == Some(11) {
                    let (size, ent) = if enc.c64 {
                        (enc.u64(&b, o + 32)?, enc.u64(&b, o + 56)?)
                    } else {
                        (u64::from(enc.u32(&b, o + 20)?), u64::from(enc.u32(&b, o + 36)?))
                    };
                    return (ent != 0).then(|| size / ent);
                }
            }
        }
    }
    if let Some(h) = hash {
        let b = src.read(vaddr_to_off(loads, h)?, 8)?;
        return Some(u64::from(enc.u32(&b, 4)?));
    }
    let off = vaddr_to_off(loads, gnu_hash?)?;
    let hd = src.read(off, 16)?;
    let (nbuckets, symoffset, bloom) = (
        enc.u32(&hd, 0)? as u64,
        enc.u32(&hd, 4)? as u64,
        enc.u32(&hd, 8)? as u64,
    );
    let word = if enc.c64 { 8 } else { 4 };
    let boff = off.checked_add(16)?.checked_add(bloom.checked_mul(word)?)?;
    let buckets = src.read(boff, nbuckets.checked_mul(4)?)?;
    let max = (0..nbuckets as usize)
        .filter_map(|i| enc.u32(&buckets, i * 4))
        .max()? as u64;
    if max < symoffset {
        return Some(symoffset);
    }
    let chains = boff.checked_add(nbuckets * 4)?;
    for i in max..max.saturating_add(MAX_SYMS) {
        let b = src.read(chains.checked_add((i - symoffset).checked_mul(4)?)?, 4)?;
        if enc.u32(&b, 0)? & 1 == 1 {
            return Some(i + 1);
        }
    }
    None
}

#[allow(clippy::too_many_arguments)]
pub(super) fn read_symbols<S: Source + ?Sized>(
    src: &S,
    enc: &Encoding,
    loads: &[Load],
    symva: u64,
    versym: Option<u64>,
    count: u64,
    strs: &[u8],
    vernames: &[(u16, String)],
) -> Result<Symbols, String> {
    let ent = if enc.c64 { 24 } else { 16 };
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
        let name = enc.u32(&b, o).ok_or("bad symbol")?;
        let (info, other, shndx) = if enc.c64 {
            (b[o + 4], b[o + 5], enc.u16(&b, o + 6).ok_or("bad symbol")?)
        } else {
            (b[o + 12], b[o + 13], enc.u16(&b, o + 14).ok_or("bad symbol")?)
        };
        let bind = info >> 4;
        let typ = info & 0xf;
        if name == 0 || bind == 0 || typ == 3 || typ == 4 {
            continue;
        }
        let idx = vs
            .as_ref()
            .and_then(|v| enc.u16(v, i * 2))
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
