//! The generated model both integration test files use (`cli.rs`, `serve.rs`): one
//! definition, so the CLI and the server are tested on the same file.
#![allow(dead_code)] // each test file uses its own part

use serde_json::{json, Value};
use serlaq_core::features::FeatureSpec;
use serlaq_core::format::{encode, LayerInput, OwnedLayer, Quantizer, TensorInput};

pub const LABELS: [&str; 3] = ["angry", "happy", "sad"];

pub fn lcg(state: &mut u64) -> u64 {
    *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *state >> 33
}

pub fn features() -> Value {
    json!({"sample_rate": 8000, "n_fft": 256, "hop_length": 128, "n_mels": 24, "n_mfcc": 10, "n_chroma": 12,
           "stats": ["mean", "std"], "mel_scale": "db"})
}

/// name, rows, cols, bits, per-row scales, bias
pub const LAYERS: [(&str, usize, u32, bool, bool); 3] =
    [("net.0", 16, 4, true, true), ("net.3", 8, 2, false, true), ("net.6", 3, 8, true, false)];

/// A valid 3-layer model (d -> 16 -> 8 -> 3), bits 4/2/8, one layer with one scale.
pub fn laq_bytes() -> Vec<u8> {
    // the statistics are not fitted on the test clips: no out-of-domain warning
    laq_bytes_with_ood_threshold(1000.0)
}

/// The same model with its out-of-domain threshold at `threshold`.
pub fn laq_bytes_with_ood_threshold(threshold: f64) -> Vec<u8> {
    let d = FeatureSpec::from_json_value(&features()).unwrap().dim();
    let mut st = 11u64;
    let mut cols = d;
    let mut owned = Vec::new();
    for (name, rows, bits, per_row, has_bias) in LAYERS {
        let codes: Vec<u8> = (0..rows * cols).map(|_| (lcg(&mut st) % (1 << bits)) as u8).collect();
        let k = if per_row { rows } else { 1 };
        let scale: Vec<f32> = (0..k).map(|_| 0.004 + (lcg(&mut st) % 100) as f32 / 5000.0).collect();
        let zero = vec![((1u32 << bits) / 2) as f32; k];
        let bias: Option<Vec<f32>> = has_bias.then(|| (0..rows).map(|_| (lcg(&mut st) % 100) as f32 / 50.0).collect());
        owned.push(OwnedLayer {
            name: name.into(),
            rows,
            cols,
            bits,
            quantizer: Quantizer::Affine,
            codes,
            scale,
            zero,
            bias,
        });
        cols = rows;
    }
    let layers: Vec<LayerInput> = owned.iter().map(OwnedLayer::input).collect();
    // standardization around typical values of this spec, so labels vary between clips
    let mean: Vec<f32> = (0..d).map(|i| if i < 10 { -20.0 } else { 0.1 }).collect();
    let std: Vec<f32> = (0..d).map(|i| if i < 10 { 10.0 } else { 0.5 }).collect();
    let meta = json!({
        "labels": LABELS,
        "features": features(),
        "architecture": {"type": "mlp", "input_dim": d, "hidden": [16, 8], "num_classes": 3, "activation": "relu"},
        "normalization": {"mean": "norm.mean", "std": "norm.std"},
        "serlaq_version": "9.9.9",
        "laq": {"mode": "test", "avg_bits": 4.0},
        "ood": {"threshold": threshold},
    });
    let tensors = [
        TensorInput { name: "norm.mean", shape: &[d], data: &mean },
        TensorInput { name: "norm.std", shape: &[d], data: &std },
    ];
    encode(&meta.to_string(), &layers, &tensors).unwrap()
}

/// 16-bit PCM WAV bytes (interleaved `channels`).
pub fn wav_bytes(rate: u32, channels: u16, samples: &[f32]) -> Vec<u8> {
    let data: Vec<u8> =
        samples.iter().flat_map(|&v| ((v.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes()).collect();
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&channels.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2 * channels as u32).to_le_bytes());
    b.extend_from_slice(&(2 * channels).to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&data);
    b
}

/// A tone plus noise: `kind` picks the frequency and the loudness.
pub fn clip(kind: u64, rate: u32, seconds: f32) -> Vec<f32> {
    let mut st = 1 + kind;
    let f = [220.0, 880.0, 2500.0, 150.0][kind as usize % 4];
    let amp = [0.5, 0.1, 0.8, 0.02][kind as usize % 4];
    (0..(rate as f32 * seconds) as usize)
        .map(|i| {
            let t = i as f32 / rate as f32;
            let noise = (lcg(&mut st) % 2000) as f32 / 1000.0 - 1.0;
            amp * (std::f32::consts::TAU * f * t).sin() + 0.05 * noise
        })
        .collect()
}
