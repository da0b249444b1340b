//! `serlaq serve`: the serlaq runtime over HTTP and WebSocket, with a web page.
//!
//! One implementation for both entry points (`serlaq-rt serve`, `serlaq serve` from
//! Python through `serlaq._native`): [`run_blocking`] loads the models, binds (loopback by
//! default) and serves until Ctrl-C. Endpoints, limits, errors and the stream protocol:
//! `docs/serve.md`.
//!
//! - [`http`]: the listener (connection limit, head timeout, graceful shutdown).
//! - `app`: routes, state, API key, metrics middleware, bounded body reading.
//! - `predict`: `POST /v1/predict`, `POST /v1/segments`.
//! - `stream`: `GET /v1/stream`, the WebSocket protocol.
//! - `page`: the self-contained page at `/`.

mod app;
mod config;
mod error;
pub mod http;
mod metrics;
mod models;
mod page;
mod predict;
mod stream;

// The result records and their text, the CLI's own source files compiled in (the same
// code, so the server's JSON is the CLI's bytes by construction).
#[allow(dead_code)]
#[path = "../../cli/src/info.rs"]
mod info;
#[allow(dead_code)]
#[path = "../../cli/src/output.rs"]
mod output;
#[allow(dead_code)]
#[path = "../../cli/src/pyjson.rs"]
mod pyjson;
#[allow(dead_code)]
#[path = "../../cli/src/segments.rs"]
mod segments;

pub use config::{check_name, parse_model_arg, Limits, ModelSource, ServerConfig};
pub use error::ApiError;
pub use http::{run_blocking, Server};
