//! Native model: forward against a plain dequantized float64 MLP, every metadata error
//! kind, input errors, and a soak of mutated files (load -> forward never panics).

mod common;

use common::wav_bytes;
use serde_json::{json, Value};
use serlaq_core::features::FeatureSpec;
use serlaq_core::format::{
    checksum, encode, LaqFile, LayerInput, OwnedLayer, OwnedTensor, Quantizer, ReadOptions, TensorInput,
};
use serlaq_core::model::{Model, ModelError, MAX_NORM_MEAN, MIN_NORM_STD};

/// Packed forward (float32 GEMM kernels) against float64 dequantized dot products,
/// relative to the largest logit of the row. Measured 6e-6 (float32 sums of 130-term
/// dot products through three layers); the bound leaves room for other kernels.
const FORWARD_REL: f64 = 1e-4;

/// A model as the writer takes it, so a test can change any part before encoding it.
struct Net {
    meta: Value,
    layers: Vec<OwnedLayer>,
    tensors: Vec<OwnedTensor>,
}

fn lcg(state: &mut u64) -> u64 {
    *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *state >> 33
}

fn small_features() -> Value {
    json!({"sample_rate": 8000, "n_fft": 256, "hop_length": 128, "n_mels": 24, "n_mfcc": 10, "n_chroma": 12,
           "stats": ["mean", "std"], "delta_stats": ["std"], "mel_scale": "db"})
}

fn net() -> Net {
    let spec = FeatureSpec::from_json_value(&small_features()).unwrap();
    let d = spec.dim();
    let dims = [d, 16, 8, 3];
    let mut st = 7u64;
    let mut layers = Vec::new();
    for i in 0..3 {
        let (rows, cols) = (dims[i + 1], dims[i]);
        let bits = [4u32, 2, 8][i];
        let codes: Vec<u8> = (0..rows * cols).map(|_| (lcg(&mut st) % (1 << bits)) as u8).collect();
        let per_row = i != 1;
        let k = if per_row { rows } else { 1 };
        let scale: Vec<f32> = (0..k).map(|_| 0.01 + (lcg(&mut st) % 100) as f32 / 1000.0).collect();
        let zero = vec![((1u32 << bits) / 2) as f32; k];
        let bias = (i != 2).then(|| (0..rows).map(|_| (lcg(&mut st) % 100) as f32 / 100.0 - 0.5).collect());
        let name = format!("net.{i}");
        layers.push(OwnedLayer { name, rows, cols, bits, quantizer: Quantizer::Affine, codes, scale, zero, bias });
    }
    let mean: Vec<f32> = (0..d).map(|i| (i % 7) as f32 - 3.0).collect();
    let std: Vec<f32> = (0..d).map(|i| 0.5 + (i % 5) as f32).collect();
    let meta = json!({
        "labels": ["angry", "happy", "sad"],
        "features": small_features(),
        "architecture": {"type": "mlp", "input_dim": d, "hidden": [16, 8], "num_classes": 3, "activation": "relu"},
        "normalization": {"mean": "norm.mean", "std": "norm.std"},
        "serlaq_version": "test",
    });
    let tensor = |name: &str, data: Vec<f32>| OwnedTensor { name: name.into(), shape: vec![d], data };
    Net { meta, layers, tensors: vec![tensor("norm.mean", mean), tensor("norm.std", std)] }
}

impl Net {
    fn bytes(&self) -> Vec<u8> {
        let layers: Vec<LayerInput> = self.layers.iter().map(OwnedLayer::input).collect();
        let tensors: Vec<TensorInput> = self.tensors.iter().map(OwnedTensor::input).collect();
        encode(&self.meta.to_string(), &layers, &tensors).expect("valid file")
    }
    fn model(&self) -> Result<Model, ModelError> {
        Model::from_laq(LaqFile::from_bytes(self.bytes()).expect("valid format"))
    }
    /// Plain float64 MLP on the dequantized weights.
    fn forward_ref(&self, x: &[f32]) -> Vec<f64> {
        let (mean, std) = (&self.tensors[0].data, &self.tensors[1].data);
        let mut h: Vec<f64> = x.iter().zip(mean).zip(std).map(|((&v, &m), &s)| f64::from((v - m) / s)).collect();
        for (i, OwnedLayer { rows, cols, codes, scale, zero, bias, .. }) in self.layers.iter().enumerate() {
            let mut y = vec![0f64; *rows];
            for r in 0..*rows {
                let k = if scale.len() == 1 { 0 } else { r };
                let w = |c: usize| f64::from(scale[k]) * (f64::from(codes[r * cols + c]) - f64::from(zero[k]));
                y[r] = (0..*cols).map(|c| w(c) * h[c]).sum::<f64>() + bias.as_ref().map_or(0.0, |b| f64::from(b[r]));
                if i + 1 < self.layers.len() {
                    y[r] = y[r].max(0.0);
                }
            }
            h = y;
        }
        h
    }
}

fn features_input(d: usize, rows: usize) -> Vec<f32> {
    let mut st = 99u64;
    (0..d * rows).map(|_| (lcg(&mut st) % 2000) as f32 / 100.0 - 10.0).collect()
}

#[test]
fn forward_matches_dequantized_reference() {
    let n = net();
    let m = n.model().unwrap();
    let d = m.input_dim();
    assert_eq!(m.labels(), ["angry", "happy", "sad"]);
    assert_eq!(m.hidden(), [16, 8]);
    let x = features_input(d, 5);
    let logits = m.forward(&x).unwrap();
    assert_eq!(logits.len(), 5 * 3);
    let mut worst = 0f64;
    for (row, got) in x.chunks_exact(d).zip(logits.chunks_exact(3)) {
        let want = n.forward_ref(row);
        let scale = want.iter().fold(1e-6f64, |a, v| a.max(v.abs()));
        for (g, w) in got.iter().zip(&want) {
            worst = worst.max((f64::from(*g) - w).abs() / scale);
        }
    }
    eprintln!("forward vs reference: worst relative error {worst:.2e}");
    assert!(worst < FORWARD_REL, "{worst}");
    let p = m.probabilities(&x).unwrap();
    for row in p.chunks_exact(3) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }
    // one row alone gives that row's logits (batch and single-row kernels differ in
    // summation order only)
    for (a, b) in m.forward(&x[d..2 * d]).unwrap().iter().zip(&logits[3..6]) {
        assert!((a - b).abs() <= FORWARD_REL as f32 * b.abs().max(1.0), "{a} {b}");
    }
}

#[test]
fn wave_path_is_features_then_forward() {
    let m = net().model().unwrap();
    let wave: Vec<f32> = (0..4000).map(|i| (i as f32 * 0.05).sin() * 0.3 + ((i * 7919) % 13) as f32 * 0.001).collect();
    let f = m.features_wave(&wave).unwrap();
    assert_eq!(f, m.plan().extract(&wave).unwrap());
    assert_eq!(m.predict_wave(&wave).unwrap(), m.probabilities(&f).unwrap());
    // scratch reuse across calls changes nothing
    assert_eq!(m.features_wave(&wave[..1000]).unwrap(), m.plan().extract(&wave[..1000]).unwrap());
    assert!(matches!(m.features_wave(&[0.0; 10]), Err(ModelError::Features(_))));
}

#[test]
fn input_errors() {
    let m = net().model().unwrap();
    let d = m.input_dim();
    assert_eq!(m.forward(&vec![0.0; d + 1]), Err(ModelError::InputShape { values: d + 1, dim: d }));
    assert_eq!(m.forward(&[]), Err(ModelError::InputShape { values: 0, dim: d }));
    let mut x = features_input(d, 2);
    x[d + 3] = f32::NAN;
    let e = m.forward(&x).unwrap_err();
    assert_eq!(e, ModelError::NonFiniteInput { row: 1, col: 3 });
    assert_eq!(e.to_string(), "features: value at row 1, column 3 is NaN or infinite");
}

type Edit = Box<dyn Fn(&mut Net)>;

fn meta_edit(f: impl Fn(&mut Value) + 'static) -> Edit {
    Box::new(move |n: &mut Net| f(&mut n.meta))
}

/// One edit per metadata `ModelError` variant (ALL_KINDS: a new variant adds a row).
#[test]
fn every_metadata_error_kind() {
    let cases: Vec<(Edit, &str)> = vec![
        (meta_edit(|m| drop(m.as_object_mut().unwrap().remove("labels"))), "metadata field 'labels' is missing"),
        (meta_edit(|m| m["labels"] = json!("angry")), "metadata field 'labels' must be a list, got a string"),
        (meta_edit(|m| m["labels"] = json!([])), "metadata field 'labels' must be a non-empty list"),
        (meta_edit(|m| m["labels"][1] = json!("")), "metadata field 'labels' has an empty string at index 1"),
        (meta_edit(|m| m["labels"][2] = json!("angry")), "metadata field 'labels' has duplicate label \"angry\""),
        (meta_edit(|m| m["architecture"]["type"] = json!("cnn")), "metadata field 'architecture.type' is \"cnn\""),
        (meta_edit(|m| m["architecture"]["activation"] = json!("gelu")), "'architecture.activation' is \"gelu\""),
        (
            meta_edit(|m| m["architecture"]["hidden"] = json!([16, 0])),
            "'architecture.hidden' must be a list of positive",
        ),
        (meta_edit(|m| m["architecture"]["input_dim"] = json!(180)), "'architecture.input_dim' is 180 but the feature"),
        (meta_edit(|m| m["architecture"]["num_classes"] = json!(4)), "'architecture.num_classes' is 4 but there are 3"),
        (meta_edit(|m| m["architecture"]["hidden"] = json!([16])), "architecture has 2 layers but the file stores 3"),
        (
            meta_edit(|m| m["architecture"]["hidden"] = json!([16, 9])),
            "layer 1 (net.1) has shape 8x16, the architecture says 9x16",
        ),
        (
            meta_edit(|m| m["normalization"]["std"] = json!("norm.x")),
            "'normalization.std' names tensor \"norm.x\", which",
        ),
        (
            Box::new(|n: &mut Net| {
                n.tensors[0].data.push(0.0);
                n.tensors[0].shape = vec![n.tensors[0].data.len()];
            }),
            "metadata field 'normalization.mean' tensor \"norm.mean\" has",
        ),
        (Box::new(|n: &mut Net| n.tensors[1].data[3] = 0.0), "'normalization.std' must be strictly positive (value 3"),
        (
            Box::new(|n: &mut Net| n.tensors[1].data[3] = 1e-45),
            "metadata field 'normalization.std' value 3 is 1e-45, outside 1e-20..=1e12",
        ),
        (meta_edit(|m| m["features"]["n_fft"] = json!(1u64 << 30)), "metadata features.n_fft: 1073741824 is outside"),
    ];
    let mut kinds = std::collections::HashSet::new();
    for (edit, want) in cases {
        let mut n = net();
        edit(&mut n);
        let e = n.model().unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(want), "got {msg:?}, want {want:?}");
        assert!(!msg.contains('\n'));
        kinds.insert(std::mem::discriminant(&e));
    }
    // non-finite tensors cannot be written: build the file, then patch the bytes. Today
    // the format reader refuses them first; the model keeps its own check in case the
    // reader's rules change.
    let mut n = net();
    n.tensors[0].data[0] = 1234.5;
    let mut bytes = n.bytes();
    let needle = 1234.5f32.to_le_bytes();
    let at = bytes.windows(4).position(|w| w == needle).unwrap();
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let crc = checksum(&bytes);
    bytes[24..28].copy_from_slice(&crc.to_le_bytes());
    match LaqFile::from_bytes(bytes) {
        Err(e) => assert!(e.to_string().contains("not finite"), "{e}"),
        Ok(f) => {
            let e = Model::from_laq(f).unwrap_err();
            assert_eq!(
                e.to_string(),
                "metadata field 'normalization.mean' tensor \"norm.mean\" holds non-finite values"
            );
            kinds.insert(std::mem::discriminant(&e));
        }
    }
    // wrong JSON type of a nested field
    let mut n = net();
    n.meta["architecture"]["input_dim"] = json!(true);
    let e = n.model().unwrap_err();
    assert!(e.to_string().contains("'architecture.input_dim' must be a non-negative integer, got a boolean"), "{e}");
    kinds.insert(std::mem::discriminant(&e));
    assert!(kinds.len() >= 17, "every reachable metadata variant raised ({})", kinds.len());
}

/// A std at the smallest the loader takes ([`MIN_NORM_STD`]) beside the largest |mean|
/// still predicts (the standardized features stay finite in float32); a denormal std
/// (what a file with a valid CRC could hold) is refused at load, not at every prediction.
#[test]
fn smallest_std_loads_and_predicts_a_denormal_is_refused() {
    let mut n = net();
    n.tensors[1].data[3] = MIN_NORM_STD;
    n.tensors[0].data[3] = -MAX_NORM_MEAN;
    let m = n.model().unwrap();
    let x = features_input(m.input_dim(), 1);
    let (p, ood) = m.predict_features(&x).unwrap();
    assert!(p.iter().all(|v| v.is_finite()) && ood.is_finite(), "{p:?} {ood}");
    let mut n = net();
    n.tensors[1].data[3] = f32::from_bits(1); // the smallest denormal, 1.4e-45
    let e = n.model().unwrap_err();
    assert!(matches!(e, ModelError::NormOutOfRange { key: "std", index: 3, .. }), "{e}");
}

#[test]
fn model_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Model>();
}

/// Mutated files (bytes with the checksum repaired, and JSON-level edits of the
/// metadata): loading gives an error or a model whose forward works. The cargo-fuzz
/// target `laq_model` runs the same invariant coverage-guided.
#[test]
fn soak_mutated_files_never_panic() {
    let base = net();
    let valid = base.bytes();
    let mut st = 2024u64;
    let mut loaded = 0;
    for _ in 0..400 {
        let mut b = valid.clone();
        for _ in 0..1 + lcg(&mut st) % 4 {
            let i = (lcg(&mut st) as usize) % b.len();
            b[i] = lcg(&mut st) as u8;
        }
        let crc = checksum(&b);
        if b.len() >= 28 {
            b[24..28].copy_from_slice(&crc.to_le_bytes());
        }
        if let Ok(f) = LaqFile::from_bytes_with(b, ReadOptions { verify_checksum: false }) {
            loaded += exercise(f, &mut st) as usize;
        }
    }
    let junk = [json!(null), json!(-1), json!(0), json!(1u64 << 40), json!(1e300), json!("x"), json!([]), json!({})];
    let keys = ["labels", "features", "architecture", "normalization"];
    for _ in 0..300 {
        let mut n = net();
        let key = keys[(lcg(&mut st) % 4) as usize];
        let v = junk[(lcg(&mut st) % junk.len() as u64) as usize].clone();
        match n.meta[key].as_object_mut() {
            Some(o) if lcg(&mut st).is_multiple_of(2) && !o.is_empty() => {
                let k = o.keys().nth((lcg(&mut st) as usize) % o.len()).unwrap().clone();
                o.insert(k, v);
            }
            _ => n.meta[key] = v,
        }
        if let Ok(f) = LaqFile::from_bytes(n.bytes()) {
            loaded += exercise(f, &mut st) as usize;
        }
    }
    assert!(loaded > 0, "some mutations keep a valid model");
}

fn exercise(f: LaqFile, st: &mut u64) -> bool {
    let Ok(m) = Model::from_laq(f) else { return false };
    let x: Vec<f32> = (0..m.input_dim()).map(|_| (lcg(st) % 100) as f32 - 50.0).collect();
    let p = m.probabilities(&x).expect("a loaded model runs");
    assert_eq!(p.len(), m.num_classes());
    true
}

#[test]
#[cfg_attr(target_family = "wasm", ignore = "needs std::env::temp_dir, which wasm32 targets lack")]
fn files_one_by_one_and_in_a_batch() {
    let m = net().model().unwrap();
    let dir = std::env::temp_dir().join(format!("serlaq-model-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tone: Vec<f32> = (0..12000).map(|i| 0.3 * (i as f32 * 0.07).sin() + 0.01 * ((i * 31) % 7) as f32).collect();
    let good = dir.join("good.wav");
    std::fs::write(&good, wav_bytes(16000, &tone)).unwrap(); // resampled to the model's 8 kHz
    let junk = dir.join("junk.wav");
    std::fs::write(&junk, b"RIFF....not audio").unwrap();
    let missing = dir.join("missing.wav");

    let wave = serlaq_core::audio::load(&good, 8000, m.spec().min_samples()).unwrap();
    let want = m.predict_wave(&wave).unwrap();
    assert_eq!(m.features_file(&good).unwrap(), m.features_wave(&wave).unwrap());
    assert_eq!(m.predict_file(&good).unwrap(), want);
    let e = m.predict_file(&missing).unwrap_err();
    assert!(matches!(e, ModelError::Audio(_)) && e.to_string().contains("missing.wav"), "{e}");

    let paths = vec![good.clone(), junk.clone(), missing.clone(), good.clone()];
    for threads in [1, 2] {
        let out = m.predict_files(&paths, threads);
        assert_eq!(out.len(), 4);
        let ood = m.ood_score(&m.features_wave(&wave).unwrap()).unwrap();
        assert_eq!(out[0].as_ref().unwrap(), &(want.clone(), ood));
        assert_eq!(out[3].as_ref().unwrap(), &(want.clone(), ood));
        for (i, name) in [(1, "junk.wav"), (2, "missing.wav")] {
            let msg = out[i].as_ref().unwrap_err();
            assert!(msg.contains(name) && !msg.contains('\n'), "{msg}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
