//! `serlaq-rt serve`: the arguments of the server (`rust/server`), which does the rest.

use clap::Args;
use serlaq_server::{parse_model_arg, Limits, ModelSource, ServerConfig, MAX_THREADS};
use std::time::Duration;

/// Serve models over HTTP and WebSocket, with a live page at `/` (microphone or file).
///
/// Endpoints: POST /v1/predict, POST /v1/segments, POST /v1/adapt, GET /v1/stream (WebSocket),
/// GET /v1/models, /healthz, /metrics; see docs/serve.md. Binds to 127.0.0.1 unless told
/// otherwise; set an API key before binding anywhere else.
#[derive(Args)]
#[command(
    after_help = "Example:\n  serlaq-rt serve --model emo=model.laq --port 8000\n  curl --data-binary @clip.wav http://127.0.0.1:8000/v1/predict"
)]
pub struct ServeArgs {
    /// a model to serve, NAME=PATH (repeat for several; the first is the default)
    #[arg(long = "model", value_name = "NAME=PATH", required = true)]
    pub models: Vec<String>,
    /// address to bind
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// port (0: any free port)
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// require this key (Authorization: Bearer KEY / X-API-Key) on /v1/* and /metrics
    #[arg(long = "api-key", env = "SERLAQ_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// allow cross-origin requests from this origin (repeat; "*" for any); off by default
    #[arg(long = "cors", value_name = "ORIGIN")]
    pub cors: Vec<String>,
    /// native threads (default: one per core; at most 1024)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=MAX_THREADS as u64))]
    pub threads: Option<u64>,
    /// largest request body in bytes
    #[arg(long = "max-body", value_name = "BYTES", default_value_t = Limits::default().max_body_bytes)]
    pub max_body: usize,
    /// longest audio per file or stream, in seconds
    #[arg(long = "max-audio-seconds", value_name = "S", default_value_t = Limits::default().max_audio_seconds)]
    pub max_audio_seconds: f64,
    /// files in one multipart request
    #[arg(long = "max-files", value_name = "N", default_value_t = Limits::default().max_files)]
    pub max_files: usize,
    /// audio requests worked on at once (more wait up to --read-timeout, then 503)
    #[arg(long = "max-concurrent", value_name = "N", default_value_t = Limits::default().max_concurrent)]
    pub max_concurrent: usize,
    /// WebSocket streams open at once
    #[arg(long = "max-streams", value_name = "N", default_value_t = Limits::default().max_streams)]
    pub max_streams: usize,
    /// open connections
    #[arg(long = "max-connections", value_name = "N", default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// seconds to send a request's head or body (and to wait for a work slot)
    #[arg(long = "read-timeout", value_name = "S", default_value_t = Limits::default().read_timeout.as_secs_f64())]
    pub read_timeout: f64,
    /// seconds a WebSocket may stay silent
    #[arg(long = "idle-timeout", value_name = "S", default_value_t = Limits::default().idle_timeout.as_secs_f64())]
    pub idle_timeout: f64,
    /// adapted models POST /v1/adapt?serve=NAME may add, kept in memory until the server
    /// stops (0: none)
    #[arg(long = "max-adapted", value_name = "N", default_value_t = Limits::default().max_adapted)]
    pub max_adapted: usize,
}

fn seconds(flag: &str, v: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{flag}: {v} is not a positive number of seconds"))
}

impl ServeArgs {
    pub fn config(&self) -> Result<ServerConfig, String> {
        let mut models = Vec::new();
        for m in &self.models {
            let (name, path) = parse_model_arg(m)?;
            models.push((name, ModelSource::from_arg(path)));
        }
        Ok(ServerConfig {
            models,
            host: self.host.clone(),
            port: self.port,
            api_key: self.api_key.clone(),
            cors: self.cors.clone(),
            threads: self.threads.map_or(0, |n| n as usize),
            limits: Limits {
                max_body_bytes: self.max_body,
                max_audio_seconds: self.max_audio_seconds,
                max_files: self.max_files,
                max_concurrent: self.max_concurrent,
                max_streams: self.max_streams,
                max_connections: self.max_connections,
                read_timeout: seconds("--read-timeout", self.read_timeout)?,
                idle_timeout: seconds("--idle-timeout", self.idle_timeout)?,
                max_adapted: self.max_adapted,
                ..Limits::default()
            },
        })
    }
}

pub fn serve(a: ServeArgs) -> Result<(), String> {
    let config = a.config()?;
    serlaq_server::run_blocking(&config, |line| eprintln!("serlaq-rt: {line}"))
}
