//! Chroma filterbank, librosa `filters.chroma` definition, built in float64 and cast to
//! float32 exactly as `serlaq.features.chroma_filterbank` does.

/// `(n_chroma, n_fft / 2 + 1)` row-major weights (octave centre C5, width 2 octaves);
/// empty for `n_chroma` 0 (no chroma block).
pub fn chroma_filterbank(sample_rate: f64, n_fft: usize, n_chroma: usize, tuning: f64) -> Vec<f32> {
    if n_chroma == 0 {
        return Vec::new();
    }
    const CTROCT: f64 = 5.0;
    const OCTWIDTH: f64 = 2.0;
    let nc = n_chroma as f64;
    let a440 = 440.0 * 2f64.powf(tuning / nc);
    // positions of bins 1..n_fft, then a made-up one for 0 Hz in front
    let mut pos = Vec::with_capacity(n_fft);
    pos.push(0.0);
    for k in 1..n_fft {
        let f = k as f64 * (sample_rate / n_fft as f64);
        pos.push(nc * (f / (a440 / 16.0)).log2());
    }
    pos[0] = if n_fft > 1 { pos[1] - 1.5 * nc } else { -1.5 * nc };
    let mut width = Vec::with_capacity(n_fft);
    for k in 0..n_fft {
        width.push(if k + 1 < n_fft { (pos[k + 1] - pos[k]).max(1.0) } else { 1.0 });
    }
    let half = (nc / 2.0).round_ties_even();
    let mut w = vec![0f64; n_chroma * n_fft];
    for c in 0..n_chroma {
        for k in 0..n_fft {
            let d = pos[k] - c as f64 + half + 10.0 * nc;
            let d = d % nc - half; // torch.remainder of a positive value = fmod
            w[c * n_fft + k] = (-0.5 * (2.0 * d / width[k]).powi(2)).exp();
        }
    }
    for k in 0..n_fft {
        let norm = (0..n_chroma).map(|c| w[c * n_fft + k].powi(2)).sum::<f64>().sqrt();
        let norm = if norm < f64::MIN_POSITIVE { 1.0 } else { norm };
        let oct = (-0.5 * ((pos[k] / nc - CTROCT) / OCTWIDTH).powi(2)).exp();
        for c in 0..n_chroma {
            w[c * n_fft + k] = w[c * n_fft + k] / norm * oct;
        }
    }
    let shift = 3 * (n_chroma / 12);
    let n_freqs = n_fft / 2 + 1;
    let mut out = vec![0f32; n_chroma * n_freqs];
    for c in 0..n_chroma {
        let src = (c + shift) % n_chroma; // torch.roll(x, -shift): out[c] = x[c + shift]
        for k in 0..n_freqs {
            out[c * n_freqs + k] = w[src * n_fft + k] as f32;
        }
    }
    out
}

/// The chroma filterbank stored as runs of bins per pitch class, with the negligible
/// tails of the Gaussian bumps dropped.
///
/// Dropped: weight `W[c, k] < EPS * max_c' W[c', k]` with `EPS = 2^-30 / n_chroma`.
/// Bound (any spectrum `S >= 0`; all weights are `>= 0`): the dropped part of a raw
/// chroma value is `sum_k W[c, k] S[k]` over dropped `k`, below
/// `EPS * sum_k max_c' W[c', k] S[k] <= EPS * sum_c' raw[c'] <= EPS * n_chroma * top
/// = 2^-30 * top`, where `top = max_c raw[c]` is the frame's normalizer. So every
/// normalized chroma value (in `[0, 1]`) moves by at most `2^-30 / (1 - 2^-30)`, about
/// 9.3e-10 absolute, and so do its time mean and std (both 1-Lipschitz in the largest
/// per-frame change): under 1/100 of one float32 ulp of 1.0, far below `FAST_VS_REF_REL`.
/// Two kept runs of a row closer than [`SparseChroma::MERGE_GAP`] bins are stored as one
/// (the bins between keep their exact weights), and each run is widened to a multiple of
/// 8 bins the same way ([`super::mel::pad8`]): keeping more only shrinks the dropped part.
#[derive(Debug, Clone)]
pub struct SparseChroma {
    /// Per run: (row, first bin, offset into `weights`, length); rows in order.
    runs: Vec<(usize, usize, usize, usize)>,
    weights: Vec<f32>,
}

impl SparseChroma {
    /// Relative drop threshold times `n_chroma` (see the type's docs).
    pub const EPS_TIMES_N: f64 = 1.0 / (1u64 << 30) as f64;
    /// Gaps of at most this many dropped bins are kept (one run instead of two).
    pub const MERGE_GAP: usize = 8;

    /// From the dense `(n_chroma, n_freqs)` filterbank.
    pub fn new(dense: &[f32], n_chroma: usize, n_freqs: usize) -> SparseChroma {
        let eps = Self::EPS_TIMES_N / n_chroma as f64;
        let colmax: Vec<f64> = (0..n_freqs)
            .map(|k| (0..n_chroma).map(|c| f64::from(dense[c * n_freqs + k])).fold(0.0, f64::max))
            .collect();
        let mut runs = Vec::new();
        let mut weights = Vec::new();
        for (c, row) in dense.chunks_exact(n_freqs).take(n_chroma).enumerate() {
            // a run widened to a multiple of 8 bins keeps the filterbank's own weights there
            // (never into the row's previous run: each bin is counted once)
            let mut row_end = 0;
            let mut push = |c: usize, f: usize, l: usize| {
                let (f, len) = super::mel::pad8(f, l + 1 - f, n_freqs);
                let (f, end) = (f.max(row_end).min(f + len), f + len);
                runs.push((c, f, weights.len(), end - f));
                weights.extend_from_slice(&row[f..end]);
                row_end = end;
            };
            let keep = |k: usize| f64::from(row[k]) >= eps * colmax[k] && row[k] > 0.0;
            let mut k = 0;
            let mut open: Option<(usize, usize)> = None; // (first, last kept)
            while k < n_freqs {
                if keep(k) {
                    open = match open {
                        Some((f, l)) if k - l <= Self::MERGE_GAP + 1 => Some((f, k)),
                        Some((f, l)) => {
                            push(c, f, l);
                            Some((k, k))
                        }
                        None => Some((k, k)),
                    };
                }
                k += 1;
            }
            if let Some((f, l)) = open {
                push(c, f, l);
            }
        }
        SparseChroma { runs, weights }
    }

    /// `out[c] = sum over kept k of W[c, k] * spectrum[k]` (float32, 8 partial sums per run).
    #[inline(always)]
    pub fn apply(&self, spectrum: &[f32], out: &mut [f32]) {
        out.fill(0.0);
        let simd = super::simd::has_simd();
        for &(c, first, off, len) in &self.runs {
            out[c] += super::simd::dot_dispatch(&self.weights[off..off + len], &spectrum[first..first + len], simd);
        }
    }

    /// The kept weights as a dense `(n_chroma, n_freqs)` matrix (zeros where dropped).
    pub fn to_dense(&self, n_chroma: usize, n_freqs: usize) -> Vec<f32> {
        let mut d = vec![0f32; n_chroma * n_freqs];
        for &(c, first, off, len) in &self.runs {
            // added, as `apply` does: a bin stored twice would show as a doubled weight
            for (o, &w) in
                d[c * n_freqs + first..c * n_freqs + first + len].iter_mut().zip(&self.weights[off..off + len])
            {
                *o += w;
            }
        }
        d
    }

    /// Number of stored weights.
    pub fn nnz(&self) -> usize {
        self.weights.len()
    }
    /// Number of runs (all rows).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }
}
