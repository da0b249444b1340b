//! `FeaturePlan`: everything a spec needs, built once (window, FFT plan, filterbanks,
//! DCT), on top of the stages it runs; `Scratch`: caller-owned buffers, so that no clip
//! allocates once its scratch has grown.

use super::chroma::{chroma_filterbank, SparseChroma};
use super::dct::dct_matrix;
use super::edges::edge_span;
use super::frames::{FrameRows, FrameScratch};
use super::mel::{mel_filterbank_dense, SparseMel};
use super::pool::{PoolScratch, Pooler};
use super::spec::{ChromaSpectrum, FeatureSpec, SpecError};
use super::stft::{frame_count, frame_start, load_frame, window};
use super::FeatureError;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// `10 * log10(max(x, AMIN))`: the floor of the dB conversion (torch reference `_amin`).
pub const AMIN: f32 = 1e-10;

/// A spec turned into ready-to-run pieces. Immutable, `Send + Sync`: share one per model.
pub struct FeaturePlan {
    spec: FeatureSpec,
    window: Vec<f32>,
    /// Complex FFT of `n_fft / 2` points (even `n_fft`: the real frame packed as complex
    /// pairs, then split, see [`FeaturePlan::power_spectrum`]) or of `n_fft` (odd).
    fft: Arc<dyn Fft<f32>>,
    /// Even `n_fft`: `(cos, -sin)(2 pi k / n_fft)` for `k in 0..=n_fft / 4`.
    twiddles: Vec<Complex<f32>>,
    mel: SparseMel,
    chroma: Vec<f32>,
    chroma_bands: SparseChroma,
    dct: Vec<f32>,
}

impl std::fmt::Debug for FeaturePlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeaturePlan").field("spec", &self.spec).finish_non_exhaustive()
    }
}

/// Caller-owned buffers for whole clips: frame buffers, the clip's rows, pooling buffers.
#[derive(Debug, Clone)]
pub struct Scratch {
    pub frame: FrameScratch,
    pub rows: FrameRows,
    pub pool: PoolScratch,
}

impl FeaturePlan {
    /// Validates `spec` (bounds first) and builds the plan.
    pub fn new(spec: &FeatureSpec) -> Result<FeaturePlan, SpecError> {
        let spec = FeatureSpec::from_json_value(&spec.to_json_value())?;
        let n_freqs = spec.n_freqs();
        let dense = mel_filterbank_dense(n_freqs, spec.f_min, spec.f_max(), spec.n_mels, spec.sample_rate);
        let n = spec.n_fft;
        let even = n % 2 == 0;
        let fft = FftPlanner::<f32>::new().plan_fft_forward(if even { n / 2 } else { n });
        let twiddles = if even {
            (0..=n / 4)
                .map(|k| {
                    let a = 2.0 * std::f64::consts::PI * k as f64 / n as f64;
                    Complex::new(a.cos() as f32, -a.sin() as f32)
                })
                .collect()
        } else {
            Vec::new()
        };
        let chroma = chroma_filterbank(f64::from(spec.sample_rate), spec.n_fft, spec.n_chroma, spec.chroma_tuning);
        Ok(FeaturePlan {
            window: window(spec.n_fft, spec.win_length()),
            fft,
            twiddles,
            mel: SparseMel::from_dense(&dense, spec.n_mels, n_freqs),
            chroma_bands: SparseChroma::new(&chroma, spec.n_chroma, n_freqs),
            chroma,
            dct: dct_matrix(spec.n_mfcc, spec.n_mels),
            spec,
        })
    }

    pub fn spec(&self) -> &FeatureSpec {
        &self.spec
    }
    pub fn dim(&self) -> usize {
        self.spec.dim()
    }
    pub fn window(&self) -> &[f32] {
        &self.window
    }
    pub fn mel(&self) -> &SparseMel {
        &self.mel
    }
    /// `(n_chroma, n_freqs)` row-major.
    pub fn chroma_fb(&self) -> &[f32] {
        &self.chroma
    }
    /// The chroma filterbank as the frame path applies it (negligible tails dropped).
    pub fn chroma_bands(&self) -> &SparseChroma {
        &self.chroma_bands
    }
    /// `(n_mfcc, n_mels)` row-major.
    pub fn dct(&self) -> &[f32] {
        &self.dct
    }

    pub fn frame_scratch(&self) -> FrameScratch {
        let n_freqs = self.spec.n_freqs();
        let n = self.spec.n_fft;
        let even = n.is_multiple_of(2);
        FrameScratch {
            buf: vec![Complex::new(0.0, 0.0); if even { n / 2 } else { n }],
            odd_frame: if even { Vec::new() } else { vec![0.0; n] },
            fft_scratch: vec![Complex::new(0.0, 0.0); self.fft.get_inplace_scratch_len()],
            magnitude: vec![0.0; n_freqs],
            power: vec![0.0; n_freqs],
        }
    }

    /// Buffers for [`FeaturePlan::extract_into`]; reuse them across clips.
    pub fn scratch(&self) -> Scratch {
        Scratch { frame: self.frame_scratch(), rows: FrameRows::new(&self.spec), pool: PoolScratch::default() }
    }

    /// The pooling half of the plan.
    pub fn pooler(&self) -> Pooler<'_> {
        Pooler::new(&self.spec, &self.dct)
    }

    /// One windowed frame (in `scratch.frame`) -> one row appended to `rows`.
    ///
    /// The same code is compiled twice, plain and with AVX2 enabled (chosen at run time):
    /// the loops keep their per-lane arithmetic (no FMA contraction in Rust), so both
    /// give bit-identical rows; AVX2 only runs 8 lanes per instruction instead of 4.
    pub(crate) fn analyze_frame(&self, s: &mut FrameScratch, rows: &mut FrameRows) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                unsafe { self.analyze_frame_avx2(s, rows) };
                return;
            }
        }
        self.analyze_frame_body(s, rows);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn analyze_frame_avx2(&self, s: &mut FrameScratch, rows: &mut FrameRows) {
        self.analyze_frame_body(s, rows);
    }

    /// The FFT of the windowed frame in `s` -> `s.power` (`|X[k]|^2`, `k in 0..=n_fft/2`).
    ///
    /// Even `n_fft = 2M`: the frame's floats are already the complex sequence
    /// `z[m] = x[2m] + i x[2m+1]` (`FrameScratch::frame_mut`); one M-point FFT `Z` gives
    /// `X[k] = E[k] + W^k O[k]` with `E = (Z[k] + conj Z[M-k]) / 2`,
    /// `O = (Z[k] - conj Z[M-k]) / 2i`, `W = exp(-2 pi i / n_fft)` (the standard split;
    /// `realfft` does the same). Bins `k` and `M - k` come from the same pair and are
    /// computed together, straight to power (no complex spectrum is stored).
    #[inline(always)]
    fn power_spectrum(&self, s: &mut FrameScratch) {
        if !s.odd_frame.is_empty() {
            for (c, &v) in s.buf.iter_mut().zip(&s.odd_frame) {
                *c = Complex::new(v, 0.0);
            }
            self.fft.process_with_scratch(&mut s.buf, &mut s.fft_scratch);
            for (p, c) in s.power.iter_mut().zip(&s.buf) {
                *p = c.re * c.re + c.im * c.im;
            }
            return;
        }
        self.fft.process_with_scratch(&mut s.buf, &mut s.fft_scratch);
        let z = &s.buf;
        let m = z.len();
        let p = &mut s.power[..=m];
        let (r0, i0) = (z[0].re, z[0].im);
        p[0] = (r0 + i0) * (r0 + i0);
        p[m] = (r0 - i0) * (r0 - i0);
        // pairs (k, m - k) for k in 1..lim, all distinct; the midpoint k = m/2 (m even) after
        split_pairs(z, &self.twiddles, p, 1, m.div_ceil(2));
        if m.is_multiple_of(2) {
            let (h, a, w) = (m / 2, z[m / 2], self.twiddles[m / 2]);
            let (sum_re, sum_im) = (2.0 * a.re, 2.0 * a.im);
            let (x_re, x_im) = (sum_re + w.re * sum_im, w.im * sum_im);
            p[h] = 0.25 * (x_re * x_re + x_im * x_im);
        }
    }

    #[inline(always)]
    fn analyze_frame_body(&self, s: &mut FrameScratch, rows: &mut FrameRows) {
        self.power_spectrum(s);
        if self.spec.n_chroma > 0 && self.spec.chroma_spectrum == ChromaSpectrum::Magnitude {
            for (m, &p) in s.magnitude.iter_mut().zip(&s.power) {
                *m = p.sqrt();
            }
        }
        // Plain indexed loops into pre-sized rows: closures handed to `Vec::extend` would
        // be compiled outside this function's target features.
        let n_mels = self.spec.n_mels;
        let at = rows.power.len();
        rows.power.resize(at + n_mels, 0.0);
        rows.db.resize(at + n_mels, 0.0);
        self.mel.apply(&s.power, &mut rows.power[at..]);
        for (d, &p) in rows.db[at..].iter_mut().zip(&rows.power[at..]) {
            *d = db(p);
        }

        let spectrum = match self.spec.chroma_spectrum {
            ChromaSpectrum::Magnitude => &s.magnitude,
            ChromaSpectrum::Power => &s.power,
        };
        let at = rows.chroma.len();
        rows.chroma.resize(at + self.spec.n_chroma, 0.0);
        let row = &mut rows.chroma[at..];
        self.chroma_bands.apply(spectrum, row);
        let top = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let top = if top < f32::MIN_POSITIVE { 1.0 } else { top };
        for v in row.iter_mut() {
            *v /= top;
        }
    }

    /// Appends the rows of every frame of a whole clip to `rows`.
    pub fn analyze_clip(&self, wave: &[f32], frame: &mut FrameScratch, rows: &mut FrameRows) {
        let (n_fft, hop) = (self.spec.n_fft, self.spec.hop_length);
        for t in 0..frame_count(wave.len(), n_fft, hop) {
            load_frame(wave, frame_start(t, n_fft, hop), &self.window, frame.frame_mut());
            self.analyze_frame(frame, rows);
        }
    }

    /// Checks a whole clip at the model rate: length bounds and finite samples.
    pub fn check_wave(&self, wave: &[f32]) -> Result<(), FeatureError> {
        let (min, max) = (self.spec.min_samples(), self.spec.max_samples());
        if wave.len() < min {
            return Err(FeatureError::TooShort { samples: wave.len(), min });
        }
        if wave.len() > max {
            return Err(FeatureError::TooLong {
                seconds: wave.len() as f64 / f64::from(self.spec.sample_rate),
                max_seconds: super::spec::MAX_CLIP_SECONDS,
            });
        }
        // branch-free OR over blocks (vectorizes; `all` stops per sample and does not)
        let non_finite = |v: &f32| (v.to_bits() & 0x7fff_ffff) >= 0x7f80_0000;
        if wave.chunks(4096).any(|c| c.iter().fold(false, |bad, v| bad | non_finite(v))) {
            let index = wave.iter().position(non_finite).unwrap_or(0) as u64;
            return Err(FeatureError::NonFinite { index });
        }
        Ok(())
    }

    /// Whole clip (mono, at the spec rate) -> feature vector in `out` (`dim` values):
    /// the clip cut to its edge span (`edge_pause_s`), all frames, then one pool over them.
    pub fn extract_into(&self, wave: &[f32], scratch: &mut Scratch, out: &mut [f32]) -> Result<(), FeatureError> {
        self.check_wave(wave)?;
        if out.len() != self.dim() {
            return Err(FeatureError::OutputLength { expected: self.dim(), got: out.len() });
        }
        let wave = match self.spec.edge_pause_s {
            Some(keep) => {
                &wave[edge_span(wave, self.spec.sample_rate, keep, self.spec.min_samples(), self.spec.edge_floor)]
            }
            None => wave,
        };
        scratch.rows.clear();
        self.analyze_clip(wave, &mut scratch.frame, &mut scratch.rows);
        let n = scratch.rows.len();
        let peak = scratch.rows.db_peak(0..n);
        self.pooler().pool(&scratch.rows, 0..n, peak, &mut scratch.pool, out);
        Ok(())
    }

    /// [`FeaturePlan::extract_into`] with fresh buffers.
    pub fn extract(&self, wave: &[f32]) -> Result<Vec<f32>, FeatureError> {
        let mut out = vec![0f32; self.dim()];
        self.extract_into(wave, &mut self.scratch(), &mut out)?;
        Ok(out)
    }
}

/// `10 * log10(max(x, AMIN))`, computed as `ln(x) * 10 / ln(10)`: glibc's `logf` is about
/// 2x faster than its `log10f`; the two differ by an ulp or two.
#[inline]
pub fn db(x: f32) -> f32 {
    const DB_PER_NEPER: f32 = 10.0 / std::f32::consts::LN_10;
    x.max(AMIN).ln() * DB_PER_NEPER
}

/// Power of bins `k` and `m - k` (`m = z.len()`) from `a = Z[k]`, `b = Z[m - k]` and
/// the twiddle `w = W^k` (see [`FeaturePlan::power_spectrum`]).
#[inline(always)]
fn split_pair(a: Complex<f32>, b: Complex<f32>, w: Complex<f32>) -> (f32, f32) {
    let (sum_re, sum_im) = (a.re + b.re, a.im + b.im);
    let (dif_re, dif_im) = (a.re - b.re, a.im - b.im);
    let t_re = w.re * sum_im + w.im * dif_re;
    let t_im = w.im * sum_im - w.re * dif_re;
    let (x_re, x_im) = (sum_re + t_re, dif_im + t_im);
    let (y_re, y_im) = (sum_re - t_re, t_im - dif_im);
    (0.25 * (x_re * x_re + x_im * x_im), 0.25 * (y_re * y_re + y_im * y_im))
}

/// [`split_pair`] for `k in from..lim` (`lim <= (m + 1) / 2`), into `p[k]` and `p[m - k]`.
/// With AVX2: 8 pairs per step, with NEON 4; the same per-lane operations (no FMA), so
/// the same bits.
#[inline(always)]
fn split_pairs(z: &[Complex<f32>], tw: &[Complex<f32>], p: &mut [f32], from: usize, lim: usize) {
    let m = z.len();
    assert!(lim <= m.div_ceil(2) && tw.len() >= lim && p.len() > m);
    let mut k = from;
    #[cfg(target_arch = "x86_64")]
    {
        if lim >= from + 8 && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 checked; bounds checked above (see `split_pairs_avx2`).
            k = unsafe { split_pairs_avx2(z, tw, p, from, lim) };
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if lim >= from + 4 {
            // SAFETY: NEON is aarch64 baseline; bounds checked above (see `split_pairs_neon`).
            k = unsafe { split_pairs_neon(z, tw, p, from, lim) };
        }
    }
    while k < lim {
        let (f, b) = split_pair(z[k], z[m - k], tw[k]);
        p[k] = f;
        p[m - k] = b;
        k += 1;
    }
}

/// 8 pairs per step from `from` while `k + 8 <= lim`; returns the first `k` not done.
/// Reads `z[k..k + 8]`, `z[m - k - 7..=m - k]`, `tw[k..k + 8]` and writes the matching
/// `p[k..k + 8]` and `p[m - k - 7..=m - k]`: in bounds, as `k >= 1` and
/// `m - k - 7 >= m - lim + 1 >= lim > k + 7` (the two halves never overlap).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn split_pairs_avx2(z: &[Complex<f32>], tw: &[Complex<f32>], p: &mut [f32], from: usize, lim: usize) -> usize {
    use std::arch::x86_64::*;
    let m = z.len();
    let zp = z.as_ptr().cast::<f32>();
    let wp = tw.as_ptr().cast::<f32>();
    let pp = p.as_mut_ptr();
    let rev4 = |v: __m256| _mm256_castpd_ps(_mm256_permute4x64_pd::<0x1B>(_mm256_castps_pd(v)));
    // lanes come out as pairs j = [0 1 4 5 2 3 6 7]: restore order / order reversed
    let fwd = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
    let bwd = _mm256_setr_epi32(7, 6, 3, 2, 5, 4, 1, 0);
    let quarter = _mm256_set1_ps(0.25);
    let mut k = from;
    while k + 8 <= lim {
        let a_lo = _mm256_loadu_ps(zp.add(2 * k));
        let a_hi = _mm256_loadu_ps(zp.add(2 * (k + 4)));
        let b_lo = rev4(_mm256_loadu_ps(zp.add(2 * (m - k - 3))));
        let b_hi = rev4(_mm256_loadu_ps(zp.add(2 * (m - k - 7))));
        let w_lo = _mm256_loadu_ps(wp.add(2 * k));
        let w_hi = _mm256_loadu_ps(wp.add(2 * (k + 4)));
        let (a_re, a_im) = (_mm256_shuffle_ps::<0x88>(a_lo, a_hi), _mm256_shuffle_ps::<0xDD>(a_lo, a_hi));
        let (b_re, b_im) = (_mm256_shuffle_ps::<0x88>(b_lo, b_hi), _mm256_shuffle_ps::<0xDD>(b_lo, b_hi));
        let (w_re, w_im) = (_mm256_shuffle_ps::<0x88>(w_lo, w_hi), _mm256_shuffle_ps::<0xDD>(w_lo, w_hi));
        let (sum_re, sum_im) = (_mm256_add_ps(a_re, b_re), _mm256_add_ps(a_im, b_im));
        let (dif_re, dif_im) = (_mm256_sub_ps(a_re, b_re), _mm256_sub_ps(a_im, b_im));
        let t_re = _mm256_add_ps(_mm256_mul_ps(w_re, sum_im), _mm256_mul_ps(w_im, dif_re));
        let t_im = _mm256_sub_ps(_mm256_mul_ps(w_im, sum_im), _mm256_mul_ps(w_re, dif_re));
        let (x_re, x_im) = (_mm256_add_ps(sum_re, t_re), _mm256_add_ps(dif_im, t_im));
        let (y_re, y_im) = (_mm256_sub_ps(sum_re, t_re), _mm256_sub_ps(t_im, dif_im));
        let pf = _mm256_mul_ps(quarter, _mm256_add_ps(_mm256_mul_ps(x_re, x_re), _mm256_mul_ps(x_im, x_im)));
        let pb = _mm256_mul_ps(quarter, _mm256_add_ps(_mm256_mul_ps(y_re, y_re), _mm256_mul_ps(y_im, y_im)));
        _mm256_storeu_ps(pp.add(k), _mm256_permutevar8x32_ps(pf, fwd));
        _mm256_storeu_ps(pp.add(m - k - 7), _mm256_permutevar8x32_ps(pb, bwd));
        k += 8;
    }
    k
}

/// 4 pairs per step from `from` while `k + 4 <= lim`; returns the first `k` not done.
/// Reads `z[k..k + 4]`, `z[m - k - 3..=m - k]`, `tw[k..k + 4]` and writes the matching
/// `p[k..k + 4]` and `p[m - k - 3..=m - k]`: in bounds, as `k >= 1` and
/// `m - k - 3 >= m - lim + 1 >= lim > k + 3` (the two halves never overlap).
#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
unsafe fn split_pairs_neon(z: &[Complex<f32>], tw: &[Complex<f32>], p: &mut [f32], from: usize, lim: usize) -> usize {
    use std::arch::aarch64::*;
    let m = z.len();
    let zp = z.as_ptr().cast::<f32>();
    let wp = tw.as_ptr().cast::<f32>();
    let pp = p.as_mut_ptr();
    let rev4 = |v: float32x4_t| {
        let r = vrev64q_f32(v);
        vextq_f32::<2>(r, r)
    };
    let quarter = vdupq_n_f32(0.25);
    let mut k = from;
    while k + 4 <= lim {
        // vld2q: even floats (re) to .0, odd (im) to .1
        let a = vld2q_f32(zp.add(2 * k));
        let b = vld2q_f32(zp.add(2 * (m - k - 3)));
        let w = vld2q_f32(wp.add(2 * k));
        let (a_re, a_im) = (a.0, a.1);
        let (b_re, b_im) = (rev4(b.0), rev4(b.1));
        let (w_re, w_im) = (w.0, w.1);
        let (sum_re, sum_im) = (vaddq_f32(a_re, b_re), vaddq_f32(a_im, b_im));
        let (dif_re, dif_im) = (vsubq_f32(a_re, b_re), vsubq_f32(a_im, b_im));
        let t_re = vaddq_f32(vmulq_f32(w_re, sum_im), vmulq_f32(w_im, dif_re));
        let t_im = vsubq_f32(vmulq_f32(w_im, sum_im), vmulq_f32(w_re, dif_re));
        let (x_re, x_im) = (vaddq_f32(sum_re, t_re), vaddq_f32(dif_im, t_im));
        let (y_re, y_im) = (vsubq_f32(sum_re, t_re), vsubq_f32(t_im, dif_im));
        let pf = vmulq_f32(quarter, vaddq_f32(vmulq_f32(x_re, x_re), vmulq_f32(x_im, x_im)));
        let pb = vmulq_f32(quarter, vaddq_f32(vmulq_f32(y_re, y_re), vmulq_f32(y_im, y_im)));
        vst1q_f32(pp.add(k), pf);
        vst1q_f32(pp.add(m - k - 3), rev4(pb));
        k += 4;
    }
    k
}

/// A few reusable [`Scratch`]es for callers that share one plan across threads
/// (a model, a binding): `extract` takes one, or makes one, and puts it back.
#[derive(Debug, Default)]
pub struct ScratchPool(std::sync::Mutex<Vec<Scratch>>);

impl ScratchPool {
    /// Most scratches kept (one per thread that ran concurrently, up to this).
    pub const MAX_KEPT: usize = 64;

    /// [`FeaturePlan::extract_into`] with a pooled scratch.
    pub fn extract(&self, plan: &FeaturePlan, wave: &[f32]) -> Result<Vec<f32>, FeatureError> {
        let taken = self.0.lock().ok().and_then(|mut v| v.pop());
        let mut scratch = taken.unwrap_or_else(|| plan.scratch());
        let mut out = vec![0f32; plan.dim()];
        let r = plan.extract_into(wave, &mut scratch, &mut out);
        if let Ok(mut v) = self.0.lock() {
            if v.len() < Self::MAX_KEPT {
                v.push(scratch);
            }
        }
        r.map(|()| out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::simd::has_simd;

    /// The SIMD split (AVX2 or NEON) gives `split_pair`'s bits exactly.
    #[test]
    fn simd_split_equals_the_plain_one_bit_for_bit() {
        if !has_simd() {
            eprintln!("no AVX2 or NEON here: nothing to compare");
            return;
        }
        let mut state = 7u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for m in [8usize, 9, 10, 11, 16, 17, 18, 31, 64, 127, 1024] {
            let z: Vec<Complex<f32>> = (0..m).map(|_| Complex::new(next(), next())).collect();
            let tw: Vec<Complex<f32>> = (0..=m / 2).map(|_| Complex::new(next(), next())).collect();
            let lim = m.div_ceil(2);
            let mut fast = vec![f32::NAN; m + 1];
            split_pairs(&z, &tw, &mut fast, 1, lim);
            for k in 1..lim {
                let (f, b) = split_pair(z[k], z[m - k], tw[k]);
                assert_eq!(f.to_bits(), fast[k].to_bits(), "m {m} k {k}");
                assert_eq!(b.to_bits(), fast[m - k].to_bits(), "m {m} k {}", m - k);
            }
        }
    }

    /// The SIMD pooling (AVX2-compiled, or with the NEON dot) gives the plain build's bits
    /// exactly (whole clips and sub-ranges, every stat layout with per-frame MFCC, short
    /// windows for the delta edges).
    #[test]
    fn simd_pooling_equals_the_plain_one_bit_for_bit() {
        if !has_simd() {
            eprintln!("no AVX2 or NEON here: nothing to compare");
            return;
        }
        let mut state = 11u64;
        let wave: Vec<f32> = (0..22050)
            .map(|i| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let noise = ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
                0.3 * (i as f32 * 0.05).sin() * (i as f32 * 0.0007).cos() + 0.05 * noise
            })
            .collect();
        for json in [
            r#"{"preset": "rich"}"#,
            r#"{"preset": "paper"}"#,
            r#"{"stats": ["std", "mean"], "delta_stats": ["mean", "std"], "delta_width": 5}"#,
            r#"{"preset": "rich", "n_mels": 37, "n_mfcc": 13, "delta_width": 3}"#,
            r#"{"preset": "portable"}"#,
            r#"{"preset": "rich", "db_reference": "peak"}"#,
            r#"{"preset": "portable-gated", "frame_gate_db": 6.0}"#,
        ] {
            let plan = FeaturePlan::new(&FeatureSpec::from_json(json).unwrap()).unwrap();
            let mut s = plan.scratch();
            plan.analyze_clip(&wave, &mut s.frame, &mut s.rows);
            let n = s.rows.len();
            for range in [0..n, 0..1, 3..5, 2..n - 1, n - 4..n] {
                let peak = s.rows.db_peak(range.clone());
                let (mut plain, mut fast) = (vec![f32::NAN; plan.dim()], vec![f32::NAN; plan.dim()]);
                let (mut sp, mut sf) = (PoolScratch::default(), PoolScratch::default());
                plan.pooler().pool_body(&s.rows, range.clone(), peak, &mut sp, &mut plain, false);
                plan.pooler().pool(&s.rows, range.clone(), peak, &mut sf, &mut fast);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&plain), bits(&fast), "{json} frames {range:?}");
            }
        }
    }
}
