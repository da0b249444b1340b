//! The page at `/`: one self-contained HTML file (no CDN, no build step), compiled into
//! the binary. Microphone (AudioWorklet -> `/v1/stream`) or a dropped file
//! (`/v1/segments`), a live timeline, probability bars and a summary.

use axum::http::header;
use axum::response::IntoResponse;

const PAGE: &str = include_str!("page/index.html");

pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // everything is inline; the page talks to this server only (blob: for the worklet)
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'self' 'unsafe-inline' blob:; style-src 'unsafe-inline'; connect-src 'self' ws: wss:; img-src 'self' data:",
            ),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}

#[cfg(test)]
mod tests {
    use super::PAGE;

    #[test]
    fn file_pickers_offer_every_format_the_runtime_decodes() {
        // a picker filters by `accept`: a format missing there is hidden from the user
        // (`audio/*` does not cover `.webm`, which systems type as video)
        let accepts: Vec<&str> = PAGE.split("accept=\"").skip(1).map(|s| &s[..s.find('"').unwrap()]).collect();
        assert_eq!(accepts.len(), 2, "the recording and the adaptation pickers");
        for accept in accepts {
            let listed: Vec<&str> = accept.split(',').filter_map(|e| e.strip_prefix('.')).collect();
            assert_eq!(listed, serlaq_core::audio::SUFFIXES, "{accept}");
        }
    }
}
