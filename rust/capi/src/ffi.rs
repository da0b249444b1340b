//! The `extern "C"` functions of `include/serlaq.h`. Each one checks its pointers and
//! lengths, runs under [`guard`] (no panic unwinds into C) and reports failures as a
//! negative code plus the thread's last error.
#![allow(non_camel_case_types)]

use crate::abi::{adapt_options, serlaq_adapt_options, serlaq_segment, serlaq_stream_options};
use crate::error::{self, guard, status, Error};
use crate::handle::{AdapterHandle, ModelHandle, StreamHandle};
use crate::ptr::{adapter, boxed, count, free_boxed, model, opt_text, path, slice, stream, write_probs};
use serlaq_core::adapt::AdaptOptions;
use serlaq_core::segments::RunningNorm;
use std::ffi::{c_char, c_int};

pub type serlaq_model = ModelHandle;
pub type serlaq_stream = StreamHandle;
pub type serlaq_adapter = AdapterHandle;

#[no_mangle]
pub extern "C" fn serlaq_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

#[no_mangle]
pub extern "C" fn serlaq_last_error() -> *const c_char {
    error::last_ptr()
}

/// # Safety
/// `path`: NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn serlaq_model_open(path_: *const c_char) -> *mut serlaq_model {
    boxed(guard(|| ModelHandle::open(&path(path_)?)))
}

/// # Safety
/// `data`: NULL or `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn serlaq_model_from_bytes(data: *const u8, len: usize) -> *mut serlaq_model {
    boxed(guard(|| ModelHandle::from_bytes(slice(data, len, "data")?.to_vec())))
}

/// # Safety
/// `m`: NULL or a model from this library, not freed before.
#[no_mangle]
pub unsafe extern "C" fn serlaq_model_free(m: *mut serlaq_model) {
    free_boxed(m)
}

/// # Safety
/// `m`: NULL or a live model.
#[no_mangle]
pub unsafe extern "C" fn serlaq_model_num_labels(m: *const serlaq_model) -> usize {
    guard(|| Ok(model(m)?.num_labels())).unwrap_or(0)
}

/// # Safety
/// `m`: NULL or a live model.
#[no_mangle]
pub unsafe extern "C" fn serlaq_model_label(m: *const serlaq_model, i: usize) -> *const c_char {
    guard(|| Ok(model(m)?.label(i)?.as_ptr())).unwrap_or(std::ptr::null())
}

/// # Safety
/// `m`: NULL or a live model.
#[no_mangle]
pub unsafe extern "C" fn serlaq_model_sample_rate(m: *const serlaq_model) -> u32 {
    guard(|| Ok(model(m)?.sample_rate())).unwrap_or(0)
}

/// # Safety
/// `m`: NULL or a live model.
#[no_mangle]
pub unsafe extern "C" fn serlaq_model_ood_threshold(m: *const serlaq_model) -> f64 {
    guard(|| Ok(model(m)?.ood_threshold())).unwrap_or(0.0)
}

/// An `ood` out-pointer: NULL (not wanted) or aligned for a double.
fn check_ood(ood: *mut f64) -> Result<(), Error> {
    if !ood.is_null() && !(ood as usize).is_multiple_of(std::mem::align_of::<f64>()) {
        return Err(Error::argument("ood is not aligned for a double"));
    }
    Ok(())
}

/// `probs` (checked non-NULL by the caller before predicting) and `ood` (NULL: not wanted)
/// from one prediction; nothing is written unless both pointers are usable.
unsafe fn write_scored(scored: (Vec<f64>, f64), probs: *mut f32, ood: *mut f64) -> Result<(), Error> {
    check_ood(ood)?;
    write_probs(&scored.0, probs)?;
    if let Some(o) = ood.as_mut() {
        *o = scored.1;
    }
    Ok(())
}

/// # Safety
/// `m`: NULL or a live model; `path`: NULL or a NUL-terminated string; `probs`: NULL or
/// room for `serlaq_model_num_labels(m)` floats.
#[no_mangle]
pub unsafe extern "C" fn serlaq_predict_file(m: *const serlaq_model, path_: *const c_char, probs: *mut f32) -> c_int {
    serlaq_predict_file_ood(m, path_, probs, std::ptr::null_mut())
}

/// # Safety
/// As [`serlaq_predict_file`]; `ood`: NULL or a writable double.
#[no_mangle]
pub unsafe extern "C" fn serlaq_predict_file_ood(
    m: *const serlaq_model,
    path_: *const c_char,
    probs: *mut f32,
    ood: *mut f64,
) -> c_int {
    status(|| {
        let m = model(m)?;
        let p = path(path_)?;
        if probs.is_null() {
            return Err(Error::argument("probs is NULL"));
        }
        write_scored(m.predict_file(&p)?, probs, ood)
    })
}

/// # Safety
/// `samples`: NULL or `n` readable floats; the rest as [`serlaq_predict_file`].
#[no_mangle]
pub unsafe extern "C" fn serlaq_predict_pcm(
    m: *const serlaq_model,
    samples: *const f32,
    n: usize,
    sample_rate: u32,
    probs: *mut f32,
) -> c_int {
    serlaq_predict_pcm_ood(m, samples, n, sample_rate, probs, std::ptr::null_mut())
}

/// # Safety
/// As [`serlaq_predict_pcm`]; `ood`: NULL or a writable double.
#[no_mangle]
pub unsafe extern "C" fn serlaq_predict_pcm_ood(
    m: *const serlaq_model,
    samples: *const f32,
    n: usize,
    sample_rate: u32,
    probs: *mut f32,
    ood: *mut f64,
) -> c_int {
    status(|| {
        let m = model(m)?;
        let x = slice(samples, n, "samples")?;
        if probs.is_null() {
            return Err(Error::argument("probs is NULL"));
        }
        write_scored(m.predict_pcm(x, sample_rate)?, probs, ood)
    })
}

/// # Safety
/// `data`: NULL or `len` readable bytes; the rest as [`serlaq_predict_file`].
#[no_mangle]
pub unsafe extern "C" fn serlaq_predict_bytes(
    m: *const serlaq_model,
    data: *const u8,
    len: usize,
    probs: *mut f32,
) -> c_int {
    serlaq_predict_bytes_ood(m, data, len, probs, std::ptr::null_mut())
}

/// # Safety
/// As [`serlaq_predict_bytes`]; `ood`: NULL or a writable double.
#[no_mangle]
pub unsafe extern "C" fn serlaq_predict_bytes_ood(
    m: *const serlaq_model,
    data: *const u8,
    len: usize,
    probs: *mut f32,
    ood: *mut f64,
) -> c_int {
    status(|| {
        let m = model(m)?;
        let d = slice(data, len, "data")?;
        if probs.is_null() {
            return Err(Error::argument("probs is NULL"));
        }
        write_scored(m.predict_bytes(d)?, probs, ood)
    })
}

#[no_mangle]
pub extern "C" fn serlaq_stream_default_options() -> serlaq_stream_options {
    serlaq_stream_options::default()
}

/// # Safety
/// `m`: NULL or a live model; `opts`: NULL (defaults) or a readable options struct.
#[no_mangle]
pub unsafe extern "C" fn serlaq_stream_new(
    m: *const serlaq_model,
    sample_rate: u32,
    opts: *const serlaq_stream_options,
) -> *mut serlaq_stream {
    boxed(guard(|| {
        let m = model(m)?;
        let o = opts.as_ref().copied().unwrap_or_default();
        StreamHandle::new(m, sample_rate, &o.to_core())
    }))
}

/// # Safety
/// `s`: NULL or a live stream.
#[no_mangle]
pub unsafe extern "C" fn serlaq_stream_running_norm(
    s: *mut serlaq_stream,
    prior: f64,
    horizon: f64,
    balance: c_int,
) -> c_int {
    status(|| stream(s)?.set_running(Some(RunningNorm { prior, horizon, balance: balance != 0 })))
}

/// # Safety
/// `s`: NULL or a live stream; `samples`: `n` readable floats, or anything (NULL too) when
/// `n` is 0 (serlaq.h: "n may be 0"; nothing is read).
#[no_mangle]
pub unsafe extern "C" fn serlaq_stream_push(s: *mut serlaq_stream, samples: *const f32, n: usize) -> c_int {
    match guard(|| {
        let s = stream(s)?;
        let x: &[f32] = if n == 0 { &[] } else { slice(samples, n, "samples")? };
        s.push(x)
    }) {
        Ok(k) => c_int::try_from(k).unwrap_or(c_int::MAX),
        Err(code) => code,
    }
}

/// # Safety
/// `s`: NULL or a live stream.
#[no_mangle]
pub unsafe extern "C" fn serlaq_stream_flush(s: *mut serlaq_stream) -> c_int {
    match guard(|| stream(s)?.flush()) {
        Ok(k) => c_int::try_from(k).unwrap_or(c_int::MAX),
        Err(code) => code,
    }
}

/// # Safety
/// `s`: NULL or a live stream; `seg`: NULL or a writable segment; `probs`: NULL (not
/// wanted) or room for the model's `num_labels` floats.
#[no_mangle]
pub unsafe extern "C" fn serlaq_stream_next(s: *mut serlaq_stream, seg: *mut serlaq_segment, probs: *mut f32) -> c_int {
    serlaq_stream_next_ood(s, seg, probs, std::ptr::null_mut())
}

/// # Safety
/// As [`serlaq_stream_next`]; `ood`: NULL or a writable double (NaN for silence).
#[no_mangle]
pub unsafe extern "C" fn serlaq_stream_next_ood(
    s: *mut serlaq_stream,
    seg: *mut serlaq_segment,
    probs: *mut f32,
    ood: *mut f64,
) -> c_int {
    match guard(|| {
        let s = stream(s)?;
        let out = seg.as_mut().ok_or_else(|| Error::argument("segment is NULL"))?;
        check_ood(ood)?; // before the window is taken: a refused call loses nothing
        let Some(next) = s.take_next() else { return Ok(0) };
        *out = serlaq_segment::from_core(&next);
        if !probs.is_null() {
            let zeros = vec![0.0; s.num_labels()];
            write_probs(next.probabilities.as_deref().unwrap_or(&zeros), probs)?;
        }
        if let Some(o) = ood.as_mut() {
            *o = next.ood.unwrap_or(f64::NAN);
        }
        Ok(1)
    }) {
        Ok(k) => k,
        Err(code) => code,
    }
}

/// # Safety
/// `s`: NULL or a stream from this library, not freed before.
#[no_mangle]
pub unsafe extern "C" fn serlaq_stream_free(s: *mut serlaq_stream) {
    free_boxed(s)
}

/// # Safety
/// `m`: NULL or a live model; `path`: NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn serlaq_model_save(m: *const serlaq_model, path_: *const c_char) -> c_int {
    status(|| model(m)?.save(&path(path_)?))
}

#[no_mangle]
pub extern "C" fn serlaq_adapt_default_options() -> serlaq_adapt_options {
    serlaq_adapt_options::default()
}

/// # Safety
/// `m`: NULL or a live model.
#[no_mangle]
pub unsafe extern "C" fn serlaq_adapter_new(m: *const serlaq_model) -> *mut serlaq_adapter {
    boxed(guard(|| Ok(AdapterHandle::new(model(m)?))))
}

/// # Safety
/// `a`: NULL or a live adapter; `path`: NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn serlaq_adapter_add_file(a: *mut serlaq_adapter, path_: *const c_char) -> c_int {
    guard(|| adapter(a)?.add_file(&path(path_)?)).map_or_else(|code| code, count)
}

/// # Safety
/// `a`: NULL or a live adapter; `samples`: NULL or `n` readable floats.
#[no_mangle]
pub unsafe extern "C" fn serlaq_adapter_add_pcm(
    a: *mut serlaq_adapter,
    samples: *const f32,
    n: usize,
    sample_rate: u32,
) -> c_int {
    guard(|| adapter(a)?.add_pcm(slice(samples, n, "samples")?, sample_rate)).map_or_else(|code| code, count)
}

/// # Safety
/// `a`: NULL or a live adapter; `data`: NULL or `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn serlaq_adapter_add_bytes(a: *mut serlaq_adapter, data: *const u8, len: usize) -> c_int {
    guard(|| adapter(a)?.add_bytes(slice(data, len, "data")?)).map_or_else(|code| code, count)
}

/// # Safety
/// `a`: NULL or a live adapter.
#[no_mangle]
pub unsafe extern "C" fn serlaq_adapter_speech_seconds(a: *mut serlaq_adapter) -> f64 {
    guard(|| Ok(adapter(a)?.speech_seconds())).unwrap_or(0.0)
}

/// The core's options from the C struct (NULL: the defaults).
///
/// # Safety
/// `o`: NULL or a readable struct whose strings are NULL or NUL-terminated.
unsafe fn c_adapt_options(o: *const serlaq_adapt_options) -> Result<AdaptOptions, Error> {
    let o = o.as_ref().copied().unwrap_or_default();
    let labels = opt_text(o.labels, "labels")?.unwrap_or_default();
    adapt_options(o.balance, o.std_rule, &labels, opt_text(o.source, "source")?.unwrap_or_default())
}

/// # Safety
/// `a`: NULL or a live adapter; `opts`: NULL (defaults) or a readable options struct;
/// `out`: NULL or a writable model pointer.
#[no_mangle]
pub unsafe extern "C" fn serlaq_adapter_finish(
    a: *mut serlaq_adapter,
    opts: *const serlaq_adapt_options,
    out: *mut *mut serlaq_model,
) -> c_int {
    status(|| {
        let a = adapter(a)?;
        if out.is_null() {
            return Err(Error::argument("out is NULL"));
        }
        if !(out as usize).is_multiple_of(std::mem::align_of::<*mut serlaq_model>()) {
            return Err(Error::argument("out is not aligned for a pointer"));
        }
        let made = a.finish(&c_adapt_options(opts)?)?;
        *out = Box::into_raw(Box::new(made));
        Ok(())
    })
}

/// # Safety
/// `a`: NULL or an adapter from this library, not freed before.
#[no_mangle]
pub unsafe extern "C" fn serlaq_adapter_free(a: *mut serlaq_adapter) {
    free_boxed(a)
}
