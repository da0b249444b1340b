//! Checks at the boundary: raw pointers and lengths from C or JavaScript become Rust
//! references and slices only after NULL, zero length, size and alignment are checked.
//! Nothing here can check that a non-NULL pointer is live: that is the caller's contract.

use crate::error::Error;
use crate::handle::{AdapterHandle, ModelHandle, StreamHandle};
use std::ffi::{c_char, CStr};
use std::path::PathBuf;

/// The largest element count a slice of `T` may have (Rust's `isize::MAX` bytes rule).
pub fn max_len<T>() -> usize {
    isize::MAX as usize / std::mem::size_of::<T>().max(1)
}

/// `(ptr, n)` from C as a slice: NULL, zero, misaligned and oversized are argument errors.
///
/// # Safety
/// A non-NULL `ptr` points to `n` readable `T`s that stay valid and unchanged for `'a`.
pub unsafe fn slice<'a, T>(ptr: *const T, n: usize, what: &str) -> Result<&'a [T], Error> {
    if ptr.is_null() {
        return Err(Error::argument(format!("{what} is NULL")));
    }
    if n == 0 {
        return Err(Error::argument(format!("{what}: length is 0")));
    }
    if n > max_len::<T>() {
        return Err(Error::argument(format!("{what}: length {n} is too large")));
    }
    if !(ptr as usize).is_multiple_of(std::mem::align_of::<T>()) {
        return Err(Error::argument(format!("{what} is not aligned for its type")));
    }
    Ok(std::slice::from_raw_parts(ptr, n))
}

/// A model handle from C (NULL is an argument error).
///
/// # Safety
/// `m`: NULL or a live handle from this library, not freed during `'a`.
pub unsafe fn model<'a>(m: *const ModelHandle) -> Result<&'a ModelHandle, Error> {
    m.as_ref().ok_or_else(|| Error::argument("model is NULL"))
}

/// A stream handle from C (NULL is an argument error).
///
/// # Safety
/// `s`: NULL or a live handle from this library, used by no one else during `'a`.
pub unsafe fn stream<'a>(s: *mut StreamHandle) -> Result<&'a mut StreamHandle, Error> {
    s.as_mut().ok_or_else(|| Error::argument("stream is NULL"))
}

/// An adapter handle from C (NULL is an argument error).
///
/// # Safety
/// `a`: NULL or a live handle from this library, used by no one else during `'a`.
pub unsafe fn adapter<'a>(a: *mut AdapterHandle) -> Result<&'a mut AdapterHandle, Error> {
    a.as_mut().ok_or_else(|| Error::argument("adapter is NULL"))
}

/// An optional text argument: NULL is `None`; otherwise UTF-8 (else an argument error
/// naming `what`).
///
/// # Safety
/// `p`: NULL or a readable NUL-terminated string.
pub unsafe fn opt_text(p: *const c_char, what: &str) -> Result<Option<String>, Error> {
    if p.is_null() {
        return Ok(None);
    }
    CStr::from_ptr(p).to_str().map(|s| Some(s.to_string())).map_err(|_| Error::argument(format!("{what} is not UTF-8")))
}

/// A path from C: a NUL-terminated string (NULL and empty are argument errors).
///
/// # Safety
/// `p`: NULL or a readable NUL-terminated string.
pub unsafe fn path(p: *const c_char) -> Result<PathBuf, Error> {
    if p.is_null() {
        return Err(Error::argument("path is NULL"));
    }
    let bytes = CStr::from_ptr(p).to_bytes();
    if bytes.is_empty() {
        return Err(Error::argument("path is empty"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
    }
    #[cfg(not(unix))]
    {
        std::str::from_utf8(bytes).map(PathBuf::from).map_err(|_| Error::argument("path is not UTF-8"))
    }
}

/// A probability as the caller's element type (`float` in C, `double` for JavaScript).
pub trait Prob: Copy {
    fn from_f64(v: f64) -> Self;
}
impl Prob for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}
impl Prob for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
}

/// Writes `p` into the caller's `num_labels` elements.
///
/// # Safety
/// `out`: NULL or room for `p.len()` writable `T`s.
pub unsafe fn write_probs<T: Prob>(p: &[f64], out: *mut T) -> Result<(), Error> {
    if out.is_null() {
        return Err(Error::argument("probs is NULL"));
    }
    if !(out as usize).is_multiple_of(std::mem::align_of::<T>()) {
        return Err(Error::argument("probs is not aligned for its type"));
    }
    let dst = std::slice::from_raw_parts_mut(out, p.len());
    for (d, &v) in dst.iter_mut().zip(p) {
        *d = T::from_f64(v);
    }
    Ok(())
}

/// Frees a handle from [`boxed`]; NULL is ignored, a panic in its drop caught.
///
/// # Safety
/// `p`: NULL or a pointer from [`boxed`], not freed before.
pub unsafe fn free_boxed<T>(p: *mut T) {
    if !p.is_null() {
        let _ = crate::error::guard(|| {
            drop(Box::from_raw(p));
            Ok(())
        });
    }
}

/// A count as a C int (the adapter's clips are bounded far below `INT_MAX`).
pub fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub fn boxed<T>(r: Result<T, i32>) -> *mut T {
    r.map_or(std::ptr::null_mut(), |v| Box::into_raw(Box::new(v)))
}
