//! Adaptation (new statistics, provenance, refusals) and the calibration / out-of-domain
//! fields of the model loader (bounds, the temperature applied before softmax).

mod common;

use common::{load, model_bytes, tone_clips, wav};
use serde_json::{json, Value};
use serlaq_core::adapt::{adapt, AdaptError, AdaptOptions, StdRule};
use serlaq_core::model::softmax_rows;

/// An edit of the metadata and the normalization mean and std, with the error it must give.
type Case = (Box<dyn Fn(&mut Value, &mut Vec<f32>, &mut Vec<f32>)>, &'static str);

#[test]
fn hostile_calibration_ood_and_statistics_are_refused() {
    let cases: Vec<Case> = vec![
        (Box::new(|m, _, _| m["calibration"] = json!({"temperature": 0.0})), "'calibration.temperature' is 0"),
        (Box::new(|m, _, _| m["calibration"] = json!({"temperature": -2.0})), "'calibration.temperature' is -2"),
        (Box::new(|m, _, _| m["calibration"] = json!({"temperature": 1e300})), "within 0.05..=20"),
        (
            Box::new(|m, _, _| m["calibration"] = json!({"temperature": "2"})),
            "'calibration.temperature' must be a number",
        ),
        (Box::new(|m, _, _| m["calibration"] = json!(3)), "'calibration' must be an object"),
        (Box::new(|m, _, _| m["ood"] = json!({"threshold": 0.0})), "'ood.threshold' is 0"),
        (Box::new(|_, _, s| s[5] = 1e20), "'normalization.std' value 5 is 1e20"),
        (Box::new(|_, m, _| m[2] = -1e20), "'normalization.mean' value 2 is -1e20"),
        (Box::new(|_, _, s| s[1] = 0.0), "'normalization.std' must be strictly positive"),
    ];
    for (edit, want) in cases {
        let e = load(model_bytes(edit)).unwrap_err().to_string();
        assert!(e.contains(want) && !e.contains('\n'), "got {e:?}, want {want:?}");
    }
    // within bounds: loads
    let m = load(model_bytes(|m, _, _| m["calibration"] = json!({"temperature": 2.5, "fitted_on": "val"}))).unwrap();
    assert_eq!(m.temperature(), 2.5);
}

#[test]
fn temperature_divides_the_logits_before_softmax() {
    let plain = load(model_bytes(|_, _, _| {})).unwrap();
    let hot = load(model_bytes(|m, _, _| m["calibration"] = json!({"temperature": 2.0}))).unwrap();
    assert_eq!(plain.temperature(), 1.0);
    let x: Vec<f32> = (0..plain.input_dim() * 2).map(|i| (i % 13) as f32 - 6.0).collect();
    let logits = plain.forward(&x).unwrap();
    assert_eq!(plain.probabilities(&x).unwrap(), softmax_rows(&logits, 3));
    let halved: Vec<f32> = logits.iter().map(|v| v / 2.0).collect();
    let got = hot.probabilities(&x).unwrap();
    for (a, b) in got.iter().zip(softmax_rows(&halved, 3)) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    // the answer is the same, only less sure
    let top = |p: &[f64]| p.iter().cloned().fold(0.0, f64::max);
    assert!(top(&got[..3]) < top(&plain.probabilities(&x).unwrap()[..3]));
}

#[test]
fn adapt_rewrites_the_statistics_and_records_provenance() {
    let dir = std::env::temp_dir().join(format!("serlaq-adapt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = load(model_bytes(|m, _, _| m["calibration"] = json!({"temperature": 1.5}))).unwrap();
    let paths = tone_clips(&dir, 6);
    let silent = dir.join("silent.wav");
    wav(&silent, &vec![0.0; 8000], 8000);
    let junk = dir.join("junk.wav");
    std::fs::write(&junk, b"RIFF....not audio").unwrap();
    let mut all = paths.clone();
    all.extend([silent.clone(), junk.clone()]);

    let opts = |min_clips| AdaptOptions {
        threads: 2,
        source: "room-b/".into(),
        created: Some("2026-12-04T06:00:00Z".into()),
        min_clips,
        min_speech_seconds: 5.0,
        balance: false,
        std: StdRule::Target,
        labels: Vec::new(),
    };
    // too little audio: says how much more, names the bad files
    match adapt(&model, &all, &opts(10)) {
        Err(e @ AdaptError::TooLittle { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("6 usable clips") && msg.contains("4 more clips") && !msg.contains('\n'), "{msg}");
            let AdaptError::TooLittle { failures, .. } = e else { unreachable!() };
            assert_eq!(failures.len(), 2);
            assert!(
                failures.iter().any(|f| f.contains("silent.wav")) && failures.iter().any(|f| f.contains("junk.wav"))
            );
        }
        other => panic!("expected TooLittle, got {other:?}"),
    }
    match adapt(&model, &[silent.clone(), junk.clone()], &opts(1)) {
        Err(e @ AdaptError::NoUsableAudio { .. }) => assert!(e.to_string().contains("none of the 2 files")),
        other => panic!("expected NoUsableAudio, got {other:?}"),
    }
    // one of each is said as one
    let one = adapt(&model, &paths[..1], &opts(2)).unwrap_err().to_string();
    assert!(one.contains(": 1 usable clip with ") && one.contains("(1 more clip and "), "{one}");
    let one = adapt(&model, std::slice::from_ref(&junk), &opts(1)).unwrap_err().to_string();
    assert_eq!(one, "adapt: the one file given holds no usable audio");

    let out = adapt(&model, &all, &opts(5)).unwrap();
    assert_eq!(out.clips, 6);
    assert_eq!(out.failures.len(), 2);
    assert!((out.seconds - 12.0).abs() < 1e-6, "{}", out.seconds);
    let adapted = load(out.bytes.clone()).unwrap();
    // the statistics are the clips' own
    let rows: Vec<Vec<f32>> = paths.iter().map(|p| model.features_file(p).unwrap()).collect();
    let (mean, std) = adapted.normalization();
    for j in [0, 7, adapted.input_dim() - 1] {
        let m: f64 = rows.iter().map(|r| f64::from(r[j])).sum::<f64>() / 6.0;
        let v: f64 = rows.iter().map(|r| (f64::from(r[j]) - m).powi(2)).sum::<f64>() / 6.0;
        assert!((f64::from(mean[j]) - m).abs() <= 1e-4 * m.abs().max(1.0), "mean {j}");
        assert!(
            (f64::from(std[j]) - v.sqrt().max(1e-3 * f64::from(model.normalization().1[j]))).abs()
                <= 1e-4 * v.sqrt().max(1e-3),
            "std {j}"
        );
    }
    // the clips are now in-domain on average (1 exactly, less the few features that are
    // constant over the clips and so standardize to 0)
    let z: f64 = rows.iter().map(|r| adapted.ood_score(r).unwrap().powi(2)).sum::<f64>() / 6.0;
    assert!(z > 0.9 && z < 1.0 + 1e-4, "mean square z {z}");
    assert!(out.ood_after < out.ood_before);
    // everything else is kept: layers, labels, temperature
    assert_eq!(adapted.temperature(), 1.5);
    assert_eq!(adapted.labels(), model.labels());
    for i in 0..2 {
        assert_eq!(adapted.file().packed(i), model.file().packed(i));
        assert_eq!(adapted.file().bias(i), model.file().bias(i));
    }
    let meta: Value = serde_json::from_str(adapted.metadata_json()).unwrap();
    assert_eq!(
        meta["provenance"]["adaptations"],
        json!([{"created": "2026-12-04T06:00:00Z", "clips": 6, "seconds": 12.0, "source": "room-b/", "adapted": ["normalization"], "std": "target"}])
    );
    // the default rule widens: each std is the larger of the model's and the clips' own,
    // the mean is the clips' own, and the file says which rule it used
    let widened = adapt(&model, &paths, &AdaptOptions { std: StdRule::Widen, ..opts(5) }).unwrap();
    let w = load(widened.bytes.clone()).unwrap();
    let (old_std, target_std) = (model.normalization().1, adapted.normalization().1);
    assert_eq!(w.normalization().0, adapted.normalization().0);
    let mut narrower = 0;
    for j in 0..w.input_dim() {
        assert_eq!(w.normalization().1[j], old_std[j].max(target_std[j]), "std {j}");
        narrower += usize::from(target_std[j] < old_std[j]);
    }
    assert!(
        narrower > 0 && narrower < w.input_dim(),
        "the clips must be narrower than the model in some features only: {narrower}"
    );
    let wmeta: Value = serde_json::from_str(w.metadata_json()).unwrap();
    assert_eq!(wmeta["provenance"]["adaptations"][0]["std"], json!("widen"));
    assert!(widened.ood_after < out.ood_after, "{} vs {}", widened.ood_after, out.ood_after);
    // adapting again appends, and is deterministic
    let again = adapt(&adapted, &paths, &opts(5)).unwrap();
    let meta2: Value = serde_json::from_str(load(again.bytes.clone()).unwrap().metadata_json()).unwrap();
    assert_eq!(meta2["provenance"]["adaptations"].as_array().unwrap().len(), 2);
    assert_eq!(adapt(&adapted, &paths, &opts(5)).unwrap().bytes, again.bytes);

    // label balance: same statistics, only the output bias moves, so that the clips'
    // mean probability is equal across labels
    let balanced = adapt(&model, &paths, &AdaptOptions { balance: true, ..opts(5) }).unwrap();
    let b = load(balanced.bytes.clone()).unwrap();
    assert_eq!(b.normalization(), adapted.normalization());
    assert_eq!(b.file().bias(0), model.file().bias(0));
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let p = b.probabilities(&flat).unwrap();
    let k = b.num_classes();
    for c in 0..k {
        let q: f64 = p.iter().skip(c).step_by(k).sum::<f64>() / rows.len() as f64;
        assert!((q - 1.0 / k as f64).abs() < 1e-3, "label {c}: mean probability {q}");
    }
    let unbalanced = adapted.probabilities(&flat).unwrap();
    let q0: Vec<f64> = (0..k).map(|c| unbalanced.iter().skip(c).step_by(k).sum::<f64>() / rows.len() as f64).collect();
    assert!(q0.iter().any(|q| (q - 1.0 / k as f64).abs() > 0.05), "the generated clips must start unbalanced: {q0:?}");
    let meta: Value = serde_json::from_str(b.metadata_json()).unwrap();
    let record = &meta["provenance"]["adaptations"][0];
    assert_eq!(record["adapted"], json!(["normalization", "label_balance"]));
    let shift: Vec<f64> = record["bias_shift"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let old = model.file().bias(1).unwrap_or_else(|| vec![0.0; k]);
    let new = b.file().bias(1).expect("the balanced output layer has a bias");
    for c in 0..k {
        assert!((f64::from(new[c] - old[c]) - shift[c]).abs() < 1e-3, "bias {c}");
    }
    assert!(balanced.top_share_after <= balanced.top_share_before);
    std::fs::remove_dir_all(&dir).ok();
}

/// A device gathers its room's clips one at a time, from samples or bytes it holds in
/// memory: the same clips give the same file as adapting from their files, and a clip that
/// fails is refused alone.
#[test]
fn gathered_clips_adapt_as_their_files_do() {
    use serlaq_core::adapt::{adapt_gathered, Gathered};
    use serlaq_core::audio;
    let dir = std::env::temp_dir().join(format!("serlaq-gather-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = load(model_bytes(|_, _, _| {})).unwrap();
    let paths = tone_clips(&dir, 6);
    let opts = AdaptOptions {
        threads: 1,
        source: "room-b/".into(),
        created: Some("2026-12-04T06:00:00Z".into()),
        min_clips: 6,
        min_speech_seconds: 5.0,
        ..AdaptOptions::default()
    };
    let from_files = adapt(&model, &paths, &opts).unwrap();

    let spec = model.spec();
    let mut g = Gathered::new();
    for (k, p) in paths.iter().enumerate() {
        let bytes = std::fs::read(p).unwrap();
        let wave = audio::load_bytes(&bytes, "<bytes>", spec.sample_rate, spec.min_samples()).unwrap();
        assert!(!g.enough(&opts), "{k} clips are not enough");
        g.add_wave(&model, &wave, "<bytes>").unwrap();
    }
    // a clip too short for the features is refused alone, named by its source
    let e = g.add_wave(&model, &[0.1; 10], "<pcm>").unwrap_err();
    assert!(e.starts_with("<pcm>: ") && !e.contains('\n'), "{e}");
    assert_eq!(g.clips(), 6);
    assert!((g.speech_seconds() - from_files.speech_seconds).abs() < 1e-9);
    assert!(g.enough(&opts));
    assert_eq!(g.source(), "<bytes>");
    let gathered = adapt_gathered(&model, &g, &opts).unwrap();
    assert_eq!(gathered.bytes, from_files.bytes);

    // with no source given, the record names what the clips came from
    let mut g = Gathered::new();
    paths.iter().for_each(|p| g.add_file(&model, p).unwrap());
    let named = adapt_gathered(&model, &g, &AdaptOptions { source: String::new(), ..opts.clone() }).unwrap();
    let meta: Value = serde_json::from_str(load(named.bytes).unwrap().metadata_json()).unwrap();
    let want =
        format!("{} and 3 more", paths[..3].iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));
    assert_eq!(meta["provenance"]["adaptations"][0]["source"], json!(want));
    std::fs::remove_dir_all(&dir).ok();
}

/// A long recording of a room (a call, an afternoon) is the many utterances it holds: cut
/// into 2-s windows, its pauses left out, each speech window a clip, exactly as if those
/// windows had been given one by one; an utterance stays one clip.
#[test]
fn a_long_recording_adapts_as_its_speech_windows() {
    use serlaq_core::adapt::{adapt_gathered, Gathered, LONG_RECORDING_SECONDS, LONG_WINDOW_SECONDS};
    let model = load(model_bytes(|_, _, _| {})).unwrap();
    let rate = 8000usize;
    let window = (LONG_WINDOW_SECONDS * rate as f64) as usize;
    // 24 windows: every fourth one room tone 50 dB down (a pause), the others tones
    let pieces: Vec<Vec<f32>> = (0..24)
        .map(|k| {
            let (amp, f) = if k % 4 == 3 { (0.0006, 0.3) } else { (0.2, 0.03 + 0.004 * k as f32) };
            (0..window).map(|i| amp * (i as f32 * f).sin() + 0.0002 * ((i * 31 + k) % 7) as f32).collect()
        })
        .collect();
    let long: Vec<f32> = pieces.concat();
    assert!(long.len() as f64 / rate as f64 > LONG_RECORDING_SECONDS);
    let opts = AdaptOptions {
        source: "call.wav".into(),
        created: Some("2026-12-04T06:00:00Z".into()),
        min_clips: 10,
        min_speech_seconds: 10.0,
        ..AdaptOptions::default()
    };
    let mut whole = Gathered::new();
    whole.add_wave(&model, &long, "call.wav").unwrap();
    assert_eq!(whole.clips(), 18, "the 6 pauses are left out");
    let mut one_by_one = Gathered::new();
    for (k, p) in pieces.iter().enumerate().filter(|(k, _)| k % 4 != 3) {
        one_by_one.add_wave(&model, p, &format!("window {k}")).unwrap();
    }
    assert!((whole.speech_seconds() - one_by_one.speech_seconds()).abs() < 0.2);
    let a = adapt_gathered(&model, &whole, &opts).unwrap();
    let b = adapt_gathered(&model, &one_by_one, &opts).unwrap();
    assert_eq!(a.clips, 18);
    assert_eq!(a.bytes, b.bytes, "the same statistics, balance and record");
    // the summary says where the clips came from
    assert_eq!((a.windows, a.recordings, b.windows, b.recordings), (18, 1, 0, 0));
    assert!(
        a.summary().starts_with("on 18 clips (18 of them windows of 1 long recording; 36.0 s, "),
        "{}",
        a.summary()
    );
    assert!(b.summary().starts_with("on 18 clips (36.0 s, "), "{}", b.summary());
    // an utterance (here 30 s, the limit) stays one clip
    let mut short = Gathered::new();
    short.add_wave(&model, &long[..(LONG_RECORDING_SECONDS as usize * rate)], "utterance").unwrap();
    assert_eq!(short.clips(), 1);
    // a long recording of room tone alone: one line naming it
    let quiet = vec![0.0004f32; 40 * rate];
    let mut q = Gathered::new();
    let e = q.add_wave(&model, &[&quiet[..], &pieces[0][..rate / 100]].concat(), "hall.wav").unwrap_err();
    assert!(e.starts_with("hall.wav: no speech in this 40.0-s recording") && !e.contains('\n'), "{e}");
    assert_eq!(q.clips(), 0);
}
