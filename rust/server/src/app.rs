//! The routes and what every request goes through: the API key, the metrics, JSON
//! answers for unknown paths and methods (state and body reading: `state`).

use crate::error::ApiError;
use crate::state::{query_pairs, AppState};
use crate::{adapt, page, predict, stream};
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

pub fn router(state: Arc<AppState>, cors: &[String]) -> Result<Router, String> {
    let api = Router::new()
        .route("/v1/predict", post(predict::predict))
        .route("/v1/segments", post(predict::segments))
        .route("/v1/adapt", post(adapt::adapt))
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
    let layer = CorsLayer::new().allow_methods([Method::GET, Method::POST]).allow_headers([
        header::CONTENT_TYPE,
        header::AUTHORIZATION,
        header::HeaderName::from_static("x-api-key"),
    ]);
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
/// label set stays bounded), from the request to the end of the answer's body: a streamed
/// answer (`/v1/segments`) counts when its last line is written, or when it is cut.
async fn measure(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let endpoint = req.extensions().get::<MatchedPath>().map_or("other", |m| m.as_str()).to_string();
    let t = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16();
    let done = move || state.metrics.record(&endpoint, status, t.elapsed().as_secs_f64());
    res.map(|body| Body::new(AtEnd { body, done: Some(Box::new(done)) }))
}

/// A body that calls `done` once, when it ends, fails or is dropped unfinished.
struct AtEnd {
    body: Body,
    done: Option<Box<dyn FnOnce() + Send>>,
}

impl AtEnd {
    fn finish(&mut self) {
        if let Some(done) = self.done.take() {
            done();
        }
    }
}

impl HttpBody for AtEnd {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let r = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(r, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.finish();
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for AtEnd {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The API key, when one is set: `Authorization: Bearer KEY`, `X-API-Key: KEY`, or (for
/// browsers' WebSockets, which cannot set headers) `?api_key=KEY`.
async fn auth(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(key) = state.api_key.as_deref() else {
        return next.run(req).await;
    };
    let h = req.headers();
    let bearer = h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let x = h.get("x-api-key").and_then(|v| v.to_str().ok());
    let q = req.uri().query().and_then(|q| query_pairs(q).into_iter().find(|(k, _)| k == "api_key").map(|(_, v)| v));
    let given = bearer.map(str::to_string).or(x.map(str::to_string)).or(q);
    match given {
        Some(g) if same(g.as_bytes(), key.as_bytes()) => next.run(req).await,
        Some(_) => {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "the API key does not match").into_response()
        }
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

async fn healthz() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], "{\"status\": \"ok\"}")
}

async fn models(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], state.models.listing_json())
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], state.metrics.text())
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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A streamed body is counted at its end, not when its head goes out.
    #[tokio::test]
    async fn a_body_is_measured_to_its_end() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
        let inner = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<Bytes, std::io::Error>(b), rx))
        }));
        let ended = Arc::new(AtomicBool::new(false));
        let flag = ended.clone();
        let mut body = AtEnd { body: inner, done: Some(Box::new(move || flag.store(true, Ordering::SeqCst))) };
        tx.send(Bytes::from_static(b"line\n")).unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), Bytes::from_static(b"line\n"));
        assert!(!ended.load(Ordering::SeqCst), "counted before the body ended");
        drop(tx);
        assert!(body.frame().await.is_none());
        assert!(ended.load(Ordering::SeqCst), "not counted at the end");
        // an answer dropped unfinished (the client went away) is counted once, when dropped
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = dropped.clone();
        let body = AtEnd { body: Body::from("x"), done: Some(Box::new(move || flag.store(true, Ordering::SeqCst))) };
        drop(body);
        assert!(dropped.load(Ordering::SeqCst));
    }
}
