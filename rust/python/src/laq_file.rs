//! `serlaq._native.LaqFile`: a validated `.laq` file held in memory (layers, codes,
//! scales, extra tensors, one layer's forward), and the layer table as Python dicts.

use crate::*;

/// A validated `.laq` file held in memory.
#[pyclass(module = "serlaq._native", name = "LaqFile", frozen)]
pub(crate) struct PyLaqFile {
    inner: format::LaqFile,
    origin: String,
}

impl PyLaqFile {
    fn index(&self, i: isize) -> PyResult<usize> {
        let n = self.inner.layers().len();
        let j = if i < 0 { i + n as isize } else { i };
        if j < 0 || j as usize >= n {
            return Err(PyIndexError::new_err(format!("layer index {i} out of range ({n} layers in {})", self.origin)));
        }
        Ok(j as usize)
    }
}

#[pymethods]
impl PyLaqFile {
    /// Reads and validates `path`; raises LaqFormatError naming the problem.
    #[new]
    fn new(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let origin = path.display().to_string();
        let inner = py.detach(|| format::LaqFile::open(Path::new(&path))).map_err(|e| laq_err(e, &origin))?;
        Ok(PyLaqFile { inner, origin })
    }

    /// Validates an in-memory file (bytes, bytearray, memoryview or uint8 array).
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let buf = PyBuffer::<u8>::get(data)
            .map_err(|_| PyTypeError::new_err("from_bytes expects bytes or another byte buffer"))?;
        let bytes = buf.to_vec(py)?;
        let origin = "<bytes>".to_string();
        let inner = py.detach(|| format::LaqFile::from_bytes(bytes)).map_err(|e| laq_err(e, &origin))?;
        Ok(PyLaqFile { inner, origin })
    }

    #[getter]
    fn version(&self) -> u32 {
        self.inner.version()
    }

    #[getter]
    fn file_size(&self) -> usize {
        self.inner.file_size()
    }

    #[getter]
    fn metadata_json(&self) -> &str {
        self.inner.metadata_json()
    }

    /// One dict per layer, in stored (forward) order.
    fn layers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        layer_dicts(py, self.inner.layers())
    }

    /// Unpacked codes of layer `i`, uint8 (rows, cols).
    fn codes<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        let i = self.index(i)?;
        let l = &self.inner.layers()[i];
        let codes = py.detach(|| self.inner.codes(i));
        Ok(Array2::from_shape_vec((l.rows, l.cols), codes).expect("shape").into_pyarray(py).into_any())
    }

    /// Packed codes of layer `i`, uint8 (rows, row_bytes).
    fn packed<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        let i = self.index(i)?;
        let l = &self.inner.layers()[i];
        let p = self.inner.packed(i).to_vec();
        Ok(Array2::from_shape_vec((l.rows, l.row_bytes), p).expect("shape").into_pyarray(py).into_any())
    }

    fn scale<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        let i = self.index(i)?;
        Ok(self.inner.scale(i).into_pyarray(py).into_any())
    }

    fn zero<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Bound<'py, PyAny>> {
        let i = self.index(i)?;
        Ok(self.inner.zero(i).into_pyarray(py).into_any())
    }

    fn bias<'py>(&self, py: Python<'py>, i: isize) -> PyResult<Option<Bound<'py, PyAny>>> {
        let i = self.index(i)?;
        Ok(self.inner.bias(i).map(|b| b.into_pyarray(py).into_any()))
    }

    /// Names of the extra f32 tensors, sorted.
    fn tensor_names(&self) -> Vec<String> {
        self.inner.tensors().iter().map(|t| t.name.clone()).collect()
    }

    /// Extra tensor `name` in its stored shape; KeyError when absent.
    fn tensor<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let i = self
            .inner
            .tensor_index(name)
            .ok_or_else(|| PyKeyError::new_err(format!("no tensor {name:?} in {}", self.origin)))?;
        let shape = self.inner.tensors()[i].shape.clone();
        let a = ArrayD::from_shape_vec(IxDyn(&shape), self.inner.tensor(i)).expect("validated shape");
        Ok(a.into_pyarray(py).into_any())
    }

    /// `x @ W_i.T + b_i` straight from the stored packed layer (parameters borrowed).
    #[pyo3(signature = (i, x, *, kernel=None))]
    fn forward<'py>(
        &self,
        py: Python<'py>,
        i: isize,
        x: &Bound<'py, PyAny>,
        kernel: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let i = self.index(i)?;
        let k = kernel_arg(kernel)?;
        run_qgemm(py, k, &self.inner.matrix(i), self.inner.bias_slice(i), x)
    }

    fn __repr__(&self) -> String {
        format!(
            "LaqFile({:?}, version={}, layers={}, file_size={})",
            self.origin,
            self.inner.version(),
            self.inner.layers().len(),
            self.inner.file_size()
        )
    }
}

/// The layer table as Python dicts (name, rows, cols, bits, quantizer, granularity,
/// has_bias, packed_bytes): `LaqFile.layers()` and `Model.layers()` both return it.
pub(crate) fn layer_dicts<'py>(py: Python<'py>, layers: &[format::LayerInfo]) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for l in layers {
        let d = PyDict::new(py);
        d.set_item("name", &l.name)?;
        d.set_item("rows", l.rows)?;
        d.set_item("cols", l.cols)?;
        d.set_item("bits", l.bits)?;
        d.set_item("quantizer", l.quantizer.as_str())?;
        d.set_item("granularity", l.granularity.as_str())?;
        d.set_item("has_bias", l.has_bias)?;
        d.set_item("packed_bytes", l.packed_bytes)?;
        list.append(d)?;
    }
    Ok(list)
}
