//! The hidden-layer out-of-domain reference (`serlaq_core::ood`): what the loader refuses,
//! the distance and the temperature's growth as defined, one pass for both, and `adapt`
//! moving the reference to the new room.

mod common;

use common::load;
use serde_json::{json, Value};
use serlaq_core::adapt::{adapt, AdaptOptions};
use serlaq_core::model::{softmax_rows_t, Model};
use serlaq_core::ood::MAX_TEMPER_FACTOR;

/// The hidden width of `common`'s model.
const WIDTH: usize = 8;

/// The reference's tensors: a mean, two basis rows (e0 and (e1 + e2)/sqrt 2), three scales.
struct Ref {
    mean: Vec<f32>,
    basis: Vec<f32>,
    scale: Vec<f32>,
}

fn reference() -> Ref {
    let mut basis = vec![0f32; 2 * WIDTH];
    basis[0] = 1.0;
    basis[WIDTH + 1] = std::f32::consts::FRAC_1_SQRT_2;
    basis[WIDTH + 2] = std::f32::consts::FRAC_1_SQRT_2;
    Ref { mean: (0..WIDTH).map(|i| 0.1 * i as f32).collect(), basis, scale: vec![0.5, 2.0, 1.5] }
}

/// The 2-layer model of `common` (hidden width 8) with a calibration and a hidden
/// reference; `edit` changes the metadata and the reference's tensors.
fn model_bytes(edit: impl Fn(&mut Value, &mut Ref)) -> Vec<u8> {
    let mut meta = json!({
        "calibration": {"temperature": 1.5},
        "ood": {"threshold": 30.0, "reference": {"space": "hidden", "mean": "ood.mean", "basis": "ood.basis",
                                                "scale": "ood.scale", "temper": 4.0}},
    });
    let mut r = reference();
    edit(&mut meta, &mut r);
    let extra = [("ood.mean", r.mean), ("ood.basis", r.basis), ("ood.scale", r.scale)];
    common::model_bytes_with(
        |m, _, _| {
            for (k, v) in meta.as_object().unwrap() {
                m[k] = v.clone();
            }
        },
        &extra,
    )
}

/// Rows of raw features around the model's mean, some far from it.
fn rows(model: &Model, n: usize) -> Vec<f32> {
    let d = model.input_dim();
    (0..n * d).map(|i| ((i * 37 % 23) as f32 - 11.0) * (1.0 + (i / d) as f32)).collect()
}

#[test]
fn hostile_references_are_refused_naming_the_field() {
    type Edit = Box<dyn Fn(&mut Value, &mut Ref)>;
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|_, r| r.scale[0] = 0.0), "'ood.reference.scale' value 0 is 0e0, outside"),
        (Box::new(|_, r| r.scale[2] = 1e30), "'ood.reference.scale' value 2 is 1e30"),
        (Box::new(|_, r| r.scale.push(1.0)), "'ood.reference.scale' has 4 values, expected 3"),
        (Box::new(|_, r| r.basis.push(0.0)), "'ood.reference.basis' has 17 values, not 1..=8 rows of 8"),
        (Box::new(|_, r| r.basis[3] = 5.0), "'ood.reference.basis' value 3 is 5, beyond a unit vector's"),
        (
            Box::new(|_, r| r.mean.pop().map(|_| ()).unwrap()),
            "'ood.reference.mean' has 7 values, the last hidden layer 8",
        ),
        (Box::new(|_, r| r.mean[0] = 1e20), "'ood.reference.mean' value 0 is 1e20"),
        (Box::new(|m, _| m["ood"]["reference"]["temper"] = json!(100.0)), "'ood.reference.temper' is 100"),
        (Box::new(|m, _| m["ood"]["reference"]["temper"] = json!("4")), "'ood.reference.temper' must be a number"),
        (Box::new(|m, _| m["ood"]["reference"]["space"] = json!("input")), "'ood.reference.space' must be \"hidden\""),
        (
            Box::new(|m, _| m["ood"]["reference"]["basis"] = json!("nope")),
            "names tensor \"nope\", which the file does not hold",
        ),
        (Box::new(|m, _| m["ood"]["reference"] = json!([1])), "'ood.reference' must be an object"),
        (
            Box::new(|m, _| m["ood"]["reference"]["floor"] = json!(3.0)),
            "'ood.reference.floor' is 3; it must be within 0..=16 and below the 3 classes",
        ),
        (Box::new(|m, _| m["ood"]["reference"]["floor"] = json!(-0.5)), "'ood.reference.floor' is -0.5"),
        (Box::new(|m, _| m["ood"]["reference"]["floor"] = json!("2")), "'ood.reference.floor' must be a number"),
        (
            Box::new(|m, _| m["ood"]["reference"]["feature_threshold"] = json!(0.0)),
            "'ood.reference.feature_threshold' is 0; it must be within 0.1..=1000000",
        ),
        (
            Box::new(|m, _| m["ood"]["reference"]["feature_threshold"] = json!(1e9)),
            "'ood.reference.feature_threshold' is 1000000000",
        ),
        (
            Box::new(|m, _| m["ood"]["reference"]["feature_threshold"] = json!(null)),
            "'ood.reference.feature_threshold' must be a number",
        ),
    ];
    for (edit, want) in cases {
        let e = load(model_bytes(edit)).unwrap_err().to_string();
        assert!(e.contains(want) && !e.contains('\n'), "got {e:?}, want {want:?}");
    }
    let m = load(model_bytes(|_, _| {})).unwrap();
    assert_eq!(
        m.reference().map(|r| (r.rank(), r.temper(), r.floor(), r.feature_threshold())),
        Some((2, 4.0, 0.0, None))
    );
}

#[test]
fn with_a_feature_threshold_the_score_is_the_larger_of_the_two_distances() {
    let plain = load(model_bytes(|_, _| {})).unwrap();
    let n = 12;
    let x = rows(&plain, n);
    let d = plain.input_dim();
    let (mean, std) = plain.normalization();
    let rms: Vec<f64> = (0..n)
        .map(|i| serlaq_core::ood::feature_rms(&serlaq_core::model::standardize(&x[i * d..(i + 1) * d], mean, std)))
        .collect();
    let hidden: Vec<f64> = (0..n).map(|i| plain.ood_score(&x[i * d..(i + 1) * d]).unwrap()).collect();
    // a feature threshold where the two distances cross in the middle of the rows
    let mut ratios: Vec<f64> = rms.iter().zip(&hidden).map(|(f, h)| f * 30.0 / h).collect();
    ratios.sort_by(f64::total_cmp);
    let f = ratios[n / 2];
    let m = load(model_bytes(|m, _| m["ood"]["reference"]["feature_threshold"] = json!(f))).unwrap();
    // as parsed from the header's JSON (the last digit may differ)
    let f = m.reference().unwrap().feature_threshold().filter(|g| (g - f).abs() < 1e-9 * f).unwrap();
    let z = serlaq_core::model::standardize(&x, mean, std);
    let (_, logits) = m.forward_hidden(z, n).unwrap();
    let mut by_features = 0;
    for i in 0..n {
        let want = hidden[i].max(rms[i] * 30.0 / f);
        by_features += usize::from(rms[i] * 30.0 / f > hidden[i]);
        let row = &x[i * d..(i + 1) * d];
        let got = m.ood_score(row).unwrap();
        assert!((got - want).abs() < 1e-9 * want.max(1.0), "row {i}: {got} vs {want}");
        let t = 1.5 * (want / 30.0).max(1.0).powi(4).min(MAX_TEMPER_FACTOR);
        let p = m.probabilities(row).unwrap();
        let expect = softmax_rows_t(&logits[i * 3..(i + 1) * 3], 3, t);
        assert!(p.iter().zip(&expect).all(|(a, b)| (a - b).abs() < 1e-6), "row {i}: {p:?} vs {expect:?}");
        assert_eq!(m.predict_features(row).unwrap(), (p, got));
    }
    assert!(by_features > 0 && by_features < n, "{by_features} of {n} rows scored by their features");
}

#[test]
fn the_score_is_the_hidden_distance_and_the_temperature_grows_beyond_the_threshold() {
    let m = load(model_bytes(|_, _| {})).unwrap();
    let r = reference();
    let n = 6;
    let x = rows(&m, n);
    let d = m.input_dim();
    let z = serlaq_core::model::standardize(&x, m.normalization().0, m.normalization().1);
    let (hidden, logits) = m.forward_hidden(z, n).unwrap();
    assert_eq!((hidden.len(), logits.len()), (n * WIDTH, n * 3));
    let mut beyond = 0;
    for i in 0..n {
        let h = &hidden[i * WIDTH..(i + 1) * WIDTH];
        // by hand: the deviation's coordinates on e0 and (e1 + e2)/sqrt 2, and the rest
        let dev: Vec<f64> = h.iter().zip(&r.mean).map(|(&a, &b)| f64::from(a) - f64::from(b)).collect();
        let p0 = dev[0];
        let p1 = (dev[1] + dev[2]) / 2f64.sqrt();
        let rest = dev.iter().map(|v| v * v).sum::<f64>() - p0 * p0 - p1 * p1;
        let want = ((0.25 * p0 * p0 + 4.0 * p1 * p1 + 2.25 * rest) / WIDTH as f64).sqrt();
        let got = m.ood_score(&x[i * d..(i + 1) * d]).unwrap();
        assert!((got - want).abs() < 1e-5 * want.max(1.0), "row {i}: {got} vs {want}");
        // the temperature: 1.5 * max(1, distance / 30)^4, the growth bounded
        let t = 1.5 * (want / 30.0).max(1.0).powi(4).min(MAX_TEMPER_FACTOR);
        beyond += usize::from(want > 30.0);
        let p = m.probabilities(&x[i * d..(i + 1) * d]).unwrap();
        let expect = softmax_rows_t(&logits[i * 3..(i + 1) * 3], 3, t);
        assert!(p.iter().zip(&expect).all(|(a, b)| (a - b).abs() < 1e-6), "row {i}: {p:?} vs {expect:?}");
        // one pass gives both, as the two calls do
        let (p1, d1) = m.predict_features(&x[i * d..(i + 1) * d]).unwrap();
        assert_eq!((p1, d1), (p.clone(), got));
        // a stream's window standardized by the caller (running normalisation): the same pair
        let zi = serlaq_core::model::standardize(&x[i * d..(i + 1) * d], m.normalization().0, m.normalization().1);
        assert_eq!(m.scored_standardized(zi).unwrap(), (p, got));
    }
    assert!(
        beyond > 0 && beyond < n,
        "the rows must fall on both sides of the threshold: {beyond} {:?}",
        (0..n).map(|i| m.ood_score(&x[i * d..(i + 1) * d]).unwrap()).collect::<Vec<_>>()
    );
    // batch and row by row agree (to the batched kernel's rounding)
    let all = m.probabilities(&x).unwrap();
    let single: Vec<f64> = (0..n).flat_map(|i| m.probabilities(&x[i * d..(i + 1) * d]).unwrap()).collect();
    assert!(all.iter().zip(&single).all(|(a, b)| (a - b).abs() < 1e-6), "{all:?} vs {single:?}");
    // temper 0: the plain calibrated softmax, whatever the distance
    let flat = load(model_bytes(|m, _| m["ood"]["reference"]["temper"] = json!(0.0))).unwrap();
    assert_eq!(flat.probabilities(&x).unwrap(), softmax_rows_t(&logits, 3, 1.5));
    // the growth is bounded: no NaN for a row infinitely far
    let r = m.reference().unwrap();
    assert_eq!(r.temper_factor(1e300, 2.0), MAX_TEMPER_FACTOR);
    assert_eq!(r.temper_factor(f64::NAN, 2.0), 1.0);
}

#[test]
fn adapt_moves_the_reference_to_the_new_room() {
    let dir = std::env::temp_dir().join(format!("serlaq-ood-adapt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = load(model_bytes(|_, _| {})).unwrap();
    let paths = common::tone_clips(&dir, 6);
    let opts = AdaptOptions { min_clips: 5, min_speech_seconds: 5.0, balance: false, ..AdaptOptions::default() };
    let out = adapt(&model, &paths, &opts).unwrap();
    let adapted = load(out.bytes.clone()).unwrap();
    let meta: Value = serde_json::from_str(adapted.metadata_json()).unwrap();
    assert_eq!(meta["provenance"]["adaptations"][0]["adapted"], json!(["normalization", "ood_reference"]));
    let (old, new) = (model.reference().unwrap(), adapted.reference().unwrap());
    assert_ne!(old.mean(), new.mean());
    assert_eq!((new.rank(), new.temper(), new.tensor_names()), (old.rank(), old.temper(), old.tensor_names()));
    // the clips' mean square distance from the refitted reference is 1 (no direction floored)
    let d2: f64 =
        paths.iter().map(|p| adapted.ood_score(&adapted.features_file(p).unwrap()).unwrap().powi(2)).sum::<f64>()
            / paths.len() as f64;
    assert!((d2 - 1.0).abs() < 1e-3, "mean square distance {d2}");
    assert!((out.ood_after - adapted.ood_score(&adapted.features_file(&paths[0]).unwrap()).unwrap()).abs() < 2.0);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_floor_stops_the_softening_at_m_times_chance_and_never_sharpens() {
    // 3 classes, m = 1.5: the growth stops where the top label keeps 0.5
    let floored = load(model_bytes(|m, _| m["ood"]["reference"]["floor"] = json!(1.5))).unwrap();
    let plain = load(model_bytes(|_, _| {})).unwrap();
    assert_eq!(floored.reference().unwrap().floor(), 1.5);
    let n = 12;
    let x = rows(&floored, n);
    let d = floored.input_dim();
    let z = serlaq_core::model::standardize(&x, floored.normalization().0, floored.normalization().1);
    let (_, logits) = floored.forward_hidden(z, n).unwrap();
    let (pf, pp) = (floored.probabilities(&x).unwrap(), plain.probabilities(&x).unwrap());
    let top = |p: &[f64]| p.iter().cloned().fold(0.0, f64::max);
    let argmax = |p: &[f64]| (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
    let (mut stopped, mut kept) = (0, 0);
    for i in 0..n {
        let (f, p) = (&pf[i * 3..(i + 1) * 3], &pp[i * 3..(i + 1) * 3]);
        let calibrated = softmax_rows_t(&logits[i * 3..(i + 1) * 3], 3, 1.5);
        assert_eq!(argmax(f), argmax(p), "row {i}: the floor changed the label");
        if top(p) >= 0.5 || top(&calibrated) <= 0.5 {
            // the growth kept the top label above the floor, or the calibration alone is below it
            let want = if top(p) >= 0.5 { p.to_vec() } else { calibrated.clone() };
            assert!(f.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12), "row {i}: {f:?} vs {want:?}");
            kept += 1;
        } else {
            // softened below the floor: stopped there, never sharper than the calibration
            assert!((top(f) - 0.5).abs() < 1e-9 && top(f) <= top(&calibrated), "row {i}: {f:?} {calibrated:?}");
            stopped += 1;
        }
        let one = floored.probabilities(&x[i * d..(i + 1) * d]).unwrap();
        assert!(one.iter().zip(f).all(|(a, b)| (a - b).abs() < 1e-6), "row {i}: batch and row differ");
    }
    assert!(stopped > 0 && kept > 0, "the rows must fall on both sides of the floor: {stopped} {kept}");
    // bounded for any distance, and the same temperature as the plain growth below the floor
    let r = floored.reference().unwrap();
    let t = r.floored_temperature(&[5.0, 0.0, 0.0], 1.0, 1e300, 2.0);
    assert!(t.is_finite() && t > 1.0 && t < MAX_TEMPER_FACTOR, "{t}");
    assert_eq!(r.floored_temperature(&[5.0, 0.0, 0.0], 1.0, 1.0, 2.0), 1.0);
}
