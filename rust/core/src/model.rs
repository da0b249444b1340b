//! `Model`: a `.laq` file -> validated labels, architecture, normalization and feature
//! spec -> features -> standardize -> packed layers (ReLU between) -> softmax.
//!
//! Every metadata check of the former Python runtime (`LaqModel._parse_header`) lives
//! here, one [`ModelError`] variant per problem. The packed codes are borrowed from the
//! [`LaqFile`] on every call; each layer's scale, zero and bias are decoded once, at load.

use crate::audio::{self, AudioError};
use crate::features::{FeatureError, FeaturePlan, FeatureSpec, ScratchPool, SpecError};
use crate::format::LaqFile;
use crate::gemv::{self, QMatrix};
use crate::ood::{feature_rms, HiddenReference};
use rayon::prelude::*;
use serde_json::{Map, Value};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// One problem with a model's metadata or with an input; `Display` is one line
/// (the binding prefixes the file).
#[derive(Debug, Clone, PartialEq)]
pub enum ModelError {
    /// A required metadata field is absent.
    Missing { field: String },
    /// A metadata field has the wrong JSON type.
    WrongType { field: String, expected: &'static str, got: &'static str },
    /// `labels` is an empty list.
    NoLabels,
    /// `labels[index]` is an empty string.
    EmptyLabel { index: usize },
    /// The same label twice.
    DuplicateLabel { label: String },
    /// `architecture.type` is not "mlp".
    ArchitectureType { got: String },
    /// `architecture.activation` is not "relu".
    Activation { got: String },
    /// `architecture.hidden[index]` is not a positive integer.
    HiddenSize { index: usize },
    /// `architecture.input_dim` differs from the feature spec's dimension.
    InputDim { input_dim: usize, feature_dim: usize },
    /// `architecture.num_classes` differs from the number of labels.
    NumClasses { num_classes: usize, labels: usize },
    /// The architecture and the file disagree on the number of layers.
    LayerCount { architecture: usize, stored: usize },
    /// A stored layer's shape is not the one the architecture implies.
    LayerShape { index: usize, name: String, rows: usize, cols: usize, expected_rows: usize, expected_cols: usize },
    /// `normalization.<key>` names a tensor the file does not hold.
    NormTensorMissing { key: &'static str, tensor: String },
    /// A normalization tensor of the wrong length.
    NormLength { key: &'static str, tensor: String, got: usize, expected: usize },
    /// A normalization tensor with NaN or infinite values.
    NormNonFinite { key: &'static str, tensor: String },
    /// `normalization.std` holds a value <= 0.
    NormStdNotPositive { index: usize },
    /// A normalization value outside `lo..=hi`, beyond what any feature can reach (a
    /// corrupt or hostile file: a huge std maps every input to the same point; a tiny one,
    /// a denormal say, makes `(x - mean) / std` overflow, failing every prediction).
    NormOutOfRange { key: &'static str, index: usize, value: f32, lo: f32, hi: f32 },
    /// `calibration.temperature` or `ood.threshold` is not a finite number within bounds.
    OutOfBounds { field: &'static str, value: f64, lo: f64, hi: f64 },
    /// `ood.reference.<field>` is malformed (`crate::ood`).
    Reference { field: String, reason: String },
    /// The `features` object is invalid.
    Spec(SpecError),
    /// The waveform cannot be featurized.
    Features(FeatureError),
    /// A file cannot be decoded or holds no usable signal (names the file).
    Audio(AudioError),
    /// Feature input of the wrong length.
    InputShape { values: usize, dim: usize },
    /// A NaN or infinite feature value.
    NonFiniteInput { row: usize, col: usize },
    /// The packed product refused its arguments (a bug: shapes are validated at load).
    Kernel(String),
    /// The network's scores overflowed to NaN or infinity: weights, scales or biases far
    /// beyond any trained model's (a corrupt or hostile file), or an input far off scale.
    NonFiniteScores,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ModelError::*;
        match self {
            Missing { field } => write!(f, "metadata field '{field}' is missing"),
            WrongType { field, expected, got } => write!(f, "metadata field '{field}' must be {expected}, got {got}"),
            NoLabels => write!(f, "metadata field 'labels' must be a non-empty list of non-empty strings"),
            EmptyLabel { index } => write!(f, "metadata field 'labels' has an empty string at index {index}"),
            DuplicateLabel { label } => write!(f, "metadata field 'labels' has duplicate label {label:?}"),
            ArchitectureType { got } => {
                write!(f, "metadata field 'architecture.type' is {got:?}; this runtime runs 'mlp' models")
            }
            Activation { got } => {
                write!(f, "metadata field 'architecture.activation' is {got:?}; only 'relu' is supported")
            }
            HiddenSize { index } => {
                write!(f, "metadata field 'architecture.hidden' must be a list of positive integers (index {index})")
            }
            InputDim { input_dim, feature_dim } => write!(
                f,
                "metadata field 'architecture.input_dim' is {input_dim} but the feature config gives \
                 {feature_dim}-d vectors"
            ),
            NumClasses { num_classes, labels } => {
                write!(f, "metadata field 'architecture.num_classes' is {num_classes} but there are {labels} labels")
            }
            LayerCount { architecture, stored } => {
                write!(f, "architecture has {architecture} layers but the file stores {stored}")
            }
            LayerShape { index, name, rows, cols, expected_rows, expected_cols } => write!(
                f,
                "layer {index} ({name}) has shape {rows}x{cols}, the architecture says {expected_rows}x{expected_cols}"
            ),
            NormTensorMissing { key, tensor } => {
                write!(f, "metadata field 'normalization.{key}' names tensor {tensor:?}, which the file does not hold")
            }
            NormLength { key, tensor, got, expected } => write!(
                f,
                "metadata field 'normalization.{key}' tensor {tensor:?} has {got} values, expected {expected}"
            ),
            NormNonFinite { key, tensor } => {
                write!(f, "metadata field 'normalization.{key}' tensor {tensor:?} holds non-finite values")
            }
            NormStdNotPositive { index } => {
                write!(f, "metadata field 'normalization.std' must be strictly positive (value {index} is not)")
            }
            NormOutOfRange { key, index, value, lo, hi } => write!(
                f,
                "metadata field 'normalization.{key}' value {index} is {value:e}, outside {lo:e}..={hi:e} \
                 (a corrupted or hostile file)"
            ),
            OutOfBounds { field, value, lo, hi } => {
                write!(f, "metadata field '{field}' is {value}; it must be a finite number within {lo}..={hi}")
            }
            Reference { field, reason } if field.is_empty() => write!(f, "metadata field 'ood.reference' {reason}"),
            Reference { field, reason } => write!(f, "metadata field 'ood.reference.{field}' {reason}"),
            Spec(e) => write!(f, "metadata {e}"),
            Features(e) => write!(f, "{e}"),
            Audio(e) => write!(f, "{e}"),
            InputShape { values, dim } => {
                write!(f, "features: {values} values is not a whole number of {dim}-d vectors")
            }
            NonFiniteInput { row, col } => write!(f, "features: value at row {row}, column {col} is NaN or infinite"),
            NonFiniteScores => f.write_str(
                "the network's scores are NaN or infinite on this input (the model's weights, scales or \
                 biases are out of range: a damaged file?)",
            ),
            Kernel(m) => write!(f, "packed layer: {m}"),
        }
    }
}

impl std::error::Error for ModelError {}

impl From<SpecError> for ModelError {
    fn from(e: SpecError) -> Self {
        ModelError::Spec(e)
    }
}

impl From<AudioError> for ModelError {
    fn from(e: AudioError) -> Self {
        ModelError::Audio(e)
    }
}

impl From<FeatureError> for ModelError {
    fn from(e: FeatureError) -> Self {
        ModelError::Features(e)
    }
}

/// Bounds of `calibration.temperature` (the runtime divides logits by it before softmax):
/// below 0.05 a model would be made sharper than any fit on real validation data gives,
/// above 20 every answer would be near-uniform.
pub const TEMPERATURE_RANGE: (f64, f64) = (0.05, 20.0);
/// Bounds of `ood.threshold` (an RMS z-score over the standardized features).
pub const OOD_THRESHOLD_RANGE: (f64, f64) = (0.1, 1.0e6);
/// The out-of-domain threshold of a file that stores none: training data sits at an RMS
/// z-score of about 1 by construction of the standardization (`docs/laq-format.md`).
pub const DEFAULT_OOD_THRESHOLD: f64 = 3.0;
/// Largest |mean| and std a normalization tensor may hold. No feature of audio in
/// [-1, 1] comes near (a power spectrum of the largest FFT is below 1e9); beyond it a
/// file is corrupt or hostile (a huge std maps every input to one point).
pub const MAX_NORM_MEAN: f32 = 1.0e15;
pub const MAX_NORM_STD: f32 = 1.0e12;
/// Smallest std a normalization tensor may hold. With features below 1e9 in magnitude
/// and |mean| <= [`MAX_NORM_MEAN`], `(x - mean) / std` stays below about 1e35, inside
/// float32 (3.4e38), so a model that loads never fails a prediction on its own statistics
/// (a denormal std, 1e-45, made every prediction "NaN or infinite"). No real model comes
/// near: training writes the training split's population std (1 for a constant feature),
/// about 2e-11 at the least for an empty power-mel band of -60 dBFS audio and 0.24 in the
/// shipped model; `serlaq adapt` floors a std at `adapt::STD_FLOOR` (1e-3) times the model's.
pub const MIN_NORM_STD: f32 = 1.0e-20;

/// One packed layer: its index in the file plus its decoded affine parameters.
#[derive(Debug, Clone)]
struct Layer {
    index: usize,
    rows: usize,
    cols: usize,
    bits: u32,
    scale: Vec<f32>,
    zero: Vec<f32>,
    bias: Option<Vec<f32>>,
}

/// A validated `.laq` model, ready to run. `Send + Sync`.
#[derive(Debug)]
pub struct Model {
    file: LaqFile,
    labels: Vec<String>,
    plan: FeaturePlan,
    hidden: Vec<usize>,
    mean: Vec<f32>,
    std: Vec<f32>,
    layers: Vec<Layer>,
    scratch: ScratchPool,
    temperature: f64,
    ood_threshold: f64,
    /// The last hidden layer's training distribution (`crate::ood`), when the file has one.
    reference: Option<HiddenReference>,
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn field<'a>(m: &'a Map<String, Value>, prefix: &str, key: &str) -> Result<&'a Value, ModelError> {
    m.get(key).ok_or_else(|| ModelError::Missing { field: format!("{prefix}{key}") })
}

fn wrong(prefix: &str, key: &str, expected: &'static str, v: &Value) -> ModelError {
    ModelError::WrongType { field: format!("{prefix}{key}"), expected, got: kind(v) }
}

fn object<'a>(m: &'a Map<String, Value>, prefix: &str, key: &str) -> Result<&'a Map<String, Value>, ModelError> {
    let v = field(m, prefix, key)?;
    v.as_object().ok_or_else(|| wrong(prefix, key, "an object", v))
}

fn string<'a>(m: &'a Map<String, Value>, prefix: &str, key: &str) -> Result<&'a str, ModelError> {
    let v = field(m, prefix, key)?;
    v.as_str().ok_or_else(|| wrong(prefix, key, "a string", v))
}

/// `meta[object][key]`, when present: a finite number within `lo..=hi`.
fn optional_number(
    meta: &Map<String, Value>,
    object_key: &'static str,
    key: &'static str,
    (lo, hi): (f64, f64),
) -> Result<Option<f64>, ModelError> {
    let Some(obj) = meta.get(object_key) else { return Ok(None) };
    let obj = obj.as_object().ok_or_else(|| wrong("", object_key, "an object", obj))?;
    let Some(v) = obj.get(key) else { return Ok(None) };
    let x = v.as_f64().ok_or_else(|| wrong(&format!("{object_key}."), key, "a number", v))?;
    if !(x.is_finite() && (lo..=hi).contains(&x)) {
        let field = if object_key == "calibration" { "calibration.temperature" } else { "ood.threshold" };
        return Err(ModelError::OutOfBounds { field, value: x, lo, hi });
    }
    Ok(Some(x))
}

fn count(m: &Map<String, Value>, prefix: &str, key: &str) -> Result<usize, ModelError> {
    let v = field(m, prefix, key)?;
    v.as_u64().and_then(|n| usize::try_from(n).ok()).ok_or_else(|| wrong(prefix, key, "a non-negative integer", v))
}

impl Model {
    /// Validates the metadata of `file` against its layers and tensors.
    pub fn from_laq(file: LaqFile) -> Result<Model, ModelError> {
        // The format guarantees a JSON object; anything else reads as an empty one
        // (and fails as a missing field).
        let meta = match serde_json::from_str::<Value>(file.metadata_json()) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };

        let labels_v = field(&meta, "", "labels")?;
        let items = labels_v.as_array().ok_or_else(|| wrong("", "labels", "a list", labels_v))?;
        if items.is_empty() {
            return Err(ModelError::NoLabels);
        }
        let mut labels: Vec<String> = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            let s = v.as_str().ok_or_else(|| wrong("", &format!("labels[{i}]"), "a string", v))?;
            if s.is_empty() {
                return Err(ModelError::EmptyLabel { index: i });
            }
            // labels are printed in rows and tables: a tab, newline or escape would forge them
            if s.chars().any(char::is_control) {
                return Err(wrong("", &format!("labels[{i}]"), "a string without control characters", v));
            }
            labels.push(s.to_string());
        }
        // sorted neighbours, not a scan of the labels so far: a hostile list of a million
        // labels is refused in milliseconds, not in half an hour (and no hasher is linked
        // into the WebAssembly module for it)
        let mut sorted: Vec<&String> = labels.iter().collect();
        sorted.sort_unstable();
        if let Some(pair) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(ModelError::DuplicateLabel { label: pair[0].clone() });
        }

        let spec = FeatureSpec::from_json_value(field(&meta, "", "features")?)?;
        let feature_dim = spec.dim();

        let arch = object(&meta, "", "architecture")?;
        let p = "architecture.";
        let t = string(arch, p, "type")?;
        if t != "mlp" {
            return Err(ModelError::ArchitectureType { got: t.to_string() });
        }
        match arch.get("activation") {
            None => {}
            Some(Value::String(a)) if a == "relu" => {}
            Some(Value::String(a)) => return Err(ModelError::Activation { got: a.clone() }),
            Some(v) => return Err(wrong(p, "activation", "a string", v)),
        }
        let input_dim = count(arch, p, "input_dim")?;
        let hidden_v = field(arch, p, "hidden")?;
        let hidden_items = hidden_v.as_array().ok_or_else(|| wrong(p, "hidden", "a list", hidden_v))?;
        let mut hidden = Vec::with_capacity(hidden_items.len().min(64));
        for (i, h) in hidden_items.iter().enumerate() {
            match h.as_u64().and_then(|n| usize::try_from(n).ok()) {
                Some(n) if n > 0 => hidden.push(n),
                _ => return Err(ModelError::HiddenSize { index: i }),
            }
        }
        let num_classes = count(arch, p, "num_classes")?;
        if input_dim != feature_dim {
            return Err(ModelError::InputDim { input_dim, feature_dim });
        }
        if num_classes != labels.len() {
            return Err(ModelError::NumClasses { num_classes, labels: labels.len() });
        }

        let stored = file.layers();
        if stored.len() != hidden.len() + 1 {
            return Err(ModelError::LayerCount { architecture: hidden.len() + 1, stored: stored.len() });
        }
        let mut dims = Vec::with_capacity(hidden.len() + 2);
        dims.push(input_dim);
        dims.extend_from_slice(&hidden);
        dims.push(num_classes);
        let mut layers = Vec::with_capacity(stored.len());
        for (i, l) in stored.iter().enumerate() {
            if (l.rows, l.cols) != (dims[i + 1], dims[i]) {
                return Err(ModelError::LayerShape {
                    index: i,
                    name: l.name.clone(),
                    rows: l.rows,
                    cols: l.cols,
                    expected_rows: dims[i + 1],
                    expected_cols: dims[i],
                });
            }
            let layer = Layer {
                index: i,
                rows: l.rows,
                cols: l.cols,
                bits: l.bits,
                scale: file.scale(i),
                zero: file.zero(i),
                bias: file.bias(i),
            };
            QMatrix::new(file.packed(i), l.rows, l.cols, l.bits, &layer.scale, &layer.zero)
                .map_err(|e| ModelError::Kernel(e.to_string()))?;
            layers.push(layer);
        }

        let norm = object(&meta, "", "normalization")?;
        let mut stats: Vec<Vec<f32>> = Vec::with_capacity(2);
        for key in ["mean", "std"] {
            let name = string(norm, "normalization.", key)?;
            let idx = file
                .tensor_index(name)
                .ok_or_else(|| ModelError::NormTensorMissing { key, tensor: name.to_string() })?;
            let n: usize = file.tensors()[idx].shape.iter().product();
            if n != input_dim {
                return Err(ModelError::NormLength { key, tensor: name.to_string(), got: n, expected: input_dim });
            }
            let values = file.tensor(idx);
            if !values.iter().all(|v| v.is_finite()) {
                return Err(ModelError::NormNonFinite { key, tensor: name.to_string() });
            }
            stats.push(values);
        }
        let std = stats.pop().unwrap_or_default();
        let mean = stats.pop().unwrap_or_default();
        if let Some(index) = std.iter().position(|&s| s <= 0.0) {
            return Err(ModelError::NormStdNotPositive { index });
        }
        let (lo, hi) = (MIN_NORM_STD, MAX_NORM_STD);
        if let Some(index) = std.iter().position(|s| !(lo..=hi).contains(s)) {
            return Err(ModelError::NormOutOfRange { key: "std", index, value: std[index], lo, hi });
        }
        let (lo, hi) = (-MAX_NORM_MEAN, MAX_NORM_MEAN);
        if let Some(index) = mean.iter().position(|m| !(lo..=hi).contains(m)) {
            return Err(ModelError::NormOutOfRange { key: "mean", index, value: mean[index], lo, hi });
        }
        let temperature = optional_number(&meta, "calibration", "temperature", TEMPERATURE_RANGE)?.unwrap_or(1.0);
        let ood_threshold =
            optional_number(&meta, "ood", "threshold", OOD_THRESHOLD_RANGE)?.unwrap_or(DEFAULT_OOD_THRESHOLD);
        let reference = HiddenReference::parse(&meta, &file, hidden.last().copied(), labels.len())
            .map_err(|e| ModelError::Reference { field: e.field, reason: e.reason })?;
        let plan = FeaturePlan::new(&spec)?;
        Ok(Model {
            file,
            labels,
            plan,
            hidden,
            mean,
            std,
            layers,
            scratch: ScratchPool::default(),
            temperature,
            ood_threshold,
            reference,
        })
    }

    /// The last hidden layer's out-of-domain reference, when the file stores one.
    pub fn reference(&self) -> Option<&HiddenReference> {
        self.reference.as_ref()
    }

    /// The temperature the logits are divided by before softmax (`calibration.temperature`,
    /// 1 when the file stores none).
    pub fn temperature(&self) -> f64 {
        self.temperature
    }

    /// The RMS z-score above which a clip counts as out of the training distribution.
    pub fn ood_threshold(&self) -> f64 {
        self.ood_threshold
    }

    /// Out-of-domain score of one raw feature vector. With a hidden reference
    /// (`crate::ood`): the distance of its last hidden layer from the training split's.
    /// Without (older files): the root mean square of its standardized values,
    /// `sqrt(mean(((x - mean) / std)^2))`. Either is about 1 on the training split; a new
    /// room, microphone or band sits far above.
    pub fn ood_score(&self, x: &[f32]) -> Result<f64, ModelError> {
        let d = self.input_dim();
        if x.len() != d {
            return Err(ModelError::InputShape { values: x.len(), dim: d });
        }
        if let Some(col) = x.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFiniteInput { row: 0, col });
        }
        if let Some(r) = &self.reference {
            let z = standardize(x, &self.mean, &self.std);
            let rms = feature_rms(&z);
            let (hidden, _) = self.forward_hidden(z, 1)?;
            return Ok(r.score(&hidden, rms, self.ood_threshold));
        }
        let sum: f64 = x
            .iter()
            .zip(&self.mean)
            .zip(&self.std)
            .map(|((&v, &m), &s)| {
                let z = (f64::from(v) - f64::from(m)) / f64::from(s);
                z * z
            })
            .sum();
        Ok((sum / d as f64).sqrt())
    }

    /// One raw feature vector -> its calibrated probabilities and out-of-domain score, in
    /// one pass through the network.
    pub fn predict_features(&self, x: &[f32]) -> Result<(Vec<f64>, f64), ModelError> {
        if self.reference.is_none() {
            // the RMS z-score from the raw row in float64, as `ood_score` gives it
            return Ok((self.probabilities(x)?, self.ood_score(x)?));
        }
        let d = self.input_dim();
        if x.len() != d {
            return Err(ModelError::InputShape { values: x.len(), dim: d });
        }
        if let Some(col) = x.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFiniteInput { row: 0, col });
        }
        self.scored_standardized(standardize(x, &self.mean, &self.std))
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }
    pub fn num_classes(&self) -> usize {
        self.labels.len()
    }
    pub fn spec(&self) -> &FeatureSpec {
        self.plan.spec()
    }
    pub fn plan(&self) -> &FeaturePlan {
        &self.plan
    }
    pub fn input_dim(&self) -> usize {
        self.plan.dim()
    }
    pub fn hidden(&self) -> &[usize] {
        &self.hidden
    }
    pub fn file(&self) -> &LaqFile {
        &self.file
    }
    pub fn metadata_json(&self) -> &str {
        self.file.metadata_json()
    }
    /// Normalization mean and std (`input_dim` each).
    pub fn normalization(&self) -> (&[f32], &[f32]) {
        (&self.mean, &self.std)
    }

    /// Raw feature vectors (`n x input_dim`, row-major) -> logits (`n x num_classes`).
    /// Standardizes as `(x - mean) / std` in float32 (the training model's divide), then
    /// runs each packed layer through [`gemv::qgemm`], ReLU between layers.
    pub fn forward(&self, x: &[f32]) -> Result<Vec<f32>, ModelError> {
        let d = self.input_dim();
        if x.is_empty() || !x.len().is_multiple_of(d) {
            return Err(ModelError::InputShape { values: x.len(), dim: d });
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFiniteInput { row: i / d, col: i % d });
        }
        self.forward_standardized(standardize(x, &self.mean, &self.std), x.len() / d)
    }

    /// Already standardized rows (`n x input_dim`) -> logits: the packed layers alone.
    /// `serlaq adapt` runs the network under new statistics through it without building
    /// a second model.
    pub fn forward_standardized(&self, h: Vec<f32>, n: usize) -> Result<Vec<f32>, ModelError> {
        self.run_layers(h, n, false).map(|(_, logits)| logits)
    }

    /// Already standardized rows -> (the last hidden layer's activations, `n x width`; the
    /// logits). For a model without hidden layers the first is empty.
    pub fn forward_hidden(&self, h: Vec<f32>, n: usize) -> Result<(Vec<f32>, Vec<f32>), ModelError> {
        self.run_layers(h, n, true)
    }

    fn run_layers(&self, mut h: Vec<f32>, n: usize, keep_hidden: bool) -> Result<(Vec<f32>, Vec<f32>), ModelError> {
        let d = self.input_dim();
        if n == 0 || h.len() != n * d {
            return Err(ModelError::InputShape { values: h.len(), dim: d });
        }
        let last = self.layers.len() - 1;
        let mut hidden = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            let m = QMatrix::new(self.file.packed(l.index), l.rows, l.cols, l.bits, &l.scale, &l.zero)
                .map_err(|e| ModelError::Kernel(e.to_string()))?;
            let mut y = vec![0f32; n * l.rows];
            gemv::qgemm(&m, l.bias.as_deref(), &h, n, &mut y).map_err(|e| ModelError::Kernel(e.to_string()))?;
            if i != last {
                y.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            if i == last && keep_hidden && last > 0 {
                hidden = std::mem::replace(&mut h, y);
            } else {
                h = y;
            }
        }
        // a label with NaN confidence must never be answered
        if !h.iter().all(|v| v.is_finite()) {
            return Err(ModelError::NonFiniteScores);
        }
        Ok((hidden, h))
    }

    /// Softmax of each row's logits divided by its temperature: the calibration
    /// temperature, grown with the row's out-of-domain score (down to the floor) when the
    /// file has a reference with `temper` > 0 (`crate::ood`). `hidden`: the rows' last
    /// hidden layer and the RMS of their standardized features (needed then).
    fn calibrated(&self, hidden: Option<(&[f32], &[f64])>, logits: &[f32]) -> Vec<f64> {
        let k = self.num_classes();
        match (&self.reference, hidden) {
            (Some(r), Some((hidden, rms))) if r.temper() > 0.0 && !hidden.is_empty() => {
                let width = hidden.len() / (logits.len() / k).max(1);
                let mut out = Vec::with_capacity(logits.len());
                for ((row, h), &f) in logits.chunks_exact(k).zip(hidden.chunks_exact(width)).zip(rms) {
                    let t = r.floored_temperature(
                        row,
                        self.temperature,
                        r.score(h, f, self.ood_threshold),
                        self.ood_threshold,
                    );
                    out.extend(softmax_rows_t(row, k, t));
                }
                out
            }
            _ => softmax_rows_t(logits, k, self.temperature),
        }
    }

    /// Raw feature vectors -> class probabilities (`n x num_classes`, softmax in float64
    /// of the logits divided by the calibration temperature, `crate::ood`'s growth
    /// included).
    pub fn probabilities(&self, x: &[f32]) -> Result<Vec<f64>, ModelError> {
        let d = self.input_dim();
        if x.is_empty() || !x.len().is_multiple_of(d) {
            return Err(ModelError::InputShape { values: x.len(), dim: d });
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFiniteInput { row: i / d, col: i % d });
        }
        self.probabilities_standardized(standardize(x, &self.mean, &self.std))
    }

    /// Already standardized rows -> class probabilities (the layers, then the calibrated
    /// softmax). Streams with running normalisation standardize with their own statistics.
    pub fn probabilities_standardized(&self, h: Vec<f32>) -> Result<Vec<f64>, ModelError> {
        let n = h.len() / self.input_dim().max(1);
        if let Some(i) = h.iter().position(|v| !v.is_finite()) {
            let d = self.input_dim();
            return Err(ModelError::NonFiniteInput { row: i / d, col: i % d });
        }
        if self.reference.is_some() {
            let rms: Vec<f64> = h.chunks_exact(self.input_dim()).map(feature_rms).collect();
            let (hidden, logits) = self.forward_hidden(h, n)?;
            return Ok(self.calibrated(Some((&hidden, &rms)), &logits));
        }
        let logits = self.forward_standardized(h, n)?;
        Ok(self.calibrated(None, &logits))
    }

    /// One already standardized row -> its calibrated probabilities and out-of-domain
    /// score (the hidden distance with a reference, else the row's RMS), in one pass.
    /// Streams with running normalisation score their windows through it.
    pub fn scored_standardized(&self, z: Vec<f32>) -> Result<(Vec<f64>, f64), ModelError> {
        let d = self.input_dim();
        if z.len() != d {
            return Err(ModelError::InputShape { values: z.len(), dim: d });
        }
        if let Some(col) = z.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFiniteInput { row: 0, col });
        }
        let rms = feature_rms(&z);
        match &self.reference {
            Some(r) => {
                let (hidden, logits) = self.forward_hidden(z, 1)?;
                Ok((self.calibrated(Some((&hidden, &[rms])), &logits), r.score(&hidden, rms, self.ood_threshold)))
            }
            None => {
                let logits = self.forward_standardized(z, 1)?;
                Ok((self.calibrated(None, &logits), rms))
            }
        }
    }

    /// A mono waveform at the spec's rate -> the raw feature vector.
    pub fn features_wave(&self, wave: &[f32]) -> Result<Vec<f32>, ModelError> {
        Ok(self.scratch.extract(&self.plan, wave)?)
    }

    /// A mono waveform at the spec's rate -> class probabilities.
    pub fn predict_wave(&self, wave: &[f32]) -> Result<Vec<f64>, ModelError> {
        self.probabilities(&self.features_wave(wave)?)
    }

    /// Decode, downmix and resample a file to the spec's rate (`audio::load`, with the
    /// spec's `min_samples`), then its raw feature vector.
    pub fn features_file(&self, path: &Path) -> Result<Vec<f32>, ModelError> {
        let spec = self.spec();
        let wave = audio::load(path, spec.sample_rate, spec.min_samples())?;
        self.features_decoded(&wave, audio::source_name(path))
    }

    /// An encoded file held in memory (an upload, a blob; `source` names it in errors), decoded
    /// as [`Model::features_file`] decodes a file, then its raw feature vector.
    pub fn features_bytes(&self, data: &[u8], source: &str) -> Result<Vec<f32>, ModelError> {
        let spec = self.spec();
        let wave = audio::load_bytes(data, source, spec.sample_rate, spec.min_samples())?;
        self.features_decoded(&wave, source.to_string())
    }

    /// The features of decoded audio; the loader bounds length already, so anything else the
    /// extractor finds wrong is named after the input.
    fn features_decoded(&self, wave: &[f32], source: String) -> Result<Vec<f32>, ModelError> {
        self.features_wave(wave).map_err(|e| match e {
            ModelError::Features(f) => ModelError::Audio(AudioError::Internal { source, detail: f.to_string() }),
            other => other,
        })
    }

    /// A file -> class probabilities.
    pub fn predict_file(&self, path: &Path) -> Result<Vec<f64>, ModelError> {
        self.probabilities(&self.features_file(path)?)
    }

    /// An encoded file in memory -> class probabilities.
    pub fn predict_bytes(&self, data: &[u8], source: &str) -> Result<Vec<f64>, ModelError> {
        self.probabilities(&self.features_bytes(data, source)?)
    }

    /// A file -> class probabilities and its out-of-domain score (one pass, as
    /// [`Model::predict_features`]).
    pub fn predict_file_scored(&self, path: &Path) -> Result<(Vec<f64>, f64), ModelError> {
        self.predict_features(&self.features_file(path)?)
    }

    /// Many files on `threads` native threads (0 = rayon's default pool size); results in
    /// input order, each the file's probabilities with its out-of-domain score, or its
    /// one-line error naming the file. A panic while handling one file becomes that file's
    /// error.
    pub fn predict_files(&self, paths: &[PathBuf], threads: usize) -> Vec<Result<(Vec<f64>, f64), String>> {
        let one = |p: &PathBuf| -> Result<(Vec<f64>, f64), String> {
            let name = p.display().to_string();
            match catch_unwind(AssertUnwindSafe(|| self.predict_file_scored(p))) {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(ModelError::Audio(e))) => Err(e.to_string()),
                Ok(Err(e)) => Err(format!("{name}: {e}")),
                Err(_) => Err(format!("{name}: internal error (a panic in serlaq; please report)")),
            }
        };
        if threads == 1 || paths.len() <= 1 {
            return paths.iter().map(one).collect();
        }
        match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
            Ok(pool) => pool.install(|| paths.par_iter().map(one).collect()),
            Err(_) => paths.iter().map(one).collect(),
        }
    }
}

/// `(x - mean) / std` per row in float32 (the training model's divide); `x` is rows of
/// `mean.len()` values.
pub fn standardize(x: &[f32], mean: &[f32], std: &[f32]) -> Vec<f32> {
    x.chunks_exact(mean.len()).flat_map(|row| row.iter().zip(mean).zip(std).map(|((&v, &m), &s)| (v - m) / s)).collect()
}

/// Row-wise softmax in float64 (max subtracted first).
pub fn softmax_rows(logits: &[f32], classes: usize) -> Vec<f64> {
    softmax_rows_t(logits, classes, 1.0)
}

/// Row-wise softmax of `logits / temperature` in float64.
pub fn softmax_rows_t(logits: &[f32], classes: usize, temperature: f64) -> Vec<f64> {
    let mut out: Vec<f64> = logits.iter().map(|&v| f64::from(v) / temperature).collect();
    for row in out.chunks_exact_mut(classes) {
        let top = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        row.iter_mut().for_each(|v| *v = (*v - top).exp());
        let sum: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= sum);
    }
    out
}
