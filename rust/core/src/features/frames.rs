//! The per-frame values the stages pass along, below all of them: [`FrameScratch`] (one
//! frame's STFT buffers) and [`FrameRows`] (the rows pooling works on). Frame analysis
//! (the plan) writes them, pooling and the streaming analyzer read them.

use super::spec::FeatureSpec;
use rustfft::num_complex::Complex;
use std::ops::Range;

/// Per-frame buffers of the STFT (one frame at a time).
#[derive(Debug, Clone)]
pub struct FrameScratch {
    /// FFT buffer (in place). Even `n_fft`: its floats are the windowed frame itself.
    pub(super) buf: Vec<Complex<f32>>,
    /// Odd `n_fft`: the windowed frame (spread into `buf` as real values).
    pub(super) odd_frame: Vec<f32>,
    pub(super) fft_scratch: Vec<Complex<f32>>,
    pub(super) magnitude: Vec<f32>,
    pub(super) power: Vec<f32>,
}

impl FrameScratch {
    /// The `n_fft` floats the next windowed frame is written to.
    pub(crate) fn frame_mut(&mut self) -> &mut [f32] {
        if self.odd_frame.is_empty() {
            let n = 2 * self.buf.len();
            // SAFETY: `Complex<f32>` is `#[repr(C)] { re, im }`: a slice of `len` of them
            // is `2 * len` contiguous, initialized, aligned f32 values, borrowed mutably here.
            unsafe { std::slice::from_raw_parts_mut(self.buf.as_mut_ptr().cast::<f32>(), n) }
        } else {
            &mut self.odd_frame
        }
    }
}

/// Per-frame rows, frame-major: power mel and unfloored dB mel (`n_mels` each) and
/// normalized chroma (`n_chroma`). The top_db floor depends on the pooled window's peak,
/// so it is applied at pooling time (`Pooler`).
#[derive(Debug, Clone, Default)]
pub struct FrameRows {
    n_mels: usize,
    n_chroma: usize,
    pub(super) power: Vec<f32>,
    pub(super) db: Vec<f32>,
    pub(super) chroma: Vec<f32>,
}

impl FrameRows {
    pub fn new(spec: &FeatureSpec) -> FrameRows {
        FrameRows { n_mels: spec.n_mels, n_chroma: spec.n_chroma, ..FrameRows::default() }
    }
    /// Frames held.
    pub fn len(&self) -> usize {
        self.power.len().checked_div(self.n_mels).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.power.is_empty()
    }
    pub fn clear(&mut self) {
        self.power.clear();
        self.db.clear();
        self.chroma.clear();
    }
    /// Drops the first `n` frames (a stream's rows that no window will need again).
    pub fn drop_front(&mut self, n: usize) {
        let n = n.min(self.len());
        self.power.drain(..n * self.n_mels);
        self.db.drain(..n * self.n_mels);
        self.chroma.drain(..n * self.n_chroma);
    }
    pub fn power(&self, t: usize) -> &[f32] {
        &self.power[t * self.n_mels..(t + 1) * self.n_mels]
    }
    pub fn db(&self, t: usize) -> &[f32] {
        &self.db[t * self.n_mels..(t + 1) * self.n_mels]
    }
    pub fn chroma(&self, t: usize) -> &[f32] {
        &self.chroma[t * self.n_chroma..(t + 1) * self.n_chroma]
    }
    /// Highest dB value of frames `range` over all bands (the top_db reference).
    pub fn db_peak(&self, range: Range<usize>) -> f32 {
        self.db[range.start * self.n_mels..range.end * self.n_mels].iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b))
    }
}
