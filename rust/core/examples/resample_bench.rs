//! Resampler timing (release, one thread): `cargo run --release -p serlaq-core --example resample_bench`.
//!
//! Prints the median wall time of `audio::resample` on a 2-s clip for a few rate pairs (first
//! call, which builds or looks up the filter, reported apart), and of one hour of 16 kHz
//! audio pushed through the streaming [`Resampler`] in 1-s chunks, to 22.05 kHz. The hour is
//! also given as thread CPU time, which a machine shared with other jobs inflates less.

use serlaq_core::audio::{resample, Resampler};
use std::time::Instant;

fn signal(n: usize, rate: u32) -> Vec<f32> {
    let mut state = 0x9e3779b97f4a7c15u64;
    (0..n)
        .map(|i| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let noise = ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1;
            let t = i as f32 / rate as f32;
            0.3 * (2.0 * std::f32::consts::PI * 220.0 * t).sin() + noise
        })
        .collect()
}

/// CPU time of the calling thread, in seconds (NaN where the target has no such clock).
#[cfg(unix)]
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid clock id and a pointer to a live timespec
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[cfg(not(unix))]
fn thread_cpu() -> f64 {
    f64::NAN
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let reps: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(21);
    for (orig, new) in
        [(16000u32, 22050u32), (44100, 22050), (44101, 22050), (192000, 22050), (8000, 16000), (48000, 16000)]
    {
        let x = signal(2 * orig as usize, orig);
        let t0 = Instant::now();
        let first = resample(&x, orig, new).unwrap();
        let first_ms = t0.elapsed().as_secs_f64() * 1e3;
        let times: Vec<f64> = (0..reps)
            .map(|_| {
                let t = Instant::now();
                let y = resample(&x, orig, new).unwrap();
                assert_eq!(y.len(), first.len());
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        println!("2-s clip {orig:>6} -> {new}: median {:.3} ms (first call {:.3} ms)", median(times), first_ms);
    }
    let (orig, new) = (16000u32, 22050u32);
    let second = signal(orig as usize, orig);
    let mut r = Resampler::new(orig, new).unwrap();
    let mut out = Vec::with_capacity(64 * 1024);
    let mut produced = 0usize;
    let t = Instant::now();
    let cpu = thread_cpu();
    for _ in 0..3600 {
        out.clear();
        r.push(&second, &mut out).unwrap();
        produced += out.len();
    }
    out.clear();
    r.finish(&mut out).unwrap();
    produced += out.len();
    let s = t.elapsed().as_secs_f64();
    let cpu = thread_cpu() - cpu;
    assert_eq!(produced as u64, 3600 * new as u64);
    println!("1 h of {orig} Hz -> {new} in 1-s chunks (streaming Resampler): {s:.3} s wall, {cpu:.3} s CPU");
}
