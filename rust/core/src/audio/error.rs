//! [`AudioError`]: one variant per way audio can be unusable; `Display` is one line,
//! "<source>: <kind> (<details>)", where `<source>` is the file or the caller's name for
//! the waveform and `<kind>` is [`AudioError::kind`].

use std::fmt;

/// Every failure of the audio path. `source` names the file or waveform in every variant.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioError {
    /// The path does not exist.
    NotFound { source: String },
    /// The path exists but is not a regular file (a directory, ...).
    NotAFile { source: String },
    /// The OS refused to read the file.
    Io { source: String, message: String },
    /// The bytes are not a container or codec the decoder knows. `format` is what was
    /// detected or claimed (magic bytes, then the file extension).
    Unsupported { source: String, format: String, detail: String },
    /// A packet failed to decode part-way through the file (corrupt data).
    Corrupt { source: String, at_seconds: f64, detail: String },
    /// The data ends before the length the header declares.
    Truncated { source: String, at_seconds: f64, declared_seconds: f64 },
    /// No samples at all.
    Empty { source: String },
    /// NaN or infinite samples: `count` of the `total` samples (all channels).
    NonFinite { source: String, count: u64, total: u64 },
    /// A peak beyond [`super::limits::MAX_PEAK`]: damaged data, not a recording.
    OutOfRange { source: String, peak: f64 },
    /// The peak is below [`super::limits::SILENCE_PEAK_DBFS`] (`-inf` for digital silence).
    Silent { source: String, peak_dbfs: f64 },
    /// Fewer than `min_samples` samples after resampling to `target_rate`.
    TooShort { source: String, seconds: f64, min_samples: usize, target_rate: u32 },
    /// A sample rate outside the bounds of [`super::limits`]; `what` is "sample rate" or
    /// "target rate".
    Rate { source: String, what: &'static str, rate: u64, min: u32, max: u32 },
    /// A channel count of 0 or more than [`super::limits::MAX_CHANNELS`].
    Channels { source: String, channels: u64 },
    /// Longer than [`super::limits::MAX_SECONDS`] for a whole-clip read.
    TooLong { source: String, seconds: f64 },
    /// An in-memory waveform with an impossible shape (e.g. samples not a multiple of channels).
    Shape { source: String, detail: String },
    /// A bug in serlaq or a library (a caught panic, a resampler buffer error).
    Internal { source: String, detail: String },
}

/// Every [`AudioError::kind`], in declaration order (a test raises each one).
pub const ALL_KINDS: &[&str] = &[
    "file not found",
    "not a file",
    "cannot read audio",
    "cannot decode audio",
    "corrupt audio",
    "truncated audio",
    "empty audio",
    "NaN/inf samples",
    "samples out of range",
    "all silent",
    "too short",
    "unsupported sample rate",
    "unsupported channel count",
    "too long",
    "bad waveform",
    "internal error",
];

impl AudioError {
    /// The short, stable name of the failure: the text between "<source>: " and " (".
    pub fn kind(&self) -> &'static str {
        use AudioError::*;
        match self {
            NotFound { .. } => ALL_KINDS[0],
            NotAFile { .. } => ALL_KINDS[1],
            Io { .. } => ALL_KINDS[2],
            Unsupported { .. } => ALL_KINDS[3],
            Corrupt { .. } => ALL_KINDS[4],
            Truncated { .. } => ALL_KINDS[5],
            Empty { .. } => ALL_KINDS[6],
            NonFinite { .. } => ALL_KINDS[7],
            OutOfRange { .. } => ALL_KINDS[8],
            Silent { .. } => ALL_KINDS[9],
            TooShort { .. } => ALL_KINDS[10],
            Rate { .. } => ALL_KINDS[11],
            Channels { .. } => ALL_KINDS[12],
            TooLong { .. } => ALL_KINDS[13],
            Shape { .. } => ALL_KINDS[14],
            Internal { .. } => ALL_KINDS[15],
        }
    }

    /// The file or waveform the error is about.
    pub fn source_name(&self) -> &str {
        use AudioError::*;
        match self {
            NotFound { source }
            | NotAFile { source }
            | Io { source, .. }
            | Unsupported { source, .. }
            | Corrupt { source, .. }
            | Truncated { source, .. }
            | Empty { source }
            | NonFinite { source, .. }
            | OutOfRange { source, .. }
            | Silent { source, .. }
            | TooShort { source, .. }
            | Rate { source, .. }
            | Channels { source, .. }
            | TooLong { source, .. }
            | Shape { source, .. }
            | Internal { source, .. } => source,
        }
    }
}

/// Collapses whitespace (newlines included) so a message stays on one line.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl fmt::Display for AudioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use super::limits::{MAX_CHANNELS, MAX_PEAK, MAX_SECONDS, SILENCE_PEAK_DBFS};
        use AudioError::*;
        write!(f, "{}: {}", one_line(self.source_name()), self.kind())?;
        match self {
            NotFound { .. } | NotAFile { .. } => Ok(()),
            Io { message, .. } => write!(f, " ({})", one_line(message)),
            Unsupported { format, detail, .. } => write!(f, " (format: {}; {})", one_line(format), one_line(detail)),
            Corrupt { at_seconds, detail, .. } => {
                write!(f, " (decode error at {at_seconds:.3} s: {})", one_line(detail))
            }
            Truncated { at_seconds, declared_seconds, .. } => {
                write!(f, " (data ends at {at_seconds:.3} s of the {declared_seconds:.3} s the header declares)")
            }
            Empty { .. } => write!(f, " (0 samples)"),
            NonFinite { count, total, .. } => write!(f, " ({count} of {total})"),
            OutOfRange { peak, .. } => {
                write!(f, " (peak {peak:.1e}: audio samples lie within about -1..1, and a peak beyond {MAX_PEAK:.0e} is damaged data)")
            }
            Silent { peak_dbfs, .. } => {
                let level = if peak_dbfs.is_finite() { format!("{peak_dbfs:.1}") } else { "-inf".to_string() };
                write!(f, " (peak {level} dBFS, threshold {SILENCE_PEAK_DBFS:.0} dBFS)")
            }
            TooShort { seconds, min_samples, target_rate, .. } => write!(
                f,
                " ({seconds:.3} s; features need at least {:.3} s = {min_samples} samples at {target_rate} Hz)",
                *min_samples as f64 / *target_rate as f64
            ),
            Rate { what, rate, min, max, .. } => write!(f, " ({what} {rate} Hz; must be {min}..={max} Hz)"),
            Channels { channels, .. } => write!(f, " ({channels}; must be 1..={MAX_CHANNELS})"),
            TooLong { seconds, .. } => write!(
                f,
                " ({seconds:.1} s; whole clips are limited to {MAX_SECONDS} s: use segment mode for long recordings)"
            ),
            Shape { detail, .. } | Internal { detail, .. } => write!(f, " ({})", one_line(detail)),
        }
    }
}

impl std::error::Error for AudioError {}
