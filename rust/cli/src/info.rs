//! `serlaq-rt info`: what a `.laq` file holds, the content of Python's
//! `LaqModel.summary()` (`--json`) and `LaqModel.describe()` (text), same bytes.

use crate::pyjson::{self, thousands, J};
use serlaq_core::format::Granularity;
use serlaq_core::model::Model;

/// One packed layer's figures (`serlaq.runtime.results.LayerInfo`).
struct LayerRow {
    name: String,
    rows: usize,
    cols: usize,
    bits: u32,
    quantizer: &'static str,
    granularity: &'static str,
    has_bias: bool,
    packed_bytes: usize,
    size_bytes: usize,
    fp32_bytes: usize,
}

impl LayerRow {
    fn params(&self) -> usize {
        self.rows * self.cols + if self.has_bias { self.rows } else { 0 }
    }
}

/// Everything `info` shows, computed once.
pub struct Summary {
    path: String,
    format_version: u32,
    metadata: J,
    labels: Vec<String>,
    features: J,
    input_dim: usize,
    layers: Vec<LayerRow>,
    size_bytes: usize,
}

impl Summary {
    pub fn new(model: &Model, path: &str) -> Summary {
        let file = model.file();
        // the loader validated the metadata as a JSON object; keep the file's key order
        let metadata = pyjson::loads(file.metadata_json()).unwrap_or(J::Obj(vec![]));
        let layers = file
            .layers()
            .iter()
            .map(|l| {
                let scales = if l.granularity == Granularity::Channel { l.rows } else { 1 };
                let bias_bytes = if l.has_bias { 4 * l.rows } else { 0 };
                LayerRow {
                    name: l.name.clone(),
                    rows: l.rows,
                    cols: l.cols,
                    bits: l.bits,
                    quantizer: l.quantizer.as_str(),
                    granularity: l.granularity.as_str(),
                    has_bias: l.has_bias,
                    packed_bytes: l.packed_bytes,
                    size_bytes: l.packed_bytes + 8 * scales + bias_bytes,
                    fp32_bytes: 4 * l.rows * l.cols + bias_bytes,
                }
            })
            .collect();
        Summary {
            path: path.to_string(),
            format_version: file.version(),
            metadata,
            labels: model.labels().to_vec(),
            features: J::from(&model.spec().to_json_value()),
            input_dim: model.input_dim(),
            layers,
            size_bytes: file.file_size(),
        }
    }

    fn params(&self) -> usize {
        self.layers.iter().map(LayerRow::params).sum()
    }

    /// Eq. 6: bits weighted by each layer's share of the weights.
    pub fn avg_bits(&self) -> f64 {
        let w: usize = self.layers.iter().map(|l| l.rows * l.cols).sum();
        let wb: usize = self.layers.iter().map(|l| l.rows * l.cols * l.bits as usize).sum();
        wb as f64 / w as f64
    }

    fn payload_bytes(&self) -> usize {
        self.layers.iter().map(|l| l.size_bytes).sum()
    }

    fn fp32_size_bytes(&self) -> usize {
        self.layers.iter().map(|l| l.fp32_bytes).sum()
    }

    fn compression_ratio(&self) -> f64 {
        self.fp32_size_bytes() as f64 / self.size_bytes as f64
    }

    fn meta(&self, key: &str) -> J {
        self.metadata.get(key).cloned().unwrap_or(J::Null)
    }

    /// `LaqModel.summary()`.
    pub fn to_json(&self) -> J {
        let u = |n: usize| J::UInt(n as u64);
        let layers = self
            .layers
            .iter()
            .map(|l| {
                J::obj([
                    ("name", J::Str(l.name.clone())),
                    ("shape", J::Arr(vec![u(l.rows), u(l.cols)])),
                    ("bits", J::UInt(l.bits.into())),
                    ("quantizer", J::Str(l.quantizer.into())),
                    ("granularity", J::Str(l.granularity.into())),
                    ("has_bias", J::Bool(l.has_bias)),
                    ("params", u(l.params())),
                    ("packed_bytes", u(l.packed_bytes)),
                    ("size_bytes", u(l.size_bytes)),
                    ("fp32_bytes", u(l.fp32_bytes)),
                ])
            })
            .collect();
        J::obj([
            ("path", J::Str(self.path.clone())),
            ("format_version", J::UInt(self.format_version.into())),
            ("serlaq_version", self.meta("serlaq_version")),
            ("labels", J::Arr(self.labels.iter().map(|l| J::Str(l.clone())).collect())),
            ("features", self.features.clone()),
            ("feature_dim", u(self.input_dim)),
            ("architecture", self.meta("architecture")),
            ("layers", J::Arr(layers)),
            ("params", u(self.params())),
            ("avg_bits", J::Float(self.avg_bits())),
            ("size_bytes", u(self.size_bytes)),
            ("payload_bytes", u(self.payload_bytes())),
            ("fp32_size_bytes", u(self.fp32_size_bytes())),
            ("compression_ratio", J::Float(self.compression_ratio())),
            ("laq", self.meta("laq")),
        ])
    }

    /// `LaqModel.describe()`.
    pub fn describe(&self) -> String {
        let spec_value = |v: &J| match v {
            J::Arr(items) if items.is_empty() => "-".to_string(),
            J::Arr(items) => items.iter().map(J::py_str).collect::<Vec<_>>().join(","),
            other => other.py_str(),
        };
        let feats = match &self.features {
            J::Obj(items) => items.iter().map(|(k, v)| format!("{k}={}", spec_value(v))).collect::<Vec<_>>().join(" "),
            _ => String::new(),
        };
        let name_w = self.layers.iter().map(|l| l.name.chars().count()).max().unwrap_or(0).max(5);
        let written_by = self.metadata.get("serlaq_version").map_or("?".to_string(), J::py_str);
        let dims: Vec<String> = self.layers.iter().map(|l| l.rows.to_string()).collect();
        let mut lines = vec![
            format!(
                "model        {} (.laq format v{}, written by serlaq {written_by})",
                self.path, self.format_version
            ),
            format!("labels       {} ({} classes)", self.labels.join(", "), self.labels.len()),
            format!("features     {}-d: {feats}", self.input_dim),
            format!(
                "params       {} ({} -> {}, ReLU between layers)",
                thousands(self.params() as u64),
                self.input_dim,
                dims.join(" -> ")
            ),
            String::new(),
            format!(
                "{:<name_w$}  {:>9}  {:>4}  {:<9}  {:<11}  {:>10}  {:>10}",
                "layer", "shape", "bits", "quantizer", "granularity", "size", "fp32"
            ),
        ];
        for l in &self.layers {
            lines.push(format!(
                "{:<name_w$}  {:>9}  {:>4}  {:<9}  {:<11}  {:>10}  {:>10}",
                l.name,
                format!("{}x{}", l.rows, l.cols),
                l.bits,
                l.quantizer,
                l.granularity,
                kb(l.size_bytes),
                kb(l.fp32_bytes)
            ));
        }
        lines.push(String::new());
        lines.push(format!(
            "avg bits     {:.3} (eq. 6: bits weighted by each layer's share of the weights)",
            self.avg_bits()
        ));
        lines.push(format!(
            "size         {} .laq file ({} packed weights, scales and fp32 biases; the rest is normalization stats and header)",
            kb(self.size_bytes),
            kb(self.payload_bytes())
        ));
        lines.push(format!(
            "fp32 size    {} (same MLP, fp32 weights and biases): {:.1}x larger than the .laq file",
            kb(self.fp32_size_bytes()),
            self.compression_ratio()
        ));
        lines.join("\n")
    }
}

/// `f"{n / 1000:.1f} KB"`.
fn kb(n: usize) -> String {
    format!("{:.1} KB", n as f64 / 1000.0)
}
