//! Prediction results as text, the same bytes as `python/serlaq/runtime/output.py`
//! (`ResultWriter`) and `results.py` (`Prediction.to_dict`, `FileFailure.to_dict`).

use crate::pyjson::J;
use clap::ValueEnum;
use std::io::{self, Write};

/// `items` + the `top_k` list (when asked for) + the probabilities, as one JSON object: the
/// tail every result shares (`python/serlaq/runtime/results.py` `_with_scores`).
pub fn with_scores(mut items: Vec<(String, J)>, top_k: &[(String, f64)], probabilities: &[(String, f64)]) -> J {
    if !top_k.is_empty() {
        let top = top_k
            .iter()
            .map(|(l, v)| J::obj([("label", J::Str(l.clone())), ("probability", J::Float(*v))]))
            .collect();
        items.push(("top_k".into(), J::Arr(top)));
    }
    let probs = probabilities.iter().map(|(l, v)| (l.clone(), J::Float(*v))).collect();
    items.push(("probabilities".into(), J::Obj(probs)));
    J::Obj(items)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// path<TAB>label<TAB>confidence[<TAB>label:p ...]; failures only on stderr
    Table,
    /// one JSON array (written as results come, closed at the end)
    Json,
    /// one JSON object per line, flushed per result
    Jsonl,
    /// header path,label,confidence,error,p_<label>...
    Csv,
}

/// The model's answer for one file (`Prediction`), or why there is none (`FileFailure`).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ok(Prediction),
    Failed { path: String, error: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub path: String,
    pub label: String,
    pub confidence: f64,
    /// `(label, probability)` in label order.
    pub probabilities: Vec<(String, f64)>,
    /// The most probable labels, most probable first (empty without `--top-k`).
    pub top_k: Vec<(String, f64)>,
}

impl Prediction {
    /// `Prediction.from_probabilities`: the first label with the largest probability;
    /// top-k ranked by (-probability, label).
    pub fn new(labels: &[String], proba: &[f64], path: String, top_k: Option<usize>) -> Prediction {
        let mut best = 0;
        for (i, &p) in proba.iter().enumerate() {
            if p > proba[best] {
                best = i;
            }
        }
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
        Prediction { path, label: labels[best].clone(), confidence: proba[best], probabilities, top_k: top }
    }
}

impl Outcome {
    /// `to_dict()` of the Python result.
    pub fn to_json(&self) -> J {
        match self {
            Outcome::Ok(p) => {
                let items = vec![
                    ("path".to_string(), J::Str(p.path.clone())),
                    ("label".to_string(), J::Str(p.label.clone())),
                    ("confidence".to_string(), J::Float(p.confidence)),
                ];
                with_scores(items, &p.top_k, &p.probabilities)
            }
            Outcome::Failed { path, error } => {
                J::obj([("path", J::Str(path.clone())), ("error", J::Str(error.clone()))])
            }
        }
    }
}

/// `table_line`: `path<TAB>label<TAB>confidence`, then `label:p` for the other top-k labels.
pub fn table_line(p: &Prediction) -> String {
    let path = if p.path.is_empty() { "-" } else { &p.path };
    let mut line = format!("{path}\t{}\t{:.4}", p.label, p.confidence);
    for (l, v) in p.top_k.iter().skip(1) {
        line.push_str(&format!("\t{l}:{v:.4}"));
    }
    line
}

/// One CSV field as Python's `csv.writer` (QUOTE_MINIMAL, `\n` line ends) writes it.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn csv_row(fields: &[String]) -> String {
    let mut line = fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
    line.push('\n');
    line
}

/// Writes one result at a time (flushed), like `ResultWriter`; `close()` once at the end.
pub struct ResultWriter<W: Write> {
    out: W,
    fmt: Format,
    labels: Vec<String>,
    count: usize,
}

impl<W: Write> ResultWriter<W> {
    pub fn new(mut out: W, fmt: Format, labels: &[String]) -> io::Result<Self> {
        match fmt {
            Format::Csv => {
                let mut header: Vec<String> = ["path", "label", "confidence", "error"].map(String::from).to_vec();
                header.extend(labels.iter().map(|l| format!("p_{l}")));
                out.write_all(csv_row(&header).as_bytes())?;
            }
            Format::Json => out.write_all(b"[")?,
            _ => {}
        }
        Ok(ResultWriter { out, fmt, labels: labels.to_vec(), count: 0 })
    }

    pub fn write(&mut self, r: &Outcome) -> io::Result<()> {
        let text = match self.fmt {
            Format::Table => match r {
                Outcome::Ok(p) => table_line(p) + "\n",
                Outcome::Failed { .. } => String::new(),
            },
            Format::Jsonl => r.to_json().dumps() + "\n",
            Format::Json => format!("{}\n  {}", if self.count > 0 { "," } else { "" }, r.to_json().dumps()),
            Format::Csv => {
                let mut row = match r {
                    Outcome::Ok(p) => {
                        vec![p.path.clone(), p.label.clone(), format!("{:.6}", p.confidence), String::new()]
                    }
                    Outcome::Failed { path, error } => vec![path.clone(), String::new(), String::new(), error.clone()],
                };
                for l in &self.labels {
                    row.push(match r {
                        Outcome::Ok(p) => p
                            .probabilities
                            .iter()
                            .find(|(k, _)| k == l)
                            .map_or(String::new(), |(_, v)| format!("{v:.6}")),
                        Outcome::Failed { .. } => String::new(),
                    });
                }
                csv_row(&row)
            }
        };
        self.count += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["angry", "happy", "sad"].map(String::from).to_vec()
    }

    #[test]
    fn ties_and_ranking_follow_python() {
        // equal top probabilities: the label is the first in label order; top-k sorts by
        // (-p, label) -> same here
        let p = Prediction::new(&labels(), &[0.25, 0.375, 0.375], "a.wav".into(), Some(2));
        assert_eq!(p.label, "happy");
        assert_eq!(p.top_k, vec![("happy".into(), 0.375), ("sad".into(), 0.375)]);
        assert_eq!(table_line(&p), "a.wav\thappy\t0.3750\tsad:0.3750");
    }

    #[test]
    fn every_format() {
        let ok = Outcome::Ok(Prediction::new(&labels(), &[0.5, 0.25, 0.25], "x,\"y\".wav".into(), None));
        let bad = Outcome::Failed { path: "b.wav".into(), error: "b.wav: all silent (peak -inf dBFS)".into() };
        let run = |fmt| {
            let mut buf = Vec::new();
            let mut w = ResultWriter::new(&mut buf, fmt, &labels()).unwrap();
            w.write(&ok).unwrap();
            w.write(&bad).unwrap();
            w.close().unwrap();
            String::from_utf8(buf).unwrap()
        };
        assert_eq!(run(Format::Table), "x,\"y\".wav\tangry\t0.5000\n");
        assert_eq!(
            run(Format::Csv),
            "path,label,confidence,error,p_angry,p_happy,p_sad\n\"x,\"\"y\"\".wav\",angry,0.500000,,0.500000,0.250000,0.250000\nb.wav,,,b.wav: all silent (peak -inf dBFS),,,\n"
        );
        let j = "{\"path\": \"x,\\\"y\\\".wav\", \"label\": \"angry\", \"confidence\": 0.5, \"probabilities\": {\"angry\": 0.5, \"happy\": 0.25, \"sad\": 0.25}}";
        let e = "{\"path\": \"b.wav\", \"error\": \"b.wav: all silent (peak -inf dBFS)\"}";
        assert_eq!(run(Format::Jsonl), format!("{j}\n{e}\n"));
        assert_eq!(run(Format::Json), format!("[\n  {j},\n  {e}\n]\n"));
        let mut buf = Vec::new();
        ResultWriter::new(&mut buf, Format::Json, &labels()).unwrap().close().unwrap();
        assert_eq!(buf, b"[]\n");
    }
}
