//! Arbitrary bytes -> decoder (symphonia, from memory) -> downmix -> resampler ->
//! validation. Invariant: an error, or a finite, non-empty clip; never a panic, a hang or
//! an allocation sized by an unchecked header number.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serlaq_core::audio::{self, AudioReader};

fuzz_target!(|data: &[u8]| {
    if let Ok(y) = audio::load_bytes(data, "fuzz", 16000, 1) {
        assert!(!y.is_empty() && y.iter().all(|v| v.is_finite()));
    }
    if let Ok(mut reader) = AudioReader::from_bytes(data, "fuzz", 22050) {
        let mut total = 0usize;
        while let Ok(Some(chunk)) = reader.next_chunk() {
            assert!(chunk.iter().all(|v| v.is_finite()));
            total += chunk.len();
        }
        let _ = total;
    }
});
