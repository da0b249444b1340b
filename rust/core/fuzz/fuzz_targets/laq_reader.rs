//! The `.laq` reader on arbitrary bytes: it must return an error or a file whose every
//! accessor works; it must never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serlaq_core::format::{LaqFile, ReadOptions};
use serlaq_core::gemv::{qgemm, QMatrix};

fn exercise(f: &LaqFile) {
    for (i, l) in f.layers().iter().enumerate() {
        let (codes, scale, zero, bias) = (f.codes(i), f.scale(i), f.zero(i), f.bias(i));
        assert_eq!(codes.len(), l.rows * l.cols);
        // Keep forward passes cheap on large (but valid) layers.
        if l.rows * l.cols <= 1 << 16 {
            let m = QMatrix::new(f.packed(i), l.rows, l.cols, l.bits, &scale, &zero).expect("validated layer");
            let x = vec![1.0f32; l.cols];
            let mut y = vec![0.0f32; l.rows];
            qgemm(&m, bias.as_deref(), &x, 1, &mut y).expect("validated shapes");
        }
    }
    for i in 0..f.tensors().len() {
        let t = f.tensor(i);
        assert_eq!(t.len(), f.tensors()[i].shape.iter().product::<usize>());
    }
}

fuzz_target!(|data: &[u8]| {
    // As a user would read it (the checksum rejects almost every mutation) ...
    if let Ok(f) = LaqFile::from_bytes(data.to_vec()) {
        exercise(&f);
    }
    // ... and with the checksum ignored, so mutations reach the structural checks.
    if let Ok(f) = LaqFile::from_bytes_with(data.to_vec(), ReadOptions { verify_checksum: false }) {
        exercise(&f);
    }
});
