//! Plain, obviously correct twins of the fast path (`_ref`): a naive DFT STFT, dense
//! mel and chroma products, a naive DCT-II and two-pass pooling, all in float64. The
//! filterbank builders are shared (they are the torchaudio/librosa definitions and are
//! tested against closed forms on their own). Slow: for tests.

use super::chroma::chroma_filterbank;
use super::mel::mel_filterbank_dense;
use super::spec::{
    ChromaSpectrum, DbReference, FeatureSpec, MelScale, Stat, EDGE_BLOCK_S, EDGE_ENERGY_RATIO, EDGE_FLOOR_DIVISOR,
    EDGE_FLOOR_RATIO, FLOOR_QUANTILE,
};
use super::stft::window;
use std::f64::consts::PI;

/// Naive DFT of a real frame: bins `0..=n/2` as (re, im).
pub fn dft_ref(frame: &[f64]) -> Vec<(f64, f64)> {
    let n = frame.len();
    (0..n / 2 + 1)
        .map(|k| {
            let (mut re, mut im) = (0f64, 0f64);
            for (t, &x) in frame.iter().enumerate() {
                // reduce k*t mod n first so the angle stays small and exact
                let a = -2.0 * PI * ((k * t) % n) as f64 / n as f64;
                re += x * a.cos();
                im += x * a.sin();
            }
            (re, im)
        })
        .collect()
}

/// Orthonormal DCT-II coefficient `k` of `x`, from the definition.
pub fn dct_ref(x: &[f64], k: usize) -> f64 {
    let n = x.len() as f64;
    let s: f64 = x.iter().enumerate().map(|(i, &v)| v * (PI / n * (i as f64 + 0.5) * k as f64).cos()).sum();
    let c = if k == 0 { (1.0 / n).sqrt() } else { (2.0 / n).sqrt() };
    c * s
}

/// One `Vec` per frame.
pub type Rows = Vec<Vec<f64>>;

/// Per-frame values of a whole clip: (power mel, unfloored dB mel, chroma), frame-major.
pub fn frames_ref(spec: &FeatureSpec, wave: &[f32]) -> (Rows, Rows, Rows) {
    let n_fft = spec.n_fft;
    let half = n_fft / 2;
    let n_freqs = spec.n_freqs();
    let win = window(n_fft, spec.win_length());
    let mel = mel_filterbank_dense(n_freqs, spec.f_min, spec.f_max(), spec.n_mels, spec.sample_rate);
    let chroma = chroma_filterbank(f64::from(spec.sample_rate), n_fft, spec.n_chroma, spec.chroma_tuning);
    let mut padded = vec![0f64; half];
    padded.extend(wave.iter().map(|&v| f64::from(v)));
    padded.extend(std::iter::repeat_n(0.0, half));
    let (mut pw, mut db, mut ch) = (Vec::new(), Vec::new(), Vec::new());
    let mut start = 0;
    while start + n_fft <= padded.len() {
        let frame: Vec<f64> = (0..n_fft).map(|i| padded[start + i] * f64::from(win[i])).collect();
        let spec_c = dft_ref(&frame);
        let mag: Vec<f64> = spec_c.iter().map(|&(r, i)| (r * r + i * i).sqrt()).collect();
        let power: Vec<f64> = mag.iter().map(|m| m * m).collect();
        let m: Vec<f64> =
            (0..spec.n_mels).map(|b| (0..n_freqs).map(|k| f64::from(mel[b * n_freqs + k]) * power[k]).sum()).collect();
        db.push(m.iter().map(|&v| 10.0 * v.max(1e-10).log10()).collect());
        pw.push(m);
        let src = if spec.chroma_spectrum == ChromaSpectrum::Magnitude { &mag } else { &power };
        let raw: Vec<f64> = (0..spec.n_chroma)
            .map(|c| (0..n_freqs).map(|k| f64::from(chroma[c * n_freqs + k]) * src[k]).sum())
            .collect();
        let top = raw.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let top = if top < f64::from(f32::MIN_POSITIVE) { 1.0 } else { top };
        ch.push(raw.iter().map(|v| v / top).collect());
        start += spec.hop_length;
    }
    (pw, db, ch)
}

fn mean_ref(rows: &[Vec<f64>], j: usize) -> f64 {
    rows.iter().map(|r| r[j]).sum::<f64>() / rows.len() as f64
}

fn std_ref(rows: &[Vec<f64>], j: usize) -> f64 {
    let m = mean_ref(rows, j);
    (rows.iter().map(|r| (r[j] - m).powi(2)).sum::<f64>() / rows.len() as f64).sqrt()
}

/// `edge_pause_s` (and `edge_floor`) from its definition: every block's energy, the loud
/// ones, the span around them (`edges::edge_span` is the fast twin). The floor is the
/// sorted energies' element `(n - 1) / 10`.
pub fn edge_span_ref(
    wave: &[f32],
    sample_rate: u32,
    keep_s: f64,
    min_samples: usize,
    floor: bool,
) -> std::ops::Range<usize> {
    let block = ((EDGE_BLOCK_S * f64::from(sample_rate) + 0.5).floor() as usize).max(1);
    let energies: Vec<f64> =
        wave.chunks_exact(block).map(|b| b.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>()).collect();
    let loudest = energies.iter().cloned().fold(0.0, f64::max);
    let mut sorted = energies.clone();
    sorted.sort_by(f64::total_cmp);
    let noise = if floor && !sorted.is_empty() { sorted[(sorted.len() - 1) / EDGE_FLOOR_DIVISOR] } else { 0.0 };
    let loud: Vec<usize> = (0..energies.len())
        .filter(|&i| energies[i] >= loudest * EDGE_ENERGY_RATIO && energies[i] >= noise * EDGE_FLOOR_RATIO)
        .collect();
    let (Some(&first), Some(&last)) = (loud.first(), loud.last()) else {
        return 0..wave.len();
    };
    let keep = (keep_s * f64::from(sample_rate) + 0.5).floor() as i64;
    let start = (first as i64 * block as i64 - keep).max(0) as usize;
    let end = (((last + 1) * block) as i64 + keep).min(wave.len() as i64) as usize;
    if end - start >= min_samples {
        start..end
    } else {
        0..wave.len()
    }
}

/// Whole clip -> feature vector, every step from its definition.
pub fn features_ref(spec: &FeatureSpec, wave: &[f32]) -> Vec<f64> {
    let wave = match spec.edge_pause_s {
        Some(keep) => &wave[edge_span_ref(wave, spec.sample_rate, keep, spec.min_samples(), spec.edge_floor)],
        None => wave,
    };
    let (pw, db, ch) = frames_ref(spec, wave);
    let peak = db.iter().flatten().cloned().fold(f64::NEG_INFINITY, f64::max);
    let floor = spec.top_db.map_or(f64::NEG_INFINITY, |t| peak - t);
    let fdb: Vec<Vec<f64>> = db.iter().map(|r| r.iter().map(|&v| v.max(floor)).collect()).collect();
    // The frame gate: a frame's level is its mean floored dB over the bands.
    let level: Vec<f64> = fdb.iter().map(|r| r.iter().sum::<f64>() / r.len() as f64).collect();
    let loudest = level.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut sorted = level.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pos = FLOOR_QUANTILE * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let noise_floor = sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo]);
    let keep: Vec<bool> = level
        .iter()
        .map(|&l| {
            spec.frame_gate_db.is_none_or(|g| l >= loudest - g)
                && spec.frame_floor_db.is_none_or(|m| l >= noise_floor + m.min((loudest - noise_floor) / 2.0))
        })
        .collect();
    let kept = |rows: &Rows| -> Rows { rows.iter().zip(&keep).filter(|(_, &k)| k).map(|(r, _)| r.clone()).collect() };
    let reference = match spec.db_reference {
        DbReference::Absolute => 0.0,
        DbReference::Peak => fdb.iter().flatten().cloned().fold(f64::NEG_INFINITY, f64::max),
        DbReference::Mean => kept(&fdb).iter().flatten().sum::<f64>() / (kept(&fdb).len() * spec.n_mels) as f64,
    };
    let fdb: Vec<Vec<f64>> = fdb.iter().map(|r| r.iter().map(|&v| v - reference).collect()).collect();
    let mfcc: Vec<Vec<f64>> = fdb.iter().map(|r| (0..spec.n_mfcc).map(|k| dct_ref(r, k)).collect()).collect();
    let mel = if spec.mel_scale == MelScale::Power { &pw } else { &fdb };
    let (mfcc_k, ch_k, mel_k) = (kept(&mfcc), kept(&ch), kept(mel));
    let mut out = Vec::new();
    for stat in &spec.stats {
        let f = if *stat == Stat::Mean { mean_ref } else { std_ref };
        for block in [&mfcc_k, &ch_k, &mel_k] {
            out.extend((0..block[0].len()).map(|j| f(block, j)));
        }
    }
    if !spec.delta_stats.is_empty() {
        let n = mfcc.len() as i64;
        let half = ((spec.delta_width - 1) / 2) as i64;
        let denom: f64 = 2.0 * (1..=half).map(|j| (j * j) as f64).sum::<f64>();
        let at = |t: i64| &mfcc[t.clamp(0, n - 1) as usize];
        let delta: Vec<Vec<f64>> = (0..n)
            .map(|t| {
                (0..spec.n_mfcc).map(|k| (-half..=half).map(|j| j as f64 * at(t + j)[k]).sum::<f64>() / denom).collect()
            })
            .collect();
        let delta = kept(&delta);
        for stat in &spec.delta_stats {
            let f = if *stat == Stat::Mean { mean_ref } else { std_ref };
            out.extend((0..spec.n_mfcc).map(|k| f(&delta, k)));
        }
    }
    out
}
