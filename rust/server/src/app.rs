//! The routes, the shared state and what every request goes through: the API key, the
//! metrics, JSON answers for unknown paths and methods, bounded body reading.

use crate::config::{Limits, ServerConfig};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::models::Registry;
use crate::{page, predict, stream};
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct AppState {
    pub models: Registry,
    pub limits: Limits,
    api_key: Option<String>,
    pub metrics: Metrics,
    /// Audio requests in progress (`max_concurrent`).
    work: Arc<Semaphore>,
    /// WebSocket streams open (`max_streams`).
    streams: Arc<Semaphore>,
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
            models: Registry::load(&config.models)?,
            limits: l.clone(),
            api_key: config.api_key.clone(),
            metrics: Metrics::new(),
            work: Arc::new(Semaphore::new(l.max_concurrent)),
            streams: Arc::new(Semaphore::new(l.max_streams)),
        })
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

pub fn router(state: Arc<AppState>, cors: &[String]) -> Result<Router, String> {
    let api = Router::new()
        .route("/v1/predict", post(predict::predict))
        .route("/v1/segments", post(predict::segments))
        .route("/v1/stream", get(stream::stream))
        .route("/v1/models", get(models))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    let mut app = Router::new()
        .route("/", get(page::page))
        .route("/healthz", get(healthz))
        .merge(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), measure))
        .with_state(state);
    if !cors.is_empty() {
        app = app.layer(cors_layer(cors)?);
    }
    Ok(app)
}

fn cors_layer(origins: &[String]) -> Result<tower_http::cors::CorsLayer, String> {
    use tower_http::cors::{AllowOrigin, Any, CorsLayer};
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::HeaderName::from_static("x-api-key")]);
    if origins.iter().any(|o| o == "*") {
        return Ok(layer.allow_origin(Any));
    }
    let list = origins
        .iter()
        .map(|o| HeaderValue::from_str(o).map_err(|_| format!("--cors {o}: not a valid origin")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(layer.allow_origin(AllowOrigin::list(list)))
}

/// Times and counts every answer under its route (unknown paths under "other", so the
/// label set stays bounded).
async fn measure(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let endpoint = req.extensions().get::<MatchedPath>().map_or("other", |m| m.as_str()).to_string();
    let t = Instant::now();
    let res = next.run(req).await;
    state.metrics.record(&endpoint, res.status().as_u16(), t.elapsed().as_secs_f64());
    res
}

/// The API key, when one is set: `Authorization: Bearer KEY`, `X-API-Key: KEY`, or (for
/// browsers' WebSockets, which cannot set headers) `?api_key=KEY`.
async fn auth(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(key) = state.api_key.as_deref() else {
        return next.run(req).await;
    };
    let h = req.headers();
    let bearer = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let x = h.get("x-api-key").and_then(|v| v.to_str().ok());
    let q = req.uri().query().and_then(|q| query_pairs(q).into_iter().find(|(k, _)| k == "api_key").map(|(_, v)| v));
    let given = bearer.map(str::to_string).or(x.map(str::to_string)).or(q);
    match given {
        Some(g) if same(g.as_bytes(), key.as_bytes()) => next.run(req).await,
        Some(_) => ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "the API key does not match").into_response(),
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this server needs an API key: Authorization: Bearer KEY or X-API-Key: KEY",
        )
        .into_response(),
    }
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `k=v&k2=v2`, percent-decoded (`+` is a space).
pub fn query_pairs(q: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                },
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

async fn healthz() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], "{\"status\": \"ok\"}")
}

async fn models(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], state.models.listing_json())
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.text(),
    )
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not found", format!("no endpoint at {}", req.uri().path()))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}
