//! Slaney mel filterbank, built exactly as torchaudio's
//! `melscale_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate, norm="slaney", mel_scale="slaney")`
//! builds it: float32 arithmetic, and torchaudio's frequency grid
//! `linspace(0, sample_rate // 2, n_freqs)` (integer division of the rate).
//!
//! Stored sparse: each triangle is its first FFT bin plus its run of weights.

/// `torch.linspace(start, end, steps)` in float32 (torch's CPU kernel: the first half
/// counts up from `start`, the second half down from `end`).
pub(crate) fn linspace_f32(start: f32, end: f32, steps: usize) -> Vec<f32> {
    if steps == 1 {
        return vec![start];
    }
    let step = (end - start) / (steps - 1) as f32;
    let half = steps / 2;
    (0..steps).map(|i| if i < half { start + step * i as f32 } else { end - step * (steps - i - 1) as f32 }).collect()
}

const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn logstep() -> f64 {
    6.4f64.ln() / 27.0
}

/// Slaney Hz -> mel (torchaudio `_hz_to_mel`, python floats).
pub fn hz_to_mel(f: f64) -> f64 {
    if f >= MIN_LOG_HZ {
        MIN_LOG_MEL + (f / MIN_LOG_HZ).ln() / logstep()
    } else {
        f / F_SP
    }
}

/// Slaney mel -> Hz in float32 (torchaudio `_mel_to_hz` on a float32 tensor).
pub fn mel_to_hz_f32(m: f32) -> f32 {
    if m >= MIN_LOG_MEL as f32 {
        MIN_LOG_HZ as f32 * ((logstep() as f32) * (m - MIN_LOG_MEL as f32)).exp()
    } else {
        F_SP as f32 * m
    }
}

/// Dense `(n_mels, n_freqs)` filterbank, row-major, float32 as torchaudio computes it.
pub fn mel_filterbank_dense(n_freqs: usize, f_min: f64, f_max: f64, n_mels: usize, sample_rate: u32) -> Vec<f32> {
    let all_freqs = linspace_f32(0.0, (sample_rate / 2) as f32, n_freqs);
    let m_pts = linspace_f32(hz_to_mel(f_min) as f32, hz_to_mel(f_max) as f32, n_mels + 2);
    let f_pts: Vec<f32> = m_pts.iter().map(|&m| mel_to_hz_f32(m)).collect();
    let f_diff: Vec<f32> = f_pts.windows(2).map(|w| w[1] - w[0]).collect();
    let mut fb = vec![0f32; n_mels * n_freqs];
    for m in 0..n_mels {
        let enorm = 2.0f32 / (f_pts[m + 2] - f_pts[m]);
        for (k, &f) in all_freqs.iter().enumerate() {
            let down = (f - f_pts[m]) / f_diff[m]; // torch: (-1.0 * slopes) / f_diff, the same value
            let up = (f_pts[m + 2] - f) / f_diff[m + 1];
            // an empty band (two equal mel points) gives 0/0: no weight rather than NaN
            let w = if down.is_nan() || up.is_nan() { 0.0 } else { down.min(up).max(0.0) };
            fb[m * n_freqs + k] = w * enorm;
        }
    }
    fb
}

/// `first..first + len` widened to a multiple of 8 bins (at most `n_freqs`), shifted
/// left where it would pass the last bin: the products then run without a scalar tail
/// (measured: the tails of the many short low bands cost more than their weights). The
/// extra weights are the filterbank's own values (zeros outside a triangle).
pub(crate) fn pad8(first: usize, len: usize, n_freqs: usize) -> (usize, usize) {
    if len == 0 {
        return (first, 0);
    }
    let wide = len.div_ceil(8).saturating_mul(8).min(n_freqs);
    (first.min(n_freqs - wide), wide)
}

/// The mel filterbank as one run of weights per band.
#[derive(Debug, Clone)]
pub struct SparseMel {
    /// Per band: first FFT bin and the offset of its weights in `weights`.
    bands: Vec<(usize, usize, usize)>,
    weights: Vec<f32>,
}

impl SparseMel {
    /// Keeps each row's span from its first to its last non-zero weight.
    pub fn from_dense(dense: &[f32], n_mels: usize, n_freqs: usize) -> SparseMel {
        let mut bands = Vec::with_capacity(n_mels);
        let mut weights = Vec::new();
        for row in dense.chunks_exact(n_freqs).take(n_mels) {
            let first = row.iter().position(|&w| w != 0.0);
            let (first, last) = match first {
                Some(f) => (f, row.iter().rposition(|&w| w != 0.0).unwrap_or(f)),
                None => (0, 0),
            };
            let len = if row.get(first).is_some_and(|&w| w != 0.0) { last + 1 - first } else { 0 };
            let (first, len) = pad8(first, len, n_freqs);
            bands.push((first, weights.len(), len));
            weights.extend_from_slice(&row[first..first + len]);
        }
        SparseMel { bands, weights }
    }

    /// `out[m] = sum_k W[m, k] * power[k]` in float32, in 8 interleaved partial sums (one
    /// running sum per band would be bound by the add latency: measured 2x slower clips).
    #[inline(always)]
    pub fn apply(&self, power: &[f32], out: &mut [f32]) {
        let avx2 = super::simd::has_avx2();
        for (o, &(first, off, len)) in out.iter_mut().zip(&self.bands) {
            *o = super::simd::dot_dispatch(&self.weights[off..off + len], &power[first..first + len], avx2);
        }
    }

    /// Number of stored weights (all bands).
    pub fn nnz(&self) -> usize {
        self.weights.len()
    }
}
