//! The examples of RFC 7541 Appendix C, and hostile header blocks.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn decode(d: &mut Decoder, block: &str) -> Vec<(String, String)> {
    let mut out = Fields::new();
    d.decode(&hex(block), &mut out, 1 << 20).unwrap();
    out.into_iter()
        .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

fn table(d: &Decoder) -> (Vec<(String, String)>, usize) {
    let size = d.size();
    let t = d
        .entries()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into(),
                String::from_utf8_lossy(v).into(),
            )
        })
        .collect();
    (t, size)
}

#[test]
fn huffman_code_is_complete_and_matches_appendix_b() {
    // Kraft: a complete prefix code sums to exactly 1 (in units of 2^-30).
    let sum: u64 = CODE_LEN.iter().map(|&l| 1u64 << (30 - l)).sum();
    assert_eq!(sum, 1 << 30);
    // Spot checks of derived codes against the listed ones.
    for (sym, code) in [
        (0u16, 0x1ff8u32),
        (1, 0x7fffd8),
        (9, 0xffffea),
        (10, 0x3ffffffc),
        (b' ' as u16, 0x14),
        (b'0' as u16, 0x0),
        (b'a' as u16, 0x3),
        (b'z' as u16, 0x7b),
        (b'\\' as u16, 0x7fff0),
        (127, 0xffffffc),
        (203, 0x7ffffde),
        (220, 0xffffffd),
        (255, 0x3ffffee),
        (256, 0x3fffffff),
    ] {
        assert_eq!(code_of(sym), code, "symbol {sym}");
    }
}

#[test]
fn c2_literal_fields() {
    let mut d = Decoder::new(4096);
    // C.2.1: literal with indexing.
    assert_eq!(
        decode(
            &mut d,
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"
        ),
        pairs(&[("custom-key", "custom-header")])
    );
    assert_eq!(table(&d), (pairs(&[("custom-key", "custom-header")]), 55));
    // C.2.2: without indexing.
    let mut d = Decoder::new(4096);
    assert_eq!(
        decode(&mut d, "040c 2f73 616d 706c 652f 7061 7468"),
        pairs(&[(":path", "/sample/path")])
    );
    assert_eq!(table(&d).1, 0);
    // C.2.3: never indexed.
    assert_eq!(
        decode(&mut d, "1008 7061 7373 776f 7264 0673 6563 7265 74"),
        pairs(&[("password", "secret")])
    );
    assert_eq!(table(&d).1, 0);
    // C.2.4: indexed.
    assert_eq!(decode(&mut d, "82"), pairs(&[(":method", "GET")]));
}

fn requests(d: &mut Decoder, blocks: [&str; 3]) {
    let first = [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
    ];
    assert_eq!(decode(d, blocks[0]), pairs(&first));
    assert_eq!(table(d), (pairs(&[(":authority", "www.example.com")]), 57));
    let mut second = first.to_vec();
    second.push(("cache-control", "no-cache"));
    assert_eq!(decode(d, blocks[1]), pairs(&second));
    assert_eq!(
        table(d),
        (
            pairs(&[("cache-control", "no-cache"), (":authority", "www.example.com")]),
            110
        )
    );
    assert_eq!(
        decode(d, blocks[2]),
        pairs(&[
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ])
    );
    assert_eq!(
        table(d),
        (
            pairs(&[
                ("custom-key", "custom-value"),
                ("cache-control", "no-cache"),
                (":authority", "www.example.com"),
            ]),
            164
        )
    );
}

#[test]
fn c3_requests_without_huffman() {
    requests(
        &mut Decoder::new(4096),
        [
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ],
    );
}

#[test]
fn c4_requests_with_huffman() {
    requests(
        &mut Decoder::new(4096),
        [
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ],
    );
}

const DATE1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOC: &str = "https://www.example.com";
const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";

fn responses(blocks: [&str; 3]) {
    // The examples run with a 256-byte table, so entries are evicted.
    let mut d = Decoder::new(256);
    assert_eq!(
        decode(&mut d, blocks[0]),
        pairs(&[
            (":status", "302"),
            ("cache-control", "private"),
            ("date", DATE1),
            ("location", LOC)
        ])
    );
    assert_eq!(table(&d).1, 222);
    assert_eq!(
        decode(&mut d, blocks[1]),
        pairs(&[
            (":status", "307"),
            ("cache-control", "private"),
            ("date", DATE1),
            ("location", LOC)
        ])
    );
    assert_eq!(
        table(&d),
        (
            pairs(&[
                (":status", "307"),
                ("location", LOC),
                ("date", DATE1),
                ("cache-control", "private")
            ]),
            222
        )
    );
    assert_eq!(
        decode(&mut d, blocks[2]),
        pairs(&[
            (":status", "200"),
            ("cache-control", "private"),
            ("date", DATE2),
            ("location", LOC),
            ("content-encoding", "gzip"),
            ("set-cookie", COOKIE),
        ])
    );
    assert_eq!(
        table(&d),
        (
            pairs(&[
                ("set-cookie", COOKIE),
                ("content-encoding", "gzip"),
                ("date", DATE2)
            ]),
            215
        )
    );
}

#[test]
fn c5_responses_without_huffman() {
    responses([
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
         2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
         6c65 2e63 6f6d",
        "4803 3330 37c1 c0bf",
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
         54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
         5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
         3d31",
    ]);
}

#[test]
fn c6_responses_with_huffman() {
    responses([
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ]);
}

#[test]
fn encoder_output_decodes() {
    let mut b = Vec::new();
    let long = "x".repeat(300);
    encode_literal(&mut b, b":path", b"/grpc.health.v1.Health/Check");
    encode_literal(&mut b, b"x-long", long.as_bytes());
    let mut d = Decoder::new(4096);
    let mut out = Fields::new();
    d.decode(&b, &mut out, 1 << 20).unwrap();
    assert_eq!(out[0].1, b"/grpc.health.v1.Health/Check");
    assert_eq!(out[1].1, long.as_bytes());
    assert_eq!(table(&d).1, 0);
}

fn err(limit: usize, block: &[u8], max_list: usize) -> String {
    let mut out = Fields::new();
    Decoder::new(limit).decode(block, &mut out, max_list).unwrap_err()
}

#[test]
fn hostile_blocks_fail_with_one_line() {
    // A table size update above what we advertised.
    let e = err(4096, &hex("3fe2 1f"), 1 << 20);
    assert_eq!(e, "HPACK: table size update to 4097 is above our limit of 4096");
    // ...and at the limit it is fine, but not after a field.
    assert!(Decoder::new(4096)
        .decode(&hex("3fe1 1f 82"), &mut Fields::new(), 100)
        .is_ok());
    assert!(err(4096, &hex("82 20"), 100).contains("after a header field"));
    // Indexes past the tables, and index 0.
    assert_eq!(err(4096, &hex("be"), 100), "HPACK: index 62 is not in the table");
    assert_eq!(err(4096, &hex("80"), 100), "HPACK: index 0");
    // Integers that never end or overflow.
    assert_eq!(err(4096, &hex("ff ff ff"), 100), "HPACK: truncated integer");
    assert_eq!(
        err(4096, &hex("ff ffffffffff7f"), 100),
        "HPACK: integer too large"
    );
    // A string longer than the block.
    assert_eq!(err(4096, &hex("00 05 6162"), 100), "HPACK: truncated string");
    // Huffman: padding of 8 bits or more, padding not all ones, EOS inside.
    assert_eq!(
        err(4096, &hex("00 82 1fff 00"), 100),
        "HPACK: bad Huffman padding"
    );
    assert_eq!(err(4096, &hex("00 81 00 00"), 100), "HPACK: bad Huffman padding");
    assert_eq!(
        err(4096, &hex("00 84 ffff ffff 00"), 100),
        "HPACK: EOS in a Huffman string"
    );
    // A header list past the bound, plain or Huffman-expanded.
    let mut b = Vec::new();
    encode_literal(&mut b, b"a", &[b'x'; 200]);
    assert_eq!(err(4096, &b, 100), "HPACK: header list too large");
    assert_eq!(
        err(4096, &hex("82 82 82 82"), 100),
        "HPACK: header list larger than 100 bytes"
    );
}

#[test]
fn the_table_stays_within_its_size() {
    let mut d = Decoder::new(100);
    let mut b = Vec::new();
    for i in 0..50u8 {
        // Literal with incremental indexing, new name.
        b.push(0x40);
        b.extend_from_slice(&[1, b'a' + (i % 26), 10]);
        b.extend_from_slice(&[b'v'; 10]);
    }
    d.decode(&b, &mut Fields::new(), 1 << 20).unwrap();
    let (size, n) = (d.size(), d.entries().count());
    assert!(size <= 100 && n == 2, "{size} {n}");
    // An entry larger than the table empties it.
    let mut big = vec![0x40, 1, b'z', 0x7f, 0x01];
    big.extend_from_slice(&[b'v'; 128]);
    d.decode(&big, &mut Fields::new(), 1 << 20).unwrap();
    assert_eq!(d.size(), 0);
}
