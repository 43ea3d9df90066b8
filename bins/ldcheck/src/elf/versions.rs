//! Symbol versions: DT_VERNEED (what this object needs from each library)
//! and DT_VERDEF (what it defines), each with the (index, name) pairs the
//! symbol table's versions refer to.

use super::strings::DynStrings;
use super::{vaddr_to_off, Encoding, Load, Source, Verneed, MAX_ENTRIES, MAX_VER, VER_FLG_WEAK};

/// Version names by index (verneed's vna_other, verdef's vd_ndx).
pub(super) type VersionNames = Vec<(u16, String)>;

/// Version sections are small: parse a 2 KiB window at `va`, and more
/// only if that was not enough.
fn windowed<S: Source + ?Sized, T>(
    src: &S,
    loads: &[Load],
    va: u64,
    what: &str,
    mut parse: impl FnMut(&[u8]) -> Result<T, String>,
) -> Result<T, String> {
    let off = vaddr_to_off(loads, va).ok_or_else(|| format!("{what} outside the loaded segments"))?;
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
}

/// The DT_VERNEED entries at `va` (`num` of them, capped).
pub(super) fn verneed<S: Source + ?Sized>(
    src: &S,
    enc: &Encoding,
    loads: &[Load],
    va: u64,
    num: u64,
    strs: &DynStrings<'_, S>,
) -> Result<(Vec<Verneed>, VersionNames), String> {
    windowed(src, loads, va, "DT_VERNEED", |b| {
        let (mut list, mut names) = (Vec::new(), Vec::new());
        let mut at = 0usize;
        // Entries may share one chain of auxiliaries: count them all.
        let mut steps = 0usize;
        for _ in 0..num.min(MAX_ENTRIES as u64) {
            let cnt = enc.u16(b, at + 2).ok_or("bad verneed entry")?;
            let file = strs.name(u64::from(enc.u32(b, at + 4).ok_or("bad verneed entry")?))?;
            let mut aux = at.checked_add(enc.u32(b, at + 8).ok_or("bad verneed entry")? as usize);
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
                let flags = enc.u16(b, a + 4).ok_or("bad vernaux entry")?;
                let other = enc.u16(b, a + 6).ok_or("bad vernaux entry")?;
                let name = strs.name(u64::from(enc.u32(b, a + 8).ok_or("bad vernaux entry")?))?;
                names.push((other & 0x7fff, name.clone()));
                vn.versions.push((name, flags & VER_FLG_WEAK != 0));
                let next = enc.u32(b, a + 12).ok_or("bad vernaux entry")?;
                if next == 0 {
                    break;
                }
                aux = a.checked_add(next as usize);
            }
            list.push(vn);
            let next = enc.u32(b, at + 12).ok_or("bad verneed entry")?;
            if next == 0 {
                break;
            }
            at = at.checked_add(next as usize).ok_or("bad verneed entry")?;
        }
        Ok((list, names))
    })
}

/// The DT_VERDEF entries at `va` (`num` of them, capped): the version names.
pub(super) fn verdef<S: Source + ?Sized>(
    src: &S,
    enc: &Encoding,
    loads: &[Load],
    va: u64,
    num: u64,
    strs: &DynStrings<'_, S>,
) -> Result<(Vec<String>, VersionNames), String> {
    windowed(src, loads, va, "DT_VERDEF", |b| {
        let (mut list, mut names) = (Vec::new(), Vec::new());
        let mut at = 0usize;
        for _ in 0..num.min(MAX_ENTRIES as u64) {
            let ndx = enc.u16(b, at + 4).ok_or("bad verdef entry")?;
            let aux = at.checked_add(enc.u32(b, at + 12).ok_or("bad verdef entry")? as usize);
            let name = strs.name(u64::from(
                enc.u32(b, aux.ok_or("bad verdef")?).ok_or("bad verdaux entry")?,
            ))?;
            names.push((ndx & 0x7fff, name.clone()));
            list.push(name);
            let next = enc.u32(b, at + 16).ok_or("bad verdef entry")?;
            if next == 0 {
                break;
            }
            at = at.checked_add(next as usize).ok_or("bad verdef entry")?;
        }
        Ok((list, names))
    })
}
