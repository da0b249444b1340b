//! The adapter (`serlaq.h`'s `serlaq_adapter_*`) for JavaScript, in a module built with the
//! `adapt` feature (`make wasm-adapt`): a page adapts its model to the room its microphone
//! is in from clips it recorded, and gets the adapted `.laq` bytes to keep. Off in the
//! default module, which it would take past its size budget (docs/deploy.md).

use serlaq::abi::adapt_options;
use serlaq::error::{guard, Error};
use serlaq::handle::{AdapterHandle, ModelHandle};
use serlaq::ptr::{adapter, boxed, count, free_boxed, model, slice};
use serlaq_core::adapt::AdaptOptions;

/// # Safety
/// `m`: NULL or a live model.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_adapter_new(m: *const ModelHandle) -> *mut AdapterHandle {
    boxed(guard(|| Ok(AdapterHandle::new(model(m)?))))
}

/// Mono samples at `sample_rate` Hz as one clip; returns the clips gathered (< 0: an
/// error, and this clip is left out).
///
/// # Safety
/// `a`: NULL or a live adapter; `samples`: `n` floats.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_adapter_add_pcm(
    a: *mut AdapterHandle,
    samples: *const f32,
    n: usize,
    sample_rate: u32,
) -> i32 {
    guard(|| adapter(a)?.add_pcm(slice(samples, n, "samples")?, sample_rate)).map_or_else(|code| code, count)
}

/// An encoded audio file as one clip (or, longer than 30 s, its speech windows).
///
/// # Safety
/// `a`: NULL or a live adapter; `data`: `len` bytes.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_adapter_add_bytes(a: *mut AdapterHandle, data: *const u8, len: usize) -> i32 {
    guard(|| adapter(a)?.add_bytes(slice(data, len, "data")?)).map_or_else(|code| code, count)
}

/// # Safety
/// `a`: NULL or a live adapter.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_adapter_speech_seconds(a: *mut AdapterHandle) -> f64 {
    guard(|| Ok(adapter(a)?.speech_seconds())).unwrap_or(0.0)
}

/// UTF-8 text from JavaScript (`len` 0: empty, whatever `p` is).
unsafe fn text(p: *const u8, len: usize, what: &str) -> Result<String, Error> {
    if len == 0 {
        return Ok(String::new());
    }
    std::str::from_utf8(slice(p, len, what)?)
        .map(str::to_string)
        .map_err(|_| Error::argument(format!("{what} is not UTF-8")))
}

/// The adapted model, or NULL (the last error: too little audio, with the clips kept, or a
/// bad option). `labels` is comma-separated (empty: all of the model's); `source` empty:
/// the clips' names; `created` is the record's ISO-8601 UTC time to the second (the module
/// has no clock), checked with the C library's options in `AdapterHandle::finish`: a
/// malformed one is an argument error naming it.
///
/// # Safety
/// `a`: NULL or a live adapter; each text pointer: its length in readable bytes.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn serlaq_adapter_finish(
    a: *mut AdapterHandle,
    balance: i32,
    std: i32,
    labels: *const u8,
    labels_len: usize,
    source: *const u8,
    source_len: usize,
    created: *const u8,
    created_len: usize,
) -> *mut ModelHandle {
    boxed(guard(|| {
        let a = adapter(a)?;
        // empty or malformed: refused by `AdapterHandle::finish`, naming `created`
        let created = text(created, created_len, "created")?;
        let labels = text(labels, labels_len, "labels")?;
        let opts = adapt_options(balance, std, &labels, text(source, source_len, "source")?)?;
        a.finish(&AdaptOptions { created: Some(created), ..opts })
    }))
}

/// # Safety
/// `a`: NULL or a live adapter, not freed before.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_adapter_free(a: *mut AdapterHandle) {
    free_boxed(a)
}

/// Where a model's `.laq` bytes start in module memory (an adapted model's, to keep).
///
/// # Safety
/// `m`: NULL or a live model.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_model_bytes_ptr(m: *const ModelHandle) -> *const u8 {
    guard(|| Ok(model(m)?.bytes().as_ptr())).unwrap_or(std::ptr::null())
}

/// # Safety
/// `m`: NULL or a live model.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub unsafe extern "C" fn serlaq_model_bytes_len(m: *const ModelHandle) -> usize {
    guard(|| Ok(model(m)?.bytes().len())).unwrap_or(0)
}
