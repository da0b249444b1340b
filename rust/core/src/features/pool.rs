//! Pooling: a range of frame rows -> the feature vector.
//!
//! Layout (`FeatureSpec::blocks`): for s in stats `[mfcc_s, chroma_s, mel_s]`, then for s
//! in delta_stats `[dmfcc_s]`. Means and stds come from float64 running sums
//! (`std = sqrt(max(E[x^2] - E[x]^2, 0))`, population). The dB values are floored at
//! `peak - top_db`, where `peak` is the pooled window's own highest dB value
//! ([`FrameRows::db_peak`]); deltas use replicate edges at the window's ends.

use super::plan::{dot_dispatch, has_avx2, FeaturePlan, FrameRows};
use super::spec::{MelScale, Stat};
use std::ops::Range;

/// Reusable pooling buffers.
#[derive(Debug, Clone, Default)]
pub struct PoolScratch {
    floored: Vec<f32>,
    mean_db: Vec<f32>,
    sums: Vec<f64>,
    mfcc: Vec<f32>,
}

/// The pooling half of a [`FeaturePlan`].
#[derive(Debug, Clone, Copy)]
pub struct Pooler<'a> {
    plan: &'a FeaturePlan,
}

fn std_of(sum: f64, sq: f64, n: f64) -> f32 {
    let mean = sum / n;
    (sq / n - mean * mean).max(0.0).sqrt() as f32
}

impl<'a> Pooler<'a> {
    pub fn new(plan: &'a FeaturePlan) -> Pooler<'a> {
        Pooler { plan }
    }

    /// Frames `range` of `rows` -> `out` (`dim` values). `peak` is the dB reference of
    /// the top_db floor (ignored when top_db is None). An empty range gives zeros.
    pub fn pool(&self, rows: &FrameRows, range: Range<usize>, peak: f32, s: &mut PoolScratch, out: &mut [f32]) {
        let spec = self.plan.spec();
        let (nm, nc, nk) = (spec.n_mels, spec.n_chroma, spec.n_mfcc);
        assert_eq!(out.len(), spec.dim(), "output length must be the spec's dim");
        let n = range.len();
        if n == 0 {
            out.fill(0.0);
            return;
        }
        let nf = n as f64;
        let floor = spec.top_db.map_or(f32::NEG_INFINITY, |t| peak - t as f32);
        let frame_mfcc = spec.needs_frame_mfcc();
        let dct = self.plan.dct();
        let avx2 = has_avx2();

        s.sums.clear();
        s.sums.resize(4 * nm + 2 * nc, 0.0);
        s.floored.resize(nm, 0.0);
        s.mfcc.clear();
        let (db_s, rest) = s.sums.split_at_mut(nm);
        let (db_q, rest) = rest.split_at_mut(nm);
        let (pw_s, rest) = rest.split_at_mut(nm);
        let (pw_q, rest) = rest.split_at_mut(nm);
        let (ch_s, ch_q) = rest.split_at_mut(nc);
        for t in range {
            for (((f, &d), a), q) in s.floored.iter_mut().zip(rows.db(t)).zip(db_s.iter_mut()).zip(db_q.iter_mut()) {
                *f = d.max(floor);
                let v = f64::from(*f);
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
            if frame_mfcc {
                let fl = &s.floored;
                s.mfcc.extend(dct.chunks_exact(nm).map(|row| dot_dispatch(row, fl, avx2)));
            }
        }
        s.mean_db.clear();
        s.mean_db.extend(db_s.iter().map(|&v| (v / nf) as f32));

        let mut at = 0;
        let mut put = |vals: &mut dyn Iterator<Item = f32>| {
            for v in vals {
                out[at] = v;
                at += 1;
            }
        };
        let mfcc_frames = &s.mfcc;
        let mfcc_std = |k: usize| {
            let (mut a, mut q) = (0f64, 0f64);
            for t in 0..n {
                let v = f64::from(mfcc_frames[t * nk + k]);
                a += v;
                q += v * v;
            }
            std_of(a, q, nf)
        };
        for stat in &spec.stats {
            match stat {
                Stat::Mean => {
                    put(&mut dct.chunks_exact(nm).map(|row| dot_dispatch(row, &s.mean_db, avx2)));
                    put(&mut ch_s.iter().map(|&v| (v / nf) as f32));
                    match spec.mel_scale {
                        MelScale::Power => put(&mut pw_s.iter().map(|&v| (v / nf) as f32)),
                        MelScale::Db => put(&mut s.mean_db.iter().copied()),
                    }
                }
                Stat::Std => {
                    put(&mut (0..nk).map(mfcc_std));
                    put(&mut ch_s.iter().zip(ch_q.iter()).map(|(&a, &q)| std_of(a, q, nf)));
                    match spec.mel_scale {
                        MelScale::Power => put(&mut pw_s.iter().zip(pw_q.iter()).map(|(&a, &q)| std_of(a, q, nf))),
                        MelScale::Db => put(&mut db_s.iter().zip(db_q.iter()).map(|(&a, &q)| std_of(a, q, nf))),
                    }
                }
            }
        }
        if !spec.delta_stats.is_empty() {
            let half = (spec.delta_width - 1) / 2;
            let denom = (half * (half + 1) * (2 * half + 1)) as f64 / 3.0;
            let (mut d_s, mut d_q) = (vec![0f64; nk], vec![0f64; nk]);
            for t in 0..n {
                for k in 0..nk {
                    let mut d = 0f64;
                    for j in 1..=half {
                        let hi = mfcc_frames[(t + j).min(n - 1) * nk + k];
                        let lo = mfcc_frames[t.saturating_sub(j) * nk + k];
                        d += j as f64 * (f64::from(hi) - f64::from(lo));
                    }
                    let d = f64::from((d / denom) as f32);
                    d_s[k] += d;
                    d_q[k] += d * d;
                }
            }
            for stat in &spec.delta_stats {
                match stat {
                    Stat::Mean => put(&mut d_s.iter().map(|&v| (v / nf) as f32)),
                    Stat::Std => put(&mut d_s.iter().zip(d_q.iter()).map(|(&a, &q)| std_of(a, q, nf))),
                }
            }
        }
        debug_assert_eq!(at, out.len());
    }
}
