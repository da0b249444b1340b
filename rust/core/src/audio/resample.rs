//! One streaming resampler for every rate pair: [`Resampler`] (push any chunk size, then
//! [`Resampler::finish`]) and [`resample`] (the same loop over a whole clip).
//!
//! # The definition
//! Output sample `k` is the input signal (zero before the first and after the last sample)
//! convolved with one windowed sinc and read at input position `c_k = k * orig / new`:
//! `y[k] = sum_j x[j] h(c_k - j)`. `h` is rubato's Blackman-Harris² windowed sinc
//! ([`rubato::sinc_interpolator::make_interpolator`]), tabulated at `O` sub-sample offsets
//! per input sample, each row scaled to a DC gain of exactly 1 (its sum taken in f64);
//! `y[k]` is the dot product of the input with the table row at `c_k`
//! or, when `c_k` falls between two rows, the linear interpolation of the dot products
//! with the two rows around it. Positions are tracked in integers (`k * orig * O` divided
//! by `new`, carried incrementally), so there is no drift and no dependence on chunking.
//! The filter, in units of the *lower* of the two rates (the band that survives):
//!
//! - cut-off [`CUTOFF`] = 0.95 of the lower Nyquist frequency: the mel filterbank of a
//!   22.05 kHz model reaches its Nyquist, so the pass band keeps 95% of it; the 5% guard
//!   band is the transition width a 128-tap Blackman-Harris² sinc achieves with its stop
//!   band far below 16-bit quantization noise.
//! - [`SINC_LEN`] = 128 taps *at the lower rate*: when downsampling by `r = new/orig < 1`
//!   the sinc is stretched by `1/r`, so the filter spans `128 / r` input samples (rounded
//!   up to a multiple of 8). Time per clip grows with the input length (128 multiply-adds
//!   per input sample), never with the ratio.
//! - The table, one rule per pair: with `g = gcd(orig, new)` and `L = new / g`, every
//!   `c_k` is a multiple of `1 / L`. If `L <= `[`MAX_PHASES`] and the table (`taps * L`
//!   values) stays within [`MAX_TABLE`], then `O = L`: every output lands exactly on a
//!   row (a polyphase filter, one dot product per output, no interpolation error; e.g.
//!   16000 -> 22050 (L = 441), 44100 -> 22050 (L = 1), 192000 -> 22050 (L = 147)).
//!   Otherwise (coprime or near-coprime pairs: 44101 -> 22050, 7999 -> 22050)
//!   `O = ceil(`[`LINEAR_OVERSAMPLING`]` * min(1, r))` rows per input sample, i.e.
//!   [`LINEAR_OVERSAMPLING`] per lower-rate sample, with linear interpolation (two dot
//!   products per output). Either way the table holds at most [`MAX_TABLE`] values
//!   (2 MiB), so memory is bounded for every pair from 1 kHz to 384 kHz.
//! - Tables are built once per `(orig, new)` pair and shared ([`Arc`]) through a small
//!   process-wide cache of at most [`CACHE_PAIRS`] pairs (oldest dropped first): building
//!   one costs more than resampling a 2-s clip with it (below), using one costs nothing.
//!   [`resample_ref`] is the same definition evaluated directly in f64, without a table.
//!
//! Measured (`tests/audio.rs`, `resampler_keeps_tones_and_rejects_aliases`: 0.5-amplitude
//! tones at 120 Hz, 0.5 and 0.85 of the lower Nyquist, for 16000->22050, 192000->22050,
//! 96000->22050 and 48000->16000 (exact tables) and 44101->22050, 7999->22050
//! (interpolated)): amplitude error <= 1.7e-6 (pass-band ripple); RMS left after removing
//! the fitted tone <= 9e-8 with exact tables and <= 3.6e-7 with interpolated ones (16-bit
//! quantization noise is 9e-6 RMS); a tone at 1.1x the new Nyquist comes out at <= 6e-8 of
//! its amplitude (-144 dB).
//!
//! Speed (`examples/resample_bench.rs`, release, one thread, this project's shared 2-core
//! machine, same run): a 2-s clip 16000->22050 in 0.48 ms, 44100->22050 0.72 ms,
//! 44101->22050 1.4 ms, 192000->22050 3.1 ms (3.5 / 7.4 / 8.4 / 20 ms with rubato's
//! `Async` resampler and cubic interpolation, which also rebuilt its table on every call);
//! one hour of 16 kHz audio in 1-s chunks to 22.05 kHz in 0.89 s of CPU time (4.5 s
//! before). Building a table (first use of a pair in a process) costs 1-15 ms.
//!
//! # Determinism
//! Each output is computed from the same input values (and zero padding) in the same order
//! whatever chunk sizes the caller pushes, so the output is bit-identical to [`resample`]
//! of the whole clip. The dot products use rubato's SIMD kernel for the running CPU (AVX,
//! SSE, NEON or scalar, picked once per table), so two machines of different kinds may
//! differ in the last bits. The output is `ceil(n * new / orig)` samples for `n` input
//! samples, with no delay: `y[0]` is centred on `x[0]`.

use super::error::AudioError;
use super::limits::{MAX_INPUT_RATE, MAX_TARGET_RATE, MIN_INPUT_RATE, MIN_TARGET_RATE};
use rubato::sinc_interpolator::{make_interpolator, AnyInterpolator, SincInterpolator as _};
use rubato::WindowFunction;
use std::sync::{Arc, Mutex};

/// Sinc length in samples of the lower rate (see the module docs).
pub const SINC_LEN: usize = 128;
/// Cut-off relative to the lower Nyquist frequency.
pub const CUTOFF: f32 = 0.95;
/// Most table rows for an exact (polyphase) table: `L = new / gcd(orig, new)` above this
/// takes the interpolated table.
pub const MAX_PHASES: u64 = 1024;
/// Most values in one table (`taps * rows`): 2 MiB of `f32`.
pub const MAX_TABLE: u64 = 1 << 19;
/// Rows per lower-rate sample of an interpolated table (pairs without a small `L`).
pub const LINEAR_OVERSAMPLING: u64 = 512;
/// Rate pairs whose tables are kept (process-wide).
pub const CACHE_PAIRS: usize = 8;
/// Input samples copied into the resampler's window at a time (bounds its buffer).
pub const CHUNK: usize = 4096;

/// The tabulated filter of one rate pair (immutable, shared between resamplers).
struct Filter {
    table: AnyInterpolator<f32>,
    /// Taps per row (a multiple of 8).
    taps: usize,
    /// Rows per input sample (`O`).
    rows: u64,
    /// `1 / sum(row)` per row (summed in f64): every phase passes DC with gain 1.
    gain: Vec<f32>,
    /// `orig * O = (step_a * O + step_b) * new + step_r`: the advance of `c_k * O` per
    /// output, as whole input samples, rows and a remainder over `new`.
    step_a: i64,
    step_b: u64,
    step_r: u64,
}

/// Tables by `(orig, new)`, oldest first.
type Cache = Vec<((u32, u32), Arc<Filter>)>;

/// The process-wide table cache (at most [`CACHE_PAIRS`] entries).
static CACHE: Mutex<Cache> = Mutex::new(Vec::new());

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The table of `orig -> new` (module docs): (taps, rows per input sample). `rows` is
/// `new / gcd(orig, new)` for an exact table.
pub fn table_shape(orig: u32, new: u32) -> (usize, u64) {
    Filter::shape(orig, new)
}

impl Filter {
    fn shape(orig: u32, new: u32) -> (usize, u64) {
        let (o, n) = (orig as u64, new as u64);
        // SINC_LEN taps at the lower rate, in input samples
        let taps = (SINC_LEN as u64 * o).div_ceil(n).max(SINC_LEN as u64).next_multiple_of(8);
        let phases = n / gcd(o, n);
        let rows = if phases <= MAX_PHASES && taps * phases <= MAX_TABLE {
            phases
        } else {
            // LINEAR_OVERSAMPLING rows per lower-rate sample; taps * rows <= 128 * 512 * (1 + 8/taps)
            (LINEAR_OVERSAMPLING * n.min(o)).div_ceil(o).max(2)
        };
        (taps as usize, rows)
    }

    fn build(orig: u32, new: u32) -> Filter {
        let (taps, rows) = Filter::shape(orig, new);
        let ratio = new as f64 / orig as f64;
        // rubato scales the cut-off by `ratio` when downsampling: CUTOFF of the lower Nyquist
        let table = make_interpolator::<f32>(taps, ratio, Some(CUTOFF), rows as usize, WindowFunction::BlackmanHarris2);
        let gain =
            table.get_sincs().iter().map(|row| (1.0 / row.iter().map(|&v| v as f64).sum::<f64>()) as f32).collect();
        let step = orig as u64 * rows;
        let step_q = step / new as u64;
        Filter {
            table,
            taps,
            rows,
            gain,
            step_a: (step_q / rows) as i64,
            step_b: step_q % rows,
            step_r: step % new as u64,
        }
    }

    /// The shared table for `orig -> new` (built on first use).
    fn get(orig: u32, new: u32) -> Arc<Filter> {
        let mut cache = CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, f)) = cache.iter().find(|(key, _)| *key == (orig, new)) {
            return Arc::clone(f);
        }
        let filter = Arc::new(Filter::build(orig, new));
        if cache.len() >= CACHE_PAIRS {
            cache.remove(0);
        }
        cache.push(((orig, new), Arc::clone(&filter)));
        filter
    }
}

/// Where the next output is read, in table units (`c_k * O = q + r / new`), and the
/// buffer offset of input sample 0.
#[derive(Debug, Clone, Copy)]
struct Position {
    /// Output samples produced.
    k: u64,
    /// `floor(c_k * O) - 1 = a * O + b` with `0 <= b < O` (rubato's row `b` of window `a`).
    a: i64,
    b: u64,
    /// `c_k * O - floor(c_k * O)`, times `new`.
    r: u64,
}

/// A stateful mono resampler from `orig` Hz to `new` Hz. Equal rates copy the input.
pub struct Resampler {
    orig: u32,
    new: u32,
    filter: Option<Arc<Filter>>,
    /// Input window: `buf[i]` is input sample `i + base` (zeros before sample 0).
    buf: Vec<f32>,
    base: i64,
    pos: Position,
    n_in: u64,
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
        let filter = (orig != new).then(|| Filter::get(orig, new));
        let capacity = filter.as_ref().map_or(0, |f| f.taps + 2 * CHUNK);
        let mut r = Resampler {
            orig,
            new,
            filter,
            buf: Vec::with_capacity(capacity),
            base: 0,
            pos: Position { k: 0, a: 0, b: 0, r: 0 },
            n_in: 0,
        };
        r.reset();
        Ok(r)
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
        let Some(filter) = self.filter.clone() else {
            out.extend_from_slice(input);
            return Ok(());
        };
        for block in input.chunks(CHUNK) {
            self.buf.extend_from_slice(block);
            self.emit(&filter, out, u64::MAX);
        }
        Ok(())
    }

    /// Flushes the filter: appends the rest of the `ceil(n * new / orig)` output samples
    /// and resets the resampler for a new signal.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), AudioError> {
        if let Some(filter) = self.filter.clone() {
            let total = output_len(self.n_in, self.orig, self.new);
            // zeros after the end: each round covers at least one more output
            let pad = filter.taps / 2 + 8;
            while self.pos.k < total {
                self.buf.resize(self.buf.len() + pad, 0.0);
                self.emit(&filter, out, total);
            }
        }
        self.reset();
        Ok(())
    }

    /// Drops all state: the next push starts a new signal.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.n_in = 0;
        if let Some(f) = self.filter.as_ref() {
            // half a filter of zeros before sample 0 (the first output's window starts there)
            let half = f.taps / 2;
            self.buf.resize(half, 0.0);
            self.base = -(half as i64);
            // c_0 = 0: floor(0) - 1 = -1 = -1 * O + (O - 1)
            self.pos = Position { k: 0, a: -1, b: f.rows - 1, r: 0 };
        }
    }

    /// Computes every output whose window lies inside `buf` (at most up to output `limit`),
    /// then drops the input no later output needs.
    fn emit(&mut self, f: &Filter, out: &mut Vec<f32>, limit: u64) {
        let taps = f.taps as i64;
        // rubato reads `wave[index..index + taps]` and asks for `index + taps < wave.len()`
        let end = self.base + self.buf.len() as i64;
        let mut p = self.pos;
        let wave = &self.buf[..];
        while p.k < limit {
            // window start of row b of a: input sample a - taps/2 + 1; the next row may be
            // the first of a + 1
            let start = p.a - taps / 2 + 1;
            if start + 1 + taps >= end {
                break;
            }
            let index = (start - self.base) as usize;
            let v0 = f.table.get_sinc_interpolated(wave, index, p.b as usize) * f.gain[p.b as usize];
            let y = if p.r == 0 {
                v0
            } else {
                let (index1, b1) = if p.b + 1 == f.rows { (index + 1, 0) } else { (index, p.b + 1) };
                let v1 = f.table.get_sinc_interpolated(wave, index1, b1 as usize) * f.gain[b1 as usize];
                let frac = (p.r as f64 / self.new as f64) as f32;
                v0 + frac * (v1 - v0)
            };
            out.push(y);
            // advance c * O by orig * O / new = step_q + step_r / new
            p.k += 1;
            p.r += f.step_r;
            p.a += f.step_a;
            p.b += f.step_b;
            if p.r >= self.new as u64 {
                p.r -= self.new as u64;
                p.b += 1;
            }
            // b < O and step_b < O: at most one carry
            if p.b >= f.rows {
                p.b -= f.rows;
                p.a += 1;
            }
        }
        self.pos = p;
        // keep the input from the next output's window on
        let keep_from = (p.a - taps / 2 + 1 - self.base).clamp(0, self.buf.len() as i64) as usize;
        if keep_from >= CHUNK {
            self.buf.drain(..keep_from);
            self.base += keep_from as i64;
        }
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

/// The definition of [`resample`] evaluated directly, in f64 and without a table (the
/// reference the fast path is tested against; O(taps) sines per output):
/// `y[k] = sum_j x[j] h(c_k - j) / sum_j h(c_k - j)` over the `taps` input samples `j` with
/// `-taps/2 < c_k - j <= taps/2`, `c_k = k * orig / new`, `x` zero outside the clip and
/// `h(t) = bh(t / taps + 1/2)^2 sinc(t * fc)`, with `bh` the periodic Blackman-Harris window
/// on `[0, 1)` and `fc = CUTOFF * min(1, new / orig)`.
pub fn resample_ref(input: &[f32], orig: u32, new: u32) -> Vec<f64> {
    if orig == new {
        return input.iter().map(|&v| v as f64).collect();
    }
    let (taps, _) = table_shape(orig, new);
    let half = (taps / 2) as i64;
    let fc = CUTOFF as f64 * (new as f64 / orig as f64).min(1.0);
    let h = |t: f64| {
        let u = 2.0 * std::f64::consts::PI * (t / taps as f64 + 0.5);
        let w = 0.35875 - 0.48829 * u.cos() + 0.14128 * (2.0 * u).cos() - 0.01168 * (3.0 * u).cos();
        let x = std::f64::consts::PI * t * fc;
        w * w * if x == 0.0 { 1.0 } else { x.sin() / x }
    };
    let n = output_len(input.len() as u64, orig, new);
    (0..n)
        .map(|k| {
            let num = k as u128 * orig as u128;
            let (floor, rem) = ((num / new as u128) as i64, (num % new as u128) as u64);
            let c = floor as f64 + rem as f64 / new as f64;
            // the taps j with c - j in (-half, half]: from ceil(c - half)
            let first = if rem == 0 { floor - half } else { floor - half + 1 };
            let (mut acc, mut norm) = (0.0, 0.0);
            for j in first..first + taps as i64 {
                let w = h(c - j as f64);
                norm += w;
                if (0..input.len() as i64).contains(&j) {
                    acc += w * input[j as usize] as f64;
                }
            }
            acc / norm
        })
        .collect()
}
