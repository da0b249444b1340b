//! `edge_pause_s`: a whole clip cut to at most that many seconds of quiet lead-in and tail,
//! before its frames (the torch reference is `serlaq.features.edge_span`).
//!
//! The corpora are cut close to the voice; a user's recording starts a second before the
//! speaker and stops a second after, and every frame of it is pooled. Capping the lead-in
//! and tail makes such a recording read like the close-cut clips, which it leaves almost
//! untouched (docs/features.md, "Edge pauses").

use super::spec::{EDGE_BLOCK_S, EDGE_ENERGY_RATIO, EDGE_FLOOR_DIVISOR, EDGE_FLOOR_RATIO};
use std::ops::Range;

/// `seconds` at `sample_rate` in whole samples, `floor(seconds * rate + 0.5)` (one rounding
/// rule here and in Python, whose `round` breaks ties to even).
pub fn samples(seconds: f64, sample_rate: u32) -> usize {
    (seconds * f64::from(sample_rate) + 0.5).floor() as usize
}

/// Samples in one level block at `sample_rate` (at least 1).
pub fn edge_block(sample_rate: u32) -> usize {
    samples(EDGE_BLOCK_S, sample_rate).max(1)
}

/// Energy (sum of squares, float64, in sample order) of block `i`.
fn energy(wave: &[f32], block: usize, i: usize) -> f64 {
    wave[i * block..(i + 1) * block].iter().map(|&v| f64::from(v) * f64::from(v)).sum()
}

/// The first and last of `n` blocks that `loud` accepts (from the front, then from the back).
fn loud_ends(n: usize, loud: impl Fn(usize) -> bool) -> Option<(usize, usize)> {
    Some(((0..n).find(|&i| loud(i))?, (0..n).rev().find(|&i| loud(i))?))
}

/// The span of `wave` (mono, at `sample_rate`) kept with `keep_s` seconds of lead-in and
/// tail: from `keep_s` before its first loud block to `keep_s` after its last, clipped to
/// the clip. Blocks of [`edge_block`] samples are measured from the start (a partial last
/// block is not); a block is loud when its energy is at least the loudest block's times
/// [`EDGE_ENERGY_RATIO`] and, with `floor`, at least the clip's noise floor (its block
/// energy number `(n - 1) / EDGE_FLOOR_DIVISOR` in rising order) times [`EDGE_FLOOR_RATIO`].
/// A clip shorter than one block, with no loud block, or whose span would be shorter than
/// `min_samples`, is kept whole. One pass over the samples: without `floor` no allocation
/// (the loudest energy, then the few edge blocks measured again), with it the block
/// energies once and a selection over a copy of them.
pub fn edge_span(wave: &[f32], sample_rate: u32, keep_s: f64, min_samples: usize, floor: bool) -> Range<usize> {
    let block = edge_block(sample_rate);
    let n = wave.len() / block;
    if n == 0 {
        return 0..wave.len();
    }
    // `e >= a && e >= b` is `e >= max(a, b)` exactly: one line for both rules.
    let ends = if floor {
        let energies: Vec<f64> = (0..n).map(|i| energy(wave, block, i)).collect();
        let loudest = energies.iter().copied().fold(0f64, f64::max);
        let mut order = energies.clone();
        let (_, noise, _) = order.select_nth_unstable_by((n - 1) / EDGE_FLOOR_DIVISOR, f64::total_cmp);
        let line = (loudest * EDGE_ENERGY_RATIO).max(*noise * EDGE_FLOOR_RATIO);
        loud_ends(n, |i| energies[i] >= line)
    } else {
        let loudest = (0..n).map(|i| energy(wave, block, i)).fold(0f64, f64::max);
        let line = loudest * EDGE_ENERGY_RATIO;
        loud_ends(n, |i| energy(wave, block, i) >= line)
    };
    // No loud block: a flat level against the floor line (a silent clip passes the 40 dB line).
    let Some((first, last)) = ends else {
        return 0..wave.len();
    };
    let keep = samples(keep_s, sample_rate);
    let start = (first * block).saturating_sub(keep);
    let end = ((last + 1) * block).saturating_add(keep).min(wave.len());
    if end - start >= min_samples {
        start..end
    } else {
        0..wave.len()
    }
}
