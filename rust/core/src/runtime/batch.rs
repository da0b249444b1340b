//! Batch prediction over files: the inputs expanded (`files.rs`), each file predicted on
//! a pool of threads, results handed on in input order as soon as their turn comes; a
//! file that fails (or panics) is a [`Failure`] naming it, and the others still run.

use super::files::{find_audio_files, resolve_threads};
use super::records::{Failure, Outcome, Prediction};
use super::source::panic_text;
use crate::model::{Model, ModelError};
use std::ffi::OsString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

/// What a batch is asked for.
#[derive(Debug, Clone, Default)]
pub struct BatchOptions {
    /// Threads (None: every core; never more than the files).
    pub threads: Option<usize>,
    /// Also rank the K most probable labels.
    pub top_k: Option<usize>,
}

/// One file -> class probabilities, or the one line naming the file and what is wrong.
pub fn predict_one(model: &Model, path: &Path) -> Result<Vec<f64>, String> {
    let name = crate::audio::source_name(path);
    match catch_unwind(AssertUnwindSafe(|| model.predict_file(path))) {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(ModelError::Audio(e))) => Err(e.to_string()),
        Ok(Err(e)) => Err(format!("{name}: {e}")),
        Err(p) => Err(format!("{name}: {}", panic_text(&*p))),
    }
}

/// One file -> class probabilities and its out-of-domain score, or the one line naming
/// the file and what is wrong (the features are computed once for both).
pub fn predict_scored(model: &Model, path: &Path) -> Result<(Vec<f64>, f64), String> {
    let name = crate::audio::source_name(path);
    let run = || -> Result<(Vec<f64>, f64), ModelError> { model.predict_features(&model.features_file(path)?) };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(p)) => Ok(p),
        Ok(Err(ModelError::Audio(e))) => Err(e.to_string()),
        Ok(Err(e)) => Err(format!("{name}: {e}")),
        Err(p) => Err(format!("{name}: {}", panic_text(&*p))),
    }
}

/// One file -> its [`Outcome`] (a prediction carries the clip's out-of-domain score).
pub fn outcome(model: &Model, path: &Path, top_k: Option<usize>) -> Outcome {
    let shown = path.display().to_string();
    match predict_scored(model, path) {
        Ok((p, ood)) => Outcome::Ok(Prediction::new(model.labels(), &p, Some(shown), top_k).with_ood(ood)),
        Err(error) => Outcome::Failed(Failure { path: shown, error }),
    }
}

/// Predicts `files` on `threads` threads, calling `emit(i, outcome)` in input order as
/// results come. An `emit` error stops the batch (the threads finish their file and
/// stop) and is returned.
pub fn predict_each<E>(
    model: &Model,
    files: &[PathBuf],
    threads: usize,
    top_k: Option<usize>,
    mut emit: impl FnMut(usize, Outcome) -> Result<(), E>,
) -> Result<(), E> {
    if threads <= 1 || files.len() <= 1 {
        for (i, f) in files.iter().enumerate() {
            emit(i, outcome(model, f, top_k))?;
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
                if i >= files.len() || tx.send((i, outcome(model, &files[i], top_k))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        // results are small (one probability per label): hold early ones until their turn
        let mut pending: Vec<Option<Outcome>> = vec![None; files.len()];
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

/// The whole `predict` command: `inputs` (files and directories) expanded, then first
/// the inputs that give no file, then every file's outcome in order, each handed to
/// `emit` as it comes. Returns how many failed.
pub fn predict_inputs<E>(
    model: &Model,
    inputs: &[OsString],
    opts: &BatchOptions,
    mut emit: impl FnMut(Outcome) -> Result<(), E>,
) -> Result<usize, E> {
    let (found, input_errors) = find_audio_files(inputs);
    let mut failed = 0;
    let mut count = |r: Outcome| {
        if matches!(r, Outcome::Failed(_)) {
            failed += 1;
        }
        emit(r)
    };
    for e in input_errors {
        count(Outcome::Failed(Failure { path: e.path, error: e.message }))?;
    }
    let threads = resolve_threads(opts.threads, found.len());
    predict_each(model, &found, threads, opts.top_k, |_, r| count(r))?;
    Ok(failed)
}
