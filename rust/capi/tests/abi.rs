//! The C entry points called as C calls them: results against `serlaq-core` run directly
//! (same probabilities, same windows), and every bad input (NULL, zero length, corrupt
//! model, bad audio, stream misuse) giving its code and a one-line last error.

use serde_json::json;
use serlaq::abi::{serlaq_adapt_options, serlaq_segment, serlaq_stream_options};
use serlaq::error::{ERR_ARGUMENT, ERR_AUDIO, ERR_MODEL, ERR_STREAM, ERR_TOO_LITTLE, OK};
use serlaq::ffi::*;
use serlaq_core::audio::{self, Layout};
use serlaq_core::features::FeatureSpec;
use serlaq_core::format::{encode, LaqFile, LayerInput, Quantizer, TensorInput};
use serlaq_core::model::Model;
use serlaq_core::segments::{RunningNorm, SegmentOptions, Segmenter, DEFAULT_HORIZON, DEFAULT_PRIOR};
use std::ffi::{CStr, CString};
use std::path::PathBuf;
use std::ptr::{null, null_mut};

fn lcg(state: &mut u64) -> u64 {
    *state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *state >> 33
}

const LABELS: [&str; 3] = ["angry", "happy", "sad"];

/// A valid model (d -> 16 -> 3) on a small 8 kHz feature spec.
fn laq_bytes() -> Vec<u8> {
    let features = json!({"sample_rate": 8000, "n_fft": 256, "hop_length": 128, "n_mels": 24, "n_mfcc": 10,
                          "n_chroma": 12, "stats": ["mean", "std"], "mel_scale": "db"});
    let d = FeatureSpec::from_json_value(&features).unwrap().dim();
    let mut st = 5u64;
    let c0: Vec<u8> = (0..16 * d).map(|_| (lcg(&mut st) % 16) as u8).collect();
    let c1: Vec<u8> = (0..3 * 16).map(|_| (lcg(&mut st) % 256) as u8).collect();
    let s0: Vec<f32> = (0..16).map(|_| 0.004 + (lcg(&mut st) % 100) as f32 / 5000.0).collect();
    let bias: Vec<f32> = (0..16).map(|_| (lcg(&mut st) % 100) as f32 / 50.0).collect();
    let layers = [
        LayerInput {
            name: "net.0",
            rows: 16,
            cols: d,
            bits: 4,
            quantizer: Quantizer::Affine,
            codes: &c0,
            scale: &s0,
            zero: &[8.0; 16],
            bias: Some(&bias),
        },
        LayerInput {
            name: "net.3",
            rows: 3,
            cols: 16,
            bits: 8,
            quantizer: Quantizer::Affine,
            codes: &c1,
            scale: &[0.01],
            zero: &[128.0],
            bias: None,
        },
    ];
    let mean: Vec<f32> = (0..d).map(|i| if i < 10 { -20.0 } else { 0.1 }).collect();
    let std: Vec<f32> = (0..d).map(|i| if i < 10 { 10.0 } else { 0.5 }).collect();
    let meta = json!({"labels": LABELS, "features": features,
        "architecture": {"type": "mlp", "input_dim": d, "hidden": [16], "num_classes": 3, "activation": "relu"},
        "normalization": {"mean": "norm.mean", "std": "norm.std"}});
    let tensors = [
        TensorInput { name: "norm.mean", shape: &[d], data: &mean },
        TensorInput { name: "norm.std", shape: &[d], data: &std },
    ];
    encode(&meta.to_string(), &layers, &tensors).unwrap()
}

fn tone(rate: u32, seconds: f32, f: f32, amp: f32) -> Vec<f32> {
    let mut st = 3u64;
    (0..(rate as f32 * seconds) as usize)
        .map(|i| {
            let noise = (lcg(&mut st) % 2000) as f32 / 1000.0 - 1.0;
            amp * (std::f32::consts::TAU * f * i as f32 / rate as f32).sin() + 0.05 * noise
        })
        .collect()
}

fn wav(rate: u32, samples: &[f32]) -> Vec<u8> {
    let data: Vec<u8> =
        samples.iter().flat_map(|&v| ((v.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes()).collect();
    let mut b = b"RIFF".to_vec();
    b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    for v in [16u32.to_le_bytes().to_vec(), 1u16.to_le_bytes().to_vec(), 1u16.to_le_bytes().to_vec()] {
        b.extend_from_slice(&v);
    }
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&(rate * 2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&data);
    b
}

fn tmp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("serlaq-capi-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn cstr(p: &std::path::Path) -> CString {
    CString::new(p.to_str().unwrap()).unwrap()
}

fn last() -> String {
    unsafe { CStr::from_ptr(serlaq_last_error()) }.to_str().unwrap().to_string()
}

/// The call failed with `code` and a one-line message holding `needle`.
fn failed(got: i32, code: i32, needle: &str) {
    let msg = last();
    assert_eq!(got, code, "code for {needle:?} (last error: {msg})");
    assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    assert!(!msg.contains('\n') && !msg.is_empty());
}

struct M(*mut serlaq_model);
impl Drop for M {
    fn drop(&mut self) {
        unsafe { serlaq_model_free(self.0) }
    }
}

fn open_model() -> M {
    let bytes = laq_bytes();
    let m = unsafe { serlaq_model_from_bytes(bytes.as_ptr(), bytes.len()) };
    assert!(!m.is_null(), "{}", last());
    M(m)
}

fn core_model() -> Model {
    Model::from_laq(LaqFile::from_bytes(laq_bytes()).unwrap()).unwrap()
}

fn f32s(p: &[f64]) -> Vec<f32> {
    p.iter().map(|&v| v as f32).collect()
}

#[test]
fn labels_and_rate() {
    let m = open_model();
    unsafe {
        assert_eq!(serlaq_model_num_labels(m.0), 3);
        for (i, l) in LABELS.iter().enumerate() {
            assert_eq!(CStr::from_ptr(serlaq_model_label(m.0, i)).to_str().unwrap(), *l);
        }
        assert!(serlaq_model_label(m.0, 3).is_null());
        assert!(last().contains("label index 3 is out of range (the model has 3 labels)"), "{}", last());
        assert_eq!(serlaq_model_sample_rate(m.0), 8000);
        assert_eq!(CStr::from_ptr(serlaq_version()).to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}

#[test]
fn file_bytes_and_pcm_give_the_core_probabilities() {
    let m = open_model();
    let core = core_model();
    let x = tone(16000, 1.5, 440.0, 0.4);
    let bytes = wav(16000, &x);
    let path = tmp("clip.wav", &bytes);
    let want = f32s(&core.predict_file(&path).unwrap());
    let mut p = [0f32; 3];
    unsafe {
        assert_eq!(serlaq_predict_file(m.0, cstr(&path).as_ptr(), p.as_mut_ptr()), OK, "{}", last());
        assert_eq!(p.to_vec(), want);
        p = [0.0; 3];
        assert_eq!(serlaq_predict_bytes(m.0, bytes.as_ptr(), bytes.len(), p.as_mut_ptr()), OK, "{}", last());
        assert_eq!(p.to_vec(), want);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        // PCM: the core's prepare (resample 16 kHz -> 8 kHz) then the model
        let spec = core.spec();
        let w = audio::prepare(&x, 1, Layout::Planar, 16000, spec.sample_rate, spec.min_samples(), "t").unwrap();
        let want_pcm = f32s(&core.predict_wave(&w).unwrap());
        assert_eq!(serlaq_predict_pcm(m.0, x.as_ptr(), x.len(), 16000, p.as_mut_ptr()), OK, "{}", last());
        assert_eq!(p.to_vec(), want_pcm);

        // the `_ood` forms: the same probabilities and the core's out-of-domain score
        assert_eq!(serlaq_model_ood_threshold(m.0), core.ood_threshold());
        assert_eq!(serlaq_model_ood_threshold(null()), 0.0);
        let want_ood = core.ood_score(&core.features_file(&path).unwrap()).unwrap();
        let want_ood_pcm = core.ood_score(&core.features_wave(&w).unwrap()).unwrap();
        let mut ood = -1.0f64;
        p = [0.0; 3];
        assert_eq!(serlaq_predict_file_ood(m.0, cstr(&path).as_ptr(), p.as_mut_ptr(), &mut ood), OK, "{}", last());
        assert_eq!((p.to_vec(), ood), (want.clone(), want_ood));
        ood = -1.0;
        assert_eq!(serlaq_predict_bytes_ood(m.0, bytes.as_ptr(), bytes.len(), p.as_mut_ptr(), &mut ood), OK);
        assert_eq!((p.to_vec(), ood), (want.clone(), want_ood));
        ood = -1.0;
        assert_eq!(serlaq_predict_pcm_ood(m.0, x.as_ptr(), x.len(), 16000, p.as_mut_ptr(), &mut ood), OK);
        assert_eq!((p.to_vec(), ood), (want_pcm.clone(), want_ood_pcm));
        assert!(want_ood > 0.0 && want_ood.is_finite());
        // NULL: not wanted; a failed call leaves it untouched
        assert_eq!(serlaq_predict_file_ood(m.0, cstr(&path).as_ptr(), p.as_mut_ptr(), null_mut()), OK);
        ood = -1.0;
        failed(serlaq_predict_bytes_ood(m.0, bytes.as_ptr(), 10, p.as_mut_ptr(), &mut ood), ERR_AUDIO, "<bytes>");
        assert_eq!(ood, -1.0);
    }
}

/// The name `general` opens the general model built into the library, as every other face
/// resolves it; `./general` is a path (here: no such file).
#[test]
fn general_opens_by_name() {
    unsafe {
        let m = serlaq_model_open(c"general".as_ptr());
        match serlaq_core::general::general_model_bytes() {
            Some(shipped) => {
                assert!(!m.is_null(), "{}", last());
                let m = M(m);
                let saved = tmp("general-copy.laq", b"");
                assert_eq!(serlaq_model_save(m.0, cstr(&saved).as_ptr()), OK, "{}", last());
                assert_eq!(std::fs::read(&saved).unwrap(), shipped);
                assert!(serlaq_model_num_labels(m.0) >= 2);
            }
            None => {
                assert!(m.is_null());
                failed(ERR_MODEL, ERR_MODEL, "ships no general model");
            }
        }
        assert!(serlaq_model_open(c"./general".as_ptr()).is_null());
        failed(ERR_MODEL, ERR_MODEL, "./general");
    }
}

#[test]
fn bad_models_are_errors() {
    unsafe {
        assert!(serlaq_model_open(null()).is_null());
        failed(ERR_ARGUMENT, ERR_ARGUMENT, "path is NULL");
        assert!(serlaq_model_open(c"".as_ptr()).is_null());
        failed(ERR_ARGUMENT, ERR_ARGUMENT, "path is empty");
        let missing = std::env::temp_dir().join("serlaq-capi-no-such-model.laq");
        assert!(serlaq_model_open(cstr(&missing).as_ptr()).is_null());
        failed(ERR_MODEL, ERR_MODEL, "serlaq-capi-no-such-model.laq");
        let junk = tmp("junk.laq", b"RIFF this is not a model at all, just bytes........");
        assert!(serlaq_model_open(cstr(&junk).as_ptr()).is_null());
        failed(ERR_MODEL, ERR_MODEL, "junk.laq: not a .laq file");
        assert!(serlaq_model_from_bytes(null(), 10).is_null());
        failed(ERR_ARGUMENT, ERR_ARGUMENT, "data is NULL");
        let b = laq_bytes();
        assert!(serlaq_model_from_bytes(b.as_ptr(), 0).is_null());
        failed(ERR_ARGUMENT, ERR_ARGUMENT, "data: length is 0");
        let mut t = b.clone();
        t.truncate(b.len() / 2);
        assert!(serlaq_model_from_bytes(t.as_ptr(), t.len()).is_null());
        failed(ERR_MODEL, ERR_MODEL, "<bytes>: ");
        let mut flipped = b.clone();
        let n = flipped.len();
        flipped[n - 9] ^= 0x55;
        assert!(serlaq_model_from_bytes(flipped.as_ptr(), n).is_null());
        failed(ERR_MODEL, ERR_MODEL, "<bytes>: ");
        // a denormal std with a valid CRC: refused at load, naming the field (it used to
        // load, then fail every prediction with "features: ... NaN or infinite")
        let mut tiny = b.clone();
        let std_head: Vec<u8> =
            [[10.0f32; 10].as_slice(), &[0.5]].concat().iter().flat_map(|v| v.to_le_bytes()).collect();
        let at = tiny.windows(std_head.len()).position(|w| w == std_head).unwrap() + 40;
        tiny[at..at + 4].copy_from_slice(&1e-45f32.to_le_bytes());
        let crc = serlaq_core::format::checksum(&tiny);
        tiny[24..28].copy_from_slice(&crc.to_le_bytes());
        assert!(serlaq_model_from_bytes(tiny.as_ptr(), tiny.len()).is_null());
        failed(ERR_MODEL, ERR_MODEL, "'normalization.std' value 10 is 1e-45, outside 1e-20..=1e12");
        // NULL handles
        assert_eq!(serlaq_model_num_labels(null()), 0);
        failed(ERR_ARGUMENT, ERR_ARGUMENT, "model is NULL");
        assert!(serlaq_model_label(null(), 0).is_null());
        assert_eq!(serlaq_model_sample_rate(null()), 0);
        serlaq_model_free(null_mut());
        serlaq_stream_free(null_mut());
    }
}

#[test]
fn bad_audio_and_arguments_are_errors() {
    let m = open_model();
    let mut p = [7f32; 3];
    let x = tone(8000, 1.0, 300.0, 0.3);
    unsafe {
        let good = tmp("good.wav", &wav(8000, &x));
        failed(serlaq_predict_file(null(), cstr(&good).as_ptr(), p.as_mut_ptr()), ERR_ARGUMENT, "model is NULL");
        failed(serlaq_predict_file(m.0, null(), p.as_mut_ptr()), ERR_ARGUMENT, "path is NULL");
        failed(serlaq_predict_file(m.0, cstr(&good).as_ptr(), null_mut()), ERR_ARGUMENT, "probs is NULL");
        let text = tmp("notes.wav", b"hello, this is text and not audio at all");
        failed(serlaq_predict_file(m.0, cstr(&text).as_ptr(), p.as_mut_ptr()), ERR_AUDIO, "notes.wav");
        let missing = std::env::temp_dir().join("serlaq-capi-missing.wav");
        failed(serlaq_predict_file(m.0, cstr(&missing).as_ptr(), p.as_mut_ptr()), ERR_AUDIO, "serlaq-capi-missing.wav");
        let w = wav(8000, &x);
        let cut = &w[..60];
        failed(serlaq_predict_bytes(m.0, cut.as_ptr(), cut.len(), p.as_mut_ptr()), ERR_AUDIO, "<bytes>");
        failed(serlaq_predict_bytes(m.0, w.as_ptr(), 0, p.as_mut_ptr()), ERR_ARGUMENT, "data: length is 0");
        failed(serlaq_predict_pcm(m.0, x.as_ptr(), 0, 8000, p.as_mut_ptr()), ERR_ARGUMENT, "samples: length is 0");
        failed(serlaq_predict_pcm(m.0, null(), 10, 8000, p.as_mut_ptr()), ERR_ARGUMENT, "samples is NULL");
        failed(serlaq_predict_pcm(m.0, x.as_ptr(), x.len(), 0, p.as_mut_ptr()), ERR_AUDIO, "<pcm>");
        failed(serlaq_predict_pcm(m.0, x.as_ptr(), x.len(), 500_000, p.as_mut_ptr()), ERR_AUDIO, "<pcm>");
        failed(serlaq_predict_pcm(m.0, x.as_ptr(), 10, 8000, p.as_mut_ptr()), ERR_AUDIO, "<pcm>");
        let mut nan = x.clone();
        nan[100] = f32::NAN;
        failed(serlaq_predict_pcm(m.0, nan.as_ptr(), nan.len(), 8000, p.as_mut_ptr()), ERR_AUDIO, "<pcm>");
        let silent = vec![0f32; 8000];
        failed(serlaq_predict_pcm(m.0, silent.as_ptr(), silent.len(), 8000, p.as_mut_ptr()), ERR_AUDIO, "<pcm>");
        // a misaligned float pointer is refused, not read
        let raw = [0u8; 64];
        let odd = raw.as_ptr().add(1) as *const f32;
        failed(serlaq_predict_pcm(m.0, odd, 8, 8000, p.as_mut_ptr()), ERR_ARGUMENT, "not aligned");
        failed(serlaq_predict_pcm(m.0, x.as_ptr(), usize::MAX, 8000, p.as_mut_ptr()), ERR_ARGUMENT, "too large");
        // the `_ood` forms: the same refusals, and a misaligned `ood` pointer is refused before any write
        let mut ood = -1.0f64;
        failed(
            serlaq_predict_file_ood(null(), cstr(&good).as_ptr(), p.as_mut_ptr(), &mut ood),
            ERR_ARGUMENT,
            "model is NULL",
        );
        failed(serlaq_predict_file_ood(m.0, cstr(&good).as_ptr(), null_mut(), &mut ood), ERR_ARGUMENT, "probs is NULL");
        failed(serlaq_predict_file_ood(m.0, cstr(&text).as_ptr(), p.as_mut_ptr(), &mut ood), ERR_AUDIO, "notes.wav");
        failed(
            serlaq_predict_pcm_ood(m.0, null(), 10, 8000, p.as_mut_ptr(), &mut ood),
            ERR_ARGUMENT,
            "samples is NULL",
        );
        failed(
            serlaq_predict_bytes_ood(m.0, w.as_ptr(), 0, p.as_mut_ptr(), &mut ood),
            ERR_ARGUMENT,
            "data: length is 0",
        );
        let mut doubles = [0f64; 4];
        let odd_ood = (doubles.as_mut_ptr() as *mut u8).add(1) as *mut f64;
        failed(
            serlaq_predict_pcm_ood(m.0, x.as_ptr(), x.len(), 8000, p.as_mut_ptr(), odd_ood),
            ERR_ARGUMENT,
            "ood is not aligned",
        );
        assert_eq!((ood, doubles), (-1.0, [0.0; 4]), "failed calls leave ood untouched");
    }
    assert_eq!(p, [7.0; 3], "failed calls leave probs untouched");
}

fn drain(s: *mut serlaq_stream, out: &mut Vec<(serlaq_segment, Vec<f32>)>) {
    drain_ood(s, &mut Vec::new(), out);
}

/// `serlaq_stream_next_ood` until empty: the windows and probabilities to `out`, the
/// out-of-domain scores to `ood`.
fn drain_ood(s: *mut serlaq_stream, ood: &mut Vec<f64>, out: &mut Vec<(serlaq_segment, Vec<f32>)>) {
    loop {
        let mut seg = serlaq_segment::default();
        let mut p = [0f32; 3];
        let mut o = -1.0f64;
        match unsafe { serlaq_stream_next_ood(s, &mut seg, p.as_mut_ptr(), &mut o) } {
            1 => {
                out.push((seg, p.to_vec()));
                ood.push(o);
            }
            0 => return,
            e => panic!("next: {e} {}", last()),
        }
    }
}

#[test]
fn stream_gives_the_core_segmenter_windows() {
    let m = open_model();
    let core = core_model();
    let rate = 11025;
    let mut x = tone(rate, 2.0, 250.0, 0.4);
    x.extend(vec![0.0; rate as usize * 2]); // a silent stretch: silence windows
    x.extend(tone(rate, 3.0, 900.0, 0.6));
    let opts = serlaq_stream_options { window: 1.0, hop: 0.5, ..serlaq_stream_default_options() };
    let mut seg = Segmenter::new(&core, rate, &opts.to_core(), "x").unwrap();
    let mut want = seg.push(&core, &x).unwrap();
    want.extend(seg.finish(&core).unwrap());
    assert!(want.iter().any(|s| !s.is_speech()) && want.iter().any(|s| s.is_speech()));

    let (mut got, mut ood) = (Vec::new(), Vec::new());
    unsafe {
        let s = serlaq_stream_new(m.0, rate, &opts);
        assert!(!s.is_null(), "{}", last());
        for chunk in x.chunks(777) {
            let k = serlaq_stream_push(s, chunk.as_ptr(), chunk.len());
            assert!(k >= 0, "{}", last());
            drain_ood(s, &mut ood, &mut got);
        }
        assert_eq!(serlaq_stream_push(s, x.as_ptr(), 0), 0, "an empty chunk is fine");
        assert!(serlaq_stream_flush(s) >= 0, "{}", last());
        drain_ood(s, &mut ood, &mut got);
        failed(serlaq_stream_push(s, x.as_ptr(), 10), ERR_STREAM, "push after finish");
        failed(serlaq_stream_flush(s), ERR_STREAM, "push after finish");
        serlaq_stream_free(s);
    }
    assert_eq!(got.len(), want.len());
    for (((g, gp), w), o) in got.iter().zip(&want).zip(&ood) {
        assert_eq!(*g, serlaq_segment::from_core(w));
        match &w.probabilities {
            Some(p) => assert_eq!((gp.clone(), *o), (f32s(p), w.ood.unwrap())),
            None => {
                assert_eq!((gp.clone(), g.label, g.confidence), (vec![0.0; 3], -1, 0.0));
                assert!(o.is_nan(), "silence has no out-of-domain score: {o}");
            }
        }
    }
}

#[test]
fn stream_running_norm_gives_the_core_windows() {
    let m = open_model();
    let core = core_model();
    let rate = 8000;
    // loud, then a quieter/darker room: the stream's statistics move the probabilities
    let mut x = tone(rate, 3.0, 250.0, 0.6);
    x.extend(tone(rate, 4.0, 700.0, 0.05));
    let base = serlaq_stream_options { window: 1.0, hop: 0.5, ..serlaq_stream_default_options() };
    let running = RunningNorm { prior: 2.0, horizon: 50.0, balance: true };
    let core_windows = |running: Option<RunningNorm>| {
        let mut seg = Segmenter::new(&core, rate, &SegmentOptions { running, ..base.to_core() }, "x").unwrap();
        let mut w = seg.push(&core, &x).unwrap();
        w.extend(seg.finish(&core).unwrap());
        w
    };
    let want = core_windows(Some(running));
    assert_ne!(want, core_windows(None), "the fixture's second room changes the windows");
    let mut got = Vec::new();
    unsafe {
        let s = serlaq_stream_new(m.0, rate, &base);
        assert_eq!(serlaq_stream_running_norm(s, running.prior, running.horizon, 1), OK, "{}", last());
        for chunk in x.chunks(1000) {
            assert!(serlaq_stream_push(s, chunk.as_ptr(), chunk.len()) >= 0, "{}", last());
            drain(s, &mut got); // the entry point without `ood`
        }
        assert!(serlaq_stream_flush(s) >= 0, "{}", last());
        drain(s, &mut got); // the entry point without `ood`
        serlaq_stream_free(s);
    }
    assert_eq!(got.len(), want.len());
    for ((g, gp), w) in got.iter().zip(&want) {
        assert_eq!(*g, serlaq_segment::from_core(w));
        if let Some(p) = &w.probabilities {
            assert_eq!(*gp, f32s(p));
        }
    }
}

#[test]
fn stream_running_norm_errors_and_header_defaults() {
    let m = open_model();
    let x = tone(8000, 0.5, 300.0, 0.3);
    unsafe {
        failed(serlaq_stream_running_norm(null_mut(), 20.0, 600.0, 1), ERR_ARGUMENT, "stream is NULL");
        let s = serlaq_stream_new(m.0, 8000, null());
        failed(serlaq_stream_running_norm(s, 0.5, 600.0, 1), ERR_ARGUMENT, "running_prior");
        failed(serlaq_stream_running_norm(s, 20.0, f64::NAN, 0), ERR_ARGUMENT, "running_horizon");
        assert_eq!(serlaq_stream_running_norm(s, 20.0, 600.0, 0), OK, "the stream stays usable: {}", last());
        assert_eq!(serlaq_stream_push(s, x.as_ptr(), x.len()), 0);
        failed(serlaq_stream_running_norm(s, 20.0, 600.0, 0), ERR_STREAM, "before the first push");
        serlaq_stream_free(s);
    }
    // the header's documented defaults are the core's
    let header = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/serlaq.h")).unwrap();
    for (name, value) in [("SERLAQ_RUNNING_PRIOR", DEFAULT_PRIOR), ("SERLAQ_RUNNING_HORIZON", DEFAULT_HORIZON)] {
        let line = header.lines().find(|l| l.starts_with(&format!("#define {name} "))).unwrap();
        assert_eq!(line.split_whitespace().nth(2).unwrap().parse::<f64>().unwrap(), value, "{name}");
    }
}

#[test]
fn stream_errors() {
    let m = open_model();
    let x = tone(8000, 0.5, 300.0, 0.3);
    unsafe {
        assert!(serlaq_stream_new(null(), 8000, null()).is_null());
        failed(ERR_ARGUMENT, ERR_ARGUMENT, "model is NULL");
        assert!(serlaq_stream_new(m.0, 0, null()).is_null());
        failed(ERR_AUDIO, ERR_AUDIO, "<stream>");
        let bad = serlaq_stream_options { hop: 5.0, ..serlaq_stream_default_options() };
        assert!(serlaq_stream_new(m.0, 8000, &bad).is_null());
        failed(ERR_ARGUMENT, ERR_ARGUMENT, "hop");
        let bad = serlaq_stream_options { vad_db: f64::NAN, ..serlaq_stream_default_options() };
        assert!(serlaq_stream_new(m.0, 8000, &bad).is_null());
        failed(ERR_ARGUMENT, ERR_ARGUMENT, "vad_db");

        let s = serlaq_stream_new(m.0, 8000, null());
        assert!(!s.is_null(), "{}", last());
        failed(serlaq_stream_push(null_mut(), x.as_ptr(), 1), ERR_ARGUMENT, "stream is NULL");
        failed(serlaq_stream_push(s, null(), 5), ERR_ARGUMENT, "samples is NULL");
        // serlaq.h: "n may be 0, and samples NULL then": nothing to read, nothing pushed
        assert_eq!(serlaq_stream_push(s, null(), 0), 0, "{}", last());
        assert_eq!(serlaq_stream_push(s, x.as_ptr(), 0), 0, "{}", last());
        failed(serlaq_stream_next(s, null_mut(), null_mut()), ERR_ARGUMENT, "segment is NULL");
        failed(serlaq_stream_next_ood(null_mut(), null_mut(), null_mut(), null_mut()), ERR_ARGUMENT, "stream is NULL");
        let mut seg = serlaq_segment::default();
        let mut doubles = [0f64; 2];
        let odd_ood = (doubles.as_mut_ptr() as *mut u8).add(1) as *mut f64;
        failed(serlaq_stream_next_ood(s, &mut seg, null_mut(), odd_ood), ERR_ARGUMENT, "ood is not aligned");
        let mut nan = x.clone();
        nan[3] = f32::INFINITY;
        failed(serlaq_stream_push(s, nan.as_ptr(), nan.len()), ERR_STREAM, "NaN/inf");
        // the stream stays usable; a model freed first stays alive inside it
        drop(m);
        assert_eq!(serlaq_stream_push(s, x.as_ptr(), 100), 0);
        failed(serlaq_stream_flush(s), ERR_STREAM, "too short");
        serlaq_stream_free(s);
    }
}

#[test]
fn one_model_many_threads_and_per_thread_errors() {
    let m = open_model();
    let x = tone(8000, 1.0, 500.0, 0.5);
    let addr = m.0 as usize;
    let mut want = [0f32; 3];
    unsafe { assert_eq!(serlaq_predict_pcm(m.0, x.as_ptr(), x.len(), 8000, want.as_mut_ptr()), OK) };
    unsafe { serlaq_model_num_labels(null()) };
    let main_err = last();
    std::thread::scope(|sc| {
        for t in 0..4 {
            let x = &x;
            sc.spawn(move || {
                assert_eq!(last(), "", "a new thread starts without an error");
                let m = addr as *const serlaq_model;
                for _ in 0..3 {
                    let mut p = [0f32; 3];
                    unsafe { assert_eq!(serlaq_predict_pcm(m, x.as_ptr(), x.len(), 8000, p.as_mut_ptr()), OK) };
                    assert_eq!(p, want);
                }
                unsafe { serlaq_model_label(m, 10 + t) };
                assert!(last().contains(&format!("label index {}", 10 + t)));
            });
        }
    });
    assert_eq!(last(), main_err, "other threads' errors do not leak into this one");
}

#[test]
fn segment_layout_is_the_headers() {
    use std::mem::{offset_of, size_of};
    // pinned in include/serlaq.h's comment-free struct order; tests/edge checks gcc agrees
    assert_eq!(size_of::<serlaq_segment>(), 56);
    assert_eq!(offset_of!(serlaq_segment, voiced), 40);
    assert_eq!(offset_of!(serlaq_segment, label), 48);
    assert_eq!(offset_of!(serlaq_segment, confidence), 52);
    assert_eq!(size_of::<serlaq_stream_options>(), 40);
    assert_eq!(offset_of!(serlaq_stream_options, vad), 16);
    assert_eq!(offset_of!(serlaq_stream_options, vad_db), 24);
    assert_eq!(offset_of!(serlaq_adapt_options, labels), 8);
    assert_eq!(offset_of!(serlaq_adapt_options, source), 8 + size_of::<*const u8>());
}

/// A clip of the adaptation tests: 1.5 s of a tone that differs per clip, at `rate`.
fn room_clip(k: usize, rate: u32) -> Vec<f32> {
    tone(rate, 1.5, 150.0 + 37.0 * k as f32, 0.1 + 0.02 * (k % 5) as f32)
}

/// A device adapts to its room through the C ABI: clips gathered one at a time from files,
/// encoded bytes and samples; too little audio says how much more and keeps the clips; the
/// adapted model is `serlaq adapt`'s file byte for byte and saves atomically.
#[test]
fn adapter_gathers_clips_and_gives_the_core_adaptation() {
    // the record's date, as `serlaq adapt` takes it, so the bytes can be compared
    std::env::set_var("SOURCE_DATE_EPOCH", "1764835200");
    let m = open_model();
    let files: Vec<PathBuf> = (0..24).map(|k| tmp(&format!("room{k}.wav"), &wav(8000, &room_clip(k, 8000)))).collect();
    let labels = CString::new("sad, angry").unwrap();
    let source = CString::new("kitchen").unwrap();
    let opts =
        serlaq_adapt_options { std_rule: 1, labels: labels.as_ptr(), source: source.as_ptr(), ..Default::default() };
    unsafe {
        let a = serlaq_adapter_new(m.0);
        assert!(!a.is_null(), "{}", last());
        let mut out: *mut serlaq_model = null_mut();
        // nothing gathered is 0 s of speech, not -0 s
        let none = serlaq_adapter_speech_seconds(a);
        assert!(none == 0.0 && none.is_sign_positive(), "{none:?}");
        failed(serlaq_adapter_finish(a, null(), &mut out), ERR_TOO_LITTLE, "0 usable clips with 0.0 s of speech");
        for (k, f) in files.iter().enumerate() {
            let got = if k % 2 == 0 {
                serlaq_adapter_add_file(a, cstr(f).as_ptr())
            } else {
                let b = std::fs::read(f).unwrap();
                serlaq_adapter_add_bytes(a, b.as_ptr(), b.len())
            };
            assert_eq!(got, k as i32 + 1, "{}", last());
            if k == 9 {
                failed(serlaq_adapter_finish(a, &opts, &mut out), ERR_TOO_LITTLE, "10 more clips");
                assert!(out.is_null());
                // a bad clip is refused alone; the count stays
                let junk = b"RIFF....WAVE not audio";
                failed(serlaq_adapter_add_bytes(a, junk.as_ptr(), junk.len()), ERR_AUDIO, "<bytes>");
                let nan = [f32::NAN; 8000];
                failed(serlaq_adapter_add_pcm(a, nan.as_ptr(), nan.len(), 8000), ERR_AUDIO, "<pcm>");
            }
        }
        assert!(serlaq_adapter_speech_seconds(a) >= 20.0, "{}", serlaq_adapter_speech_seconds(a));
        // bad options: named, nothing made
        let bad_label = CString::new("angry,bored").unwrap();
        let one_label = CString::new("angry").unwrap();
        for (o, code, needle) in [
            (serlaq_adapt_options { std_rule: 7, ..opts }, ERR_ARGUMENT, "std_rule 7"),
            (serlaq_adapt_options { labels: bad_label.as_ptr(), ..opts }, ERR_ARGUMENT, "\"bored\" is not a label"),
            (serlaq_adapt_options { labels: one_label.as_ptr(), ..opts }, ERR_ARGUMENT, "at least 2"),
        ] {
            failed(serlaq_adapter_finish(a, &o, &mut out), code, needle);
            assert!(out.is_null());
        }
        failed(serlaq_adapter_finish(a, &opts, null_mut()), ERR_ARGUMENT, "out is NULL");
        assert_eq!(serlaq_adapter_finish(a, &opts, &mut out), OK, "{}", last());
        let saved = tmp("room.laq", b"old");
        assert_eq!(serlaq_model_save(out, cstr(&saved).as_ptr()), OK, "{}", last());
        failed(serlaq_model_save(out, c"/nonexistent-dir/x.laq".as_ptr()), ERR_MODEL, "/nonexistent-dir/x.laq");
        // the file `serlaq adapt` writes from the same clips and options
        let core = serlaq_core::adapt::adapt(
            &core_model(),
            &files,
            &serlaq_core::adapt::AdaptOptions {
                threads: 1,
                std: serlaq_core::adapt::StdRule::Target,
                labels: vec!["sad".into(), "angry".into()],
                source: "kitchen".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(std::fs::read(&saved).unwrap(), core.bytes);
        // the adapted model answers among the labels held, and is a model like any other
        let x = room_clip(3, 8000);
        let mut p = [0f32; 3];
        assert_eq!(serlaq_predict_pcm(out, x.as_ptr(), x.len(), 8000, p.as_mut_ptr()), OK);
        assert!(p[1] < 1e-6, "happy is not held: {p:?}");
        serlaq_model_free(out);
        serlaq_adapter_free(a);
    }
    // samples at another rate, the model freed before the adapter finishes; the record
    // names what the clips came from
    unsafe {
        let m = open_model();
        let a = serlaq_adapter_new(m.0);
        drop(m);
        for k in 0..20 {
            let x = room_clip(k, 16000);
            assert_eq!(serlaq_adapter_add_pcm(a, x.as_ptr(), x.len(), 16000), k as i32 + 1, "{}", last());
        }
        let mut out: *mut serlaq_model = null_mut();
        assert_eq!(serlaq_adapter_finish(a, null(), &mut out), OK, "{}", last());
        let saved = tmp("pcm.laq", b"");
        assert_eq!(serlaq_model_save(out, cstr(&saved).as_ptr()), OK);
        let meta: serde_json::Value = serde_json::from_str(
            Model::from_laq(LaqFile::from_bytes(std::fs::read(&saved).unwrap()).unwrap()).unwrap().metadata_json(),
        )
        .unwrap();
        let record = &meta["provenance"]["adaptations"][0];
        assert_eq!(record["source"], json!("<pcm>"));
        assert_eq!(record["clips"], json!(20));
        assert_eq!(record["adapted"], json!(["normalization", "label_balance"]));
        serlaq_model_free(out);
        serlaq_adapter_free(a);
        failed(serlaq_adapter_add_pcm(null_mut(), null(), 0, 8000), ERR_ARGUMENT, "adapter is NULL");
    }
    // every other entry point given NULL or a missing file: its code and one line
    unsafe {
        assert!(serlaq_adapter_new(null()).is_null());
        assert!(last().contains("model is NULL"), "{}", last());
        assert_eq!(serlaq_adapter_speech_seconds(null_mut()), 0.0);
        failed(serlaq_model_save(null(), c"x.laq".as_ptr()), ERR_ARGUMENT, "model is NULL");
        let m = open_model();
        failed(serlaq_model_save(m.0, null()), ERR_ARGUMENT, "path is NULL");
        let a = serlaq_adapter_new(m.0);
        failed(serlaq_adapter_add_file(a, null()), ERR_ARGUMENT, "path is NULL");
        failed(serlaq_adapter_add_file(a, c"/nonexistent/room.wav".as_ptr()), ERR_AUDIO, "/nonexistent/room.wav");
        failed(serlaq_adapter_add_bytes(a, null(), 0), ERR_ARGUMENT, "data is NULL");
        assert_eq!(serlaq_adapter_speech_seconds(a), 0.0, "nothing was gathered");
        serlaq_adapter_free(a);
        serlaq_adapter_free(null_mut());
    }
}
