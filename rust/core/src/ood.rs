//! The out-of-domain reference of a model's last hidden layer, and the confidence that fades
//! with distance from it.
//!
//! A clip's features can sit near the training data's on average and still drive the
//! network somewhere it never went in training; what the output layer sees is the last
//! hidden layer. The reference is that layer's distribution over the training split: its
//! mean, the `rank` directions of largest variance (orthonormal rows of `basis`) and one
//! inverse std per direction plus one for everything outside them (`scale`, `rank + 1`
//! values). A clip's distance is the RMS of its whitened deviation,
//! `sqrt((sum_i (s_i * b_i.(h - m))^2 + s_r^2 * |residual|^2) / width)`, about 1 on the
//! training split (a Mahalanobis distance with a low-rank covariance).
//!
//! With `temper` k > 0 the calibration temperature grows beyond the training range:
//! `T * max(1, d / threshold)^k`, so a clip far from anything the model learnt gets a
//! softer answer, never a different label (argmax is unchanged). With `floor` m > 0 the
//! softening stops where the top label's probability reaches m / classes: far from home the
//! measured models kept their top label right about twice as often as chance (inner folds:
//! 37 % and 32 % with 7 classes), so a near-uniform answer understated them
//! ([`HiddenReference::floored_temperature`]). Measured on the
//! cross-corpus inner folds (docs/adapt.md): the hidden-layer distance separates the other
//! corpus's clips from the source's own held-out clips far better than the RMS z-score of
//! the features (AUROC 0.98 / 0.998 against 0.97 / 0.67, EMODB→TESS / TESS→EMODB), and
//! 8 directions with k = 5 and the 99th-percentile threshold bring the compressed models'
//! zero-shot ECE from 0.47 / 0.18 to 0.08 / 0.11 while their own test clips move
//! 0.132 → 0.135 / 0.093 → 0.106.
//!
//! With `feature_threshold` (the 99th percentile of the training split's RMS z-score of
//! the standardized features) the distance that grows the temperature, and the score a
//! prediction reports, is the larger of the hidden distance and that RMS in the hidden
//! threshold's units ([`HiddenReference::score`]): a clip whose input is far from anything
//! the model learnt can still map to a familiar-looking hidden layer. Measured on the same
//! inner folds at k = 12, m = 2: EMODB→TESS zero-shot ECE 0.064 → 0.049, its own test clips
//! 0.143 → 0.148; TESS→EMODB 0.027 and 0.112 → 0.113 (docs/adapt.md).
//!
//! `serlaq adapt` re-estimates the mean and the scales along the stored directions on the
//! new room's clips (the directions stay), so an adapted model measures distance from the
//! room it was adapted to.

use crate::format::LaqFile;
use serde_json::{Map, Value};

/// A malformed `ood.reference.<field>` (the model turns it into `ModelError::Reference`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceError {
    /// The key under `ood.reference` (empty: the object itself).
    pub field: String,
    pub reason: String,
}

/// Accepted `ood.reference.temper` (the exponent k).
pub const TEMPER_RANGE: (f64, f64) = (0.0, 16.0);
/// Accepted `ood.reference.floor` (m); a model also needs m below its class count.
pub const FLOOR_RANGE: (f64, f64) = (0.0, 16.0);
/// Bisection steps of the floored temperature: each halves the interval of its logarithm,
/// so 48 resolve the widest one the growth allows (ln 1e6) to about 5e-14.
pub const FLOOR_STEPS: usize = 48;
/// Accepted inverse std along a direction: beyond it a file is corrupt or hostile.
pub const SCALE_RANGE: (f32, f32) = (1.0e-6, 1.0e6);
/// Largest factor the temperature may grow by (a clip infinitely far gets a near-uniform
/// answer, not a NaN).
pub const MAX_TEMPER_FACTOR: f64 = 1.0e6;
/// Accepted `ood.reference.feature_threshold` (an RMS z-score, like `ood.threshold` of the
/// files without a reference).
pub const FEATURE_THRESHOLD_RANGE: (f64, f64) = (0.1, 1.0e6);
/// The inverse std of a direction is at most this times the mean one when fitted: a unit
/// that never fires on the training split must not turn its rounding into a huge distance.
pub const VARIANCE_FLOOR: f64 = 1.0e-3;

/// The stored reference (see the module docs); validated at load.
#[derive(Debug, Clone, PartialEq)]
pub struct HiddenReference {
    width: usize,
    rank: usize,
    mean: Vec<f32>,
    basis: Vec<f32>,
    scale: Vec<f32>,
    temper: f64,
    floor: f64,
    feature_threshold: Option<f64>,
    names: [String; 3],
}

/// The RMS of one standardized feature row, in float64: about 1 on the training split.
pub fn feature_rms(z: &[f32]) -> f64 {
    (z.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / z.len().max(1) as f64).sqrt()
}

fn bad(field: &str, reason: String) -> ReferenceError {
    ReferenceError { field: field.to_string(), reason }
}

impl HiddenReference {
    /// `meta.ood.reference` of a model whose last hidden layer has `width` units and whose
    /// output has `classes`, or None when the file stores none (files before 2026-12-05,
    /// `paper` mode).
    pub fn parse(
        meta: &Map<String, Value>,
        file: &LaqFile,
        width: Option<usize>,
        classes: usize,
    ) -> Result<Option<Self>, ReferenceError> {
        let Some(ood) = meta.get("ood").and_then(Value::as_object) else { return Ok(None) };
        let Some(r) = ood.get("reference") else { return Ok(None) };
        let r = r.as_object().ok_or_else(|| bad("", "must be an object".into()))?;
        let Some(width) = width else {
            return Err(bad("", "needs a hidden layer; this model has none".into()));
        };
        match r.get("space").and_then(Value::as_str) {
            Some("hidden") => {}
            _ => {
                // named by hand: Value's Display would link a JSON writer into the wasm module
                let got = match r.get("space") {
                    Some(Value::String(s)) => format!("\"{s}\""),
                    Some(Value::Null) => "null".into(),
                    Some(_) => "a value that is not a string".into(),
                    None => "nothing".into(),
                };
                return Err(bad("space", format!("must be \"hidden\", got {got}")));
            }
        }
        let temper = r.get("temper").and_then(Value::as_f64).ok_or_else(|| bad("temper", "must be a number".into()))?;
        if !(temper.is_finite() && (TEMPER_RANGE.0..=TEMPER_RANGE.1).contains(&temper)) {
            return Err(bad(
                "temper",
                format!("is {temper}; it must be within {}..={}", TEMPER_RANGE.0, TEMPER_RANGE.1),
            ));
        }
        // absent in the files written before it: no floor, read as they were written
        let floor = match r.get("floor") {
            None => 0.0,
            Some(v) => v.as_f64().ok_or_else(|| bad("floor", "must be a number".into()))?,
        };
        if !(floor.is_finite() && (FLOOR_RANGE.0..=FLOOR_RANGE.1).contains(&floor) && floor < classes as f64) {
            return Err(bad(
                "floor",
                format!(
                    "is {floor}; it must be within {}..={} and below the {classes} classes",
                    FLOOR_RANGE.0, FLOOR_RANGE.1
                ),
            ));
        }
        // absent in the files written before it: the hidden distance alone
        let feature_threshold = match r.get("feature_threshold") {
            None => None,
            Some(v) => {
                let f = v.as_f64().ok_or_else(|| bad("feature_threshold", "must be a number".into()))?;
                if !(f.is_finite() && (FEATURE_THRESHOLD_RANGE.0..=FEATURE_THRESHOLD_RANGE.1).contains(&f)) {
                    return Err(bad(
                        "feature_threshold",
                        format!(
                            "is {f}; it must be within {}..={}",
                            FEATURE_THRESHOLD_RANGE.0, FEATURE_THRESHOLD_RANGE.1
                        ),
                    ));
                }
                Some(f)
            }
        };
        let tensor = |key: &str| -> Result<(String, Vec<f32>), ReferenceError> {
            let name = r.get(key).and_then(Value::as_str).ok_or_else(|| bad(key, "must name a tensor".into()))?;
            let idx = file
                .tensor_index(name)
                .ok_or_else(|| bad(key, format!("names tensor {name:?}, which the file does not hold")))?;
            let values = file.tensor(idx);
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(bad(key, format!("tensor {name:?} value {i} is not finite")));
            }
            Ok((name.to_string(), values))
        };
        let (mean_name, mean) = tensor("mean")?;
        let (basis_name, basis) = tensor("basis")?;
        let (scale_name, scale) = tensor("scale")?;
        if mean.len() != width {
            return Err(bad("mean", format!("has {} values, the last hidden layer {width}", mean.len())));
        }
        if basis.is_empty() || basis.len() % width != 0 || basis.len() / width > width {
            return Err(bad("basis", format!("has {} values, not 1..={width} rows of {width}", basis.len())));
        }
        let rank = basis.len() / width;
        if let Some(i) = basis.iter().position(|v| v.abs() > 1.0 + 1e-3) {
            return Err(bad("basis", format!("value {i} is {}, beyond a unit vector's", basis[i])));
        }
        if scale.len() != rank + 1 {
            return Err(bad(
                "scale",
                format!("has {} values, expected {} (one per basis row, one for the rest)", scale.len(), rank + 1),
            ));
        }
        if let Some(i) = scale.iter().position(|&s| !(SCALE_RANGE.0..=SCALE_RANGE.1).contains(&s)) {
            return Err(bad(
                "scale",
                format!("value {i} is {:e}, outside {:e}..={:e}", scale[i], SCALE_RANGE.0, SCALE_RANGE.1),
            ));
        }
        if let Some(i) = mean.iter().position(|m| m.abs() > 1.0e12) {
            return Err(bad(
                "mean",
                format!("value {i} is {:e}, beyond any activation (a corrupted or hostile file)", mean[i]),
            ));
        }
        Ok(Some(HiddenReference {
            width,
            rank,
            mean,
            basis,
            scale,
            temper,
            floor,
            feature_threshold,
            names: [mean_name, basis_name, scale_name],
        }))
    }

    pub fn rank(&self) -> usize {
        self.rank
    }
    pub fn temper(&self) -> f64 {
        self.temper
    }
    /// m: the softening stops where the top label keeps m / classes (0: no floor).
    pub fn floor(&self) -> f64 {
        self.floor
    }
    /// The features' own threshold (RMS z-score), when the file stores one.
    pub fn feature_threshold(&self) -> Option<f64> {
        self.feature_threshold
    }
    /// Tensor names of the mean, basis and scale, as stored.
    pub fn tensor_names(&self) -> &[String; 3] {
        &self.names
    }

    /// The whitened coordinates of one hidden row: `rank` projections and the residual's
    /// norm, each before its scale.
    fn coordinates(&self, h: &[f32], proj: &mut Vec<f64>) -> f64 {
        let dev: Vec<f64> = h.iter().zip(&self.mean).map(|(&v, &m)| f64::from(v) - f64::from(m)).collect();
        let total: f64 = dev.iter().map(|v| v * v).sum();
        proj.clear();
        let mut captured = 0.0;
        for row in self.basis.chunks_exact(self.width) {
            let p: f64 = row.iter().zip(&dev).map(|(&b, &v)| f64::from(b) * v).sum();
            captured += p * p;
            proj.push(p);
        }
        (total - captured).max(0.0)
    }

    /// Distance of one hidden row (`width` values) from the reference (module docs).
    pub fn distance(&self, h: &[f32]) -> f64 {
        let mut proj = Vec::with_capacity(self.rank);
        let residual = self.coordinates(h, &mut proj);
        let mut sum: f64 = proj.iter().zip(&self.scale).map(|(p, &s)| (p * f64::from(s)).powi(2)).sum();
        sum += residual * f64::from(self.scale[self.rank]).powi(2);
        (sum / self.width as f64).sqrt()
    }

    /// The out-of-domain score of one row: the distance of its hidden layer `h`, or, with a
    /// feature threshold, the RMS `rms` of its standardized features in the hidden
    /// `threshold`'s units when that is larger (far in either space is far).
    pub fn score(&self, h: &[f32], rms: f64, threshold: f64) -> f64 {
        let d = self.distance(h);
        match self.feature_threshold {
            Some(f) => d.max(rms * threshold / f),
            None => d,
        }
    }

    /// How much the temperature grows at distance `d`: `max(1, d / threshold)^temper`,
    /// bounded by [`MAX_TEMPER_FACTOR`].
    pub fn temper_factor(&self, d: f64, threshold: f64) -> f64 {
        // a NaN distance (never from finite features) tempers nothing
        if self.temper == 0.0 || d.partial_cmp(&threshold) != Some(std::cmp::Ordering::Greater) {
            return 1.0;
        }
        (d / threshold).powf(self.temper).min(MAX_TEMPER_FACTOR)
    }

    /// The temperature one row of `logits` is divided by at distance `d`: `temperature`
    /// grown by [`Self::temper_factor`], then, with a floor, lowered to where the top
    /// label's probability is `floor / classes` if the growth took it below that. A row
    /// already below the floor at `temperature` keeps `temperature`: the floor never
    /// sharpens an answer beyond its calibration. Bisection on the logarithm,
    /// [`FLOOR_STEPS`] steps, keeping the sharper end: bounded time, the same bits on every
    /// machine.
    pub fn floored_temperature(&self, logits: &[f32], temperature: f64, d: f64, threshold: f64) -> f64 {
        let grown = temperature * self.temper_factor(d, threshold);
        if self.floor == 0.0 || grown == temperature || logits.is_empty() {
            return grown;
        }
        let c = self.floor / logits.len() as f64;
        if top_probability(logits, grown) >= c {
            return grown;
        }
        if top_probability(logits, temperature) <= c {
            return temperature;
        }
        let (mut lo, mut hi) = (temperature.ln(), grown.ln());
        for _ in 0..FLOOR_STEPS {
            let mid = 0.5 * (lo + hi);
            if top_probability(logits, mid.exp()) >= c {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo.exp()
    }

    /// The mean and scales re-estimated on `n` hidden rows (`rows`, row-major), along the
    /// stored directions; the directions and `temper` stay. Each variance is floored at
    /// [`VARIANCE_FLOOR`] of their mean, like training's fit.
    pub fn refit(&self, rows: &[f32], n: usize) -> HiddenReference {
        let w = self.width;
        let nf = n.max(1) as f64;
        let mut mean = vec![0f64; w];
        for r in rows.chunks_exact(w) {
            mean.iter_mut().zip(r).for_each(|(m, &v)| *m += f64::from(v));
        }
        mean.iter_mut().for_each(|m| *m /= nf);
        let mut next = self.clone();
        next.mean = mean.iter().map(|&m| m as f32).collect();
        let mut var = vec![0f64; self.rank + 1];
        let mut proj = Vec::with_capacity(self.rank);
        for r in rows.chunks_exact(w) {
            let residual = next.coordinates(r, &mut proj);
            var.iter_mut().zip(&proj).for_each(|(v, p)| *v += p * p);
            var[self.rank] += residual;
        }
        var.iter_mut().for_each(|v| *v /= nf);
        // the residual's variance per dimension outside the basis
        var[self.rank] /= (w - self.rank).max(1) as f64;
        let floor = VARIANCE_FLOOR * var.iter().sum::<f64>() / var.len() as f64;
        next.scale = var
            .iter()
            .map(|&v| ((1.0 / v.max(floor).max(1e-12).sqrt()) as f32).clamp(SCALE_RANGE.0, SCALE_RANGE.1))
            .collect();
        next
    }

    /// The stored mean and scale (what `refit` changes).
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }
    pub fn scale(&self) -> &[f32] {
        &self.scale
    }
}

/// The largest probability of `softmax(logits / t)`, in float64.
fn top_probability(logits: &[f32], t: f64) -> f64 {
    let top = logits.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    1.0 / logits.iter().map(|&v| ((f64::from(v) - top) / t).exp()).sum::<f64>()
}
