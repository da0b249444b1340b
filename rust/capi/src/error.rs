//! Error codes, the thread-local last error and the guard every entry point runs in.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Success (`SERLAQ_OK`).
pub const OK: i32 = 0;
/// A NULL pointer, a zero length, an index out of range, an option out of bounds.
pub const ERR_ARGUMENT: i32 = -1;
/// The model file or bytes cannot be read or are not a valid `.laq` model.
pub const ERR_MODEL: i32 = -2;
/// The audio cannot be read, decoded or used (format, rate, length, NaN, silence).
pub const ERR_AUDIO: i32 = -3;
/// A stream call out of order or on bad samples (push after flush, NaN in a chunk, too short).
pub const ERR_STREAM: i32 = -4;
/// A bug in serlaq (a caught panic); the message says where.
pub const ERR_INTERNAL: i32 = -5;
/// An adaptation has too little audio yet; the message says how much more it needs, and
/// the adapter takes more clips.
pub const ERR_TOO_LITTLE: i32 = -6;

/// A failed call: its code and its one-line message.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub code: i32,
    pub message: String,
}

impl Error {
    pub fn new(code: i32, message: impl Into<String>) -> Error {
        Error { code, message: message.into() }
    }
    pub fn argument(message: impl Into<String>) -> Error {
        Error::new(ERR_ARGUMENT, message)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

thread_local! {
    static LAST: RefCell<CString> = RefCell::new(CString::default());
    static LAST_CODE: std::cell::Cell<i32> = const { std::cell::Cell::new(OK) };
}

/// One line, no NUL: what C and JavaScript can print as is.
fn one_line(msg: &str) -> CString {
    let clean: String = msg.chars().map(|c| if c == '\n' || c == '\r' || c == '\0' { ' ' } else { c }).collect();
    CString::new(clean.trim_end()).unwrap_or_default()
}

/// Records `e` as this thread's last error and returns its code.
pub fn set_last(e: &Error) -> i32 {
    LAST.with(|l| *l.borrow_mut() = one_line(&e.message));
    LAST_CODE.with(|c| c.set(e.code));
    e.code
}

/// This thread's last error message (empty before the first failure).
pub fn last_message() -> String {
    LAST.with(|l| l.borrow().to_string_lossy().into_owned())
}

/// The code of this thread's last error (`OK` before the first failure).
pub fn last_code() -> i32 {
    LAST_CODE.with(|c| c.get())
}

/// The last error as a C string owned by this thread: valid until the next failing call
/// on the same thread.
pub fn last_ptr() -> *const c_char {
    LAST.with(|l| l.borrow().as_ptr())
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    let what = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("internal error in serlaq (please report): {what}")
}

/// Runs `f` with panics caught; an error (or a panic) is recorded as the last error.
pub fn guard<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, i32> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(set_last(&e)),
        Err(p) => Err(set_last(&Error::new(ERR_INTERNAL, panic_text(&*p)))),
    }
}

/// [`guard`] for calls that return a status: `OK` or the error's code.
pub fn status(f: impl FnOnce() -> Result<(), Error>) -> i32 {
    match guard(f) {
        Ok(()) => OK,
        Err(code) => code,
    }
}
