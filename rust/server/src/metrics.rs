//! `/metrics`: requests, errors and latency per endpoint, open streams, audio seconds
//! processed, in the OpenMetrics text format Prometheus scrapes (prometheus-client).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Route {
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Answer {
    pub endpoint: String,
    pub status: u16,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<Answer, Counter>,
    pub errors: Family<Route, Counter>,
    pub latency: Family<Route, Histogram>,
    pub open_streams: Gauge,
    pub audio_seconds: Counter<f64, AtomicU64>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("serlaq");
        let requests = Family::<Answer, Counter>::default();
        let errors = Family::<Route, Counter>::default();
        // 0.5 ms .. ~16 s
        let latency =
            Family::<Route, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16)));
        let open_streams = Gauge::default();
        let audio_seconds = Counter::<f64, AtomicU64>::default();
        registry.register("http_requests", "HTTP requests answered, by endpoint and status", requests.clone());
        registry.register("http_request_errors", "requests answered with a 4xx or 5xx, by endpoint", errors.clone());
        registry.register(
            "http_request_duration_seconds",
            "time from a request to the end of its answer's body (the last line of a streamed answer)",
            latency.clone(),
        );
        registry.register("open_streams", "WebSocket streams open now", open_streams.clone());
        registry.register(
            "audio_seconds",
            "seconds of audio processed (predict, segments, streams)",
            audio_seconds.clone(),
        );
        Metrics { registry, requests, errors, latency, open_streams, audio_seconds }
    }

    pub fn record(&self, endpoint: &str, status: u16, seconds: f64) {
        let endpoint = endpoint.to_string();
        self.requests.get_or_create(&Answer { endpoint: endpoint.clone(), status }).inc();
        if status >= 400 {
            self.errors.get_or_create(&Route { endpoint: endpoint.clone() }).inc();
        }
        self.latency.get_or_create(&Route { endpoint }).observe(seconds);
    }

    pub fn add_audio(&self, seconds: f64) {
        if seconds.is_finite() && seconds > 0.0 {
            self.audio_seconds.inc_by(seconds);
        }
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        // writing into a String cannot fail
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
