//! Arbitrary bytes -> `.laq` reader -> `Model` (metadata, spec, shapes) -> forward on a
//! vector derived from the input: an error, or a model that runs. Never a panic, hang
//! or unbounded allocation (every header number that sizes memory is bounded first).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serlaq_core::format::{LaqFile, ReadOptions};
use serlaq_core::model::Model;

fuzz_target!(|data: &[u8]| {
    // skip the CRC so mutations reach the metadata and spec checks behind it
    let Ok(file) = LaqFile::from_bytes_with(data.to_vec(), ReadOptions { verify_checksum: false }) else {
        return;
    };
    let Ok(model) = Model::from_laq(file) else {
        return;
    };
    let d = model.input_dim();
    let seed = data.iter().fold(0u32, |a, &b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
    let x: Vec<f32> = (0..d).map(|i| ((seed.wrapping_add(i as u32) % 2001) as f32 - 1000.0) / 100.0).collect();
    let p = model.probabilities(&x).expect("a loaded model runs on finite input");
    assert_eq!(p.len(), model.num_classes());
    let mut bad = x.clone();
    bad[0] = f32::NAN;
    assert!(model.forward(&bad).is_err());
});
