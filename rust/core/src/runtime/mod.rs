//! The runtime facade: everything a face (the Python bindings and CLI, `serlaq-rt`, the
//! HTTP server, the C ABI, WebAssembly) needs to run a `.laq` model, written once. A face
//! adds only its transport.
//!
//! - [`source`]: [`ModelSource`] (a path, bytes) -> a validated [`Model`], one-line errors.
//! - [`files`]: which files a batch runs on ([`find_audio_files`]) and on how many threads;
//!   [`manifest`]: a CSV manifest's rows ([`manifest_rows`]: path, label, speaker, for
//!   training and evaluation corpora), its audio paths ([`manifest_paths`]), with those of
//!   files and folders ([`find_listed_audio_files`]).
//! - [`batch`]: files -> [`Outcome`]s in input order on a thread pool, per-file failures.
//! - [`segments`]: files and live streams -> [`SegmentRecord`]s, summaries, failures.
//! - [`records`]: the result records; their serde form is their JSON.
//! - [`json`]: the one JSON spelling (Python's `json.dumps` style, so every face prints
//!   the same bytes); [`writer`]: table / json / jsonl / csv, streamed.
//! - [`info`]: what a model file holds ([`ModelInfo`]), as text and JSON.
//!
//! Modules, bottom up: `json`, `records`, `files` -> `manifest`; `source` -> `writer`, `batch`,
//! `segments`, `info`.

pub mod batch;
pub mod files;
pub mod info;
pub mod json;
pub mod manifest;
pub mod plain;
pub mod records;
pub mod segments;
pub mod source;
pub mod writer;

pub use crate::model::Model;
pub use crate::segments::{
    RunningNorm, SegmentOptions, Vad, DEFAULT_HOP, DEFAULT_MIN_SPEECH, DEFAULT_VAD_DB, DEFAULT_WINDOW,
};
pub use batch::{outcome, predict_each, predict_inputs, predict_one, predict_scored, BatchOptions};
pub use files::{find_audio_files, pathlib, resolve_threads, suffix_list, InputError};
pub use info::{trained_on_synthetic, Confidence, LayerRow, ModelInfo, SYNTHETIC_WARNING};
pub use manifest::{find_listed_audio_files, manifest_paths, manifest_rows, ManifestRow};
pub use plain::{format_names, formats_help, plain_error};
pub use records::one_line;
pub use records::{
    ood_warning, segment_ood_warning, Failure, Outcome, Prediction, Ranked, Scores, SegmentItem, SegmentRecord,
    SegmentSummary, Totals, OOD_WARN_SHARE, SILENCE,
};
pub use segments::{check_flags, check_options, segment_inputs, segment_path, FileEnd, RecordStream, Stop};
pub use source::{
    adapt_output_clash, model_file, model_io_error, panic_message, panic_text, LoadError, ModelSource, MODEL_HELP,
    RUN_MODEL,
};
pub use writer::{Format, ResultWriter, SegmentWriter};
