//! Unsupervised adaptation to a new room: the model's input statistics re-estimated on
//! unlabelled audio of the target, written as a new `.laq` file.
//!
//! Two steps, neither needs labels or speaker ids:
//! 1. Normalization: a recording chain (level, microphone colour, band, room) moves the
//!    whole feature distribution; the network was trained on standardized features, so
//!    standardizing the target's features with the target's own mean puts them back where
//!    the network expects them. The std is widened, never narrowed ([`StdRule::Widen`]):
//!    each feature is divided by the larger of the model's std and the target's. A target
//!    narrower than the training data (fewer speakers, one room, one carrier sentence)
//!    stretched to unit variance exaggerates its small differences into the large ones the
//!    network learned emotions from; a wider one (a new band, noise) is still brought in.
//!    Measured on the inner cross-corpus folds (docs/adapt.md): TESS→EMODB +5.5 UAR,
//!    EMODB→TESS −2.3, the mean over both directions +1.6 over the target's own std.
//! 2. Label balance (on by default): a model in a new room still tends to pour most clips
//!    into one label. The output layer's bias is shifted so that, averaged over the
//!    target's clips, every label gets an equal share of the probability (the fixed point
//!    of Saerens et al. 2002's prior correction, with a uniform prior): it assumes the
//!    new room's recordings are not dominated by one emotion, which `--no-balance` drops.
//!    Measured on the inner cross-corpus folds (docs/adapt.md): +2 to +6 UAR, and the
//!    most predicted label's share falls to about a fifth. Told which labels the audio
//!    holds ([`AdaptOptions::labels`]), it balances over those alone and sets the others
//!    out of reach ([`ABSENT_SHIFT`]): a room of four emotions is not pushed toward eight.
//!
//! The weights, labels, calibration and every other field are kept byte for byte; the
//! file's `provenance.adaptations` list gains one record of what was done
//! (`docs/laq-format.md`).

use crate::audio;
use crate::format::{self, LaqError, LayerInput, TensorInput};
use crate::model::{Model, ModelError};
use crate::ood::HiddenReference;
use rayon::prelude::*;
use serde_json::{json, Map, Value};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Fewest readable clips an adaptation accepts (measured: `docs/adapt.md`).
pub const MIN_CLIPS: usize = 20;
/// Fewest seconds of speech (voiced 25 ms frames) an adaptation accepts.
pub const MIN_SPEECH_SECONDS: f64 = 20.0;
/// A target std below this share of the model's own is raised to it: a band that is
/// empty in the target (16 kHz audio under a wideband model) must not turn its rounding
/// noise into huge z-scores.
pub const STD_FLOOR: f64 = 1.0e-3;

/// Which std an adaptation standardizes the target's features with (the mean is always the
/// target's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StdRule {
    /// Per feature, the larger of the model's stored std and the target's (the default).
    #[default]
    Widen,
    /// The target's own std (serlaq 0.x before 2026-12-05).
    Target,
    /// The model's stored std: only the mean moves.
    Model,
}

impl StdRule {
    /// Every rule, in the order the CLI lists them.
    pub const ALL: [StdRule; 3] = [StdRule::Widen, StdRule::Target, StdRule::Model];

    /// The rule's name in options and in `provenance.adaptations` (`std`).
    pub fn name(self) -> &'static str {
        match self {
            StdRule::Widen => "widen",
            StdRule::Target => "target",
            StdRule::Model => "model",
        }
    }

    /// The rule named `name`, or an error naming the accepted ones.
    pub fn parse(name: &str) -> Result<StdRule, String> {
        StdRule::ALL.into_iter().find(|r| r.name() == name).ok_or_else(|| {
            let names: Vec<&str> = StdRule::ALL.iter().map(|r| r.name()).collect();
            format!("std: unknown rule {name:?} (accepted: {})", names.join(", "))
        })
    }
}

/// What an adaptation needs besides the model and the files.
#[derive(Debug, Clone)]
pub struct AdaptOptions {
    /// Native threads for decoding and features (0: rayon's default).
    pub threads: usize,
    /// What the audio was, recorded in the file (e.g. the folder or manifest given).
    pub source: String,
    /// ISO-8601 UTC time recorded in the file; `None`: `SOURCE_DATE_EPOCH` or now.
    pub created: Option<String>,
    pub min_clips: usize,
    pub min_speech_seconds: f64,
    /// Shift the output bias so the target's clips spread over the labels (step 2).
    pub balance: bool,
    /// Which std the target's features are standardized with (step 1).
    pub std: StdRule,
    /// The labels the new audio holds (empty: all of the model's). The balance spreads the
    /// clips over these alone, and the model's other labels are set [`ABSENT_SHIFT`] below,
    /// so the adapted model answers among these.
    pub labels: Vec<String>,
}

impl Default for AdaptOptions {
    fn default() -> Self {
        AdaptOptions {
            threads: 0,
            source: String::new(),
            created: None,
            min_clips: MIN_CLIPS,
            min_speech_seconds: MIN_SPEECH_SECONDS,
            balance: true,
            std: StdRule::Widen,
            labels: Vec::new(),
        }
    }
}

/// A finished adaptation: the new file's bytes and what went into them.
#[derive(Debug, Clone)]
pub struct Adapted {
    pub bytes: Vec<u8>,
    pub clips: usize,
    /// How many of the clips are windows of long recordings, and of how many recordings.
    pub windows: usize,
    pub recordings: usize,
    pub seconds: f64,
    pub speech_seconds: f64,
    /// One line per file left out, naming it.
    pub failures: Vec<String>,
    /// Median out-of-domain score of the clips under the old and the new statistics.
    pub ood_before: f64,
    pub ood_after: f64,
    /// Share of the clips given the most predicted label, before and after.
    pub top_share_before: f64,
    pub top_share_after: f64,
    /// The labels the adapted model answers among ([`AdaptOptions::labels`]; empty: all).
    pub labels: Vec<String>,
}

impl Adapted {
    /// What was done, as every face prints it after `adapted MODEL ` and before `; wrote OUT`:
    /// `on 24 clips (36.0 s, 30.1 s of speech); median out-of-domain score 2.10 -> 1.00; most
    /// predicted label 80% -> 30% of the clips`, with the files left out and the labels held.
    pub fn summary(&self) -> String {
        let cut = match (self.windows, self.recordings) {
            (0, _) => String::new(),
            (w, 1) => format!("{w} of them windows of 1 long recording; "),
            (w, r) => format!("{w} of them windows of {r} long recordings; "),
        };
        let mut s =
            format!("on {} clips ({cut}{:.1} s, {:.1} s of speech)", self.clips, self.seconds, self.speech_seconds);
        match self.failures.len() {
            0 => {}
            1 => s += ", 1 file left out",
            n => s += &format!(", {n} files left out"),
        }
        s += &format!(
            "; median out-of-domain score {:.2} -> {:.2}; most predicted label {:.0}% -> {:.0}% of the clips",
            self.ood_before,
            self.ood_after,
            100.0 * self.top_share_before,
            100.0 * self.top_share_after
        );
        if !self.labels.is_empty() {
            s += &format!("; answers among {}", self.labels.join(", "));
        }
        s
    }
}

/// The `source` an adaptation records for the inputs it was given: all of them, or the
/// first three and how many more; each path as `pathlib` writes it (`./room/` is `room`),
/// so `serlaq adapt` and `serlaq-rt adapt` write the same file however a folder is typed.
pub fn source_text(inputs: &[String]) -> String {
    let shown: Vec<String> =
        inputs.iter().map(|p| crate::runtime::pathlib(Path::new(p)).display().to_string()).collect();
    if shown.len() <= 3 {
        shown.join(", ")
    } else {
        format!("{} and {} more", shown[..3].join(", "), shown.len() - 3)
    }
}

/// The labels of a comma-separated list as the faces take it (`angry, sad,` is two):
/// each trimmed, empty items dropped; names are checked by [`held_columns`].
pub fn parse_labels(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

/// Why no adaptation was written; `Display` is one line.
#[derive(Debug)]
pub enum AdaptError {
    /// Not one file could be used (each failure names its file).
    NoUsableAudio { failures: Vec<String> },
    /// Too little audio to estimate the statistics well.
    TooLittle { clips: usize, speech_seconds: f64, min_clips: usize, min_speech_seconds: f64, failures: Vec<String> },
    /// [`AdaptOptions::labels`] names a label the model lacks, one twice, or fewer than two.
    Labels(String),
    /// The new file could not be built (a bug: the old one was valid).
    Build(LaqError),
}

impl fmt::Display for AdaptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdaptError::NoUsableAudio { failures } => match failures.len() {
                1 => write!(f, "adapt: the one file given holds no usable audio"),
                n => write!(f, "adapt: none of the {n} files holds usable audio"),
            },
            AdaptError::TooLittle { clips, speech_seconds, min_clips, min_speech_seconds, .. } => {
                let more_clips = min_clips.saturating_sub(*clips);
                let more_secs = (min_speech_seconds - speech_seconds).max(0.0);
                let mut need = Vec::new();
                if more_clips > 0 {
                    need.push(counted(more_clips, "more clip"));
                }
                if more_secs > 0.0 {
                    need.push(format!("{more_secs:.1} more seconds of speech"));
                }
                write!(
                    f,
                    "adapt: too little audio to adapt reliably: {} with {speech_seconds:.1} s of speech; needs at \
                     least {min_clips} clips and {min_speech_seconds:.0} s of speech ({})",
                    counted(*clips, "usable clip"),
                    need.join(" and ")
                )
            }
            AdaptError::Labels(why) => write!(f, "adapt: labels: {why}"),
            AdaptError::Build(e) => write!(f, "adapt: cannot build the adapted model: {e}"),
        }
    }
}

impl std::error::Error for AdaptError {}

/// `1 usable clip`, `3 usable clips`.
fn counted(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// One clip's contribution: its raw feature vector and its durations.
#[derive(Debug)]
struct Clip {
    features: Vec<f32>,
    seconds: f64,
    speech_seconds: f64,
    /// A window of a recording longer than [`LONG_RECORDING_SECONDS`], not a whole clip.
    window: bool,
}

/// Frames within this many dB of a clip's loudest frame count as speech: relative, so a
/// quiet room or a low recording level (what adaptation is for) is not taken for silence.
pub const SPEECH_RANGE_DB: f64 = 30.0;
/// Absolute floor of a speech frame (dBFS): below it, nothing is speech.
pub const SPEECH_FLOOR_DB: f64 = -80.0;

/// A recording longer than this (seconds) is not one utterance: it is cut into windows of
/// [`LONG_WINDOW_SECONDS`], each holding speech a clip of its own ([`wave_clips`]).
pub const LONG_RECORDING_SECONDS: f64 = 30.0;
/// The windows a long recording is cut into: the length `--segments` classifies by default,
/// so the statistics are those of what the adapted model will be given.
pub const LONG_WINDOW_SECONDS: f64 = crate::segments::DEFAULT_WINDOW;

/// Samples in one 25 ms frame of the speech measure.
fn frame_len(rate: u32) -> usize {
    (rate as usize / 40).max(1)
}

/// Each 25 ms frame's sample count and mean-square level.
fn frame_powers(wave: &[f32], rate: u32) -> Vec<(usize, f64)> {
    wave.chunks(frame_len(rate))
        .map(|c| (c.len(), c.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / c.len() as f64))
        .collect()
}

/// The mean-square level a speech frame reaches: within [`SPEECH_RANGE_DB`] of the loudest
/// frame and above [`SPEECH_FLOOR_DB`].
fn speech_threshold(powers: &[(usize, f64)]) -> f64 {
    let loudest = powers.iter().map(|&(_, p)| p).fold(0.0, f64::max);
    (loudest * 10f64.powf(-SPEECH_RANGE_DB / 10.0)).max(10f64.powf(SPEECH_FLOOR_DB / 10.0))
}

/// Seconds of the frames at or above `threshold`.
fn voiced_seconds(powers: &[(usize, f64)], threshold: f64, rate: u32) -> f64 {
    powers.iter().filter(|f| f.1 >= threshold).map(|f| f.0).sum::<usize>() as f64 / f64::from(rate)
}

/// A decoded wave at the model's rate -> its clips; feature errors are named by `source`.
/// An utterance is one clip. A long recording ([`LONG_RECORDING_SECONDS`]) is cut into
/// back-to-back windows of [`LONG_WINDOW_SECONDS`] (the tail shorter than one is dropped),
/// and each window whose speech frames make up at least the share `--segments` asks of a
/// speech window (`segments::DEFAULT_MIN_SPEECH`) is a clip: a long recording of a room
/// counts as the many utterances it holds, not as one, and its pauses are left out. There
/// a speech frame is judged against the whole recording's loudest and must also reach the
/// default gate of `--segments` (`segments::DEFAULT_VAD_DB`): an hour of room tone is no
/// speech, however quiet the room.
fn wave_clips(model: &Model, wave: &[f32], source: &str) -> Result<Vec<Clip>, String> {
    let rate = model.spec().sample_rate;
    let features = |w: &[f32]| model.features_wave(w).map_err(|e| model_error(source, e));
    let powers = frame_powers(wave, rate);
    let threshold = speech_threshold(&powers);
    let seconds = wave.len() as f64 / f64::from(rate);
    if seconds <= LONG_RECORDING_SECONDS {
        let speech_seconds = voiced_seconds(&powers, threshold, rate);
        return Ok(vec![Clip { features: features(wave)?, seconds, speech_seconds, window: false }]);
    }
    let gate = crate::segments::DEFAULT_VAD_DB;
    let threshold = threshold.max(10f64.powf(gate / 10.0));
    let window = (LONG_WINDOW_SECONDS * f64::from(rate)).round() as usize;
    let per_frame = frame_len(rate);
    let mut clips = Vec::new();
    for (k, piece) in wave.chunks_exact(window).enumerate() {
        let first = k * window / per_frame;
        let span = &powers[first..((k + 1) * window).div_ceil(per_frame).min(powers.len())];
        let speech_seconds = voiced_seconds(span, threshold, rate);
        if speech_seconds >= crate::segments::DEFAULT_MIN_SPEECH * LONG_WINDOW_SECONDS {
            clips.push(Clip { features: features(piece)?, seconds: LONG_WINDOW_SECONDS, speech_seconds, window: true });
        }
    }
    if clips.is_empty() {
        return Err(format!(
            "{source}: no speech in this {seconds:.1}-s recording (no {LONG_WINDOW_SECONDS}-s window has a quarter \
             of its frames at {gate} dBFS or more and within {SPEECH_RANGE_DB} dB of the loudest)"
        ));
    }
    Ok(clips)
}

/// A model error of one clip as one line naming it.
fn model_error(source: &str, e: ModelError) -> String {
    match e {
        ModelError::Audio(a) => a.to_string(),
        other => format!("{source}: {other}"),
    }
}

/// Runs `f` with panics caught; a panic becomes one line naming `source`.
fn caught(source: &str, f: impl FnOnce() -> Result<Vec<Clip>, String>) -> Result<Vec<Clip>, String> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(format!("{source}: internal error (a panic in serlaq; please report)")))
}

fn clip(model: &Model, path: &Path) -> Result<Vec<Clip>, String> {
    let name = path.display().to_string();
    caught(&name, || {
        let spec = model.spec();
        let wave = audio::load(path, spec.sample_rate, spec.min_samples()).map_err(|e| e.to_string())?;
        wave_clips(model, &wave, &name)
    })
}

/// Features of every file (input order), on `threads` native threads.
fn clips(model: &Model, paths: &[PathBuf], threads: usize) -> Vec<Result<Vec<Clip>, String>> {
    if threads == 1 || paths.len() <= 1 {
        return paths.iter().map(|p| clip(model, p)).collect();
    }
    let mut builder = rayon::ThreadPoolBuilder::new();
    if threads > 0 {
        builder = builder.num_threads(threads);
    }
    match builder.build() {
        Ok(pool) => pool.install(|| paths.par_iter().map(|p| clip(model, p)).collect()),
        Err(_) => paths.iter().map(|p| clip(model, p)).collect(),
    }
}

/// Most clips one adaptation gathers: a device adding clips for ever must hit a bound
/// (each clip keeps its feature vector, about 1 KB) long before memory does.
pub const MAX_CLIPS: usize = 100_000;

/// The clips gathered for an adaptation, one at a time: each keeps its feature vector and
/// durations, not its audio, so a device can gather a room's clips over hours in about
/// 1 KB each and adapt when [`Gathered::enough`] says so. [`adapt`] fills one from files;
/// the C ABI and the WebAssembly module fill one from samples or encoded bytes.
#[derive(Debug, Default)]
pub struct Gathered {
    clips: Vec<Clip>,
    failures: Vec<String>,
    /// What the clips came from, in first-seen order, each name once ([`source_text`]).
    sources: Vec<String>,
    /// Recordings longer than [`LONG_RECORDING_SECONDS`] among them (cut into windows).
    recordings: usize,
}

impl Gathered {
    pub fn new() -> Gathered {
        Gathered::default()
    }

    fn push(&mut self, r: Result<Vec<Clip>, String>, source: &str) -> Result<(), String> {
        let c = r?;
        if self.clips.len() + c.len() > MAX_CLIPS {
            return Err(format!("{source}: the adaptation would hold more than {MAX_CLIPS} clips, the most it takes"));
        }
        if !self.sources.iter().any(|s| s == source) {
            self.sources.push(source.to_string());
        }
        self.recordings += usize::from(c.iter().any(|clip| clip.window));
        self.clips.extend(c);
        Ok(())
    }

    /// Adds a decoded wave already at the model's rate (`audio::prepare` / `load_bytes`
    /// give one); `source` names it in errors and in the record. An error leaves the
    /// gathered clips as they were.
    pub fn add_wave(&mut self, model: &Model, wave: &[f32], source: &str) -> Result<(), String> {
        let r = caught(source, || wave_clips(model, wave, source));
        self.push(r, source)
    }

    /// Adds an audio file (decoded and resampled as `serlaq predict` does).
    pub fn add_file(&mut self, model: &Model, path: &Path) -> Result<(), String> {
        let r = clip(model, path);
        self.push(r, &path.display().to_string())
    }

    /// Adds a batch of files, decoded on `threads` native threads (0: rayon's default),
    /// in their order; each file that cannot be used is left out and named in
    /// [`Adapted::failures`].
    pub fn add_files(&mut self, model: &Model, paths: &[PathBuf], threads: usize) {
        for (r, p) in clips(model, paths, threads).into_iter().zip(paths) {
            if let Err(e) = self.push(r, &p.display().to_string()) {
                self.failures.push(e);
            }
        }
    }

    /// Records a clip the caller could not use (one line naming it): it is counted among
    /// the clips left out, as a file that failed to decode is.
    pub fn left_out(&mut self, why: String) {
        self.failures.push(why);
    }

    /// Clips gathered so far.
    pub fn clips(&self) -> usize {
        self.clips.len()
    }

    /// Seconds of speech in them (what [`MIN_SPEECH_SECONDS`] counts).
    pub fn speech_seconds(&self) -> f64 {
        self.clips.iter().fold(0.0, |sum, c| sum + c.speech_seconds) // 0.0, not -0.0, for none
    }

    /// Whether an adaptation with `opts` would have enough audio.
    pub fn enough(&self, opts: &AdaptOptions) -> bool {
        self.clips() >= opts.min_clips && self.speech_seconds() >= opts.min_speech_seconds
    }

    /// What the clips came from, as an adaptation records it.
    pub fn source(&self) -> String {
        source_text(&self.sources)
    }
}

/// Per-feature mean of the rows and the std `rule` gives from their population std
/// (float64 sums) and the model's own; a std below [`STD_FLOOR`] times the model's own is
/// raised to it.
pub fn statistics<R: AsRef<[f32]>>(rows: &[R], model_std: &[f32], rule: StdRule) -> (Vec<f32>, Vec<f32>) {
    let d = model_std.len();
    let n = rows.len().max(1) as f64;
    let mut mean = vec![0f64; d];
    for r in rows {
        mean.iter_mut().zip(r.as_ref()).for_each(|(m, &v)| *m += f64::from(v));
    }
    mean.iter_mut().for_each(|m| *m /= n);
    let mut var = vec![0f64; d];
    for r in rows {
        var.iter_mut().zip(r.as_ref()).zip(&mean).for_each(|((s, &v), &m)| *s += (f64::from(v) - m).powi(2));
    }
    let std = var
        .iter()
        .zip(model_std)
        .map(|(&s, &old)| {
            let (target, old) = ((s / n).sqrt(), f64::from(old));
            let std = match rule {
                StdRule::Widen => target.max(old),
                StdRule::Target => target,
                StdRule::Model => old,
            };
            std.max(STD_FLOOR * old) as f32
        })
        .collect();
    (mean.into_iter().map(|m| m as f32).collect(), std)
}

/// Bias shift (logit units) of a label the new audio does not hold ([`AdaptOptions::labels`]):
/// far below any logit difference these networks produce, so such a label is never the
/// answer and softmax gives it no share at a stored temperature.
pub const ABSENT_SHIFT: f64 = -1000.0;

/// The columns of `wanted` among the model's `labels` (in the model's order); an unknown or
/// repeated name, or fewer than two, is an error naming it.
pub fn held_columns(labels: &[String], wanted: &[String]) -> Result<Vec<usize>, AdaptError> {
    let mut held = Vec::with_capacity(wanted.len());
    for name in wanted {
        let Some(c) = labels.iter().position(|l| l == name) else {
            return Err(AdaptError::Labels(format!("{name:?} is not a label of the model ({})", labels.join(", "))));
        };
        if held.contains(&c) {
            return Err(AdaptError::Labels(format!("{name:?} is given twice")));
        }
        held.push(c);
    }
    if held.len() < 2 {
        return Err(AdaptError::Labels(format!("{} given; at least 2 are needed to answer among", held.len())));
    }
    held.sort_unstable();
    Ok(held)
}

/// The output-bias shift of an adaptation: with `held` (the labels the audio holds, by
/// column) the balance over those columns alone (when `balance`) and [`ABSENT_SHIFT`] for
/// the rest; without, the balance over every label (when `balance`). `None`: no shift.
pub fn output_shift(
    logits: &[f32],
    classes: usize,
    temperature: f64,
    balance: bool,
    held: Option<&[usize]>,
) -> Option<Vec<f64>> {
    let Some(held) = held else {
        return balance.then(|| balance_shift(logits, classes, temperature));
    };
    let mut shift = vec![ABSENT_SHIFT; classes];
    let inner = if balance {
        let sub: Vec<f32> = logits.chunks_exact(classes).flat_map(|r| held.iter().map(|&c| r[c])).collect();
        balance_shift(&sub, held.len(), temperature)
    } else {
        vec![0.0; held.len()]
    };
    held.iter().zip(inner).for_each(|(&c, v)| shift[c] = v);
    Some(shift)
}

/// Largest bias shift (logit units) the balance step may apply to one label: a label the
/// model never gives on the target is raised this far and no further.
pub const BALANCE_LIMIT: f64 = 8.0;
const BALANCE_ITERATIONS: usize = 200;
const BALANCE_TOLERANCE: f64 = 1.0e-6;

/// The output-bias shift (logit units, one per class) under which the mean of
/// `softmax((logits + shift) / temperature)` over the rows is uniform: iterates
/// `shift += T * ln(1/k / mean_p)` (the EM fixed point of a prior correction), each entry
/// centred (softmax ignores a common shift), then kept within [`BALANCE_LIMIT`].
pub fn balance_shift(logits: &[f32], classes: usize, temperature: f64) -> Vec<f64> {
    let mut shift = vec![0f64; classes];
    if classes < 2 || logits.len() < classes {
        return shift;
    }
    let target = 1.0 / classes as f64;
    for _ in 0..BALANCE_ITERATIONS {
        let q = mean_probabilities(logits, classes, temperature, &shift);
        let mut next: Vec<f64> =
            shift.iter().zip(&q).map(|(&s, &qk)| s + temperature * (target / qk.max(1e-300)).ln()).collect();
        let centre = next.iter().sum::<f64>() / classes as f64;
        next.iter_mut().for_each(|s| *s = (*s - centre).clamp(-BALANCE_LIMIT, BALANCE_LIMIT));
        let moved = next.iter().zip(&shift).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        shift = next;
        if moved < BALANCE_TOLERANCE {
            break;
        }
    }
    shift
}

/// Mean over rows of `softmax((logits + shift) / temperature)`.
fn mean_probabilities(logits: &[f32], classes: usize, temperature: f64, shift: &[f64]) -> Vec<f64> {
    let shifted: Vec<f32> = logits
        .chunks_exact(classes)
        .flat_map(|r| r.iter().zip(shift).map(|(&v, &s)| (f64::from(v) + s) as f32))
        .collect();
    let p = crate::model::softmax_rows_t(&shifted, classes, temperature);
    let n = (p.len() / classes).max(1) as f64;
    let mut q = vec![0f64; classes];
    for row in p.chunks_exact(classes) {
        q.iter_mut().zip(row).for_each(|(a, &b)| *a += b);
    }
    q.iter_mut().for_each(|v| *v /= n);
    q
}

/// Share of the rows whose largest logit (after `shift`) is the most common one.
fn top_share(logits: &[f32], classes: usize, shift: &[f64]) -> f64 {
    let mut counts = vec![0usize; classes];
    for row in logits.chunks_exact(classes) {
        let best = row
            .iter()
            .zip(shift)
            .map(|(&v, &s)| f64::from(v) + s)
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |acc, (i, v)| if v > acc.1 { (i, v) } else { acc });
        counts[best.0] += 1;
    }
    let n = logits.len() / classes.max(1);
    counts.into_iter().max().unwrap_or(0) as f64 / n.max(1) as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let k = v.len() / 2;
    if v.len() % 2 == 1 {
        v[k]
    } else {
        0.5 * (v[k - 1] + v[k])
    }
}

/// Adapts `model` to the audio in `paths` (files; discovery is the caller's). Files that
/// cannot be used are left out and named in [`Adapted::failures`]; below the minimum of
/// usable audio nothing is built.
pub fn adapt(model: &Model, paths: &[PathBuf], opts: &AdaptOptions) -> Result<Adapted, AdaptError> {
    adapt_with_waves(model, paths, &[], opts)
}

/// [`adapt`] on files and on `waves`: `(name, mono samples at the model's rate)`, e.g. a
/// program's recordings held in memory; a wave that cannot be used is left out under its
/// name, as a file is.
pub fn adapt_with_waves(
    model: &Model,
    paths: &[PathBuf],
    waves: &[(String, Vec<f32>)],
    opts: &AdaptOptions,
) -> Result<Adapted, AdaptError> {
    // the labels are checked before any audio is read
    if !opts.labels.is_empty() {
        held_columns(model.labels(), &opts.labels)?;
    }
    let mut gathered = Gathered::new();
    gathered.add_files(model, paths, opts.threads);
    for (name, wave) in waves {
        if let Err(e) = gathered.add_wave(model, wave, name) {
            gathered.left_out(e);
        }
    }
    adapt_gathered(model, &gathered, opts)
}

/// Adapts `model` to the clips gathered (see [`Gathered`]); below the minimum of usable
/// audio nothing is built (and more clips may be gathered). `opts.source` empty: the record
/// names what the clips came from.
pub fn adapt_gathered(model: &Model, gathered: &Gathered, opts: &AdaptOptions) -> Result<Adapted, AdaptError> {
    let held = if opts.labels.is_empty() { None } else { Some(held_columns(model.labels(), &opts.labels)?) };
    let source = if opts.source.is_empty() { gathered.source() } else { opts.source.clone() };
    let (good, failures) = (&gathered.clips, gathered.failures.clone());
    // nothing gathered yet (an adapter just made) is too little, not a batch of bad files
    if good.is_empty() && !failures.is_empty() {
        return Err(AdaptError::NoUsableAudio { failures });
    }
    let seconds: f64 = good.iter().map(|c| c.seconds).sum();
    let speech = gathered.speech_seconds();
    if good.len() < opts.min_clips || speech < opts.min_speech_seconds {
        return Err(AdaptError::TooLittle {
            clips: good.len(),
            speech_seconds: speech,
            min_clips: opts.min_clips,
            min_speech_seconds: opts.min_speech_seconds,
            failures,
        });
    }
    let rows: Vec<&[f32]> = good.iter().map(|c| c.features.as_slice()).collect();
    let (_, old_std) = model.normalization();
    let (mean, std) = statistics(&rows, old_std, opts.std);
    let ood_before = median(rows.iter().filter_map(|r| model.ood_score(r).ok()).collect());
    // the clips as the adapted model will see them, standardized once for every use below
    let d = model.input_dim();
    let z = crate::model::standardize(&rows.concat(), &mean, &std);
    let rms: Vec<f64> = z.chunks_exact(d).map(crate::ood::feature_rms).collect();
    let (hidden, logits) = model
        .forward_hidden(z, rows.len())
        .map_err(|e| AdaptError::Build(LaqError::Invalid(format!("adapted model: {e}"))))?;
    // a hidden reference moves to the new room too: distances from now on are from it
    let reference = model.reference().map(|r| r.refit(&hidden, rows.len()));
    let ood_after = match &reference {
        Some(r) => median(
            hidden
                .chunks_exact(hidden.len() / rows.len())
                .zip(&rms)
                .map(|(h, &f)| r.score(h, f, model.ood_threshold()))
                .collect(),
        ),
        None => median(rms),
    };
    let created = opts.created.clone().unwrap_or_else(created_now);
    let mut record = json!({
        "created": created,
        "clips": rows.len(),
        "seconds": (seconds * 100.0).round() / 100.0,
        "source": source,
        "adapted": if reference.is_some() { json!(["normalization", "ood_reference"]) } else { json!(["normalization"]) },
        "std": opts.std.name(),
    });
    let classes = model.num_classes();
    // "before" is what the model answered as it was: its own statistics, no shift
    let old_logits = model
        .forward(&rows.concat())
        .map_err(|e| AdaptError::Build(LaqError::Invalid(format!("model before adaptation: {e}"))))?;
    let top_share_before = top_share(&old_logits, classes, &vec![0f64; classes]);
    let shift = output_shift(&logits, classes, model.temperature(), opts.balance, held.as_deref());
    let (bytes, top_share_after) = if let Some(shift) = shift {
        if let Some(steps) = record["adapted"].as_array_mut() {
            if held.is_some() {
                steps.push(json!("labels"));
            }
            if opts.balance {
                steps.push(json!("label_balance"));
            }
        }
        if let Some(held) = &held {
            record["labels"] = json!(held.iter().map(|&c| model.labels()[c].as_str()).collect::<Vec<_>>());
        }
        record["bias_shift"] = json!(shift.iter().map(|v| (v * 1e4).round() / 1e4).collect::<Vec<_>>());
        let shift32: Vec<f32> = shift.iter().map(|&v| v as f32).collect();
        let bytes = with_normalization(model, &mean, &std, reference.as_ref(), Some(&shift32), record)
            .map_err(AdaptError::Build)?;
        (bytes, top_share(&logits, classes, &shift))
    } else {
        (
            with_normalization(model, &mean, &std, reference.as_ref(), None, record).map_err(AdaptError::Build)?,
            top_share(&logits, classes, &vec![0f64; classes]),
        )
    };
    Ok(Adapted {
        bytes,
        clips: rows.len(),
        windows: good.iter().filter(|c| c.window).count(),
        recordings: gathered.recordings,
        seconds,
        speech_seconds: speech,
        failures,
        ood_before,
        ood_after,
        top_share_before,
        top_share_after,
        labels: held.map(|h| h.iter().map(|&c| model.labels()[c].clone()).collect()).unwrap_or_default(),
    })
}

/// The model's file with its normalization tensors replaced (and the hidden reference's
/// mean and scale, when `reference` is given), `bias_shift` (one value per class) added to
/// the output layer's bias, and `record` appended to `provenance.adaptations`; everything
/// else as stored. Written by the format's own encoder, which re-reads what it wrote.
pub fn with_normalization(
    model: &Model,
    mean: &[f32],
    std: &[f32],
    reference: Option<&HiddenReference>,
    bias_shift: Option<&[f32]>,
    record: Value,
) -> Result<Vec<u8>, LaqError> {
    let file = model.file();
    let mut meta: Map<String, Value> =
        serde_json::from_str(model.metadata_json()).map_err(|e| LaqError::Invalid(format!("metadata: {e}")))?;
    let norm = meta.get("normalization").and_then(Value::as_object).cloned().unwrap_or_default();
    let name = |k: &str| norm.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(mean_name), Some(std_name)) = (name("mean"), name("std")) else {
        return Err(LaqError::Invalid("metadata: normalization tensors are not named".into()));
    };
    let provenance = meta.entry("provenance").or_insert_with(|| Value::Object(Map::new()));
    if !provenance.is_object() {
        *provenance = Value::Object(Map::new());
    }
    let list = provenance.as_object_mut().expect("made an object above").entry("adaptations").or_insert(json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    list.as_array_mut().expect("made a list above").push(record);
    let meta_json = serde_json::to_string(&meta).map_err(|e| LaqError::Invalid(format!("metadata: {e}")))?;

    let codes: Vec<Vec<u8>> = (0..file.layers().len()).map(|i| file.codes(i)).collect();
    let last = file.layers().len().saturating_sub(1);
    let shifted_bias: Option<Vec<f32>> = match bias_shift {
        None => None,
        Some(shift) => {
            let rows = file.layers().get(last).map_or(0, |l| l.rows);
            if shift.len() != rows || shift.iter().any(|v| !v.is_finite()) {
                return Err(LaqError::Invalid(format!(
                    "bias shift: {} values for an output layer of {rows}",
                    shift.len()
                )));
            }
            let old = file.bias_slice(last).map_or_else(|| vec![0f32; rows], <[f32]>::to_vec);
            Some(old.iter().zip(shift).map(|(&b, &s)| b + s).collect())
        }
    };
    let layers: Vec<LayerInput> = file
        .layers()
        .iter()
        .enumerate()
        .map(|(i, l)| LayerInput {
            name: &l.name,
            rows: l.rows,
            cols: l.cols,
            bits: l.bits,
            quantizer: l.quantizer,
            codes: &codes[i],
            scale: file.scale_slice(i),
            zero: file.zero_slice(i),
            bias: if i == last && shifted_bias.is_some() { shifted_bias.as_deref() } else { file.bias_slice(i) },
        })
        .collect();
    let tensors: Vec<TensorInput> = file
        .tensors()
        .iter()
        .enumerate()
        .map(|(i, t)| TensorInput {
            name: &t.name,
            shape: &t.shape,
            data: if t.name == mean_name {
                mean
            } else if t.name == std_name {
                std
            } else if let Some(r) = reference.filter(|r| t.name == r.tensor_names()[0]) {
                r.mean()
            } else if let Some(r) = reference.filter(|r| t.name == r.tensor_names()[2]) {
                r.scale()
            } else {
                file.tensor_slice(i)
            },
        })
        .collect();
    let bytes = format::encode(&meta_json, &layers, &tensors)?;
    // What the runtime will refuse (a std out of bounds) is refused here, before writing.
    let reread = format::LaqFile::from_bytes(bytes.clone())?;
    Model::from_laq(reread).map_err(|e| LaqError::Invalid(format!("adapted model: {e}")))?;
    Ok(bytes)
}

/// ISO-8601 UTC (`YYYY-MM-DDTHH:MM:SSZ`) of `SOURCE_DATE_EPOCH` when set (reproducible
/// builds), else of now.
pub fn created_now() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64));
    iso_utc(secs)
}

/// Seconds since the Unix epoch -> ISO-8601 UTC (proleptic Gregorian; H. Hinnant's
/// days-to-civil).
pub fn iso_utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso_utc(1_796_000_000), "2026-11-30T00:53:20Z");
    }

    #[test]
    fn statistics_floor_the_std() {
        let rows = vec![vec![1.0, 5.0], vec![3.0, 5.0]];
        let (m, s) = statistics(&rows, &[1.0, 2.0], StdRule::Target);
        assert_eq!(m, vec![2.0, 5.0]);
        assert_eq!(s, vec![1.0, 2.0e-3]);
    }

    #[test]
    fn each_std_rule_gives_its_std() {
        // target stds 1, 0, 2 against the model's 0.5, 2, 4
        let rows = vec![vec![1.0, 5.0, -2.0], vec![3.0, 5.0, 2.0]];
        let model = [0.5, 2.0, 4.0];
        let std = |rule| statistics(&rows, &model, rule).1;
        assert_eq!(std(StdRule::Widen), vec![1.0, 2.0, 4.0]);
        assert_eq!(std(StdRule::Target), vec![1.0, 2.0e-3, 2.0]);
        assert_eq!(std(StdRule::Model), vec![0.5, 2.0, 4.0]);
        assert!(statistics(&rows, &model, StdRule::Model).0 == vec![2.0, 5.0, 0.0], "the mean always moves");
        assert_eq!(AdaptOptions::default().std, StdRule::Widen);
    }

    #[test]
    fn std_rules_parse_by_name() {
        for rule in StdRule::ALL {
            assert_eq!(StdRule::parse(rule.name()), Ok(rule));
        }
        let e = StdRule::parse("wide").unwrap_err();
        assert!(e.contains("\"wide\"") && e.contains("widen, target, model"), "{e}");
    }

    #[test]
    fn balance_spreads_a_collapsed_output() {
        // 3 classes; every row prefers class 0, but classes 1 and 2 rank differently by row
        let logits: Vec<f32> = (0..30).flat_map(|i| [3.0, (i % 3) as f32, 2.0 - (i % 3) as f32]).collect();
        assert_eq!(top_share(&logits, 3, &[0.0; 3]), 1.0);
        let shift = balance_shift(&logits, 3, 1.0);
        let q = mean_probabilities(&logits, 3, 1.0, &shift);
        for qk in q {
            assert!((qk - 1.0 / 3.0).abs() < 1e-4, "{qk}");
        }
        assert!(top_share(&logits, 3, &shift) < 0.5);
        assert!(shift.iter().sum::<f64>().abs() < 1e-6);
    }

    #[test]
    fn held_labels_are_balanced_alone_and_the_others_never_answer() {
        // 4 classes; the audio holds classes 1 and 3 only, and the raw output prefers 0 and 2
        let logits: Vec<f32> = (0..40).flat_map(|i| [4.0, (i % 2) as f32, 3.0, 1.0 - (i % 2) as f32]).collect();
        let shift = output_shift(&logits, 4, 1.0, true, Some(&[1, 3])).unwrap();
        assert_eq!((shift[0], shift[2]), (ABSENT_SHIFT, ABSENT_SHIFT));
        assert!((shift[1] + shift[3]).abs() < 1e-9, "{shift:?}"); // centred among the held
        let q = mean_probabilities(&logits, 4, 1.0, &shift);
        assert!((q[1] - 0.5).abs() < 1e-4 && (q[3] - 0.5).abs() < 1e-4, "{q:?}");
        for row in logits.chunks_exact(4) {
            let best =
                (0..4).max_by(|&a, &b| (f64::from(row[a]) + shift[a]).total_cmp(&(f64::from(row[b]) + shift[b])));
            assert!(matches!(best, Some(1 | 3)));
        }
        // without the balance the held keep their logits; without labels, the old balance
        assert_eq!(
            output_shift(&logits, 4, 1.0, false, Some(&[1, 3])).unwrap(),
            vec![ABSENT_SHIFT, 0.0, ABSENT_SHIFT, 0.0]
        );
        assert_eq!(output_shift(&logits, 4, 1.0, true, None).unwrap(), balance_shift(&logits, 4, 1.0));
        assert_eq!(output_shift(&logits, 4, 1.0, false, None), None);
    }

    #[test]
    fn source_names_three_inputs_then_counts() {
        let names = |n: usize| (0..n).map(|i| format!("d{i}")).collect::<Vec<_>>();
        assert_eq!(source_text(&names(1)), "d0");
        assert_eq!(source_text(&names(3)), "d0, d1, d2");
        assert_eq!(source_text(&names(5)), "d0, d1, d2 and 2 more");
    }

    #[test]
    fn held_columns_name_what_is_wrong() {
        let labels: Vec<String> = ["angry", "happy", "neutral", "sad"].map(String::from).to_vec();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(held_columns(&labels, &names(&["sad", "angry"])).unwrap(), vec![0, 3]);
        let e = held_columns(&labels, &names(&["sad", "calm"])).unwrap_err().to_string();
        assert!(e.contains("\"calm\" is not a label of the model (angry, happy, neutral, sad)"), "{e}");
        let e = held_columns(&labels, &names(&["sad", "sad"])).unwrap_err().to_string();
        assert!(e.contains("\"sad\" is given twice"), "{e}");
        let e = held_columns(&labels, &names(&["sad"])).unwrap_err().to_string();
        assert!(e.contains("at least 2"), "{e}");
    }

    #[test]
    fn balance_is_bounded_for_a_label_never_given() {
        let logits: Vec<f32> = (0..10).flat_map(|_| [0.0, 0.0, -1.0e4]).collect();
        let shift = balance_shift(&logits, 3, 1.0);
        assert!(shift.iter().all(|s| s.is_finite() && s.abs() <= BALANCE_LIMIT), "{shift:?}");
    }
}
