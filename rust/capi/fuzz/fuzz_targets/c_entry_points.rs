//! Arbitrary bytes through the C entry points of serlaq.h, as a C caller would make them:
//! as a model (`serlaq_model_from_bytes`, then labels and a prediction), as encoded audio
//! (`serlaq_predict_bytes`), as PCM at a derived rate (`serlaq_predict_pcm`), and as a
//! stream with derived options, chunk sizes and NaNs (`serlaq_stream_*`), and as clips
//! gathered for an adaptation with derived options (`serlaq_adapter_*`). Every call
//! returns a code; every failure leaves a non-empty one-line `serlaq_last_error()`. Never
//! a panic (they are caught at the boundary, and a caught one is a finding here), hang
//! or unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use serlaq::abi::{serlaq_adapt_options, serlaq_segment, serlaq_stream_options};
use serlaq::error::ERR_INTERNAL;
use serlaq::ffi::*;
use serlaq_core::features::FeatureSpec;
use serlaq_core::format::{encode, LayerInput, Quantizer, TensorInput};
use std::ffi::CStr;
use std::sync::OnceLock;

/// A valid model (8 kHz, small spec) built once.
fn model() -> *const serlaq_model {
    static M: OnceLock<usize> = OnceLock::new();
    *M.get_or_init(|| {
        let features = json!({"sample_rate": 8000, "n_fft": 256, "hop_length": 128, "n_mels": 24, "n_mfcc": 10,
                              "n_chroma": 12, "stats": ["mean", "std"], "mel_scale": "db"});
        let d = FeatureSpec::from_json_value(&features).unwrap().dim();
        let codes: Vec<u8> = (0..3 * d).map(|i| (i * 7 % 16) as u8).collect();
        let layers = [LayerInput { name: "net.0", rows: 3, cols: d, bits: 4, quantizer: Quantizer::Affine, codes: &codes,
                                   scale: &[0.01], zero: &[8.0], bias: None }];
        let (mean, std) = (vec![0f32; d], vec![1f32; d]);
        let meta = json!({"labels": ["a", "b", "c"], "features": features,
            "architecture": {"type": "mlp", "input_dim": d, "hidden": [], "num_classes": 3},
            "normalization": {"mean": "norm.mean", "std": "norm.std"}});
        let t = [TensorInput { name: "norm.mean", shape: &[d], data: &mean }, TensorInput { name: "norm.std", shape: &[d], data: &std }];
        let bytes = encode(&meta.to_string(), &layers, &t).unwrap();
        let m = unsafe { serlaq_model_from_bytes(bytes.as_ptr(), bytes.len()) };
        assert!(!m.is_null());
        m as usize
    }) as *const serlaq_model
}

/// 20 clips of 1.5 s at 8 kHz, each a different tone: enough audio to adapt on.
fn good_clips() -> &'static [Vec<f32>] {
    static C: OnceLock<Vec<Vec<f32>>> = OnceLock::new();
    C.get_or_init(|| {
        (0..20)
            .map(|k| (0..12_000).map(|i| 0.2 * (i as f32 * (0.05 + 0.01 * k as f32)).sin() + 0.01 * ((i * 7 + k) % 5) as f32).collect())
            .collect()
    })
}

fn check(code: i32) {
    if code < 0 {
        assert_ne!(code, ERR_INTERNAL, "a panic was caught: {}", last());
        let msg = last();
        assert!(!msg.is_empty() && !msg.contains('\n'), "{msg:?}");
    }
}

fn last() -> String {
    unsafe { CStr::from_ptr(serlaq_last_error()) }.to_string_lossy().into_owned()
}

fn floats(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    b.get(i..i + 4).map_or(0, |c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let mut probs = [0f32; 64];
    unsafe {
        match sel % 5 {
            0 => {
                let m = serlaq_model_from_bytes(rest.as_ptr(), rest.len());
                if m.is_null() {
                    check(-2);
                    return;
                }
                let n = serlaq_model_num_labels(m);
                for i in 0..=n {
                    let l = serlaq_model_label(m, i);
                    assert_eq!(l.is_null(), i == n);
                }
                let x: Vec<f32> = (0..8000).map(|i| ((i * 37 % 200) as f32 - 100.0) / 200.0).collect();
                let mut p = vec![0f32; n];
                check(serlaq_predict_pcm(m, x.as_ptr(), x.len(), 8000, p.as_mut_ptr()));
                serlaq_model_free(m);
            }
            1 => check(serlaq_predict_bytes(model(), rest.as_ptr(), rest.len(), probs.as_mut_ptr())),
            2 => {
                let rate = u32_at(rest, 0) % 400_000;
                let x = floats(rest.get(4..).unwrap_or(&[]));
                check(serlaq_predict_pcm(model(), x.as_ptr(), x.len(), rate, probs.as_mut_ptr()));
            }
            3 => {
                // with bit 2 of the selector, 20 good clips first, so that finishing (the
                // statistics, the balance, the labels, the new file) runs on every such input;
                // then the input's clips split at each 0xFF byte: odd ones as encoded files,
                // even ones as PCM
                let a = serlaq_adapter_new(model());
                if sel & 4 != 0 {
                    for clip in good_clips() {
                        assert_eq!(serlaq_adapter_add_pcm(a, clip.as_ptr(), clip.len(), 8000) > 0, true, "{}", last());
                    }
                }
                for (i, clip) in rest.split(|&b| b == 0xFF).enumerate() {
                    if i % 2 == 1 {
                        check(serlaq_adapter_add_bytes(a, clip.as_ptr(), clip.len()));
                    } else {
                        let x = floats(clip);
                        check(serlaq_adapter_add_pcm(a, x.as_ptr(), x.len(), 8000 + u32::from(sel)));
                    }
                }
                let labels: Vec<u8> = rest.iter().take(12).map(|&b| if b == 0 { b',' } else { b }).chain([0]).collect();
                let opts = serlaq_adapt_options {
                    balance: i32::from(sel & 8),
                    std_rule: i32::from(sel >> 5) - 2,
                    labels: if sel & 16 != 0 { labels.as_ptr().cast() } else { std::ptr::null() },
                    source: std::ptr::null(),
                };
                let mut out = std::ptr::null_mut();
                let code = serlaq_adapter_finish(a, &opts, &mut out);
                check(code);
                assert_eq!(out.is_null(), code != 0);
                serlaq_model_free(out);
                serlaq_adapter_free(a);
            }
            _ => {
                let rate = u32_at(rest, 0) % 100_000;
                let b = rest.get(4..).unwrap_or(&[]);
                let opts = serlaq_stream_options {
                    window: f64::from(b.first().copied().unwrap_or(20)) / 10.0,
                    hop: f64::from(b.get(1).copied().unwrap_or(10)) / 10.0,
                    vad: i32::from(b.get(2).copied().unwrap_or(1) & 1),
                    ..serlaq_stream_default_options()
                };
                let s = serlaq_stream_new(model(), rate, &opts);
                if s.is_null() {
                    check(-1);
                    return;
                }
                if b.get(2).copied().unwrap_or(0) & 2 != 0 {
                    // running normalisation, with a prior from 0 (refused) up
                    check(serlaq_stream_running_norm(s, f64::from(b.get(2).copied().unwrap_or(0) >> 2), 50.0, 1));
                }
                let x = floats(b.get(3..).unwrap_or(&[]));
                let chunk = 1 + usize::from(b.get(3).copied().unwrap_or(0)) * 13;
                let mut seg = serlaq_segment::default();
                for c in x.chunks(chunk) {
                    check(serlaq_stream_push(s, c.as_ptr(), c.len()));
                    while serlaq_stream_next(s, &mut seg, probs.as_mut_ptr()) == 1 {}
                }
                check(serlaq_stream_flush(s));
                while serlaq_stream_next(s, &mut seg, probs.as_mut_ptr()) == 1 {}
                serlaq_stream_free(s);
            }
        }
    }
});
