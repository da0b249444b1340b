//! Offline segmentation of a file: the [`Segmenter`] loop over the decoder's packets
//! (mono, source rate), so a file is never held whole and gives exactly what streaming
//! its decoded samples would.

use super::{Segment, SegmentError, SegmentOptions, Segmenter};
use crate::audio::limits::MAX_PEAK;
use crate::audio::{AudioError, Decoder};
use crate::model::Model;
use std::path::Path;

/// The segments of one file and, when it could not be read to its end, why.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSegments {
    /// Every window completed before the end of the file or the damage, in order.
    pub segments: Vec<Segment>,
    /// What stopped the file early (open/decode failure, NaN samples, too short).
    pub error: Option<SegmentError>,
}

/// Segments `path`: see [`segment_file_each`].
pub fn segment_file(model: &Model, path: &Path, opts: &SegmentOptions) -> FileSegments {
    let mut segments = Vec::new();
    let error = segment_file_each(model, path, opts, |s| segments.push(s.clone()));
    FileSegments { segments, error }
}

/// Segments `path`, calling `on_segment` for each window as soon as it is complete
/// (a CLI writes it right away). Returns the error that ended the file early, if any: a
/// file that fails to open gives no segments; one that is truncated, corrupt or holds a
/// NaN part-way gives the windows before the damage (the last one aligned to the damage,
/// as at a normal end), then the error, whose message names the file and the time.
pub fn segment_file_each(
    model: &Model,
    path: &Path,
    opts: &SegmentOptions,
    mut on_segment: impl FnMut(&Segment),
) -> Option<SegmentError> {
    let source = crate::audio::source_name(path);
    let mut decoder = match Decoder::open(path) {
        Ok(d) => d,
        Err(e) => return Some(e.into()),
    };
    let mut seg = match Segmenter::new(model, decoder.sample_rate(), opts, &source) {
        Ok(s) => s,
        Err(e) => return Some(e),
    };
    let mut mono = Vec::new();
    let stop = loop {
        match decoder.next_mono(&mut mono) {
            Ok(true) => {
                // damaged data, named as a whole-clip read names it (not as a window's features)
                let peak = mono.iter().fold(0f32, |m, v| m.max(v.abs()));
                if peak > MAX_PEAK {
                    break Some(AudioError::OutOfRange { source: source.clone(), peak: peak as f64 }.into());
                }
                match seg.push(model, &mono) {
                    Ok(done) => done.iter().for_each(&mut on_segment),
                    Err(e) => break Some(e),
                }
            }
            Ok(false) => break None,
            Err(e) => break Some(SegmentError::Audio(e)),
        }
    };
    match (seg.finish(model), stop) {
        (Ok(rest), stop) => {
            rest.iter().for_each(&mut on_segment);
            stop
        }
        // the damage explains a short remainder better than "too short" does
        (Err(SegmentError::TooShort { .. }), Some(stop)) => Some(stop),
        (Err(e), None) => Some(match e {
            SegmentError::TooShort { .. } if decoder.frames() == 0 => AudioError::Empty { source }.into(),
            e => e,
        }),
        (Err(_), Some(stop)) => Some(stop),
    }
}
