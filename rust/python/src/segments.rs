//! `serlaq._native.Segmenter` and `serlaq._native.segment_file`: the segment timeline of
//! `serlaq_core::segments` (plain Python lists and floats out, so segmenting a file needs
//! no numpy; GIL released while computing; panics caught).
//!
//! A segment is the tuple `(index, start, end, start_seconds, end_seconds, voiced,
//! probabilities, ood)`: `start`/`end` in source samples, `voiced` the share of voiced
//! frames, `probabilities` a list in label order and `ood` the window's out-of-domain
//! score, both `None` for a silence window.
//!
//! Errors: NaN/inf samples, a changed sample rate, a push after finish and bad options
//! raise `ValueError`; a stream too short for one window and unreadable files raise
//! `serlaq.errors.AudioError`; a sample array that is not floating point raises
//! `TypeError`. `segment_file` never raises for the file itself: it returns the error
//! line beside the segments before the damage.

use crate::f32_array;
use crate::model::{guarded, panic_err, PyModel};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use serlaq_core::segments::{
    self, segment_file as core_segment_file, RunningNorm, Segment, SegmentError, SegmentOptions, Segmenter, Vad,
};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

pyo3::import_exception!(serlaq.errors, AudioError);

type SegmentTuple = (u64, u64, u64, f64, f64, f64, Option<Vec<f64>>, Option<f64>);

fn tuple(s: Segment) -> SegmentTuple {
    (s.index, s.start, s.end, s.start_seconds, s.end_seconds, s.voiced, s.probabilities, s.ood)
}

fn seg_err(e: SegmentError) -> PyErr {
    match e {
        SegmentError::TooShort { .. } | SegmentError::Audio(_) => AudioError::new_err(e.to_string()),
        SegmentError::Model { .. } => PyRuntimeError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// The core's options from the keyword arguments every segmenting entry point takes
/// (`vad_db=None`: no gate; `running_prior=None`: no running normalisation).
pub(crate) fn options(
    window: f64,
    hop: f64,
    vad_db: Option<f64>,
    min_speech: f64,
    running_prior: Option<f64>,
    running_horizon: f64,
    running_balance: bool,
) -> SegmentOptions {
    SegmentOptions {
        window,
        hop,
        vad: vad_db.map(|threshold_db| Vad { threshold_db, min_speech }),
        running: running_prior.map(|prior| RunningNorm { prior, horizon: running_horizon, balance: running_balance }),
    }
}

/// One live stream cut into windows for a `Model`.
#[pyclass(module = "serlaq._native", name = "Segmenter")]
pub(crate) struct PySegmenter {
    model: Py<PyModel>,
    // a pyclass must be Sync; the resampler's state is only Send
    inner: Mutex<Segmenter>,
}

impl PySegmenter {
    fn state(&self) -> MutexGuard<'_, Segmenter> {
        // a panic while held was already turned into an error; the state stays readable
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[pymethods]
impl PySegmenter {
    /// A stream of `sample_rate` Hz mono samples; `vad_db=None` turns the gate off.
    #[new]
    #[pyo3(signature = (model, sample_rate, window = segments::DEFAULT_WINDOW, hop = segments::DEFAULT_HOP,
                        vad_db = Some(segments::DEFAULT_VAD_DB), min_speech = segments::DEFAULT_MIN_SPEECH,
                        source = "stream", running_prior = None, running_horizon = segments::DEFAULT_HORIZON, running_balance = true))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        model: Py<PyModel>,
        sample_rate: u32,
        window: f64,
        hop: f64,
        vad_db: Option<f64>,
        min_speech: f64,
        source: &str,
        running_prior: Option<f64>,
        running_horizon: f64,
        running_balance: bool,
    ) -> PyResult<Self> {
        let opts = options(window, hop, vad_db, min_speech, running_prior, running_horizon, running_balance);
        let r = guarded(|| Segmenter::new(&model.get().inner, sample_rate, &opts, source));
        let inner = r.map_err(panic_err)?.map_err(seg_err)?;
        Ok(PySegmenter { model, inner: Mutex::new(inner) })
    }

    /// Appends mono float samples (any length); returns the segments they complete.
    /// `sample_rate`, when given, must be the stream's.
    #[pyo3(signature = (samples, sample_rate = None))]
    fn push(
        &self,
        py: Python<'_>,
        samples: &Bound<'_, PyAny>,
        sample_rate: Option<u32>,
    ) -> PyResult<Vec<SegmentTuple>> {
        let mut state = self.state();
        if let Some(rate) = sample_rate {
            state.check_rate(rate).map_err(seg_err)?;
        }
        let kind: Option<String> =
            samples.getattr("dtype").and_then(|d| d.getattr("kind")).and_then(|k| k.extract()).ok();
        if kind.as_deref() != Some("f") {
            let what = samples
                .getattr("dtype")
                .map(|d| format!("dtype {d}"))
                .unwrap_or_else(|_| samples.get_type().name().map(|n| n.to_string()).unwrap_or_default());
            return Err(PyTypeError::new_err(format!(
                "{}: samples must be a float numpy array, got {what} (scale PCM integers to [-1, 1) first)",
                state.source()
            )));
        }
        let a = f32_array(samples, "samples")?;
        if a.shape().len() != 1 {
            return Err(PyValueError::new_err(format!(
                "{}: samples must be 1-D mono, got shape {:?} (downmix first)",
                state.source(),
                a.shape()
            )));
        }
        let values = a.values();
        let v: &[f32] = &values;
        let (model, inner) = (self.model.get(), &mut *state);
        let r = py.detach(|| guarded(|| inner.push(&model.inner, v)));
        Ok(r.map_err(panic_err)?.map_err(seg_err)?.into_iter().map(tuple).collect())
    }

    /// Ends the stream; returns the last segments (the single segment of a short stream).
    fn finish(&self, py: Python<'_>) -> PyResult<Vec<SegmentTuple>> {
        let mut state = self.state();
        let (model, inner) = (self.model.get(), &mut *state);
        let r = py.detach(|| guarded(|| inner.finish(&model.inner)));
        Ok(r.map_err(panic_err)?.map_err(seg_err)?.into_iter().map(tuple).collect())
    }

    #[getter]
    fn sample_rate(&self) -> u32 {
        self.state().plan().source_rate
    }

    /// Source samples accepted so far.
    #[getter]
    fn samples(&self) -> u64 {
        self.state().samples()
    }

    /// The window the frame grid gives, in seconds (whole STFT hops).
    #[getter]
    fn window_seconds(&self) -> f64 {
        self.state().plan().window_seconds()
    }

    /// The hop the frame grid gives, in seconds.
    #[getter]
    fn hop_seconds(&self) -> f64 {
        self.state().plan().hop_seconds()
    }

    #[getter]
    fn window_frames(&self) -> usize {
        self.state().plan().window_frames
    }

    #[getter]
    fn hop_frames(&self) -> usize {
        self.state().plan().hop_frames
    }

    /// Frame rows held right now (bounded by window_frames + hop_frames).
    #[getter]
    fn rows_held(&self) -> usize {
        self.state().rows_held()
    }
}

/// segment_file(model, path, ...): the file read packet by packet -> (segments, error):
/// the segments up to the end or the damage, and None or one line naming the file and
/// what broke (and where).
#[pyfunction]
#[pyo3(signature = (model, path, window = segments::DEFAULT_WINDOW, hop = segments::DEFAULT_HOP,
                    vad_db = Some(segments::DEFAULT_VAD_DB), min_speech = segments::DEFAULT_MIN_SPEECH,
                    running_prior = None, running_horizon = segments::DEFAULT_HORIZON, running_balance = true))]
#[allow(clippy::too_many_arguments)]
fn segment_file(
    py: Python<'_>,
    model: &Bound<'_, PyModel>,
    path: PathBuf,
    window: f64,
    hop: f64,
    vad_db: Option<f64>,
    min_speech: f64,
    running_prior: Option<f64>,
    running_horizon: f64,
    running_balance: bool,
) -> PyResult<(Vec<SegmentTuple>, Option<String>)> {
    let opts = options(window, hop, vad_db, min_speech, running_prior, running_horizon, running_balance);
    let m = model.get();
    let r = py.detach(|| guarded(|| core_segment_file(&m.inner, &path, &opts)));
    let out = r.map_err(panic_err)?;
    if let Some(e @ SegmentError::Option { .. }) = &out.error {
        return Err(PyValueError::new_err(e.to_string()));
    }
    Ok((out.segments.into_iter().map(tuple).collect(), out.error.map(|e| e.to_string())))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySegmenter>()?;
    m.add_function(wrap_pyfunction!(segment_file, m)?)?;
    m.add("SEGMENT_WINDOW", segments::DEFAULT_WINDOW)?;
    m.add("SEGMENT_HOP", segments::DEFAULT_HOP)?;
    m.add("VAD_DB", segments::DEFAULT_VAD_DB)?;
    m.add("VAD_MIN_SPEECH", segments::DEFAULT_MIN_SPEECH)?;
    m.add("RUNNING_PRIOR", segments::DEFAULT_PRIOR)?;
    m.add("RUNNING_HORIZON", segments::DEFAULT_HORIZON)?;
    Ok(())
}
