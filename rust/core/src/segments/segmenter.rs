//! [`SegmentPlan`] (numbers fixed once: rates, frame grid, gate) and [`Segmenter`] (the
//! state of one stream: resampler, framer, frame levels, the ring of frame rows, the
//! position counters). The model is lent to every call, so one `Model` serves any number
//! of streams and the state owns nothing of it.

use super::running::RunningStats;
use super::vad::{FrameLevels, Vad};
use super::{Segment, SegmentError, SegmentOptions, MAX_WINDOW};
use crate::audio::resample::check_input_rate;
use crate::audio::Resampler;
use crate::features::{FeatureSpec, FrameAnalyzer, FrameRows, FrameScratch, PoolScratch};
use crate::model::{standardize, Model};
use std::collections::VecDeque;

/// The numbers a stream is cut by, derived once from the model's spec, the source rate
/// and the options (see the [`super`] docs for the grid).
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentPlan {
    /// Rate of the samples pushed (Hz).
    pub source_rate: u32,
    /// The model's rate (Hz).
    pub model_rate: u32,
    /// STFT hop of the model's spec (model samples).
    pub stft_hop: usize,
    /// Frames per window.
    pub window_frames: usize,
    /// Frames per hop (1..=window_frames).
    pub hop_frames: usize,
    /// Shortest stream accepted, in model samples (one analysis window).
    pub min_samples: usize,
    /// The voice-activity gate, if any.
    pub vad: Option<Vad>,
}

/// The most audio, in seconds, the end of a stream may leave unscored: a tail the hop grid
/// leaves shorter than half a hop gets no window of its own (the last window already sees
/// up to it), unless a long hop (`--window 10 --hop 10`) would leave this much or more.
pub const MAX_UNSCORED_TAIL: f64 = 0.5;

fn frames_of(seconds: f64, field: &'static str, rate: u32, hop: usize) -> Result<usize, SegmentError> {
    let frames = (seconds * f64::from(rate) / hop as f64).round();
    if frames < 1.0 {
        return Err(SegmentError::Option {
            field,
            value: seconds,
            detail: format!("is shorter than one STFT hop of the model ({hop} samples at {rate} Hz)"),
        });
    }
    Ok(frames as usize)
}

impl SegmentPlan {
    /// Validates the options and the source rate, then fixes the grid.
    pub fn new(spec: &FeatureSpec, source_rate: u32, opts: &SegmentOptions) -> Result<SegmentPlan, SegmentError> {
        check_input_rate(u64::from(source_rate), "stream")?;
        if !(opts.window > 0.0 && opts.window <= MAX_WINDOW) {
            return Err(SegmentError::Option {
                field: "window",
                value: opts.window,
                detail: format!("must be a length in seconds within (0, {MAX_WINDOW}]"),
            });
        }
        if !(opts.hop > 0.0 && opts.hop <= opts.window) {
            return Err(SegmentError::Option {
                field: "hop",
                value: opts.hop,
                detail: format!("must be a step in seconds within (0, window = {}]", opts.window),
            });
        }
        if let Some(v) = &opts.vad {
            v.validate()?;
        }
        if let Some(r) = &opts.running {
            r.validate()?;
        }
        let (rate, hop) = (spec.sample_rate, spec.hop_length);
        let window_frames = frames_of(opts.window, "window", rate, hop)?;
        let hop_frames = frames_of(opts.hop, "hop", rate, hop)?.min(window_frames);
        Ok(SegmentPlan {
            source_rate,
            model_rate: rate,
            stft_hop: hop,
            window_frames,
            hop_frames,
            min_samples: spec.min_samples(),
            vad: opts.vad,
        })
    }

    /// The window length the grid gives, in seconds at the model rate.
    /// Whole frames in `seconds` at the model rate (at least one).
    fn frames_of_seconds(&self, seconds: f64) -> usize {
        ((seconds * f64::from(self.model_rate) / self.stft_hop as f64).ceil() as usize).max(1)
    }

    pub fn window_seconds(&self) -> f64 {
        (self.window_frames * self.stft_hop) as f64 / f64::from(self.model_rate)
    }

    /// The hop the grid gives, in seconds at the model rate.
    pub fn hop_seconds(&self) -> f64 {
        (self.hop_frames * self.stft_hop) as f64 / f64::from(self.model_rate)
    }

    /// A model-rate sample position as a source sample position (rounded).
    pub fn to_source(&self, model_pos: u64) -> u64 {
        if self.source_rate == self.model_rate {
            return model_pos;
        }
        let (s, m) = (u128::from(self.source_rate), u128::from(self.model_rate));
        ((u128::from(model_pos) * s + m / 2) / m) as u64
    }
}

/// One stream being segmented. Not tied to a model: every call takes the `Model` the
/// segmenter was built for (checked: [`SegmentError::ModelMismatch`]).
#[derive(Debug)]
pub struct Segmenter {
    plan: SegmentPlan,
    spec: FeatureSpec,
    classes: usize,
    source: String,
    resampler: Resampler,
    analyzer: FrameAnalyzer,
    levels: Option<FrameLevels>,
    frame: FrameScratch,
    pool: PoolScratch,
    features: Vec<f32>,
    /// Running normalisation: the stream's statistics and the blended mean/std buffers.
    running: Option<(RunningStats, Vec<f32>, Vec<f32>)>,
    resampled: Vec<f32>,
    /// Rows of frames `base ..`.
    rows: FrameRows,
    /// Voiced flags of frames `base ..` (only with a gate).
    voiced: VecDeque<bool>,
    level_buf: Vec<f32>,
    base: usize,
    /// Next window number on the grid.
    next: u64,
    /// Frame end of the last window emitted (0: none yet).
    covered: usize,
    n_source: u64,
    n_model: u64,
    finished: bool,
}

impl Segmenter {
    /// A stream of `source_rate` Hz mono samples for `model`; `source` names it in errors.
    pub fn new(
        model: &Model,
        source_rate: u32,
        opts: &SegmentOptions,
        source: &str,
    ) -> Result<Segmenter, SegmentError> {
        let spec = model.spec().clone();
        let plan = SegmentPlan::new(&spec, source_rate, opts).map_err(|e| rename(e, source))?;
        let fp = model.plan();
        let resampler = Resampler::new(source_rate, spec.sample_rate).map_err(|e| rename(e.into(), source))?;
        let levels = plan.vad.map(|_| FrameLevels::new(fp.window(), spec.hop_length));
        let cap = plan.window_frames + plan.hop_frames + 1;
        Ok(Segmenter {
            classes: model.num_classes(),
            source: source.to_string(),
            resampler,
            analyzer: FrameAnalyzer::new(fp),
            levels,
            frame: fp.frame_scratch(),
            pool: PoolScratch::default(),
            features: vec![0.0; fp.dim()],
            running: opts.running.map(|r| (RunningStats::new(r, fp.dim()), Vec::new(), Vec::new())),
            resampled: Vec::new(),
            rows: FrameRows::new(&spec),
            voiced: VecDeque::with_capacity(if plan.vad.is_some() { cap } else { 0 }),
            level_buf: Vec::new(),
            base: 0,
            next: 0,
            covered: 0,
            n_source: 0,
            n_model: 0,
            finished: false,
            plan,
            spec,
        })
    }

    pub fn plan(&self) -> &SegmentPlan {
        &self.plan
    }

    /// The name errors use.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Source samples accepted so far.
    pub fn samples(&self) -> u64 {
        self.n_source
    }

    /// Speech windows the running normalisation has taken in (0 without it).
    pub fn running_windows(&self) -> u64 {
        self.running.as_ref().map_or(0, |(stats, _, _)| stats.seen())
    }

    /// Frame rows held right now (bounded by `window_frames + hop_frames`).
    pub fn rows_held(&self) -> usize {
        self.rows.len()
    }

    /// [`SegmentError::RateChanged`] unless `rate` is the stream's rate.
    pub fn check_rate(&self, rate: u32) -> Result<(), SegmentError> {
        if rate != self.plan.source_rate {
            return Err(SegmentError::RateChanged {
                source: self.source.clone(),
                expected: self.plan.source_rate,
                got: rate,
            });
        }
        Ok(())
    }

    fn check_model(&self, model: &Model) -> Result<(), SegmentError> {
        if model.num_classes() != self.classes || model.spec() != &self.spec {
            return Err(SegmentError::ModelMismatch { source: self.source.clone() });
        }
        Ok(())
    }

    /// Appends source-rate mono samples (any length, empty included); returns the
    /// windows they complete. A NaN/inf sample rejects the whole chunk (nothing is
    /// appended; the stream stays usable).
    pub fn push(&mut self, model: &Model, samples: &[f32]) -> Result<Vec<Segment>, SegmentError> {
        self.check_model(model)?;
        if self.finished {
            return Err(SegmentError::Finished { source: self.source.clone() });
        }
        if let Some(i) = samples.iter().position(|v| !v.is_finite()) {
            return Err(SegmentError::NonFinite {
                source: self.source.clone(),
                index: self.n_source + i as u64,
                rate: self.plan.source_rate,
            });
        }
        self.n_source += samples.len() as u64;
        let mut buf = std::mem::take(&mut self.resampled);
        buf.clear();
        let r = self.resampler.push(samples, &mut buf);
        let out = r.map_err(|e| rename(e.into(), &self.source)).and_then(|()| self.feed(model, &buf));
        self.resampled = buf;
        let mut segments = Vec::new();
        out?;
        self.emit_full(model, &mut segments)?;
        Ok(segments)
    }

    /// Ends the stream: flushes the resampler and the framer, emits the remaining full
    /// windows and the end-aligned last one (or the single window of a short stream).
    pub fn finish(&mut self, model: &Model) -> Result<Vec<Segment>, SegmentError> {
        self.check_model(model)?;
        if self.finished {
            return Err(SegmentError::Finished { source: self.source.clone() });
        }
        self.finished = true;
        let mut buf = std::mem::take(&mut self.resampled);
        buf.clear();
        self.resampler.finish(&mut buf).map_err(|e| rename(e.into(), &self.source))?;
        self.feed(model, &buf)?;
        self.resampled = buf;
        let fp = model.plan();
        self.analyzer.finish(fp, &mut self.frame, &mut self.rows);
        if let Some(levels) = self.levels.as_mut() {
            self.level_buf.clear();
            levels.finish(&mut self.level_buf);
            let t = self.plan.vad.map_or(0.0, |v| v.threshold_power());
            self.voiced.extend(self.level_buf.iter().map(|&p| f64::from(p) >= t));
        }
        let mut segments = Vec::new();
        self.emit_full(model, &mut segments)?;
        let total = self.base + self.rows.len();
        let (wf, hf) = (self.plan.window_frames, self.plan.hop_frames);
        if self.next == 0 {
            if self.n_model < self.plan.min_samples as u64 || total == 0 {
                let rate = f64::from(self.plan.source_rate);
                return Err(SegmentError::TooShort {
                    source: self.source.clone(),
                    seconds: self.n_source as f64 / rate,
                    min_seconds: self.plan.min_samples as f64 / f64::from(self.plan.model_rate),
                });
            }
            segments.push(self.window(model, 0, total)?);
            self.next = 1;
        } else {
            let uncovered = total.saturating_sub(self.covered);
            if uncovered > 0 && (2 * uncovered >= hf || uncovered >= self.plan.frames_of_seconds(MAX_UNSCORED_TAIL)) {
                segments.push(self.window(model, total - wf, total)?);
                self.next += 1;
            }
        }
        Ok(segments)
    }

    /// Model-rate samples -> frame rows (and levels).
    fn feed(&mut self, model: &Model, wave: &[f32]) -> Result<(), SegmentError> {
        if wave.is_empty() {
            return Ok(());
        }
        self.n_model += wave.len() as u64;
        let fp = model.plan();
        self.analyzer
            .push(fp, wave, &mut self.frame, &mut self.rows)
            .map_err(|e| SegmentError::Model { source: self.source.clone(), detail: e.to_string() })?;
        if let Some(levels) = self.levels.as_mut() {
            self.level_buf.clear();
            levels.push(wave, &mut self.level_buf);
            let t = self.plan.vad.map_or(0.0, |v| v.threshold_power());
            self.voiced.extend(self.level_buf.iter().map(|&p| f64::from(p) >= t));
        }
        Ok(())
    }

    /// Emits every full window the frames so far allow, then drops the rows no window
    /// can need again: those before the next window's start and before the last
    /// `window_frames` (the end-aligned window may need them).
    fn emit_full(&mut self, model: &Model, out: &mut Vec<Segment>) -> Result<(), SegmentError> {
        let (wf, hf) = (self.plan.window_frames, self.plan.hop_frames);
        let total = self.base + self.rows.len();
        if let Some(levels) = &self.levels {
            debug_assert_eq!(levels.frames(), self.analyzer.frames(), "levels follow the STFT frames");
            debug_assert_eq!(self.voiced.len(), self.rows.len());
        }
        loop {
            let start = self.next as usize * hf;
            if start + wf > total {
                break;
            }
            out.push(self.window(model, start, start + wf)?);
            self.next += 1;
        }
        let keep_from = (self.next as usize * hf).min(total.saturating_sub(wf));
        if keep_from > self.base {
            let n = keep_from - self.base;
            self.rows.drop_front(n);
            self.voiced.drain(..n.min(self.voiced.len()));
            self.base = keep_from;
        }
        Ok(())
    }

    /// Frames `a..b` (absolute) -> one segment (gate, pool, model).
    fn window(&mut self, model: &Model, a: usize, b: usize) -> Result<Segment, SegmentError> {
        let (ra, rb) = (a - self.base, b - self.base);
        let frames = b - a;
        let (voiced, speech) = match self.plan.vad {
            Some(v) => {
                let n = self.voiced.range(ra..rb).filter(|&&x| x).count();
                (n as f64 / frames as f64, v.is_speech(n, frames))
            }
            None => (1.0, true),
        };
        let scored = if speech {
            let peak = self.rows.db_peak(ra..rb);
            model.plan().pooler().pool(&self.rows, ra..rb, peak, &mut self.pool, &mut self.features);
            let scored = match self.running.as_mut() {
                None => model.predict_features(&self.features),
                Some((stats, mean, std)) => {
                    stats.update(&self.features);
                    let (mean0, std0) = model.normalization();
                    stats.blend(mean0, std0, mean, std);
                    model.scored_standardized(standardize(&self.features, mean, std)).map(|(mut p, ood)| {
                        stats.balance(&mut p);
                        (p, ood)
                    })
                }
            };
            Some(scored.map_err(|e| SegmentError::model(&self.source, e))?)
        } else {
            None
        };
        let (probabilities, ood) = match scored {
            Some((p, ood)) => (Some(p), Some(ood)),
            None => (None, None),
        };
        let hop = self.plan.stft_hop as u64;
        let end_model = (b as u64 * hop).min(self.n_model);
        let start = self.plan.to_source(a as u64 * hop).min(self.n_source);
        let end = self.plan.to_source(end_model).min(self.n_source).max(start);
        let rate = f64::from(self.plan.source_rate);
        self.covered = self.covered.max(b);
        Ok(Segment {
            index: self.next,
            start,
            end,
            start_seconds: start as f64 / rate,
            end_seconds: end as f64 / rate,
            voiced,
            probabilities,
            ood,
        })
    }
}

/// Gives an error raised with a placeholder source the stream's name.
fn rename(e: SegmentError, source: &str) -> SegmentError {
    use crate::audio::AudioError;
    match e {
        SegmentError::Audio(AudioError::Rate { what, rate, min, max, .. }) => {
            SegmentError::Audio(AudioError::Rate { source: source.into(), what, rate, min, max })
        }
        SegmentError::Audio(AudioError::Internal { detail, .. }) => {
            SegmentError::Audio(AudioError::Internal { source: source.into(), detail })
        }
        other => other,
    }
}
