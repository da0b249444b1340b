//! `POST /v1/predict` and `POST /v1/segments`: audio bytes in (raw body or multipart),
//! the CLI's `--format json` / `--segments --format jsonl` bytes out.

use crate::error::ApiError;
use crate::state::{query_pairs, AppState};
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serlaq_core::audio::{self, Decoder};
use serlaq_core::model::ModelError;
use serlaq_core::runtime::{
    check_options, panic_text, segment_path, Failure, FileEnd, Format, Model, Outcome, Prediction, ResultWriter,
    RunningNorm, SegmentItem, SegmentOptions, SegmentRecord, SegmentWriter, Stop, Vad, DEFAULT_HOP, DEFAULT_MIN_SPEECH,
    DEFAULT_VAD_DB, DEFAULT_WINDOW,
};
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore, TryAcquireError};

/// The query of an audio request, each value checked and named in the error.
pub struct Params {
    pub model: Option<String>,
    pub name: Option<String>,
    pub top_k: Option<usize>,
    pub format: Format,
    pub opts: SegmentOptions,
}

fn number(field: &str, v: &str) -> Result<f64, ApiError> {
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() => Ok(x),
        _ => Err(ApiError::bad_request("bad parameter", format!("{field}: {v:?} is not a finite number"))),
    }
}

/// A true/false query value (`""`, `1`, `true` / `0`, `false`).
pub(crate) fn flag(key: &str, v: &str) -> Result<bool, ApiError> {
    match v {
        "" | "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(ApiError::bad_request("bad parameter", format!("{key}: {v:?} is not true or false"))),
    }
}

/// Parses `query` allowing only `allowed` keys (plus `api_key`).
pub fn params(query: Option<&str>, allowed: &[&str]) -> Result<Params, ApiError> {
    let mut p = Params { model: None, name: None, top_k: None, format: Format::Json, opts: SegmentOptions::default() };
    let (mut window, mut hop, mut vad_db, mut min_speech, mut no_vad) = (None, None, None, None, false);
    let (mut running_norm, mut running_balance) = (false, true);
    for (k, v) in query_pairs(query.unwrap_or("")) {
        if k == "api_key" {
            continue;
        }
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::bad_request(
                "bad parameter",
                format!("{k}: unknown parameter (accepted: {})", allowed.join(", ")),
            ));
        }
        match k.as_str() {
            "model" => p.model = Some(v),
            "name" => p.name = Some(v),
            "top_k" => match v.parse::<usize>() {
                Ok(n) if n >= 1 => p.top_k = Some(n),
                _ => {
                    return Err(ApiError::bad_request(
                        "bad parameter",
                        format!("top_k: {v:?} is not a whole number >= 1"),
                    ))
                }
            },
            "format" => {
                p.format = match v.as_str() {
                    "json" => Format::Json,
                    "jsonl" => Format::Jsonl,
                    _ => {
                        return Err(ApiError::bad_request(
                            "bad parameter",
                            format!("format: {v:?} is not json or jsonl"),
                        ))
                    }
                }
            }
            "window" => window = Some(number("window", &v)?),
            "hop" => hop = Some(number("hop", &v)?),
            "vad_db" => vad_db = Some(number("vad_db", &v)?),
            "min_speech" => min_speech = Some(number("min_speech", &v)?),
            "no_vad" => no_vad = flag("no_vad", &v)?,
            "running_norm" => running_norm = flag("running_norm", &v)?,
            "running_balance" => running_balance = flag("running_balance", &v)?,
            _ => unreachable!("every allowed key is matched"),
        }
    }
    if no_vad && (vad_db.is_some() || min_speech.is_some()) {
        return Err(ApiError::bad_request("bad parameter", "no_vad: cannot be combined with vad_db / min_speech"));
    }
    p.opts = SegmentOptions {
        window: window.unwrap_or(DEFAULT_WINDOW),
        hop: hop.unwrap_or(DEFAULT_HOP),
        vad: (!no_vad).then(|| Vad {
            threshold_db: vad_db.unwrap_or(DEFAULT_VAD_DB),
            min_speech: min_speech.unwrap_or(DEFAULT_MIN_SPEECH),
        }),
        running: running_norm.then_some(RunningNorm { balance: running_balance, ..RunningNorm::default() }),
    };
    Ok(p)
}

/// One uploaded file: its name (results' `path`) and bytes.
pub(crate) struct Upload {
    pub name: String,
    pub bytes: Bytes,
}

/// The files of a request: the raw body (named `?name=`, default `-`), or every part of a
/// `multipart/form-data` body (named by its filename, else its field name).
pub(crate) async fn uploads(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    name: Option<&str>,
) -> Result<(Vec<Upload>, bool), ApiError> {
    let bytes = state.read_body(headers, body).await?;
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !ctype.to_ascii_lowercase().starts_with("multipart/") {
        if bytes.is_empty() {
            return Err(ApiError::bad_request(
                "empty body",
                "send the audio file as the body, or as multipart/form-data",
            ));
        }
        return Ok((vec![Upload { name: name.unwrap_or("-").to_string(), bytes }], false));
    }
    let boundary = multer::parse_boundary(ctype)
        .map_err(|e| ApiError::bad_request("bad multipart", format!("Content-Type: {e}")))?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, io::Error>(bytes) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut files = Vec::new();
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(ApiError::bad_request("bad multipart", e.to_string())),
        };
        if files.len() == state.limits.max_files {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too many files",
                format!("more than {} files in one request", state.limits.max_files),
            ));
        }
        let name =
            field.file_name().or(field.name()).map(str::to_string).unwrap_or_else(|| format!("part{}", files.len()));
        let bytes = field.bytes().await.map_err(|e| ApiError::bad_request("bad multipart", format!("{name}: {e}")))?;
        files.push(Upload { name, bytes });
    }
    if files.is_empty() {
        return Err(ApiError::bad_request("no files", "the multipart body holds no file"));
    }
    Ok((files, true))
}

/// Why one file gave no result: too long for this server, or the runtime's one line.
pub(crate) enum FileError {
    TooLong(String),
    Failed(String),
}

impl FileError {
    pub fn message(&self) -> &str {
        match self {
            FileError::TooLong(m) | FileError::Failed(m) => m,
        }
    }

    fn api(&self) -> ApiError {
        match self {
            FileError::TooLong(m) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "audio too long", m.clone()),
            FileError::Failed(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unreadable audio", m.clone()),
        }
    }
}

fn ext(name: &str) -> Option<&str> {
    std::path::Path::new(name).extension().and_then(|e| e.to_str())
}

/// Opens `bytes` and checks its duration against `max_seconds` (from the header; when
/// the format does not say, by decoding once and counting, which stops past the limit: the
/// refusal then names no length, the true one being unknown).
pub(crate) fn open_checked<'b>(bytes: &'b [u8], name: &str, max_seconds: f64) -> Result<Decoder<'b>, FileError> {
    let decoder = Decoder::from_bytes(bytes, name, ext(name)).map_err(|e| FileError::Failed(e.to_string()))?;
    let rate = f64::from(decoder.sample_rate().max(1));
    let over = format!("more than {max_seconds} s of audio (the server's limit)");
    match decoder.declared_frames() {
        Some(n) if n as f64 / rate > max_seconds => {
            Err(FileError::TooLong(format!("{name}: {over}: {:.1} s", n as f64 / rate)))
        }
        Some(_) => Ok(decoder),
        None => {
            let mut counter =
                Decoder::from_bytes(bytes, name, ext(name)).map_err(|e| FileError::Failed(e.to_string()))?;
            let mut mono = Vec::new();
            while let Ok(true) = counter.next_mono(&mut mono) {
                if counter.frames() as f64 / rate > max_seconds {
                    return Err(FileError::TooLong(format!("{name}: {over}")));
                }
            }
            Ok(decoder)
        }
    }
}

/// One file's probabilities, out-of-domain score (as the CLI's records carry it) and
/// seconds of audio at the model rate.
fn predict_one(model: &Model, up: &Upload, max_seconds: f64) -> Result<(Vec<f64>, f64, f64), FileError> {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let decoder = open_checked(&up.bytes, &up.name, max_seconds)?;
        let spec = model.spec();
        let wave = audio::load_from(decoder, spec.sample_rate, spec.min_samples())
            .map_err(|e| FileError::Failed(e.to_string()))?;
        let seconds = wave.len() as f64 / f64::from(spec.sample_rate);
        let scored = model.features_wave(&wave).and_then(|x| model.predict_features(&x));
        match scored {
            Ok((p, ood)) => Ok((p, ood, seconds)),
            Err(ModelError::Audio(e)) => Err(FileError::Failed(e.to_string())),
            Err(e) => Err(FileError::Failed(format!("{}: {e}", up.name))),
        }
    }));
    r.unwrap_or_else(|p| Err(FileError::Failed(format!("{}: {}", up.name, panic_text(&*p)))))
}

fn json_response(status: StatusCode, format: Format, body: Vec<u8>) -> Response {
    let ctype = if format == Format::Jsonl { "application/x-ndjson" } else { "application/json" };
    (status, [(header::CONTENT_TYPE, ctype)], body).into_response()
}

/// `POST /v1/predict?model=&top_k=&name=&format=json|jsonl`.
pub async fn predict(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let checks = async {
        let p = params(query.as_deref(), &["model", "top_k", "name", "format"])?;
        let entry = state.model(p.model.as_deref())?;
        Ok((p, entry, state.work_slot().await?))
    };
    let ((p, entry, _slot), body) = state.before_body(&headers, body, checks).await?;
    let model = entry.model.clone();
    let (files, multipart) = uploads(&state, &headers, body, p.name.as_deref()).await?;
    let max_seconds = state.limits.max_audio_seconds;
    let results = tokio::task::spawn_blocking(move || {
        files.iter().map(|f| (f.name.clone(), predict_one(&model, f, max_seconds))).collect::<Vec<_>>()
    })
    .await
    .map_err(|_| internal_task())?;
    if !multipart {
        if let (_, Err(e)) = &results[0] {
            return Err(e.api());
        }
    }
    let labels = entry.model.labels().to_vec();
    let mut out = Vec::new();
    let mut w = ResultWriter::new(&mut out, p.format, &labels).map_err(internal)?;
    for (name, r) in results {
        let outcome = match r {
            Ok((proba, ood, seconds)) => {
                state.metrics.add_audio(seconds);
                Outcome::Ok(Prediction::new(&labels, &proba, Some(name), p.top_k).with_ood(ood))
            }
            Err(e) => Outcome::Failed(Failure { path: name, error: e.message().to_string() }),
        };
        w.write(&outcome).map_err(internal)?;
    }
    w.close().map_err(internal)?;
    Ok(json_response(StatusCode::OK, p.format, out))
}

/// A blocking task that did not finish (it panicked past its own guard).
pub(crate) fn internal_task() -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", "a worker task failed")
}

fn internal(e: io::Error) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", e.to_string())
}

/// Bytes of a `/v1/segments` answer computed but not yet taken by the client, at most
/// (`max_body_bytes`, within 64 KiB .. 4 GiB): the worker computes ahead of a slow reader
/// up to this much without waiting, so a reader's pace does not hold a blocking-pool
/// thread. With the default 32 MiB this is the whole answer of the longest recording the
/// default limits allow.
fn ahead_bytes(state: &AppState) -> usize {
    state.limits.max_body_bytes.clamp(1 << 16, u32::MAX as usize)
}

/// Sends what the writer flushes as one chunk of the response body. Sending never waits
/// while less than [`ahead_bytes`] are unsent; past that it waits for the client at most
/// `idle_timeout`, then gives up (the caller stops at the error and the answer is cut).
struct ChunkSender {
    buf: Vec<u8>,
    tx: mpsc::UnboundedSender<(Bytes, u32)>,
    /// Bytes the answer may still hold unsent (permits handed back as chunks go out).
    room: Arc<Semaphore>,
    ahead: usize,
    wait: Duration,
}

impl Write for ChunkSender {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        let gone = || io::Error::new(io::ErrorKind::BrokenPipe, "client gone");
        let n = chunk.len().min(self.ahead) as u32;
        match self.room.try_acquire_many(n) {
            Ok(p) => p.forget(),
            Err(TryAcquireError::Closed) => return Err(gone()),
            Err(TryAcquireError::NoPermits) => {
                // a blocking-pool thread: not inside the runtime's async context
                let wait = tokio::runtime::Handle::current()
                    .block_on(tokio::time::timeout(self.wait, self.room.acquire_many(n)));
                match wait {
                    Ok(Ok(p)) => p.forget(),
                    Ok(Err(_)) => return Err(gone()),
                    Err(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("the client read nothing for {} s", self.wait.as_secs_f64()),
                        ))
                    }
                }
            }
        }
        self.tx.send((chunk, n)).map_err(|_| gone())
    }
}

/// The body of a `/v1/segments` answer: the worker's chunks as they come. It holds the
/// request's work slot with the worker (the slot is free once both are done), hands the
/// room of each chunk back as it goes out, and ends with an error (hyper cuts the
/// connection, no final chunk) when the worker stopped before its last line, so a cut
/// answer is never taken for a whole one.
struct Answer {
    rx: mpsc::UnboundedReceiver<(Bytes, u32)>,
    room: Arc<Semaphore>,
    done: Arc<AtomicBool>,
    _slot: Arc<OwnedSemaphorePermit>,
}

impl hyper::body::Body for Answer {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, io::Error>>> {
        match self.rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some((chunk, n))) => {
                self.room.add_permits(n as usize);
                Poll::Ready(Some(Ok(hyper::body::Frame::data(chunk))))
            }
            Poll::Ready(None) if self.done.load(Ordering::Acquire) || self.room.is_closed() => Poll::Ready(None),
            Poll::Ready(None) => {
                self.room.close();
                Poll::Ready(Some(Err(io::Error::other("the answer stopped before its end"))))
            }
        }
    }
}

impl Drop for Answer {
    /// The client went away: a worker waiting for room stops at once.
    fn drop(&mut self) {
        self.room.close();
    }
}

/// `POST /v1/segments?model=&top_k=&name=&window=&hop=&vad_db=&min_speech=&no_vad=&running_norm=&running_balance=`:
/// one file, its windows as JSON lines as they are computed, then its summary (and an
/// error row when the file breaks part-way), the bytes of `serlaq-rt predict --segments
/// --format jsonl`.
pub async fn segments(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let allowed = [
        "model",
        "top_k",
        "name",
        "window",
        "hop",
        "vad_db",
        "min_speech",
        "no_vad",
        "running_norm",
        "running_balance",
    ];
    let checks = async {
        let p = params(query.as_deref(), &allowed)?;
        let entry = state.model(p.model.as_deref())?;
        check_options(&entry.model, &p.opts).map_err(|e| ApiError::bad_request("bad parameter", e))?;
        Ok((p, entry, state.work_slot().await?))
    };
    let ((p, entry, slot), body) = state.before_body(&headers, body, checks).await?;
    let model = entry.model.clone();
    let (mut files, multipart) = uploads(&state, &headers, body, p.name.as_deref()).await?;
    if multipart && files.len() != 1 {
        return Err(ApiError::bad_request(
            "one file",
            format!("segments takes one file per request, got {}", files.len()),
        ));
    }
    let up = files.remove(0);
    let max_seconds = state.limits.max_audio_seconds;
    // refuse what cannot be opened or is too long before the 200 goes out
    let check_up = Upload { name: up.name.clone(), bytes: up.bytes.clone() };
    tokio::task::spawn_blocking(move || open_checked(&check_up.bytes, &check_up.name, max_seconds).map(|_| ()))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", "a task failed"))?
        .map_err(|e| e.api())?;
    let (tx, rx) = mpsc::unbounded_channel();
    let ahead = ahead_bytes(&state);
    let room = Arc::new(Semaphore::new(ahead));
    let done = Arc::new(AtomicBool::new(false));
    let slot = Arc::new(slot);
    let body = Answer { rx, room: room.clone(), done: done.clone(), _slot: slot.clone() };
    let top_k = p.top_k;
    let opts = p.opts;
    let st = state.clone();
    let wait = state.limits.idle_timeout;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        let labels = model.labels().to_vec();
        let sender = ChunkSender { buf: Vec::new(), tx, room, ahead, wait };
        let Ok(mut w) = SegmentWriter::new(sender, io::sink(), Format::Jsonl, &labels) else { return };
        let end = segment_bytes(&model, &up, &opts, top_k, |rec| w.write(&SegmentItem::Segment(rec)));
        let Ok(end) = end else { return }; // the client went away or stopped reading
        if let Some(summary) = end.summary {
            st.metrics.add_audio(summary.summary.duration);
            if w.write(&SegmentItem::Summary(summary)).is_err() {
                return;
            }
        }
        if let Some(error) = end.error {
            if w.write(&SegmentItem::Failed(Failure { path: up.name.clone(), error })).is_err() {
                return;
            }
        }
        if w.close().is_ok() {
            done.store(true, Ordering::Release);
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::new(body)).into_response())
}

/// Segments an upload with the facade's file run (`segment_path`: windows as they
/// complete, the summary, the damage rules), the bytes written to a private temporary
/// file first (the core's segmenter reads files); records and errors name the upload,
/// not the temporary path.
fn segment_bytes(
    model: &Model,
    up: &Upload,
    opts: &SegmentOptions,
    top_k: Option<usize>,
    mut emit: impl FnMut(SegmentRecord) -> io::Result<()>,
) -> Result<FileEnd, ()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "serlaq-serve-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    // the decoder picks its format from the content, helped by the extension
    let suffix = ext(&up.name).filter(|e| e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()));
    let path = dir.join(format!("upload.{}", suffix.unwrap_or("bin")));
    let shown = path.display().to_string();
    let written = std::fs::create_dir(&dir).and_then(|()| std::fs::write(&path, &up.bytes));
    let r = match written {
        Err(e) => Ok(FileEnd { summary: None, error: Some(format!("{}: cannot stage the upload: {e}", up.name)) }),
        Ok(()) => segment_path(model, &path, opts, top_k, |mut rec| {
            rec.path = Some(up.name.clone());
            emit(rec)
        }),
    };
    let _ = std::fs::remove_dir_all(&dir);
    match r {
        Ok(mut end) => {
            if let Some(s) = end.summary.as_mut() {
                s.path = Some(up.name.clone());
            }
            end.error = end.error.map(|e| e.replace(&shown, &up.name));
            Ok(end)
        }
        // options were checked before the answer started
        Err(Stop::Option(e)) => Ok(FileEnd { summary: None, error: Some(e.replace(&shown, &up.name)) }),
        Err(Stop::Sink(_)) => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A mono 16-bit WAV at 8 kHz; `unknown`: its RIFF and data lengths left unwritten
    /// (0xFFFFFFFF, as a recorder that never finished leaves them), so the length is
    /// known only by decoding.
    fn wav(seconds: f64, unknown: bool) -> Vec<u8> {
        let data = vec![0u8; 2 * (seconds * 8000.0) as usize];
        let (riff, len) = if unknown { (u32::MAX, u32::MAX) } else { (36 + data.len() as u32, data.len() as u32) };
        let mut w = b"RIFF".to_vec();
        w.extend_from_slice(&riff.to_le_bytes());
        w.extend_from_slice(b"WAVEfmt ");
        for v in [16u32.to_le_bytes().to_vec(), 1u16.to_le_bytes().to_vec(), 1u16.to_le_bytes().to_vec()] {
            w.extend_from_slice(&v);
        }
        w.extend_from_slice(&8000u32.to_le_bytes());
        w.extend_from_slice(&16000u32.to_le_bytes());
        w.extend_from_slice(&2u16.to_le_bytes());
        w.extend_from_slice(&16u16.to_le_bytes());
        w.extend_from_slice(b"data");
        w.extend_from_slice(&len.to_le_bytes());
        w.extend_from_slice(&data);
        w
    }

    /// The worker's sender: never waits while the answer has room ahead of its reader; past
    /// that it waits for the reader at most its `wait`, then fails (the worker stops and
    /// frees its thread); a body gone fails at once.
    #[test]
    fn a_sender_waits_only_when_the_reader_is_far_behind() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let room = Arc::new(Semaphore::new(10));
        let mut s = ChunkSender { buf: Vec::new(), tx, room: room.clone(), ahead: 10, wait: Duration::from_millis(50) };
        let (s, first, second) = rt
            .block_on(rt.spawn_blocking(move || {
                s.write_all(b"0123456789").unwrap();
                let first = s.flush();
                s.write_all(b"more").unwrap();
                let second = s.flush();
                (s, first, second)
            }))
            .unwrap();
        assert!(first.is_ok());
        assert_eq!(second.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert_eq!(rx.try_recv().unwrap(), (Bytes::from_static(b"0123456789"), 10));
        // the reader took the chunk (its room comes back): sending goes on
        room.add_permits(10);
        let mut s = s;
        s.write_all(b"again").unwrap();
        assert!(s.flush().is_ok());
        // the body dropped (the client went away): the next send fails at once
        room.close();
        s.write_all(b"x").unwrap();
        assert_eq!(s.flush().unwrap_err().kind(), io::ErrorKind::BrokenPipe);
    }

    /// Too long: the length when the file states it; when counting stopped at the limit,
    /// no length (the count would be the limit, not the file's length).
    #[test]
    fn too_long_names_only_a_known_length() {
        let refused = |bytes: &[u8]| match open_checked(bytes, "x.wav", 1.0) {
            Err(FileError::TooLong(m)) => m,
            Err(FileError::Failed(m)) => panic!("failed: {m}"),
            Ok(_) => panic!("accepted"),
        };
        assert_eq!(refused(&wav(3.0, false)), "x.wav: more than 1 s of audio (the server's limit): 3.0 s");
        assert_eq!(refused(&wav(3.0, true)), "x.wav: more than 1 s of audio (the server's limit)");
        assert!(open_checked(&wav(0.5, true), "x.wav", 1.0).is_ok());
    }
}
