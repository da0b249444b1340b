//! The server's shared state: loaded models, limits, the API key, metrics and the
//! semaphores that bound concurrent work; and the one query-string reader. Below the
//! routes (`app`) and the handlers (`predict`, `stream`), which all take it.

use crate::config::{Limits, ServerConfig};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::models::{Entry, Registry};
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct AppState {
    pub models: Registry,
    pub limits: Limits,
    pub(crate) api_key: Option<String>,
    pub metrics: Metrics,
    /// Audio requests in progress (`max_concurrent`).
    work: Arc<Semaphore>,
    /// WebSocket streams open (`max_streams`).
    streams: Arc<Semaphore>,
    /// Set when the server stops: open streams say so and close (1001).
    stopping: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    pub fn new(config: &ServerConfig) -> Result<AppState, String> {
        let l = &config.limits;
        if l.max_concurrent == 0 || l.max_streams == 0 || l.max_connections == 0 || l.max_files == 0 {
            return Err("limits: max_concurrent, max_streams, max_connections and max_files must be at least 1".into());
        }
        if !(l.max_audio_seconds > 0.0 && l.max_audio_seconds.is_finite()) {
            return Err(format!("limits: max_audio_seconds must be a positive number, got {}", l.max_audio_seconds));
        }
        if config.api_key.as_deref().is_some_and(|k| k.is_empty()) {
            return Err("api key: empty".into());
        }
        Ok(AppState {
            models: Registry::load(&config.models, l.max_adapted)?,
            limits: l.clone(),
            api_key: config.api_key.clone(),
            metrics: Metrics::new(),
            work: Arc::new(Semaphore::new(l.max_concurrent)),
            streams: Arc::new(Semaphore::new(l.max_streams)),
            stopping: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Tells every open stream the server is stopping.
    pub fn shut_down(&self) {
        self.stopping.send_replace(true);
    }

    /// Completes once the server is stopping (at once when it already is).
    pub async fn stopping(&self) {
        let mut rx = self.stopping.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Completes once every stream has closed (their slots handed back).
    pub async fn streams_closed(&self) {
        let all = u32::try_from(self.limits.max_streams).unwrap_or(u32::MAX);
        let _ = self.streams.acquire_many(all).await;
    }

    /// The model a request names (the default for `None`), or 400 `unknown model` naming
    /// the ones served.
    pub fn model(&self, name: Option<&str>) -> Result<Arc<Entry>, ApiError> {
        self.models.get(name).map_err(|e| ApiError::bad_request("unknown model", e))
    }

    /// A slot for one audio request, waiting up to `read_timeout` (then 503 `busy`).
    pub async fn work_slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        match tokio::time::timeout(self.limits.read_timeout, self.work.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            _ => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                format!("{} audio requests in progress; try again", self.limits.max_concurrent),
            )),
        }
    }

    /// A slot for one stream, now or never (503 `busy`).
    pub fn stream_slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.streams.clone().try_acquire_owned().map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                format!("{} streams open; try again later", self.limits.max_streams),
            )
        })
    }

    /// The checks a handler makes before it reads the body (`checks`), with the body handed
    /// back when they pass; when one fails, its refusal after [`refuse`](Self::refuse).
    pub async fn before_body<T>(
        &self,
        headers: &HeaderMap,
        body: Body,
        checks: impl std::future::Future<Output = Result<T, ApiError>>,
    ) -> Result<(T, Body), ApiError> {
        match checks.await {
            Ok(v) => Ok((v, body)),
            Err(e) => Err(self.refuse(headers, body, e).await),
        }
    }

    /// `e`, after the body it answers is read to its end and dropped (within `max_body_bytes`
    /// and `read_timeout`; nothing is kept). A refusal made before the body is read (a bad
    /// parameter, an unknown model, busy) would otherwise close a connection with unread
    /// bytes in it, and a client that sends its whole body before reading (curl, a browser's
    /// fetch) would see the connection reset, not the answer.
    async fn refuse(&self, headers: &HeaderMap, body: Body, e: ApiError) -> ApiError {
        let max = self.limits.max_body_bytes;
        let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max as u64) {
            return e; // more than would ever be read: closed unread, as a 413 is
        }
        let drain = async {
            let mut body = Limited::new(body, max);
            while let Some(Ok(_)) = body.frame().await {}
        };
        let _ = tokio::time::timeout(self.limits.read_timeout, drain).await;
        e
    }

    /// Reads a whole body: 413 `body too large` over `max_body_bytes` (at once when the
    /// Content-Length says so), 408 `body timeout` when it does not arrive within
    /// `read_timeout`.
    pub async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
        let max = self.limits.max_body_bytes;
        let too_large = |what: String| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body too large", what);
        if let Some(len) = headers.get(header::CONTENT_LENGTH) {
            let len: u64 = len
                .to_str()
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| ApiError::bad_request("bad header", "Content-Length: not a number"))?;
            if len > max as u64 {
                return Err(too_large(format!("Content-Length {len} bytes; the limit is {max} bytes")));
            }
        }
        let collect = Limited::new(body, max).collect();
        match tokio::time::timeout(self.limits.read_timeout, collect).await {
            Err(_) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body timeout",
                format!("the body did not arrive within {} s", self.limits.read_timeout.as_secs_f64()),
            )),
            Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
                Err(too_large(format!("more than {max} bytes")))
            }
            Ok(Err(e)) => Err(ApiError::bad_request("bad body", format!("reading the body: {e}"))),
            Ok(Ok(c)) => Ok(c.to_bytes()),
        }
    }
}

/// `k=v&k2=v2`, percent-decoded (`+` is a space), in order.
pub fn query_pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}
