//! serlaq's C ABI: `libserlaq.so` / `libserlaq.a` and `include/serlaq.h`, a thin transport
//! over `serlaq-core` (load a `.laq` model, predict files, PCM or encoded bytes, cut a
//! live stream into windows).
//!
//! - [`error`]: the error codes, the thread-local last error and the panic guard.
//! - [`handle`]: the model and stream handles (shared with the WebAssembly module).
//! - [`ptr`]: pointer and length checks at the boundary.
//! - [`abi`]: the `#[repr(C)]` structs of the header.
//! - `ffi` (feature `c-api`, on by default): the `extern "C"` functions of the header.
//!
//! Thread safety: a model is immutable once loaded; any number of threads may predict
//! with one model at once. A stream is used by one thread at a time (it may move between
//! threads). The last error is per thread.

pub mod abi;
pub mod error;
pub mod handle;
pub mod ptr;

#[cfg(feature = "c-api")]
pub mod ffi;
