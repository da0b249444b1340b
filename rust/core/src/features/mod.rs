//! Audio features in pure Rust, with the definitions of the torch reference
//! (`python/serlaq/features.py`): STFT (periodic Hann, centre zero padding), slaney mel,
//! dB with a top_db floor, orthonormal DCT-II MFCC, librosa chroma, time pooling.
//!
//! Structure: [`FeatureSpec`] (typed, bounded header) -> [`FeaturePlan`] (built once,
//! `Send + Sync`) -> a whole clip cut to its [`edges::edge_span`] (`edge_pause_s`) ->
//! frames ([`FeaturePlan::analyze_clip`] for a whole clip, [`FrameAnalyzer`] for a stream;
//! both give identical [`FrameRows`]) -> [`Pooler`] (a range of rows -> the feature vector).
//! Whole clip = all frames + one pool.
//!
//! Frames: a clip of `len` samples has [`frame_count`]`(len, n_fft, hop)` frames
//! (`1 + len / hop` for an even `n_fft`); frame `t` covers clip samples
//! `frame_start(t) .. frame_start(t) + n_fft` with `frame_start(t) = t * hop - n_fft / 2`.
//! A segmenter pooling samples `a..b` of a stream takes the frames whose centre
//! `t * hop` lies in `a..b`.
//!
//! Modules, bottom up: [`spec`]; [`simd`] (the dot product the stages share), [`frames`]
//! (the per-frame buffers and rows); the stages [`stft`], [`mel`], [`chroma`], [`dct`],
//! [`pool`]; [`plan`] on top of them; [`stream`] on the plan.
//!
//! Each fast piece has a plain twin in [`reference`] that the tests compare it with.

pub mod chroma;
pub mod dct;
pub mod edges;
pub mod frames;
pub mod mel;
pub mod plan;
pub mod pool;
pub mod reference;
pub mod simd;
pub mod spec;
pub mod stft;
pub mod stream;

pub use frames::{FrameRows, FrameScratch};
pub use plan::{FeaturePlan, Scratch, ScratchPool};
pub use pool::{PoolScratch, Pooler};
pub use spec::{FeatureSpec, SpecError};
pub use stft::{frame_count, frame_start};
pub use stream::FrameAnalyzer;

use std::fmt;

/// A waveform the feature path cannot use.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureError {
    /// Fewer samples than one analysis window.
    TooShort { samples: usize, min: usize },
    /// Longer than [`spec::MAX_CLIP_SECONDS`].
    TooLong { seconds: f64, max_seconds: u64 },
    /// A NaN or infinite sample.
    NonFinite { index: u64 },
    /// The output buffer has the wrong length.
    OutputLength { expected: usize, got: usize },
    /// `push` after `finish` on a [`FrameAnalyzer`].
    StreamFinished,
}

impl fmt::Display for FeatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeatureError::TooShort { samples, min } => {
                write!(f, "waveform: too short ({samples} samples, at least {min} needed: one analysis window)")
            }
            FeatureError::TooLong { seconds, max_seconds } => write!(
                f,
                "waveform: {seconds:.1} s is longer than the {max_seconds} s whole-clip limit; use segment mode"
            ),
            FeatureError::NonFinite { index } => write!(f, "waveform: sample {index} is NaN or infinite"),
            FeatureError::OutputLength { expected, got } => {
                write!(f, "features: output buffer has {got} values, expected {expected}")
            }
            FeatureError::StreamFinished => write!(f, "stream: push after finish (call reset first)"),
        }
    }
}

impl std::error::Error for FeatureError {}

/// `features` JSON text + a mono waveform at its rate -> the feature vector.
pub fn features_from_json(spec_json: &str, wave: &[f32]) -> Result<Vec<f32>, String> {
    let spec = FeatureSpec::from_json(spec_json).map_err(|e| e.to_string())?;
    let plan = FeaturePlan::new(&spec).map_err(|e| e.to_string())?;
    plan.extract(wave).map_err(|e| e.to_string())
}
