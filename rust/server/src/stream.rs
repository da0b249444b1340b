//! `GET /v1/stream`: live audio over a WebSocket (protocol in `docs/serve.md`).
//!
//! The client sends a JSON config, binary frames of little-endian samples of any size,
//! then `{"end": true}`; each completed window goes back as one JSON text message (the
//! `--segments --format jsonl` row), then the summary record, then a normal close. The
//! windows come from the core's [`Segmenter`], the one offline segmentation uses, so a
//! stream gives what segmenting the same samples offline gives, bit for bit.
//!
//! Refusals are a text message `{"error", "detail"}` and a close with code 1008 (policy:
//! bad config or message, idle, too long, rate changed), 1009 (a message over the size
//! limit) or 1011 (internal); a server that stops closes its streams the same way with 1001.
//! A chunk holding NaN/inf is refused with an error message and dropped, the stream goes on.
//! A client's close is answered with the same close before the connection is dropped.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serlaq_core::runtime::json::to_line;
use serlaq_core::runtime::{
    Model, RunningNorm, SegmentOptions, SegmentRecord, SegmentSummary, Vad, DEFAULT_HOP, DEFAULT_MIN_SPEECH,
    DEFAULT_VAD_DB, DEFAULT_WINDOW,
};
use serlaq_core::segments::{Segment, SegmentError, Segmenter};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use tungstenite::error::CapacityError;

/// Chunks up to this many samples are segmented on the I/O thread; larger ones on the
/// blocking pool (a long chunk must not stall other connections).
const INLINE_SAMPLES: usize = 8192;

pub async fn stream(
    State(state): State<Arc<AppState>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let ws = match ws {
        Ok(ws) => ws,
        Err(r) => {
            return ApiError::bad_request(
                "not a websocket",
                format!("GET /v1/stream needs a WebSocket upgrade: {}", r.body_text()),
            )
            .into_response()
        }
    };
    let slot = match state.stream_slot() {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let max = state.limits.max_message_bytes;
    ws.max_message_size(max).max_frame_size(max).on_upgrade(move |socket| async move {
        state.metrics.open_streams.inc();
        let mut s = Session { socket, state: state.clone() };
        s.run().await;
        state.metrics.open_streams.dec();
        drop(slot);
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    sample_rate: u32,
    format: SampleFormat,
    model: Option<String>,
    name: Option<String>,
    top_k: Option<usize>,
    window: Option<f64>,
    hop: Option<f64>,
    vad_db: Option<f64>,
    min_speech: Option<f64>,
    no_vad: Option<bool>,
    running_norm: Option<bool>,
    running_balance: Option<bool>,
}

#[derive(Deserialize, Clone, Copy, PartialEq)]
#[serde(rename_all = "lowercase")]
enum SampleFormat {
    Pcm16,
    F32,
}

/// A text message after the config: the end, or a config that changes the rate.
#[derive(Deserialize)]
struct Control {
    end: Option<bool>,
    sample_rate: Option<u32>,
}

struct Stop {
    error: &'static str,
    detail: String,
    code: u16,
}

impl Stop {
    fn policy(error: &'static str, detail: impl Into<String>) -> Stop {
        Stop { error, detail: detail.into(), code: close_code::POLICY }
    }
}

struct Live {
    model: Arc<Model>,
    labels: Vec<String>,
    seg: Option<Segmenter>,
    format: SampleFormat,
    name: String,
    top_k: Option<usize>,
    rate: u32,
    /// Every window so far, timing and label only (for the summary).
    spans: Vec<SegmentRecord>,
}

struct Session {
    socket: WebSocket,
    state: Arc<AppState>,
}

enum Next {
    Msg(Message),
    /// The client closed (its close already answered) or the connection failed.
    Gone,
    Idle,
    /// A message over `max_message_bytes`.
    TooBig(String),
    /// The server is stopping.
    Stopping,
}

impl Session {
    async fn next(&mut self) -> Next {
        let state = self.state.clone();
        let got = tokio::select! {
            biased;
            _ = state.stopping() => return Next::Stopping,
            got = tokio::time::timeout(state.limits.idle_timeout, self.socket.recv()) => got,
        };
        match got {
            Err(_) => Next::Idle,
            Ok(None) => Next::Gone,
            Ok(Some(Err(e))) => match e.into_inner().downcast::<tungstenite::Error>().map(|e| *e) {
                // nothing more is read: the rest of that message cannot be told from a frame
                Ok(tungstenite::Error::Capacity(c)) => Next::TooBig(match c {
                    CapacityError::MessageTooLong { size, max_size } => {
                        format!("a message of {size} bytes; the limit is {max_size} bytes")
                    }
                    c => c.to_string(),
                }),
                _ => Next::Gone,
            },
            Ok(Some(Ok(Message::Close(_)))) => {
                // tungstenite queued the same close as the answer: the next read sends it
                // and ends the connection
                let _ = tokio::time::timeout(state.limits.idle_timeout, self.socket.recv()).await;
                Next::Gone
            }
            Ok(Some(Ok(m))) => Next::Msg(m),
        }
    }

    async fn send_text(&mut self, text: String) -> bool {
        self.socket.send(Message::Text(text.into())).await.is_ok()
    }

    async fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame { code, reason: reason.chars().take(120).collect::<String>().into() };
        let _ = self.socket.send(Message::Close(Some(frame))).await;
    }

    async fn refuse(&mut self, stop: Stop) {
        let body = ApiError::bad_request(stop.error, stop.detail).body();
        if self.send_text(body).await {
            self.close(stop.code, stop.error).await;
        }
    }

    async fn run(&mut self) {
        let live = match self.start().await {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(stop) => return self.refuse(stop).await,
        };
        if let Err(stop) = self.feed(live).await {
            self.refuse(stop).await;
        }
    }

    /// Waits for the config message and builds the segmenter; `None`: the client left.
    async fn start(&mut self) -> Result<Option<Live>, Stop> {
        let text = loop {
            match self.next().await {
                Next::Gone => return Ok(None),
                Next::Idle => return Err(idle(&self.state)),
                Next::TooBig(detail) => return Err(too_big(detail)),
                Next::Stopping => return Err(stopping()),
                Next::Msg(Message::Text(t)) => break t,
                Next::Msg(Message::Binary(_)) => {
                    return Err(Stop::policy("config first", "send the JSON config before any audio"))
                }
                Next::Msg(_) => continue,
            }
        };
        let c: Config = serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(text.as_str()))
            .map_err(|e| Stop::policy("bad config", e.to_string()))?;
        if c.sample_rate == 0 || c.sample_rate > 384_000 {
            return Err(Stop::policy("bad config", format!("sample_rate: {} is not in 1..=384000", c.sample_rate)));
        }
        if c.top_k == Some(0) {
            return Err(Stop::policy("bad config", "top_k: must be at least 1"));
        }
        let no_vad = c.no_vad.unwrap_or(false);
        if no_vad && (c.vad_db.is_some() || c.min_speech.is_some()) {
            return Err(Stop::policy("bad config", "no_vad: cannot be combined with vad_db / min_speech"));
        }
        let entry = self.state.models.get(c.model.as_deref()).map_err(|e| Stop::policy("unknown model", e))?;
        let opts = SegmentOptions {
            window: c.window.unwrap_or(DEFAULT_WINDOW),
            hop: c.hop.unwrap_or(DEFAULT_HOP),
            vad: (!no_vad).then(|| Vad {
                threshold_db: c.vad_db.unwrap_or(DEFAULT_VAD_DB),
                min_speech: c.min_speech.unwrap_or(DEFAULT_MIN_SPEECH),
            }),
            running: c
                .running_norm
                .unwrap_or(false)
                .then(|| RunningNorm { balance: c.running_balance.unwrap_or(true), ..RunningNorm::default() }),
        };
        let name = c.name.unwrap_or_else(|| "stream".into());
        let seg = Segmenter::new(&entry.model, c.sample_rate, &opts, &name).map_err(|e| match e {
            SegmentError::Option { .. } => Stop::policy("bad config", e.to_string()),
            e => Stop::policy("bad config", e.to_string()),
        })?;
        Ok(Some(Live {
            model: entry.model.clone(),
            labels: entry.model.labels().to_vec(),
            seg: Some(seg),
            format: c.format,
            name,
            top_k: c.top_k,
            rate: c.sample_rate,
            spans: Vec::new(),
        }))
    }

    async fn feed(&mut self, mut live: Live) -> Result<(), Stop> {
        let max_samples = (self.state.limits.max_audio_seconds * f64::from(live.rate)) as u64;
        loop {
            let msg = match self.next().await {
                Next::Gone => return Ok(()),
                Next::Idle => return Err(idle(&self.state)),
                Next::TooBig(detail) => return Err(too_big(detail)),
                Next::Stopping => return Err(stopping()),
                Next::Msg(m) => m,
            };
            match msg {
                Message::Binary(b) => {
                    let samples = decode(&b, live.format)?;
                    let held = live.seg.as_ref().map_or(0, |s| s.samples());
                    if held + samples.len() as u64 > max_samples {
                        return Err(Stop::policy(
                            "audio too long",
                            format!(
                                "more than {} s of audio (the server's limit)",
                                self.state.limits.max_audio_seconds
                            ),
                        ));
                    }
                    self.state.metrics.add_audio(samples.len() as f64 / f64::from(live.rate));
                    let done = push(&mut live, samples, false).await;
                    match done {
                        Ok(segs) => self.send_segments(&mut live, &segs).await?,
                        Err(e @ SegmentError::NonFinite { .. }) => {
                            let body =
                                ApiError::bad_request("NaN/inf samples", format!("{e}; the stream goes on")).body();
                            if !self.send_text(body).await {
                                return Ok(());
                            }
                        }
                        Err(e) => {
                            return Err(Stop {
                                error: "segmentation failed",
                                detail: e.to_string(),
                                code: close_code::ERROR,
                            })
                        }
                    }
                }
                Message::Text(t) => {
                    let c: Control =
                        serde_json::from_str(t.as_str()).map_err(|e| Stop::policy("bad message", e.to_string()))?;
                    if let Some(rate) = c.sample_rate {
                        if let Some(Err(e)) = live.seg.as_ref().map(|s| s.check_rate(rate)) {
                            return Err(Stop::policy("sample rate changed", e.to_string()));
                        }
                    }
                    if c.end == Some(true) {
                        return self.end(live).await;
                    }
                    if c.sample_rate.is_none() {
                        return Err(Stop::policy("bad message", "expected {\"end\": true} or binary audio frames"));
                    }
                }
                _ => {}
            }
        }
    }

    async fn end(&mut self, mut live: Live) -> Result<(), Stop> {
        let rest = push(&mut live, Vec::new(), true).await;
        match rest {
            Ok(segs) => self.send_segments(&mut live, &segs).await?,
            Err(e) => {
                let body = ApiError::bad_request(e.kind(), e.to_string()).body();
                if !self.send_text(body).await {
                    return Ok(());
                }
            }
        }
        if !live.spans.is_empty() {
            let summary = to_line(&SegmentSummary::of(&live.spans, Some(live.name.clone())));
            if !self.send_text(summary).await {
                return Ok(());
            }
        }
        self.close(close_code::NORMAL, "end").await;
        Ok(())
    }

    async fn send_segments(&mut self, live: &mut Live, segs: &[Segment]) -> Result<(), Stop> {
        for s in segs {
            let rec = SegmentRecord::new(&live.labels, s, Some(live.name.clone()), live.top_k);
            let line = to_line(&rec);
            live.spans.push(SegmentRecord { top_k: Vec::new(), probabilities: Default::default(), ..rec });
            if !self.send_text(line).await {
                return Ok(());
            }
        }
        Ok(())
    }
}

fn too_big(detail: String) -> Stop {
    Stop { error: "message too big", detail, code: close_code::SIZE }
}

fn stopping() -> Stop {
    Stop {
        error: "server stopping",
        detail: "the server is shutting down; reconnect later".into(),
        code: close_code::AWAY,
    }
}

fn idle(state: &AppState) -> Stop {
    Stop::policy("idle timeout", format!("nothing received for {} s", state.limits.idle_timeout.as_secs_f64()))
}

/// Little-endian samples -> f32 (pcm16 scaled as the WAV decoder scales it: `s / 32768`).
fn decode(b: &[u8], format: SampleFormat) -> Result<Vec<f32>, Stop> {
    let width = if format == SampleFormat::Pcm16 { 2 } else { 4 };
    if !b.len().is_multiple_of(width) {
        return Err(Stop::policy(
            "bad frame",
            format!("{} bytes is not a whole number of {width}-byte samples", b.len()),
        ));
    }
    Ok(match format {
        SampleFormat::Pcm16 => b.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]]) as f32 / 32_768.0).collect(),
        SampleFormat::F32 => b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
    })
}

/// Pushes `samples` (or finishes, `end`) on the segmenter, off the I/O thread when large.
/// A panic in the core loses the segmenter and ends the stream (code 1011).
async fn push(live: &mut Live, samples: Vec<f32>, end: bool) -> Result<Vec<Segment>, SegmentError> {
    let lost = |name: &str| SegmentError::Model {
        source: name.to_string(),
        detail: "internal error (a panic in serlaq; please report)".into(),
    };
    let Some(mut seg) = live.seg.take() else { return Err(lost(&live.name)) };
    let model = live.model.clone();
    let inline = !end && samples.len() <= INLINE_SAMPLES;
    let work = move || {
        let r = catch_unwind(AssertUnwindSafe(|| if end { seg.finish(&model) } else { seg.push(&model, &samples) }));
        r.ok().map(|r| (seg, r))
    };
    let out = if inline { work() } else { tokio::task::spawn_blocking(work).await.ok().flatten() };
    match out {
        Some((seg, r)) => {
            live.seg = Some(seg);
            r
        }
        None => Err(lost(&live.name)),
    }
}
