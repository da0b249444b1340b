//! The plain-data structs of `serlaq.h`, shared by the C ABI and the WebAssembly module
//! (same `#[repr(C)]` layout on both; the header's static asserts and a test pin it).
#![allow(non_camel_case_types)]

use serlaq_core::adapt::{parse_labels, AdaptOptions, StdRule};
use serlaq_core::segments::{
    Segment, SegmentOptions, Vad, DEFAULT_HOP, DEFAULT_MIN_SPEECH, DEFAULT_VAD_DB, DEFAULT_WINDOW,
};

/// How a stream is cut into windows (`serlaq_stream_options` in C).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct serlaq_stream_options {
    pub window: f64,
    pub hop: f64,
    pub vad: i32,
    pub vad_db: f64,
    pub min_speech: f64,
}

impl Default for serlaq_stream_options {
    fn default() -> Self {
        serlaq_stream_options {
            window: DEFAULT_WINDOW,
            hop: DEFAULT_HOP,
            vad: 1,
            vad_db: DEFAULT_VAD_DB,
            min_speech: DEFAULT_MIN_SPEECH,
        }
    }
}

impl serlaq_stream_options {
    /// The core's options (their bounds are checked by the core when a stream starts).
    pub fn to_core(&self) -> SegmentOptions {
        SegmentOptions {
            window: self.window,
            hop: self.hop,
            vad: (self.vad != 0).then_some(Vad { threshold_db: self.vad_db, min_speech: self.min_speech }),
            running: None,
        }
    }
}

/// One finished window (`serlaq_segment` in C).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct serlaq_segment {
    pub index: u64,
    pub start: u64,
    pub end: u64,
    pub start_seconds: f64,
    pub end_seconds: f64,
    pub voiced: f64,
    /// Index of the most probable label, -1 for a silence window.
    pub label: i32,
    /// Its probability (0 for silence).
    pub confidence: f32,
}

impl serlaq_segment {
    pub fn from_core(s: &Segment) -> serlaq_segment {
        let (label, confidence) = s.best().map_or((-1, 0.0), |(i, p)| (i as i32, p as f32));
        serlaq_segment {
            index: s.index,
            start: s.start,
            end: s.end,
            start_seconds: s.start_seconds,
            end_seconds: s.end_seconds,
            voiced: s.voiced,
            label,
            confidence,
        }
    }
}

/// How an adapter adapts (`serlaq_adapt_options` in C); the strings are read when it
/// finishes. `std_rule` indexes [`StdRule::ALL`] (`SERLAQ_STD_WIDEN` 0, `_TARGET` 1,
/// `_MODEL` 2).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct serlaq_adapt_options {
    pub balance: i32,
    pub std_rule: i32,
    pub labels: *const std::ffi::c_char,
    pub source: *const std::ffi::c_char,
}

impl Default for serlaq_adapt_options {
    fn default() -> Self {
        serlaq_adapt_options { balance: 1, std_rule: 0, labels: std::ptr::null(), source: std::ptr::null() }
    }
}

/// The core's adaptation options from the ABI's: `balance` (0 off), the std rule's
/// number, the labels held as comma-separated text (empty: all) and the recorded source
/// (empty: the clips' names). The C struct and the WebAssembly arguments both come here.
pub fn adapt_options(
    balance: i32,
    std: i32,
    labels: &str,
    source: String,
) -> Result<AdaptOptions, crate::error::Error> {
    Ok(AdaptOptions {
        balance: balance != 0,
        std: std_rule(std)?,
        labels: parse_labels(labels),
        source,
        ..AdaptOptions::default()
    })
}

/// The std rule numbered `n` in the ABI (the order of [`StdRule::ALL`]), or an argument
/// error naming the numbers.
pub fn std_rule(n: i32) -> Result<StdRule, crate::error::Error> {
    usize::try_from(n).ok().and_then(|i| StdRule::ALL.get(i).copied()).ok_or_else(|| {
        let names: Vec<String> = StdRule::ALL.iter().enumerate().map(|(i, r)| format!("{i} ({})", r.name())).collect();
        crate::error::Error::argument(format!("std_rule {n} is not one of {}", names.join(", ")))
    })
}
