//! serlaq core: the pure-Rust half of serlaq (no Python).
//!
//! - [`adapt`]: unsupervised adaptation of a model's input statistics to unlabelled audio.
//! - [`audio`]: decode, downmix, resample and validate audio (symphonia, rubato).
//! - [`bitpack`]: 1..8-bit code packing (LSB-first, byte-aligned rows) and its reference.
//! - [`general`]: the shipped general model, embedded, selected by the name `general`.
//! - [`kernel`]: the kernel registry (compiled, CPU-supported, selected) packing and GEMV share.
//! - [`gemv`]: dequantized GEMV / small-batch GEMM straight from packed codes.
//! - [`format`]: the `.laq` file reader, writer and validation (`docs/laq-format.md`).
//! - [`features`]: waveform -> feature vector (STFT, mel, MFCC, chroma, pooling).
//! - [`model`]: a `.laq` file as a runnable model (validated metadata, features, forward).
//! - [`runtime`]: the facade every face calls (load, batch, segments, records, output, info).
//! - [`segments`]: long recordings and streams as a timeline of windows (VAD, sliding windows).

pub mod adapt;
pub mod audio;
pub mod bitpack;
pub mod features;
pub mod format;
pub mod gemv;
pub mod general;
pub mod kernel;
pub mod model;
pub mod ood;
pub mod runtime;
pub mod segments;
