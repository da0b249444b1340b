//! The native audio path: decode (symphonia), downmix to mono, resample (rubato), validate.
//!
//! - [`AudioReader`]: a file (or bytes) as mono `f32` chunks at a target rate, read packet
//!   by packet: the streaming / segment entry point, no duration limit.
//! - [`load`]: a whole file, validated like [`prepare`] (at most [`limits::MAX_SECONDS`]).
//! - [`prepare`]: an in-memory waveform (planar or interleaved) -> validated mono at the
//!   target rate.
//! - [`Resampler`], [`resample`]: the one resampler (see [`resample`](mod@resample) for the
//!   filter), used by both the runtime and training.
//! - [`AudioError`]: one variant per failure, `Display` = "<source>: <kind> (<details>)".
//!
//! Validation, in this order: empty, NaN/inf samples (counted over all channels), a peak
//! beyond [`limits::MAX_PEAK`] (damaged data), all silent (peak of the mono signal below [`limits::SILENCE_PEAK_DBFS`]), too short (fewer
//! than `min_samples` after resampling). Rates, channel counts and durations from a header
//! are bounded ([`limits`]) before anything is allocated from them.

mod aiff;
#[cfg(feature = "m4a")]
mod caf;
pub mod decode;
pub mod error;
#[cfg(feature = "m4a")]
mod ima4;
pub mod limits;
#[cfg(feature = "opus")]
mod mkv;
#[cfg(feature = "m4a")]
pub mod mp4;
#[cfg(feature = "opus")]
pub mod opus;
pub mod resample;
mod wav;

pub use decode::{
    source_name, Decoder, AAC_UNREAD, AIFC_UNREAD, FILE_ONLY, FORMATS, IMA4_DAMAGED, MP4_INDEX_AFTER_AUDIO, STDIN_PATH,
    SUFFIXES, UNDECODED,
};
pub use error::{AudioError, ALL_KINDS};
pub use resample::{output_len, resample, resample_ref, Resampler};

use limits::{silence_peak, MAX_CHANNELS, MAX_PEAK, MAX_SECONDS};
use resample::{check_input_rate, check_target_rate};
use std::borrow::Cow;
use std::path::Path;

/// A file or byte buffer as mono `f32` chunks at `target_rate`, decoded incrementally.
///
/// NaN/inf samples end the stream with [`AudioError::NonFinite`] at the packet holding
/// them, a peak beyond [`limits::MAX_PEAK`] with [`AudioError::OutOfRange`]; a truncated or corrupt file yields the chunks before the damage, then the error.
/// Silence and length are not judged here (a stream's consumer decides per segment).
#[derive(Debug)]
pub struct AudioReader<'s> {
    decoder: Decoder<'s>,
    resampler: Resampler,
    mono: Vec<f32>,
    out: Vec<f32>,
    peak: f32,
    finished: bool,
}

impl AudioReader<'static> {
    /// Opens `path` (header only); chunks come from [`next_chunk`](Self::next_chunk).
    pub fn open(path: &Path, target_rate: u32) -> Result<AudioReader<'static>, AudioError> {
        check_target_rate(target_rate as u64, &source_name(path))?;
        AudioReader::new(Decoder::open(path)?, target_rate)
    }
}

impl<'s> AudioReader<'s> {
    /// Reads from memory; `source` names the bytes in errors.
    pub fn from_bytes(bytes: &'s [u8], source: &str, target_rate: u32) -> Result<AudioReader<'s>, AudioError> {
        check_target_rate(target_rate as u64, source)?;
        AudioReader::new(Decoder::from_bytes(bytes, source, None)?, target_rate)
    }

    /// Wraps an open [`Decoder`].
    pub fn new(decoder: Decoder<'s>, target_rate: u32) -> Result<AudioReader<'s>, AudioError> {
        let resampler = Resampler::new(decoder.sample_rate(), target_rate).map_err(|e| rename(e, decoder.source()))?;
        Ok(AudioReader { decoder, resampler, mono: Vec::new(), out: Vec::new(), peak: 0.0, finished: false })
    }

    /// The decoder (rate, channels, format, frames read so far).
    pub fn decoder(&self) -> &Decoder<'s> {
        &self.decoder
    }

    /// The output rate in Hz.
    pub fn target_rate(&self) -> u32 {
        self.resampler.new_rate()
    }

    /// The peak |sample| of the mono signal (source rate) read so far.
    pub fn peak(&self) -> f32 {
        self.peak
    }

    /// The next resampled chunk (never empty), or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> Result<Option<&[f32]>, AudioError> {
        self.out.clear();
        while self.out.is_empty() && !self.finished {
            let before = self.decoder.nonfinite();
            if self.decoder.next_mono(&mut self.mono)? {
                if self.decoder.nonfinite() > before {
                    self.finished = true;
                    let total = self.decoder.frames() * self.decoder.channels() as u64;
                    return Err(AudioError::NonFinite {
                        source: self.decoder.source().to_string(),
                        count: self.decoder.nonfinite(),
                        total,
                    });
                }
                self.peak = self.mono.iter().fold(self.peak, |m, v| m.max(v.abs()));
                if self.peak > MAX_PEAK {
                    self.finished = true;
                    let source = self.decoder.source().to_string();
                    return Err(AudioError::OutOfRange { source, peak: self.peak as f64 });
                }
                self.resampler.push(&self.mono, &mut self.out).map_err(|e| rename(e, self.decoder.source()))?;
            } else {
                self.finished = true;
                self.resampler.finish(&mut self.out).map_err(|e| rename(e, self.decoder.source()))?;
            }
        }
        Ok(if self.out.is_empty() { None } else { Some(&self.out) })
    }
}

/// Replaces the placeholder source of a resampler error with the file's name.
fn rename(e: AudioError, source: &str) -> AudioError {
    match e {
        AudioError::Rate { what, rate, min, max, .. } => {
            AudioError::Rate { source: source.into(), what, rate, min, max }
        }
        AudioError::Internal { detail, .. } => AudioError::Internal { source: source.into(), detail },
        other => other,
    }
}

/// The checks both whole-clip paths share, in the order of the module docs.
struct Checks<'a> {
    source: &'a str,
    frames: u64,
    channels: usize,
    nonfinite: u64,
    peak: f32,
    rate: u32,
    target_rate: u32,
    out_len: usize,
    min_samples: usize,
}

impl Checks<'_> {
    fn run(&self) -> Result<(), AudioError> {
        let source = self.source.to_string();
        if self.frames == 0 {
            return Err(AudioError::Empty { source });
        }
        if self.nonfinite > 0 || !self.peak.is_finite() {
            let total = self.frames * self.channels as u64;
            return Err(AudioError::NonFinite { source, count: self.nonfinite.max(1), total });
        }
        if self.peak > MAX_PEAK {
            return Err(AudioError::OutOfRange { source, peak: self.peak as f64 });
        }
        if self.peak < silence_peak() {
            let peak_dbfs = if self.peak == 0.0 { f64::NEG_INFINITY } else { 20.0 * (self.peak as f64).log10() };
            return Err(AudioError::Silent { source, peak_dbfs });
        }
        if self.out_len < self.min_samples {
            return Err(AudioError::TooShort {
                source,
                seconds: self.frames as f64 / self.rate as f64,
                min_samples: self.min_samples,
                target_rate: self.target_rate,
            });
        }
        Ok(())
    }
}

fn too_long(source: &str, frames: u64, rate: u32) -> Result<(), AudioError> {
    if frames > MAX_SECONDS * rate as u64 {
        return Err(AudioError::TooLong { source: source.into(), seconds: frames as f64 / rate as f64 });
    }
    Ok(())
}

/// Output samples reserved up front from a header's length (the rest grows as decoded).
const MAX_RESERVE: u64 = 1 << 24;

/// A whole file as validated mono `f32` at `target_rate` (see the module docs).
pub fn load(path: &Path, target_rate: u32, min_samples: usize) -> Result<Vec<f32>, AudioError> {
    check_target_rate(target_rate as u64, &source_name(path))?;
    load_from(Decoder::open(path)?, target_rate, min_samples)
}

/// [`load`] from memory (fuzzing, embedded clips); `source` names the bytes in errors.
pub fn load_bytes(bytes: &[u8], source: &str, target_rate: u32, min_samples: usize) -> Result<Vec<f32>, AudioError> {
    check_target_rate(target_rate as u64, source)?;
    load_from(Decoder::from_bytes(bytes, source, None)?, target_rate, min_samples)
}

/// [`load`] from an open [`Decoder`].
pub fn load_from(mut decoder: Decoder<'_>, target_rate: u32, min_samples: usize) -> Result<Vec<f32>, AudioError> {
    let rate = decoder.sample_rate();
    let source = decoder.source().to_string();
    // a count the file cannot hold is a cut file: decoding finds where it ends and says so
    let declared = decoder.declared_frames().filter(|_| decoder.header_fits());
    if let Some(declared) = declared {
        too_long(&source, declared, rate)?;
    }
    let mut resampler = Resampler::new(rate, target_rate).map_err(|e| rename(e, &source))?;
    let expected = declared.map_or(0, |n| output_len(n, rate, target_rate));
    let mut out = Vec::with_capacity(expected.min(MAX_RESERVE) as usize);
    let mut mono = Vec::new();
    let mut peak = 0f32;
    while decoder.next_mono(&mut mono)? {
        too_long(&source, decoder.frames(), rate)?;
        if decoder.nonfinite() == 0 {
            // after a NaN the signal is unusable: keep counting, stop resampling
            peak = mono.iter().fold(peak, |m, v| m.max(v.abs()));
            resampler.push(&mono, &mut out).map_err(|e| rename(e, &source))?;
        }
    }
    resampler.finish(&mut out).map_err(|e| rename(e, &source))?;
    Checks {
        source: &source,
        frames: decoder.frames(),
        channels: decoder.channels(),
        nonfinite: decoder.nonfinite(),
        peak,
        rate,
        target_rate,
        out_len: out.len(),
        min_samples,
    }
    .run()?;
    Ok(out)
}

/// How the channels of an in-memory waveform are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `[ch0 s0, ch0 s1, ..., ch1 s0, ...]`: (channels, samples), torchaudio's layout.
    Planar,
    /// `[s0 ch0, s0 ch1, ..., s1 ch0, ...]`: (samples, channels), soundfile's layout.
    Interleaved,
}

/// An in-memory waveform -> validated mono `f32` at `target_rate` (what [`load`] does after
/// decoding): channels averaged, then resampled. `samples.len()` must be a multiple of
/// `channels`.
pub fn prepare(
    samples: &[f32],
    channels: usize,
    layout: Layout,
    rate: u32,
    target_rate: u32,
    min_samples: usize,
    source: &str,
) -> Result<Vec<f32>, AudioError> {
    check_input_rate(rate as u64, source)?;
    check_target_rate(target_rate as u64, source)?;
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(AudioError::Channels { source: source.into(), channels: channels as u64 });
    }
    if !samples.len().is_multiple_of(channels) {
        return Err(AudioError::Shape {
            source: source.into(),
            detail: format!("{} samples are not a multiple of {channels} channels", samples.len()),
        });
    }
    let frames = samples.len() / channels;
    too_long(source, frames as u64, rate)?;
    let nonfinite = samples.iter().filter(|v| !v.is_finite()).count() as u64;
    let mono: Cow<'_, [f32]> = if channels == 1 {
        Cow::Borrowed(samples)
    } else {
        let mut mono = vec![0f32; frames];
        match layout {
            Layout::Planar => {
                for (c, plane) in samples.chunks_exact(frames).enumerate() {
                    for (m, &v) in mono.iter_mut().zip(plane) {
                        *m = if c == 0 { v } else { *m + v };
                    }
                }
            }
            Layout::Interleaved => {
                for (m, frame) in mono.iter_mut().zip(samples.chunks_exact(channels)) {
                    *m = frame[1..].iter().fold(frame[0], |acc, &v| acc + v);
                }
            }
        }
        let n = channels as f32;
        mono.iter_mut().for_each(|m| *m /= n);
        Cow::Owned(mono)
    };
    let peak = mono.iter().fold(0f32, |m, v| m.max(v.abs()));
    let mut checks = Checks {
        source,
        frames: frames as u64,
        channels,
        nonfinite,
        peak: if nonfinite > 0 { f32::NAN } else { peak },
        rate,
        target_rate,
        out_len: usize::MAX,
        min_samples,
    };
    checks.run()?;
    let out = resample(&mono, rate, target_rate).map_err(|e| rename(e, source))?;
    checks.out_len = out.len();
    checks.run()?;
    Ok(out)
}
