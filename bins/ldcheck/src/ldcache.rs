//! /etc/ld.so.cache as glibc 2.36 reads it: the new "glibc-ld.so.cache1.1"
//! format (either alone or after an old "ld.so-1.7.0" table), its extension
//! with the glibc-hwcaps subdirectory names, and the lookup rule of
//! dl-cache.c's `search_cache` (hwcaps entries first, best priority wins).

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const EXT_MAGIC: u32 = 0xeaa4_2174;
const MAX_ENTRIES: u32 = 1 << 20;
/// The largest cache read (real ones are well under 1 MiB); a larger file
/// counts as no cache.
pub const MAX_SIZE: u64 = 16 << 20;
/// The longest key or path scanned for.
const MAX_STR: usize = 4096;

/// Flags value ldconfig gives 64-bit x86_64 libraries (FLAG_ELF_LIBC6 | FLAG_X8664_LIB64).
pub const FLAGS_X86_64: i32 = 0x0303;
/// FLAG_ELF_LIBC6 | FLAG_AARCH64_LIB64.
pub const FLAGS_AARCH64: i32 = 0x0a03;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub flags: i32,
    pub key: String,
    pub value: String,
    pub hwcap: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Cache {
    pub entries: Vec<Entry>,
    /// The glibc-hwcaps subdirectory names of the extension section.
    pub hwcaps: Vec<String>,
    /// Positions of each key's entries, in cache order: built on the first
    /// lookup, so a tree with thousands of DT_NEEDED names does not scan the
    /// whole cache for each.
    index: std::sync::OnceLock<dockhand::hash::FastMap<String, Vec<u32>>>,
}

fn rd<const N: usize>(b: &[u8], o: usize) -> Option<[u8; N]> {
    b.get(o..o.checked_add(N)?)?.try_into().ok()
}

/// The string at `o`, charging the bytes scanned to `left`: entries may
/// share strings (a key is the tail of its path), but a hostile cache must
/// not scan or copy one long string a million times.
fn cstr(b: &[u8], o: usize, left: &mut usize) -> Result<Option<String>, String> {
    let Some(s) = b.get(o..) else { return Ok(None) };
    let s = &s[..s.len().min(MAX_STR + 1)];
    let end = s.iter().position(|&c| c == 0);
    let cost = end.unwrap_or(s.len());
    *left = left
        .checked_sub(cost)
        .ok_or("ld.so.cache strings add up to more than the file could hold")?;
    Ok(end.map(|e| String::from_utf8_lossy(&s[..e]).into_owned()))
}

/// What all the strings of a cache of `len` bytes may add up to.
fn budget(len: usize) -> usize {
    len.saturating_mul(4).saturating_add(1 << 20)
}

/// Parse the bytes of an ld.so.cache file.
pub fn parse(data: &[u8]) -> Result<Cache, String> {
    if data.starts_with(NEW_MAGIC) {
        return parse_new(data);
    }
    if data.starts_with(OLD_MAGIC) {
        // struct cache_file { char magic[11]; uint32 nlibs; file_entry libs[]; }
        let n = u32::from_ne_bytes(rd(data, 12).ok_or("truncated ld.so.cache")?);
        if n > MAX_ENTRIES {
            return Err("bad ld.so.cache entry count".into());
        }
        let end = 16usize + n as usize * 12;
        if end > data.len() {
            return Err("truncated ld.so.cache".into());
        }
        let newoff = (end + 7) & !7;
        if data.get(newoff..).is_some_and(|d| d.starts_with(NEW_MAGIC)) {
            return parse_new(&data[newoff..]);
        }
        // Old format only: glibc 2.36 still reads it.
        let strings = &data[end..];
        let mut left = budget(data.len());
        let mut c = Cache::default();
        for i in 0..n as usize {
            let o = 16 + i * 12;
            let flags = i32::from_ne_bytes(rd(data, o).ok_or("truncated")?);
            let k = u32::from_ne_bytes(rd(data, o + 4).ok_or("truncated")?) as usize;
            let v = u32::from_ne_bytes(rd(data, o + 8).ok_or("truncated")?) as usize;
            if let (Some(key), Some(value)) = (cstr(strings, k, &mut left)?, cstr(strings, v, &mut left)?) {
                c.entries.push(Entry {
                    flags,
                    key,
                    value,
                    hwcap: 0,
                });
            }
        }
        return Ok(c);
    }
    Err("not an ld.so.cache file".into())
}

fn parse_new(d: &[u8]) -> Result<Cache, String> {
    // magic[20], nlibs u32, len_strings u32, flags u8, pad[3], extension_offset u32, unused[3] u32
    let be = match d.get(28).copied().ok_or("truncated ld.so.cache")? & 3 {
        3 => true,
        2 => false,
        _ => cfg!(target_endian = "big"),
    };
    let u32at = |o: usize| -> Option<u32> {
        rd::<4>(d, o).map(|b| {
            if be {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        })
    };
    let u64at = |o: usize| -> Option<u64> {
        rd::<8>(d, o).map(|b| {
            if be {
                u64::from_be_bytes(b)
            } else {
                u64::from_le_bytes(b)
            }
        })
    };
    let n = u32at(20).ok_or("truncated ld.so.cache")?;
    if n > MAX_ENTRIES || 48 + n as usize * 24 > d.len() {
        return Err("bad ld.so.cache entry count".into());
    }
    let mut left = budget(d.len());
    let mut c = Cache::default();
    for i in 0..n as usize {
        let o = 48 + i * 24;
        let flags = u32at(o).ok_or("truncated")? as i32;
        let k = u32at(o + 4).ok_or("truncated")? as usize;
        let v = u32at(o + 8).ok_or("truncated")? as usize;
        let hwcap = u64at(o + 16).ok_or("truncated")?;
        if let (Some(key), Some(value)) = (cstr(d, k, &mut left)?, cstr(d, v, &mut left)?) {
            c.entries.push(Entry {
                flags,
                key,
                value,
                hwcap,
            });
        }
    }
    let ext = u32at(32).unwrap_or(0) as usize;
    if ext != 0 && ext & 3 == 0 && u32at(ext) == Some(EXT_MAGIC) {
        let count = u32at(ext + 4).unwrap_or(0).min(64) as usize;
        for s in 0..count {
            let so = ext + 8 + s * 16;
            let (Some(tag), Some(off), Some(size)) = (u32at(so), u32at(so + 8), u32at(so + 12)) else {
                break;
            };
            // Tag 1: glibc-hwcaps, an array of string offsets.
            if tag == 1 && off & 3 == 0 {
                for j in 0..(size as usize / 4).min(4096) {
                    let Some(so) = u32at(off as usize + j * 4) else {
                        break;
                    };
                    match cstr(d, so as usize, &mut left)? {
                        Some(s) => c.hwcaps.push(s),
                        None => break,
                    }
                }
            }
        }
    }
    Ok(c)
}

impl Entry {
    /// The glibc-hwcaps subdirectory index when this is an extension entry.
    fn hwcaps_index(&self) -> Option<usize> {
        // DL_CACHE_HWCAP_EXTENSION is bit 62; bits 32..41 hold an x86 ISA level.
        ((self.hwcap >> 32) & !0x3ff == 1 << 30).then_some((self.hwcap & 0xffff_ffff) as usize)
    }
}

impl Cache {
    /// The path the loader takes from the cache for `name`, for objects with
    /// these `flags`; `supported` lists the glibc-hwcaps subdirectories the
    /// CPU supports, best first.
    pub fn lookup(&self, name: &str, flags: i32, supported: &[&str]) -> Option<&str> {
        let mut best: Option<(&str, usize)> = None;
        let index = self.index.get_or_init(|| {
            let mut m: dockhand::hash::FastMap<String, Vec<u32>> = dockhand::hash::FastMap::default();
            for (i, e) in self.entries.iter().enumerate() {
                m.entry(e.key.clone()).or_default().push(i as u32);
            }
            m
        });
        let at = index.get(name).map(Vec::as_slice).unwrap_or(&[]);
        for e in at
            .iter()
            .map(|&i| &self.entries[i as usize])
            .filter(|e| e.flags == flags)
        {
            match e.hwcaps_index() {
                Some(i) => {
                    let Some(sub) = self.hwcaps.get(i) else { continue };
                    let Some(prio) = supported.iter().position(|s| s == sub) else {
                        continue;
                    };
                    if !matches!(best, Some((_, p)) if prio >= p) {
                        best = Some((&e.value, prio));
                    }
                }
                None => {
                    if best.is_some() {
                        break;
                    }
                    // Legacy hwcap bits (other than the platform/TLS ones) exclude an entry.
                    if e.hwcap & 0x0000_0000_ffff_ffff != 0 {
                        continue;
                    }
                    return Some(&e.value);
                }
            }
        }
        best.map(|(v, _)| v)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Build a new-format cache: (flags, key, value, hwcaps subdir index).
    pub(crate) fn build(entries: &[(i32, &str, &str, Option<u32>)], hwcaps: &[&str]) -> Vec<u8> {
        let mut strings = Vec::new();
        let base = 48 + entries.len() * 24;
        let mut add = |s: &str| {
            let o = base + strings.len();
            strings.extend_from_slice(s.as_bytes());
            strings.push(0);
            o as u32
        };
        let mut ents = Vec::new();
        for (f, k, v, h) in entries {
            let hw = h.map(|i| (1u64 << 62) | u64::from(i)).unwrap_or(0);
            ents.push((*f, add(k), add(v), hw));
        }
        let hwoffs: Vec<u32> = hwcaps.iter().map(|h| add(h)).collect();
        let mut d = Vec::new();
        d.extend_from_slice(NEW_MAGIC);
        d.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        d.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        d.extend_from_slice(&[2, 0, 0, 0]);
        let ext_at = (base + strings.len() + 3) & !3;
        d.extend_from_slice(&(ext_at as u32).to_le_bytes());
        d.extend_from_slice(&[0; 12]);
        for (f, k, v, hw) in ents {
            d.extend_from_slice(&f.to_le_bytes());
            d.extend_from_slice(&k.to_le_bytes());
            d.extend_from_slice(&v.to_le_bytes());
            d.extend_from_slice(&0u32.to_le_bytes());
            d.extend_from_slice(&hw.to_le_bytes());
        }
        d.extend_from_slice(&strings);
        d.resize(ext_at, 0);
        let arr_at = ext_at + 8 + 16;
        d.extend_from_slice(&EXT_MAGIC.to_le_bytes());
        d.extend_from_slice(&1u32.to_le_bytes());
        d.extend_from_slice(&1u32.to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend_from_slice(&(arr_at as u32).to_le_bytes());
        d.extend_from_slice(&((hwoffs.len() * 4) as u32).to_le_bytes());
        for o in hwoffs {
            d.extend_from_slice(&o.to_le_bytes());
        }
        d
    }

    #[test]
    fn hwcaps_entries_win_by_priority() {
        let d = build(
            &[
                (
                    FLAGS_X86_64,
                    "libz.so.1",
                    "/l/glibc-hwcaps/x86-64-v2/libz.so.1",
                    Some(1),
                ),
                (
                    FLAGS_X86_64,
                    "libz.so.1",
                    "/l/glibc-hwcaps/x86-64-v3/libz.so.1",
                    Some(0),
                ),
                (FLAGS_X86_64, "libz.so.1", "/l/libz.so.1", None),
                (FLAGS_AARCH64, "liba.so.1", "/a/liba.so.1", None),
            ],
            &["x86-64-v3", "x86-64-v2"],
        );
        let c = parse(&d).unwrap();
        assert_eq!(c.hwcaps, ["x86-64-v3", "x86-64-v2"]);
        let v = |sup: &[&str]| c.lookup("libz.so.1", FLAGS_X86_64, sup).map(str::to_string);
        assert_eq!(
            v(&["x86-64-v3", "x86-64-v2"]).unwrap(),
            "/l/glibc-hwcaps/x86-64-v3/libz.so.1"
        );
        assert_eq!(v(&["x86-64-v2"]).unwrap(), "/l/glibc-hwcaps/x86-64-v2/libz.so.1");
        assert_eq!(v(&[]).unwrap(), "/l/libz.so.1");
        assert_eq!(c.lookup("liba.so.1", FLAGS_X86_64, &[]), None);
        assert_eq!(c.lookup("liba.so.1", FLAGS_AARCH64, &[]), Some("/a/liba.so.1"));
    }

    #[test]
    fn old_format_prefix_is_skipped() {
        let new = build(&[(FLAGS_X86_64, "libq.so.2", "/q/libq.so.2", None)], &[]);
        let mut d = OLD_MAGIC.to_vec();
        d.push(0);
        d.extend_from_slice(&1u32.to_ne_bytes());
        d.extend_from_slice(&FLAGS_X86_64.to_ne_bytes());
        d.extend_from_slice(&0u32.to_ne_bytes());
        d.extend_from_slice(&0u32.to_ne_bytes());
        d.resize(32, 0);
        d.extend_from_slice(&new);
        let c = parse(&d).unwrap();
        assert_eq!(c.lookup("libq.so.2", FLAGS_X86_64, &[]), Some("/q/libq.so.2"));
    }

    #[test]
    fn one_long_string_shared_by_every_entry_is_refused() {
        // 100 000 entries whose key and path are the same 4 000-byte string.
        let long = "l".repeat(4000);
        let ents: Vec<(i32, &str, &str, Option<u32>)> = vec![(FLAGS_X86_64, "k", "v", None); 100_000];
        let mut d = build(&ents, &[]);
        let at = 48 + ents.len() * 24;
        d.splice(at..at + 4, long.bytes().chain([0]));
        for i in 0..ents.len() {
            let o = 48 + i * 24;
            d[o + 4..o + 8].copy_from_slice(&(at as u32).to_le_bytes());
            d[o + 8..o + 12].copy_from_slice(&(at as u32).to_le_bytes());
        }
        let e = parse(&d).unwrap_err();
        assert!(e.contains("add up"), "{e}");
        // A real-sized share (keys are the tails of their paths) is fine.
        let c = parse(&build(
            &[(FLAGS_X86_64, "libz.so.1", "/l/libz.so.1", None); 1000],
            &[],
        ))
        .unwrap();
        assert_eq!(c.entries.len(), 1000);
    }

    #[test]
    fn host_cache_parses_and_garbage_does_not_panic() {
        if let Ok(d) = std::fs::read("/etc/ld.so.cache") {
            let c = parse(&d).unwrap();
            assert!(c.entries.iter().any(|e| e.key == "libc.so.6"));
            for cut in (0..d.len().min(8192)).step_by(13) {
                let _ = parse(&d[..cut]);
            }
        }
        assert!(parse(b"garbage").is_err());
        let mut d = build(&[(FLAGS_X86_64, "a", "b", Some(7))], &["x"]);
        for i in 20..d.len() {
            d[i] ^= 0xff;
            let _ = parse(&d);
        }
    }
}
