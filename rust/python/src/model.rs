//! `serlaq._native.Model` and `serlaq._native.features`: the native model over
//! `serlaq_core::model` (numpy in and out, GIL released while computing).
//!
//! Errors are converted here, once: a malformed `.laq` (format or metadata) raises
//! `LaqFormatError` naming the file, an unusable waveform `AudioError`, bad feature
//! arrays `ValueError`. Every entry point runs its Rust part under `catch_unwind`, so a
//! panic becomes a `RuntimeError` rather than crossing into Python.

use crate::{f32_array, laq_err, LaqFormatError};
use numpy::ndarray::Array2;
use numpy::IntoPyArray;
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;
use serlaq_core::features::{FeaturePlan, FeatureSpec, ScratchPool};
use serlaq_core::format::{LaqError, LaqFile};
use serlaq_core::model::{Model, ModelError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

pyo3::import_exception!(serlaq.errors, AudioError);

/// Runs `f`, turning a panic into an error value.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        format!("internal error in serlaq._native (please report): {}", serlaq_core::runtime::panic_message(&*p))
    })
}

pub(crate) fn panic_err(msg: String) -> PyErr {
    PyRuntimeError::new_err(msg)
}

/// Load-time errors: everything is the file's fault.
enum LoadError {
    Laq(LaqError),
    Model(ModelError),
}

fn load_err(e: LoadError, origin: &str) -> PyErr {
    match e {
        LoadError::Laq(e) => laq_err(e, origin),
        LoadError::Model(e) => LaqFormatError::new_err(format!("{origin}: {e}")),
    }
}

/// Run-time errors: a waveform problem is an AudioError, a feature array a ValueError.
fn run_err(e: ModelError) -> PyErr {
    match e {
        ModelError::Features(f) => AudioError::new_err(f.to_string()),
        ModelError::Audio(a) => AudioError::new_err(a.to_string()),
        ModelError::InputShape { .. } | ModelError::NonFiniteInput { .. } | ModelError::NonFiniteScores => {
            PyValueError::new_err(e.to_string())
        }
        other => PyRuntimeError::new_err(other.to_string()),
    }
}

/// Largest waveform [`with_wave`] borrows instead of copying (2^19 samples: 23.8 s at
/// 22050 Hz, a few ms of feature work, under Python's 5 ms thread switch interval).
const BORROW_MAX_SAMPLES: usize = 1 << 19;

/// Runs `f` on a 1-D float32 waveform (other dtypes converted like
/// `np.asarray(x, float32)`), panics caught.
///
/// No copy for a C-contiguous float32 array of at most [`BORROW_MAX_SAMPLES`]: `f` reads
/// numpy's buffer in place, and runs with the GIL held, so no Python code (the only
/// thing that could write to the array) runs until it returns; the hold is short at this
/// size, and saving the copy matters most for short clips. Anything longer (or strided)
/// is copied once, and `f` runs on that private copy with the GIL released (other
/// threads may then do anything to the array). Native code writing to the buffer from a
/// thread of its own without the GIL would race in either case: that is the writer's bug.
fn with_wave<T: Send>(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    f: impl FnOnce(&[f32]) -> T + Send,
) -> PyResult<Result<T, String>> {
    let a = f32_array(obj, "wave")?;
    let shape = a.shape();
    if shape.len() != 1 {
        return Err(PyValueError::new_err(format!(
            "wave must be a 1-D mono waveform, got shape {shape:?} (downmix first)"
        )));
    }
    Ok(match a.values() {
        std::borrow::Cow::Borrowed(w) if w.len() <= BORROW_MAX_SAMPLES => guarded(|| f(w)),
        values => {
            let w = values.into_owned();
            py.detach(|| guarded(|| f(&w)))
        }
    })
}

/// One file of a batch: `(probabilities, None)` or `(None, error)`.
/// A file of a batch: `((probabilities, out-of-domain score), None)` or `(None, error)`.
type FileResult = (Option<(Vec<f64>, f64)>, Option<String>);

/// A native `.laq` model: features, standardization, packed layers and softmax in Rust.
#[pyclass(module = "serlaq._native", name = "Model", frozen)]
pub(crate) struct PyModel {
    pub(crate) inner: Model,
    origin: String,
}

impl PyModel {
    fn load(py: Python<'_>, origin: String, read: impl FnOnce() -> Result<LaqFile, LaqError> + Send) -> PyResult<Self> {
        let r = py.detach(|| {
            guarded(|| {
                let file = read().map_err(LoadError::Laq)?;
                Model::from_laq(file).map_err(LoadError::Model)
            })
        });
        let inner = r.map_err(panic_err)?.map_err(|e| load_err(e, &origin))?;
        Ok(PyModel { inner, origin })
    }

    /// Feature rows (n, d) or one vector (d,) -> (values, n, two_d).
    fn rows(&self, x: &Bound<'_, PyAny>) -> PyResult<(Vec<f32>, usize, bool)> {
        let d = self.inner.input_dim();
        let a = f32_array(x, "features")?;
        let shape = a.shape();
        let (n, two_d) = match shape[..] {
            [c] if c == d => (1, false),
            [n, c] if c == d && n > 0 => (n, true),
            _ => {
                return Err(PyValueError::new_err(format!(
                    "features must have shape (n, {d}) or ({d},), got {shape:?}"
                )))
            }
        };
        Ok((a.values().into_owned(), n, two_d))
    }
}

#[pymethods]
impl PyModel {
    /// Reads and validates `path` (format, metadata, feature spec, shapes).
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let origin = path.display().to_string();
        PyModel::load(py, origin, move || LaqFile::open(&path))
    }

    /// Validates an in-memory `.laq` file (bytes, bytearray, memoryview or uint8 array).
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let buf = PyBuffer::<u8>::get(data)
            .map_err(|_| PyTypeError::new_err("from_bytes expects bytes or another byte buffer"))?;
        let bytes = buf.to_vec(py)?;
        PyModel::load(py, "<bytes>".into(), move || LaqFile::from_bytes(bytes))
    }

    #[getter]
    fn labels(&self) -> Vec<String> {
        self.inner.labels().to_vec()
    }

    /// The validated feature spec as a dict (every `FeatureConfig` key).
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = self.inner.spec().to_json_value().to_string();
        PyModule::import(py, "json")?.call_method1("loads", (text,))
    }

    #[getter]
    fn metadata_json(&self) -> &str {
        self.inner.metadata_json()
    }

    #[getter]
    fn input_dim(&self) -> usize {
        self.inner.input_dim()
    }

    #[getter]
    fn num_classes(&self) -> usize {
        self.inner.num_classes()
    }

    /// Shortest waveform accepted (one analysis window), in samples at the model rate.
    #[getter]
    fn min_samples(&self) -> usize {
        self.inner.spec().min_samples()
    }

    #[getter]
    fn sample_rate(&self) -> u32 {
        self.inner.spec().sample_rate
    }

    /// A mono float32 waveform at the model rate -> raw (d,) float32 features.
    fn features_wave<'py>(&self, py: Python<'py>, wave: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let r = with_wave(py, wave, |w| self.inner.features_wave(w))?;
        let out = r.map_err(panic_err)?.map_err(run_err)?;
        Ok(out.into_pyarray(py).into_any())
    }

    /// Decode + resample a file (the native audio path) -> raw (d,) float32 features.
    fn features_file<'py>(&self, py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyAny>> {
        let r = py.detach(|| guarded(|| self.inner.features_file(&path)));
        let out = r.map_err(panic_err)?.map_err(run_err)?;
        Ok(out.into_pyarray(py).into_any())
    }

    /// A file -> (class probabilities as a list of C floats, out-of-domain score) (a list,
    /// not an array: a prediction from a path never needs numpy). AudioError names the file.
    fn predict_file(&self, py: Python<'_>, path: PathBuf) -> PyResult<(Vec<f64>, f64)> {
        let r = py.detach(|| guarded(|| self.inner.predict_file_scored(&path)));
        r.map_err(panic_err)?.map_err(run_err)
    }

    /// An encoded file held in memory (bytes of a WAV, FLAC, MP3, ...) -> (class
    /// probabilities, out-of-domain score); AudioError names it `source`. GIL released.
    fn predict_bytes(&self, py: Python<'_>, data: &[u8], source: &str) -> PyResult<(Vec<f64>, f64)> {
        let m = &self.inner;
        let r = py.detach(|| guarded(|| m.features_bytes(data, source).and_then(|f| m.predict_features(&f))));
        r.map_err(panic_err)?.map_err(run_err)
    }

    /// An encoded file held in memory -> its raw (d,) float32 feature vector.
    fn features_bytes<'py>(&self, py: Python<'py>, data: &[u8], source: &str) -> PyResult<Bound<'py, PyAny>> {
        let r = py.detach(|| guarded(|| self.inner.features_bytes(data, source)));
        let out = r.map_err(panic_err)?.map_err(run_err)?;
        Ok(out.into_pyarray(py).into_any())
    }

    /// Many files on `threads` native threads, GIL released: per file, in input order,
    /// `((probabilities, out-of-domain score), None)` or `(None, "<file>: <what is wrong>")`.
    #[pyo3(signature = (paths, threads = 1))]
    fn predict_files(&self, py: Python<'_>, paths: Vec<PathBuf>, threads: usize) -> PyResult<Vec<FileResult>> {
        let r = py.detach(|| guarded(|| self.inner.predict_files(&paths, threads)));
        let results = r.map_err(panic_err)?;
        Ok(results
            .into_iter()
            .map(|r| match r {
                Ok(p) => (Some(p), None),
                Err(e) => (None, Some(e)),
            })
            .collect())
    }

    /// The packed layers in forward order: name, rows, cols, bits, quantizer,
    /// granularity, has_bias, packed_bytes (what `serlaq info` lists).
    fn layers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        crate::laq_file::layer_dicts(py, self.inner.file().layers())
    }

    /// What `serlaq info` prints for the model named `name`: the text, or with `json` the
    /// JSON (`indent=2`), from `serlaq_core::runtime::ModelInfo`.
    #[pyo3(signature = (name, json = false))]
    fn info(&self, name: &str, json: bool) -> String {
        let info = serlaq_core::runtime::ModelInfo::new(&self.inner, name);
        if json {
            serlaq_core::runtime::json::to_pretty(&info)
        } else {
            info.text()
        }
    }

    /// Bytes of the whole `.laq` file.
    #[getter]
    fn file_size(&self) -> usize {
        self.inner.file().file_size()
    }

    /// The `.laq` format version of the file.
    #[getter]
    fn version(&self) -> u32 {
        self.inner.file().version()
    }

    /// Raw features (n, d) or (d,) -> logits (n, C) or (C,), float32.
    fn forward<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let (v, n, two_d) = self.rows(x)?;
        let r = py.detach(|| guarded(|| self.inner.forward(&v)));
        let out = r.map_err(panic_err)?.map_err(run_err)?;
        shaped(py, out, n, self.inner.num_classes(), two_d)
    }

    /// Raw features (n, d) or (d,) -> per row (class probabilities, out-of-domain score),
    /// one pass through the network each (`Model::predict_features`).
    fn scored(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<Vec<(Vec<f64>, f64)>> {
        let (v, _, _) = self.rows(x)?;
        let d = self.inner.input_dim();
        let m = &self.inner;
        let one = |(i, row): (usize, &[f32])| {
            m.predict_features(row).map_err(|e| match e {
                ModelError::NonFiniteInput { col, .. } => ModelError::NonFiniteInput { row: i, col },
                other => other,
            })
        };
        let r = py.detach(|| guarded(|| v.chunks_exact(d).enumerate().map(one).collect::<Result<Vec<_>, _>>()));
        r.map_err(panic_err)?.map_err(run_err)
    }

    /// Raw features (n, d) or (d,) -> class probabilities (n, C) or (C,), float64.
    fn probabilities<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let (v, n, two_d) = self.rows(x)?;
        let r = py.detach(|| guarded(|| self.inner.probabilities(&v)));
        let out = r.map_err(panic_err)?.map_err(run_err)?;
        shaped(py, out, n, self.inner.num_classes(), two_d)
    }

    fn __repr__(&self) -> String {
        let dims: Vec<String> = std::iter::once(self.inner.input_dim())
            .chain(self.inner.hidden().iter().copied())
            .chain(std::iter::once(self.inner.num_classes()))
            .map(|d| d.to_string())
            .collect();
        format!("Model({:?}, {}, labels={:?})", self.origin, dims.join(" -> "), self.inner.labels())
    }
}

/// A feature plan built once from a `features` JSON object (window, FFT, filterbanks):
/// the Rust feature path for training-side extraction, tests and benchmarks.
#[pyclass(module = "serlaq._native", name = "FeaturePlan", frozen)]
pub(crate) struct PyFeaturePlan {
    plan: FeaturePlan,
    scratch: ScratchPool,
}

#[pymethods]
impl PyFeaturePlan {
    /// ValueError naming the field and its bound for an invalid spec.
    #[new]
    fn new(py: Python<'_>, spec_json: &str) -> PyResult<Self> {
        let spec = FeatureSpec::from_json(spec_json).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let r = py.detach(|| guarded(|| FeaturePlan::new(&spec)));
        let plan = r.map_err(panic_err)?.map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(PyFeaturePlan { plan, scratch: ScratchPool::default() })
    }

    #[getter]
    fn dim(&self) -> usize {
        self.plan.dim()
    }

    /// The validated spec as a dict (every `FeatureConfig` key).
    #[getter]
    fn spec<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = self.plan.spec().to_json_value().to_string();
        PyModule::import(py, "json")?.call_method1("loads", (text,))
    }

    /// A mono waveform at the spec's rate -> raw (dim,) float32 features; AudioError for
    /// NaN/inf samples or a clip shorter than one window.
    fn features<'py>(&self, py: Python<'py>, wave: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let r = with_wave(py, wave, |w| self.scratch.extract(&self.plan, w))?;
        let out = r.map_err(panic_err)?.map_err(|e| AudioError::new_err(e.to_string()))?;
        Ok(out.into_pyarray(py).into_any())
    }
}

fn shaped<'py, T: numpy::Element>(
    py: Python<'py>,
    v: Vec<T>,
    n: usize,
    c: usize,
    two_d: bool,
) -> PyResult<Bound<'py, PyAny>> {
    Ok(if two_d {
        Array2::from_shape_vec((n, c), v).expect("n x classes").into_pyarray(py).into_any()
    } else {
        v.into_pyarray(py).into_any()
    })
}

/// features(spec_json, wave): a `features` JSON object + a mono waveform at its rate ->
/// the raw float32 feature vector (for tests and benchmarks; a `Model` keeps its plan).
#[pyfunction]
fn features<'py>(py: Python<'py>, spec_json: &str, wave: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let spec = FeatureSpec::from_json(spec_json).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let r = with_wave(py, wave, |w| FeaturePlan::new(&spec).map(|p| p.extract(w)))?;
    let out = r
        .map_err(panic_err)?
        .map_err(|e| PyValueError::new_err(e.to_string()))?
        .map_err(|e| AudioError::new_err(e.to_string()))?;
    Ok(out.into_pyarray(py).into_any())
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyModel>()?;
    m.add_class::<PyFeaturePlan>()?;
    m.add_function(wrap_pyfunction!(features, m)?)?;
    Ok(())
}
