//! Fast pack/unpack against the bit-by-bit reference on arbitrary codes and bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serlaq_core::bitpack::{pack, pack_ref, packed_len, unpack, unpack_ref};

fuzz_target!(|data: &[u8]| {
    let Some((&b, rest)) = data.split_first() else { return };
    let bits = u32::from(b % 8) + 1;
    // Arbitrary bytes as packed input.
    let count = rest.len() * 8 / bits as usize;
    let len = packed_len(count, bits).unwrap();
    let (mut fast, mut slow) = (vec![0u8; count], vec![0u8; count]);
    unpack(&rest[..len], bits, &mut fast).unwrap();
    unpack_ref(&rest[..len], bits, &mut slow).unwrap();
    assert_eq!(fast, slow);
    // Arbitrary bytes as codes: both packers agree on the result or on the error.
    let out_len = packed_len(rest.len(), bits).unwrap();
    let (mut p1, mut p2) = (vec![0u8; out_len], vec![0u8; out_len]);
    let (r1, r2) = (pack(rest, bits, &mut p1), pack_ref(rest, bits, &mut p2));
    assert_eq!(r1, r2);
    if r1.is_ok() {
        assert_eq!(p1, p2);
    }
});
