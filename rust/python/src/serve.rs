//! `serlaq._native.serve`: the Rust server (`rust/server`) run from Python with the GIL
//! released, so `pip install serlaq` is enough to serve (no Rust toolchain, no Python in
//! the request path). Returns when Ctrl-C or SIGTERM stops the server.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use serlaq_server::{check_name, Limits, ModelSource, ServerConfig};
use std::path::PathBuf;
use std::time::Duration;

fn seconds(what: &str, v: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| PyValueError::new_err(format!("{what}: {v} is not a positive number of seconds")))
}

/// models: [(name, path)]; the limits as `serlaq-rt serve` takes them (docs/serve.md).
#[pyfunction]
#[pyo3(signature = (models, host, port, api_key=None, cors=Vec::new(), threads=0, max_body=None, max_audio_seconds=None,
    max_files=None, max_concurrent=None, max_streams=None, max_connections=None, read_timeout=None, idle_timeout=None, max_adapted=None))]
#[allow(clippy::too_many_arguments)]
pub fn serve(
    py: Python<'_>,
    models: Vec<(String, PathBuf)>,
    host: String,
    port: u16,
    api_key: Option<String>,
    cors: Vec<String>,
    threads: usize,
    max_body: Option<usize>,
    max_audio_seconds: Option<f64>,
    max_files: Option<usize>,
    max_concurrent: Option<usize>,
    max_streams: Option<usize>,
    max_connections: Option<usize>,
    read_timeout: Option<f64>,
    idle_timeout: Option<f64>,
    max_adapted: Option<usize>,
) -> PyResult<()> {
    let d = Limits::default();
    let mut named = Vec::new();
    for (name, path) in models {
        check_name(&name).map_err(PyValueError::new_err)?;
        named.push((name, ModelSource::from_arg(path)));
    }
    let config = ServerConfig {
        models: named,
        host,
        port,
        api_key,
        cors,
        threads,
        limits: Limits {
            max_body_bytes: max_body.unwrap_or(d.max_body_bytes),
            max_audio_seconds: max_audio_seconds.unwrap_or(d.max_audio_seconds),
            max_files: max_files.unwrap_or(d.max_files),
            max_concurrent: max_concurrent.unwrap_or(d.max_concurrent),
            max_streams: max_streams.unwrap_or(d.max_streams),
            max_connections: max_connections.unwrap_or(d.max_connections),
            read_timeout: read_timeout.map_or(Ok(d.read_timeout), |v| seconds("read_timeout", v))?,
            idle_timeout: idle_timeout.map_or(Ok(d.idle_timeout), |v| seconds("idle_timeout", v))?,
            max_adapted: max_adapted.unwrap_or(d.max_adapted),
            ..d
        },
    };
    py.detach(|| serlaq_server::run_blocking(&config, |line| eprintln!("serlaq: {line}")))
        .map_err(PyValueError::new_err)
}
