//! STFT framing: the periodic Hann window, centre padding and the streaming framer.
//!
//! Frames follow `torch.stft(center=True, pad_mode="constant")` / the torch reference:
//! the clip is padded with `n_fft / 2` zeros on both sides and frame `t` holds padded
//! samples `t * hop .. t * hop + n_fft`, i.e. clip samples
//! `t * hop - n_fft / 2 .. t * hop - n_fft / 2 + n_fft` (zero outside the clip). A clip of
//! `len` samples has `(len + 2 * (n_fft / 2) - n_fft) / hop + 1` frames
//! (`1 + len / hop` for an even `n_fft`): see [`frame_count`] and [`frame_start`].

use super::plan::{FeaturePlan, FrameRows, FrameScratch};
use super::FeatureError;

/// Periodic Hann window of `win_length` zero-padded in the centre to `n_fft`, float32 as
/// `torch.hann_window(win_length, periodic=True)` computes it.
pub fn window(n_fft: usize, win_length: usize) -> Vec<f32> {
    let mut w = vec![0f32; n_fft];
    let left = (n_fft - win_length) / 2;
    if win_length == 1 {
        w[left] = 1.0;
        return w;
    }
    let step = (std::f64::consts::PI * 2.0 / win_length as f64) as f32;
    for (i, v) in w[left..left + win_length].iter_mut().enumerate() {
        *v = -0.5f32 * (i as f32 * step).cos() + 0.5;
    }
    w
}

/// Frames of a clip of `len` samples (0 when it is shorter than one padded window).
pub fn frame_count(len: usize, n_fft: usize, hop: usize) -> usize {
    let padded = len + 2 * (n_fft / 2);
    if padded < n_fft {
        0
    } else {
        (padded - n_fft) / hop + 1
    }
}

/// First clip sample (may be negative: centre padding) that frame `t` covers; the frame
/// spans `n_fft` samples from there and is centred on sample `t * hop` for an even `n_fft`.
pub fn frame_start(t: usize, n_fft: usize, hop: usize) -> i64 {
    (t * hop) as i64 - (n_fft / 2) as i64
}

/// Windowed frame starting at clip sample `start` (zeros outside `x`).
pub(crate) fn load_frame(x: &[f32], start: i64, window: &[f32], out: &mut [f32]) {
    let n = window.len() as i64;
    let lo = start.clamp(0, x.len() as i64);
    let hi = (start + n).clamp(0, x.len() as i64);
    let a = (lo - start) as usize; // first frame index with a clip sample
    let b = (hi - start).max(a as i64) as usize;
    out[..a].fill(0.0);
    out[b..].fill(0.0);
    if b > a {
        let src = &x[lo as usize..hi as usize];
        for ((o, &s), &w) in out[a..b].iter_mut().zip(src).zip(&window[a..b]) {
            *o = s * w;
        }
    }
}

/// Turns a sample stream (any chunk sizes) into the same per-frame rows the whole-clip
/// path computes: frame for frame and bit for bit. State: the samples of the next frame
/// onward; nothing is allocated per hop once the buffer has grown to its working size.
#[derive(Debug, Clone)]
pub struct FrameAnalyzer {
    buf: Vec<f32>,
    start: usize,
    samples: u64,
    frames: usize,
    finished: bool,
}

impl FrameAnalyzer {
    /// A fresh stream: the left centre padding (`n_fft / 2` zeros) is already in place.
    pub fn new(plan: &FeaturePlan) -> FrameAnalyzer {
        let n_fft = plan.spec().n_fft;
        let mut buf = Vec::with_capacity(4 * n_fft);
        buf.resize(n_fft / 2, 0.0);
        FrameAnalyzer { buf, start: 0, samples: 0, frames: 0, finished: false }
    }

    /// Back to the state of [`FrameAnalyzer::new`].
    pub fn reset(&mut self, plan: &FeaturePlan) {
        self.buf.clear();
        self.buf.resize(plan.spec().n_fft / 2, 0.0);
        self.start = 0;
        self.samples = 0;
        self.frames = 0;
        self.finished = false;
    }

    /// Samples pushed so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Frames emitted so far (frame `t` is the `t`-th row appended since the start).
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Appends `samples`; every frame they complete is appended to `rows`. Returns the
    /// number of frames appended. Non-finite samples are an error (nothing is appended).
    pub fn push(
        &mut self,
        plan: &FeaturePlan,
        samples: &[f32],
        scratch: &mut FrameScratch,
        rows: &mut FrameRows,
    ) -> Result<usize, FeatureError> {
        if self.finished {
            return Err(FeatureError::StreamFinished);
        }
        if let Some(i) = samples.iter().position(|v| !v.is_finite()) {
            return Err(FeatureError::NonFinite { index: self.samples + i as u64 });
        }
        self.samples += samples.len() as u64;
        self.buf.extend_from_slice(samples);
        Ok(self.drain(plan, scratch, rows))
    }

    /// Ends the stream: appends the right centre padding and the frames it completes.
    pub fn finish(&mut self, plan: &FeaturePlan, scratch: &mut FrameScratch, rows: &mut FrameRows) -> usize {
        if self.finished {
            return 0;
        }
        self.finished = true;
        let half = plan.spec().n_fft / 2;
        self.buf.resize(self.buf.len() + half, 0.0);
        self.drain(plan, scratch, rows)
    }

    fn drain(&mut self, plan: &FeaturePlan, scratch: &mut FrameScratch, rows: &mut FrameRows) -> usize {
        let (n_fft, hop) = (plan.spec().n_fft, plan.spec().hop_length);
        let mut n = 0;
        while self.buf.len() - self.start >= n_fft {
            let src = &self.buf[self.start..self.start + n_fft];
            for ((o, &s), &w) in scratch.frame_mut().iter_mut().zip(src).zip(plan.window()) {
                *o = s * w;
            }
            plan.analyze_frame(scratch, rows);
            self.start += hop;
            n += 1;
        }
        if self.start >= n_fft {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.frames += n;
        n
    }
}
