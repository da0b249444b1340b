//! `serlaq-rt`: the standalone serlaq runtime, a command-line face of
//! `serlaq_core::runtime` (no Python): it parses arguments, prints what the facade's
//! writers write and error lines on stderr; the Python CLI prints the same writers.
//!
//! Errors: every `.laq` or audio problem is one line on stderr,
//! `serlaq-rt: error: <path>: <what>`; in a batch the other files are still predicted and
//! the exit code is 1. Each file is predicted under `catch_unwind`, so a panic becomes
//! that file's error line; usage errors exit with 2.

mod serve;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use serlaq_core::adapt::{self, AdaptError, AdaptOptions, StdRule};
use serlaq_core::format;
use serlaq_core::runtime::{
    self, check_flags, pathlib, predict_inputs, segment_inputs, BatchOptions, Format, Model, ModelInfo, ModelSource,
    Outcome, ResultWriter, RunningNorm, SegmentItem, SegmentOptions, SegmentWriter, Stop, Vad,
};
use std::ffi::OsString;
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

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
    Adapt(AdaptArgs),
    Serve(serve::ServeArgs),
}

/// Predict the emotion of audio files: one line per file (path, label, confidence).
///
/// Reads {formats} at any rate from 1 to 384 kHz and any channel count (audio is
/// downmixed and resampled to the model's rate). Directories are searched recursively for
/// audio files (sorted). A file that cannot be read gets one error line on stderr; the
/// others are still predicted and the exit code is 1 (--on-error skip: exit code 0). Same
/// labels and probabilities as `serlaq predict`.
///
/// With --segments each file is cut into overlapping windows (default 2 s every 1 s);
/// windows where the voice-activity gate finds too little speech are shown as "silence".
/// Output: one row per window, written as it is computed, and a summary per file (speech
/// time, share of speech time per emotion); in csv the summary lines go to stderr. A file
/// that breaks part-way keeps its windows before the damage plus one error line. Same
/// output as `serlaq predict --segments`.
#[derive(Args)]
#[command(
    after_help = "Example:\n  serlaq-rt predict model.laq clip.wav recordings/ --top-k 3 --format jsonl\n  serlaq-rt predict model.laq call.wav --segments --hop 0.5 --format jsonl\n  arecord -f S16_LE -r 16000 -t wav - | serlaq-rt predict general - --segments"
)]
struct PredictArgs {
    #[arg(help = runtime::MODEL_HELP)]
    model: PathBuf,
    /// audio files and/or directories (searched recursively); `-` reads standard input
    /// (a pipe is segmented as it comes; a file called `-` is `./-`)
    #[arg(required = true, num_args = 1..)]
    inputs: Vec<OsString>,
    /// output format (jsonl/csv/table stream as results come)
    #[arg(long = "format", default_value = "table", value_parser = parse_format)]
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
    /// --segments: each file's speech windows re-estimate the input statistics as they
    /// come (running normalisation: a recording adapts the model to its own room)
    #[arg(long = "running-norm")]
    running_norm: bool,
    /// --running-norm: weight of the model's own statistics, in windows (default 20)
    #[arg(long = "running-prior", value_name = "N", allow_negative_numbers = true)]
    running_prior: Option<f64>,
    /// --running-norm: windows after which older windows fade out (default 600)
    #[arg(long = "running-horizon", value_name = "N", allow_negative_numbers = true)]
    running_horizon: Option<f64>,
    /// --running-norm: statistics only, no label balance (a recording that is mostly one emotion)
    #[arg(long = "no-running-balance")]
    no_running_balance: bool,
    /// a file that cannot be read: fail = one error line and exit code 1 (the other files are
    /// still predicted); skip = one 'skipped' line, no row, exit code 0 when any file was predicted
    #[arg(long = "on-error", value_name = "fail|skip", default_value = "fail", value_parser = ["fail", "skip"])]
    on_error: String,
    /// error lines keep the audio decoder's own detail (default: plain words)
    #[arg(long)]
    verbose: bool,
}

/// Show what a .laq file holds: labels, features, per-layer shape/bits/quantizer/size,
/// average bits, size vs fp32.
#[derive(Args)]
#[command(after_help = "Example:\n  serlaq-rt info model.laq --json")]
struct InfoArgs {
    #[arg(help = runtime::MODEL_HELP)]
    model: PathBuf,
    /// print everything as JSON
    #[arg(long)]
    json: bool,
}

/// Adapt a model to a new room, microphone or corpus from unlabelled audio: its input
/// statistics are re-estimated on that audio (the feature mean becomes the audio's; the std
/// widens where the audio is wider, --std), the output bias is shifted so the clips spread
/// over the labels (--no-balance: not; --labels: over the labels the audio holds, and the
/// model answers among them), and the result is written as a new .laq that records what it
/// was adapted on. Needs at least 20 readable clips with 20 s of speech (a recording longer
/// than 30 s counts as its 2-s windows that hold speech); unreadable files are named on
/// stderr and left out. Same file, bytes and line as `serlaq adapt`.
#[derive(Args)]
#[command(
    after_help = "Example:\n  serlaq-rt adapt model.laq recordings/ --out model-room.laq\n  serlaq-rt adapt general --manifest room.csv --out room.laq\n  serlaq-rt adapt general calls/ --labels angry,happy,neutral,sad --out calls.laq"
)]
struct AdaptArgs {
    #[arg(help = runtime::MODEL_HELP)]
    model: PathBuf,
    /// unlabelled audio of the new room: files and/or directories (searched recursively)
    #[arg(num_args = 1..)]
    inputs: Vec<OsString>,
    /// a CSV manifest of the audio (path[,label[,speaker]]; labels are ignored; relative
    /// paths are relative to the manifest's own folder)
    #[arg(long, value_name = "CSV")]
    manifest: Option<PathBuf>,
    /// the adapted model (.laq), written atomically; must differ from MODEL
    #[arg(long, required = true)]
    out: PathBuf,
    /// statistics only: no shift of the output bias (recordings mostly of one emotion)
    #[arg(long = "no-balance")]
    no_balance: bool,
    /// the adapted std per feature: widen (the larger of the model's and the audio's),
    /// target (the audio's own), model (the model's: only the mean moves)
    #[arg(long, default_value = "widen", value_parser = StdRule::parse)]
    std: StdRule,
    /// the labels the audio holds, when only some of the model's (comma-separated, repeatable)
    #[arg(long, value_delimiter = ',', value_name = "LABELS")]
    labels: Vec<String>,
    /// native threads for decoding + features (default: all cores)
    #[arg(long, visible_alias = "workers", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    threads: Option<u32>,
    /// error lines keep the audio decoder's own detail
    #[arg(long)]
    verbose: bool,
}

/// A failure that ends the command: one line, exit code 1.
struct Fatal(String);

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

fn main() -> ExitCode {
    // Panics are caught and reported as one error line; the default hook would add a
    // multi-line message of its own.
    std::panic::set_hook(Box::new(|_| {}));
    // the formats read are the core's list, as `serlaq predict --help` shows them
    let cmd = Cli::command().mut_subcommand("predict", |c| {
        let text = c.get_long_about().map(|t| t.to_string()).unwrap_or_default();
        c.long_about(text.replace("{formats}", &runtime::formats_help()))
    });
    let cli = Cli::from_arg_matches(&cmd.get_matches()).unwrap_or_else(|e| e.exit());
    let r = catch_unwind(AssertUnwindSafe(|| match cli.command {
        Command::Predict(a) => predict(a),
        Command::Info(a) => info(a),
        Command::Adapt(a) => adapt_model(a),
        Command::Serve(a) => serve::serve(a).map(|()| ExitCode::SUCCESS).map_err(Fatal),
    }));
    match r {
        Ok(Ok(code)) => code,
        Ok(Err(Fatal(msg))) => {
            eprintln!("serlaq-rt: error: {msg}");
            ExitCode::from(1)
        }
        Err(p) => {
            eprintln!("serlaq-rt: error: {}", runtime::panic_text(&*p));
            ExitCode::from(1)
        }
    }
}

/// The model `predict` runs, with [`runtime::SYNTHETIC_WARNING`] for the demo's model.
fn load_predicting_model(path: &Path) -> Result<Model, Fatal> {
    let model = load_model(path)?;
    if runtime::trained_on_synthetic(&model) {
        eprintln!("serlaq-rt: warning: {}", runtime::SYNTHETIC_WARNING);
    }
    Ok(model)
}

fn load_model(path: &Path) -> Result<Model, Fatal> {
    // the name is matched as typed, and errors name the path as typed (as `serlaq`'s):
    // `./general` stays a path, the file of that name
    ModelSource::from_arg(path).load().map_err(|e| Fatal(e.to_string()))
}

fn info(a: InfoArgs) -> Result<ExitCode, Fatal> {
    let path = pathlib(&a.model);
    let model = load_model(&a.model)?;
    let info = ModelInfo::new(&model, &path.display().to_string());
    let text = if a.json { runtime::json::to_pretty(&info) } else { info.text() };
    let mut out = io::stdout().lock();
    out.write_all(format!("{text}\n").as_bytes()).and_then(|_| out.flush()).map_err(stdout_err)?;
    Ok(ExitCode::SUCCESS)
}

fn adapt_model(a: AdaptArgs) -> Result<ExitCode, Fatal> {
    if a.inputs.is_empty() && a.manifest.is_none() {
        return usage_error("adapt: give audio files or folders, or --manifest CSV");
    }
    if let Some(clash) = runtime::adapt_output_clash(&a.model, &a.out) {
        return usage_error(&clash);
    }
    format::prepare_output(&a.out, "adapted.laq").map_err(|e| Fatal(format!("--out: {e}")))?;
    let model = load_model(&a.model)?;
    let (files, errors) = runtime::find_listed_audio_files(&a.inputs, a.manifest.as_deref()).map_err(Fatal)?;
    // every input that gave no file is named, then (if none did) the line that ends the run
    errors.iter().for_each(|e| eprintln!("serlaq-rt: error: {}", e.message));
    if files.is_empty() {
        let n = errors.len();
        let above =
            if n > 0 { format!(" ({n} input{} named above)", if n == 1 { "" } else { "s" }) } else { String::new() };
        return Err(Fatal(format!("adapt: no audio files given{above}")));
    }
    let named = a.manifest.iter().map(|m| m.as_os_str()).chain(a.inputs.iter().map(|i| i.as_os_str()));
    let inputs: Vec<String> = named.map(|i| i.to_string_lossy().into_owned()).collect();
    let opts = AdaptOptions {
        threads: runtime::resolve_threads(a.threads.map(|n| n as usize), files.len()),
        source: adapt::source_text(&inputs),
        balance: !a.no_balance,
        std: a.std,
        labels: a.labels.into_iter().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect(),
        ..AdaptOptions::default()
    };
    let done = match adapt::adapt(&model, &files, &opts) {
        Ok(done) => done,
        Err(e) => {
            if let AdaptError::NoUsableAudio { failures } | AdaptError::TooLittle { failures, .. } = &e {
                failures.iter().for_each(|f| eprintln!("serlaq-rt: error: {}", shown(f, a.verbose)));
            }
            return Err(Fatal(e.to_string()));
        }
    };
    done.failures.iter().for_each(|f| eprintln!("serlaq-rt: error: {}", shown(f, a.verbose)));
    format::write_atomic(&a.out, &done.bytes).map_err(|e| Fatal(format!("--out: {e}")))?;
    let line = format!("adapted {} {}; wrote {}\n", a.model.display(), done.summary(), a.out.display());
    let mut out = io::stdout().lock();
    out.write_all(line.as_bytes()).and_then(|_| out.flush()).map_err(stdout_err)?;
    Ok(ExitCode::SUCCESS)
}

fn stdout_err(e: io::Error) -> Fatal {
    if e.kind() == io::ErrorKind::BrokenPipe {
        // the reader went away (`| head`): nothing more to say
        std::process::exit(141);
    }
    Fatal(format!("stdout: {e}"))
}

/// A usage error found after parsing (exit code 2, as the Python CLI's).
fn usage_error(msg: &str) -> Result<ExitCode, Fatal> {
    eprintln!("serlaq-rt: error: {msg}");
    Ok(ExitCode::from(2))
}

/// A file's failure as a person reads it: plain words unless --verbose.
fn shown(error: &str, verbose: bool) -> String {
    if verbose {
        runtime::one_line(error).into_owned()
    } else {
        runtime::plain_error(error)
    }
}

/// A batch's exit code, as `serlaq predict`'s: 1 when a file failed, unless `--on-error
/// skip` and some input gave a result (`total`: files found plus inputs that named none).
fn exit_code(failed: usize, skip: bool, inputs: &[OsString]) -> ExitCode {
    let total = || {
        let (files, errors) = runtime::find_audio_files(inputs);
        files.len() + errors.len()
    };
    if failed > 0 && (!skip || failed >= total()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The stderr line of a file that could not be used: `error:`, or `skipped:` with
/// `--on-error skip` (which writes no row for it).
fn file_failed(error: &str, skip: bool, verbose: bool) {
    eprintln!("serlaq-rt: {}: {}", if skip { "skipped" } else { "error" }, shown(error, verbose));
}

fn predict(a: PredictArgs) -> Result<ExitCode, Fatal> {
    let fmt = if a.json { Format::Json } else { a.format };
    let seg_flags = [("--window", a.window), ("--hop", a.hop), ("--vad-db", a.vad_db), ("--min-speech", a.min_speech)];
    if !a.segments {
        let mut given: Vec<&str> = seg_flags.iter().filter(|(_, v)| v.is_some()).map(|(k, _)| *k).collect();
        if a.no_vad {
            given.push("--no-vad");
        }
        if a.running_norm {
            given.push("--running-norm");
        }
        if !given.is_empty() {
            return usage_error(&format!("{}: only with --segments", given.join(", ")));
        }
    } else {
        if a.no_vad && (a.vad_db.is_some() || a.min_speech.is_some()) {
            return usage_error("--no-vad: cannot be combined with --vad-db / --min-speech");
        }
        if !a.running_norm && (a.running_prior.is_some() || a.running_horizon.is_some() || a.no_running_balance) {
            return usage_error("--running-prior, --running-horizon, --no-running-balance: only with --running-norm");
        }
        return predict_segments(a, fmt);
    }
    let model = load_predicting_model(&a.model)?;
    let mut writer = ResultWriter::new(io::stdout().lock(), fmt, model.labels()).map_err(stdout_err)?;
    let opts = BatchOptions { threads: a.threads.map(|n| n as usize), top_k: a.top_k.map(|k| k as usize) };
    let skip = a.on_error == "skip";
    let mut ood = Vec::new();
    let failed = predict_inputs(&model, &a.inputs, &opts, |r| {
        match &r {
            Outcome::Failed(f) => {
                file_failed(&f.error, skip, a.verbose);
                if skip {
                    return Ok(()); // --on-error skip: the line only, no row
                }
            }
            Outcome::Ok(p) => ood.extend(p.ood),
        }
        writer.write(&r)
    })
    .map_err(stdout_err)?;
    writer.close().map_err(stdout_err)?;
    if let Some(w) = runtime::ood_warning(&ood, model.ood_threshold()) {
        eprintln!("serlaq-rt: {w}");
    }
    Ok(exit_code(failed, skip, &a.inputs))
}

/// `predict --segments`: options checked before anything is written (a bad one: one
/// line, exit 1), then every file segmented and written window by window.
fn predict_segments(a: PredictArgs, fmt: Format) -> Result<ExitCode, Fatal> {
    let model = load_predicting_model(&a.model)?;
    let d = SegmentOptions::default();
    let opts = SegmentOptions {
        window: a.window.unwrap_or(d.window),
        hop: a.hop.unwrap_or(d.hop),
        vad: (!a.no_vad).then(|| {
            let v = Vad::default();
            Vad { threshold_db: a.vad_db.unwrap_or(v.threshold_db), min_speech: a.min_speech.unwrap_or(v.min_speech) }
        }),
        running: a.running_norm.then(|| {
            let r = RunningNorm::default();
            RunningNorm {
                prior: a.running_prior.unwrap_or(r.prior),
                horizon: a.running_horizon.unwrap_or(r.horizon),
                balance: !a.no_running_balance,
            }
        }),
    };
    if let Err(msg) = check_flags(&model, &opts) {
        return usage_error(&msg); // a bad option is a usage error (exit 2), named by its flag
    }
    let mut writer = SegmentWriter::new(io::stdout().lock(), io::stderr(), fmt, model.labels()).map_err(stdout_err)?;
    let skip = a.on_error == "skip";
    let mut ood = Vec::new();
    let r = segment_inputs(&model, &a.inputs, &opts, a.top_k.map(|k| k as usize), |item| {
        match &item {
            SegmentItem::Failed(f) => {
                file_failed(&f.error, skip, a.verbose);
                if skip {
                    return Ok(());
                }
            }
            SegmentItem::Segment(s) => ood.extend(s.ood),
            SegmentItem::Summary(_) => {}
        }
        writer.write(&item)
    });
    // the array is closed whatever stopped the run
    let closed = writer.close();
    let failed = match r {
        Ok(n) => n,
        Err(Stop::Sink(e)) => return Err(stdout_err(e)),
        Err(Stop::Option(msg)) => return Err(Fatal(msg)),
    };
    closed.map_err(stdout_err)?;
    if let Some(w) = runtime::segment_ood_warning(&ood, model.ood_threshold()) {
        eprintln!("serlaq-rt: {w}");
    }
    Ok(exit_code(failed, skip, &a.inputs))
}
