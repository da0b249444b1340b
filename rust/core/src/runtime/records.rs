//! The result records every face hands out: a clip's [`Prediction`], a file's
//! [`Failure`], a window's [`SegmentRecord`] and a recording's [`SegmentSummary`].
//! Their JSON is their serde form (`json.rs` spells it); their field order is the order
//! of the keys.

use crate::segments::Segment;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

/// The label of a window the voice-activity gate found no speech in.
pub const SILENCE: &str = "silence";

/// `(label, value)` pairs that serialise as one JSON object, in their order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scores(pub Vec<(String, f64)>);

impl Serialize for Scores {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl Scores {
    /// The value of `label`, if it is there.
    pub fn get(&self, label: &str) -> Option<f64> {
        self.0.iter().find(|(k, _)| k == label).map(|(_, v)| *v)
    }
}

/// One entry of a top-k list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ranked {
    pub label: String,
    pub probability: f64,
}

/// `labels` paired with `proba` (label order), the index of the first largest
/// probability, and the `top_k` most probable (by -probability, then label).
fn score(labels: &[String], proba: &[f64], top_k: Option<usize>) -> (Scores, usize, Vec<Ranked>) {
    let mut best = 0;
    for (i, &p) in proba.iter().enumerate() {
        if p > proba[best] {
            best = i;
        }
    }
    let pairs: Vec<(String, f64)> = labels.iter().cloned().zip(proba.iter().copied()).collect();
    let top = match top_k {
        Some(k) if k > 0 => {
            let mut ranked = pairs.clone();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            ranked.truncate(k);
            ranked.into_iter().map(|(label, probability)| Ranked { label, probability }).collect()
        }
        _ => Vec::new(),
    };
    (Scores(pairs), best, top)
}

/// The model's answer for one clip.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub label: String,
    pub confidence: f64,
    /// The most probable labels, most probable first (empty unless asked for).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub top_k: Vec<Ranked>,
    /// One probability per label, in label order.
    pub probabilities: Scores,
    /// Out-of-domain score of the clip (`Model::ood_score`: the RMS z-score of its
    /// standardized features; about 1 on the training data), when computed from a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ood: Option<f64>,
}

impl Prediction {
    /// Class probabilities (label order) -> the first label with the largest probability.
    pub fn new(labels: &[String], proba: &[f64], path: Option<String>, top_k: Option<usize>) -> Prediction {
        let (probabilities, best, top_k) = score(labels, proba, top_k);
        Prediction { path, label: labels[best].clone(), confidence: proba[best], top_k, probabilities, ood: None }
    }

    /// The same prediction carrying the clip's out-of-domain score.
    pub fn with_ood(self, ood: f64) -> Prediction {
        Prediction { ood: Some(ood), ..self }
    }
}

/// The share of a batch's clips above the model's out-of-domain threshold that makes
/// `predict` warn: most of them.
pub const OOD_WARN_SHARE: f64 = 0.5;

/// One line when more than half of `scores` (at least two clips) exceed `threshold`: the
/// model is being used far from its training data, and `serlaq adapt` is the remedy.
pub fn ood_warning(scores: &[f64], threshold: f64) -> Option<String> {
    far_warning(scores, threshold, "files", "")
}

/// The same for the speech windows of `predict --segments` (all files together), naming
/// running normalisation beside `serlaq adapt`.
pub fn segment_ood_warning(scores: &[f64], threshold: f64) -> Option<String> {
    far_warning(scores, threshold, "speech windows", ", or let a stream adapt as it plays: --running-norm")
}

fn far_warning(scores: &[f64], threshold: f64, unit: &str, also: &str) -> Option<String> {
    let far = scores.iter().filter(|&&s| s > threshold).count();
    if scores.len() < 2 || (far as f64) <= OOD_WARN_SHARE * scores.len() as f64 {
        return None;
    }
    let mut sorted = scores.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(format!(
        "warning: {far} of {} {unit} lie far outside the model's training distribution (median out-of-domain \
         score {:.2}, threshold {threshold:.2}): its answers on them are unreliable; adapt the model to this \
         audio first: serlaq adapt MODEL AUDIO... --out ADAPTED.laq{also}",
        scores.len(),
        sorted[sorted.len() / 2]
    ))
}

/// A file that gave no result, and the one line that says why (it names the file).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    pub path: String,
    pub error: String,
}

/// One window of a timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub index: u64,
    /// Seconds of the source.
    pub start: f64,
    pub end: f64,
    /// The label, or [`SILENCE`].
    pub label: String,
    /// `None` for silence.
    pub confidence: Option<f64>,
    pub speech: bool,
    /// Share of the window's frames at or above the voice-activity gate.
    pub voiced: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub top_k: Vec<Ranked>,
    /// Empty for silence.
    pub probabilities: Scores,
    /// The window's out-of-domain score (`Segment::ood`); absent for silence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ood: Option<f64>,
    /// Source-sample positions the seconds come from.
    #[serde(skip)]
    pub start_sample: u64,
    #[serde(skip)]
    pub end_sample: u64,
}

impl SegmentRecord {
    /// The first label on ties; top-k by (-probability, label); silence without scores.
    pub fn new(labels: &[String], s: &Segment, path: Option<String>, top_k: Option<usize>) -> SegmentRecord {
        let base = SegmentRecord {
            path,
            index: s.index,
            start: s.start_seconds,
            end: s.end_seconds,
            label: SILENCE.into(),
            confidence: None,
            speech: false,
            voiced: s.voiced,
            top_k: Vec::new(),
            probabilities: Scores::default(),
            ood: s.ood,
            start_sample: s.start,
            end_sample: s.end,
        };
        let Some(proba) = &s.probabilities else { return base };
        let (probabilities, best, top_k) = score(labels, proba, top_k);
        SegmentRecord {
            label: labels[best].clone(),
            confidence: Some(proba[best]),
            speech: true,
            top_k,
            probabilities,
            ..base
        }
    }
}

/// A recording's totals. Windows overlap, so time is shared out first: every instant
/// belongs to the window whose centre is nearest (each window owns the span between the
/// midpoints to its neighbours' centres, clipped to itself).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentSummary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub summary: Totals,
}

/// The figures of a [`SegmentSummary`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    /// Seconds from 0 to the end of the last window.
    pub duration: f64,
    pub segments: usize,
    pub speech_segments: usize,
    pub speech_seconds: f64,
    /// Share of speech time per label, largest first, then by label.
    pub emotions: Scores,
    /// Seconds per label, in the order of `emotions`.
    pub emotion_seconds: Scores,
}

/// `max(a, b)` / `min(a, b)` as Python's builtins pick (the first unless the second is
/// strictly beyond it): the summary's floats stay those of the Python code it replaced.
fn pick_max(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

fn pick_min(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

impl SegmentSummary {
    /// The totals of `segments` (any order; sorted by start, then index).
    pub fn of(segments: &[SegmentRecord], path: Option<String>) -> SegmentSummary {
        let mut segs: Vec<&SegmentRecord> = segments.iter().collect();
        segs.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.index.cmp(&b.index)));
        let centres: Vec<f64> = segs.iter().map(|s| (s.start + s.end) / 2.0).collect();
        let n = segs.len();
        let mut seconds: Vec<(String, f64)> = Vec::new();
        let mut speech_seconds = 0.0;
        for (i, s) in segs.iter().enumerate() {
            let lo = if i == 0 { s.start } else { pick_max(s.start, (centres[i - 1] + centres[i]) / 2.0) };
            let hi = if i == n - 1 { s.end } else { pick_min(s.end, (centres[i] + centres[i + 1]) / 2.0) };
            let owned = pick_max(hi - lo, 0.0);
            if s.speech {
                speech_seconds += owned;
                match seconds.iter_mut().find(|(k, _)| *k == s.label) {
                    Some((_, v)) => *v += owned,
                    None => seconds.push((s.label.clone(), 0.0 + owned)),
                }
            }
        }
        let mut emotions: Vec<(String, f64)> = if speech_seconds > 0.0 {
            seconds.iter().map(|(k, v)| (k.clone(), v / speech_seconds)).collect()
        } else {
            Vec::new()
        };
        emotions.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let emotion_seconds = emotions
            .iter()
            .map(|(k, _)| (k.clone(), seconds.iter().find(|(l, _)| l == k).map_or(0.0, |(_, v)| *v)))
            .collect();
        let duration = segs.iter().map(|s| s.end).fold(None, |m: Option<f64>, e| Some(m.map_or(e, |m| pick_max(m, e))));
        SegmentSummary {
            path,
            summary: Totals {
                duration: duration.unwrap_or(0.0),
                segments: n,
                speech_segments: segs.iter().filter(|s| s.speech).count(),
                speech_seconds,
                emotions: Scores(emotions),
                emotion_seconds: Scores(emotion_seconds),
            },
        }
    }

    /// `path<TAB>summary<TAB>N segments (M speech), speech S s of D s<TAB>label P%, ...`.
    pub fn line(&self) -> String {
        let t = &self.summary;
        let shares = if t.emotions.0.is_empty() {
            "no speech".to_string()
        } else {
            t.emotions.0.iter().map(|(k, v)| format!("{k} {:.0}%", 100.0 * v)).collect::<Vec<_>>().join(", ")
        };
        let path = show_path(self.path.as_deref());
        format!(
            "{path}\tsummary\t{} segments ({} speech), speech {:.1} s of {:.1} s\t{shares}",
            t.segments, t.speech_segments, t.speech_seconds, t.duration
        )
    }
}

/// A path as the table shows it: `-` for none. A tab or a line break in a file's name would
/// split the table's row, so control characters are shown escaped (`\t`, `\n`, `\u{1b}`);
/// csv and JSON keep names exactly.
pub(crate) fn show_path(p: Option<&str>) -> std::borrow::Cow<'_, str> {
    one_line(p.filter(|p| !p.is_empty()).unwrap_or("-"))
}

/// `text` with its control characters escaped (`\t`, `\n`, `\u{1b}`), so text read from a
/// file or a file name keeps to the one line a person is shown.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect::<String>()
        .into()
}

/// One item of a clip batch's output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Outcome {
    Ok(Prediction),
    Failed(Failure),
}

/// One item of a segment run's output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SegmentItem {
    Segment(SegmentRecord),
    Summary(SegmentSummary),
    Failed(Failure),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::json::to_line;

    fn labels() -> Vec<String> {
        ["angry", "happy", "sad"].map(String::from).to_vec()
    }

    fn seg(index: u64, start: f64, end: f64, label: Option<&str>) -> SegmentRecord {
        SegmentRecord {
            path: None,
            index,
            start,
            end,
            label: label.unwrap_or(SILENCE).into(),
            confidence: label.map(|_| 0.5),
            speech: label.is_some(),
            voiced: 1.0,
            top_k: vec![],
            probabilities: Scores::default(),
            ood: None,
            start_sample: 0,
            end_sample: 0,
        }
    }

    #[test]
    fn ties_and_ranking() {
        // equal top probabilities: the first in label order; top-k by (-p, label)
        let p = Prediction::new(&labels(), &[0.25, 0.375, 0.375], Some("a.wav".into()), Some(2));
        assert_eq!(p.label, "happy");
        assert_eq!(p.top_k.iter().map(|r| r.label.as_str()).collect::<Vec<_>>(), ["happy", "sad"]);
        assert_eq!(
            to_line(&p),
            r#"{"path": "a.wav", "label": "happy", "confidence": 0.375, "top_k": [{"label": "happy", "probability": 0.375}, {"label": "sad", "probability": 0.375}], "probabilities": {"angry": 0.25, "happy": 0.375, "sad": 0.375}}"#
        );
        let p = Prediction::new(&labels(), &[0.5, 0.25, 0.25], None, None);
        assert_eq!(
            to_line(&p),
            r#"{"label": "angry", "confidence": 0.5, "probabilities": {"angry": 0.5, "happy": 0.25, "sad": 0.25}}"#
        );
    }

    #[test]
    fn nearest_centre_shares() {
        // windows 0-2, 1-3, 2-4 (silence), end-aligned 2.5-4.5 listed out of order
        let segs = [
            seg(0, 0.0, 2.0, Some("sad")),
            seg(1, 1.0, 3.0, Some("angry")),
            seg(3, 2.5, 4.5, Some("sad")),
            seg(2, 2.0, 4.0, None),
        ];
        let s = SegmentSummary::of(&segs, Some("a.wav".into()));
        let t = &s.summary;
        // centres 1, 2, 3, 3.5: owned 0-1.5, 1.5-2.5, 2.5-3.25 (silence), 3.25-4.5
        assert_eq!((t.segments, t.speech_segments, t.duration), (4, 3, 4.5));
        assert_eq!(t.speech_seconds, 1.5 + 1.0 + 1.25);
        assert_eq!(t.emotion_seconds.0, vec![("sad".into(), 2.75), ("angry".into(), 1.0)]);
        assert_eq!(t.emotions.0, vec![("sad".into(), 2.75 / 3.75), ("angry".into(), 1.0 / 3.75)]);
        assert_eq!(s.line(), "a.wav\tsummary\t4 segments (3 speech), speech 3.8 s of 4.5 s\tsad 73%, angry 27%");
        let s = SegmentSummary::of(&[seg(0, 0.0, 1.0, Some("b")), seg(1, 1.0, 2.0, Some("a"))], None);
        assert_eq!(s.summary.emotions.0, vec![("a".into(), 0.5), ("b".into(), 0.5)]);
        let s = SegmentSummary::of(&[seg(0, 0.0, 1.0, None)], Some("x".into()));
        assert_eq!(s.line(), "x\tsummary\t1 segments (0 speech), speech 0.0 s of 1.0 s\tno speech");
        assert_eq!(
            to_line(&s),
            r#"{"path": "x", "summary": {"duration": 1.0, "segments": 1, "speech_segments": 0, "speech_seconds": 0.0, "emotions": {}, "emotion_seconds": {}}}"#
        );
    }
}
