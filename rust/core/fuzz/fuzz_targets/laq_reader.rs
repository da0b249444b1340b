//! The `.laq` reader on arbitrary bytes: it must return an error or a file whose every
//! accessor works; it must never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serlaq_core::format::{LaqFile, ReadOptions};
use serlaq_core::gemv::{qgemm_with, Kernel, QMatrix};

fn exercise(f: &LaqFile) {
    for (i, l) in f.layers().iter().enumerate() {
        assert_eq!(f.codes(i).len(), l.rows * l.cols);
        let (scale, zero) = (f.scale_slice(i), f.zero_slice(i));
        // Keep forward passes cheap on large (but valid) layers.
        if l.rows * l.cols <= 1 << 16 {
            let m = QMatrix::new(f.packed(i), l.rows, l.cols, l.bits, scale, zero).expect("validated layer");
            let x = vec![1.0f32; l.cols];
            let mut y = vec![0.0f32; l.rows];
            // Every kernel this CPU runs (the registry), on the same layer.
            for &k in Kernel::available() {
                qgemm_with(k, &m, f.bias_slice(i), &x, 1, &mut y).expect("validated shapes");
            }
        }
    }
    for i in 0..f.tensors().len() {
        assert_eq!(f.tensor_slice(i).len(), f.tensors()[i].shape.iter().product::<usize>());
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
