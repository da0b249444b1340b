//! The runtime commands for the Python CLI, through `serlaq_core::runtime`: the same
//! batch, segment runs, writers and info text that `serlaq-rt` prints, written to Python
//! file objects (`sys.stdout`, `sys.stderr`), so both CLIs print the same bytes by
//! construction. The work runs with the GIL released; it is taken back only to hand a
//! finished line to Python.

use crate::model::{guarded, panic_err, PyModel};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use serlaq_core::runtime::{
    self, check_flags, ood_warning, predict_inputs, segment_inputs, segment_ood_warning, BatchOptions, Format, Outcome,
    ResultWriter, SegmentItem, SegmentSummary, SegmentWriter, Stop,
};
use serlaq_core::segments;
use std::ffi::OsString;
use std::io;
use std::path::PathBuf;

/// A Python text file as an `io::Write`: each write hands one complete piece of text
/// (the writers write whole lines) to `file.write`, `flush` calls `file.flush`.
struct PyText(Py<PyAny>);

impl io::Write for PyText {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        Python::attach(|py| self.0.call_method1(py, "write", (text.as_ref(),)).map(|_| ()))
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Python::attach(|py| self.0.call_method0(py, "flush").map(|_| ())).map_err(|e| io::Error::other(e.to_string()))
    }
}

fn format_arg(fmt: &str) -> PyResult<Format> {
    fmt.parse().map_err(|e: String| PyValueError::new_err(format!("--format: {e}")))
}

fn echo(echo_error: &Py<PyAny>, line: &str) -> io::Result<()> {
    Python::attach(|py| echo_error.call1(py, (line,)).map(|_| ())).map_err(|e| io::Error::other(e.to_string()))
}

fn io_err(e: io::Error) -> PyErr {
    pyo3::exceptions::PyOSError::new_err(e.to_string())
}

/// `serlaq predict` without segments: every input's result written to `out` as it
/// comes, each failure's line passed to `echo_error`, and `echo_warning` (when given) the
/// out-of-domain warning when most files lie far outside the model's training data.
/// Returns the number of failures.
#[pyfunction]
#[pyo3(signature = (model, inputs, fmt, out, echo_error, top_k=None, threads=None, echo_warning=None, skip_failed=false))]
#[allow(clippy::too_many_arguments)]
fn predict_to(
    py: Python<'_>,
    model: &PyModel,
    inputs: Vec<PathBuf>,
    fmt: &str,
    out: Py<PyAny>,
    echo_error: Py<PyAny>,
    top_k: Option<usize>,
    threads: Option<usize>,
    echo_warning: Option<Py<PyAny>>,
    skip_failed: bool,
) -> PyResult<usize> {
    let fmt = format_arg(fmt)?;
    let inputs: Vec<OsString> = inputs.into_iter().map(PathBuf::into_os_string).collect();
    let m = &model.inner;
    let r = py.detach(|| {
        guarded(|| -> io::Result<usize> {
            let mut w = ResultWriter::new(PyText(out), fmt, m.labels())?;
            let mut ood = Vec::new();
            let failed = predict_inputs(m, &inputs, &BatchOptions { threads, top_k }, |r| {
                match &r {
                    Outcome::Failed(f) => {
                        echo(&echo_error, &f.error)?;
                        if skip_failed {
                            return Ok(()); // --on-error skip: the error line only, no row
                        }
                    }
                    Outcome::Ok(p) => ood.extend(p.ood),
                }
                w.write(&r)
            })?;
            w.close()?;
            if let (Some(echo_w), Some(line)) = (&echo_warning, ood_warning(&ood, m.ood_threshold())) {
                echo(echo_w, &line)?;
            }
            Ok(failed)
        })
    });
    r.map_err(panic_err)?.map_err(io_err)
}

/// One file's windows as segment tuples, its path and error (for `--plot`).
type Timeline = (String, Vec<(u64, u64, u64, f64, f64, f64, Option<Vec<f64>>, Option<f64>)>, Option<String>);

/// `serlaq predict --segments`: the options checked first (ValueError, nothing written),
/// then every file's windows, summary and failure written as they come; summaries go to
/// `summary_out` in csv. Returns (failures, timelines of the files with windows when
/// `keep`, else empty). `skip_failed`: a failure gets its `echo_error` line but no row.
#[pyfunction]
#[pyo3(signature = (model, inputs, fmt, out, summary_out, echo_error, window, hop, vad_db, min_speech, top_k=None, keep=false,
                    running_prior=None, running_horizon=segments::DEFAULT_HORIZON, running_balance=true, echo_warning=None,
                    skip_failed=false))]
#[allow(clippy::too_many_arguments)]
fn segments_to(
    py: Python<'_>,
    model: &PyModel,
    inputs: Vec<PathBuf>,
    fmt: &str,
    out: Py<PyAny>,
    summary_out: Py<PyAny>,
    echo_error: Py<PyAny>,
    window: f64,
    hop: f64,
    vad_db: Option<f64>,
    min_speech: f64,
    top_k: Option<usize>,
    keep: bool,
    running_prior: Option<f64>,
    running_horizon: f64,
    running_balance: bool,
    echo_warning: Option<Py<PyAny>>,
    skip_failed: bool,
) -> PyResult<(usize, Vec<Timeline>)> {
    let fmt = format_arg(fmt)?;
    let m = &model.inner;
    let opts =
        crate::segments::options(window, hop, vad_db, min_speech, running_prior, running_horizon, running_balance);
    check_flags(m, &opts).map_err(PyValueError::new_err)?;
    let inputs: Vec<OsString> = inputs.into_iter().map(PathBuf::into_os_string).collect();
    let r = py.detach(|| {
        guarded(|| -> Result<(usize, Vec<Timeline>), Stop<io::Error>> {
            let mut w = SegmentWriter::new(PyText(out), PyText(summary_out), fmt, m.labels()).map_err(Stop::Sink)?;
            let mut kept: Vec<Timeline> = Vec::new();
            let mut ood = Vec::new();
            let r = segment_inputs(m, &inputs, &opts, top_k, |item| {
                if let SegmentItem::Segment(s) = &item {
                    ood.extend(s.ood);
                }
                match &item {
                    SegmentItem::Failed(f) => echo(&echo_error, &f.error)?,
                    SegmentItem::Segment(s) if keep => {
                        let path = s.path.clone().unwrap_or_default();
                        if kept.last().is_none_or(|t| t.0 != path) {
                            kept.push((path, Vec::new(), None));
                        }
                        let proba = s.speech.then(|| s.probabilities.0.iter().map(|(_, p)| *p).collect());
                        let t = (s.index, s.start_sample, s.end_sample, s.start, s.end, s.voiced, proba, s.ood);
                        kept.last_mut().expect("pushed above").1.push(t);
                    }
                    _ => {}
                }
                if let (SegmentItem::Failed(f), Some(last)) = (&item, kept.last_mut()) {
                    if last.0 == f.path {
                        last.2 = Some(f.error.clone());
                    }
                }
                if skip_failed && matches!(item, SegmentItem::Failed(_)) {
                    return Ok(()); // --on-error skip: the error line only, no row
                }
                w.write(&item)
            });
            // the array is closed whatever stopped the run
            let closed = w.close();
            let failed = r?;
            closed.map_err(Stop::Sink)?;
            if let (Some(echo_w), Some(line)) = (&echo_warning, segment_ood_warning(&ood, m.ood_threshold())) {
                echo(echo_w, &line).map_err(Stop::Sink)?;
            }
            Ok((failed, kept))
        })
    });
    match r.map_err(panic_err)? {
        Ok(v) => Ok(v),
        Err(Stop::Sink(e)) => Err(io_err(e)),
        Err(Stop::Option(msg)) => Err(PyValueError::new_err(msg)),
    }
}

/// `(duration, segments, speech_segments, speech_seconds, emotions, emotion_seconds)` of
/// windows `(index, start, end, label or None for silence)`: the summary `serlaq-rt`
/// writes, for `SegmentTimeline.summary()`.
type SummaryTuple = (f64, usize, usize, f64, Vec<(String, f64)>, Vec<(String, f64)>);

#[pyfunction]
fn summarize(windows: Vec<(u64, f64, f64, Option<String>)>) -> SummaryTuple {
    let records: Vec<runtime::SegmentRecord> = windows
        .into_iter()
        .map(|(index, start, end, label)| runtime::SegmentRecord {
            path: None,
            index,
            start,
            end,
            speech: label.is_some(),
            label: label.unwrap_or_else(|| runtime::SILENCE.into()),
            confidence: None,
            voiced: 0.0,
            top_k: Vec::new(),
            probabilities: Default::default(),
            ood: None,
            start_sample: 0,
            end_sample: 0,
        })
        .collect();
    let SegmentSummary { summary: t, .. } = SegmentSummary::of(&records, None);
    (t.duration, t.segments, t.speech_segments, t.speech_seconds, t.emotions.0, t.emotion_seconds.0)
}

/// (audio files, [(input, one-line message)]); a file's path is an OS string (Python's
/// `os.fsdecode`), so a name that is not UTF-8 comes back to the runtime as the same file.
type Found = (Vec<OsString>, Vec<(String, String)>);

fn found(files: Vec<PathBuf>, errors: Vec<runtime::InputError>) -> Found {
    (
        files.into_iter().map(PathBuf::into_os_string).collect(),
        errors.into_iter().map(|e| (e.path, e.message)).collect(),
    )
}

/// Files and directories -> (audio files, [(input, one-line message)]).
#[pyfunction]
fn find_audio_files(inputs: Vec<PathBuf>) -> Found {
    let inputs: Vec<OsString> = inputs.into_iter().map(PathBuf::into_os_string).collect();
    let (files, errors) = runtime::find_audio_files(&inputs);
    found(files, errors)
}

/// `find_audio_files` of `inputs` followed by the files `manifest` lists, each file once
/// however it is spelled; ValueError naming an unreadable manifest.
#[pyfunction]
#[pyo3(signature = (inputs, manifest=None))]
fn find_listed_audio_files(inputs: Vec<PathBuf>, manifest: Option<PathBuf>) -> PyResult<Found> {
    let inputs: Vec<OsString> = inputs.into_iter().map(PathBuf::into_os_string).collect();
    let (files, errors) =
        runtime::find_listed_audio_files(&inputs, manifest.as_deref()).map_err(PyValueError::new_err)?;
    Ok(found(files, errors))
}

/// A manifest's rows in its order: (line, path, label, speaker), a cell left empty None;
/// ValueError naming an unreadable manifest or one without rows.
#[pyfunction]
fn manifest_rows(manifest: PathBuf) -> PyResult<Vec<ManifestRowTuple>> {
    let rows = runtime::manifest_rows(&manifest).map_err(PyValueError::new_err)?;
    Ok(rows.into_iter().map(|r| (r.line, r.path.map(|p| p.display().to_string()), r.label, r.speaker)).collect())
}

type ManifestRowTuple = (u64, Option<String>, Option<String>, Option<String>);

/// A failure line in plain words (the translation `serlaq-rt` applies too), on one line.
#[pyfunction]
fn plain_error(message: &str) -> String {
    serlaq_core::runtime::plain_error(message)
}

/// `text` with control characters escaped (`\n`, `\t`): one line on a terminal.
#[pyfunction]
fn one_line(text: &str) -> String {
    serlaq_core::runtime::one_line(text).into_owned()
}

/// Threads for a batch of `n_files` (None: every core).
#[pyfunction]
#[pyo3(signature = (requested, n_files))]
fn resolve_threads(requested: Option<usize>, n_files: usize) -> usize {
    runtime::resolve_threads(requested, n_files)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(predict_to, m)?)?;
    m.add_function(wrap_pyfunction!(one_line, m)?)?;
    m.add_function(wrap_pyfunction!(segments_to, m)?)?;
    m.add_function(wrap_pyfunction!(summarize, m)?)?;
    m.add_function(wrap_pyfunction!(find_audio_files, m)?)?;
    m.add_function(wrap_pyfunction!(find_listed_audio_files, m)?)?;
    m.add_function(wrap_pyfunction!(manifest_rows, m)?)?;
    m.add_function(wrap_pyfunction!(resolve_threads, m)?)?;
    m.add_function(wrap_pyfunction!(plain_error, m)?)?;
    Ok(())
}
