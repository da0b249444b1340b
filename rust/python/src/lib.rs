//! `serlaq._native`: thin pyo3 bindings over `serlaq-core`, numpy arrays at the boundary.
//!
//! Errors: bad arguments raise `ValueError` (`TypeError` for a wrong dtype), a malformed
//! `.laq` file raises `serlaq.errors.LaqFormatError` naming the file and the problem,
//! and the OS's refusals raise the matching `OSError` subclass naming the path.

use numpy::ndarray::{Array2, ArrayD, IxDyn};
use numpy::{IntoPyArray, PyArrayDyn, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{
    PyFileNotFoundError, PyIndexError, PyIsADirectoryError, PyKeyError, PyOSError, PyPermissionError, PyTypeError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serlaq_core::bitpack::{self, packed_len};
use serlaq_core::format::{self, LaqError, LayerInput, OwnedLayer, OwnedTensor, Quantizer, TensorInput};
use serlaq_core::gemv::{self, Kernel, QMatrix};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

mod adapt;
mod audio;
mod laq_file;
mod model;
mod runtime;
mod segments;
mod serve;

pyo3::import_exception!(serlaq.errors, LaqFormatError);

fn value_err(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// Maps a core error to the Python exception users catch; `origin` names the file.
fn laq_err(e: LaqError, origin: &str) -> PyErr {
    match e {
        LaqError::Format(m) => LaqFormatError::new_err(format!("{origin}: {m}")),
        LaqError::Invalid(m) => PyValueError::new_err(m),
        LaqError::Io { path, source } => {
            let msg = serlaq_core::runtime::model_io_error(&path, &source);
            match source.kind() {
                std::io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
                std::io::ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
                std::io::ErrorKind::IsADirectory => PyIsADirectoryError::new_err(msg),
                _ => PyOSError::new_err(msg),
            }
        }
    }
}

/// A numpy array's data in C order: borrowed when already contiguous.
struct Data<'py, T: numpy::Element> {
    array: numpy::PyReadonlyArrayDyn<'py, T>,
}

impl<T: numpy::Element + Copy> Data<'_, T> {
    fn shape(&self) -> Vec<usize> {
        self.array.shape().to_vec()
    }
    fn values(&self) -> Cow<'_, [T]> {
        match self.array.as_slice() {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => Cow::Owned(self.array.as_array().iter().copied().collect()),
        }
    }
}

/// A uint8 array, strictly: converting other integer types could silently wrap codes.
fn u8_array<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Data<'py, u8>> {
    match obj.cast::<PyArrayDyn<u8>>() {
        Ok(a) => Ok(Data { array: a.readonly() }),
        Err(_) => {
            let dtype = obj
                .getattr("dtype")
                .map(|d| d.to_string())
                .unwrap_or_else(|_| obj.get_type().name().map(|n| n.to_string()).unwrap_or_default());
            Err(PyTypeError::new_err(format!("{what} must be a numpy uint8 array, got {dtype}")))
        }
    }
}

/// A float32 array; other numeric arrays and sequences are converted like `np.asarray`.
fn f32_array<'py>(obj: &Bound<'py, PyAny>, what: &str) -> PyResult<Data<'py, f32>> {
    if let Ok(a) = obj.cast::<PyArrayDyn<f32>>() {
        return Ok(Data { array: a.readonly() });
    }
    let np = PyModule::import(obj.py(), "numpy")?;
    let converted = np
        .call_method1("asarray", (obj, "float32"))
        .map_err(|e| PyTypeError::new_err(format!("{what} must be a float32 array: {e}")))?;
    let a = converted
        .cast_into::<PyArrayDyn<f32>>()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be a float32 array")))?;
    Ok(Data { array: a.readonly() })
}

fn check_bits(bits: u32) -> PyResult<()> {
    bitpack::check_bits(bits).map_err(value_err)
}

/// The kernel a `kernel=` argument names (None: the one that runs by default).
fn kernel_arg(name: Option<&str>) -> PyResult<Kernel> {
    let Some(name) = name else { return Ok(Kernel::selected()) };
    match Kernel::parse(name) {
        Some(k) if k.is_available() => Ok(k),
        _ => Err(value_err(format!(
            "kernel {name:?} is not available here (available: {})",
            Kernel::available().iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// kernel(): the name of the kernel pack/unpack/qgemm run (after SERLAQ_KERNELS).
#[pyfunction]
fn kernel() -> &'static str {
    Kernel::selected().name()
}

/// kernels(): the kernels this build has and this CPU runs, plainest first.
#[pyfunction]
fn kernels() -> Vec<&'static str> {
    Kernel::available().iter().map(|k| k.name()).collect()
}

/// pack(codes, bits): 1-D (n,) -> (ceil(n*bits/8),); 2-D (rows, cols) -> (rows, row_bytes).
#[pyfunction]
#[pyo3(signature = (codes, bits, *, kernel=None))]
fn pack<'py>(
    py: Python<'py>,
    codes: &Bound<'py, PyAny>,
    bits: u32,
    kernel: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    check_bits(bits)?;
    let k = kernel_arg(kernel)?;
    let codes = u8_array(codes, "codes")?;
    let shape = codes.shape();
    let values = codes.values();
    let (rows, cols, two_d) = match shape[..] {
        [n] => (1, n, false),
        [r, c] => (r, c, true),
        _ => return Err(value_err(format!("codes must be 1-D or 2-D, got {} dimensions", shape.len()))),
    };
    let row_bytes = packed_len(cols, bits).map_err(value_err)?;
    let mut out = vec![0u8; rows * row_bytes];
    let v: &[u8] = &values;
    py.detach(|| bitpack::pack_rows_with(k, v, rows, cols, bits, &mut out)).map_err(value_err)?;
    Ok(if two_d {
        Array2::from_shape_vec((rows, row_bytes), out).expect("shape matches").into_pyarray(py).into_any()
    } else {
        out.into_pyarray(py).into_any()
    })
}

/// unpack(packed, bits, count): 1-D -> (count,); 2-D (rows, row_bytes) -> (rows, count).
#[pyfunction]
#[pyo3(signature = (packed, bits, count, *, kernel=None))]
fn unpack<'py>(
    py: Python<'py>,
    packed: &Bound<'py, PyAny>,
    bits: u32,
    count: usize,
    kernel: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    check_bits(bits)?;
    let k = kernel_arg(kernel)?;
    let packed = u8_array(packed, "packed")?;
    let shape = packed.shape();
    let need = packed_len(count, bits).map_err(value_err)?;
    let (rows, two_d) = match shape[..] {
        [n] if n == need => (1, false),
        [r, c] if c == need => (r, true),
        [n] => return Err(value_err(format!("packed has {n} bytes, {count} codes at {bits} bits need {need}"))),
        [_, c] => {
            return Err(value_err(format!("packed rows have {c} bytes, {count} codes at {bits} bits need {need}")))
        }
        _ => return Err(value_err(format!("packed must be 1-D or 2-D, got {} dimensions", shape.len()))),
    };
    let values = packed.values();
    let v: &[u8] = &values;
    let total = rows.checked_mul(count).ok_or_else(|| value_err("output too large"))?;
    let mut out = vec![0u8; total];
    py.detach(|| bitpack::unpack_rows_with(k, v, rows, count, bits, &mut out)).map_err(value_err)?;
    Ok(if two_d {
        Array2::from_shape_vec((rows, count), out).expect("shape matches").into_pyarray(py).into_any()
    } else {
        out.into_pyarray(py).into_any()
    })
}

/// Runs the core GEMM on numpy inputs; shared by `qgemm` and `LaqFile.forward`.
fn run_qgemm<'py>(
    py: Python<'py>,
    kernel: Kernel,
    m: &QMatrix,
    bias: Option<&[f32]>,
    x: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let x = f32_array(x, "x")?;
    let shape = x.shape();
    let (batch, two_d) = match shape[..] {
        [c] if c == m.cols() => (1, false),
        [b, c] if c == m.cols() => (b, true),
        [..] if shape.len() <= 2 => {
            return Err(value_err(format!(
                "x has shape {shape:?}, its last dimension must be {} (the layer's columns)",
                m.cols()
            )))
        }
        _ => return Err(value_err(format!("x must be 1-D or 2-D, got {} dimensions", shape.len()))),
    };
    let xv = x.values();
    let xs: &[f32] = &xv;
    let mut y = vec![0f32; batch * m.rows()];
    // Releasing the GIL costs about as much as a small layer's whole product.
    if m.rows() * m.cols() * batch >= 1 << 16 {
        py.detach(|| gemv::qgemm_with(kernel, m, bias, xs, batch, &mut y))
    } else {
        gemv::qgemm_with(kernel, m, bias, xs, batch, &mut y)
    }
    .map_err(value_err)?;
    Ok(if two_d {
        Array2::from_shape_vec((batch, m.rows()), y).expect("shape matches").into_pyarray(py).into_any()
    } else {
        y.into_pyarray(py).into_any()
    })
}

/// qgemm(packed, bits, cols, scale, zero, bias, x, *, kernel=None): y = x @ W.T + b, W
/// decoded on the fly; `kernel` forces one of `kernels()`.
#[pyfunction]
#[pyo3(signature = (packed, bits, cols, scale, zero, bias, x, *, kernel=None))]
#[allow(clippy::too_many_arguments)]
fn qgemm<'py>(
    py: Python<'py>,
    packed: &Bound<'py, PyAny>,
    bits: u32,
    cols: usize,
    scale: &Bound<'py, PyAny>,
    zero: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
    x: &Bound<'py, PyAny>,
    kernel: Option<&str>,
) -> PyResult<Bound<'py, PyAny>> {
    check_bits(bits)?;
    let k = kernel_arg(kernel)?;
    let packed = u8_array(packed, "packed")?;
    let shape = packed.shape();
    let [rows, row_bytes] = shape[..] else {
        return Err(value_err(format!("packed must be 2-D (rows, row_bytes), got {} dimensions", shape.len())));
    };
    let need = packed_len(cols, bits).map_err(value_err)?;
    if row_bytes != need {
        return Err(value_err(format!(
            "packed rows have {row_bytes} bytes, {cols} columns at {bits} bits need {need}"
        )));
    }
    let scale = f32_array(scale, "scale")?;
    let zero = f32_array(zero, "zero")?;
    let bias = bias.map(|b| f32_array(b, "bias")).transpose()?;
    let (pv, sv, zv) = (packed.values(), scale.values(), zero.values());
    let bv = bias.as_ref().map(|b| b.values());
    let m = QMatrix::new(&pv, rows, cols, bits, &sv, &zv).map_err(value_err)?;
    run_qgemm(py, k, &m, bv.as_deref(), x)
}

/// Owned inputs of one layer for the writer.
const LAYER_KEYS: [&str; 7] = ["name", "bits", "quantizer", "codes", "scale", "zero", "bias"];

fn layer_from_dict(i: usize, d: &Bound<'_, PyAny>) -> PyResult<OwnedLayer> {
    let d = d.cast::<PyDict>().map_err(|_| PyTypeError::new_err(format!("layers[{i}] must be a dict")))?;
    for key in d.keys() {
        let k: String = key.extract().unwrap_or_else(|_| key.to_string());
        if !LAYER_KEYS.contains(&k.as_str()) {
            return Err(value_err(format!("layers[{i}]: unknown key '{k}' (expected {})", LAYER_KEYS.join(", "))));
        }
    }
    let get = |k: &str| -> PyResult<Bound<'_, PyAny>> {
        d.get_item(k)?.ok_or_else(|| value_err(format!("layers[{i}]: missing key '{k}'")))
    };
    let name: String =
        get("name")?.extract().map_err(|_| PyTypeError::new_err(format!("layers[{i}]['name'] must be a str")))?;
    let what = format!("layer {name:?}");
    let bits: u32 =
        get("bits")?.extract().map_err(|_| PyTypeError::new_err(format!("{what}: 'bits' must be an int")))?;
    check_bits(bits).map_err(|e| value_err(format!("{what}: {e}")))?;
    let q: String =
        get("quantizer")?.extract().map_err(|_| PyTypeError::new_err(format!("{what}: 'quantizer' must be a str")))?;
    let quantizer = Quantizer::parse(&q)
        .ok_or_else(|| value_err(format!("{what}: quantizer '{q}' is not 'affine' or 'binary'")))?;
    let codes = u8_array(&get("codes")?, &format!("{what} codes"))?;
    let [rows, cols] = codes.shape()[..] else {
        return Err(value_err(format!("{what}: codes must be 2-D (rows, cols), got shape {:?}", codes.shape())));
    };
    let flat = |key: &str| -> PyResult<Vec<f32>> {
        let a = f32_array(&get(key)?, &format!("{what} {key}"))?;
        if a.shape().len() > 1 {
            return Err(value_err(format!("{what}: {key} must be 1-D, got shape {:?}", a.shape())));
        }
        Ok(a.values().into_owned())
    };
    let scale = flat("scale")?;
    let zero = flat("zero")?;
    let bias = match d.get_item("bias")? {
        Some(b) if !b.is_none() => Some(flat("bias")?),
        _ => None,
    };
    Ok(OwnedLayer { name, bits, quantizer, rows, cols, codes: codes.values().into_owned(), scale, zero, bias })
}

/// write_laq(path, metadata_json, layers, tensors): atomic, deterministic `.laq` writer.
#[pyfunction]
fn write_laq(
    py: Python<'_>,
    path: PathBuf,
    metadata_json: &str,
    layers: &Bound<'_, PyList>,
    tensors: &Bound<'_, PyDict>,
) -> PyResult<()> {
    let owned: Vec<OwnedLayer> =
        layers.iter().enumerate().map(|(i, d)| layer_from_dict(i, &d)).collect::<PyResult<_>>()?;
    let mut owned_tensors: Vec<OwnedTensor> = Vec::new();
    for (k, v) in tensors.iter() {
        let name: String = k.extract().map_err(|_| PyTypeError::new_err("tensor names must be str"))?;
        let a = f32_array(&v, &format!("tensor {name:?}"))?;
        owned_tensors.push(OwnedTensor { shape: a.shape(), data: a.values().into_owned(), name });
    }
    let layer_inputs: Vec<LayerInput> = owned.iter().map(OwnedLayer::input).collect();
    let tensor_inputs: Vec<TensorInput> = owned_tensors.iter().map(OwnedTensor::input).collect();
    let origin = path.display().to_string();
    py.detach(|| format::write(&path, metadata_json, &layer_inputs, &tensor_inputs)).map_err(|e| laq_err(e, &origin))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(serve::serve, m)?)?;
    m.add_function(wrap_pyfunction!(pack, m)?)?;
    m.add_function(wrap_pyfunction!(unpack, m)?)?;
    m.add_function(wrap_pyfunction!(qgemm, m)?)?;
    m.add_function(wrap_pyfunction!(write_laq, m)?)?;
    m.add_class::<laq_file::PyLaqFile>()?;
    m.add("FORMAT_VERSION", format::VERSION)?;
    m.add("SERVER_MAX_THREADS", serlaq_server::MAX_THREADS)?;
    m.add("SYNTHETIC_WARNING", serlaq_core::runtime::SYNTHETIC_WARNING)?;
    m.add("FORMATS_HELP", serlaq_core::runtime::formats_help())?;
    m.add("MODEL_HELP", serlaq_core::runtime::MODEL_HELP)?;
    m.add_function(wrap_pyfunction!(kernel, m)?)?;
    m.add_function(wrap_pyfunction!(kernels, m)?)?;
    // The qgemm error bound's constants (serlaq_core::gemv, "Accuracy"), for tests.
    m.add("QGEMM_DOT_COLS_PER_ROUNDING", gemv::DOT_COLS_PER_ROUNDING)?;
    m.add("QGEMM_DOT_EXTRA_ROUNDINGS", gemv::DOT_EXTRA_ROUNDINGS)?;
    m.add("F32_UNIT_ROUNDOFF", gemv::F32_UNIT_ROUNDOFF)?;
    adapt::register(m)?;
    audio::register(m)?;
    model::register(m)?;
    segments::register(m)?;
    runtime::register(m)?;
    Ok(())
}
