//! `FeaturePlan`: everything a spec needs, built once (window, FFT plan, filterbanks,
//! DCT); `FrameRows`: the per-frame values pooling works on; `Scratch`: caller-owned
//! buffers, so that no clip allocates once its scratch has grown.

use super::chroma::chroma_filterbank;
use super::dct::dct_matrix;
use super::mel::{mel_filterbank_dense, SparseMel};
use super::pool::{PoolScratch, Pooler};
use super::spec::{ChromaSpectrum, FeatureSpec, SpecError};
use super::stft::{frame_count, frame_start, load_frame, window};
use super::FeatureError;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};
use std::ops::Range;
use std::sync::Arc;

/// `10 * log10(max(x, AMIN))`: the floor of the dB conversion (torch reference `_amin`).
pub const AMIN: f32 = 1e-10;

/// A spec turned into ready-to-run pieces. Immutable, `Send + Sync`: share one per model.
pub struct FeaturePlan {
    spec: FeatureSpec,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    mel: SparseMel,
    chroma: Vec<f32>,
    dct: Vec<f32>,
}

impl std::fmt::Debug for FeaturePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeaturePlan").field("spec", &self.spec).finish_non_exhaustive()
    }
}

/// Per-frame buffers of the STFT (one frame at a time).
#[derive(Debug, Clone)]
pub struct FrameScratch {
    /// The windowed frame (input of the real FFT; overwritten by it).
    pub(crate) frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    fft_scratch: Vec<Complex<f32>>,
    magnitude: Vec<f32>,
    power: Vec<f32>,
}

/// Caller-owned buffers for whole clips: frame buffers, the clip's rows, pooling buffers.
#[derive(Debug, Clone)]
pub struct Scratch {
    pub frame: FrameScratch,
    pub rows: FrameRows,
    pub pool: PoolScratch,
}

/// Per-frame rows, frame-major: power mel and unfloored dB mel (`n_mels` each) and
/// normalized chroma (`n_chroma`). The top_db floor depends on the pooled window's peak,
/// so it is applied at pooling time ([`Pooler`]).
#[derive(Debug, Clone, Default)]
pub struct FrameRows {
    n_mels: usize,
    n_chroma: usize,
    power: Vec<f32>,
    db: Vec<f32>,
    chroma: Vec<f32>,
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

impl FeaturePlan {
    /// Validates `spec` (bounds first) and builds the plan.
    pub fn new(spec: &FeatureSpec) -> Result<FeaturePlan, SpecError> {
        let spec = FeatureSpec::from_json_value(&spec.to_json_value())?;
        let n_freqs = spec.n_freqs();
        let dense = mel_filterbank_dense(n_freqs, spec.f_min, spec.f_max(), spec.n_mels, spec.sample_rate);
        Ok(FeaturePlan {
            window: window(spec.n_fft, spec.win_length()),
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(spec.n_fft),
            mel: SparseMel::from_dense(&dense, spec.n_mels, n_freqs),
            chroma: chroma_filterbank(f64::from(spec.sample_rate), spec.n_fft, spec.n_chroma, spec.chroma_tuning),
            dct: dct_matrix(spec.n_mfcc, spec.n_mels),
            spec,
        })
    }

    pub fn spec(&self) -> &FeatureSpec {
        &self.spec
    }
    pub fn dim(&self) -> usize {
        self.spec.dim()
    }
    pub fn window(&self) -> &[f32] {
        &self.window
    }
    pub fn mel(&self) -> &SparseMel {
        &self.mel
    }
    /// `(n_chroma, n_freqs)` row-major.
    pub fn chroma_fb(&self) -> &[f32] {
        &self.chroma
    }
    /// `(n_mfcc, n_mels)` row-major.
    pub fn dct(&self) -> &[f32] {
        &self.dct
    }

    pub fn frame_scratch(&self) -> FrameScratch {
        let n_freqs = self.spec.n_freqs();
        FrameScratch {
            frame: self.fft.make_input_vec(),
            spectrum: self.fft.make_output_vec(),
            fft_scratch: self.fft.make_scratch_vec(),
            magnitude: vec![0.0; n_freqs],
            power: vec![0.0; n_freqs],
        }
    }

    /// Buffers for [`FeaturePlan::extract_into`]; reuse them across clips.
    pub fn scratch(&self) -> Scratch {
        Scratch { frame: self.frame_scratch(), rows: FrameRows::new(&self.spec), pool: PoolScratch::default() }
    }

    /// The pooling half of the plan.
    pub fn pooler(&self) -> Pooler<'_> {
        Pooler::new(self)
    }

    /// One windowed frame (in `scratch.frame`) -> one row appended to `rows`.
    pub(crate) fn analyze_frame(&self, s: &mut FrameScratch, rows: &mut FrameRows) {
        self.fft
            .process_with_scratch(&mut s.frame, &mut s.spectrum, &mut s.fft_scratch)
            .expect("buffers sized by the plan");
        for ((c, m), p) in s.spectrum.iter().zip(s.magnitude.iter_mut()).zip(s.power.iter_mut()) {
            let mag = (c.re * c.re + c.im * c.im).sqrt();
            *m = mag;
            *p = mag * mag;
        }
        let n_mels = self.spec.n_mels;
        let at = rows.power.len();
        rows.power.resize(at + n_mels, 0.0);
        self.mel.apply(&s.power, &mut rows.power[at..]);
        rows.db.extend(rows.power[at..].iter().map(|&v| v.max(AMIN).log10() * 10.0));

        let spectrum = match self.spec.chroma_spectrum {
            ChromaSpectrum::Magnitude => &s.magnitude,
            ChromaSpectrum::Power => &s.power,
        };
        let n_freqs = spectrum.len();
        let at = rows.chroma.len();
        rows.chroma.extend(self.chroma.chunks_exact(n_freqs).map(|w| dot(w, spectrum)));
        let row = &mut rows.chroma[at..];
        let top = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let top = if top < f32::MIN_POSITIVE { 1.0 } else { top };
        row.iter_mut().for_each(|v| *v /= top);
    }

    /// Appends the rows of every frame of a whole clip to `rows`.
    pub fn analyze_clip(&self, wave: &[f32], frame: &mut FrameScratch, rows: &mut FrameRows) {
        let (n_fft, hop) = (self.spec.n_fft, self.spec.hop_length);
        for t in 0..frame_count(wave.len(), n_fft, hop) {
            load_frame(wave, frame_start(t, n_fft, hop), &self.window, &mut frame.frame);
            self.analyze_frame(frame, rows);
        }
    }

    /// Checks a whole clip at the model rate: length bounds and finite samples.
    pub fn check_wave(&self, wave: &[f32]) -> Result<(), FeatureError> {
        let (min, max) = (self.spec.min_samples(), self.spec.max_samples());
        if wave.len() < min {
            return Err(FeatureError::TooShort { samples: wave.len(), min });
        }
        if wave.len() > max {
            return Err(FeatureError::TooLong {
                seconds: wave.len() as f64 / f64::from(self.spec.sample_rate),
                max_seconds: super::spec::MAX_CLIP_SECONDS,
            });
        }
        if !wave.iter().all(|v| v.is_finite()) {
            let index = wave.iter().position(|v| !v.is_finite()).unwrap_or(0) as u64;
            return Err(FeatureError::NonFinite { index });
        }
        Ok(())
    }

    /// Whole clip (mono, at the spec rate) -> feature vector in `out` (`dim` values):
    /// all frames, then one pool over them.
    pub fn extract_into(&self, wave: &[f32], scratch: &mut Scratch, out: &mut [f32]) -> Result<(), FeatureError> {
        self.check_wave(wave)?;
        if out.len() != self.dim() {
            return Err(FeatureError::OutputLength { expected: self.dim(), got: out.len() });
        }
        scratch.rows.clear();
        self.analyze_clip(wave, &mut scratch.frame, &mut scratch.rows);
        let n = scratch.rows.len();
        let peak = scratch.rows.db_peak(0..n);
        self.pooler().pool(&scratch.rows, 0..n, peak, &mut scratch.pool, out);
        Ok(())
    }

    /// [`FeaturePlan::extract_into`] with fresh buffers.
    pub fn extract(&self, wave: &[f32]) -> Result<Vec<f32>, FeatureError> {
        let mut out = vec![0f32; self.dim()];
        self.extract_into(wave, &mut self.scratch(), &mut out)?;
        Ok(out)
    }
}

/// A few reusable [`Scratch`]es for callers that share one plan across threads
/// (a model, a binding): `extract` takes one, or makes one, and puts it back.
#[derive(Debug, Default)]
pub struct ScratchPool(std::sync::Mutex<Vec<Scratch>>);

impl ScratchPool {
    /// Most scratches kept (one per thread that ran concurrently, up to this).
    pub const MAX_KEPT: usize = 64;

    /// [`FeaturePlan::extract_into`] with a pooled scratch.
    pub fn extract(&self, plan: &FeaturePlan, wave: &[f32]) -> Result<Vec<f32>, FeatureError> {
        let taken = self.0.lock().ok().and_then(|mut v| v.pop());
        let mut scratch = taken.unwrap_or_else(|| plan.scratch());
        let mut out = vec![0f32; plan.dim()];
        let r = plan.extract_into(wave, &mut scratch, &mut out);
        if let Ok(mut v) = self.0.lock() {
            if v.len() < Self::MAX_KEPT {
                v.push(scratch);
            }
        }
        r.map(|()| out)
    }
}

/// float32 dot product in 8 interleaved partial sums (vectorizes).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}
