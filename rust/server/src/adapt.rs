//! `POST /v1/adapt`: `serlaq adapt` over HTTP. The clips uploaded (multipart, each file a
//! clip; or one raw body, e.g. a long recording, which counts as its speech windows) adapt
//! the named model, and the answer is the adapted `.laq` file: byte for byte what
//! `serlaq-rt adapt` writes from the same files and options (dated now, or by
//! `SOURCE_DATE_EPOCH`). With `serve=NAME` the server also serves the adapted model under
//! that name from then on (`models::Registry`: in memory, at most `--max-adapted`, gone when
//! the server stops); without it nothing is kept.

use crate::error::ApiError;
use crate::models::ServeError;
use crate::predict::{flag, internal_task, open_checked, uploads};
use crate::state::{query_pairs, AppState};
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serlaq_core::adapt::{
    adapt_gathered, held_columns, parse_labels, source_text, AdaptError, AdaptOptions, Gathered, StdRule,
};
use serlaq_core::audio;
use serlaq_core::runtime::{panic_text, ModelSource};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

const KEYS: [&str; 6] = ["model", "labels", "balance", "std", "source", "serve"];

/// What a request asks: the model to adapt, how, and the name to serve the result under.
#[derive(Debug)]
struct Request {
    model: Option<String>,
    opts: AdaptOptions,
    serve: Option<String>,
}

/// The query, each value checked and named in the error: `model`, `labels` (comma-separated),
/// `balance` (true/false), `std` (widen, target, model), `source` (recorded in the file;
/// default the uploads' names, as `serlaq adapt` records the files it is given), `serve`
/// (a model name).
fn options(query: Option<&str>) -> Result<Request, ApiError> {
    let bad = |detail: String| ApiError::bad_request("bad parameter", detail);
    let mut model = None;
    let mut serve = None;
    let mut opts = AdaptOptions::default();
    for (k, v) in query_pairs(query.unwrap_or("")) {
        match k.as_str() {
            "api_key" => {}
            "model" => model = Some(v),
            "serve" => serve = Some(v),
            "labels" => opts.labels = parse_labels(&v),
            "balance" => opts.balance = flag("balance", &v)?,
            "std" => opts.std = StdRule::parse(&v).map_err(bad)?,
            "source" => opts.source = v,
            _ => return Err(bad(format!("{k}: unknown parameter (accepted: {})", KEYS.join(", ")))),
        }
    }
    Ok(Request { model, opts, serve })
}

fn serve_refusal(e: ServeError) -> ApiError {
    match e {
        ServeError::Name(detail) => ApiError::bad_request("bad parameter", detail),
        ServeError::Full(detail) => ApiError::new(StatusCode::CONFLICT, "too many adapted models", detail),
    }
}

/// A header value of `text` with every byte outside printable ASCII written `\xNN` (a file
/// name may be any UTF-8; a header may not).
fn ascii_header(text: &str) -> HeaderValue {
    HeaderValue::from_str(&escaped(text)).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// `text` with every byte outside printable ASCII (and `\\`) written `\\xNN`.
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'\\' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Most bytes of the `X-Serlaq-Left-Out` header: the names come from the client, and a
/// client's own limit on a response head is often 16-64 KiB.
const LEFT_OUT_HEADER_BYTES: usize = 8 << 10;

/// The files left out, joined by ` | `, as many as fit in [`LEFT_OUT_HEADER_BYTES`], then how
/// many more.
fn left_out_header(failures: &[String]) -> HeaderValue {
    let mut shown: Vec<String> = Vec::new();
    let mut bytes = 0;
    for (i, f) in failures.iter().enumerate() {
        let line = escaped(f);
        bytes += line.len() + if i == 0 { 0 } else { 3 };
        if bytes > LEFT_OUT_HEADER_BYTES {
            shown.push(format!("... and {} more", failures.len() - i));
            break;
        }
        shown.push(line);
    }
    HeaderValue::from_str(&shown.join(" | ")).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

fn refusal(e: AdaptError) -> ApiError {
    let left = |failures: &[String]| match failures.len() {
        0 => String::new(),
        _ => format!("; left out: {}", failures.join("; ")),
    };
    match &e {
        AdaptError::TooLittle { failures, .. } | AdaptError::NoUsableAudio { failures } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "too little audio", format!("{e}{}", left(failures)))
        }
        AdaptError::Labels(_) => ApiError::bad_request("bad parameter", e.to_string()),
        AdaptError::Build(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", e.to_string()),
    }
}

/// `POST /v1/adapt?model=&labels=&balance=&std=&source=&serve=`: 200 with the adapted `.laq`
/// (`application/octet-stream`), its summary line in `X-Serlaq-Summary` (what `serlaq
/// adapt` prints after the model's name), the files left out, one line each, in
/// `X-Serlaq-Left-Out` (joined by ` | `) and, with `serve`, the name it is now served under
/// in `X-Serlaq-Served-As`; 422 `too little audio` says how much more, 409 `too many adapted
/// models` names the ones served.
pub async fn adapt(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // a label the model lacks, or a name it cannot be served under, is refused before any
    // audio is decoded
    let checks = async {
        let Request { model: name, opts, serve } = options(query.as_deref())?;
        let entry = state.model(name.as_deref())?;
        if !opts.labels.is_empty() {
            held_columns(entry.model.labels(), &opts.labels).map_err(refusal)?;
        }
        if let Some(serve) = &serve {
            state.models.check_serve(serve).map_err(serve_refusal)?;
        }
        Ok((opts, serve, entry, state.work_slot().await?))
    };
    let ((opts, serve, entry, _slot), body) = state.before_body(&headers, body, checks).await?;
    let model = entry.model.clone();
    let (files, _) = uploads(&state, &headers, body, Some("-")).await?;
    let mut opts = opts;
    if opts.source.is_empty() {
        // every file given, as `serlaq adapt` records its arguments, the unusable ones too
        opts.source = source_text(&files.iter().map(|f| f.name.clone()).collect::<Vec<_>>());
    }
    let max_seconds = state.limits.max_audio_seconds;
    let file_name = format!("{}-adapted.laq", entry.name);
    let origin = file_name.clone();
    let keep = serve.is_some();
    let (done, adapted) = tokio::task::spawn_blocking(move || {
        let spec = model.spec();
        let mut gathered = Gathered::new();
        for up in &files {
            let wave = catch_unwind(AssertUnwindSafe(|| {
                let decoder = open_checked(&up.bytes, &up.name, max_seconds).map_err(|e| e.message().to_string())?;
                audio::load_from(decoder, spec.sample_rate, spec.min_samples()).map_err(|e| e.to_string())
            }))
            .unwrap_or_else(|p| Err(format!("{}: {}", up.name, panic_text(&*p))));
            // the features are computed under the gatherer's own guard
            if let Err(why) = wave.and_then(|w| gathered.add_wave(&model, &w, &up.name)) {
                gathered.left_out(why);
            }
        }
        let done = adapt_gathered(&model, &gathered, &opts).map_err(refusal)?;
        // the model to serve is read back from the file's bytes, as a client would load it
        let adapted = match keep {
            true => Some(
                ModelSource::Bytes { name: origin, bytes: done.bytes.clone() }
                    .load()
                    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error", e.to_string()))?,
            ),
            false => None,
        };
        Ok::<_, ApiError>((done, adapted))
    })
    .await
    .map_err(|_| internal_task())??;
    state.metrics.add_audio(done.seconds);
    if let (Some(serve), Some(adapted)) = (&serve, adapted) {
        state.models.serve_adapted(serve, adapted, &file_name).map_err(serve_refusal)?;
    }
    let disposition = format!("attachment; filename=\"{file_name}\"");
    let summary = ascii_header(&done.summary());
    let left_out = (!done.failures.is_empty()).then(|| left_out_header(&done.failures));
    let mut response = (StatusCode::OK, done.bytes).into_response();
    let head = response.headers_mut();
    head.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    head.insert(header::CONTENT_DISPOSITION, ascii_header(&disposition));
    head.insert(header::HeaderName::from_static("x-serlaq-summary"), summary);
    if let Some(lines) = left_out {
        head.insert(header::HeaderName::from_static("x-serlaq-left-out"), lines);
    }
    if let Some(serve) = &serve {
        head.insert(header::HeaderName::from_static("x-serlaq-served-as"), ascii_header(serve));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_stay_ascii_and_say_the_bytes() {
        assert_eq!(ascii_header("a.wav: too short").to_str().unwrap(), "a.wav: too short");
        assert_eq!(ascii_header("é\\\n").to_str().unwrap(), "\\xc3\\xa9\\x5c\\x0a");
    }

    #[test]
    fn the_left_out_header_is_bounded() {
        let few = ["a.wav: empty audio".to_string(), "b.wav: too short".to_string()];
        assert_eq!(left_out_header(&few).to_str().unwrap(), "a.wav: empty audio | b.wav: too short");
        let many: Vec<String> = (0..64).map(|i| format!("{}{i}.wav: empty audio", "\u{e9}".repeat(200))).collect();
        let h = left_out_header(&many);
        assert!(h.len() <= LEFT_OUT_HEADER_BYTES + 32, "{}", h.len());
        let shown = h.to_str().unwrap();
        let n = shown.matches(" | ").count(); // the lines kept, then "... and K more"
        assert!(n >= 2 && shown.ends_with(&format!(" | ... and {} more", 64 - n)), "{shown}");
    }

    #[test]
    fn every_option_is_checked_by_name() {
        let r = options(Some("model=emo&labels=sad,%20angry&balance=false&std=target&source=hall&serve=room")).unwrap();
        assert_eq!((r.model.as_deref(), r.serve.as_deref()), (Some("emo"), Some("room")));
        let o = r.opts;
        assert_eq!(
            (o.labels, o.balance, o.std, o.source.as_str()),
            (vec!["sad".into(), "angry".into()], false, StdRule::Target, "hall")
        );
        for (q, want) in [
            ("std=wide", "std: unknown rule \"wide\""),
            ("balance=maybe", "balance: \"maybe\" is not true or false"),
            ("window=2", "window: unknown parameter (accepted: model, labels, balance, std, source, serve)"),
        ] {
            let e = options(Some(q)).unwrap_err();
            assert!(e.detail.starts_with(want), "{q}: {}", e.detail);
        }
    }
}
