//! Long recordings and live audio as a timeline of windows: [`Segmenter`] (push any chunk
//! sizes of source-rate mono samples, get the windows completed so far), [`segment_file`]
//! / [`segment_file_each`] (the same loop over a file read packet by packet), a
//! voice-activity gate ([`Vad`]) that marks windows without speech as silence.
//!
//! # Use
//! ```no_run
//! use serlaq_core::model::Model;
//! use serlaq_core::format::LaqFile;
//! use serlaq_core::segments::{segment_file, SegmentOptions, Segmenter};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let model = Model::from_laq(LaqFile::open("model.laq".as_ref())?)?;
//! let opts = SegmentOptions::default(); // 2.0 s windows, 1.0 s hop, VAD on
//! // a live stream at 48 kHz
//! let mut seg = Segmenter::new(&model, 48_000, &opts, "mic")?;
//! for chunk in [vec![0.0f32; 1000], vec![0.1; 777]] {
//!     for s in seg.push(&model, &chunk)? {
//!         println!("{:.2}-{:.2} {:?}", s.start_seconds, s.end_seconds, s.best());
//!     }
//! }
//! let rest = seg.finish(&model)?;
//! // a file: segments up to any damage, plus the error that stopped it
//! let out = segment_file(&model, "call.wav".as_ref(), &opts);
//! # let _ = (rest, out); Ok(()) }
//! ```
//!
//! # Windows
//! Window and hop are given in seconds and turned once into whole STFT hops of the
//! model's feature spec: `window_frames = round(window * rate / hop_length)` (at least 1),
//! likewise `hop_frames` (1 ..= window_frames). Window `k` pools frames
//! `k * hop_frames .. k * hop_frames + window_frames` of the one continuous frame stream,
//! i.e. the frames whose centre lies in model-rate samples `a .. b` with
//! `a = k * hop_frames * hop_length`, `b = a + window_frames * hop_length` (the convention
//! of [`crate::features`]). Every frame is computed once (a hop costs one hop of STFT work),
//! and the state keeps only the frame rows a window can still need (at most
//! `window_frames + hop_frames` rows), whatever the recording's length.
//!
//! Defaults: [`DEFAULT_WINDOW`] = 2.0 s, about the length of the clips the models are
//! trained on (emodb-2s: utterances cut to 2 s), so a window is judged on the evidence a
//! training clip held; [`DEFAULT_HOP`] = 1.0 s, 50% overlap: every instant is seen by two
//! windows and a change of emotion is located to within a second. At the paper spec
//! (22050 Hz, hop 512) these are 86 and 43 frames: 1.9969 s and 0.9985 s.
//!
//! Positions are integer samples of the *source* (the caller's rate): a model-rate
//! position `p` is `round(p * source_rate / model_rate)`, clamped to the samples pushed;
//! times in seconds are these positions divided by the source rate.
//!
//! The end of a stream: when the hop grid leaves at least half a hop of frames after the
//! last full window uncovered, or at least [`MAX_UNSCORED_TAIL`] seconds (a long hop), one
//! more window, aligned to the end (the last `window_frames` frames), is emitted. A stream shorter than one window gives one
//! segment over all of it if it holds at least `min_samples` (one analysis window at the
//! model rate), else [`SegmentError::TooShort`].
//!
//! # Voice activity ([`Vad`])
//! Per STFT frame, the level in dBFS of the frame the STFT sees: `10 * log10(sum (x w)^2 /
//! sum w^2)` with the Hann window `w` of the spec (by Parseval, the frame's power spectrum
//! summed and normalized), 0 dBFS = a full-scale square wave (a full-scale sine is -3 dBFS).
//! A frame is voiced when its level is at least `threshold_db`; a window is speech when at
//! least `min_speech` of its frames are voiced. A window that is not speech is emitted as
//! silence (no model call). Defaults [`DEFAULT_VAD_DB`] = -50 dBFS and
//! [`DEFAULT_MIN_SPEECH`] = 0.25: speech recorded at a working level sits around -35 to
//! -15 dBFS frame level, room noise and the hiss of 16-bit recorders below -55 dBFS; a
//! quarter of a 2-s window is 0.5 s of voiced frames, about two syllables, so a window
//! holding only a breath or a click stays silence. The criterion is absolute (no running
//! peak): a window's verdict depends on its own samples only, so streaming and offline
//! give the same timeline from any starting point.
//!
//! # Running normalisation ([`RunningNorm`], off by default)
//! With `running` set, each speech window is standardized with a mixture of the model's
//! stored statistics and those of the stream's speech windows so far (silence windows are
//! not taken in), and (with `balance`, the default) its probabilities are divided by the
//! stream's label mix so far: a stream adapts itself to its room as `serlaq adapt` does offline. The
//! probabilities of a window then depend on the windows before it, so the timeline is the
//! same offline and streamed only from the same starting point.
//!
//! # Errors
//! [`SegmentError`], one line `"<source>: <what>"`. NaN/inf in a chunk rejects that chunk
//! whole (the stream stays usable); a different sample rate ([`Segmenter::check_rate`])
//! and a push after [`Segmenter::finish`] are errors. A file that breaks mid-stream yields
//! the segments before the damage and the decoder's error (its time in the file).

mod file;
mod running;
mod segmenter;
mod vad;

pub use file::{segment_file, segment_file_each, FileSegments};
pub use running::{RunningNorm, RunningStats, BALANCE_BOUND, DEFAULT_HORIZON, DEFAULT_PRIOR, RUNNING_RANGE};
pub use segmenter::{SegmentPlan, Segmenter, MAX_UNSCORED_TAIL};
pub use vad::{Vad, DEFAULT_MIN_SPEECH, DEFAULT_VAD_DB, VAD_DB_RANGE};

use crate::audio::AudioError;
use crate::model::ModelError;
use std::fmt;

/// Default window length in seconds (see the module docs).
pub const DEFAULT_WINDOW: f64 = 2.0;
/// Default hop in seconds: 50% overlap.
pub const DEFAULT_HOP: f64 = 1.0;
/// Longest window accepted, in seconds (bounds the frame rows a stream keeps).
pub const MAX_WINDOW: f64 = 600.0;

/// How to cut a recording into windows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentOptions {
    /// Window length in seconds, in (0, [`MAX_WINDOW`]].
    pub window: f64,
    /// Hop in seconds, in (0, window].
    pub hop: f64,
    /// The voice-activity gate; `None` runs the model on every window.
    pub vad: Option<Vad>,
    /// Running normalisation ([`RunningNorm`]); `None` standardizes every window with the
    /// model's stored statistics alone.
    pub running: Option<RunningNorm>,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions { window: DEFAULT_WINDOW, hop: DEFAULT_HOP, vad: Some(Vad::default()), running: None }
    }
}

/// One window of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Window number (0, 1, ...; the end-aligned last window gets the next number).
    pub index: u64,
    /// First source sample of the window.
    pub start: u64,
    /// One past the last source sample (clamped to the samples pushed).
    pub end: u64,
    /// `start / source_rate`.
    pub start_seconds: f64,
    /// `end / source_rate`.
    pub end_seconds: f64,
    /// Share of the window's frames that the gate found voiced (1.0 without a gate).
    pub voiced: f64,
    /// Class probabilities in label order; `None` for a silence window (no model call).
    pub probabilities: Option<Vec<f64>>,
    /// The window's out-of-domain score (`Model::ood_score`; under running normalisation,
    /// of the window as the stream standardized it); `None` for silence.
    pub ood: Option<f64>,
}

impl Segment {
    /// Whether the model was run (the window holds speech).
    pub fn is_speech(&self) -> bool {
        self.probabilities.is_some()
    }

    /// `(label index, probability)` of the most probable class (the first on ties);
    /// `None` for silence.
    pub fn best(&self) -> Option<(usize, f64)> {
        let p = self.probabilities.as_ref()?;
        let mut best = 0;
        for (i, &v) in p.iter().enumerate() {
            if v > p[best] {
                best = i;
            }
        }
        p.get(best).map(|&v| (best, v))
    }
}

/// Every way segmentation can fail; `Display` is one line, `"<source>: <what>"`.
#[derive(Debug, Clone, PartialEq)]
pub enum SegmentError {
    /// An option outside its bounds (`field` is "window", "hop", "vad_db", "min_speech").
    Option { field: &'static str, value: f64, detail: String },
    /// A NaN or infinite sample: `index` counts source samples from the stream's start.
    NonFinite { source: String, index: u64, rate: u32 },
    /// A chunk at a different sample rate than the stream's.
    RateChanged { source: String, expected: u32, got: u32 },
    /// `push` after `finish`.
    Finished { source: String },
    /// Fewer samples than one analysis window of the model.
    TooShort { source: String, seconds: f64, min_seconds: f64 },
    /// The model given to a call is not the one the segmenter was built for.
    ModelMismatch { source: String },
    /// The audio path failed (open, decode, rate bounds): its own one-line message.
    Audio(AudioError),
    /// The model failed on a window (a bug: windows are validated before).
    Model { source: String, detail: String },
}

/// Every [`SegmentError::kind`], in declaration order (a test raises each one).
pub const ALL_KINDS: &[&str] = &[
    "invalid option",
    "NaN/inf samples",
    "sample rate changed",
    "stream finished",
    "too short",
    "model mismatch",
    "audio",
    "model error",
];

impl SegmentError {
    /// The short, stable name of the failure.
    pub fn kind(&self) -> &'static str {
        use SegmentError::*;
        match self {
            Option { .. } => ALL_KINDS[0],
            NonFinite { .. } => ALL_KINDS[1],
            RateChanged { .. } => ALL_KINDS[2],
            Finished { .. } => ALL_KINDS[3],
            TooShort { .. } => ALL_KINDS[4],
            ModelMismatch { .. } => ALL_KINDS[5],
            Audio(_) => ALL_KINDS[6],
            Model { .. } => ALL_KINDS[7],
        }
    }
}

impl fmt::Display for SegmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SegmentError::*;
        match self {
            Option { field, value, detail } => write!(f, "{field}: {detail} (got {value})"),
            NonFinite { source, index, rate } => write!(
                f,
                "{source}: NaN/inf sample at {:.3} s (sample {index}); the chunk holding it was rejected",
                *index as f64 / f64::from(*rate)
            ),
            RateChanged { source, expected, got } => {
                write!(f, "{source}: sample rate changed from {expected} Hz to {got} Hz (start a new stream)")
            }
            Finished { source } => write!(f, "{source}: push after finish (start a new stream)"),
            TooShort { source, seconds, min_seconds } => write!(
                f,
                "{source}: too short ({seconds:.3} s; one segment needs at least {min_seconds:.3} s = one analysis window)"
            ),
            ModelMismatch { source } => {
                write!(f, "{source}: the model passed is not the one this segmenter was built for")
            }
            Audio(e) => write!(f, "{e}"),
            Model { source, detail } => write!(f, "{source}: model error on a window: {detail}"),
        }
    }
}

impl std::error::Error for SegmentError {}

impl From<AudioError> for SegmentError {
    fn from(e: AudioError) -> Self {
        SegmentError::Audio(e)
    }
}

impl SegmentError {
    pub(crate) fn model(source: &str, e: ModelError) -> SegmentError {
        SegmentError::Model { source: source.into(), detail: e.to_string() }
    }
}
