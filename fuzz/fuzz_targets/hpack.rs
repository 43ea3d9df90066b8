//! HPACK header blocks (`dockhand::check::grpc::hpack::Decoder`), several on
//! one connection so the dynamic table carries over: the first byte says
//! where the input splits into two blocks. Properties: never panics; the
//! table never holds more than the size we advertise; a decoded list never
//! exceeds its bound.
#![no_main]

use dockhand::check::grpc::hpack::{Decoder, Fields};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 4096;
const LIST: usize = 2048;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let cut = (cut as usize).min(rest.len());
    let mut d = Decoder::new(LIMIT);
    for block in [&rest[..cut], &rest[cut..]] {
        let mut out = Fields::new();
        let r = d.decode(block, &mut out, LIST);
        let list: usize = out.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
        assert!(list <= LIST, "list of {list} bytes");
        assert!(d.size() <= LIMIT, "table of {} bytes", d.size());
        if let Err(e) = r {
            assert!(!e.contains('\n'));
            return;
        }
    }
});
