//! [`FrameAnalyzer`]: a sample stream -> the same frame rows the whole-clip path gives.

use super::frames::{FrameRows, FrameScratch};
use super::plan::FeaturePlan;
use super::FeatureError;

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
