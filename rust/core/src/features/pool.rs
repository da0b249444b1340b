//! Pooling: a range of frame rows -> the feature vector.
//!
//! Layout (`FeatureSpec::blocks`): for s in stats `[mfcc_s, chroma_s, mel_s]`, then for s
//! in delta_stats `[dmfcc_s]`. Means and stds come from float64 running sums
//! (`std = sqrt(max(E[x^2] - E[x]^2, 0))`, population). The dB values are floored at
//! `peak - top_db`, where `peak` is the pooled window's own highest dB value
//! ([`FrameRows::db_peak`]); deltas use replicate edges at the window's ends. With a
//! `frame_gate_db` or `frame_floor_db`, only the frames whose level (mean floored dB over
//! the bands) passes [`gate_threshold`] enter the sums (deltas are still taken over every
//! frame, so a kept frame's delta sees its real neighbours).

use super::frames::FrameRows;
use super::simd::{dot_dispatch, has_simd};
use super::spec::{DbReference, FeatureSpec, MelScale, Stat, FLOOR_QUANTILE};
use std::ops::Range;

/// Reusable pooling buffers.
#[derive(Debug, Clone, Default)]
pub struct PoolScratch {
    floored: Vec<f32>,
    mean_db: Vec<f32>,
    sums: Vec<f64>,
    mfcc: Vec<f32>,
    delta: Vec<f64>,
    keep: Vec<bool>,
    levels: Vec<f64>,
    sorted: Vec<f64>,
}

/// The pooling half of a feature plan: the spec and its DCT matrix.
#[derive(Debug, Clone, Copy)]
pub struct Pooler<'a> {
    spec: &'a FeatureSpec,
    dct: &'a [f32],
}

fn std_of(sum: f64, sq: f64, n: f64) -> f32 {
    let mean = sum / n;
    (sq / n - mean * mean).max(0.0).sqrt() as f32
}

/// The lowest level a frame may have and still be pooled: the larger of `loudest -
/// frame_gate_db` and `floor + min(frame_floor_db, (loudest - floor) / 2)`, the floor
/// being the [`FLOOR_QUANTILE`] of the levels (linear between order statistics, as
/// `torch.quantile`). The loudest frame always passes. `sorted` is scratch.
pub(crate) fn gate_threshold(spec: &FeatureSpec, levels: &[f64], sorted: &mut Vec<f64>) -> f64 {
    let loudest = levels.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let mut threshold = spec.frame_gate_db.map_or(f64::NEG_INFINITY, |g| loudest - g);
    if let Some(margin) = spec.frame_floor_db {
        sorted.clear();
        sorted.extend_from_slice(levels);
        sorted.sort_unstable_by(f64::total_cmp);
        let pos = FLOOR_QUANTILE * (sorted.len() - 1) as f64;
        let (lo, frac) = (pos.floor() as usize, pos.fract());
        let hi = (lo + 1).min(sorted.len() - 1);
        let noise_floor = sorted[lo] + frac * (sorted[hi] - sorted[lo]);
        // at most halfway up from the floor: a clip without pauses (a small range between
        // floor and loudest) keeps its upper half instead of a few frames at its top
        threshold = threshold.max(noise_floor + margin.min((loudest - noise_floor) / 2.0));
    }
    threshold
}

impl<'a> Pooler<'a> {
    /// `dct`: the `n_mfcc x n_mels` orthonormal DCT-II matrix of `spec` (the plan's).
    pub fn new(spec: &'a FeatureSpec, dct: &'a [f32]) -> Pooler<'a> {
        Pooler { spec, dct }
    }

    /// Frames `range` of `rows` -> `out` (`dim` values). `peak` is the dB reference of
    /// the top_db floor (ignored when top_db is None). An empty range gives zeros.
    ///
    /// The same code is compiled twice, plain and with AVX2 enabled (chosen at run time),
    /// as the plan's frame analysis is: every loop keeps its per-element order of
    /// operations (the vectorized loops run across bands/coefficients, never reorder a
    /// sum over frames), so both give bit-identical vectors. On aarch64 the plain build
    /// is already NEON code; there only the DCT products switch to the NEON dot.
    pub fn pool(&self, rows: &FrameRows, range: Range<usize>, peak: f32, s: &mut PoolScratch, out: &mut [f32]) {
        if has_simd() {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: on x86-64 `has_simd` means the CPU supports AVX2.
            return unsafe { self.pool_avx2(rows, range, peak, s, out) };
            #[cfg(not(target_arch = "x86_64"))]
            return self.pool_body(rows, range, peak, s, out, true);
        }
        self.pool_body(rows, range, peak, s, out, false);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn pool_avx2(&self, rows: &FrameRows, range: Range<usize>, peak: f32, s: &mut PoolScratch, out: &mut [f32]) {
        self.pool_body(rows, range, peak, s, out, true);
    }

    /// [`Pooler::pool`]'s body; `simd` only where [`has_simd`] (the dot kernel).
    #[inline(always)]
    pub(crate) fn pool_body(
        &self,
        rows: &FrameRows,
        range: Range<usize>,
        peak: f32,
        s: &mut PoolScratch,
        out: &mut [f32],
        simd: bool,
    ) {
        let spec = self.spec;
        let (nm, nc, nk) = (spec.n_mels, spec.n_chroma, spec.n_mfcc);
        assert_eq!(out.len(), spec.dim(), "output length must be the spec's dim");
        let n = range.len();
        if n == 0 {
            out.fill(0.0);
            return;
        }
        let floor = spec.top_db.map_or(f32::NEG_INFINITY, |t| peak - t as f32);
        s.keep.clear();
        if spec.gates_frames() {
            // A frame's level: the mean of its floored dB values over the bands.
            s.levels.clear();
            s.levels.extend(
                range.clone().map(|t| rows.db(t).iter().map(|&d| f64::from(d.max(floor))).sum::<f64>() / nm as f64),
            );
            let threshold = gate_threshold(spec, &s.levels, &mut s.sorted);
            s.keep.extend(s.levels.iter().map(|&l| l >= threshold));
        }
        // without a gate `keep` is empty and every frame is pooled; with one, at least the
        // loudest frame is kept
        let keep = &s.keep;
        let pooled = |i: usize| keep.is_empty() || keep[i];
        let nf = if keep.is_empty() { n } else { keep.iter().filter(|&&k| k).count() } as f64;
        let frame_mfcc = spec.needs_frame_mfcc();
        let dct = self.dct;

        // sums: dB, dB^2, power, power^2 (n_mels each), chroma, chroma^2, MFCC, MFCC^2,
        // delta, delta^2 (n_mfcc each)
        s.sums.clear();
        s.sums.resize(4 * nm + 2 * nc + 4 * nk, 0.0);
        s.floored.resize(nm, 0.0);
        s.mfcc.clear();
        s.mfcc.resize(if frame_mfcc { n * nk } else { 0 }, 0.0);
        let (db_s, rest) = s.sums.split_at_mut(nm);
        let (db_q, rest) = rest.split_at_mut(nm);
        let (pw_s, rest) = rest.split_at_mut(nm);
        let (pw_q, rest) = rest.split_at_mut(nm);
        let (ch_s, rest) = rest.split_at_mut(nc);
        let (ch_q, rest) = rest.split_at_mut(nc);
        let (mf_s, rest) = rest.split_at_mut(nk);
        let (mf_q, rest) = rest.split_at_mut(nk);
        let (d_s, d_q) = rest.split_at_mut(nk);
        for (i, t) in range.enumerate() {
            let kept = pooled(i);
            for (f, &d) in s.floored.iter_mut().zip(rows.db(t)) {
                *f = d.max(floor);
            }
            if kept {
                for ((&f, a), q) in s.floored.iter().zip(db_s.iter_mut()).zip(db_q.iter_mut()) {
                    let v = f64::from(f);
                    *a += v;
                    *q += v * v;
                }
                for ((&p, a), q) in rows.power(t).iter().zip(pw_s.iter_mut()).zip(pw_q.iter_mut()) {
                    let v = f64::from(p);
                    *a += v;
                    *q += v * v;
                }
                for ((&c, a), q) in rows.chroma(t).iter().zip(ch_s.iter_mut()).zip(ch_q.iter_mut()) {
                    let v = f64::from(c);
                    *a += v;
                    *q += v * v;
                }
            }
            if frame_mfcc {
                // every frame's MFCCs: the deltas of kept frames read their neighbours
                let fl = &s.floored;
                let row = &mut s.mfcc[i * nk..(i + 1) * nk];
                for ((m, d), (a, q)) in
                    row.iter_mut().zip(dct.chunks_exact(nm)).zip(mf_s.iter_mut().zip(mf_q.iter_mut()))
                {
                    *m = dot_dispatch(d, fl, simd);
                    if kept {
                        let v = f64::from(*m);
                        *a += v;
                        *q += v * v;
                    }
                }
            }
        }
        s.mean_db.clear();
        s.mean_db.extend(db_s.iter().map(|&v| (v / nf) as f32));
        // Level invariance: a constant dB shift moves only the means (MFCC via the DCT,
        // dB mel); stds and deltas are shift-invariant, so they keep the absolute sums.
        let reference = match spec.db_reference {
            DbReference::Absolute => 0.0,
            DbReference::Peak => peak.max(floor),
            DbReference::Mean => s.mean_db.iter().sum::<f32>() / nm as f32,
        };
        if reference != 0.0 {
            s.mean_db.iter_mut().for_each(|v| *v -= reference);
        }

        // deltas first (their sums live in `s.sums`); written to `out` at the end
        if !spec.delta_stats.is_empty() {
            let mfcc_frames = &s.mfcc;
            let half = (spec.delta_width - 1) / 2;
            let denom = (half * (half + 1) * (2 * half + 1)) as f64 / 3.0;
            let row = |t: usize| &mfcc_frames[t * nk..(t + 1) * nk];
            s.delta.clear();
            s.delta.resize(nk, 0.0);
            for t in (0..n).filter(|&t| pooled(t)) {
                s.delta.fill(0.0);
                for j in 1..=half {
                    let (hi, lo) = (row((t + j).min(n - 1)), row(t.saturating_sub(j)));
                    let jf = j as f64;
                    for ((d, &h), &l) in s.delta.iter_mut().zip(hi).zip(lo) {
                        *d += jf * (f64::from(h) - f64::from(l));
                    }
                }
                for ((&d, a), q) in s.delta.iter().zip(d_s.iter_mut()).zip(d_q.iter_mut()) {
                    let d = f64::from((d / denom) as f32);
                    *a += d;
                    *q += d * d;
                }
            }
        }

        let mut at = 0;
        let mut put = |vals: &mut dyn Iterator<Item = f32>| {
            for v in vals {
                out[at] = v;
                at += 1;
            }
        };
        for stat in &spec.stats {
            match stat {
                Stat::Mean => {
                    // with dB re the clip mean, MFCC 0 (the scaled band mean) is 0 by definition:
                    // an exact 0, as the reference stores it, not rounding noise
                    let zero_c0 = spec.db_reference == DbReference::Mean;
                    put(&mut dct.chunks_exact(nm).enumerate().map(|(k, row)| {
                        if k == 0 && zero_c0 {
                            0.0
                        } else {
                            dot_dispatch(row, &s.mean_db, simd)
                        }
                    }));
                    put(&mut ch_s.iter().map(|&v| (v / nf) as f32));
                    match spec.mel_scale {
                        MelScale::Power => put(&mut pw_s.iter().map(|&v| (v / nf) as f32)),
                        MelScale::Db => put(&mut s.mean_db.iter().copied()),
                    }
                }
                Stat::Std => {
                    put(&mut mf_s.iter().zip(mf_q.iter()).map(|(&a, &q)| std_of(a, q, nf)));
                    put(&mut ch_s.iter().zip(ch_q.iter()).map(|(&a, &q)| std_of(a, q, nf)));
                    match spec.mel_scale {
                        MelScale::Power => put(&mut pw_s.iter().zip(pw_q.iter()).map(|(&a, &q)| std_of(a, q, nf))),
                        MelScale::Db => put(&mut db_s.iter().zip(db_q.iter()).map(|(&a, &q)| std_of(a, q, nf))),
                    }
                }
            }
        }
        for stat in &spec.delta_stats {
            match stat {
                Stat::Mean => put(&mut d_s.iter().map(|&v| (v / nf) as f32)),
                Stat::Std => put(&mut d_s.iter().zip(d_q.iter()).map(|(&a, &q)| std_of(a, q, nf))),
            }
        }
        debug_assert_eq!(at, out.len());
    }
}
