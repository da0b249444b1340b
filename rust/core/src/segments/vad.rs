//! The voice-activity gate: per-frame level in dBFS against an absolute threshold, plus a
//! minimum share of voiced frames per window (criterion and defaults: [`super`] docs).
//!
//! [`FrameLevels`] mirrors the STFT framing of [`crate::features::FrameAnalyzer`] (centre
//! padding, frame `t` = samples `t * hop - n_fft / 2 ..` + `n_fft`), so frame `t`'s level
//! belongs to frame `t`'s feature row, for any chunk sizes.

use super::SegmentError;

/// Default frame-level threshold in dBFS.
pub const DEFAULT_VAD_DB: f64 = -50.0;
/// Default minimum share of voiced frames for a window to count as speech.
pub const DEFAULT_MIN_SPEECH: f64 = 0.25;
/// Accepted thresholds in dBFS.
pub const VAD_DB_RANGE: (f64, f64) = (-150.0, 0.0);

/// The gate's two numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vad {
    /// A frame is voiced when its level (dBFS) is at least this.
    pub threshold_db: f64,
    /// A window is speech when at least this share (0..=1) of its frames is voiced.
    pub min_speech: f64,
}

impl Default for Vad {
    fn default() -> Self {
        Vad { threshold_db: DEFAULT_VAD_DB, min_speech: DEFAULT_MIN_SPEECH }
    }
}

impl Vad {
    /// Checks both numbers against their bounds.
    pub fn validate(&self) -> Result<(), SegmentError> {
        let (lo, hi) = VAD_DB_RANGE;
        if !(lo..=hi).contains(&self.threshold_db) {
            return Err(SegmentError::Option {
                field: "vad_db",
                value: self.threshold_db,
                detail: format!("must be a level in dBFS within {lo}..={hi}"),
            });
        }
        if !(0.0..=1.0).contains(&self.min_speech) {
            return Err(SegmentError::Option {
                field: "min_speech",
                value: self.min_speech,
                detail: "must be a share of frames within 0..=1".into(),
            });
        }
        Ok(())
    }

    /// The threshold as a mean-square level (what [`FrameLevels`] computes).
    pub(crate) fn threshold_power(&self) -> f64 {
        10f64.powf(self.threshold_db / 10.0)
    }

    /// Whether `voiced` of `frames` frames make a speech window.
    pub(crate) fn is_speech(&self, voiced: usize, frames: usize) -> bool {
        frames > 0 && voiced as f64 >= self.min_speech * frames as f64
    }
}

/// The level of every STFT frame of a sample stream (any chunk sizes): the mean square of
/// the Hann-windowed frame, `sum (x w)^2 / sum w^2`.
#[derive(Debug, Clone)]
pub(crate) struct FrameLevels {
    n_fft: usize,
    hop: usize,
    window_sq: Vec<f32>,
    norm: f64,
    buf: Vec<f32>,
    start: usize,
    frames: usize,
}

impl FrameLevels {
    pub(crate) fn new(window: &[f32], hop: usize) -> FrameLevels {
        let n_fft = window.len();
        let window_sq: Vec<f32> = window.iter().map(|w| w * w).collect();
        let norm = window_sq.iter().map(|&v| f64::from(v)).sum::<f64>().max(f64::MIN_POSITIVE);
        let mut buf = Vec::with_capacity(4 * n_fft);
        buf.resize(n_fft / 2, 0.0);
        FrameLevels { n_fft, hop, window_sq, norm, buf, start: 0, frames: 0 }
    }

    /// Frames measured so far.
    pub(crate) fn frames(&self) -> usize {
        self.frames
    }

    /// Appends `samples`; the level of every frame they complete goes to `out`.
    pub(crate) fn push(&mut self, samples: &[f32], out: &mut impl Extend<f32>) {
        self.buf.extend_from_slice(samples);
        self.drain(out);
    }

    /// Ends the stream: the right centre padding and the frames it completes.
    pub(crate) fn finish(&mut self, out: &mut impl Extend<f32>) {
        self.buf.resize(self.buf.len() + self.n_fft / 2, 0.0);
        self.drain(out);
    }

    fn drain(&mut self, out: &mut impl Extend<f32>) {
        while self.buf.len() - self.start >= self.n_fft {
            let frame = &self.buf[self.start..self.start + self.n_fft];
            let mut acc = [0f32; 8];
            let (cf, cw) = (frame.chunks_exact(8), self.window_sq.chunks_exact(8));
            let mut tail = 0f32;
            for (x, w) in cf.remainder().iter().zip(cw.remainder()) {
                tail += x * x * w;
            }
            for (x, w) in cf.zip(cw) {
                for i in 0..8 {
                    acc[i] += x[i] * x[i] * w[i];
                }
            }
            let sum = f64::from(acc.iter().sum::<f32>() + tail);
            out.extend(std::iter::once((sum / self.norm) as f32));
            self.start += self.hop;
            self.frames += 1;
        }
        if self.start >= self.n_fft {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}
