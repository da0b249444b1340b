//! Segment runs on top of [`crate::segments`]: files segmented into records, each window
//! handed on as the segmenter completes it, a summary per file and the file's failure;
//! and live streams ([`RecordStream`]) whose windows come out as records.

use super::files::find_audio_files;
use super::records::{Failure, SegmentItem, SegmentRecord, SegmentSummary};
use super::source::panic_text;
use crate::model::Model;
use crate::segments::{segment_file_each, SegmentError, SegmentOptions, Segmenter};
use std::ffi::OsString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Checks the options against the model before anything is written: the one-line
/// message of a bad option.
pub fn check_options(model: &Model, opts: &SegmentOptions) -> Result<(), String> {
    Segmenter::new(model, model.spec().sample_rate, opts, "stream").map(|_| ()).map_err(|e| e.to_string())
}

/// [`check_options`] for a command line: a bad option is named by its flag (`--vad-db`, not
/// `vad_db`), the words a person typed.
pub fn check_flags(model: &Model, opts: &SegmentOptions) -> Result<(), String> {
    Segmenter::new(model, model.spec().sample_rate, opts, "stream").map(|_| ()).map_err(|e| match e {
        SegmentError::Option { field, value, detail } => {
            format!("--{}: {detail} (got {value})", field.replace('_', "-"))
        }
        other => other.to_string(),
    })
}

/// Why a segment run stopped before its end.
#[derive(Debug)]
pub enum Stop<E> {
    /// The sink refused an item (a closed pipe, a full disk, a client gone).
    Sink(E),
    /// An option was refused for a file's rate (one line).
    Option(String),
}

/// What became of one file: its windows are already handed on.
#[derive(Debug, Clone, PartialEq)]
pub struct FileEnd {
    /// The totals, when at least one window was completed.
    pub summary: Option<SegmentSummary>,
    /// Why the file stopped early (the windows before the damage are kept).
    pub error: Option<String>,
}

/// Segments one file read packet by packet, `emit`ting each window as it completes.
pub fn segment_path<E>(
    model: &Model,
    path: &Path,
    opts: &SegmentOptions,
    top_k: Option<usize>,
    mut emit: impl FnMut(SegmentRecord) -> Result<(), E>,
) -> Result<FileEnd, Stop<E>> {
    let shown = path.display().to_string();
    let labels = model.labels();
    let mut records: Vec<SegmentRecord> = Vec::new();
    let mut refused = None;
    let r = catch_unwind(AssertUnwindSafe(|| {
        segment_file_each(model, path, opts, |s| {
            if refused.is_some() {
                return;
            }
            let rec = SegmentRecord::new(labels, s, Some(shown.clone()), top_k);
            // the summary needs only the timing and the label
            records.push(SegmentRecord { top_k: Vec::new(), probabilities: Default::default(), ..rec.clone() });
            if let Err(e) = emit(rec) {
                refused = Some(e);
            }
        })
    }));
    if let Some(e) = refused {
        return Err(Stop::Sink(e));
    }
    let error = match r {
        Ok(Some(e @ SegmentError::Option { .. })) => return Err(Stop::Option(e.to_string())),
        Ok(e) => e.map(|e| e.to_string()),
        Err(p) => Some(format!("{shown}: {}", panic_text(&*p))),
    };
    let summary = (!records.is_empty()).then(|| SegmentSummary::of(&records, Some(shown)));
    Ok(FileEnd { summary, error })
}

/// The whole `predict --segments` command after [`check_options`]: the inputs that give
/// no file, then per file its windows (as they come), its summary, its failure. Returns
/// how many failed (a file that broke part-way counts).
pub fn segment_inputs<E>(
    model: &Model,
    inputs: &[OsString],
    opts: &SegmentOptions,
    top_k: Option<usize>,
    mut emit: impl FnMut(SegmentItem) -> Result<(), E>,
) -> Result<usize, Stop<E>> {
    let (found, input_errors) = find_audio_files(inputs);
    let mut failed = 0;
    for e in input_errors {
        failed += 1;
        emit(SegmentItem::Failed(Failure { path: e.path, error: e.message })).map_err(Stop::Sink)?;
    }
    for file in &found {
        let end = segment_path(model, file, opts, top_k, |r| emit(SegmentItem::Segment(r)))?;
        if let Some(s) = end.summary {
            emit(SegmentItem::Summary(s)).map_err(Stop::Sink)?;
        }
        if let Some(error) = end.error {
            failed += 1;
            let path = file.display().to_string();
            emit(SegmentItem::Failed(Failure { path, error })).map_err(Stop::Sink)?;
        }
    }
    Ok(failed)
}

/// A live stream at one sample rate whose completed windows come out as records (no
/// path). `push` any chunk size; `finish` ends it.
pub struct RecordStream<'m> {
    model: &'m Model,
    segmenter: Segmenter,
    top_k: Option<usize>,
}

impl<'m> RecordStream<'m> {
    /// `source` names the stream in error lines.
    pub fn new(
        model: &'m Model,
        sample_rate: u32,
        opts: &SegmentOptions,
        top_k: Option<usize>,
        source: &str,
    ) -> Result<Self, SegmentError> {
        Ok(RecordStream { model, segmenter: Segmenter::new(model, sample_rate, opts, source)?, top_k })
    }

    /// The underlying segmenter (window/hop in seconds, samples so far).
    pub fn segmenter(&self) -> &Segmenter {
        &self.segmenter
    }

    /// Mono samples in [-1, 1] at the stream's rate -> the windows they complete.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<SegmentRecord>, SegmentError> {
        let done = self.segmenter.push(self.model, samples)?;
        Ok(self.records(&done))
    }

    /// Ends the stream: the remaining windows (the one window of a short stream).
    pub fn finish(&mut self) -> Result<Vec<SegmentRecord>, SegmentError> {
        let done = self.segmenter.finish(self.model)?;
        Ok(self.records(&done))
    }

    fn records(&self, done: &[crate::segments::Segment]) -> Vec<SegmentRecord> {
        done.iter().map(|s| SegmentRecord::new(self.model.labels(), s, None, self.top_k)).collect()
    }
}
