//! HPACK (RFC 7541) for one HTTP/2 connection of the gRPC check: a decoder
//! with the static table, a dynamic table bounded by the size we advertise,
//! and Huffman decoding; and an encoder that writes every field as a literal
//! without indexing and without Huffman, so the peer's table never matters.
//!
//! Written from the RFC; the Huffman code is canonical, so it is kept as the
//! code length of each symbol (Appendix B) and the codes are derived.

use std::collections::VecDeque;

/// Appendix A: the static table, indexes 1 to 61.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Appendix B: the length in bits of the Huffman code of each symbol, 0-255
/// then EOS (256).
#[rustfmt::skip]
const CODE_LEN: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,         // 32
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,              // 48
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,                // 64
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,             // 80
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,                // 96
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,            // 112
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240
    30,                                                             // EOS
];

const EOS: u16 = 256;
const MAX_CODE_LEN: usize = 30;

/// The canonical decoding tables: for each code length, its first code, and
/// where its symbols start in `syms` (symbols sorted by length, then value).
struct Canon {
    first: [u32; MAX_CODE_LEN + 1],
    count: [u16; MAX_CODE_LEN + 1],
    start: [u16; MAX_CODE_LEN + 1],
    syms: [u16; 257],
}

const fn canon() -> Canon {
    let mut c = Canon {
        first: [0; MAX_CODE_LEN + 1],
        count: [0; MAX_CODE_LEN + 1],
        start: [0; MAX_CODE_LEN + 1],
        syms: [0; 257],
    };
    let mut i = 0;
    while i < 257 {
        c.count[CODE_LEN[i] as usize] += 1;
        i += 1;
    }
    let mut code = 0u32;
    let mut at = 0u16;
    let mut len = 1;
    while len <= MAX_CODE_LEN {
        c.first[len] = code;
        c.start[len] = at;
        code = (code + c.count[len] as u32) << 1;
        at += c.count[len];
        len += 1;
    }
    let mut next = c.start;
    let mut s = 0;
    while s < 257 {
        let l = CODE_LEN[s] as usize;
        c.syms[next[l] as usize] = s as u16;
        next[l] += 1;
        s += 1;
    }
    c
}

const CANON: Canon = canon();

/// The code of `sym` (for tests: the codes are derived, not listed).
#[cfg(test)]
fn code_of(sym: u16) -> u32 {
    let l = CODE_LEN[sym as usize] as usize;
    let pos = CANON.syms[CANON.start[l] as usize..]
        .iter()
        .position(|&s| s == sym)
        .unwrap();
    CANON.first[l] + pos as u32
}

/// Decode a Huffman-coded string (RFC 7541 5.2), appending to `out`, which
/// may not grow past `limit` bytes. Padding must be at most 7 bits, all ones;
/// an EOS symbol is an error.
pub fn huffman_decode(input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), String> {
    let mut code = 0u32;
    let mut len = 0usize;
    for &byte in input {
        for bit in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> bit) & 1);
            len += 1;
            let (first, count) = (CANON.first[len], u32::from(CANON.count[len]));
            if code >= first && code - first < count {
                let sym = CANON.syms[(u32::from(CANON.start[len]) + code - first) as usize];
                if sym == EOS {
                    return Err("HPACK: EOS in a Huffman string".into());
                }
                if out.len() >= limit {
                    return Err("HPACK: header list too large".into());
                }
                out.push(sym as u8);
                code = 0;
                len = 0;
            } else if len == MAX_CODE_LEN {
                // Every 30-bit pattern that is no code is past EOS's range.
                return Err("HPACK: bad Huffman code".into());
            }
        }
    }
    // What is left must be the start of EOS (all ones) and shorter than a byte.
    if len > 7 || code != (1u32 << len) - 1 {
        return Err("HPACK: bad Huffman padding".into());
    }
    Ok(())
}

/// A header list as decoded: names and values as bytes.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// The decoder of one connection: its dynamic table persists from one header
/// block to the next.
#[derive(Debug)]
pub struct Decoder {
    table: VecDeque<(Vec<u8>, Vec<u8>)>,
    /// Bytes the table holds, as RFC 7541 4.1 counts them (32 per entry more).
    size: usize,
    /// The size the encoder chose (at most `limit`).
    max: usize,
    /// The most the encoder may choose: our SETTINGS_HEADER_TABLE_SIZE.
    limit: usize,
}

fn entry_size(n: &[u8], v: &[u8]) -> usize {
    n.len() + v.len() + 32
}

impl Decoder {
    pub fn new(limit: usize) -> Decoder {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max: limit,
            limit,
        }
    }

    /// The dynamic table's entries, newest first.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.table.iter().map(|(n, v)| (&n[..], &v[..]))
    }

    /// The dynamic table's size as RFC 7541 4.1 counts it.
    pub fn size(&self) -> usize {
        self.size
    }

    fn evict_to(&mut self, max: usize) {
        while self.size > max {
            match self.table.pop_back() {
                Some((n, v)) => self.size -= entry_size(&n, &v),
                None => break,
            }
        }
    }

    fn insert(&mut self, n: Vec<u8>, v: Vec<u8>) {
        let s = entry_size(&n, &v);
        if s > self.max {
            // An entry larger than the table empties it (4.4).
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max - s);
        self.size += s;
        self.table.push_front((n, v));
    }

    fn get(&self, i: usize) -> Result<(&[u8], &[u8]), String> {
        match i {
            0 => Err("HPACK: index 0".into()),
            1..=61 => {
                let (n, v) = STATIC[i - 1];
                Ok((n.as_bytes(), v.as_bytes()))
            }
            _ => self
                .table
                .get(i - 62)
                .map(|(n, v)| (&n[..], &v[..]))
                .ok_or_else(|| format!("HPACK: index {i} is not in the table")),
        }
    }

    /// Decode one complete header block into `out`. The list may not exceed
    /// `max_list` bytes as SETTINGS_MAX_HEADER_LIST_SIZE counts them.
    pub fn decode(&mut self, block: &[u8], out: &mut Fields, max_list: usize) -> Result<(), String> {
        let mut p = 0;
        let mut list = 0usize;
        let mut fields_seen = false;
        while p < block.len() {
            let b = block[p];
            if b & 0x80 != 0 {
                let i = integer(block, &mut p, 7)?;
                let (n, v) = self.get(i)?;
                let (n, v) = (n.to_vec(), v.to_vec());
                push(out, &mut list, max_list, n, v)?;
                fields_seen = true;
            } else if b & 0xe0 == 0x20 {
                // Dynamic table size update: only before the block's first field.
                let s = integer(block, &mut p, 5)?;
                if fields_seen {
                    return Err("HPACK: table size update after a header field".into());
                }
                if s > self.limit {
                    return Err(format!(
                        "HPACK: table size update to {s} is above our limit of {}",
                        self.limit
                    ));
                }
                self.max = s;
                self.evict_to(s);
            } else {
                let (prefix, index) = if b & 0xc0 == 0x40 { (6, true) } else { (4, false) };
                let i = integer(block, &mut p, prefix)?;
                let room = max_list.saturating_sub(list);
                let name = if i == 0 {
                    string(block, &mut p, room)?
                } else {
                    self.get(i)?.0.to_vec()
                };
                let value = string(block, &mut p, room.saturating_sub(name.len()))?;
                if index {
                    self.insert(name.clone(), value.clone());
                }
                push(out, &mut list, max_list, name, value)?;
                fields_seen = true;
            }
        }
        Ok(())
    }
}

fn push(out: &mut Fields, list: &mut usize, max: usize, n: Vec<u8>, v: Vec<u8>) -> Result<(), String> {
    *list += entry_size(&n, &v);
    if *list > max {
        return Err(format!("HPACK: header list larger than {max} bytes"));
    }
    out.push((n, v));
    Ok(())
}

/// An integer with an `n`-bit prefix (5.1), at `*p`; at most 2^28 or so.
fn integer(b: &[u8], p: &mut usize, n: u32) -> Result<usize, String> {
    let mask = (1u8 << n) - 1;
    let first = b.get(*p).ok_or("HPACK: truncated integer")? & mask;
    *p += 1;
    if first < mask {
        return Ok(first as usize);
    }
    let mut v = mask as usize;
    let mut shift = 0;
    loop {
        let c = *b.get(*p).ok_or("HPACK: truncated integer")?;
        *p += 1;
        if shift > 21 {
            return Err("HPACK: integer too large".into());
        }
        v += ((c & 0x7f) as usize) << shift;
        shift += 7;
        if c & 0x80 == 0 {
            return Ok(v);
        }
    }
}

/// A string literal (5.2) at `*p`, at most `room` bytes once decoded.
fn string(b: &[u8], p: &mut usize, room: usize) -> Result<Vec<u8>, String> {
    let huff = b.get(*p).ok_or("HPACK: truncated string")? & 0x80 != 0;
    let len = integer(b, p, 7)?;
    let raw = b
        .get(*p..)
        .and_then(|r| r.get(..len))
        .ok_or("HPACK: truncated string")?;
    *p += len;
    if huff {
        let mut out = Vec::with_capacity(len.min(room));
        huffman_decode(raw, &mut out, room)?;
        Ok(out)
    } else if len > room {
        Err("HPACK: header list too large".into())
    } else {
        Ok(raw.to_vec())
    }
}

fn put_integer(out: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
    let mask = (1usize << n) - 1;
    if v < mask {
        out.push(first | v as u8);
        return;
    }
    out.push(first | mask as u8);
    v -= mask;
    while v >= 0x80 {
        out.push((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Append a field as a literal without indexing, with a literal name, no
/// Huffman (6.2.2): the encoder keeps no state.
pub fn encode_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0);
    put_integer(out, 0, 7, name.len());
    out.extend_from_slice(name);
    put_integer(out, 0, 7, value.len());
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests;
