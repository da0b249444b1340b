//! Fast pack/unpack against the bit-by-bit reference on arbitrary codes and bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serlaq_core::bitpack::{pack_ref, pack_with, packed_len, unpack_ref, unpack_with, Kernel};

fuzz_target!(|data: &[u8]| {
    let Some((&b, rest)) = data.split_first() else { return };
    let bits = u32::from(b % 8) + 1;
    // Arbitrary bytes as packed input.
    let count = rest.len() * 8 / bits as usize;
    let len = packed_len(count, bits).unwrap();
    let mut slow = vec![0u8; count];
    unpack_ref(&rest[..len], bits, &mut slow).unwrap();
    // Arbitrary bytes as codes: every packer agrees with the reference on the result or
    // on the error.
    let out_len = packed_len(rest.len(), bits).unwrap();
    let mut p2 = vec![0u8; out_len];
    let r2 = pack_ref(rest, bits, &mut p2);
    for &k in Kernel::available() {
        let mut fast = vec![0u8; count];
        unpack_with(k, &rest[..len], bits, &mut fast).unwrap();
        assert_eq!(fast, slow, "{k:?}");
        let mut p1 = vec![0u8; out_len];
        let r1 = pack_with(k, rest, bits, &mut p1);
        assert_eq!(r1, r2, "{k:?}");
        if r1.is_ok() {
            assert_eq!(p1, p2, "{k:?}");
        }
    }
});
