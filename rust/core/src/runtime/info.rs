//! What a `.laq` file holds, for people ([`ModelInfo::text`]) and programs (its serde
//! form, `info --json`): labels, features, the packed layers with their sizes, average
//! bits, size against fp32, how sure it says it is (`confidence`: the temperature and the
//! out-of-domain score), and where the model came from (`provenance`, when the file has it:
//! shown first, rendered from whatever keys it holds).

use super::json::py_repr;
use super::records::one_line;
use crate::format::Granularity;
use crate::model::Model;
use serde::Serialize;
use serde_json::Value;

/// The warning `predict` prints (both CLIs) for a model whose provenance says it saw only
/// synthetic audio: the demo's model must not pass for one that hears emotion.
pub const SYNTHETIC_WARNING: &str = "this model was trained on the synthetic demo corpus (generated tones), not on \
     speech: its predictions on real recordings mean nothing; train one on your data (see the README)";

/// Whether the file's provenance says every corpus it was trained on is synthetic.
pub fn trained_on_synthetic(model: &Model) -> bool {
    let meta: Option<Value> = serde_json::from_str(model.metadata_json()).ok();
    meta.as_ref().and_then(|m| m.get("provenance")?.get("synthetic")?.as_bool()) == Some(true)
}

/// One packed layer's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerRow {
    pub name: String,
    /// `[rows, cols]`.
    pub shape: [usize; 2],
    pub bits: u32,
    pub quantizer: &'static str,
    pub granularity: &'static str,
    pub has_bias: bool,
    pub params: usize,
    /// The weight codes at `bits` bits.
    pub packed_bytes: usize,
    /// Packed codes + fp32 scale/zero + fp32 bias.
    pub size_bytes: usize,
    /// The same layer in fp32.
    pub fp32_bytes: usize,
}

/// How the model's probabilities are calibrated and what its out-of-domain score measures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confidence {
    /// The logits are divided by it before softmax (`calibration.temperature`; 1 when absent).
    pub temperature: f64,
    /// `"hidden"`: the distance of the last hidden layer from the stored reference;
    /// `"features"`: the RMS z-score of the features (files without a reference).
    pub ood_score: &'static str,
    /// A clip above it lies outside the training distribution (`ood.threshold`).
    pub ood_threshold: f64,
    /// Directions of the hidden reference (absent without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_rank: Option<usize>,
    /// k of the temperature's growth beyond the threshold, `T * (d / t)^k` (absent without a reference).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temper: Option<f64>,
    /// m: the growth stops where the top label keeps m / classes (absent without a
    /// reference or a floor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<f64>,
    /// The features' own threshold (RMS z-score): the score is the larger of the two
    /// distances in the hidden threshold's units (absent without a reference or one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_threshold: Option<f64>,
}

/// Everything `info` shows; the field order is the JSON key order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    pub path: String,
    /// The file's `provenance` metadata as it stands (absent from the JSON when the file
    /// has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Value>,
    pub format_version: u32,
    pub serlaq_version: Value,
    pub labels: Vec<String>,
    pub features: Value,
    pub feature_dim: usize,
    pub architecture: Value,
    pub layers: Vec<LayerRow>,
    pub params: usize,
    /// Eq. 6: bits weighted by each layer's share of the weights.
    pub avg_bits: f64,
    /// The whole file.
    pub size_bytes: usize,
    /// Packed weights, scales and fp32 biases.
    pub payload_bytes: usize,
    pub fp32_size_bytes: usize,
    pub compression_ratio: f64,
    pub confidence: Confidence,
    pub laq: Value,
}

impl ModelInfo {
    /// `path`: how the model is named (a path as given, `<bytes>`, `general`).
    pub fn new(model: &Model, path: &str) -> ModelInfo {
        let file = model.file();
        // the loader validated the metadata as a JSON object
        let metadata: Value = serde_json::from_str(file.metadata_json()).unwrap_or(Value::Null);
        let meta = |k: &str| metadata.get(k).cloned().unwrap_or(Value::Null);
        let layers: Vec<LayerRow> = file
            .layers()
            .iter()
            .map(|l| {
                let scales = if l.granularity == Granularity::Channel { l.rows } else { 1 };
                let bias_bytes = if l.has_bias { 4 * l.rows } else { 0 };
                LayerRow {
                    name: l.name.clone(),
                    shape: [l.rows, l.cols],
                    bits: l.bits,
                    quantizer: l.quantizer.as_str(),
                    granularity: l.granularity.as_str(),
                    has_bias: l.has_bias,
                    params: l.rows * l.cols + if l.has_bias { l.rows } else { 0 },
                    packed_bytes: l.packed_bytes,
                    size_bytes: l.packed_bytes + 8 * scales + bias_bytes,
                    fp32_bytes: 4 * l.rows * l.cols + bias_bytes,
                }
            })
            .collect();
        let weights: usize = layers.iter().map(|l| l.shape[0] * l.shape[1]).sum();
        let weighted: usize = layers.iter().map(|l| l.shape[0] * l.shape[1] * l.bits as usize).sum();
        let fp32: usize = layers.iter().map(|l| l.fp32_bytes).sum();
        ModelInfo {
            path: path.to_string(),
            provenance: metadata.get("provenance").cloned(),
            format_version: file.version(),
            serlaq_version: meta("serlaq_version"),
            labels: model.labels().to_vec(),
            features: model.spec().to_json_value(),
            feature_dim: model.input_dim(),
            architecture: meta("architecture"),
            params: layers.iter().map(|l| l.params).sum(),
            avg_bits: weighted as f64 / weights as f64,
            size_bytes: file.file_size(),
            payload_bytes: layers.iter().map(|l| l.size_bytes).sum(),
            fp32_size_bytes: fp32,
            compression_ratio: fp32 as f64 / file.file_size() as f64,
            confidence: Confidence {
                temperature: model.temperature(),
                ood_score: if model.reference().is_some() { "hidden" } else { "features" },
                ood_threshold: model.ood_threshold(),
                reference_rank: model.reference().map(|r| r.rank()),
                temper: model.reference().map(|r| r.temper()),
                floor: model.reference().map(|r| r.floor()).filter(|&m| m > 0.0),
                feature_threshold: model.reference().and_then(|r| r.feature_threshold()),
            },
            laq: meta("laq"),
            layers,
        }
    }

    /// The human-readable form.
    pub fn text(&self) -> String {
        let feats = match &self.features {
            Value::Object(m) => m.iter().map(|(k, v)| format!("{k}={}", spec_value(v))).collect::<Vec<_>>().join(" "),
            _ => String::new(),
        };
        let name_w = self.layers.iter().map(|l| l.name.chars().count()).max().unwrap_or(0).max(5);
        let written_by = match &self.serlaq_version {
            Value::Null => "?".to_string(),
            v => py_str(v),
        };
        let dims: Vec<String> = self.layers.iter().map(|l| l.shape[0].to_string()).collect();
        let mut lines = Vec::new();
        if let Some(p) = &self.provenance {
            lines.extend(provenance_lines(p));
            lines.push(String::new());
        }
        lines.extend([
            format!(
                "model        {} (.laq format v{}, written by serlaq {written_by})",
                self.path, self.format_version
            ),
            format!("labels       {} ({} classes)", self.labels.join(", "), self.labels.len()),
            format!("features     {}-d: {feats}", self.feature_dim),
            format!(
                "params       {} ({} -> {}, ReLU between layers)",
                thousands(self.params as u64),
                self.feature_dim,
                dims.join(" -> ")
            ),
            String::new(),
            format!(
                "{:<name_w$}  {:>9}  {:>4}  {:<9}  {:<11}  {:>10}  {:>10}",
                "layer", "shape", "bits", "quantizer", "granularity", "size", "fp32"
            ),
        ]);
        for l in &self.layers {
            lines.push(format!(
                "{:<name_w$}  {:>9}  {:>4}  {:<9}  {:<11}  {:>10}  {:>10}",
                l.name,
                format!("{}x{}", l.shape[0], l.shape[1]),
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
            self.avg_bits
        ));
        lines.push(format!(
            "size         {} .laq file ({} packed weights, scales and fp32 biases; the rest is normalization stats, out-of-domain reference and header)",
            kb(self.size_bytes),
            kb(self.payload_bytes)
        ));
        lines.push(format!(
            "fp32 size    {} (same MLP, fp32 weights and biases): {:.1}x larger than the .laq file",
            kb(self.fp32_size_bytes),
            self.compression_ratio
        ));
        lines.push(self.confidence.text());
        // free text from the file (a path, an adaptation's source, a label) stays on its line
        lines.iter().map(|l| one_line(l)).collect::<Vec<_>>().join("\n")
    }
}

impl Confidence {
    /// One line: `confidence   temperature ..; out-of-domain ...`.
    fn text(&self) -> String {
        let features = match self.feature_threshold {
            Some(f) => format!(" (or the features' RMS z-score over {f:.2}, in its units, when larger)"),
            None => String::new(),
        };
        let score = match (self.reference_rank, self.temper) {
            (Some(rank), Some(k)) if k > 0.0 => format!(
                "distance of the last hidden layer from training's ({rank} directions){features}, threshold {:.2}; beyond it the temperature grows as (d / {:.2})^{k}{}",
                self.ood_threshold,
                self.ood_threshold,
                match self.floor {
                    Some(m) => format!(", down to {m} x chance for the top label"),
                    None => String::new(),
                }
            ),
            (Some(rank), _) => format!(
                "distance of the last hidden layer from training's ({rank} directions){features}, threshold {:.2}",
                self.ood_threshold
            ),
            _ => format!("RMS z-score of the features, threshold {:.2}", self.ood_threshold),
        };
        format!("confidence   temperature {:.2}; out-of-domain score: {score}", self.temperature)
    }
}

/// `provenance` as text: one line per key (known keys first, then any others), each
/// value flattened; a value of an unexpected type is shown as it is, never refused.
fn provenance_lines(p: &Value) -> Vec<String> {
    let Value::Object(m) = p else { return vec![format!("provenance   {}", flat(p, 0))] };
    let known = ["serlaq_version", "created", "synthetic", "corpora", "split", "scores", "adaptations"];
    let mut keys: Vec<&String> = known.iter().filter_map(|k| m.get_key_value(*k).map(|(k, _)| k)).collect();
    keys.extend(m.keys().filter(|k| !known.contains(&k.as_str())));
    let mut lines = vec!["provenance".to_string()];
    for k in keys {
        lines.push(format!("  {k:<15}{}", flat(&m[k], 0)));
    }
    lines
}

/// A JSON value on one line for people: objects as `key value, ...` (nested ones in
/// parentheses, a `name` first), lists joined by `; `, floats with at most 4 decimals.
fn flat(v: &Value, depth: usize) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => {
                let s = format!("{f:.4}");
                let s = s.trim_end_matches('0');
                s.strip_suffix('.').unwrap_or(s).to_string()
            }
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "none".into(),
        Value::Array(a) => a.iter().map(|x| flat(x, depth)).collect::<Vec<_>>().join("; "),
        Value::Object(m) => {
            // a `name` says what the rest is about: it comes first
            let named = m.get_key_value("name").into_iter().chain(m.iter().filter(|(k, _)| *k != "name"));
            let body = named.map(|(k, x)| format!("{k} {}", flat(x, depth + 1))).collect::<Vec<_>>().join(", ");
            if depth > 0 {
                format!("({body})")
            } else {
                body
            }
        }
    }
}

/// Python's `str()` of a JSON value (the feature spec in the text).
fn py_str(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Number(n) if n.is_f64() => py_repr(n.as_f64().unwrap_or(f64::NAN)),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => super::json::to_line(other),
    }
}

fn spec_value(v: &Value) -> String {
    match v {
        Value::Array(items) if items.is_empty() => "-".to_string(),
        Value::Array(items) => items.iter().map(py_str).collect::<Vec<_>>().join(","),
        other => py_str(other),
    }
}

/// `f"{n / 1000:.1f} KB"`.
fn kb(n: usize) -> String {
    format!("{:.1} KB", n as f64 / 1000.0)
}

/// `1,234,567`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn provenance_renders_whatever_it_holds() {
        let p = json!({
            "created": "2026-12-04T06:00:00Z",
            "serlaq_version": "0.1.0",
            "corpora": [{"name": "emodb", "clips": 535, "labels": {"angry": 127, "sad": 62}}],
            "scores": {"test": {"accuracy": 0.8123456, "uar": 0.75}},
            "synthetic": false,
            "adaptations": [],
            "extra": null
        });
        assert_eq!(
            provenance_lines(&p),
            [
                "provenance",
                "  serlaq_version 0.1.0",
                "  created        2026-12-04T06:00:00Z",
                "  synthetic      no",
                "  corpora        name emodb, clips 535, labels (angry 127, sad 62)",
                "  scores         test (accuracy 0.8123, uar 0.75)",
                "  adaptations    none",
                "  extra          -",
            ]
        );
        // not an object: shown as it is
        assert_eq!(provenance_lines(&json!("hand-made")), ["provenance   hand-made"]);
        assert_eq!(provenance_lines(&json!({})), ["provenance"]);
    }
}
