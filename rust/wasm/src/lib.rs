//! The WebAssembly module behind `serlaq.js`: the handle layer of `serlaq-capi` exported
//! for JavaScript. Differences from `serlaq.h`: no file system (models and audio come as
//! bytes); results are the runtime facade's records as JSON (the bytes `serlaq-rt
//! --format jsonl` prints, so JavaScript gets the native numbers to the last digit), left
//! in an output buffer read with [`serlaq_out_ptr`] / [`serlaq_out_len`]; stream options
//! are plain arguments; memory for inputs is taken with [`serlaq_alloc`] / given back
//! with [`serlaq_dealloc`]. Built with `panic = "abort"`: a panic traps
//! (`WebAssembly.RuntimeError`); the panic hook first stores its message as the last
//! error, and `serlaq.js` reloads the module after a trap.
//!
//! The exports take their plain names on wasm32 only: several share a name with the C
//! library's (`serlaq_model_free`, `serlaq_stream_push`, ...), and a native build of the
//! whole workspace (`cargo test --workspace`, clippy) links both crates into one binary.

#[cfg(feature = "adapt")]
pub mod adapt;

use serlaq::abi::serlaq_stream_options;
use serlaq::error::{self, guard, status, Error, ERR_INTERNAL};
use serlaq::handle::{ModelHandle, StreamHandle};
use serlaq::ptr::{boxed, model, slice, stream, write_probs};
use serlaq_core::runtime::json::to_line;
use serlaq_core::runtime::{Prediction, SegmentRecord};
use serlaq_core::segments::RunningNorm;
use std::alloc::{alloc, dealloc, Layout};
use std::cell::RefCell;
use std::ffi::c_char;

thread_local! {
    /// The JSON of the last result (a prediction, or the windows a stream call finished).
    static OUT: RefCell<String> = const { RefCell::new(String::new()) };
}

fn set_out(json: String) {
    OUT.with(|o| *o.borrow_mut() = json);
}

/// Where the last result's JSON (UTF-8) starts in memory.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub extern "C" fn serlaq_out_ptr() -> *const u8 {
    OUT.with(|o| o.borrow().as_ptr())
}

/// Its length in bytes.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub extern "C" fn serlaq_out_len() -> usize {
    OUT.with(|o| o.borrow().len())
}

fn prediction(m: &ModelHandle, (proba, ood): (Vec<f64>, f64)) {
    set_out(to_line(&Prediction::new(m.model().labels(), &proba, None, None).with_ood(ood)));
}

/// Alignment of every buffer handed to JavaScript (enough for f64 and the segment struct).
const ALIGN: usize = 8;

/// `n` bytes of module memory for an input or output (NULL for 0 or too much).
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub extern "C" fn serlaq_alloc(n: usize) -> *mut u8 {
    match Layout::from_size_align(n, ALIGN) {
        Ok(l) if n > 0 => unsafe { alloc(l) },
        _ => std::ptr::null_mut(),
    }
}

/// # Safety
/// `p`: NULL or a pointer from `serlaq_alloc(n)` with the same `n`, not freed before.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_dealloc(p: *mut u8, n: usize) {
    if let (false, Ok(l)) = (p.is_null(), Layout::from_size_align(n, ALIGN)) {
        dealloc(p, l)
    }
}

/// Records a panic's message as the last error before the trap.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub extern "C" fn serlaq_init() {
    std::panic::set_hook(Box::new(|info| {
        error::set_last(&Error::new(ERR_INTERNAL, format!("internal error in serlaq (please report): {info}")));
    }));
}

#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub extern "C" fn serlaq_last_error() -> *const c_char {
    error::last_ptr()
}

/// The code of the last error (for calls that return a handle, NULL on failure).
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub extern "C" fn serlaq_last_error_code() -> i32 {
    error::last_code()
}

/// # Safety
/// `data`: NULL or `len` readable bytes.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_model_from_bytes(data: *const u8, len: usize) -> *mut ModelHandle {
    boxed(guard(|| ModelHandle::from_bytes(slice(data, len, "data")?.to_vec())))
}

/// # Safety
/// `m`: NULL or a live model.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_model_free(m: *mut ModelHandle) {
    if !m.is_null() {
        drop(Box::from_raw(m));
    }
}

/// # Safety
/// `m`: NULL or a live model.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_model_num_labels(m: *const ModelHandle) -> usize {
    guard(|| Ok(model(m)?.num_labels())).unwrap_or(0)
}

/// # Safety
/// `m`: NULL or a live model.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_model_label(m: *const ModelHandle, i: usize) -> *const c_char {
    guard(|| Ok(model(m)?.label(i)?.as_ptr())).unwrap_or(std::ptr::null())
}

/// # Safety
/// `m`: NULL or a live model.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_model_sample_rate(m: *const ModelHandle) -> u32 {
    guard(|| Ok(model(m)?.sample_rate())).unwrap_or(0)
}

/// The out-of-domain threshold (`serlaq.h`'s `serlaq_model_ood_threshold`): a clip or
/// window whose `ood` is above it lies outside the model's training data; 0 for NULL.
///
/// # Safety
/// `m`: NULL or a live model.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_model_ood_threshold(m: *const ModelHandle) -> f64 {
    guard(|| Ok(model(m)?.ood_threshold())).unwrap_or(0.0)
}

/// Mono samples at `sample_rate` Hz -> the prediction record's JSON in the output buffer.
///
/// # Safety
/// `samples`: `n` floats.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_predict_pcm(
    m: *const ModelHandle,
    samples: *const f32,
    n: usize,
    sample_rate: u32,
) -> i32 {
    status(|| {
        let m = model(m)?;
        prediction(m, m.predict_pcm(slice(samples, n, "samples")?, sample_rate)?);
        Ok(())
    })
}

/// An encoded audio file -> the prediction record's JSON in the output buffer.
///
/// # Safety
/// `data`: `len` bytes.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_predict_bytes(m: *const ModelHandle, data: *const u8, len: usize) -> i32 {
    status(|| {
        let m = model(m)?;
        prediction(m, m.predict_bytes(slice(data, len, "data")?)?);
        Ok(())
    })
}

/// # Safety
/// `m`: NULL or a live model. `vad` 0 turns the voice-activity gate off.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_stream_new(
    m: *const ModelHandle,
    sample_rate: u32,
    window: f64,
    hop: f64,
    vad: i32,
    vad_db: f64,
    min_speech: f64,
) -> *mut StreamHandle {
    let o = serlaq_stream_options { window, hop, vad, vad_db, min_speech };
    boxed(guard(|| StreamHandle::new(model(m)?, sample_rate, &o.to_core())))
}

/// Turns running normalisation on for a stream not pushed to yet (`serlaq.h`'s
/// `serlaq_stream_running_norm`).
///
/// # Safety
/// `s`: NULL or a live stream.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_stream_running_norm(
    s: *mut StreamHandle,
    prior: f64,
    horizon: f64,
    balance: i32,
) -> i32 {
    status(|| stream(s)?.set_running(Some(RunningNorm { prior, horizon, balance: balance != 0 })))
}

/// Stream defaults, written to `out` (7 doubles: window, hop, vad (1), vad_db,
/// min_speech, running prior, running horizon).
///
/// # Safety
/// `out`: room for 7 doubles.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_stream_defaults(out: *mut f64) -> i32 {
    let d = serlaq_stream_options::default();
    let r = RunningNorm::default();
    status(|| write_probs(&[d.window, d.hop, f64::from(d.vad), d.vad_db, d.min_speech, r.prior, r.horizon], out))
}

/// The windows a stream call finished, as a JSON list of segment records in the output
/// buffer; returns how many (or < 0: an error).
fn windows(s: &mut StreamHandle, r: Result<usize, Error>) -> Result<i32, Error> {
    let n = r?;
    let labels = s.labels().to_vec();
    let records: Vec<SegmentRecord> =
        std::iter::from_fn(|| s.take_next()).map(|w| SegmentRecord::new(&labels, &w, None, None)).collect();
    set_out(to_line(&records));
    Ok(i32::try_from(n).unwrap_or(i32::MAX))
}

/// # Safety
/// `s`: a live stream; `samples`: `n` floats (`n` may be 0).
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_stream_push(s: *mut StreamHandle, samples: *const f32, n: usize) -> i32 {
    guard(|| {
        let s = stream(s)?;
        let x: &[f32] = if n == 0 { &[] } else { slice(samples, n, "samples")? };
        let r = s.push(x);
        windows(s, r)
    })
    .unwrap_or_else(|code| code)
}

/// # Safety
/// `s`: a live stream.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_stream_flush(s: *mut StreamHandle) -> i32 {
    guard(|| {
        let s = stream(s)?;
        let r = s.flush();
        windows(s, r)
    })
    .unwrap_or_else(|code| code)
}

/// # Safety
/// `s`: NULL or a live stream.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_stream_free(s: *mut StreamHandle) {
    if !s.is_null() {
        drop(Box::from_raw(s));
    }
}
