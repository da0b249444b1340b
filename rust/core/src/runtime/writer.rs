//! The one text form of the records: table, JSON (one array), JSONL and CSV, each result
//! written (and flushed) as it comes, so a long batch can be piped.
//!
//! - [`ResultWriter`]: clips. table `path<TAB>label<TAB>confidence[<TAB>label:p ...]`
//!   (failures: nothing, the face prints the error line); csv
//!   `path,label,confidence,error,p_<label>...`.
//! - [`SegmentWriter`]: windows, per-file summaries and failures. table rows `path start
//!   end label confidence [label:p ...]` and a summary line per file; csv
//!   `path,start,end,label,confidence,speech,voiced,error,p_<label>...` with the summary
//!   lines sent to a second stream (stderr in the CLIs) so the CSV stays one table.
//! - json / jsonl: the records' serde form (`json.rs`), one per element / line.

use super::json::to_line;
use super::records::{show_path, Outcome, SegmentItem};
use serde::Serialize;
use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

/// An output format of the runtime commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Jsonl,
    Csv,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Table, Format::Json, Format::Jsonl, Format::Csv];

    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

impl FromStr for Format {
    type Err = String;

    /// The one-line message for an unknown name.
    fn from_str(s: &str) -> Result<Format, String> {
        Format::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
            format!("must be one of {}, got '{s}'", names.join(", "))
        })
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One CSV field as Python's `csv.writer` writes it (QUOTE_MINIMAL).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// One CSV line (`\n` ended).
pub fn csv_row(fields: &[String]) -> String {
    let mut line = fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",");
    line.push('\n');
    line
}

/// The framing both writers share: the csv header / `[`, each JSON element's separator,
/// the closing `]`.
struct Stream<W: Write> {
    out: W,
    fmt: Format,
    labels: Vec<String>,
    count: usize,
}

impl<W: Write> Stream<W> {
    fn open(mut out: W, fmt: Format, labels: &[String], csv_head: &[&str], csv_tail: &[&str]) -> io::Result<Self> {
        match fmt {
            Format::Csv => {
                let mut header: Vec<String> = csv_head.iter().map(|s| s.to_string()).collect();
                header.extend(labels.iter().map(|l| format!("p_{l}")));
                header.extend(csv_tail.iter().map(|s| s.to_string()));
                out.write_all(csv_row(&header).as_bytes())?;
            }
            Format::Json => out.write_all(b"[")?,
            _ => {}
        }
        Ok(Stream { out, fmt, labels: labels.to_vec(), count: 0 })
    }

    /// The JSON text of `record` for json/jsonl, `None` for the other formats.
    fn json<T: Serialize>(&mut self, record: &T) -> Option<String> {
        let text = match self.fmt {
            Format::Jsonl => to_line(record) + "\n",
            Format::Json => format!("{}\n  {}", if self.count > 0 { "," } else { "" }, to_line(record)),
            _ => return None,
        };
        self.count += 1;
        Some(text)
    }

    fn put(&mut self, text: &str) -> io::Result<()> {
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    fn close(&mut self) -> io::Result<()> {
        if self.fmt == Format::Json {
            self.out.write_all(if self.count > 0 { b"\n]\n" } else { b"]\n" })?;
        }
        self.out.flush()
    }
}

/// Writes clip results one at a time; `close()` once at the end.
pub struct ResultWriter<W: Write> {
    s: Stream<W>,
}

impl<W: Write> ResultWriter<W> {
    pub fn new(out: W, fmt: Format, labels: &[String]) -> io::Result<Self> {
        let s = Stream::open(out, fmt, labels, &["path", "label", "confidence", "error"], &["ood"])?;
        Ok(ResultWriter { s })
    }

    pub fn write(&mut self, r: &Outcome) -> io::Result<()> {
        if let Some(text) = self.s.json(r) {
            return self.s.put(&text);
        }
        let text = match (self.s.fmt, r) {
            (Format::Table, Outcome::Ok(p)) => {
                let mut line = format!("{}\t{}\t{:.4}", show_path(p.path.as_deref()), p.label, p.confidence);
                for t in p.top_k.iter().skip(1) {
                    line.push_str(&format!("\t{}:{:.4}", t.label, t.probability));
                }
                line + "\n"
            }
            (Format::Table, Outcome::Failed(_)) => String::new(),
            (_, Outcome::Ok(p)) => {
                let mut row = vec![
                    p.path.clone().unwrap_or_default(),
                    p.label.clone(),
                    format!("{:.6}", p.confidence),
                    String::new(),
                ];
                row.extend(
                    self.s.labels.iter().map(|l| p.probabilities.get(l).map_or(String::new(), |v| format!("{v:.6}"))),
                );
                row.push(p.ood.map_or(String::new(), |v| format!("{v:.4}")));
                csv_row(&row)
            }
            (_, Outcome::Failed(f)) => {
                let mut row = vec![f.path.clone(), String::new(), String::new(), f.error.clone()];
                row.extend(self.s.labels.iter().map(|_| String::new()));
                row.push(String::new());
                csv_row(&row)
            }
        };
        self.s.count += 1;
        self.s.put(&text)
    }

    pub fn close(&mut self) -> io::Result<()> {
        self.s.close()
    }
}

/// Writes a segment run's items one at a time; in csv the summary lines go to
/// `summary_out`. `close()` once at the end.
pub struct SegmentWriter<W: Write, E: Write> {
    s: Stream<W>,
    summary_out: E,
}

impl<W: Write, E: Write> SegmentWriter<W, E> {
    pub fn new(out: W, summary_out: E, fmt: Format, labels: &[String]) -> io::Result<Self> {
        let head = ["path", "start", "end", "label", "confidence", "speech", "voiced", "error"];
        Ok(SegmentWriter { s: Stream::open(out, fmt, labels, &head, &["ood"])?, summary_out })
    }

    pub fn write(&mut self, item: &SegmentItem) -> io::Result<()> {
        if let Some(text) = self.s.json(item) {
            return self.s.put(&text);
        }
        let text = match (self.s.fmt, item) {
            (Format::Table, SegmentItem::Segment(r)) => {
                let conf = r.confidence.map_or("-".to_string(), |c| format!("{c:.4}"));
                let mut cols = vec![
                    show_path(r.path.as_deref()).into_owned(),
                    format!("{:.3}", r.start),
                    format!("{:.3}", r.end),
                    r.label.clone(),
                    conf,
                ];
                cols.extend(r.top_k.iter().skip(1).map(|t| format!("{}:{:.4}", t.label, t.probability)));
                cols.join("\t") + "\n"
            }
            (Format::Table, SegmentItem::Summary(s)) => s.line() + "\n",
            (Format::Table, SegmentItem::Failed(_)) => String::new(),
            (_, SegmentItem::Summary(s)) => {
                self.summary_out.write_all((s.line() + "\n").as_bytes())?;
                return self.summary_out.flush();
            }
            (_, SegmentItem::Failed(f)) => {
                let mut row: Vec<String> = vec![f.path.clone()];
                row.extend(std::iter::repeat_n(String::new(), 6));
                row.push(f.error.clone());
                row.extend(std::iter::repeat_n(String::new(), self.s.labels.len() + 1));
                csv_row(&row)
            }
            (_, SegmentItem::Segment(r)) => {
                let mut row = vec![
                    r.path.clone().unwrap_or_default(),
                    format!("{:.6}", r.start),
                    format!("{:.6}", r.end),
                    r.label.clone(),
                    r.confidence.map_or(String::new(), |c| format!("{c:.6}")),
                    if r.speech { "1" } else { "0" }.to_string(),
                    format!("{:.4}", r.voiced),
                    String::new(),
                ];
                row.extend(
                    self.s.labels.iter().map(|l| r.probabilities.get(l).map_or(String::new(), |v| format!("{v:.6}"))),
                );
                row.push(r.ood.map_or(String::new(), |v| format!("{v:.4}")));
                csv_row(&row)
            }
        };
        self.s.put(&text)
    }

    pub fn close(&mut self) -> io::Result<()> {
        self.s.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::records::{Failure, Prediction, SegmentRecord, SegmentSummary};
    use crate::segments::Segment;

    fn labels() -> Vec<String> {
        ["angry", "happy", "sad"].map(String::from).to_vec()
    }

    #[test]
    fn clip_formats() {
        let ok =
            Outcome::Ok(Prediction::new(&labels(), &[0.5, 0.25, 0.25], Some("x,\"y\".wav".into()), None).with_ood(2.5));
        let bad = Outcome::Failed(Failure { path: "b.wav".into(), error: "b.wav: all silent (peak -inf dBFS)".into() });
        let run = |fmt| {
            let mut buf = Vec::new();
            let mut w = ResultWriter::new(&mut buf, fmt, &labels()).unwrap();
            w.write(&ok).unwrap();
            w.write(&bad).unwrap();
            w.close().unwrap();
            String::from_utf8(buf).unwrap()
        };
        assert_eq!(run(Format::Table), "x,\"y\".wav\tangry\t0.5000\n");
        // a tab or a line break in a name stays on its row, escaped
        let odd = Outcome::Ok(Prediction::new(&labels(), &[0.5, 0.25, 0.25], Some("a\tb\nc\u{1b}.wav".into()), None));
        let mut buf = Vec::new();
        let mut w = ResultWriter::new(&mut buf, Format::Table, &labels()).unwrap();
        w.write(&odd).unwrap();
        w.close().unwrap();
        assert_eq!(String::from_utf8(buf).unwrap(), "a\\tb\\nc\\u{1b}.wav\tangry\t0.5000\n");
        assert_eq!(
            run(Format::Csv),
            "path,label,confidence,error,p_angry,p_happy,p_sad,ood\n\"x,\"\"y\"\".wav\",angry,0.500000,,0.500000,0.250000,0.250000,2.5000\nb.wav,,,b.wav: all silent (peak -inf dBFS),,,,\n"
        );
        let j = "{\"path\": \"x,\\\"y\\\".wav\", \"label\": \"angry\", \"confidence\": 0.5, \"probabilities\": {\"angry\": 0.5, \"happy\": 0.25, \"sad\": 0.25}, \"ood\": 2.5}";
        let e = "{\"path\": \"b.wav\", \"error\": \"b.wav: all silent (peak -inf dBFS)\"}";
        assert_eq!(run(Format::Jsonl), format!("{j}\n{e}\n"));
        assert_eq!(run(Format::Json), format!("[\n  {j},\n  {e}\n]\n"));
        let mut buf = Vec::new();
        ResultWriter::new(&mut buf, Format::Json, &labels()).unwrap().close().unwrap();
        assert_eq!(buf, b"[]\n");
        assert_eq!("jsonl".parse::<Format>(), Ok(Format::Jsonl));
        assert_eq!("xml".parse::<Format>(), Err("must be one of table, json, jsonl, csv, got 'xml'".into()));
    }

    #[test]
    fn segment_formats() {
        let speech = Segment {
            index: 0,
            start: 0,
            end: 16000,
            start_seconds: 0.0,
            end_seconds: 2.0,
            voiced: 0.75,
            probabilities: Some(vec![0.25, 0.5, 0.25]),
            ood: Some(1.25),
        };
        let quiet = Segment {
            index: 1,
            start: 8000,
            end: 24000,
            start_seconds: 1.0,
            end_seconds: 3.0625,
            voiced: 0.0,
            probabilities: None,
            ood: None,
        };
        let a = SegmentRecord::new(&labels(), &speech, Some("a.wav".into()), Some(2));
        let b = SegmentRecord::new(&labels(), &quiet, Some("a.wav".into()), Some(2));
        assert!(b.top_k.is_empty() && b.label == "silence");
        let sum = SegmentSummary::of(&[a.clone(), b.clone()], Some("a.wav".into()));
        let items = [
            SegmentItem::Segment(a),
            SegmentItem::Segment(b),
            SegmentItem::Summary(sum.clone()),
            SegmentItem::Failed(Failure { path: "a.wav".into(), error: "a.wav: broken at 3.1 s".into() }),
        ];
        let run = |fmt| {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let mut w = SegmentWriter::new(&mut out, &mut err, fmt, &labels()).unwrap();
            for it in &items {
                w.write(it).unwrap();
            }
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
                "path,start,end,label,confidence,speech,voiced,error,p_angry,p_happy,p_sad,ood\n\
                 a.wav,0.000000,2.000000,happy,0.500000,1,0.7500,,0.250000,0.500000,0.250000,1.2500\n\
                 a.wav,1.000000,3.062500,silence,,0,0.0000,,,,,\n\
                 a.wav,,,,,,,a.wav: broken at 3.1 s,,,,\n"
                    .to_string(),
                line.to_string()
            )
        );
        let ja = "{\"path\": \"a.wav\", \"index\": 0, \"start\": 0.0, \"end\": 2.0, \"label\": \"happy\", \"confidence\": 0.5, \"speech\": true, \"voiced\": 0.75, \"top_k\": [{\"label\": \"happy\", \"probability\": 0.5}, {\"label\": \"angry\", \"probability\": 0.25}], \"probabilities\": {\"angry\": 0.25, \"happy\": 0.5, \"sad\": 0.25}, \"ood\": 1.25}";
        let jb = "{\"path\": \"a.wav\", \"index\": 1, \"start\": 1.0, \"end\": 3.0625, \"label\": \"silence\", \"confidence\": null, \"speech\": false, \"voiced\": 0.0, \"probabilities\": {}}";
        let js = to_line(&sum);
        let je = "{\"path\": \"a.wav\", \"error\": \"a.wav: broken at 3.1 s\"}";
        assert_eq!(run(Format::Jsonl).0, format!("{ja}\n{jb}\n{js}\n{je}\n"));
        assert_eq!(run(Format::Json).0, format!("[\n  {ja},\n  {jb},\n  {js},\n  {je}\n]\n"));
    }
}
