//! `serlaq-rt`: the standalone serlaq runtime. `predict` and `info` over `serlaq-core`
//! alone (no Python), with the output of the Python CLI (`serlaq predict`, `serlaq info`).
//!
//! Errors: every `.laq` or audio problem is one line on stderr,
//! `serlaq-rt: error: <path>: <what>`; in a batch the other files are still predicted and
//! the exit code is 1. Each file is predicted under `catch_unwind`, so a panic becomes
//! that file's error line; usage errors exit with 2.

mod files;
mod info;
mod output;
mod pyjson;
mod segments;
mod serve;

use clap::{Args, Parser, Subcommand};
use output::{Format, Outcome, Prediction, ResultWriter};
use serlaq_core::format::{LaqError, LaqFile};
use serlaq_core::model::{Model, ModelError};
use std::ffi::OsString;
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

#[derive(Parser)]
#[command(
    name = "serlaq-rt",
    version,
    about = "Speech emotion recognition from a packed .laq model: the serlaq runtime as one binary (no Python).",
    after_help = "Examples:\n  serlaq-rt predict model.laq clip.wav recordings/ --top-k 3\n  serlaq-rt info model.laq --json",
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Predict(PredictArgs),
    Info(InfoArgs),
    Serve(serve::ServeArgs),
}

/// Predict the emotion of audio files: one line per file (path, label, confidence).
///
/// WAV (PCM 8-32 bit, float, extensible), FLAC, OGG/Vorbis, MP3 and AIFF at any rate from
/// 1 to 384 kHz and any channel count (audio is downmixed and resampled to the model's
/// rate). Directories are searched recursively for audio files (sorted). A file that
/// cannot be read gets one error line on stderr; the others are still predicted and the
/// exit code is 1. Same labels and probabilities as `serlaq predict`.
///
/// With --segments each file is cut into overlapping windows (default 2 s every 1 s);
/// windows where the voice-activity gate finds too little speech are shown as "silence".
/// Output: one row per window, written as it is computed, and a summary per file (speech
/// time, share of speech time per emotion); in csv the summary lines go to stderr. A file
/// that breaks part-way keeps its windows before the damage plus one error line. Same
/// output as `serlaq predict --segments`.
#[derive(Args)]
#[command(
    after_help = "Example:\n  serlaq-rt predict model.laq clip.wav recordings/ --top-k 3 --format jsonl\n  serlaq-rt predict model.laq call.wav --segments --hop 0.5 --format jsonl"
)]
struct PredictArgs {
    /// packed model file (.laq)
    model: PathBuf,
    /// audio files and/or directories (searched recursively)
    #[arg(required = true, num_args = 1..)]
    inputs: Vec<OsString>,
    /// output format (jsonl/csv/table stream as results come)
    #[arg(long = "format", value_enum, default_value = "table")]
    format: Format,
    /// same as --format json
    #[arg(long)]
    json: bool,
    /// also show the K most probable labels
    #[arg(long = "top-k", value_name = "K", value_parser = clap::value_parser!(u32).range(1..))]
    top_k: Option<u32>,
    /// native threads for decoding + features (default: all cores)
    #[arg(long, visible_alias = "workers", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    threads: Option<u32>,
    /// long recordings: one row per window (start, end, label, confidence) and a summary per file
    #[arg(long)]
    segments: bool,
    /// --segments: window length in seconds (default 2.0, rounded to whole STFT hops)
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    window: Option<f64>,
    /// --segments: step between windows in seconds (default 1.0: 50% overlap)
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    hop: Option<f64>,
    /// --segments: a frame is voiced at or above this level in dBFS (default -50)
    #[arg(long = "vad-db", value_name = "DB", allow_negative_numbers = true)]
    vad_db: Option<f64>,
    /// --segments: share of voiced frames that makes a window speech (default 0.25)
    #[arg(long = "min-speech", value_name = "F", allow_negative_numbers = true)]
    min_speech: Option<f64>,
    /// --segments: no voice-activity gate (the model judges every window)
    #[arg(long = "no-vad")]
    no_vad: bool,
}

/// Show what a .laq file holds: labels, features, per-layer shape/bits/quantizer/size,
/// average bits, size vs fp32.
#[derive(Args)]
#[command(after_help = "Example:\n  serlaq-rt info model.laq --json")]
struct InfoArgs {
    /// packed model file (.laq)
    model: PathBuf,
    /// print everything as JSON
    #[arg(long)]
    json: bool,
}

/// A failure that ends the command: one line, exit code 1.
struct Fatal(String);

fn main() -> ExitCode {
    // Panics are caught and reported as one error line; the default hook would add a
    // multi-line message of its own.
    std::panic::set_hook(Box::new(|_| {}));
    let cli = Cli::parse();
    let r = catch_unwind(AssertUnwindSafe(|| match cli.command {
        Command::Predict(a) => predict(a),
        Command::Info(a) => info(a),
        Command::Serve(a) => serve::serve(a).map(|()| ExitCode::SUCCESS).map_err(Fatal),
    }));
    match r {
        Ok(Ok(code)) => code,
        Ok(Err(Fatal(msg))) => {
            eprintln!("serlaq-rt: error: {msg}");
            ExitCode::from(1)
        }
        Err(p) => {
            eprintln!("serlaq-rt: error: {}", panic_text(&*p));
            ExitCode::from(1)
        }
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal error in serlaq-rt (please report): {what}")
}

/// Reads and validates a `.laq` file; the error names the file.
fn load_model(path: &Path) -> Result<Model, Fatal> {
    let origin = path.display().to_string();
    let r = catch_unwind(AssertUnwindSafe(|| {
        let file = LaqFile::open(path).map_err(|e| match e {
            LaqError::Io { path, source } => format!("{}: {source}", path.display()),
            other => format!("{origin}: {other}"),
        })?;
        Model::from_laq(file).map_err(|e| format!("{origin}: {e}"))
    }));
    match r {
        Ok(r) => r.map_err(Fatal),
        Err(p) => Err(Fatal(format!("{origin}: {}", panic_text(&*p)))),
    }
}

fn info(a: InfoArgs) -> Result<ExitCode, Fatal> {
    let path = files::pathlib(&a.model);
    let model = load_model(&path)?;
    let s = info::Summary::new(&model, &path.display().to_string());
    let text = if a.json { s.to_json().dumps_indent() } else { s.describe() };
    write_stdout(format!("{text}\n").as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

fn write_stdout(bytes: &[u8]) -> Result<(), Fatal> {
    let mut out = io::stdout().lock();
    out.write_all(bytes).and_then(|_| out.flush()).map_err(stdout_err)
}

fn stdout_err(e: io::Error) -> Fatal {
    if e.kind() == io::ErrorKind::BrokenPipe {
        // the reader went away (`| head`): nothing more to say
        std::process::exit(141);
    }
    Fatal(format!("stdout: {e}"))
}

/// One file -> class probabilities, or the one-line error naming it: the same call and
/// the same messages as the Python runtime (`Model::predict_file`, as in
/// `Model::predict_files`), a panic caught as that file's error.
fn predict_file(model: &Model, path: &Path) -> Result<Vec<f64>, String> {
    let name = path.display().to_string();
    match catch_unwind(AssertUnwindSafe(|| model.predict_file(path))) {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(ModelError::Audio(e))) => Err(e.to_string()),
        Ok(Err(e)) => Err(format!("{name}: {e}")),
        Err(p) => Err(format!("{name}: {}", panic_text(&*p))),
    }
}

/// Predicts `files` on `threads` threads, calling `emit` in input order as results come.
fn run_batch(
    model: &Model,
    files: &[PathBuf],
    threads: usize,
    mut emit: impl FnMut(usize, Result<Vec<f64>, String>) -> Result<(), Fatal>,
) -> Result<(), Fatal> {
    if threads <= 1 || files.len() <= 1 {
        for (i, f) in files.iter().enumerate() {
            emit(i, predict_file(model, f))?;
        }
        return Ok(());
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, stop) = (&next, &stop);
            s.spawn(move || loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= files.len() || tx.send((i, predict_file(model, &files[i]))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        // results are small (one probability per label): hold early ones until their turn
        let mut pending: Vec<Option<Result<Vec<f64>, String>>> = vec![None; files.len()];
        let mut done = 0;
        for (i, r) in rx {
            pending[i] = Some(r);
            while done < files.len() {
                let Some(r) = pending[done].take() else { break };
                if let Err(e) = emit(done, r) {
                    stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
                done += 1;
            }
        }
        Ok(())
    })
}

/// A usage error found after parsing (as the Python CLI's `fail(..., code=2)`).
fn usage_error(msg: &str) -> Result<ExitCode, Fatal> {
    eprintln!("serlaq-rt: error: {msg}");
    Ok(ExitCode::from(2))
}

fn predict(a: PredictArgs) -> Result<ExitCode, Fatal> {
    let fmt = if a.json { Format::Json } else { a.format };
    let seg_flags = [("--window", a.window), ("--hop", a.hop), ("--vad-db", a.vad_db), ("--min-speech", a.min_speech)];
    if !a.segments {
        let mut given: Vec<&str> = seg_flags.iter().filter(|(_, v)| v.is_some()).map(|(k, _)| *k).collect();
        if a.no_vad {
            given.push("--no-vad");
        }
        if !given.is_empty() {
            return usage_error(&format!("{}: only with --segments", given.join(", ")));
        }
    } else {
        if a.no_vad && (a.vad_db.is_some() || a.min_speech.is_some()) {
            return usage_error("--no-vad: cannot be combined with --vad-db / --min-speech");
        }
        return predict_segments(a, fmt);
    }
    let model = load_model(&files::pathlib(&a.model))?;
    let (found, input_errors) = files::find_audio_files(&a.inputs);
    let labels = model.labels().to_vec();
    let mut writer = ResultWriter::new(io::stdout().lock(), fmt, &labels).map_err(stdout_err)?;
    let mut failed = 0usize;
    let mut emit = |r: Outcome| -> Result<(), Fatal> {
        if let Outcome::Failed { error, .. } = &r {
            failed += 1;
            eprintln!("serlaq-rt: error: {error}");
        }
        writer.write(&r).map_err(stdout_err)
    };
    // as the Python CLI: inputs that give no file first, then the files in order
    for e in input_errors {
        emit(Outcome::Failed { path: e.path, error: e.message })?;
    }
    let threads = match a.threads {
        Some(n) => n as usize,
        None if found.len() > 1 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        None => 1,
    }
    .min(found.len().max(1));
    let top_k = a.top_k.map(|k| k as usize);
    run_batch(&model, &found, threads, |i, r| {
        let path = found[i].display().to_string();
        emit(match r {
            Ok(p) => Outcome::Ok(Prediction::new(&labels, &p, path, top_k)),
            Err(error) => Outcome::Failed { path, error },
        })
    })?;
    writer.close().map_err(stdout_err)?;
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// `predict --segments`: options checked before anything is written (a bad one: one
/// line, exit 1), then every file segmented and written window by window.
fn predict_segments(a: PredictArgs, fmt: Format) -> Result<ExitCode, Fatal> {
    use serlaq_core::segments::{SegmentOptions, Vad, DEFAULT_HOP, DEFAULT_MIN_SPEECH, DEFAULT_VAD_DB, DEFAULT_WINDOW};
    let model = load_model(&files::pathlib(&a.model))?;
    let (found, input_errors) = files::find_audio_files(&a.inputs);
    let opts = SegmentOptions {
        window: a.window.unwrap_or(DEFAULT_WINDOW),
        hop: a.hop.unwrap_or(DEFAULT_HOP),
        vad: (!a.no_vad).then(|| Vad {
            threshold_db: a.vad_db.unwrap_or(DEFAULT_VAD_DB),
            min_speech: a.min_speech.unwrap_or(DEFAULT_MIN_SPEECH),
        }),
    };
    segments::check_options(&model, &opts).map_err(Fatal)?;
    let labels = model.labels().to_vec();
    let mut writer =
        segments::SegmentWriter::new(io::stdout().lock(), io::stderr(), fmt, &labels).map_err(stdout_err)?;
    let errors: Vec<(String, String)> = input_errors.into_iter().map(|e| (e.path, e.message)).collect();
    let r = segments::run(
        &model,
        &found,
        &errors,
        &mut writer,
        &opts,
        a.top_k.map(|k| k as usize),
        |m| eprintln!("serlaq-rt: error: {m}"),
        panic_text,
    );
    // as the Python writer's `finally: close()`
    let closed = writer.close();
    let failed = match r {
        Ok(n) => n,
        Err(segments::Stop::Io(e)) => return Err(stdout_err(e)),
        Err(segments::Stop::Option(msg)) => return Err(Fatal(msg)),
    };
    closed.map_err(stdout_err)?;
    Ok(if failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
