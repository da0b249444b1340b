//! One streaming resampler for every rate pair: [`Resampler`] (push any chunk size, then
//! [`Resampler::finish`]) and [`resample`] (the same loop over a whole clip).
//!
//! # The filter, and why
//! rubato's asynchronous sinc resampler ([`rubato::Async`]) with one configuration, stated
//! in units of the *lower* of the two rates (the band that survives):
//!
//! - cut-off [`CUTOFF`] = 0.95 of the lower Nyquist frequency: the mel filterbank of a
//!   22.05 kHz model reaches its Nyquist, so the pass band keeps 95% of it; the 5% guard
//!   band is the transition width a 128-tap Blackman-Harris² sinc achieves with its
//!   stop band far below 16-bit quantization noise.
//! - [`SINC_LEN`] = 128 taps *at the lower rate*: when downsampling by `r = new/orig < 1`
//!   the sinc is stretched by `1/r`, so the filter spans `128 / r` input samples. A fixed
//!   128 input taps (rubato's usual setting) would leave a 384 kHz -> 22.05 kHz filter only
//!   a handful of zero crossings long, i.e. barely a low-pass at all. Time per clip therefore
//!   grows with the input length (`~128` multiply-adds per input sample per table point),
//!   never with the ratio.
//! - [`OVERSAMPLING`] = 128 table points per lower-rate sample, combined with cubic
//!   interpolation between them: the table is `128 * 128` entries (64 KB) for every pair,
//!   so memory is bounded for any ratio, coprime ones (44101 -> 22050) included, unlike a
//!   polyphase filter with one phase per `gcd`-reduced output position.
//!
//! # Determinism
//! The wrapper feeds rubato fixed [`CHUNK`]-sample blocks from an internal buffer, so the
//! sequence of rubato calls, hence the output, is bit-identical whatever chunk sizes the
//! caller pushes. The output is the continuous signal with the filter delay trimmed:
//! `ceil(n * new / orig)` samples for `n` input samples. rubato trims the integer part of
//! the filter delay, so the output may lag the input by a constant fraction of one output
//! sample (a pure delay: magnitudes and frequencies, hence features, are unaffected).

use super::error::AudioError;
use super::limits::{MAX_INPUT_RATE, MAX_TARGET_RATE, MIN_INPUT_RATE, MIN_TARGET_RATE};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, FixedAsync, Indexing, Resampler as _, SincInterpolationParameters, SincInterpolationType, WindowFunction,
};

/// Sinc length in samples of the lower rate (see the module docs).
pub const SINC_LEN: usize = 128;
/// Cut-off relative to the lower Nyquist frequency.
pub const CUTOFF: f32 = 0.95;
/// Interpolation-table points per sample of the lower rate.
pub const OVERSAMPLING: usize = 128;
/// Fewest table points per input sample (cubic interpolation needs neighbours).
const MIN_OVERSAMPLING: usize = 4;
/// Input samples per rubato call (the internal block size).
pub const CHUNK: usize = 1024;

/// A stateful mono resampler from `orig` Hz to `new` Hz. Equal rates copy the input.
pub struct Resampler {
    orig: u32,
    new: u32,
    inner: Option<Box<Async<f32>>>,
    pending: Vec<f32>,
    out_buf: Vec<f32>,
    to_trim: usize,
    n_in: u64,
    n_out: u64,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler").field("orig", &self.orig).field("new", &self.new).field("n_in", &self.n_in).finish()
    }
}

/// The number of output samples for `n` input samples: `ceil(n * new / orig)`.
pub fn output_len(n: u64, orig: u32, new: u32) -> u64 {
    if orig == new {
        return n;
    }
    let num = n as u128 * new as u128;
    num.div_ceil(orig as u128) as u64
}

fn internal(detail: impl std::fmt::Display) -> AudioError {
    AudioError::Internal { source: "resampler".into(), detail: detail.to_string() }
}

/// Checks an input rate against [`MIN_INPUT_RATE`]..=[`MAX_INPUT_RATE`].
pub fn check_input_rate(rate: u64, source: &str) -> Result<u32, AudioError> {
    if !(MIN_INPUT_RATE as u64..=MAX_INPUT_RATE as u64).contains(&rate) {
        return Err(AudioError::Rate {
            source: source.into(),
            what: "sample rate",
            rate,
            min: MIN_INPUT_RATE,
            max: MAX_INPUT_RATE,
        });
    }
    Ok(rate as u32)
}

/// Checks a target rate against [`MIN_TARGET_RATE`]..=[`MAX_TARGET_RATE`].
pub fn check_target_rate(rate: u64, source: &str) -> Result<u32, AudioError> {
    if !(MIN_TARGET_RATE as u64..=MAX_TARGET_RATE as u64).contains(&rate) {
        return Err(AudioError::Rate {
            source: source.into(),
            what: "target rate",
            rate,
            min: MIN_TARGET_RATE,
            max: MAX_TARGET_RATE,
        });
    }
    Ok(rate as u32)
}

impl Resampler {
    /// A resampler from `orig` to `new` Hz; both must be within the bounds of
    /// [`super::limits`] (an [`AudioError::Rate`] otherwise).
    pub fn new(orig: u32, new: u32) -> Result<Self, AudioError> {
        check_input_rate(orig as u64, "resampler")?;
        check_target_rate(new as u64, "resampler")?;
        let inner = if orig == new {
            None
        } else {
            let ratio = new as f64 / orig as f64;
            let (sinc_len, oversampling) = if ratio < 1.0 {
                // lower rate = new: stretch the sinc, thin the table (module docs)
                (
                    (SINC_LEN as f64 / ratio).ceil() as usize,
                    (OVERSAMPLING as f64 * ratio).ceil().max(MIN_OVERSAMPLING as f64) as usize,
                )
            } else {
                (SINC_LEN, OVERSAMPLING)
            };
            let params = SincInterpolationParameters {
                sinc_len: sinc_len.div_ceil(8) * 8,
                f_cutoff: Some(CUTOFF),
                oversampling_factor: oversampling,
                interpolation: SincInterpolationType::Cubic,
                window: WindowFunction::BlackmanHarris2,
            };
            let inner = Async::<f32>::new_sinc(ratio, 1.0, &params, CHUNK, 1, FixedAsync::Input).map_err(internal)?;
            Some(Box::new(inner))
        };
        let (out_max, to_trim) = inner.as_ref().map_or((0, 0), |r| (r.output_frames_max(), r.output_delay()));
        Ok(Resampler {
            orig,
            new,
            inner,
            pending: Vec::with_capacity(if orig == new { 0 } else { CHUNK }),
            out_buf: vec![0.0; out_max],
            to_trim,
            n_in: 0,
            n_out: 0,
        })
    }

    /// The input rate in Hz.
    pub fn orig_rate(&self) -> u32 {
        self.orig
    }

    /// The output rate in Hz.
    pub fn new_rate(&self) -> u32 {
        self.new
    }

    /// Input samples pushed since creation or the last [`finish`](Self::finish).
    pub fn samples_in(&self) -> u64 {
        self.n_in
    }

    /// Resamples `input`, appending the output samples completed so far to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), AudioError> {
        self.n_in += input.len() as u64;
        if self.inner.is_none() {
            out.extend_from_slice(input);
            self.n_out += input.len() as u64;
            return Ok(());
        }
        let mut rest = input;
        while !rest.is_empty() {
            let take = (CHUNK - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == CHUNK {
                self.process(None, out)?;
                self.pending.clear();
            }
        }
        Ok(())
    }

    /// Flushes the filter: appends the rest of the `ceil(n * new / orig)` output samples
    /// and resets the resampler for a new signal.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), AudioError> {
        let total = output_len(self.n_in, self.orig, self.new);
        if self.inner.is_some() {
            if !self.pending.is_empty() {
                let valid = self.pending.len();
                self.pending.resize(CHUNK, 0.0);
                self.process_limited(Some(valid), out, total)?;
            }
            while self.n_out < total {
                self.pending.clear();
                self.pending.resize(CHUNK, 0.0);
                self.process_limited(Some(0), out, total)?;
            }
        }
        self.reset();
        Ok(())
    }

    /// Drops all state: the next push starts a new signal.
    pub fn reset(&mut self) {
        if let Some(inner) = self.inner.as_mut() {
            inner.reset();
            self.to_trim = inner.output_delay();
        }
        self.pending.clear();
        self.n_in = 0;
        self.n_out = 0;
    }

    fn process(&mut self, partial: Option<usize>, out: &mut Vec<f32>) -> Result<(), AudioError> {
        self.process_limited(partial, out, u64::MAX)
    }

    /// One rubato call on `pending` (exactly CHUNK samples); emits at most `limit - n_out`.
    fn process_limited(&mut self, partial: Option<usize>, out: &mut Vec<f32>, limit: u64) -> Result<(), AudioError> {
        let inner = self.inner.as_mut().ok_or_else(|| internal("process on an identity resampler"))?;
        let input = InterleavedSlice::new(&self.pending[..], 1, CHUNK).map_err(internal)?;
        let frames = self.out_buf.len();
        let mut output = InterleavedSlice::new_mut(&mut self.out_buf[..], 1, frames).map_err(internal)?;
        let indexing = partial.map(|p| Indexing::new().partial_len(p));
        let (_, produced) = inner.process_into_buffer(&input, &mut output, indexing.as_ref()).map_err(internal)?;
        let skip = self.to_trim.min(produced);
        self.to_trim -= skip;
        let room = limit.saturating_sub(self.n_out).min((produced - skip) as u64) as usize;
        out.extend_from_slice(&self.out_buf[skip..skip + room]);
        self.n_out += room as u64;
        Ok(())
    }
}

/// Resamples a whole mono clip: the [`Resampler`] chunk loop, `ceil(n * new / orig)`
/// samples out. Equal rates return a copy.
pub fn resample(input: &[f32], orig: u32, new: u32) -> Result<Vec<f32>, AudioError> {
    let mut r = Resampler::new(orig, new)?;
    let mut out = Vec::with_capacity(output_len(input.len() as u64, orig, new) as usize);
    r.push(input, &mut out)?;
    r.finish(&mut out)?;
    Ok(out)
}
