//! `serlaq serve`: the serlaq runtime over HTTP and WebSocket, with a web page.
//!
//! One implementation for both entry points (`serlaq-rt serve`, `serlaq serve` from
//! Python through `serlaq._native`): [`run_blocking`] loads the models, binds (loopback by
//! default) and serves until Ctrl-C. Endpoints, limits, errors and the stream protocol:
//! `docs/serve.md`.
//!
//! - [`http`]: the listener (connection limit, head timeout, graceful shutdown).
//! - `state`: models, limits, API key, metrics, concurrency slots, bounded body reading.
//! - `app`: routes, API key and metrics middleware.
//! - `predict`: `POST /v1/predict`, `POST /v1/segments`.
//! - `adapt`: `POST /v1/adapt`, the adapted model's file from uploaded clips.
//! - `stream`: `GET /v1/stream`, the WebSocket protocol.
//! - `page`: the self-contained page at `/`.

mod adapt;
mod app;
mod config;
mod error;
pub mod http;
mod metrics;
mod models;
mod page;
mod predict;
mod state;
mod stream;

pub use config::{check_name, parse_model_arg, Limits, ServerConfig, MAX_THREADS};
pub use error::ApiError;
pub use http::{run_blocking, Server};
pub use serlaq_core::runtime::ModelSource;
