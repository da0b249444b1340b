//! STFT framing: the periodic Hann window and centre padding (the streaming framer built
//! on it is `stream.rs`).
//!
//! Frames follow `torch.stft(center=True, pad_mode="constant")` / the torch reference:
//! the clip is padded with `n_fft / 2` zeros on both sides and frame `t` holds padded
//! samples `t * hop .. t * hop + n_fft`, i.e. clip samples
//! `t * hop - n_fft / 2 .. t * hop - n_fft / 2 + n_fft` (zero outside the clip). A clip of
//! `len` samples has `(len + 2 * (n_fft / 2) - n_fft) / hop + 1` frames
//! (`1 + len / hop` for an even `n_fft`): see [`frame_count`] and [`frame_start`].

/// Periodic Hann window of `win_length` zero-padded in the centre to `n_fft`, float32 as
/// `torch.hann_window(win_length, periodic=True)` computes it.
pub fn window(n_fft: usize, win_length: usize) -> Vec<f32> {
    let mut w = vec![0f32; n_fft];
    let left = (n_fft - win_length) / 2;
    if win_length == 1 {
        w[left] = 1.0;
        return w;
    }
    let step = (std::f64::consts::PI * 2.0 / win_length as f64) as f32;
    for (i, v) in w[left..left + win_length].iter_mut().enumerate() {
        *v = -0.5f32 * (i as f32 * step).cos() + 0.5;
    }
    w
}

/// Frames of a clip of `len` samples (0 when it is shorter than one padded window).
pub fn frame_count(len: usize, n_fft: usize, hop: usize) -> usize {
    let padded = len + 2 * (n_fft / 2);
    if padded < n_fft {
        0
    } else {
        (padded - n_fft) / hop + 1
    }
}

/// First clip sample (may be negative: centre padding) that frame `t` covers; the frame
/// spans `n_fft` samples from there and is centred on sample `t * hop` for an even `n_fft`.
pub fn frame_start(t: usize, n_fft: usize, hop: usize) -> i64 {
    (t * hop) as i64 - (n_fft / 2) as i64
}

/// Windowed frame starting at clip sample `start` (zeros outside `x`).
pub(crate) fn load_frame(x: &[f32], start: i64, window: &[f32], out: &mut [f32]) {
    let n = window.len() as i64;
    let lo = start.clamp(0, x.len() as i64);
    let hi = (start + n).clamp(0, x.len() as i64);
    let a = (lo - start) as usize; // first frame index with a clip sample
    let b = (hi - start).max(a as i64) as usize;
    out[..a].fill(0.0);
    out[b..].fill(0.0);
    if b > a {
        let src = &x[lo as usize..hi as usize];
        for ((o, &s), &w) in out[a..b].iter_mut().zip(src).zip(&window[a..b]) {
            *o = s * w;
        }
    }
}
