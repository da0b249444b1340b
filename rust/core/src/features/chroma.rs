//! Chroma filterbank, librosa `filters.chroma` definition, built in float64 and cast to
//! float32 exactly as `serlaq.features.chroma_filterbank` does.

/// `(n_chroma, n_fft / 2 + 1)` row-major weights (octave centre C5, width 2 octaves).
pub fn chroma_filterbank(sample_rate: f64, n_fft: usize, n_chroma: usize, tuning: f64) -> Vec<f32> {
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
