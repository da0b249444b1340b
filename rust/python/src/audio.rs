//! Audio bindings: `load_audio`, `prepare_waveform`, `resample`, `AUDIO_SUFFIXES`.
//!
//! Only conversion happens here: numpy float32 in, numpy float32 out, the GIL released
//! while Rust decodes and resamples, every `serlaq_core::audio::AudioError` raised as
//! `serlaq.errors.AudioError` with its one-line message, and any panic caught and raised
//! the same way (as an "internal error") instead of crossing into Python.

use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use serlaq_core::audio::{
    self, resample::check_input_rate, resample::check_target_rate, AudioError as CoreError, Layout,
};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

pyo3::import_exception!(serlaq.errors, AudioError);

fn audio_err(e: CoreError) -> PyErr {
    AudioError::new_err(e.to_string())
}

/// Runs `f` without the GIL; a panic becomes an `AudioError::Internal` naming `source`.
fn guarded<T: Send>(py: Python<'_>, source: &str, f: impl FnOnce() -> Result<T, CoreError> + Send) -> PyResult<T> {
    py.detach(|| {
        catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
            let detail = serlaq_core::runtime::panic_message(&*payload);
            Err(CoreError::Internal { source: source.to_string(), detail: format!("panic: {detail}") })
        })
    })
    .map_err(audio_err)
}

/// A float32 numpy array's values in C order (copied only when not contiguous).
fn f32_values(wave: &Bound<'_, PyAny>, what: &str) -> PyResult<(Vec<usize>, Vec<f32>)> {
    let a = wave.cast::<PyArrayDyn<f32>>().map_err(|_| {
        let dtype = wave.getattr("dtype").map(|d| d.to_string()).unwrap_or_else(|_| "not an array".into());
        PyTypeError::new_err(format!("{what} must be a numpy float32 array, got {dtype}"))
    })?;
    let r = a.readonly();
    let shape = r.shape().to_vec();
    let values = match r.as_slice() {
        Ok(s) => s.to_vec(),
        Err(_) => r.as_array().iter().copied().collect(),
    };
    Ok((shape, values))
}

fn rates(sample_rate: u64, target_rate: u64, source: &str) -> PyResult<(u32, u32)> {
    let orig = check_input_rate(sample_rate, source).map_err(audio_err)?;
    let new = check_target_rate(target_rate, source).map_err(audio_err)?;
    Ok((orig, new))
}

/// load_audio(path, sample_rate, min_samples) -> float32 (samples,): decode, downmix,
/// resample and validate a whole file.
#[pyfunction]
fn load_audio<'py>(
    py: Python<'py>,
    path: PathBuf,
    sample_rate: u64,
    min_samples: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let source = path.display().to_string();
    let target = check_target_rate(sample_rate, &source).map_err(audio_err)?;
    let out = guarded(py, &source, || audio::load(&path, target, min_samples))?;
    Ok(out.into_pyarray(py).into_any())
}

/// prepare_waveform(wave, sample_rate, target_rate, min_samples, source) -> float32
/// (samples,): `wave` is float32 (samples,) or (channels, samples).
#[pyfunction]
fn prepare_waveform<'py>(
    py: Python<'py>,
    wave: &Bound<'py, PyAny>,
    sample_rate: u64,
    target_rate: u64,
    min_samples: usize,
    source: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let (orig, new) = rates(sample_rate, target_rate, source)?;
    let (shape, values) = f32_values(wave, "wave")?;
    let channels = match shape[..] {
        [_] => 1,
        [c, _] => c,
        _ => {
            let e = CoreError::Shape {
                source: source.into(),
                detail: format!("must be 1-D or (channels, samples), got shape {shape:?}"),
            };
            return Err(audio_err(e));
        }
    };
    let out =
        guarded(py, source, || audio::prepare(&values, channels, Layout::Planar, orig, new, min_samples, source))?;
    Ok(out.into_pyarray(py).into_any())
}

/// resample(wave, orig, new) -> float32: the one resampler, ceil(n * new / orig) samples.
#[pyfunction]
fn resample<'py>(py: Python<'py>, wave: &Bound<'py, PyAny>, orig: u64, new: u64) -> PyResult<Bound<'py, PyAny>> {
    let (orig, new) = rates(orig, new, "resample")?;
    let (shape, values) = f32_values(wave, "wave")?;
    if shape.len() != 1 {
        return Err(audio_err(CoreError::Shape {
            source: "resample".into(),
            detail: format!("wave must be 1-D, got shape {shape:?}"),
        }));
    }
    let out = guarded(py, "resample", || audio::resample(&values, orig, new))?;
    Ok(out.into_pyarray(py).into_any())
}

/// Adds the audio functions, `AUDIO_SUFFIXES` and `AUDIO_FORMATS` (names) to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(load_audio, m)?)?;
    m.add_function(wrap_pyfunction!(prepare_waveform, m)?)?;
    m.add_function(wrap_pyfunction!(resample, m)?)?;
    m.add("AUDIO_SUFFIXES", PyTuple::new(m.py(), audio::SUFFIXES.iter().map(|s| format!(".{s}")))?)?;
    m.add("AUDIO_FORMATS", PyTuple::new(m.py(), audio::FORMATS.iter().map(|(name, _)| *name))?)?;
    Ok(())
}
