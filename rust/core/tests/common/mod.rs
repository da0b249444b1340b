//! The small two-layer model the adaptation and out-of-domain tests build on.

#![allow(dead_code)] // each test file uses its own part

use serde_json::{json, Value};
use serlaq_core::features::FeatureSpec;
use serlaq_core::format::{encode, LaqFile, LayerInput, Quantizer, TensorInput};
use serlaq_core::model::{Model, ModelError};
use std::path::{Path, PathBuf};

pub fn features() -> Value {
    json!({"sample_rate": 8000, "n_fft": 256, "hop_length": 128, "n_mels": 24, "n_mfcc": 10, "n_chroma": 12,
           "stats": ["mean", "std"], "delta_stats": ["std"], "mel_scale": "db"})
}

/// A 2-layer model over the small spec; `edit` changes metadata and the norm tensors.
pub fn model_bytes(edit: impl Fn(&mut Value, &mut Vec<f32>, &mut Vec<f32>)) -> Vec<u8> {
    model_bytes_with(edit, &[])
}

/// The same with further tensors (name, values; 1-D).
pub fn model_bytes_with(
    edit: impl Fn(&mut Value, &mut Vec<f32>, &mut Vec<f32>),
    extra: &[(&str, Vec<f32>)],
) -> Vec<u8> {
    let d = FeatureSpec::from_json_value(&features()).unwrap().dim();
    let codes1: Vec<u8> = (0..8 * d).map(|i| (i * 7 % 16) as u8).collect();
    let codes2: Vec<u8> = (0..3 * 8).map(|i| (i * 5 % 256) as u8).collect();
    let (s1, z1, b1) = (vec![0.05f32], vec![8.0f32], vec![0.1f32; 8]);
    let (s2, z2) = (vec![0.01f32; 3], vec![128.0f32; 3]);
    let layers = [
        LayerInput {
            name: "net.0",
            rows: 8,
            cols: d,
            bits: 4,
            quantizer: Quantizer::Affine,
            codes: &codes1,
            scale: &s1,
            zero: &z1,
            bias: Some(&b1),
        },
        LayerInput {
            name: "net.2",
            rows: 3,
            cols: 8,
            bits: 8,
            quantizer: Quantizer::Affine,
            codes: &codes2,
            scale: &s2,
            zero: &z2,
            bias: None,
        },
    ];
    let mut meta = json!({
        "labels": ["angry", "happy", "sad"],
        "features": features(),
        "architecture": {"type": "mlp", "input_dim": d, "hidden": [8], "num_classes": 3, "activation": "relu"},
        "normalization": {"mean": "norm.mean", "std": "norm.std"},
        "serlaq_version": "test",
    });
    let mut mean: Vec<f32> = (0..d).map(|i| (i % 7) as f32 - 3.0).collect();
    let mut std: Vec<f32> = (0..d).map(|i| 0.5 + (i % 5) as f32).collect();
    edit(&mut meta, &mut mean, &mut std);
    let shape = [d];
    let shapes: Vec<[usize; 1]> = extra.iter().map(|(_, v)| [v.len()]).collect();
    let mut tensors = vec![
        TensorInput { name: "norm.mean", shape: &shape, data: &mean },
        TensorInput { name: "norm.std", shape: &shape, data: &std },
    ];
    for ((name, values), shape) in extra.iter().zip(&shapes) {
        tensors.push(TensorInput { name, shape, data: values });
    }
    encode(&meta.to_string(), &layers, &tensors).unwrap()
}

pub fn load(bytes: Vec<u8>) -> Result<Model, ModelError> {
    Model::from_laq(LaqFile::from_bytes(bytes).unwrap())
}

/// Mono 16-bit PCM WAV bytes of `samples` (clamped to -1..1, rounded) at `rate`.
pub fn wav_bytes(rate: u32, samples: &[f32]) -> Vec<u8> {
    let data: Vec<u8> =
        samples.iter().flat_map(|&v| ((v.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes()).collect();
    mono_wav(rate, 1, 16, &data)
}

/// Mono 32-bit float WAV bytes of `samples` as they are (no clamping) at `rate`.
pub fn float_wav_bytes(rate: u32, samples: &[f32]) -> Vec<u8> {
    let data: Vec<u8> = samples.iter().flat_map(|v| v.to_le_bytes()).collect();
    mono_wav(rate, 3, 32, &data)
}

/// A mono RIFF/WAVE file of `data` (format tag 1: PCM, 3: float).
fn mono_wav(rate: u32, tag: u16, bits: u16, data: &[u8]) -> Vec<u8> {
    let align = bits / 8;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&tag.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * u32::from(align)).to_le_bytes());
    out.extend_from_slice(&align.to_le_bytes());
    out.extend_from_slice(&bits.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

/// The same written to `path`.
pub fn wav(path: &Path, samples: &[f32], rate: u32) {
    std::fs::write(path, wav_bytes(rate, samples)).unwrap();
}

/// `n` 2-s tones at 8 kHz with a little deterministic noise (clip0.wav, ...) in `dir`.
pub fn tone_clips(dir: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|k| {
            let p = dir.join(format!("clip{k}.wav"));
            let f = 0.03 + 0.01 * k as f32;
            let tone: Vec<f32> =
                (0..16000).map(|i| 0.2 * (i as f32 * f).sin() + 0.02 * ((i * 31 + k) % 7) as f32).collect();
            wav(&p, &tone, 8000);
            p
        })
        .collect()
}
