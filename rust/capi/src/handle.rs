//! The handles the C ABI and the WebAssembly module hand out, over the runtime facade
//! (`serlaq_core::runtime`) and the core: a loaded model (shared read-only, labels kept as
//! C strings), a segment stream and an adapter gathering a room's clips (each owned by
//! one caller at a time). Only transport lives here: errors become (code, one line),
//! inputs are passed on unchanged.

use crate::error::{Error, ERR_ARGUMENT, ERR_AUDIO, ERR_INTERNAL, ERR_MODEL, ERR_STREAM, ERR_TOO_LITTLE};
use serlaq_core::adapt::{adapt_gathered, AdaptError, AdaptOptions, Gathered};
use serlaq_core::audio::{self, AudioError, Layout};
use serlaq_core::model::{Model, ModelError};
use serlaq_core::runtime::ModelSource;
use serlaq_core::segments::{RunningNorm, Segment, SegmentError, SegmentOptions, Segmenter};
use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::path::Path;
use std::sync::Arc;

/// Names in-memory inputs in error lines (as the Python runtime does for bytes).
pub const BYTES_SOURCE: &str = "<bytes>";
pub const PCM_SOURCE: &str = "<pcm>";
pub const STREAM_SOURCE: &str = "<stream>";

fn audio_err(e: AudioError) -> Error {
    Error::new(ERR_AUDIO, e.to_string())
}

/// A prediction's error with its code, the same for a file, samples or bytes (serlaq.h):
/// the audio's fault (it cannot be decoded, or gives no features: too short, silent, NaN)
/// is `ERR_AUDIO`; the model refusing to compute on features the audio gave is the
/// model's, `ERR_MODEL`. The text is `serlaq-rt`'s for the same file.
fn run_err(source: &str, e: ModelError) -> Error {
    match e {
        ModelError::Audio(a) => audio_err(a),
        ModelError::Features(f) => Error::new(ERR_AUDIO, format!("{source}: {f}")),
        other => Error::new(ERR_MODEL, format!("{source}: {other}")),
    }
}

/// Mono samples at `rate` Hz -> the model's rate, with the checks of a decoded file.
fn pcm_wave(model: &Model, samples: &[f32], rate: u32) -> Result<Vec<f32>, Error> {
    let spec = model.spec();
    audio::prepare(samples, 1, Layout::Planar, rate, spec.sample_rate, spec.min_samples(), PCM_SOURCE)
        .map_err(audio_err)
}

/// An encoded file in memory -> mono samples at the model's rate.
fn bytes_wave(model: &Model, data: &[u8]) -> Result<Vec<f32>, Error> {
    let spec = model.spec();
    audio::load_bytes(data, BYTES_SOURCE, spec.sample_rate, spec.min_samples()).map_err(audio_err)
}

fn segment_err(e: SegmentError) -> Error {
    let code = match e {
        SegmentError::Option { .. } => ERR_ARGUMENT,
        SegmentError::Audio(_) => ERR_AUDIO,
        _ => ERR_STREAM,
    };
    Error::new(code, e.to_string())
}

/// A validated model and its labels as C strings. `Send + Sync`: every method takes
/// `&self`, so one handle serves any number of threads at once.
#[derive(Debug)]
pub struct ModelHandle {
    model: Arc<Model>,
    labels: Vec<CString>,
}

impl ModelHandle {
    /// Loads and validates a model through the facade; the error names the source.
    pub fn load(source: ModelSource) -> Result<ModelHandle, Error> {
        let origin = source.name();
        let model = source.load().map_err(|e| Error::new(ERR_MODEL, e.to_string()))?;
        // labels are non-empty JSON strings; one holding a NUL could not cross to C
        let labels = model
            .labels()
            .iter()
            .map(|l| CString::new(l.as_str()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Error::new(ERR_MODEL, format!("{origin}: a label holds a NUL character")))?;
        Ok(ModelHandle { model: Arc::new(model), labels })
    }

    /// Reads and validates a `.laq` file; errors name the file. The name `general` is the
    /// general model built into the library, as in every other face (`./general` for a
    /// file of that name).
    pub fn open(path: &Path) -> Result<ModelHandle, Error> {
        ModelHandle::load(ModelSource::from_arg(path))
    }

    /// Validates a `.laq` file held in memory.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<ModelHandle, Error> {
        ModelHandle::load(ModelSource::Bytes { name: BYTES_SOURCE.into(), bytes })
    }

    /// The model's `.laq` bytes, as loaded (an adapted model's as built).
    pub fn bytes(&self) -> &[u8] {
        self.model.file().as_bytes()
    }

    /// Writes the model's `.laq` bytes to `path` atomically (the old file or the whole
    /// new one, never a part).
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        serlaq_core::format::write_atomic(path, self.bytes())
            .map_err(|e| Error::new(ERR_MODEL, format!("{}: cannot write the model: {e}", path.display())))
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn num_labels(&self) -> usize {
        self.labels.len()
    }

    pub fn label(&self, i: usize) -> Result<&CStr, Error> {
        self.labels.get(i).map(CString::as_c_str).ok_or_else(|| {
            Error::argument(format!("label index {i} is out of range (the model has {} labels)", self.labels.len()))
        })
    }

    /// The model's input sample rate (what it resamples everything to).
    pub fn sample_rate(&self) -> u32 {
        self.model.spec().sample_rate
    }

    /// The out-of-domain score above which a clip lies outside the training data.
    pub fn ood_threshold(&self) -> f64 {
        self.model.ood_threshold()
    }

    /// An audio file -> (class probabilities in label order, its out-of-domain score).
    /// Errors are `serlaq-rt predict`'s lines for the file, coded as the other inputs'
    /// ([`run_err`]); a panic is caught by the entry point's guard.
    pub fn predict_file(&self, path: &Path) -> Result<(Vec<f64>, f64), Error> {
        self.scored_from(&audio::source_name(path), self.model.features_file(path))
    }

    /// Mono samples at `rate` Hz -> the same (resampled to the model's rate first, the
    /// checks of a decoded file applied).
    pub fn predict_pcm(&self, samples: &[f32], rate: u32) -> Result<(Vec<f64>, f64), Error> {
        self.scored(&pcm_wave(&self.model, samples, rate)?, PCM_SOURCE)
    }

    /// An encoded audio file held in memory (any format the build decodes: WAV, FLAC, OGG, MP3, AIFF, M4A) -> the same.
    pub fn predict_bytes(&self, data: &[u8]) -> Result<(Vec<f64>, f64), Error> {
        self.scored(&bytes_wave(&self.model, data)?, BYTES_SOURCE)
    }

    fn scored(&self, wave: &[f32], source: &str) -> Result<(Vec<f64>, f64), Error> {
        self.scored_from(source, self.model.features_wave(wave))
    }

    /// The features of one input (or why there are none) -> its prediction; every
    /// predict function ends here, so an error has the same code whatever the input was.
    fn scored_from(&self, source: &str, features: Result<Vec<f32>, ModelError>) -> Result<(Vec<f64>, f64), Error> {
        features.and_then(|x| self.model.predict_features(&x)).map_err(|e| run_err(source, e))
    }
}

/// A live stream cut into windows. It keeps its model alive (the model handle may be
/// freed first). Finished windows wait in a queue until taken with [`StreamHandle::next`].
#[derive(Debug)]
pub struct StreamHandle {
    model: Arc<Model>,
    rate: u32,
    opts: SegmentOptions,
    segmenter: Segmenter,
    pending: VecDeque<Segment>,
    /// Samples were pushed (or the stream flushed): the options are fixed from then on.
    started: bool,
}

impl StreamHandle {
    pub fn new(model: &ModelHandle, rate: u32, opts: &SegmentOptions) -> Result<StreamHandle, Error> {
        let segmenter = Segmenter::new(&model.model, rate, opts, STREAM_SOURCE).map_err(segment_err)?;
        Ok(StreamHandle {
            model: Arc::clone(&model.model),
            rate,
            opts: *opts,
            segmenter,
            pending: VecDeque::new(),
            started: false,
        })
    }

    /// Turns running normalisation on (`Some`) or off. Only before the first push: the
    /// windows already finished were standardized without it, and a timeline that changes
    /// its statistics half-way would match no other face's output.
    pub fn set_running(&mut self, running: Option<RunningNorm>) -> Result<(), Error> {
        if self.started {
            return Err(Error::new(
                ERR_STREAM,
                format!("{STREAM_SOURCE}: running normalisation must be set before the first push"),
            ));
        }
        let opts = SegmentOptions { running, ..self.opts };
        self.segmenter = Segmenter::new(&self.model, self.rate, &opts, STREAM_SOURCE).map_err(segment_err)?;
        self.opts = opts;
        Ok(())
    }

    pub fn num_labels(&self) -> usize {
        self.model.num_classes()
    }

    pub fn labels(&self) -> &[String] {
        self.model.labels()
    }

    /// Appends samples; returns how many windows wait to be taken.
    pub fn push(&mut self, samples: &[f32]) -> Result<usize, Error> {
        self.started = true;
        let done = self.segmenter.push(&self.model, samples).map_err(segment_err)?;
        self.pending.extend(done);
        Ok(self.pending.len())
    }

    /// Ends the stream; returns how many windows wait to be taken.
    pub fn flush(&mut self) -> Result<usize, Error> {
        self.started = true;
        let done = self.segmenter.finish(&self.model).map_err(segment_err)?;
        self.pending.extend(done);
        Ok(self.pending.len())
    }

    /// The oldest finished window not taken yet.
    pub fn take_next(&mut self) -> Option<Segment> {
        self.pending.pop_front()
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// A room's clips gathered one at a time for `serlaq_core::adapt` (the C ABI's
/// `serlaq_adapter`). It keeps each clip's features, not its audio, and its model alive.
#[derive(Debug)]
pub struct AdapterHandle {
    model: Arc<Model>,
    gathered: Gathered,
}

impl AdapterHandle {
    pub fn new(model: &ModelHandle) -> AdapterHandle {
        AdapterHandle { model: Arc::clone(&model.model), gathered: Gathered::new() }
    }

    fn added(&self, r: Result<(), String>) -> Result<usize, Error> {
        r.map(|()| self.gathered.clips()).map_err(|e| Error::new(ERR_AUDIO, e))
    }

    /// Adds an audio file; returns the clips gathered so far.
    pub fn add_file(&mut self, path: &Path) -> Result<usize, Error> {
        let r = self.gathered.add_file(&self.model, path);
        self.added(r)
    }

    /// Adds mono samples at `rate` Hz (the checks of a decoded file applied).
    pub fn add_pcm(&mut self, samples: &[f32], rate: u32) -> Result<usize, Error> {
        let wave = pcm_wave(&self.model, samples, rate)?;
        let r = self.gathered.add_wave(&self.model, &wave, PCM_SOURCE);
        self.added(r)
    }

    /// Adds an encoded audio file held in memory.
    pub fn add_bytes(&mut self, data: &[u8]) -> Result<usize, Error> {
        let wave = bytes_wave(&self.model, data)?;
        let r = self.gathered.add_wave(&self.model, &wave, BYTES_SOURCE);
        self.added(r)
    }

    pub fn clips(&self) -> usize {
        self.gathered.clips()
    }

    pub fn speech_seconds(&self) -> f64 {
        self.gathered.speech_seconds()
    }

    /// The adapted model (its `.laq` bytes validated as any loaded file's). Too little
    /// audio is [`ERR_TOO_LITTLE`] and the clips stay gathered: add more and finish again.
    /// A `created` given by the caller (the WebAssembly module's) goes into the file's
    /// provenance record: a malformed one is [`ERR_ARGUMENT`] naming it ([`check_created`]).
    pub fn finish(&self, opts: &AdaptOptions) -> Result<ModelHandle, Error> {
        if let Some(created) = &opts.created {
            check_created(created)?;
        }
        let done = adapt_gathered(&self.model, &self.gathered, opts).map_err(|e| {
            let code = match e {
                AdaptError::TooLittle { .. } | AdaptError::NoUsableAudio { .. } => ERR_TOO_LITTLE,
                AdaptError::Labels(_) => ERR_ARGUMENT,
                AdaptError::Build(_) => ERR_INTERNAL,
            };
            Error::new(code, e.to_string())
        })?;
        ModelHandle::from_bytes(done.bytes)
    }
}

/// An adaptation record's `created` as the caller gives it (the WebAssembly module, which
/// has no clock): ISO-8601 UTC to the second, `YYYY-MM-DDTHH:MM:SSZ`, a day that exists
/// (docs/laq-format.md), as `serlaq adapt` writes it from `SOURCE_DATE_EPOCH` or the clock.
/// The refusal does not quote the text (the module's size budget has no room for it).
pub fn check_created(created: &str) -> Result<(), Error> {
    // the fields' numbers: year, month, day, hour, minute, second
    let mut n = [0u32; 6];
    let shape = created.len() == 20
        && created.bytes().zip(b"0000-00-00T00:00:00Z").enumerate().all(|(i, (c, &t))| {
            if t != b'0' {
                return c == t;
            }
            let f = if i < 4 { 0 } else { (i - 2) / 3 };
            n[f] = n[f] * 10 + u32::from(c.wrapping_sub(b'0'));
            c.is_ascii_digit()
        });
    let [year, month, day, hour, minute, second] = n;
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        2 => 28 + u32::from(leap),
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if shape && (1..=12).contains(&month) && (1..=days).contains(&day) && hour < 24 && minute < 60 && second < 60 {
        return Ok(());
    }
    Err(Error::argument("created is not an ISO-8601 UTC time to the second (YYYY-MM-DDTHH:MM:SSZ)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serlaq_core::features::FeatureError;

    #[test]
    fn created_must_be_iso_utc_to_the_second() {
        for good in ["2026-12-04T06:00:00Z", "2000-02-29T23:59:59Z", "1970-01-01T00:00:00Z", "9999-12-31T00:00:00Z"] {
            assert_eq!(check_created(good), Ok(()), "{good}");
        }
        for bad in [
            "not a date",
            "",
            "2026-12-04",
            "2026-12-04T06:00:00",
            "2026-12-04T06:00:00.123Z",
            "2026-12-04T06:00:00+01:00",
            "2026-12-04 06:00:00Z",
            "2026-13-04T06:00:00Z",
            "2026-00-04T06:00:00Z",
            "2026-02-29T06:00:00Z",
            "1900-02-29T06:00:00Z",
            "2026-04-31T06:00:00Z",
            "2026-12-04T24:00:00Z",
            "2026-12-04T06:60:00Z",
            "2026-12-04T06:00:60Z",
            "+10000-01-01T00:00:00Z",
            "2026-1a-04T06:00:00Z",
            "0000-00-00T00:00:00Z",
            "2026-12-00T06:00:00Z",
            "2026-12-32T06:00:00Z",
            "２０２６-12-04T06:00:00Z",
        ] {
            let e = check_created(bad).unwrap_err();
            assert_eq!(e.code, ERR_ARGUMENT, "{bad}");
            assert!(e.message.starts_with("created is not an ISO-8601"), "{}", e.message);
        }
    }

    /// Whatever the input (file, samples, bytes), the audio's failure is ERR_AUDIO and the
    /// model's refusal ERR_MODEL (serlaq.h).
    #[test]
    fn prediction_errors_are_coded_by_whose_fault() {
        let m = ModelHandle::open(Path::new("general")).unwrap();
        let d = m.model().input_dim();
        let short = Err(ModelError::Features(FeatureError::TooShort { samples: 3, min: 400 }));
        assert_eq!(m.scored_from("a.wav", short).unwrap_err().code, ERR_AUDIO);
        let e = m.scored_from("a.wav", Ok(vec![f32::NAN; d])).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (ERR_MODEL, "a.wav: features: value at row 0, column 0 is NaN or infinite")
        );
        let e = m.scored_from("a.wav", Ok(vec![0.0; d + 1])).unwrap_err();
        assert_eq!(e.code, ERR_MODEL);
        // a file that cannot be read is the audio's, named as serlaq-rt names it
        let e = m.predict_file(Path::new("/nonexistent/clip.wav")).unwrap_err();
        assert!(e.code == ERR_AUDIO && e.message.contains("/nonexistent/clip.wav"), "{e:?}");
    }
}
