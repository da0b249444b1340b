//! `serlaq-rt predict --segments`: the output of `serlaq predict --segments`
//! (`python/serlaq/runtime/segments.py`: `run_segments_cli`, `SegmentWriter`, `summarize`,
//! `summary_line`; `results.py`: `Segment.to_dict`, `SegmentSummary.to_dict`), byte for
//! byte, with each window written as soon as the segmenter completes it
//! (`segment_file_each`).
//!
//! Rows: one per window (start, end, label or "silence", confidence, top-k); after a
//! file's windows, its summary (speech time and the share of speech time per emotion,
//! time shared out by the nearest window centre); a file that broke part-way keeps its
//! windows and summary, then gets an error object/row and one error line on stderr.

use crate::output::{csv_row, with_scores, Format, Outcome};
use crate::pyjson::J;
use serlaq_core::model::Model;
use serlaq_core::segments::{segment_file_each, Segment, SegmentError, SegmentOptions, Segmenter};
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

/// The label of a window the voice-activity gate found no speech in (`results.SILENCE`).
pub const SILENCE: &str = "silence";

/// One window as the Python `Segment` holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub path: String,
    pub index: u64,
    pub start: f64,
    pub end: f64,
    pub label: String,
    /// `None` for silence.
    pub confidence: Option<f64>,
    pub speech: bool,
    pub voiced: f64,
    /// `(label, probability)` in label order; empty for silence.
    pub probabilities: Vec<(String, f64)>,
    /// The most probable labels, most probable first (empty without `--top-k` and for silence).
    pub top_k: Vec<(String, f64)>,
}

impl Row {
    /// `segments._segment`: the first label on ties; top-k by (-probability, label).
    pub fn new(labels: &[String], s: &Segment, path: &str, top_k: Option<usize>) -> Row {
        let base = Row {
            path: path.to_string(),
            index: s.index,
            start: s.start_seconds,
            end: s.end_seconds,
            label: SILENCE.into(),
            confidence: None,
            speech: false,
            voiced: s.voiced,
            probabilities: Vec::new(),
            top_k: Vec::new(),
        };
        let (Some(proba), Some((best, conf))) = (&s.probabilities, s.best()) else { return base };
        let probabilities: Vec<(String, f64)> = labels.iter().cloned().zip(proba.iter().copied()).collect();
        let top = match top_k {
            Some(k) if k > 0 => {
                let mut ranked = probabilities.clone();
                ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                ranked.truncate(k);
                ranked
            }
            _ => Vec::new(),
        };
        Row { label: labels[best].clone(), confidence: Some(conf), speech: true, probabilities, top_k: top, ..base }
    }

    /// `Segment.to_dict()`.
    pub fn to_json(&self) -> J {
        let items = vec![
            ("path".to_string(), J::Str(self.path.clone())),
            ("index".into(), J::UInt(self.index)),
            ("start".into(), J::Float(self.start)),
            ("end".into(), J::Float(self.end)),
            ("label".into(), J::Str(self.label.clone())),
            ("confidence".into(), self.confidence.map_or(J::Null, J::Float)),
            ("speech".into(), J::Bool(self.speech)),
            ("voiced".into(), J::Float(self.voiced)),
        ];
        with_scores(items, &self.top_k, &self.probabilities)
    }
}

/// Per-file totals (`SegmentSummary`).
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub path: String,
    pub duration: f64,
    pub segments: usize,
    pub speech_segments: usize,
    pub speech_seconds: f64,
    /// `(label, share of speech time)`, largest share first, then by label.
    pub emotions: Vec<(String, f64)>,
    /// `(label, seconds)` in the order of `emotions`.
    pub emotion_seconds: Vec<(String, f64)>,
}

/// What `summarize` needs of a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub index: u64,
    pub start: f64,
    pub end: f64,
    /// The label for speech, `None` for silence.
    pub label: Option<String>,
}

/// `segments.summarize`: windows sorted by (start, index); each owns the time between
/// the midpoints to its neighbours' centres, clipped to itself; the same float
/// operations in the same order as the Python code.
pub fn summarize(spans: &[Span], path: &str) -> Summary {
    let mut segs: Vec<&Span> = spans.iter().collect();
    segs.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.index.cmp(&b.index)));
    let centres: Vec<f64> = segs.iter().map(|s| (s.start + s.end) / 2.0).collect();
    let n = segs.len();
    let mut seconds: Vec<(String, f64)> = Vec::new();
    let mut speech_seconds = 0.0;
    for (i, s) in segs.iter().enumerate() {
        let lo = if i == 0 { s.start } else { py_max(s.start, (centres[i - 1] + centres[i]) / 2.0) };
        let hi = if i == n - 1 { s.end } else { py_min(s.end, (centres[i] + centres[i + 1]) / 2.0) };
        let owned = py_max(hi - lo, 0.0);
        if let Some(label) = &s.label {
            speech_seconds += owned;
            match seconds.iter_mut().find(|(k, _)| k == label) {
                Some((_, v)) => *v += owned,
                None => seconds.push((label.clone(), 0.0 + owned)),
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
    let duration = segs.iter().map(|s| s.end).fold(None, |m: Option<f64>, e| Some(m.map_or(e, |m| py_max(m, e))));
    Summary {
        path: path.to_string(),
        duration: duration.unwrap_or(0.0),
        segments: n,
        speech_segments: segs.iter().filter(|s| s.label.is_some()).count(),
        speech_seconds,
        emotions,
        emotion_seconds,
    }
}

/// Python's `max(a, b)`: `a` unless `b > a`.
fn py_max(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

/// Python's `min(a, b)`: `a` unless `b < a`.
fn py_min(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

impl Summary {
    /// `SegmentSummary.to_dict()`.
    pub fn to_json(&self) -> J {
        let shares = |v: &[(String, f64)]| J::Obj(v.iter().map(|(k, x)| (k.clone(), J::Float(*x))).collect());
        J::obj([
            ("path", J::Str(self.path.clone())),
            (
                "summary",
                J::obj([
                    ("duration", J::Float(self.duration)),
                    ("segments", J::UInt(self.segments as u64)),
                    ("speech_segments", J::UInt(self.speech_segments as u64)),
                    ("speech_seconds", J::Float(self.speech_seconds)),
                    ("emotions", shares(&self.emotions)),
                    ("emotion_seconds", shares(&self.emotion_seconds)),
                ]),
            ),
        ])
    }

    /// `summary_line`: `path<TAB>summary<TAB>N segments (M speech), speech S s of D s<TAB>label P%, ...`.
    pub fn line(&self) -> String {
        let shares = if self.emotions.is_empty() {
            "no speech".to_string()
        } else {
            self.emotions.iter().map(|(k, v)| format!("{k} {:.0}%", 100.0 * v)).collect::<Vec<_>>().join(", ")
        };
        let path = if self.path.is_empty() { "-" } else { &self.path };
        format!(
            "{path}\tsummary\t{} segments ({} speech), speech {:.1} s of {:.1} s\t{shares}",
            self.segments, self.speech_segments, self.speech_seconds, self.duration
        )
    }
}

/// One item of the output.
pub enum Item<'a> {
    Segment(&'a Row),
    Summary(&'a Summary),
    Failed { path: &'a str, error: &'a str },
}

/// `SegmentWriter`: every item written (and flushed) as it comes; in csv the summary
/// lines go to `summary_out`.
pub struct SegmentWriter<W: Write, E: Write> {
    out: W,
    summary_out: E,
    fmt: Format,
    labels: Vec<String>,
    count: usize,
}

impl<W: Write, E: Write> SegmentWriter<W, E> {
    pub fn new(mut out: W, summary_out: E, fmt: Format, labels: &[String]) -> io::Result<Self> {
        match fmt {
            Format::Csv => {
                let mut header: Vec<String> =
                    ["path", "start", "end", "label", "confidence", "speech", "voiced", "error"]
                        .map(String::from)
                        .to_vec();
                header.extend(labels.iter().map(|l| format!("p_{l}")));
                out.write_all(csv_row(&header).as_bytes())?;
            }
            Format::Json => out.write_all(b"[")?,
            _ => {}
        }
        Ok(SegmentWriter { out, summary_out, fmt, labels: labels.to_vec(), count: 0 })
    }

    fn json(item: &Item) -> J {
        match item {
            Item::Segment(r) => r.to_json(),
            Item::Summary(s) => s.to_json(),
            Item::Failed { path, error } => {
                Outcome::Failed { path: path.to_string(), error: error.to_string() }.to_json()
            }
        }
    }

    pub fn write(&mut self, item: &Item) -> io::Result<()> {
        let text = match self.fmt {
            Format::Jsonl => Self::json(item).dumps() + "\n",
            Format::Json => format!("{}\n  {}", if self.count > 0 { "," } else { "" }, Self::json(item).dumps()),
            Format::Table => match item {
                Item::Segment(r) => {
                    let conf = r.confidence.map_or("-".to_string(), |c| format!("{c:.4}"));
                    let path = if r.path.is_empty() { "-" } else { &r.path };
                    let mut cols = vec![
                        path.to_string(),
                        format!("{:.3}", r.start),
                        format!("{:.3}", r.end),
                        r.label.clone(),
                        conf,
                    ];
                    cols.extend(r.top_k.iter().skip(1).map(|(l, p)| format!("{l}:{p:.4}")));
                    cols.join("\t") + "\n"
                }
                Item::Summary(s) => s.line() + "\n",
                Item::Failed { .. } => String::new(),
            },
            Format::Csv => match item {
                Item::Summary(s) => {
                    self.summary_out.write_all((s.line() + "\n").as_bytes())?;
                    return self.summary_out.flush();
                }
                Item::Failed { path, error } => {
                    let mut row: Vec<String> = vec![path.to_string()];
                    row.extend(std::iter::repeat_n(String::new(), 6));
                    row.push(error.to_string());
                    row.extend(std::iter::repeat_n(String::new(), self.labels.len()));
                    csv_row(&row)
                }
                Item::Segment(r) => {
                    let mut row = vec![
                        r.path.clone(),
                        format!("{:.6}", r.start),
                        format!("{:.6}", r.end),
                        r.label.clone(),
                        r.confidence.map_or(String::new(), |c| format!("{c:.6}")),
                        if r.speech { "1" } else { "0" }.to_string(),
                        format!("{:.4}", r.voiced),
                        String::new(),
                    ];
                    for l in &self.labels {
                        row.push(
                            r.probabilities
                                .iter()
                                .find(|(k, _)| k == l)
                                .map_or(String::new(), |(_, v)| format!("{v:.6}")),
                        );
                    }
                    csv_row(&row)
                }
            },
        };
        if matches!(self.fmt, Format::Json | Format::Jsonl) {
            self.count += 1;
        }
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    pub fn close(&mut self) -> io::Result<()> {
        if self.fmt == Format::Json {
            self.out.write_all(if self.count > 0 { b"\n]\n" } else { b"]\n" })?;
        }
        self.out.flush()
    }
}

/// Checks the options as `run_segments_cli` does before anything is written (a
/// segmenter at the model's rate): the one-line message of a bad option.
pub fn check_options(model: &Model, opts: &SegmentOptions) -> Result<(), String> {
    Segmenter::new(model, model.spec().sample_rate, opts, "stream").map(|_| ()).map_err(|e| e.to_string())
}

/// Why the run stopped early: the writer failed, or an option was refused mid-run.
pub enum Stop {
    Io(io::Error),
    Option(String),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Io(e)
    }
}

/// The body of `predict --segments` after the options are checked: the input errors,
/// then each file's windows (as they come), its summary, its error. Returns the number of
/// failed files; `echo_error` prints an error line.
#[allow(clippy::too_many_arguments)]
pub fn run<W: Write, E: Write>(
    model: &Model,
    files: &[PathBuf],
    input_errors: &[(String, String)],
    writer: &mut SegmentWriter<W, E>,
    opts: &SegmentOptions,
    top_k: Option<usize>,
    mut echo_error: impl FnMut(&str),
    panic_text: impl Fn(&(dyn std::any::Any + Send)) -> String,
) -> Result<usize, Stop> {
    let labels = model.labels().to_vec();
    let mut failed = 0;
    for (path, message) in input_errors {
        failed += 1;
        echo_error(message);
        writer.write(&Item::Failed { path, error: message })?;
    }
    for file in files {
        let path = file.display().to_string();
        let mut spans = Vec::new();
        let mut io_error = None;
        let r = catch_unwind(AssertUnwindSafe(|| {
            segment_file_each(model, file, opts, |s| {
                if io_error.is_some() {
                    return;
                }
                let row = Row::new(&labels, s, &path, top_k);
                spans.push(Span {
                    index: row.index,
                    start: row.start,
                    end: row.end,
                    label: row.speech.then(|| row.label.clone()),
                });
                if let Err(e) = writer.write(&Item::Segment(&row)) {
                    io_error = Some(e);
                }
            })
        }));
        if let Some(e) = io_error {
            return Err(Stop::Io(e));
        }
        let error = match r {
            Ok(Some(e @ SegmentError::Option { .. })) => return Err(Stop::Option(e.to_string())),
            Ok(e) => e.map(|e| e.to_string()),
            Err(p) => Some(format!("{path}: {}", panic_text(&*p))),
        };
        if !spans.is_empty() {
            writer.write(&Item::Summary(&summarize(&spans, &path)))?;
        }
        if let Some(error) = error {
            failed += 1;
            echo_error(&error);
            writer.write(&Item::Failed { path: &path, error: &error })?;
        }
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(index: u64, start: f64, end: f64, label: Option<&str>) -> Span {
        Span { index, start, end, label: label.map(String::from) }
    }

    #[test]
    fn nearest_centre_shares() {
        // windows 0-2, 1-3, 2-4 (silence), end-aligned 2.5-4.5 listed out of order
        let spans = [
            span(0, 0.0, 2.0, Some("sad")),
            span(1, 1.0, 3.0, Some("angry")),
            span(3, 2.5, 4.5, Some("sad")),
            span(2, 2.0, 4.0, None),
        ];
        let s = summarize(&spans, "a.wav");
        // centres 1, 2, 3, 3.5: owned 0-1.5, 1.5-2.5, 2.5-3.25 (silence), 3.25-4.5
        assert_eq!(s.segments, 4);
        assert_eq!(s.speech_segments, 3);
        assert_eq!(s.duration, 4.5);
        assert_eq!(s.speech_seconds, 1.5 + 1.0 + 1.25);
        assert_eq!(s.emotion_seconds, vec![("sad".into(), 2.75), ("angry".into(), 1.0)]);
        assert_eq!(s.emotions, vec![("sad".into(), 2.75 / 3.75), ("angry".into(), 1.0 / 3.75)]);
        assert_eq!(s.line(), "a.wav\tsummary\t4 segments (3 speech), speech 3.8 s of 4.5 s\tsad 73%, angry 27%");
        // equal shares: by label
        let s = summarize(&[span(0, 0.0, 1.0, Some("b")), span(1, 1.0, 2.0, Some("a"))], "x");
        assert_eq!(s.emotions, vec![("a".into(), 0.5), ("b".into(), 0.5)]);
        let s = summarize(&[span(0, 0.0, 1.0, None)], "x");
        assert!(s.emotions.is_empty());
        assert_eq!(s.line(), "x\tsummary\t1 segments (0 speech), speech 0.0 s of 1.0 s\tno speech");
        assert_eq!(
            s.to_json().dumps(),
            "{\"path\": \"x\", \"summary\": {\"duration\": 1.0, \"segments\": 1, \"speech_segments\": 0, \"speech_seconds\": 0.0, \"emotions\": {}, \"emotion_seconds\": {}}}"
        );
    }

    fn labels() -> Vec<String> {
        ["angry", "happy", "sad"].map(String::from).to_vec()
    }

    #[test]
    fn every_format() {
        let speech = Segment {
            index: 0,
            start: 0,
            end: 16000,
            start_seconds: 0.0,
            end_seconds: 2.0,
            voiced: 0.75,
            probabilities: Some(vec![0.25, 0.5, 0.25]),
        };
        let quiet = Segment {
            index: 1,
            start: 8000,
            end: 24000,
            start_seconds: 1.0,
            end_seconds: 3.0625,
            voiced: 0.0,
            probabilities: None,
        };
        let a = Row::new(&labels(), &speech, "a.wav", Some(2));
        let b = Row::new(&labels(), &quiet, "a.wav", Some(2));
        assert!(b.top_k.is_empty() && b.label == "silence");
        let sum = summarize(&[span(0, 0.0, 2.0, Some("happy")), span(1, 1.0, 3.0625, None)], "a.wav");
        let run = |fmt| {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let mut w = SegmentWriter::new(&mut out, &mut err, fmt, &labels()).unwrap();
            w.write(&Item::Segment(&a)).unwrap();
            w.write(&Item::Segment(&b)).unwrap();
            w.write(&Item::Summary(&sum)).unwrap();
            w.write(&Item::Failed { path: "a.wav", error: "a.wav: broken at 3.1 s" }).unwrap();
            w.close().unwrap();
            (String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
        };
        let line = "a.wav\tsummary\t2 segments (1 speech), speech 1.5 s of 3.1 s\thappy 100%\n";
        assert_eq!(
            run(Format::Table),
            (
                format!("a.wav\t0.000\t2.000\thappy\t0.5000\tangry:0.2500\na.wav\t1.000\t3.062\tsilence\t-\n{line}"),
                String::new()
            )
        );
        assert_eq!(
            run(Format::Csv),
            (
                "path,start,end,label,confidence,speech,voiced,error,p_angry,p_happy,p_sad\n\
                 a.wav,0.000000,2.000000,happy,0.500000,1,0.7500,,0.250000,0.500000,0.250000\n\
                 a.wav,1.000000,3.062500,silence,,0,0.0000,,,,\n\
                 a.wav,,,,,,,a.wav: broken at 3.1 s,,,\n"
                    .to_string(),
                line.to_string()
            )
        );
        let ja = "{\"path\": \"a.wav\", \"index\": 0, \"start\": 0.0, \"end\": 2.0, \"label\": \"happy\", \"confidence\": 0.5, \"speech\": true, \"voiced\": 0.75, \"top_k\": [{\"label\": \"happy\", \"probability\": 0.5}, {\"label\": \"angry\", \"probability\": 0.25}], \"probabilities\": {\"angry\": 0.25, \"happy\": 0.5, \"sad\": 0.25}}";
        let jb = "{\"path\": \"a.wav\", \"index\": 1, \"start\": 1.0, \"end\": 3.0625, \"label\": \"silence\", \"confidence\": null, \"speech\": false, \"voiced\": 0.0, \"probabilities\": {}}";
        let js = sum.to_json().dumps();
        let je = "{\"path\": \"a.wav\", \"error\": \"a.wav: broken at 3.1 s\"}";
        assert_eq!(run(Format::Jsonl).0, format!("{ja}\n{jb}\n{js}\n{je}\n"));
        assert_eq!(run(Format::Json).0, format!("[\n  {ja},\n  {jb},\n  {js},\n  {je}\n]\n"));
    }
}
