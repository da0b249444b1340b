//! Feature path: the reference against closed forms, the fast path against the
//! reference, streaming against whole clips, and every spec / waveform error.

use serde_json::json;
use serlaq_core::features::dct::dct_matrix;
use serlaq_core::features::edges::edge_span;
use serlaq_core::features::mel::{hz_to_mel, mel_filterbank_dense, mel_to_hz_f32};
use serlaq_core::features::reference::{dct_ref, dft_ref, edge_span_ref, features_ref};
use serlaq_core::features::spec::{
    DbReference, MelScale, Preset, MAX_CLIP_SECONDS, N_FFT_RANGE, PRESET_NAMES, SAMPLE_RATE_RANGE,
};
use serlaq_core::features::{
    frame_count, frame_start, FeatureError, FeaturePlan, FeatureSpec, FrameAnalyzer, FrameRows,
};

/// Fast (float32, FFT, sparse mel, running sums) against the float64 reference, per
/// value: `|fast - ref| <= FAST_VS_REF_REL * max(|ref|, block scale)`, where the block
/// scale is the largest magnitude in the value's block (MFCC coefficients near zero
/// carry the absolute error of the large ones). Measured: at most 4.6e-7 over the specs
/// and signals below (x86-64, AVX rustfft); the bound leaves 10x room for other kernels.
const FAST_VS_REF_REL: f64 = 5e-6;
/// The reference DFT against the closed form of a pure tone (float64 rounding).
const DFT_TONE_ABS: f64 = 1e-9;
/// Slaney-normalized mel filters have unit area in Hz; sampled on a fine grid the
/// Riemann sum is within this of 1 (measured 3.8e-5 at n_fft 16384, 16 kHz, 40 bands).
const MEL_AREA_REL: f64 = 1e-3;
/// DCT matrix orthonormality and float32 matrix vs float64 definition.
const DCT_ABS: f64 = 1e-5;

fn spec(overrides: serde_json::Value) -> FeatureSpec {
    FeatureSpec::from_json_value(&overrides).expect("valid spec")
}

/// Deterministic test audio: tone + chirp + noise, at `rate`, `secs` long.
fn signal(rate: u32, secs: f64, seed: u64) -> Vec<f32> {
    let n = (f64::from(rate) * secs) as usize;
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n)
        .map(|i| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let noise = ((state >> 40) as f64 / (1u64 << 24) as f64) - 0.5;
            let t = i as f64 / f64::from(rate);
            let tone = 0.3 * (2.0 * std::f64::consts::PI * (220.0 + 55.0 * seed as f64) * t).sin();
            let chirp = 0.2 * (2.0 * std::f64::consts::PI * (100.0 + 1500.0 * t) * t).sin();
            (tone + chirp + 0.05 * noise) as f32
        })
        .collect()
}

/// Specs the comparisons loop over (a registry: a new option only needs a row here).
fn specs() -> Vec<(&'static str, FeatureSpec)> {
    let small = json!({"sample_rate": 8000, "n_fft": 256, "hop_length": 64, "n_mels": 32, "n_mfcc": 13});
    let with = |extra: serde_json::Value| {
        let mut v = small.clone();
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        spec(v)
    };
    vec![
        ("small", with(json!({}))),
        ("win_length<n_fft", with(json!({"win_length": 200}))),
        ("odd n_fft", with(json!({"n_fft": 255, "win_length": 255}))),
        ("n_fft = 2 x odd", with(json!({"n_fft": 254, "win_length": 254}))),
        ("f_min/f_max", with(json!({"f_min": 100.0, "f_max": 3000.0}))),
        ("top_db None", with(json!({"top_db": null}))),
        ("chroma power", with(json!({"chroma_spectrum": "power", "n_chroma": 24, "chroma_tuning": 0.25}))),
        ("db mel + std", with(json!({"mel_scale": "db", "stats": ["mean", "std"]}))),
        (
            "std first + deltas",
            with(json!({"stats": ["std", "mean"], "delta_stats": ["mean", "std"], "delta_width": 5})),
        ),
        ("rich-like", with(json!({"mel_scale": "db", "stats": ["mean", "std"], "delta_stats": ["std"]}))),
        (
            "portable-like (dB re clip mean)",
            with(json!({"mel_scale": "db", "stats": ["mean", "std"], "delta_stats": ["std"], "db_reference": "mean"})),
        ),
        ("dB re clip peak, power mel", with(json!({"db_reference": "peak", "stats": ["mean", "std"]}))),
        ("no chroma", with(json!({"n_chroma": 0, "stats": ["mean", "std"]}))),
        (
            "frame gate 3 dB, deltas",
            with(json!({"mel_scale": "db", "stats": ["mean", "std"], "delta_stats": ["std"], "frame_gate_db": 3.0})),
        ),
        ("default 180-d", FeatureSpec::default()),
    ]
}

#[test]
fn dft_ref_matches_pure_tone() {
    let n = 64;
    for k0 in [1usize, 5, 31] {
        let x: Vec<f64> = (0..n).map(|t| (2.0 * std::f64::consts::PI * (k0 * t) as f64 / n as f64).cos()).collect();
        for (k, (re, im)) in dft_ref(&x).into_iter().enumerate() {
            let want = if k == k0 { n as f64 / 2.0 } else { 0.0 };
            assert!((re - want).abs() < DFT_TONE_ABS && im.abs() < DFT_TONE_ABS, "bin {k}: {re} {im}");
        }
    }
}

#[test]
fn mel_filters_have_unit_area_and_peak_at_centres() {
    let (n_fft, sr, n_mels) = (16384usize, 16000u32, 40usize);
    let n_freqs = n_fft / 2 + 1;
    let fb = mel_filterbank_dense(n_freqs, 0.0, 8000.0, n_mels, sr);
    let df = f64::from(sr / 2) / (n_freqs - 1) as f64;
    let m_max = hz_to_mel(8000.0);
    let mut worst = 0f64;
    for m in 0..n_mels {
        let row = &fb[m * n_freqs..(m + 1) * n_freqs];
        let area: f64 = row.iter().map(|&w| f64::from(w)).sum::<f64>() * df;
        assert!((area - 1.0).abs() < MEL_AREA_REL, "band {m}: area {area}");
        worst = worst.max((area - 1.0).abs());
        let peak = row.iter().enumerate().fold((0, 0f32), |a, (k, &w)| if w > a.1 { (k, w) } else { a }).0;
        let centre = f64::from(mel_to_hz_f32((m_max * (m + 1) as f64 / (n_mels + 1) as f64) as f32));
        assert!((peak as f64 * df - centre).abs() <= df, "band {m}: peak at {} Hz, centre {centre}", peak as f64 * df);
    }
    eprintln!("mel area: worst |area - 1| {worst:.2e}");
}

#[test]
fn dct_is_orthonormal_and_matches_definition() {
    let n = 24;
    let d = dct_matrix(n, n);
    for i in 0..n {
        for j in 0..n {
            let dot: f64 = (0..n).map(|k| f64::from(d[i * n + k]) * f64::from(d[j * n + k])).sum();
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((dot - want).abs() < DCT_ABS, "({i},{j}) {dot}");
        }
    }
    let x: Vec<f64> = (0..n).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
    for k in 0..n {
        let fast: f64 = (0..n).map(|i| f64::from(d[k * n + i]) * x[i]).sum();
        assert!((fast - dct_ref(&x, k)).abs() < DCT_ABS, "k {k}");
    }
    // the definition itself: orthonormal DCT-II of a constant is sqrt(n) * c in bin 0
    let ones = vec![1.0; n];
    assert!((dct_ref(&ones, 0) - (n as f64).sqrt()).abs() < 1e-12);
    assert!(dct_ref(&ones, 3).abs() < 1e-12);
}

/// Asserts the fast/reference bound; returns the worst relative error seen.
fn assert_close(name: &str, spec: &FeatureSpec, fast: &[f32], reference: &[f64]) -> f64 {
    let mut worst = 0f64;
    assert_eq!(fast.len(), reference.len(), "{name}: length");
    assert_eq!(fast.len(), spec.dim(), "{name}: dim");
    for (block, a, b) in spec.blocks() {
        let scale = reference[a..b].iter().fold(0f64, |m, v| m.max(v.abs()));
        for i in a..b {
            let (f, r) = (f64::from(fast[i]), reference[i]);
            let base = r.abs().max(scale).max(1e-12);
            worst = worst.max((f - r).abs() / base);
            let tol = FAST_VS_REF_REL * base;
            assert!((f - r).abs() <= tol, "{name} {block}[{}]: fast {f} ref {r} (tol {tol})", i - a);
        }
    }
    worst
}

#[test]
fn fast_path_matches_reference() {
    for (name, spec) in specs() {
        let plan = FeaturePlan::new(&spec).unwrap();
        let secs = if spec.n_fft > 1024 { 0.3 } else { 0.5 };
        for seed in 0..2 {
            let wave = signal(spec.sample_rate, secs, seed);
            let fast = plan.extract(&wave).unwrap();
            let worst = assert_close(name, &spec, &fast, &features_ref(&spec, &wave));
            eprintln!("fast vs ref {name} seed {seed}: worst relative error {worst:.2e}");
        }
    }
}

/// `signal` with pauses: a quarter of room tone (`signal` scaled by `pause_gain`), the
/// signal, another quarter of room tone, the signal again.
fn with_pauses(rate: u32, secs: f64, seed: u64, pause_gain: f32) -> Vec<f32> {
    let voice = signal(rate, secs, seed);
    let pause: Vec<f32> = signal(rate, secs / 2.0, seed + 7).iter().map(|v| v * pause_gain).collect();
    [&pause[..], &voice, &pause, &voice].concat()
}

#[test]
fn frame_gates_match_reference_and_leave_pauses_out() {
    // (name, spec keys, pause gain, whether the pauses should leave the statistics)
    let quiet = 1e-3; // 60 dB down
    let noisy = 0.1; // 20 dB down: inside a 30 dB gate, above the noise floor's margin
    for (name, extra, gain, gated) in [
        ("gate 30 dB, quiet pauses", json!({"db_reference": "mean", "frame_gate_db": 30.0}), quiet, true),
        ("gate 30 dB, noisy pauses", json!({"db_reference": "mean", "frame_gate_db": 30.0}), noisy, false),
        ("floor 10 dB, noisy pauses", json!({"db_reference": "mean", "frame_floor_db": 10.0}), noisy, true),
        ("floor 10 dB, quiet pauses", json!({"db_reference": "mean", "frame_floor_db": 10.0}), quiet, true),
        (
            "both, dB re peak, power mel",
            json!({"db_reference": "peak", "frame_gate_db": 10.0, "frame_floor_db": 6.0, "mel_scale": "power"}),
            noisy,
            true,
        ),
        ("no gate, quiet pauses", json!({"db_reference": "mean"}), quiet, false),
    ] {
        let mut v = json!({"sample_rate": 8000, "n_fft": 256, "hop_length": 64, "n_mels": 32, "n_mfcc": 13,
            "mel_scale": "db", "stats": ["mean", "std"], "delta_stats": ["std"]});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let spec = spec(v);
        let plan = FeaturePlan::new(&spec).unwrap();
        let wave = with_pauses(spec.sample_rate, 0.4, 1, gain);
        let fast = plan.extract(&wave).unwrap();
        let worst = assert_close(name, &spec, &fast, &features_ref(&spec, &wave));
        eprintln!("fast vs ref {name}: worst relative error {worst:.2e}");
        // pauses left out of the statistics leave the clip's features near those of the
        // signal alone (twice, as in the paused clip); pooled pauses move them as far as
        // they move the same spec without gates
        let voice = signal(spec.sample_rate, 0.4, 1);
        let voice = [&voice[..], &voice].concat();
        let ungated = FeatureSpec { frame_gate_db: None, frame_floor_db: None, ..spec.clone() };
        let ungated = FeaturePlan::new(&ungated).unwrap();
        let (a, b) = spec.blocks().into_iter().find(|b| b.0 == "mfcc_std").map(|b| (b.1, b.2)).unwrap();
        let moved = |x: &[f32], y: &[f32]| (a..b).map(|i| (x[i] - y[i]).abs()).fold(0f32, f32::max);
        let by_gated = moved(&fast, &plan.extract(&voice).unwrap());
        let by_ungated = moved(&ungated.extract(&wave).unwrap(), &ungated.extract(&voice).unwrap());
        eprintln!("{name}: the pauses move an MFCC std by up to {by_gated} ({by_ungated} without gates)");
        assert!(by_ungated > 10.0, "{name}: the pauses should move the ungated MFCC stds ({by_ungated})");
        if gated {
            assert!(by_gated < by_ungated / 2.0, "{name}: the pauses moved an MFCC std by {by_gated}");
        } else {
            assert!(by_gated > 0.8 * by_ungated, "{name}: the pauses should stay in ({by_gated})");
        }
    }
}

#[test]
fn edge_pauses_are_cut_as_the_reference_cuts_them() {
    // (room tone gain, seconds of it at each end), with and without the floor line: the
    // fast span equals the plain one, and a clip with `edge_pause_s` gives the features of
    // its span without it
    let rate = 8000;
    let voice = signal(rate, 0.6, 2);
    for (gain, secs) in [(1e-3f32, 1.0), (1e-3, 0.05), (0.05, 1.0), (0.0, 0.7), (1.0, 0.3), (0.1, 1.0)] {
        let tone: Vec<f32> = signal(rate, secs, 9).iter().map(|v| v * gain).collect();
        let wave = [&tone[..], &voice, &tone].concat();
        for floor in [false, true] {
            for keep in [0.01, 0.15, 2.0] {
                let span = edge_span(&wave, rate, keep, 256, floor);
                let at = format!("gain {gain}, {secs} s, keep {keep}, floor {floor}");
                assert_eq!(span, edge_span_ref(&wave, rate, keep, 256, floor), "{at}");
                let kept = (keep * f64::from(rate)).round() as usize;
                // quiet room tone (60 dB down, or digital silence) is cut to `keep` seconds
                // of it, give or take the block the voice starts in (20 ms = 160 samples);
                // with the floor line room tone 20-26 dB down (a noisy room) is cut too
                if (gain < 1e-2 || (floor && gain < 0.2)) && secs > keep {
                    let lead = tone.len() - span.start;
                    assert!(lead >= kept && lead <= kept + 160, "{at}: lead-in of {lead} samples");
                } else {
                    assert_eq!(span.start, 0, "{at}: nothing to cut in front");
                }
            }
            let base = json!({"sample_rate": rate, "n_fft": 256, "hop_length": 64, "n_mels": 32, "n_mfcc": 13,
                "mel_scale": "db", "stats": ["mean", "std"], "delta_stats": ["std"], "db_reference": "mean"});
            let plain = spec(base.clone());
            let mut trimmed = base;
            trimmed["edge_pause_s"] = json!(0.15);
            trimmed["edge_floor"] = json!(floor);
            let trimmed = spec(trimmed);
            let fast = FeaturePlan::new(&trimmed).unwrap().extract(&wave).unwrap();
            assert_close("edge pause 0.15 s", &trimmed, &fast, &features_ref(&trimmed, &wave));
            let span = edge_span(&wave, rate, 0.15, 256, floor);
            let whole = FeaturePlan::new(&plain).unwrap().extract(&wave[span]).unwrap();
            assert_eq!(fast, whole, "gain {gain}, {secs} s, floor {floor}");
        }
    }
}

#[test]
fn the_floor_line_keeps_a_flat_clip_whole() {
    // a level that never stands 10 dB over its own floor (steady noise, a held tone) has no
    // loud block against the floor line: the clip is kept whole, not cut to nothing
    let rate = 8000;
    let flat: Vec<f32> = signal(rate, 1.0, 4);
    assert_eq!(edge_span(&flat, rate, 0.15, 256, true), 0..flat.len());
    assert_eq!(edge_span_ref(&flat, rate, 0.15, 256, true), 0..flat.len());
}

#[test]
fn streaming_frames_equal_whole_clip_bit_for_bit() {
    for (name, spec) in specs() {
        let plan = FeaturePlan::new(&spec).unwrap();
        let wave = signal(spec.sample_rate, 0.4, 3);
        let mut fs = plan.frame_scratch();
        let mut whole = FrameRows::new(&spec);
        plan.analyze_clip(&wave, &mut fs, &mut whole);
        assert_eq!(whole.len(), frame_count(wave.len(), spec.n_fft, spec.hop_length), "{name}");

        let mut stream = FrameRows::new(&spec);
        let mut an = FrameAnalyzer::new(&plan);
        let mut at = 0;
        let mut state = 12345u64;
        while at < wave.len() {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            let n = ((state >> 33) % 700) as usize; // includes empty chunks
            let end = (at + n).min(wave.len());
            an.push(&plan, &wave[at..end], &mut fs, &mut stream).unwrap();
            at = end;
        }
        an.finish(&plan, &mut fs, &mut stream);
        assert_eq!(an.frames(), whole.len(), "{name}: frames");
        for t in 0..whole.len() {
            assert_eq!(whole.power(t), stream.power(t), "{name}: frame {t}");
            assert_eq!(whole.db(t), stream.db(t), "{name}: frame {t}");
            assert_eq!(whole.chroma(t), stream.chroma(t), "{name}: frame {t}");
        }
        // pooling a sub-range equals pooling that clip's rows the same way
        let pooler = plan.pooler();
        let mut ps = Default::default();
        let (mut a, mut b) = (vec![0f32; spec.dim()], vec![0f32; spec.dim()]);
        let r = 2..whole.len() - 1;
        pooler.pool(&whole, r.clone(), whole.db_peak(r.clone()), &mut ps, &mut a);
        pooler.pool(&stream, r.clone(), stream.db_peak(r), &mut ps, &mut b);
        assert_eq!(a, b, "{name}: pooled");
        // push after finish is refused; reset starts over
        assert_eq!(an.push(&plan, &[0.0], &mut fs, &mut stream), Err(FeatureError::StreamFinished));
        an.reset(&plan);
        assert_eq!(an.frames(), 0);
    }
}

#[test]
fn frame_count_and_start_follow_centre_padding() {
    assert_eq!(frame_count(44100, 2048, 512), 1 + 44100 / 512);
    assert_eq!(frame_count(0, 2048, 512), 1);
    assert_eq!(frame_count(0, 255, 64), 0);
    assert_eq!(frame_count(1, 255, 64), 1);
    assert_eq!(frame_start(0, 2048, 512), -1024);
    assert_eq!(frame_start(3, 2048, 512), 3 * 512 - 1024);
}

#[test]
fn reused_scratch_carries_nothing_over() {
    for (name, spec) in specs() {
        let plan = FeaturePlan::new(&spec).unwrap();
        let (long, short) = (signal(spec.sample_rate, 0.6, 1), signal(spec.sample_rate, 0.25, 2));
        let fresh = plan.extract(&short).unwrap();
        let mut s = plan.scratch();
        let mut out = vec![0f32; spec.dim()];
        plan.extract_into(&long, &mut s, &mut out).unwrap();
        plan.extract_into(&short, &mut s, &mut out).unwrap();
        assert_eq!(out, fresh, "{name}");
    }
}

#[test]
fn plan_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<FeaturePlan>();
}

#[test]
fn spec_defaults_round_trip_and_old_headers() {
    // an old header: no preset / mel_scale / stats / delta keys -> paper values
    let old = json!({"sample_rate": 22050, "n_mfcc": 40, "n_chroma": 12, "n_mels": 128, "n_fft": 2048,
        "hop_length": 512, "win_length": null, "f_min": 0.0, "f_max": null, "top_db": 80.0,
        "chroma_spectrum": "magnitude", "chroma_tuning": 0.0});
    let s = spec(old);
    assert_eq!(s, FeatureSpec::default());
    assert_eq!(s.dim(), 180);
    assert_eq!(spec(json!({})), FeatureSpec::default());
    let rich = spec(json!({"preset": "rich"}));
    assert_eq!(rich, FeatureSpec::preset(Preset::Rich));
    assert_eq!((rich.n_mels, rich.mel_scale), (64, MelScale::Db));
    assert_eq!(rich.dim(), 272);
    // explicit keys override the preset's values
    assert_eq!(spec(json!({"preset": "rich", "n_mels": 128})).dim(), 2 * 180 + 40);
    assert_eq!(spec(rich.to_json_value()), rich);
    // portable = rich at 16 kHz with dB relative to the clip's mean; rich headers without the key stay absolute
    let portable = spec(json!({"preset": "portable"}));
    assert_eq!(portable, FeatureSpec::preset(Preset::Portable));
    assert_eq!((portable.sample_rate, portable.db_reference, portable.dim()), (16000, DbReference::Mean, 272));
    assert_eq!(rich.db_reference, DbReference::Absolute);
    assert_eq!(spec(portable.to_json_value()), portable);
    // portable-nochroma = portable without the chroma blocks
    let nochroma = spec(json!({"preset": "portable-nochroma"}));
    assert_eq!(nochroma, FeatureSpec::preset(Preset::PortableNoChroma));
    assert_eq!((nochroma.n_chroma, nochroma.dim(), nochroma.sample_rate), (0, 248, 16000));
    assert_eq!(spec(nochroma.to_json_value()), nochroma);
    // portable-gated = portable-nochroma pooling the frames within 30 dB of the loudest;
    // every other preset (and a header without the key) pools every frame
    let gated = spec(json!({"preset": "portable-gated"}));
    assert_eq!(gated, FeatureSpec { preset: Preset::PortableGated, frame_gate_db: Some(30.0), ..nochroma.clone() });
    assert_eq!(spec(gated.to_json_value()), gated);
    assert_eq!(spec(json!({"preset": "portable-gated", "frame_gate_db": null})).frame_gate_db, None);
    assert_eq!((nochroma.frame_gate_db, nochroma.frame_floor_db), (None, None));
    let floor = spec(json!({"preset": "portable-nochroma", "frame_floor_db": 10.0}));
    assert_eq!(spec(floor.to_json_value()), floor);
    assert_eq!(floor.frame_floor_db, Some(10.0));
    assert_eq!(FeatureSpec::default().frame_gate_db, None);
    // portable-trimmed = portable-nochroma keeping 0.15 s of quiet lead-in and tail
    let trimmed = spec(json!({"preset": "portable-trimmed"}));
    assert_eq!(trimmed, FeatureSpec { preset: Preset::PortableTrimmed, edge_pause_s: Some(0.15), ..nochroma.clone() });
    assert_eq!(spec(trimmed.to_json_value()), trimmed);
    assert_eq!((nochroma.edge_pause_s, FeatureSpec::default().edge_pause_s), (None, None));
    // portable-trimmed-floor = portable-trimmed whose cut also stops at the clip's floor
    let floored = spec(json!({"preset": "portable-trimmed-floor"}));
    assert_eq!(floored, FeatureSpec { preset: Preset::PortableTrimmedFloor, edge_floor: true, ..trimmed.clone() });
    assert_eq!(spec(floored.to_json_value()), floored);
    assert!(!trimmed.edge_floor && !FeatureSpec::default().edge_floor);
    // every name parses to the preset that writes it back (as_str indexes the one table)
    for name in PRESET_NAMES {
        let p = spec(json!({ "preset": name })).preset;
        assert_eq!((p.as_str(), FeatureSpec::preset(p).preset), (name, p));
    }
    let names: Vec<String> = rich.blocks().into_iter().map(|b| b.0).collect();
    assert_eq!(names, ["mfcc_mean", "chroma_mean", "mel_mean", "mfcc_std", "chroma_std", "mel_std", "dmfcc_std"]);
}

/// One input per `SpecError` variant (ALL_KINDS: a new variant must add a row).
#[test]
fn every_spec_error_names_field_and_bound() {
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (json!([1]), "features: must be a JSON object"),
        (json!({"bogus": 1}), "features.bogus: unknown key"),
        (json!({"n_fft": "big"}), "features.n_fft: must be an integer, got a string"),
        (json!({"n_fft": 2048.5}), "features.n_fft: must be an integer, got a fractional number"),
        (json!({"n_fft": 1u64 << 30}), "features.n_fft: 1073741824 is outside 16..=16384"),
        (json!({"sample_rate": 2_000_000_000u64}), "features.sample_rate: 2000000000 is outside 1000..=192000"),
        (json!({"hop_length": 4096}), "features.hop_length: 4096 is outside 1..=2048"),
        (json!({"n_mfcc": 200}), "features.n_mfcc: 200 is outside 1..=128"),
        (json!({"top_db": 0.0}), "features.top_db: 0 is outside (0, 300]"),
        (json!({"frame_gate_db": -3.0}), "features.frame_gate_db: -3 is outside (0, 300]"),
        (json!({"frame_gate_db": "30"}), "features.frame_gate_db: must be a number, got a string"),
        (json!({"frame_floor_db": 0.0}), "features.frame_floor_db: 0 is outside (0, 300]"),
        (json!({"edge_pause_s": 61.0}), "features.edge_pause_s: 61 is outside (0, 60]"),
        (json!({"edge_pause_s": 0.15, "edge_floor": 1}), "features.edge_floor: must be true or false, got a number"),
        (json!({"edge_floor": true}), "features.edge_floor: true needs features.edge_pause_s"),
        (json!({"preset": "portable-trimmed-floor", "edge_pause_s": null}), "features.edge_floor: true needs"),
        (json!({"f_max": 20000.0}), "features.f_max: 20000 is outside (f_min, sample_rate / 2 = 11025]"),
        (json!({"f_min": 5000.0, "f_max": 4000.0}), "features.f_min: 5000 is outside [0, 4000)"),
        (json!({"chroma_tuning": 0.75}), "features.chroma_tuning: 0.75 is outside [-0.5, 0.5]"),
        (json!({"mel_scale": "log"}), "features.mel_scale: \"log\" is not one of power, db"),
        (json!({"db_reference": "max"}), "features.db_reference: \"max\" is not one of absolute, peak, mean"),
        (json!({"stats": ["mean", "mean"]}), "features.stats: \"mean\" appears twice"),
        (json!({"stats": []}), "features.stats: must name at least one statistic"),
        (json!({"delta_width": 8}), "features.delta_width: 8 is even, must be odd"),
    ];
    let mut kinds = std::collections::HashSet::new();
    for (v, want) in cases {
        let e = FeatureSpec::from_json_value(&v).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with(want), "{v}: got {msg:?}, want {want:?}");
        assert!(!msg.contains('\n'));
        kinds.insert(std::mem::discriminant(&e));
    }
    assert_eq!(kinds.len(), 10, "every SpecError variant raised");
    assert_eq!(N_FFT_RANGE, (16, 16384));
    assert_eq!(SAMPLE_RATE_RANGE, (1000, 192000));
}

#[test]
fn waveform_errors() {
    let spec = spec(json!({"sample_rate": 1000, "n_fft": 64, "hop_length": 32, "n_mels": 8, "n_mfcc": 4}));
    let plan = FeaturePlan::new(&spec).unwrap();
    assert_eq!(plan.extract(&[0.1; 10]), Err(FeatureError::TooShort { samples: 10, min: 64 }));
    let mut w = vec![0.1f32; 100];
    w[42] = f32::NAN;
    assert_eq!(plan.extract(&w), Err(FeatureError::NonFinite { index: 42 }));
    let long = vec![0f32; (MAX_CLIP_SECONDS as usize + 1) * 1000];
    let e = plan.extract(&long).unwrap_err();
    assert!(e.to_string().contains("3601.0 s is longer than the 3600 s whole-clip limit; use segment mode"), "{e}");
    let mut out = vec![0f32; 3];
    let e = plan.extract_into(&[0.1; 100], &mut plan.scratch(), &mut out).unwrap_err();
    assert_eq!(e, FeatureError::OutputLength { expected: spec.dim(), got: 3 });
    let mut an = FrameAnalyzer::new(&plan);
    let mut rows = FrameRows::new(&spec);
    let e = an.push(&plan, &[0.0, f32::INFINITY], &mut plan.frame_scratch(), &mut rows).unwrap_err();
    assert_eq!(e, FeatureError::NonFinite { index: 1 });
    // digital silence is a valid clip here (the audio loader rejects it): finite features
    assert!(plan.extract(&[0.0; 100]).unwrap().iter().all(|v| v.is_finite()));
}

/// The banded chroma filterbank drops only what its documented bound allows: for any
/// non-negative spectrum (random, single-bin spikes, flat), every raw chroma value of the
/// kept weights is within `2^-30 * top` of the dense product (float64 sums of the
/// float32 weights), and the bands do drop most of the Gaussian tails.
#[test]
fn banded_chroma_drops_only_the_bounded_tail() {
    let bound = 2f64.powi(-30); // the documented bound, not the constant itself
    let cases = [
        spec(json!({})),
        spec(json!({"n_chroma": 24, "chroma_tuning": 0.25})),
        spec(json!({"n_chroma": 96, "chroma_tuning": -0.5})),
        spec(
            json!({"sample_rate": 8000, "n_fft": 255, "win_length": 255, "hop_length": 64, "n_mels": 32, "n_mfcc": 13}),
        ),
        spec(json!({"sample_rate": 48000, "n_fft": 4096, "hop_length": 1024})),
    ];
    for s in cases {
        let plan = FeaturePlan::new(&s).unwrap();
        let (nc, nf) = (s.n_chroma, s.n_freqs());
        let dense = plan.chroma_fb();
        let kept = plan.chroma_bands().to_dense(nc, nf);
        assert!(kept.iter().zip(dense).all(|(&k, &d)| k == 0.0 || k == d), "kept weights are the exact weights");
        let mut spectra: Vec<Vec<f64>> = Vec::new();
        let mut state = 12345u64;
        for _ in 0..8 {
            spectra.push(
                (0..nf)
                    .map(|_| {
                        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        ((state >> 40) as f64 / (1u64 << 24) as f64).powi(4)
                    })
                    .collect(),
            );
        }
        spectra.push(vec![1.0; nf]);
        for k in (0..nf).step_by(7).chain([nf - 1]) {
            let mut v = vec![0.0; nf];
            v[k] = 3.0;
            spectra.push(v);
        }
        let mut worst = 0f64;
        for sp in &spectra {
            let prod = |w: &[f32], c: usize| (0..nf).map(|k| f64::from(w[c * nf + k]) * sp[k]).sum::<f64>();
            let full: Vec<f64> = (0..nc).map(|c| prod(dense, c)).collect();
            let top = full.iter().cloned().fold(0.0, f64::max);
            for (c, &f) in full.iter().enumerate() {
                let gap = f - prod(&kept, c);
                assert!(gap >= -1e-12 * top, "kept more than the dense product?");
                assert!(gap <= bound * top * (1.0 + 1e-9), "chroma {c}: dropped {gap:e} > 2^-30 * top {top:e}");
                worst = worst.max(gap / top);
            }
        }
        let nnz = plan.chroma_bands().nnz();
        eprintln!(
            "banded chroma n_fft {} n_chroma {nc}: {nnz} of {} weights, {} runs, worst dropped / top {worst:.1e}",
            s.n_fft,
            nc * nf,
            plan.chroma_bands().runs()
        );
        if s.n_fft >= 2048 {
            assert!(nnz * 10 < nc * nf * 7, "the bands should drop the far tails ({nnz} of {})", nc * nf);
        }
    }
}
