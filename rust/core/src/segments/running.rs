//! Running normalisation: a stream re-estimates the model's input statistics from its own
//! speech windows as they arrive, the streaming form of `serlaq adapt` (which needs the
//! audio up front).
//!
//! The statistics a window is standardized with are the moments of a mixture: the model's
//! stored mean/std counted as `prior` windows, plus the stream's speech windows so far
//! (this one included) with their running mean and variance. The first windows are judged
//! almost as the model would judge them alone; after a few tens of windows the stream's
//! own room, microphone and speakers dominate. With `horizon` the stream's part forgets
//! exponentially (weight `1 / horizon` once more than `horizon` windows were seen), so a
//! stream that moves to another room follows it, while a minute of one emotion does not
//! normalise that emotion away (the default horizon is ten minutes of 1-s hops).
//!
//! Chosen on the cross-corpus inner folds (EMODB→TESS speaker OAF, TESS→EMODB speakers
//! 03/08/09/10/11, 3 seeds, clips in random order as a stream): prior 20 keeps 97-99 % of
//! the gain of adapting on the whole corpus up front and costs 1.4 points on the source
//! corpus's own validation clips (prior 5: 2.2 points). Numbers: `docs/adapt.md`.
//!
//! The std is then widened, never narrowed: each feature's is at least the model's stored
//! std, as `serlaq adapt` does by default (`StdRule::Widen`): a stream of one speaker in one
//! room is narrower than the training data, and stretching it to unit variance blows its
//! small differences up into the large ones the network learned emotions from. Measured
//! on the same folds (6 seeds, balance on): TESS→EMODB +3.1 ± 1.1 UAR, EMODB→TESS −2.0 ±
//! 0.9, the source's own clips streamed +0.5 / 0.0.
//!
//! With `balance` (the streaming form of `serlaq adapt`'s second step) the window's
//! probabilities are then divided by the stream's label mix so far and renormalized: the
//! mix is the running mean of the windows' probabilities (before balancing, same weights
//! and horizon as the statistics) pooled with `prior` windows of a uniform mix, so the
//! first windows are left almost as they are. It is the first step of the EM prior
//! correction adapt iterates to its fixed point (Saerens et al. 2002); one step needs only
//! the label mix, not the past windows, and measured as well on the inner folds
//! (EMODB→TESS +4.3, TESS→EMODB +2.5 UAR over statistics alone, 4 seeds, `docs/adapt.md`).
//! Each label's factor is bounded to e^±8, adapt's ±8-logit bound.

use super::SegmentError;

/// Default weight of the model's own statistics, in windows.
pub const DEFAULT_PRIOR: f64 = 20.0;
/// Default memory of the stream's statistics, in windows.
pub const DEFAULT_HORIZON: f64 = 600.0;
/// Largest change of one label's log-probability by the balance (adapt's logit bound).
pub const BALANCE_BOUND: f64 = 8.0;

/// Accepted `prior` and `horizon`, in windows.
pub const RUNNING_RANGE: (f64, f64) = (1.0, 1e9);

/// The two numbers of running normalisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunningNorm {
    /// Weight of the model's stored statistics, counted as this many windows.
    pub prior: f64,
    /// Windows after which the stream's statistics forget exponentially.
    pub horizon: f64,
    /// Also spread the stream's windows over the labels (see the module docs).
    pub balance: bool,
}

impl Default for RunningNorm {
    fn default() -> Self {
        RunningNorm { prior: DEFAULT_PRIOR, horizon: DEFAULT_HORIZON, balance: true }
    }
}

impl RunningNorm {
    /// Checks both numbers against [`RUNNING_RANGE`].
    pub fn validate(&self) -> Result<(), SegmentError> {
        let (lo, hi) = RUNNING_RANGE;
        for (field, value) in [("running_prior", self.prior), ("running_horizon", self.horizon)] {
            if !(lo..=hi).contains(&value) {
                return Err(SegmentError::Option {
                    field,
                    value,
                    detail: format!("must be a number of windows within {lo}..={hi:e}"),
                });
            }
        }
        Ok(())
    }
}

/// The stream's side of the mixture: an exponentially forgetting mean and (population)
/// variance of the raw feature vectors of its speech windows, in float64.
#[derive(Debug, Clone)]
pub struct RunningStats {
    opts: RunningNorm,
    seen: u64,
    mean: Vec<f64>,
    var: Vec<f64>,
    /// Running mean of the windows' probabilities before balancing (empty until the first).
    mix: Vec<f64>,
}

impl RunningStats {
    /// Empty statistics for `dim`-wide feature vectors.
    pub fn new(opts: RunningNorm, dim: usize) -> RunningStats {
        RunningStats { opts, seen: 0, mean: vec![0.0; dim], var: vec![0.0; dim], mix: Vec::new() }
    }

    /// Speech windows taken in so far.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Takes one window's raw feature vector in: Welford's update with weight `1 / n`
    /// (exact mean and variance) until `horizon` windows, `1 / horizon` after.
    pub fn update(&mut self, x: &[f32]) {
        debug_assert_eq!(x.len(), self.mean.len());
        self.seen += 1;
        let w = self.weight();
        for ((m, v), &xi) in self.mean.iter_mut().zip(self.var.iter_mut()).zip(x) {
            let d = f64::from(xi) - *m;
            *m += w * d;
            *v = (1.0 - w) * (*v + w * d * d);
        }
    }

    /// The newest window's weight in the running means: `1 / n` (exact means) until
    /// `horizon` windows, `1 / horizon` after.
    fn weight(&self) -> f64 {
        (1.0 / self.seen as f64).max(1.0 / self.opts.horizon)
    }

    /// With `balance`: takes the newest window's probabilities `p` (the window already
    /// taken in by [`update`](Self::update)) into the label mix, then divides each by the
    /// mix pooled with `prior` windows of a uniform one and renormalizes. Without: `p` as is.
    pub fn balance(&mut self, p: &mut [f64]) {
        if !self.opts.balance || p.is_empty() || self.seen == 0 {
            return;
        }
        if self.mix.len() != p.len() {
            self.mix = vec![0.0; p.len()];
        }
        let w = self.weight();
        for (m, &pk) in self.mix.iter_mut().zip(p.iter()) {
            *m += w * (pk - *m);
        }
        let k = self.opts.prior;
        let n = (self.seen as f64).min(self.opts.horizon);
        let uniform = 1.0 / p.len() as f64;
        let (lo, hi) = ((-BALANCE_BOUND).exp(), BALANCE_BOUND.exp());
        let mut total = 0.0;
        for (pk, &m) in p.iter_mut().zip(&self.mix) {
            let q = (k * uniform + n * m) / (k + n);
            *pk *= (uniform / q.max(f64::MIN_POSITIVE)).clamp(lo, hi);
            total += *pk;
        }
        if total > 0.0 && total.is_finite() {
            p.iter_mut().for_each(|pk| *pk /= total);
        }
    }

    /// The mixture's mean and std (float32, the model's standardization type) given the
    /// model's stored `mean0`/`std0`, each std raised to `std0` where the mixture's is
    /// narrower (the module docs), so it stays positive and finite whatever the stream held.
    pub fn blend(&self, mean0: &[f32], std0: &[f32], mean: &mut Vec<f32>, std: &mut Vec<f32>) {
        let k = self.opts.prior;
        let n = (self.seen as f64).min(self.opts.horizon);
        let total = k + n;
        mean.clear();
        std.clear();
        for (((&m0, &s0), &ms), &vs) in mean0.iter().zip(std0).zip(&self.mean).zip(&self.var) {
            let (m0, s0) = (f64::from(m0), f64::from(s0));
            let mu = (k * m0 + n * ms) / total;
            let var = (k * (s0 * s0 + (m0 - mu) * (m0 - mu)) + n * (vs + (ms - mu) * (ms - mu))) / total;
            mean.push(mu as f32);
            std.push((var.sqrt().max(s0) as f32).max(f32::MIN_POSITIVE));
        }
    }
}
