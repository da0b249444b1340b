//! `serlaq._native.adapt_model`, `model_temperature`, `model_ood`: adaptation and the
//! honest-confidence numbers of a native model (`serlaq_core::adapt`, `serlaq_core::model`).

use crate::f32_array;
use crate::model::{guarded, panic_err, PyModel};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use serlaq_core::adapt::{self, AdaptError, AdaptOptions, StdRule};
use serlaq_core::format::{self, LaqFile};
use serlaq_core::model::Model;
use std::path::PathBuf;

/// Adapts `model` to the audio `paths` (files) and `waves` (`(name, mono float32 at the
/// model's rate)` pairs: waveforms already prepared; a wave that cannot be used is left out
/// under its name, as a file is). Returns a dict: `bytes` (the new `.laq`
/// file, absent when nothing was built), `error` (one line, or None), `failures` (one
/// line per file left out), `clips`, `seconds`, `speech_seconds`, `ood_before`,
/// `ood_after`, `top_share_before`, `top_share_after`, `summary` (what was done, one line,
/// as every face prints it). `std` names the std rule (`widen`,
/// `target`, `model`); `labels` the labels the audio holds (empty: all). Nothing is written:
/// saving is the caller's (atomically).
#[pyfunction]
#[pyo3(signature = (model, paths, source = String::new(), created = None, threads = 0,
    min_clips = adapt::MIN_CLIPS, min_speech_seconds = adapt::MIN_SPEECH_SECONDS, balance = true, std = "widen",
    labels = Vec::new(), waves = Vec::new()))]
#[allow(clippy::too_many_arguments)]
fn adapt_model<'py>(
    py: Python<'py>,
    model: &PyModel,
    paths: Vec<PathBuf>,
    source: String,
    created: Option<String>,
    threads: usize,
    min_clips: usize,
    min_speech_seconds: f64,
    balance: bool,
    std: &str,
    labels: Vec<String>,
    waves: Vec<(String, Bound<'py, PyAny>)>,
) -> PyResult<Bound<'py, PyDict>> {
    if !min_speech_seconds.is_finite() || min_speech_seconds < 0.0 {
        return Err(PyValueError::new_err(format!("min_speech_seconds must be >= 0, got {min_speech_seconds}")));
    }
    let std = StdRule::parse(std).map_err(PyValueError::new_err)?;
    let waves: Vec<(String, Vec<f32>)> = waves
        .into_iter()
        .map(|(name, w)| Ok((name, f32_array(&w, "wave")?.values().into_owned())))
        .collect::<PyResult<_>>()?;
    let opts = AdaptOptions { threads, source, created, min_clips, min_speech_seconds, balance, std, labels };
    let inner = &model.inner;
    let r = py.detach(|| guarded(|| adapt::adapt_with_waves(inner, &paths, &waves, &opts))).map_err(panic_err)?;
    let out = PyDict::new(py);
    match r {
        Ok(a) => {
            out.set_item("summary", a.summary())?;
            out.set_item("bytes", PyBytes::new(py, &a.bytes))?;
            out.set_item("error", py.None())?;
            out.set_item("failures", a.failures)?;
            out.set_item("clips", a.clips)?;
            out.set_item("seconds", a.seconds)?;
            out.set_item("speech_seconds", a.speech_seconds)?;
            out.set_item("ood_before", a.ood_before)?;
            out.set_item("ood_after", a.ood_after)?;
            out.set_item("top_share_before", a.top_share_before)?;
            out.set_item("top_share_after", a.top_share_after)?;
        }
        Err(e) => {
            out.set_item("error", e.to_string())?;
            let failures = match e {
                AdaptError::NoUsableAudio { failures } | AdaptError::TooLittle { failures, .. } => failures,
                AdaptError::Labels(_) | AdaptError::Build(_) => Vec::new(),
            };
            out.set_item("failures", failures)?;
        }
    }
    Ok(out)
}

/// The `source` an adaptation records for its inputs (`serlaq_core::adapt::source_text`).
#[pyfunction]
fn adapt_source(inputs: Vec<String>) -> String {
    adapt::source_text(&inputs)
}

/// `(temperature, ood_threshold)` of a loaded model (1 and the default when the file
/// stores none).
#[pyfunction]
fn model_calibration(model: &PyModel) -> (f64, f64) {
    (model.inner.temperature(), model.inner.ood_threshold())
}

/// Out-of-domain scores of raw feature rows (n, d) or one vector (d,), as predictions carry
/// them (`Model::ood_score`: the hidden reference's distance, else the RMS z-score): a list
/// of n floats.
#[pyfunction]
fn model_ood_scores(model: &PyModel, features: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    let d = model.inner.input_dim();
    let a = f32_array(features, "features")?;
    let shape = a.shape();
    if !(shape.len() == 1 && shape[0] == d || shape.len() == 2 && shape[1] == d) {
        return Err(PyValueError::new_err(format!("features must have shape (n, {d}) or ({d},), got {shape:?}")));
    }
    let values = a.values();
    values
        .chunks_exact(d)
        .map(|row| model.inner.ood_score(row).map_err(|e| PyValueError::new_err(e.to_string())))
        .collect()
}

/// The model's whole `.laq` file, as read (or as adapted).
#[pyfunction]
fn model_bytes<'py>(py: Python<'py>, model: &PyModel) -> Bound<'py, PyBytes> {
    PyBytes::new(py, model.inner.file().as_bytes())
}

/// Writes a validated `.laq` file atomically (temporary file, fsync, rename): `data` is
/// read back as a model first, so nothing the runtime would refuse reaches the disk.
#[pyfunction]
fn save_model_bytes(py: Python<'_>, path: PathBuf, data: Vec<u8>) -> PyResult<()> {
    let r = py.detach(|| {
        guarded(|| -> Result<(), String> {
            let file = LaqFile::from_bytes(data.clone()).map_err(|e| e.to_string())?;
            Model::from_laq(file).map_err(|e| e.to_string())?;
            format::write_atomic(&path, &data).map_err(|e| e.to_string())
        })
    });
    r.map_err(panic_err)?.map_err(PyValueError::new_err)
}

/// Makes `path` ready for an output written after the work (`format::prepare_output`):
/// ValueError (one line) for a folder at `path` (suggesting `example` inside it) or a folder
/// above it that cannot be made.
#[pyfunction]
#[pyo3(signature = (path, example="adapted.laq"))]
fn prepare_output(path: PathBuf, example: &str) -> PyResult<()> {
    guarded(|| format::prepare_output(&path, example)).map_err(panic_err)?.map_err(PyValueError::new_err)
}

/// The model file a path names (`runtime::model_file`): itself, or a run folder's
/// `model.laq` (else its one `.laq`); ValueError (one line) for a folder without one.
#[pyfunction]
fn model_file(path: PathBuf) -> PyResult<PathBuf> {
    guarded(|| serlaq_core::runtime::model_file(&path)).map_err(panic_err)?.map_err(PyValueError::new_err)
}

/// Why `out` may not take the adapted copy of `model` (`runtime::adapt_output_clash`), or None.
#[pyfunction]
fn adapt_output_clash(model: PathBuf, out: PathBuf) -> PyResult<Option<String>> {
    guarded(|| serlaq_core::runtime::adapt_output_clash(&model, &out)).map_err(panic_err)
}

/// The shipped general model's `.laq` bytes, or None in a build without it.
#[pyfunction]
fn general_model_bytes(py: Python<'_>) -> Option<Bound<'_, PyBytes>> {
    serlaq_core::general::general_model_bytes().map(|b| PyBytes::new(py, b))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(adapt_model, m)?)?;
    m.add_function(wrap_pyfunction!(adapt_source, m)?)?;
    m.add_function(wrap_pyfunction!(model_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(general_model_bytes, m)?)?;
    m.add("GENERAL", serlaq_core::general::GENERAL)?;
    m.add("GENERAL_NOT_SHIPPED", serlaq_core::general::NOT_SHIPPED)?;
    m.add_function(wrap_pyfunction!(save_model_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(prepare_output, m)?)?;
    m.add_function(wrap_pyfunction!(adapt_output_clash, m)?)?;
    m.add_function(wrap_pyfunction!(model_file, m)?)?;
    m.add_function(wrap_pyfunction!(model_calibration, m)?)?;
    m.add_function(wrap_pyfunction!(model_ood_scores, m)?)?;
    Ok(())
}
