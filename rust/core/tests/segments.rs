//! Segmenter tests: streaming with random chunks = one push = file, every window equal to
//! pooling the whole stream's frames directly, the frame grid and positions, the end
//! rules, the VAD on generated tone/silence, bounded rows, every error kind.

mod common;

use common::{float_wav_bytes, wav_bytes};
use serde_json::{json, Value};
use serlaq_core::audio::{resample, AudioError};
use serlaq_core::features::{FeaturePlan, FrameRows};
use serlaq_core::format::{encode, LaqFile, LayerInput, Quantizer, TensorInput};
use serlaq_core::model::Model;
use serlaq_core::segments::{
    segment_file, RunningNorm, RunningStats, Segment, SegmentError, SegmentOptions, SegmentPlan, Segmenter, Vad,
    ALL_KINDS, BALANCE_BOUND,
};

fn lcg(state: &mut u64) -> u64 {
    *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *state >> 33
}

fn features() -> Value {
    json!({"sample_rate": 8000, "n_fft": 256, "hop_length": 128, "n_mels": 24, "n_mfcc": 10, "n_chroma": 12,
           "stats": ["mean", "std"], "delta_stats": ["std"], "mel_scale": "db"})
}

/// A random 3-class MLP over the small spec (8 kHz, hop 128: 62.5 frames per second).
fn model() -> Model {
    let spec = serlaq_core::features::FeatureSpec::from_json_value(&features()).unwrap();
    let d = spec.dim();
    let dims = [d, 12, 3];
    let mut st = 11u64;
    let mut owned = Vec::new();
    for i in 0..2 {
        let (rows, cols) = (dims[i + 1], dims[i]);
        let codes: Vec<u8> = (0..rows * cols).map(|_| (lcg(&mut st) % 16) as u8).collect();
        let scale: Vec<f32> = (0..rows).map(|_| 0.01 + (lcg(&mut st) % 100) as f32 / 2000.0).collect();
        let bias: Vec<f32> = (0..rows).map(|_| (lcg(&mut st) % 100) as f32 / 100.0 - 0.5).collect();
        owned.push((format!("net.{i}"), rows, cols, codes, scale, vec![8.0f32; rows], bias));
    }
    let layers: Vec<LayerInput> = owned
        .iter()
        .map(|(name, rows, cols, codes, scale, zero, bias)| LayerInput {
            name,
            rows: *rows,
            cols: *cols,
            bits: 4,
            quantizer: Quantizer::Affine,
            codes,
            scale,
            zero,
            bias: Some(bias),
        })
        .collect();
    let mean: Vec<f32> = (0..d).map(|i| (i % 7) as f32 - 3.0).collect();
    let std: Vec<f32> = (0..d).map(|i| 0.5 + (i % 5) as f32).collect();
    let (sm, ss) = (vec![d], vec![d]);
    let tensors = [
        TensorInput { name: "norm.mean", shape: &sm, data: &mean },
        TensorInput { name: "norm.std", shape: &ss, data: &std },
    ];
    let meta = json!({
        "labels": ["angry", "happy", "sad"],
        "features": features(),
        "architecture": {"type": "mlp", "input_dim": d, "hidden": [12], "num_classes": 3, "activation": "relu"},
        "normalization": {"mean": "norm.mean", "std": "norm.std"},
    });
    let bytes = encode(&meta.to_string(), &layers, &tensors).unwrap();
    Model::from_laq(LaqFile::from_bytes(bytes).unwrap()).unwrap()
}

/// Tone bursts at `rate`: (seconds of tone at `freq` Hz or 0 = digital silence).
fn recording(rate: u32, parts: &[(f64, f64)], seed: u64) -> Vec<f32> {
    let mut st = seed;
    let mut out = Vec::new();
    for &(secs, freq) in parts {
        let n = (secs * f64::from(rate)) as usize;
        for i in 0..n {
            let t = i as f64 / f64::from(rate);
            let noise = (lcg(&mut st) % 1000) as f64 / 1000.0 - 0.5;
            let v = if freq > 0.0 { 0.4 * (2.0 * std::f64::consts::PI * freq * t).sin() + 0.02 * noise } else { 0.0 };
            out.push(v as f32);
        }
    }
    out
}

fn stream(model: &Model, rate: u32, wave: &[f32], opts: &SegmentOptions, chunks: Option<u64>) -> Vec<Segment> {
    let mut seg = Segmenter::new(model, rate, opts, "test").unwrap();
    let mut out = Vec::new();
    match chunks {
        None => out.extend(seg.push(model, wave).unwrap()),
        Some(seed) => {
            let mut st = seed;
            let mut at = 0;
            while at < wave.len() {
                let n = (lcg(&mut st) % 3000) as usize; // empty chunks included
                let end = (at + n).min(wave.len());
                out.extend(seg.push(model, &wave[at..end]).unwrap());
                at = end;
                assert!(seg.rows_held() <= seg.plan().window_frames + seg.plan().hop_frames + 1);
            }
        }
    }
    out.extend(seg.finish(model).unwrap());
    out
}

#[test]
fn random_chunks_equal_one_push_bit_for_bit() {
    let m = model();
    let opts = SegmentOptions { window: 1.0, hop: 0.5, vad: Some(Vad::default()), running: None };
    for rate in [8000u32, 11025, 44100] {
        let wave = recording(rate, &[(2.3, 440.0), (1.7, 0.0), (3.1, 1200.0)], 5);
        let whole = stream(&m, rate, &wave, &opts, None);
        assert!(whole.len() > 10, "{rate}: {} segments", whole.len());
        for seed in [1u64, 2, 3] {
            assert_eq!(stream(&m, rate, &wave, &opts, Some(seed)), whole, "{rate} Hz, chunks seed {seed}");
        }
    }
}

#[test]
fn each_window_is_the_pool_of_the_whole_streams_frames() {
    let m = model();
    let opts = SegmentOptions { window: 0.8, hop: 0.3, vad: None, running: None };
    let wave = recording(8000, &[(4.2, 700.0)], 9);
    let segs = stream(&m, 8000, &wave, &opts, Some(4));
    let plan = FeaturePlan::new(m.spec()).unwrap();
    let mut rows = FrameRows::new(m.spec());
    plan.analyze_clip(&wave, &mut plan.frame_scratch(), &mut rows);
    let sp = SegmentPlan::new(m.spec(), 8000, &opts).unwrap();
    assert_eq!((sp.window_frames, sp.hop_frames), (50, 19)); // 0.8 s, 0.3 s at 62.5 frames/s
    let mut ps = Default::default();
    let mut x = vec![0f32; m.input_dim()];
    for s in &segs {
        let a = (s.start / 128) as usize;
        let b = if s.end as usize == wave.len() { rows.len() } else { (s.end / 128) as usize };
        assert_eq!(b - a, sp.window_frames, "segment {s:?}");
        plan.pooler().pool(&rows, a..b, rows.db_peak(a..b), &mut ps, &mut x);
        assert_eq!(s.probabilities.as_ref().unwrap(), &m.probabilities(&x).unwrap(), "window {}", s.index);
        assert_eq!(s.ood, Some(m.ood_score(&x).unwrap()), "window {}", s.index);
    }
}

#[test]
fn grid_positions_and_end_rules() {
    let m = model();
    let opts = SegmentOptions { window: 1.0, hop: 0.5, vad: None, running: None };
    // 16 kHz source, model 8 kHz: window 1.0 s = 62.5 -> 63 frames (1.008 s), hop 31.25 -> 31
    let sp = SegmentPlan::new(m.spec(), 16000, &opts).unwrap();
    assert_eq!((sp.window_frames, sp.hop_frames), (63, 31));
    assert_eq!(sp.window_seconds(), 63.0 * 128.0 / 8000.0);
    let wave = recording(16000, &[(5.0, 500.0)], 1);
    let segs = stream(&m, 16000, &wave, &opts, None);
    // 5 s = 40000 model samples -> 1 + 40000/128 = 313 frames; full windows k*31+63 <= 313: k = 0..=8;
    // the last full one ends at frame 311, 2 frames uncovered < half a hop (15.5): no tail window
    assert_eq!(segs.len(), 9);
    for (k, s) in segs.iter().enumerate() {
        assert_eq!(s.index, k as u64);
        assert_eq!(s.start, 2 * 128 * 31 * k as u64, "source samples = 2 x model samples");
        assert_eq!(s.end, s.start + 2 * 128 * 63);
        assert_eq!(s.start_seconds, s.start as f64 / 16000.0);
    }
    // 5.3 s: 332 frames, 21 uncovered: a tail window on the last 63 frames, clamped to the end
    let wave = recording(16000, &[(5.3, 500.0)], 1);
    let segs = stream(&m, 16000, &wave, &opts, None);
    assert_eq!(segs.len(), 10);
    let last = segs.last().unwrap();
    assert_eq!((last.index, last.start, last.end), (9, 2 * 128 * (332 - 63), wave.len() as u64));
    // a long hop: windows of 4 s every 4 s (250 frames). 12.3 s = 769 frames: 3 full windows
    // cover 750, the 19 left (0.3 s) stay under MAX_UNSCORED_TAIL (0.5 s = 32 frames): no tail.
    // 13 s = 813 frames: the 63 left (1 s) are under half a hop (125) but a second of speech
    // is not dropped: an end-aligned window scores it
    let long = SegmentOptions { window: 4.0, hop: 4.0, vad: None, running: None };
    let grid = SegmentPlan::new(m.spec(), 16000, &long).unwrap();
    assert_eq!((grid.window_frames, grid.hop_frames), (250, 250));
    assert_eq!(stream(&m, 16000, &recording(16000, &[(12.3, 500.0)], 1), &long, None).len(), 3);
    let wave = recording(16000, &[(13.0, 500.0)], 1);
    let segs = stream(&m, 16000, &wave, &long, None);
    assert_eq!(segs.len(), 4);
    assert_eq!(segs.last().unwrap().end, wave.len() as u64, "the end is scored");
}

#[test]
fn short_streams_give_one_segment_or_too_short() {
    let m = model();
    let opts = SegmentOptions::default();
    let wave = recording(8000, &[(0.7, 300.0)], 2);
    let segs = stream(&m, 8000, &wave, &opts, Some(8));
    assert_eq!(segs.len(), 1);
    assert_eq!((segs[0].start, segs[0].end), (0, wave.len() as u64));
    assert!(segs[0].is_speech());
    let mut seg = Segmenter::new(&m, 8000, &opts, "tiny").unwrap();
    seg.push(&m, &wave[..200]).unwrap();
    let e = seg.finish(&m).unwrap_err();
    assert!(matches!(e, SegmentError::TooShort { .. }), "{e}");
    assert_eq!(e.to_string(), "tiny: too short (0.025 s; one segment needs at least 0.032 s = one analysis window)");
}

#[test]
fn vad_marks_the_silence_between_tones() {
    let m = model();
    let opts = SegmentOptions { window: 1.0, hop: 0.5, vad: Some(Vad::default()), running: None };
    let wave = recording(8000, &[(3.0, 440.0), (3.0, 0.0), (3.0, 900.0)], 3);
    let segs = stream(&m, 8000, &wave, &opts, Some(1));
    for s in &segs {
        let (a, b) = (s.start_seconds, s.end_seconds);
        if b <= 3.0 || a >= 6.0 {
            assert!(s.is_speech(), "{a:.2}-{b:.2} is tone");
            assert_eq!(s.voiced, 1.0);
        } else if a >= 3.1 && b <= 5.9 {
            assert!(!s.is_speech() && s.voiced == 0.0, "{a:.2}-{b:.2} is silence");
            assert_eq!((s.best(), s.ood), (None, None), "silence is not scored");
        }
    }
    assert!(segs.iter().filter(|s| !s.is_speech()).count() >= 3);
    // a stricter share turns windows that are mostly silence into silence
    let strict = SegmentOptions { vad: Some(Vad { threshold_db: -50.0, min_speech: 0.9 }), ..opts };
    let n_strict = stream(&m, 8000, &wave, &strict, None).iter().filter(|s| !s.is_speech()).count();
    assert!(n_strict > segs.iter().filter(|s| !s.is_speech()).count());
    // a quiet tone (-46 dBFS mean square) passes a -50 dB gate and fails a -40 dB one
    let quiet: Vec<f32> = recording(8000, &[(2.0, 440.0)], 4).iter().map(|v| v * 0.0125).collect();
    let lvl = |db| {
        let o = SegmentOptions { vad: Some(Vad { threshold_db: db, min_speech: 0.5 }), ..opts };
        stream(&m, 8000, &quiet, &o, None).iter().all(|s| s.is_speech())
    };
    assert!(lvl(-50.0) && !lvl(-40.0));
}

#[test]
fn memory_stays_bounded_on_a_long_stream() {
    let m = model();
    let opts = SegmentOptions { window: 2.0, hop: 1.0, vad: Some(Vad::default()), running: None };
    let mut seg = Segmenter::new(&m, 8000, &opts, "long").unwrap();
    let chunk = recording(8000, &[(1.3, 600.0)], 6);
    let mut n = 0;
    for _ in 0..200 {
        n += seg.push(&m, &chunk).unwrap().len();
        assert!(seg.rows_held() <= 125 + 63 + 1, "{}", seg.rows_held());
    }
    n += seg.finish(&m).unwrap().len();
    // 260 s = 16251 frames; windows of 125 frames every 63: 256 full + the end-aligned one
    assert_eq!(n, 257);
}

#[test]
fn every_error_kind() {
    let m = model();
    let ok = SegmentOptions::default();
    let mut seen = Vec::new();
    let mut see = |e: SegmentError| {
        let text = e.to_string();
        assert!(!text.contains('\n'), "{text}");
        seen.push(e.kind());
        text
    };
    let opt = |o: SegmentOptions| Segmenter::new(&m, 8000, &o, "s").unwrap_err();
    assert_eq!(
        see(opt(SegmentOptions { window: f64::NAN, ..ok })),
        "window: must be a length in seconds within (0, 600] (got NaN)"
    );
    see(opt(SegmentOptions { hop: 3.0, ..ok }));
    see(opt(SegmentOptions { window: 0.001, hop: 0.001, ..ok }));
    see(opt(SegmentOptions { vad: Some(Vad { threshold_db: 5.0, min_speech: 0.2 }), ..ok }));
    see(opt(SegmentOptions { vad: Some(Vad { threshold_db: -40.0, min_speech: 1.5 }), ..ok }));
    assert_eq!(
        see(opt(SegmentOptions { running: Some(RunningNorm { prior: 0.5, horizon: 600.0, balance: false }), ..ok })),
        "running_prior: must be a number of windows within 1..=1e9 (got 0.5)"
    );
    let e = see(opt(SegmentOptions {
        running: Some(RunningNorm { prior: 20.0, horizon: f64::NAN, balance: false }),
        ..ok
    }));
    assert!(e.starts_with("running_horizon: "), "{e}");
    let e = Segmenter::new(&m, 500, &ok, "s").unwrap_err();
    assert!(matches!(&e, SegmentError::Audio(AudioError::Rate { source, .. }) if source == "s"), "{e}");
    see(e);

    let mut seg = Segmenter::new(&m, 8000, &ok, "mic").unwrap();
    seg.push(&m, &[0.1; 100]).unwrap();
    let e = seg.push(&m, &[0.0, 0.1, f32::NAN, 0.2]).unwrap_err();
    assert_eq!(see(e), "mic: NaN/inf sample at 0.013 s (sample 102); the chunk holding it was rejected");
    assert_eq!(seg.samples(), 100, "the chunk is rejected whole");
    seg.push(&m, &[0.1; 100]).unwrap(); // still usable
    assert_eq!(
        see(seg.check_rate(16000).unwrap_err()),
        "mic: sample rate changed from 8000 Hz to 16000 Hz (start a new stream)"
    );
    seg.check_rate(8000).unwrap();
    seg.push(&m, &recording(8000, &[(0.5, 200.0)], 1)).unwrap();
    seg.finish(&m).unwrap();
    see(seg.push(&m, &[0.0]).unwrap_err());
    let mut short = Segmenter::new(&m, 8000, &ok, "s").unwrap();
    see(short.finish(&m).unwrap_err());

    let mut seg = Segmenter::new(&m, 8000, &ok, "s").unwrap();
    let m2 = {
        // same layers, another spec (f_min): built through a file with a changed header
        let mut meta: Value = serde_json::from_str(m.metadata_json()).unwrap();
        meta["features"]["f_min"] = json!(10.0);
        let f = m.file();
        let owned: Vec<_> = (0..f.layers().len())
            .map(|i| (f.layers()[i].clone(), f.codes(i), f.scale(i), f.zero(i), f.bias(i)))
            .collect();
        let layers: Vec<LayerInput> = owned
            .iter()
            .map(|(l, codes, scale, zero, bias)| LayerInput {
                name: &l.name,
                rows: l.rows,
                cols: l.cols,
                bits: l.bits,
                quantizer: l.quantizer,
                codes,
                scale,
                zero,
                bias: bias.as_deref(),
            })
            .collect();
        let ts: Vec<_> =
            f.tensors().iter().enumerate().map(|(i, t)| (t.name.clone(), t.shape.clone(), f.tensor(i))).collect();
        let tensors: Vec<TensorInput> = ts.iter().map(|(n, s, d)| TensorInput { name: n, shape: s, data: d }).collect();
        Model::from_laq(LaqFile::from_bytes(encode(&meta.to_string(), &layers, &tensors).unwrap()).unwrap()).unwrap()
    };
    see(seg.push(&m2, &[0.0; 10]).unwrap_err());
    see(SegmentError::Model { source: "s".into(), detail: "x".into() }); // only reachable through a bug
    seen.sort();
    seen.dedup();
    let mut all = ALL_KINDS.to_vec();
    all.sort();
    assert_eq!(seen, all);
}

#[test]
#[cfg_attr(target_family = "wasm", ignore = "needs std::env::temp_dir, which wasm32 targets lack")]
fn file_equals_stream_and_truncation_keeps_what_came_before() {
    let m = model();
    let opts = SegmentOptions { window: 1.0, hop: 0.5, vad: Some(Vad::default()), running: None };
    let dir = std::env::temp_dir().join(format!("serlaq-seg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wave = recording(11025, &[(2.0, 440.0), (1.5, 0.0), (2.5, 1000.0)], 7);
    let path = dir.join("rec.wav");
    let bytes = wav_bytes(11025, &wave);
    std::fs::write(&path, &bytes).unwrap();
    let out = segment_file(&m, &path, &opts);
    assert_eq!(out.error, None);
    let pcm: Vec<f32> = wave.iter().map(|&v| ((v * 32767.0).round() as i16) as f32 / 32768.0).collect();
    assert_eq!(out.segments, stream(&m, 11025, &pcm, &opts, Some(3)), "file = stream of its samples");

    // cut the data at 4.0 s: the header still declares 6 s
    let cut = dir.join("cut.wav");
    std::fs::write(&cut, &bytes[..44 + 2 * 44100]).unwrap();
    let broken = segment_file(&m, &cut, &opts);
    let e = broken.error.expect("truncated");
    assert_eq!(
        e.to_string(),
        format!("{}: truncated audio (data ends at 4.000 s of the 6.000 s the header declares)", cut.display())
    );
    let full: Vec<&Segment> = out.segments.iter().filter(|s| s.end_seconds <= 4.0).collect();
    assert!(broken.segments.len() >= full.len() && !broken.segments.is_empty());
    for (a, b) in full.iter().zip(&broken.segments) {
        assert_eq!(*a, b, "windows before the damage are unchanged");
    }
    assert!(broken.segments.last().unwrap().end_seconds <= 4.0 + 1e-9);

    let missing = segment_file(&m, &dir.join("nope.wav"), &opts);
    assert!(missing.segments.is_empty());
    assert!(matches!(missing.error, Some(SegmentError::Audio(AudioError::NotFound { .. }))));

    // damaged float data from 4.0 s: named as a whole-clip read names it, after the windows
    // before it (not as a window's features gone NaN)
    let mut loud = pcm.clone();
    loud[44100..].iter_mut().for_each(|v| *v *= 1e18);
    let damaged = dir.join("damaged.wav");
    std::fs::write(&damaged, float_wav_bytes(11025, &loud)).unwrap();
    let out = segment_file(&m, &damaged, &opts);
    let e = out.error.expect("out of range");
    assert!(e.to_string().starts_with(&format!("{}: samples out of range (peak ", damaged.display())), "{e}");
    assert!(!out.segments.is_empty() && out.segments.last().unwrap().end_seconds <= 4.0 + 1e-9);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn resampled_stream_matches_resampling_first() {
    // pushing 11025 Hz equals pushing the resampled signal to an 8 kHz segmenter, modulo the
    // positions (source samples): the resampler is chunk-invariant and runs before the frames
    let m = model();
    let opts = SegmentOptions { window: 1.0, hop: 0.5, vad: None, running: None };
    let wave = recording(11025, &[(3.0, 500.0)], 2);
    let a = stream(&m, 11025, &wave, &opts, Some(5));
    let b = stream(&m, 8000, &resample(&wave, 11025, 8000).unwrap(), &opts, None);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.probabilities, y.probabilities);
    }
}

/// Mean and population variance of weighted samples, two-pass, in float64.
fn moments(samples: &[(f64, f64)]) -> (f64, f64) {
    let w: f64 = samples.iter().map(|s| s.1).sum();
    let m = samples.iter().map(|&(x, k)| k * x).sum::<f64>() / w;
    (m, samples.iter().map(|&(x, k)| k * (x - m) * (x - m)).sum::<f64>() / w)
}

#[test]
fn running_statistics_are_the_moments_of_the_model_and_the_stream_pooled() {
    // the model's statistics as `prior` pseudo-windows: half at mean - std, half at mean + std
    let (mean0, std0) = (vec![1.5f32, -40.0], vec![0.5f32, 8.0]);
    let opts = RunningNorm { prior: 6.0, horizon: 1e6, balance: false };
    let mut stats = RunningStats::new(opts, 2);
    let mut st = 5u64;
    let mut seen: Vec<[f32; 2]> = Vec::new();
    let (mut mean, mut std) = (Vec::new(), Vec::new());
    let mut floored = [false; 2];
    for n in 1..=40 {
        // feature 0 is narrower (std ~0.06 against the model's 0.5): the floor binds
        let x = [1.4 + (lcg(&mut st) % 1000) as f32 / 5000.0, -20.0 + (lcg(&mut st) % 1000) as f32 / 50.0];
        stats.update(&x);
        seen.push(x);
        stats.blend(&mean0, &std0, &mut mean, &mut std);
        for d in 0..2 {
            let (m0, s0) = (f64::from(mean0[d]), f64::from(std0[d]));
            let mut pool = vec![(m0 - s0, opts.prior / 2.0), (m0 + s0, opts.prior / 2.0)];
            pool.extend(seen.iter().map(|x| (f64::from(x[d]), 1.0)));
            let (m, v) = moments(&pool);
            assert!((f64::from(mean[d]) - m).abs() < 1e-4 * m.abs().max(1.0), "n={n} d={d}: {} vs {m}", mean[d]);
            // widened, never narrowed: at least the model's own std
            let sd = v.sqrt().max(s0);
            assert!((f64::from(std[d]) - sd).abs() < 1e-4 * sd, "n={n} d={d}: {} vs {sd}", std[d]);
            floored[d] |= v.sqrt() < s0;
        }
        assert_eq!(stats.seen(), n);
    }
    assert_eq!(floored, [true, false], "the stream must be narrower than the model in feature 0 only");
}

#[test]
fn running_statistics_forget_after_the_horizon() {
    // 100 windows of one room, then 2000 of another: with horizon 50 the blend follows the
    // second room; without forgetting it stays between the two
    let run = |horizon: f64| {
        let mut stats = RunningStats::new(RunningNorm { prior: 1.0, horizon, balance: false }, 1);
        for i in 0..2100 {
            let room = if i < 100 { 0.0 } else { 10.0 };
            stats.update(&[room + if i % 2 == 0 { 1.0 } else { -1.0 }]);
        }
        let (mut m, mut s) = (Vec::new(), Vec::new());
        stats.blend(&[0.0], &[1.0], &mut m, &mut s);
        (m[0], s[0])
    };
    let (m, s) = run(50.0);
    // 1 prior window at 0 (var 1) and 50 at 10 (var 1): var = (1 + 9.8^2 + 50 * (1 + 0.2^2)) / 51
    assert!((m - 9.8).abs() < 0.05 && (s - 1.71).abs() < 0.05, "{m} {s}");
    let (m, _) = run(1e9);
    assert!((m - 9.52).abs() < 0.05, "{m}"); // 2000 of 2101 windows at 10
}

#[test]
fn running_balance_divides_by_the_pooled_label_mix() {
    // windows that lean to label 0: each is divided by the running mix pooled with `prior`
    // uniform windows, computed here independently from all the windows so far
    let opts = RunningNorm { prior: 4.0, horizon: 1e6, balance: true };
    let mut stats = RunningStats::new(opts, 1);
    let mut st = 11u64;
    let mut raw: Vec<[f64; 3]> = Vec::new();
    for n in 1..=30 {
        let a = 0.5 + (lcg(&mut st) % 400) as f64 / 1000.0;
        let p = [a, (1.0 - a) * 0.7, (1.0 - a) * 0.3];
        raw.push(p);
        stats.update(&[0.0]);
        let mut got = p.to_vec();
        stats.balance(&mut got);
        let mut want: Vec<f64> = (0..3)
            .map(|k| {
                let mean = raw.iter().map(|r| r[k]).sum::<f64>() / n as f64;
                let q = (opts.prior / 3.0 + n as f64 * mean) / (opts.prior + n as f64);
                p[k] / (3.0 * q)
            })
            .collect();
        let total: f64 = want.iter().sum();
        want.iter_mut().for_each(|w| *w /= total);
        for k in 0..3 {
            assert!((got[k] - want[k]).abs() < 1e-12, "n={n} k={k}: {} vs {}", got[k], want[k]);
        }
        assert!(got[0] < p[0], "the favoured label loses share");
    }
    // off: the probabilities are left as they are
    let mut off = RunningStats::new(RunningNorm { balance: false, ..opts }, 1);
    off.update(&[0.0]);
    let mut p = vec![0.9, 0.05, 0.05];
    off.balance(&mut p);
    assert_eq!(p, vec![0.9, 0.05, 0.05]);
}

#[test]
fn running_balance_factor_is_bounded() {
    // a label never predicted: its factor stops at e^8 (adapt's logit bound)
    let mut stats = RunningStats::new(RunningNorm { prior: 1.0, horizon: 1e9, balance: true }, 1);
    let mut p = vec![1.0 - 1e-300, 1e-300];
    for _ in 0..100_000 {
        stats.update(&[0.0]);
        p = vec![1.0 - 1e-300, 1e-300];
        stats.balance(&mut p);
    }
    assert!(p.iter().all(|v| v.is_finite()) && (p[0] + p[1] - 1.0).abs() < 1e-12);
    // label 1's factor is e^8 (not ~1e300), label 0's ~1/2 (its mix ~1 against a uniform 1/2), then renormalized
    let gain = p[1] / 1e-300;
    assert!((gain - BALANCE_BOUND.exp() / (0.5 + 1e-300 * BALANCE_BOUND.exp())).abs() < 1e-4 * gain, "{p:?}");
}

#[test]
fn running_normalisation_with_a_huge_prior_is_the_model_alone_and_a_stream_is_chunk_invariant() {
    let m = model();
    let wave = recording(8000, &[(1.5, 220.0), (1.0, 440.0), (1.5, 330.0), (1.0, 880.0)], 9);
    let fixed = SegmentOptions { window: 1.0, hop: 0.5, vad: None, running: None };
    let run = |o: &SegmentOptions, chunk: usize| {
        let mut seg = Segmenter::new(&m, 8000, o, "s").unwrap();
        let mut out = Vec::new();
        for c in wave.chunks(chunk) {
            out.extend(seg.push(&m, c).unwrap());
        }
        out.extend(seg.finish(&m).unwrap());
        (out, seg.running_windows())
    };
    let (plain, n0) = run(&fixed, 8000);
    let (frozen, _) = run(
        &SegmentOptions { running: Some(RunningNorm { prior: 1e9, horizon: 600.0, balance: false }), ..fixed },
        8000,
    );
    assert_eq!(n0, 0);
    for (a, b) in plain.iter().zip(&frozen) {
        let (pa, pb) = (a.probabilities.as_ref().unwrap(), b.probabilities.as_ref().unwrap());
        assert!(pa.iter().zip(pb).all(|(x, y)| (x - y).abs() < 1e-4), "{pa:?} {pb:?}");
        // the out-of-domain score of a window standardized by the stream: the model's own
        // (a prior of 1e9 windows still lets the stream in at the 1e-4 level, far from home)
        let (oa, ob) = (a.ood.unwrap(), b.ood.unwrap());
        assert!((oa - ob).abs() < 1e-3 * oa.max(1.0), "{oa} {ob}");
    }
    let (frozen_balanced, _) = run(
        &SegmentOptions { running: Some(RunningNorm { prior: 1e9, horizon: 600.0, balance: true }), ..fixed },
        8000,
    );
    for (a, b) in plain.iter().zip(&frozen_balanced) {
        let (pa, pb) = (a.probabilities.as_ref().unwrap(), b.probabilities.as_ref().unwrap());
        assert!(pa.iter().zip(pb).all(|(x, y)| (x - y).abs() < 1e-4), "balance with a huge prior: {pa:?} {pb:?}");
    }
    let adapting =
        SegmentOptions { running: Some(RunningNorm { prior: 1.0, horizon: 600.0, balance: false }), ..fixed };
    let (a, n) = run(&adapting, 8000);
    let (b, _) = run(&adapting, 777);
    assert_eq!(a, b, "chunking does not change a running-normalised timeline");
    assert_eq!(n as usize, a.len(), "every speech window is taken in");
    assert_ne!(a, plain, "the stream's own statistics change the probabilities");
    let balancing =
        SegmentOptions { running: Some(RunningNorm { prior: 1.0, horizon: 600.0, balance: true }), ..fixed };
    let (c, _) = run(&balancing, 8000);
    assert_eq!(c, run(&balancing, 777).0, "chunking does not change a balanced timeline");
    assert_ne!(c, a, "the balance changes the probabilities");
}
