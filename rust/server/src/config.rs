//! What `serve` is told: models, address, key, CORS origins and the limits (with their
//! documented defaults, `docs/serve.md`).

use serlaq_core::runtime::ModelSource;
use std::path::PathBuf;
use std::time::Duration;

/// Every bound the server enforces; each answers with the 4xx/503 `docs/serve.md` lists.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest request body (413 `body too large`).
    pub max_body_bytes: usize,
    /// Longest audio per file or stream, in seconds (413 `audio too long`; a stream gets an
    /// error message and is closed).
    pub max_audio_seconds: f64,
    /// Files in one multipart request (413 `too many files`).
    pub max_files: usize,
    /// Audio requests (predict, segments) worked on at once; more wait for a slot for up to
    /// `read_timeout`, then get 503 `busy`. Bounds memory: at most this many bodies are held.
    pub max_concurrent: usize,
    /// WebSocket streams open at once (503 `busy` before the upgrade).
    pub max_streams: usize,
    /// Open TCP connections; more are closed at accept.
    pub max_connections: usize,
    /// Time to send the request head, to send the whole body, or to wait for a work slot
    /// (the connection closed, 408 `body timeout`, 503 `busy`).
    pub read_timeout: Duration,
    /// A WebSocket silent this long gets an `idle timeout` error and is closed.
    pub idle_timeout: Duration,
    /// Largest WebSocket message (larger: closed with code 1009).
    pub max_message_bytes: usize,
    /// Adapted models `POST /v1/adapt?serve=NAME` may add, held in memory until the server
    /// stops (409 `too many adapted models` beyond; 0: none, the server keeps nothing).
    pub max_adapted: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 32 << 20,
            max_audio_seconds: 600.0,
            max_files: 64,
            max_concurrent: 64,
            max_streams: 256,
            max_connections: 1024,
            read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            max_message_bytes: 1 << 20,
            max_adapted: 16,
        }
    }
}

/// The most native threads a server starts: each has its own stack, and a number beyond
/// any machine's cores is a typo, not a wish (`--threads 4294967296` once asked for 32 GiB).
pub const MAX_THREADS: usize = 1024;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `(name, source)`, served in this order; the first is the default model.
    pub models: Vec<(String, ModelSource)>,
    pub host: String,
    pub port: u16,
    /// Required as `Authorization: Bearer KEY` / `X-API-Key: KEY` (or `?api_key=` on the
    /// WebSocket) on every `/v1/*` and `/metrics` request when set.
    pub api_key: Option<String>,
    /// Origins allowed by CORS (`*`: any); empty: no CORS headers (browsers block
    /// cross-origin reads).
    pub cors: Vec<String>,
    /// Native threads for the audio work (0: one per core).
    pub threads: usize,
    pub limits: Limits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            models: Vec::new(),
            host: "127.0.0.1".into(),
            port: 8000,
            api_key: None,
            cors: Vec::new(),
            threads: 0,
            limits: Limits::default(),
        }
    }
}

/// `NAME=PATH` as `--model` takes it; a bare `PATH` is named after its file stem.
pub fn parse_model_arg(arg: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = match arg.split_once('=') {
        Some((n, p)) => (n.to_string(), PathBuf::from(p)),
        None => {
            let p = PathBuf::from(arg);
            let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            (stem, p)
        }
    };
    check_name(&name).map_err(|e| format!("--model {arg}: {e}"))?;
    if path.as_os_str().is_empty() {
        return Err(format!("--model {arg}: no path after '='"));
    }
    Ok((name, path))
}

/// Model names travel in URLs and JSON: `[A-Za-z0-9._-]{1,64}`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("model name must be 1-64 characters, got {}", name.len()));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(format!("model name {name:?}: character {c:?} not allowed (letters, digits, . _ -)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_args() {
        assert_eq!(parse_model_arg("emo=/m/a.laq").unwrap(), ("emo".into(), PathBuf::from("/m/a.laq")));
        assert_eq!(parse_model_arg("/m/b.laq").unwrap(), ("b".into(), PathBuf::from("/m/b.laq")));
        assert!(parse_model_arg("a b=x.laq").unwrap_err().contains("' '"));
        assert!(parse_model_arg("=x.laq").is_err());
        assert!(parse_model_arg("a=").unwrap_err().contains("no path"));
    }
}
