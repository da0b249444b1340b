//! The built `serlaq-rt` binary on generated WAVs and a generated `.laq`: every output
//! format against `serlaq_core::model::Model` run in-process, bad files mixed with good,
//! directories, `info` text and JSON, exit codes.

use serde_json::{json, Value};
use serlaq_core::audio;
use serlaq_core::features::FeatureSpec;
use serlaq_core::format::LaqFile;
use serlaq_core::model::Model;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_serlaq-rt");
mod common;
use common::{clip, features, laq_bytes, laq_bytes_with_ood_threshold, wav_bytes, LABELS};

struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("serlaq-rt-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("model.laq"), laq_bytes()).unwrap();
        Fixture { dir }
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
    fn wav(&self, rel: &str, kind: u64, rate: u32, channels: u16) -> PathBuf {
        let p = self.p(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let mono = clip(kind, rate, 1.0);
        let inter: Vec<f32> = mono.iter().flat_map(|&v| std::iter::repeat_n(v, channels as usize)).collect();
        std::fs::write(&p, wav_bytes(rate, channels, &inter)).unwrap();
        p
    }
    /// Runs the binary in the fixture folder (relative paths as a user types them).
    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN).args(args).current_dir(&self.dir).output().unwrap()
    }
    fn model(&self) -> Model {
        Model::from_laq(LaqFile::open(&self.p("model.laq")).unwrap()).unwrap()
    }
    /// What the library says for a file: the reference for every output.
    fn expected(&self, rel: &str) -> Vec<f64> {
        let m = self.model();
        let spec = m.spec();
        let wave = audio::load(&self.p(rel), spec.sample_rate, spec.min_samples()).unwrap();
        m.predict_wave(&wave).unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}
fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// serde_json's default float parser (used here to read the output back) may land one
/// ULP off the correctly rounded value; the binary writes `repr` digits, which the unit
/// tests round-trip exactly. So a float read back is "the same" within 2 ULP.
const READ_BACK_ULPS: f64 = 2.0;

fn same(got: &Value, want: f64) -> bool {
    let g = got.as_f64().expect("a number");
    (g - want).abs() <= READ_BACK_ULPS * f64::EPSILON * want.abs().max(f64::MIN_POSITIVE)
}

fn argmax(p: &[f64]) -> usize {
    (0..p.len()).fold(0, |b, i| if p[i] > p[b] { i } else { b })
}

#[test]
fn json_matches_library_model() {
    let fx = Fixture::new("json");
    fx.wav("a.wav", 0, 8000, 1);
    fx.wav("b.wav", 1, 16000, 2); // resampled and downmixed
    fx.wav("c.wav", 2, 44100, 1);
    let o = fx.run(&["predict", "model.laq", "a.wav", "b.wav", "c.wav", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 3);
    let mut labels_seen = std::collections::BTreeSet::new();
    for (item, rel) in items.iter().zip(["a.wav", "b.wav", "c.wav"]) {
        let want = fx.expected(rel);
        assert_eq!(item["path"], rel);
        assert_eq!(item["label"], LABELS[argmax(&want)]);
        assert!(same(&item["confidence"], want[argmax(&want)]));
        let probs = item["probabilities"].as_object().unwrap();
        // values exactly the library's (repr round-trips)
        assert_eq!(probs.len(), LABELS.len());
        for (lab, w) in LABELS.iter().zip(&want) {
            assert!(same(&probs[*lab], *w), "{rel} {lab}");
        }
        assert!(item.get("top_k").is_none());
        labels_seen.insert(item["label"].as_str().unwrap().to_string());
    }
    // the fixture model is not constant and not saturated: at least two different
    // answers, and probabilities well inside (0, 1)
    assert!(labels_seen.len() >= 2, "{labels_seen:?}");
    assert!(items.iter().all(|i| i["confidence"].as_f64().unwrap() < 0.99), "{}", stdout(&o));
    // object layout as Python's json.dumps: path, label, confidence, probabilities
    let text = stdout(&o);
    assert!(text.starts_with("[\n  {\"path\": \"a.wav\", \"label\": "), "{text}");
    assert!(text.ends_with("}\n]\n"), "{text}");
    assert!(text.contains(", \"probabilities\": {\"angry\": "), "{text}");
    let (h, s) = (text.find("\"happy\": ").unwrap(), text.find("\"sad\": ").unwrap());
    assert!(text.find("\"angry\": ").unwrap() < h && h < s, "labels in label order");
}

#[test]
fn table_jsonl_csv_and_top_k() {
    let fx = Fixture::new("formats");
    fx.wav("a.wav", 0, 8000, 1);
    fx.wav("b.wav", 2, 8000, 1);
    let want: Vec<Vec<f64>> = ["a.wav", "b.wav"].iter().map(|r| fx.expected(r)).collect();

    let o = fx.run(&["predict", "model.laq", "a.wav", "b.wav"]);
    assert!(o.status.success());
    let lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert_eq!(lines.len(), 2);
    for (line, (rel, w)) in lines.iter().zip(["a.wav", "b.wav"].iter().zip(&want)) {
        let b = argmax(w);
        assert_eq!(line, &format!("{rel}\t{}\t{:.4}", LABELS[b], w[b]));
    }

    let o = fx.run(&["predict", "model.laq", "a.wav", "--top-k", "3"]);
    let cols: Vec<String> = stdout(&o).trim_end().split('\t').map(String::from).collect();
    assert_eq!(cols.len(), 5, "{cols:?}");
    let mut ranked: Vec<(usize, f64)> = want[0].iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    assert_eq!(cols[3], format!("{}:{:.4}", LABELS[ranked[1].0], ranked[1].1));
    assert_eq!(cols[4], format!("{}:{:.4}", LABELS[ranked[2].0], ranked[2].1));

    let o = fx.run(&["predict", "model.laq", "a.wav", "b.wav", "--format", "jsonl", "--top-k", "2"]);
    let lines: Vec<Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    for (v, w) in lines.iter().zip(&want) {
        let top = v["top_k"].as_array().unwrap();
        assert_eq!(top.len(), 2);
        assert_eq!(top[0]["label"], v["label"]);
        assert!(same(&top[0]["probability"], w[argmax(w)]));
        assert!(top[1]["probability"].as_f64().unwrap() <= top[0]["probability"].as_f64().unwrap());
    }

    let o = fx.run(&["predict", "model.laq", "a.wav", "b.wav", "--format", "csv"]);
    let text = stdout(&o);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows[0], "path,label,confidence,error,p_angry,p_happy,p_sad,ood");
    let w = &want[1];
    let (row, ood) = rows[2].rsplit_once(',').unwrap();
    assert_eq!(row, format!("b.wav,{},{:.6},,{:.6},{:.6},{:.6}", LABELS[argmax(w)], w[argmax(w)], w[0], w[1], w[2]));
    assert!(ood.parse::<f64>().unwrap() > 0.0, "{ood}");
    assert_eq!(rows.len(), 3);
}

#[test]
fn bad_files_are_one_line_each_and_the_rest_is_predicted() {
    let fx = Fixture::new("bad");
    fx.wav("good.wav", 0, 8000, 1);
    std::fs::write(fx.p("silent.wav"), wav_bytes(8000, 1, &vec![0.0; 8000])).unwrap();
    std::fs::write(fx.p("text.wav"), b"this is not audio at all, just some text bytes").unwrap();
    std::fs::write(fx.p("short.wav"), wav_bytes(8000, 1, &clip(0, 8000, 0.01))).unwrap();
    let mut trunc = wav_bytes(8000, 1, &clip(1, 8000, 1.0));
    trunc.truncate(trunc.len() / 2);
    std::fs::write(fx.p("trunc.wav"), trunc).unwrap();
    fx.wav("good2.wav", 2, 8000, 1);
    let args = [
        "predict",
        "model.laq",
        "silent.wav",
        "good.wav",
        "missing.wav",
        "text.wav",
        "short.wav",
        "trunc.wav",
        "good2.wav",
    ];
    let o = fx.run(&[&args[..], &["--format", "jsonl"]].concat());
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let err_lines: Vec<&str> = err.lines().collect();
    assert_eq!(err_lines.len(), 5, "{err}");
    // inputs that give no file come first (as the Python CLI), then the files in order
    assert_eq!(err_lines[0], "serlaq-rt: error: missing.wav: no such file or directory");
    for (line, name) in err_lines[1..].iter().zip(["silent.wav", "text.wav", "short.wav", "trunc.wav"]) {
        assert!(line.starts_with(&format!("serlaq-rt: error: {name}: ")), "{line}");
    }
    assert!(err_lines[1].contains("silent"), "{}", err_lines[1]);
    let out: Vec<Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let paths: Vec<&str> = out.iter().map(|v| v["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["missing.wav", "silent.wav", "good.wav", "text.wav", "short.wav", "trunc.wav", "good2.wav"]);
    for v in &out {
        let good = v["path"].as_str().unwrap().starts_with("good");
        assert_eq!(v.get("label").is_some(), good, "{v}");
        assert_eq!(v.get("error").is_some(), !good, "{v}");
    }
    // the error field keeps the decoder's message; the stderr line says it in plain words,
    // and --verbose shows the field's text
    assert_eq!(format!("serlaq-rt: error: {}", out[1]["error"].as_str().unwrap()), err_lines[1]);
    assert!(
        err_lines[2].contains(
            "not a WAV, FLAC, OGG (Vorbis, Opus), MP3, AIFF, M4A (AAC, ALAC), CAF or WebM (Opus, Vorbis) file"
        ),
        "{}",
        err_lines[2]
    );
    assert!(!err_lines[2].contains("probe"), "{}", err_lines[2]);
    let verbose = fx.run(&["predict", "model.laq", "text.wav", "--verbose"]);
    assert_eq!(stderr(&verbose).trim_end(), format!("serlaq-rt: error: {}", out[3]["error"].as_str().unwrap()));
    // table: failures only on stderr, good files on stdout
    let o = fx.run(&args);
    assert_eq!(o.status.code(), Some(1));
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(lines, ["good.wav", "good2.wav"]);
    // csv: failures as rows with the error column
    let o = fx.run(&["predict", "model.laq", "missing.wav", "good.wav", "--format", "csv"]);
    let text = stdout(&o);
    assert_eq!(text.lines().nth(1).unwrap(), "missing.wav,,,missing.wav: no such file or directory,,,,");
}

#[test]
fn directories_are_searched_recursively_sorted_once() {
    let fx = Fixture::new("dir");
    fx.wav("rec/b.wav", 0, 8000, 1);
    fx.wav("rec/a.WAV", 1, 8000, 1);
    fx.wav("rec/sub/c.wav", 2, 8000, 1);
    std::fs::write(fx.p("rec/notes.txt"), b"not audio").unwrap();
    std::fs::create_dir_all(fx.p("empty/inner")).unwrap();
    std::fs::write(fx.p("empty/readme.md"), b"x").unwrap();
    let o = fx.run(&["predict", "model.laq", "rec/", "./rec/b.wav", "empty", "--format", "jsonl", "--threads", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(
        err.trim_end(),
        "serlaq-rt: error: empty: directory holds no audio files (.aif, .aifc, .aiff, .caf, .flac, .m4a, .mp3, .oga, .ogg, .opus, .wav, .wave, .webm)"
    );
    let paths: Vec<String> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(paths, ["empty", "rec/a.WAV", "rec/b.wav", "rec/sub/c.wav"]);
    // threads do not change the results or their order
    let one = fx.run(&["predict", "model.laq", "rec", "--json", "--threads", "1"]);
    let three = fx.run(&["predict", "model.laq", "rec", "--json", "--threads", "3"]);
    assert!(one.status.success());
    assert_eq!(stdout(&one), stdout(&three));
    let v: Value = serde_json::from_str(&stdout(&one)).unwrap();
    let want = fx.expected("rec/sub/c.wav");
    assert!(same(&v[2]["probabilities"]["sad"], want[2]));
}

#[test]
fn info_text_and_json() {
    let fx = Fixture::new("info");
    let size = std::fs::metadata(fx.p("model.laq")).unwrap().len() as usize;
    let d = FeatureSpec::from_json_value(&features()).unwrap().dim();
    let o = fx.run(&["info", "model.laq", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["path"], "model.laq");
    assert_eq!(v["labels"], json!(LABELS));
    assert_eq!(v["feature_dim"], d);
    assert_eq!(v["serlaq_version"], "9.9.9");
    assert_eq!(v["laq"], json!({"mode": "test", "avg_bits": 4.0}));
    assert_eq!(v["features"]["n_mels"], 24);
    assert_eq!(v["features"]["preset"], "paper");
    assert_eq!(v["architecture"]["hidden"], json!([16, 8]));
    let layers = v["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 3);
    assert_eq!(layers[0]["shape"], json!([16, d]));
    assert_eq!(layers[1]["granularity"], "tensor");
    assert_eq!(layers[0]["granularity"], "channel");
    assert_eq!(layers[2]["has_bias"], false);
    // packed 4-bit rows of d codes: ceil(d * 4 / 8) bytes each; + 16 scales and zeros + 16 biases
    let row_bytes = (d * 4).div_ceil(8);
    assert_eq!(layers[0]["packed_bytes"], 16 * row_bytes);
    assert_eq!(layers[0]["size_bytes"], 16 * row_bytes + 8 * 16 + 4 * 16);
    assert_eq!(layers[1]["size_bytes"], 8 * 4 + 8 + 4 * 8); // 8 rows of 16 2-bit codes
    assert_eq!(layers[0]["fp32_bytes"], 4 * 16 * d + 4 * 16);
    assert_eq!(layers[2]["params"], 3 * 8);
    // eq. 6: weight-count weighted
    let w = [16 * d, 8 * 16, 3 * 8];
    let avg = (w[0] * 4 + w[1] * 2 + w[2] * 8) as f64 / (w[0] + w[1] + w[2]) as f64;
    assert!(same(&v["avg_bits"], avg));
    assert_eq!(v["size_bytes"], size);
    let fp32 = (4 * 16 * d + 64) + (4 * 8 * 16 + 32) + 4 * 3 * 8;
    assert_eq!(v["fp32_size_bytes"], fp32);
    assert!(same(&v["compression_ratio"], fp32 as f64 / size as f64));
    // no calibration (T = 1), the fixture's threshold, no hidden reference: the features' score
    assert_eq!(v["confidence"], json!({"temperature": 1.0, "ood_score": "features", "ood_threshold": 1000.0}));
    // key order and layout of Python's summary() through json.dumps(indent=2)
    let text = stdout(&o);
    assert!(text.starts_with("{\n  \"path\": \"model.laq\",\n  \"format_version\": "), "{text}");
    assert!(text.contains("\n  \"layers\": [\n    {\n      \"name\": \"net.0\",\n      \"shape\": [\n        16,"));

    let o = fx.run(&["info", "./model.laq"]);
    assert!(o.status.success());
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("model        model.laq (.laq format v"), "{}", lines[0]);
    assert!(lines[0].ends_with(", written by serlaq 9.9.9)"), "{}", lines[0]);
    assert_eq!(lines[1], "labels       angry, happy, sad (3 classes)");
    assert!(lines[2].starts_with(&format!("features     {d}-d: chroma_spectrum=")), "{}", lines[2]);
    assert!(
        lines[2].contains(" delta_stats=- ")
            && lines[2].contains(" stats=mean,std ")
            && lines[2].contains(" f_min=0.0 ")
    );
    let params = 16 * d + 16 + 8 * 16 + 8 + 3 * 8;
    let params = format!("{},{:03}", params / 1000, params % 1000); // f"{n:,}" (1,000 <= n < 1,000,000)
    assert_eq!(lines[3], format!("params       {params} ({d} -> 16 -> 8 -> 3, ReLU between layers)"));
    assert_eq!(lines[5], "layer      shape  bits  quantizer  granularity        size        fp32");
    assert_eq!(
        lines[6],
        format!(
            "net.0  {:>9}     4  affine     channel      {:>10}  {:>10}",
            format!("16x{d}"),
            format!("{:.1} KB", (16 * row_bytes + 192) as f64 / 1000.0),
            format!("{:.1} KB", (4 * 16 * d + 64) as f64 / 1000.0)
        )
    );
    assert_eq!(lines[10], format!("avg bits     {avg:.3} (eq. 6: bits weighted by each layer's share of the weights)"));
    assert!(
        lines[12].ends_with(&format!("{:.1}x larger than the .laq file", fp32 as f64 / size as f64)),
        "{}",
        lines[12]
    );
    assert_eq!(
        lines[13],
        "confidence   temperature 1.00; out-of-domain score: RMS z-score of the features, threshold 1000.00"
    );
    assert_eq!(lines.len(), 14);
}

#[test]
fn model_errors_and_usage_exit_codes() {
    let fx = Fixture::new("errors");
    fx.wav("a.wav", 0, 8000, 1);
    let one_line = |o: &Output, start: &str| {
        let e = stderr(o);
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(e.starts_with(start), "{e}");
        assert!(o.stdout.is_empty());
    };
    let o = fx.run(&["predict", "nope.laq", "a.wav"]);
    assert_eq!(o.status.code(), Some(1));
    one_line(&o, "serlaq-rt: error: nope.laq: ");
    std::fs::write(fx.p("junk.laq"), b"not a model").unwrap();
    let o = fx.run(&["info", "junk.laq"]);
    assert_eq!(o.status.code(), Some(1));
    one_line(&o, "serlaq-rt: error: junk.laq: not a .laq file");
    let mut bytes = laq_bytes();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff; // checksum no longer matches
    std::fs::write(fx.p("flipped.laq"), bytes).unwrap();
    let o = fx.run(&["predict", "flipped.laq", "a.wav"]);
    assert_eq!(o.status.code(), Some(1));
    one_line(&o, "serlaq-rt: error: flipped.laq: ");
    // a folder stands for its model.laq (a run folder), and one without a model says so
    let by_folder = fx.run(&["predict", ".", "a.wav"]);
    assert!(by_folder.status.success(), "{}", stderr(&by_folder));
    assert_eq!(stdout(&by_folder), stdout(&fx.run(&["predict", "model.laq", "a.wav"])));
    std::fs::create_dir_all(fx.p("empty")).unwrap();
    let o = fx.run(&["info", "empty"]);
    assert_eq!(o.status.code(), Some(1));
    one_line(&o, "serlaq-rt: error: empty: a folder with no .laq model in it");
    std::fs::create_dir_all(fx.p("damaged")).unwrap();
    std::fs::write(fx.p("damaged/model.laq"), b"not a model").unwrap();
    let o = fx.run(&["predict", "damaged", "a.wav"]);
    one_line(&o, "serlaq-rt: error: damaged/model.laq: not a .laq file"); // the file, not the folder
                                                                          // usage errors: exit 2
    for args in [
        &["predict", "model.laq"][..],
        &["predict", "model.laq", "a.wav", "--top-k", "0"],
        &["predict", "model.laq", "a.wav", "--format", "xml"],
        &["bogus"],
    ] {
        let o = fx.run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
    // every command has help with an example
    for cmd in ["predict", "info"] {
        let o = fx.run(&[cmd, "--help"]);
        assert!(o.status.success());
        assert!(stdout(&o).contains(&format!("Example:\n  serlaq-rt {cmd} model.laq")), "{}", stdout(&o));
    }
    // all good: exit 0, nothing on stderr
    let o = fx.run(&["predict", "model.laq", "a.wav"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stderr.is_empty());
}

#[test]
fn paths_are_written_as_given_from_anywhere() {
    let fx = Fixture::new("abs");
    let a = fx.wav("x/a.wav", 0, 8000, 1);
    let abs = a.display().to_string();
    let model = fx.p("model.laq").display().to_string();
    let o = Command::new(BIN).args(["predict", &model, &abs]).current_dir(Path::new("/")).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with(&format!("{abs}\t")));
}

// --- predict --segments -------------------------------------------------------------------

use serlaq_core::segments::{segment_file, RunningNorm, Segment, SegmentOptions, Vad};

/// 3 s of tone, 2.5 s of silence, 3 s of another tone, 1 s of silence (8 kHz mono).
fn recording() -> Vec<f32> {
    let mut x = clip(0, 8000, 3.0);
    x.extend(std::iter::repeat_n(0.0, 20000));
    x.extend(clip(2, 8000, 3.0));
    x.extend(std::iter::repeat_n(0.0, 8000));
    x
}

impl Fixture {
    fn recording(&self, rel: &str) -> Vec<u8> {
        let bytes = wav_bytes(8000, 1, &recording());
        std::fs::write(self.p(rel), &bytes).unwrap();
        bytes
    }
    fn segments(&self, rel: &str, opts: &SegmentOptions) -> Vec<Segment> {
        let out = segment_file(&self.model(), &self.p(rel), opts);
        assert!(out.error.is_none(), "{:?}", out.error);
        out.segments
    }
}

/// The window's JSON object is the library's segment.
fn check_segment(v: &Value, s: &Segment, path: &str) {
    assert_eq!(v["path"], path);
    assert_eq!(v["index"], s.index);
    assert!(same(&v["start"], s.start_seconds) && same(&v["end"], s.end_seconds), "{v}");
    assert!(same(&v["voiced"], s.voiced) || (s.voiced == 0.0 && v["voiced"] == 0.0), "{v}");
    match &s.probabilities {
        None => {
            assert_eq!(v["label"], "silence");
            assert_eq!(v["confidence"], Value::Null);
            assert_eq!(v["speech"], false);
            assert_eq!(v["probabilities"], json!({}));
            assert!(v.get("top_k").is_none());
            assert!(v.get("ood").is_none(), "{v}");
        }
        Some(p) => {
            let b = argmax(p);
            // the window's out-of-domain score, as the library gives it
            assert!(same(&v["ood"], s.ood.unwrap()), "{v}");
            assert_eq!(v["label"], LABELS[b]);
            assert!(same(&v["confidence"], p[b]));
            assert_eq!(v["speech"], true);
            let probs = v["probabilities"].as_object().unwrap();
            assert_eq!(probs.keys().collect::<Vec<_>>(), LABELS.iter().collect::<Vec<_>>());
            for (lab, w) in LABELS.iter().zip(p) {
                assert!(same(&probs[*lab], *w));
            }
        }
    }
}

/// Speech time per label by brute force: every millisecond belongs to the window whose
/// centre is nearest among those holding it.
fn owned_by_brute_force(segs: &[Segment]) -> (f64, std::collections::BTreeMap<String, f64>) {
    let end = segs.iter().map(|s| s.end_seconds).fold(0.0, f64::max);
    let mut per_label = std::collections::BTreeMap::new();
    let mut speech = 0.0;
    let step = 1e-3;
    let mut t = step / 2.0;
    while t < end {
        let owner = segs
            .iter()
            .filter(|s| s.start_seconds <= t && t < s.end_seconds)
            .min_by(|a, b| {
                let d = |s: &Segment| (t - (s.start_seconds + s.end_seconds) / 2.0).abs();
                d(a).total_cmp(&d(b))
            })
            .unwrap();
        if let Some(p) = &owner.probabilities {
            speech += step;
            *per_label.entry(LABELS[argmax(p)].to_string()).or_insert(0.0) += step;
        }
        t += step;
    }
    (speech, per_label)
}

#[test]
fn segments_warn_once_when_most_speech_windows_are_far_from_home() {
    let fx = Fixture::new("seg-ood");
    fx.recording("rec.wav");
    let o = fx.run(&["predict", "model.laq", "rec.wav", "--segments", "--format", "jsonl"]);
    assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));
    // the same model with a threshold below every window's score (0.1, the least a file may hold)
    std::fs::write(fx.p("far.laq"), laq_bytes_with_ood_threshold(0.1)).unwrap();
    let o = fx.run(&["predict", "far.laq", "rec.wav", "--segments", "--format", "jsonl"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let speech = stdout(&o).lines().filter(|l| l.contains("\"speech\": true")).count();
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!("serlaq-rt: warning: {speech} of {speech} speech windows lie far outside")),
        "{err}"
    );
    assert!(err.contains("serlaq adapt") && err.trim_end().ends_with("--running-norm"), "{err}");
}

#[test]
fn segments_every_format_matches_the_library() {
    let fx = Fixture::new("seg");
    fx.recording("rec.wav");
    let want = fx.segments("rec.wav", &SegmentOptions::default());
    assert!(want.iter().any(|s| s.is_speech()) && want.iter().any(|s| !s.is_speech()));
    assert!(want.len() >= 8, "{}", want.len());

    let o = fx.run(&["predict", "model.laq", "rec.wav", "--segments", "--format", "jsonl", "--top-k", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stderr.is_empty());
    let text = stdout(&o);
    let objs: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(objs.len(), want.len() + 1);
    for (v, s) in objs.iter().zip(&want) {
        check_segment(v, s, "rec.wav");
        if let Some(p) = &s.probabilities {
            let top = v["top_k"].as_array().unwrap();
            assert_eq!(top.len(), 2);
            assert_eq!(top[0]["label"], v["label"]);
            assert!(same(&top[0]["probability"], p[argmax(p)]));
        }
    }
    // silence in the middle of the recording: the windows inside the 2.5 s gap
    let quiet: Vec<&Segment> = want.iter().filter(|s| s.start_seconds >= 3.0 && s.end_seconds <= 5.5).collect();
    assert!(!quiet.is_empty() && quiet.iter().all(|s| !s.is_speech()));
    // the summary: counts, and the time shares of the nearest-centre rule
    let sum = &objs[want.len()];
    assert_eq!(sum["path"], "rec.wav");
    let s = &sum["summary"];
    assert_eq!(s["segments"], want.len());
    assert_eq!(s["speech_segments"], want.iter().filter(|s| s.is_speech()).count());
    assert!(same(&s["duration"], want.last().unwrap().end_seconds));
    let (speech, per_label) = owned_by_brute_force(&want);
    assert!((s["speech_seconds"].as_f64().unwrap() - speech).abs() < 5e-3, "{s} vs {speech}");
    let secs = s["emotion_seconds"].as_object().unwrap();
    assert_eq!(secs.len(), per_label.len());
    for (lab, v) in &per_label {
        assert!((secs[lab].as_f64().unwrap() - v).abs() < 5e-3, "{lab}: {s}");
        let share = s["emotions"][lab].as_f64().unwrap();
        assert!((share - secs[lab].as_f64().unwrap() / s["speech_seconds"].as_f64().unwrap()).abs() < 1e-12);
    }
    // in the text: largest share first, then by label (serde_json's map here is sorted by key)
    let mut ranked: Vec<(String, f64)> =
        s["emotions"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_f64().unwrap())).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let keys = |obj: &str| -> Vec<String> {
        let at = text.find(&format!("\"{obj}\": {{")).unwrap();
        let body = &text[at..at + text[at..].find('}').unwrap()];
        body.split('"').skip(3).step_by(2).map(String::from).collect()
    };
    let order: Vec<String> = ranked.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys("emotions"), order);
    assert_eq!(keys("emotion_seconds"), order);

    // json: the same objects in one array, laid out as Python's writer does
    let o = fx.run(&["predict", "model.laq", "rec.wav", "--segments", "--json", "--top-k", "2"]);
    assert!(o.status.success());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(stdout(&o), format!("[\n  {}\n]\n", lines.join(",\n  ")));

    // table: path, start, end, label, confidence[, label:p]; silence has "-"; a summary line
    let o = fx.run(&["predict", "model.laq", "rec.wav", "--segments", "--top-k", "2"]);
    assert!(o.status.success());
    let table = stdout(&o);
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), want.len() + 1);
    for (row, s) in rows.iter().zip(&want) {
        let head = format!("rec.wav\t{:.3}\t{:.3}\t", s.start_seconds, s.end_seconds);
        match &s.probabilities {
            None => assert_eq!(*row, format!("{head}silence\t-")),
            Some(p) => {
                assert!(row.starts_with(&format!("{head}{}\t{:.4}\t", LABELS[argmax(p)], p[argmax(p)])), "{row}");
                assert_eq!(row.split('\t').count(), 6);
            }
        }
    }
    let summary = rows[want.len()];
    let speech_n = want.iter().filter(|s| s.is_speech()).count();
    let expect = format!(
        "rec.wav\tsummary\t{} segments ({speech_n} speech), speech {:.1} s of {:.1} s\t",
        want.len(),
        s["speech_seconds"].as_f64().unwrap(),
        want.last().unwrap().end_seconds
    );
    assert!(summary.starts_with(&expect), "{summary}");
    let shares: Vec<String> = ranked.iter().map(|(k, v)| format!("{k} {:.0}%", 100.0 * v)).collect();
    assert_eq!(&summary[expect.len()..], shares.join(", "));

    // csv: one table on stdout, the summary line on stderr
    let o = fx.run(&["predict", "model.laq", "rec.wav", "--segments", "--format", "csv"]);
    assert!(o.status.success());
    let csv = stdout(&o);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "path,start,end,label,confidence,speech,voiced,error,p_angry,p_happy,p_sad,ood");
    assert_eq!(rows.len(), want.len() + 1);
    let q = want.iter().position(|s| !s.is_speech()).unwrap();
    let sq = &want[q];
    assert_eq!(
        rows[q + 1],
        format!("rec.wav,{:.6},{:.6},silence,,0,{:.4},,,,,", sq.start_seconds, sq.end_seconds, sq.voiced)
    );
    let p = want[0].probabilities.as_ref().unwrap();
    assert_eq!(
        rows[1],
        format!(
            "rec.wav,0.000000,{:.6},{},{:.6},1,{:.4},,{:.6},{:.6},{:.6},{:.4}",
            want[0].end_seconds,
            LABELS[argmax(p)],
            p[argmax(p)],
            want[0].voiced,
            p[0],
            p[1],
            p[2],
            want[0].ood.unwrap()
        )
    );
    assert_eq!(stderr(&o), format!("{summary}\n"));
}

#[test]
fn segments_options_damage_and_usage_errors() {
    let fx = Fixture::new("segerr");
    let bytes = fx.recording("rec.wav");
    // window 1 s every 0.25 s, no gate: every window judged by the model
    let opts = SegmentOptions { window: 1.0, hop: 0.25, vad: None, running: None };
    // `predict --segments` with these flags prints the core's windows for `o`
    let same_as_core = |o: &SegmentOptions, flags: &[&str]| {
        let want = fx.segments("rec.wav", o);
        let base =
            ["predict", "model.laq", "rec.wav", "--segments", "--format", "jsonl", "--window", "1", "--hop", "0.25"];
        let out = fx.run(&[&base[..], &["--no-vad"], flags].concat());
        assert!(out.status.success(), "{}", stderr(&out));
        let objs: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(objs.len(), want.len() + 1, "{flags:?}");
        for (v, s) in objs.iter().zip(&want) {
            check_segment(v, s, "rec.wav");
        }
        want
    };
    let plain = same_as_core(&opts, &[]);
    assert!(plain.iter().all(|s| s.is_speech()));
    // running normalisation: the core's running-normalised timeline, its two numbers passed
    let running = SegmentOptions { running: Some(RunningNorm { prior: 3.0, horizon: 40.0, balance: true }), ..opts };
    let numbers = ["--running-norm", "--running-prior", "3", "--running-horizon", "40"];
    let balanced = same_as_core(&running, &numbers);
    assert_ne!(balanced, plain);
    // --no-running-balance: statistics alone, a different timeline
    let stats_only =
        SegmentOptions { running: Some(RunningNorm { prior: 3.0, horizon: 40.0, balance: false }), ..opts };
    let stats = same_as_core(&stats_only, &[&numbers[..], &["--no-running-balance"]].concat());
    assert_ne!(stats, balanced, "the balance changes the probabilities");
    let o = fx.run(&["predict", "model.laq", "rec.wav", "--segments", "--running-norm", "--running-prior", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("serlaq-rt: error: --running-prior: "), "{}", stderr(&o));
    // a stricter gate (negative values parse as numbers)
    let strict =
        SegmentOptions { vad: Some(Vad { threshold_db: -12.0, min_speech: 0.5 }), ..SegmentOptions::default() };
    let want = fx.segments("rec.wav", &strict);
    let o = fx.run(&[
        "predict",
        "model.laq",
        "rec.wav",
        "--segments",
        "--format",
        "jsonl",
        "--vad-db",
        "-12",
        "--min-speech",
        "0.5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let objs: Vec<Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(objs.len(), want.len() + 1);
    for (v, s) in objs.iter().zip(&want) {
        check_segment(v, s, "rec.wav");
    }

    // a file cut part-way: its windows before the damage, its summary, then the error;
    // a missing input first; a short file: one window; the exit code 1
    std::fs::write(fx.p("cut.wav"), &bytes[..44 + 2 * 8000 * 5]).unwrap();
    std::fs::write(fx.p("short.wav"), wav_bytes(8000, 1, &clip(0, 8000, 0.5))).unwrap();
    let full = fx.segments("rec.wav", &SegmentOptions::default());
    let o = fx.run(&["predict", "model.laq", "missing.wav", "cut.wav", "short.wav", "--segments", "--format", "jsonl"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert_eq!(
        err,
        "serlaq-rt: error: missing.wav: no such file or directory\n\
         serlaq-rt: error: cut.wav: truncated audio (data ends at 5.000 s of the 9.500 s the header declares)\n"
    );
    let objs: Vec<Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(objs[0], json!({"path": "missing.wav", "error": "missing.wav: no such file or directory"}));
    let cut: Vec<&Value> = objs.iter().filter(|v| v["path"] == "cut.wav" && v.get("index").is_some()).collect();
    let before: Vec<&Segment> = full.iter().filter(|s| s.end_seconds <= 4.9).collect();
    assert!(before.len() >= 3 && cut.len() >= before.len());
    for (v, s) in cut.iter().zip(&before) {
        check_segment(v, s, "cut.wav");
    }
    let at = objs.iter().position(|v| v["path"] == "cut.wav" && v.get("summary").is_some()).unwrap();
    assert_eq!(objs[at]["summary"]["segments"], cut.len());
    assert_eq!(objs[at + 1]["error"], err.lines().nth(1).unwrap().trim_start_matches("serlaq-rt: error: "));
    let short: Vec<&Value> = objs.iter().filter(|v| v["path"] == "short.wav").collect();
    assert_eq!(short.len(), 2, "{short:?}");
    assert_eq!(short[0]["index"], 0);
    assert!(same(&short[0]["end"], 0.5));

    // bad options and flag conflicts: one line naming the flag, exit 2 (a usage error, not a
    // file that failed), nothing written
    let o = fx.run(&["predict", "model.laq", "rec.wav", "--segments", "--json", "--hop", "5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    assert_eq!(stderr(&o), "serlaq-rt: error: --hop: must be a step in seconds within (0, window = 2] (got 5)\n");
    let o = fx.run(&["predict", "model.laq", "rec.wav", "--segments", "--min-speech", "2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("serlaq-rt: error: --min-speech: "), "{}", stderr(&o));
    for (args, msg) in [
        (&["--window", "3", "--no-vad"][..], "--window, --no-vad: only with --segments"),
        (&["--vad-db", "-40"][..], "--vad-db: only with --segments"),
        (&["--running-norm"][..], "--running-norm: only with --segments"),
        (
            &["--segments", "--running-horizon", "9"][..],
            "--running-prior, --running-horizon, --no-running-balance: only with --running-norm",
        ),
        (
            &["--segments", "--no-running-balance"][..],
            "--running-prior, --running-horizon, --no-running-balance: only with --running-norm",
        ),
        (
            &["--segments", "--no-vad", "--min-speech", "0.5"][..],
            "--no-vad: cannot be combined with --vad-db / --min-speech",
        ),
    ] {
        let o = fx.run(&[&["predict", "model.laq", "rec.wav"][..], args].concat());
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&o), format!("serlaq-rt: error: {msg}\n"));
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn adapt_writes_a_model_that_records_it_and_refuses_bad_input_in_one_line() {
    let fx = Fixture::new("adapt");
    for i in 0..24u64 {
        fx.wav(&format!("room/c{i:02}.wav"), i % 3, 16000, 1);
    }
    std::fs::write(fx.p("room/bad.wav"), b"RIFF....not audio").unwrap();
    let before = std::fs::read(fx.p("model.laq")).unwrap();

    let o = fx.run(&["adapt", "model.laq", "room", "--out", "a.laq", "--labels", "angry,sad"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("adapted model.laq on 24 clips (24.0 s"), "{out}");
    assert!(
        out.contains(", 1 file left out;") && out.trim_end().ends_with("; answers among angry, sad; wrote a.laq"),
        "{out}"
    );
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("serlaq-rt: error: room/bad.wav"), "{err}");
    let adapted = Model::from_laq(LaqFile::open(&fx.p("a.laq")).unwrap()).unwrap();
    let meta: Value = serde_json::from_str(adapted.metadata_json()).unwrap();
    let record = &meta["provenance"]["adaptations"][0];
    assert_eq!(record["labels"], json!(["angry", "sad"]));
    assert_eq!(record["clips"], json!(24));
    assert_eq!(record["adapted"], json!(["normalization", "labels", "label_balance"]));

    // the model as --out, too little audio, a label the model lacks: one line, nothing written
    let o = fx.run(&["adapt", "model.laq", "room", "--out", "model.laq"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--out: model.laq is the model being adapted"), "{}", stderr(&o));
    for (args, want) in [
        (vec!["adapt", "model.laq", "room/c00.wav", "room/c01.wav", "--out", "b.laq"], "needs at least 20 clips"),
        (
            vec!["adapt", "model.laq", "room", "--out", "b.laq", "--labels", "angry,calm"],
            "\"calm\" is not a label of the model (angry, happy, sad)",
        ),
        (vec!["adapt", "model.laq", "nowhere", "--out", "b.laq"], "adapt: no audio files given (1 input named above)"),
        // a folder as --out, or one under a file: named before adapting, with the path once
        (vec!["adapt", "model.laq", "room", "--out", "room"], "--out: room: is a folder; give the file to write"),
        (vec!["adapt", "model.laq", "room", "--out", "model.laq/b.laq"], "--out: model.laq/b.laq: model.laq is a file"),
    ] {
        let o = fx.run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let last = stderr(&o).lines().last().unwrap_or_default().to_string();
        assert!(last.starts_with("serlaq-rt: error: ") && last.contains(want), "{args:?}: {last}");
        assert!(!fx.p("b.laq").exists());
    }
    // an input that gave nothing is named once, on its own line above the verdict
    let o = fx.run(&["adapt", "model.laq", "nowhere", "--out", "b.laq"]);
    let err = stderr(&o);
    let named: Vec<&str> = err.lines().filter(|l| l.contains("nowhere")).collect();
    assert_eq!(named, ["serlaq-rt: error: nowhere: no such file or directory"], "{err}");
    assert_eq!(std::fs::read(fx.p("model.laq")).unwrap(), before);
}

// --- standard input -----------------------------------------------------------------------

impl Fixture {
    /// Runs the binary with `stdin` as its standard input.
    fn run_with_stdin(&self, args: &[&str], stdin: std::process::Stdio) -> Output {
        Command::new(BIN).args(args).current_dir(&self.dir).stdin(stdin).output().unwrap()
    }
    /// Runs the binary with `bytes` written into a pipe on its standard input.
    fn run_piped(&self, args: &[&str], bytes: &[u8]) -> Output {
        use std::io::Write;
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(&self.dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stdin.take().unwrap();
        let bytes = bytes.to_vec();
        // written from a thread: the child may answer before it has read everything
        let writer = std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        out
    }
}

#[test]
fn a_dash_reads_standard_input_piped_or_redirected() {
    let fx = Fixture::new("stdin");
    let a = fx.wav("a.wav", 1, 16000, 2);
    let bytes = std::fs::read(&a).unwrap();
    let line = stdout(&fx.run(&["predict", "model.laq", "a.wav", "--format", "jsonl"]));
    let want = line.replacen("\"path\": \"a.wav\"", "\"path\": \"-\"", 1);
    // a pipe, and a file redirected (`< a.wav`: seekable), give the file's own record
    let piped = fx.run_piped(&["predict", "model.laq", "-", "--format", "jsonl"], &bytes);
    assert!(piped.status.success(), "{}", stderr(&piped));
    assert_eq!(stdout(&piped), want);
    let redirected =
        fx.run_with_stdin(&["predict", "model.laq", "-", "--format", "jsonl"], std::fs::File::open(&a).unwrap().into());
    assert_eq!(stdout(&redirected), want);
    // with files, in input order, read once
    let o = fx.run_piped(&["predict", "model.laq", "a.wav", "-", "-"], &bytes);
    let text = stdout(&o);
    let rows: Vec<&str> = text.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert_eq!(rows, ["a.wav", "-"], "{}", stderr(&o));
    // nothing on it: one line naming standard input, exit code 1
    let o = fx.run_with_stdin(&["predict", "model.laq", "-"], std::process::Stdio::null());
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "serlaq-rt: error: standard input: empty audio (0 samples)\n");
    // a file called `-` is reached as ./- (and written so), not as standard input
    std::fs::copy(&a, fx.p("-")).unwrap();
    let o = fx.run_with_stdin(&["predict", "model.laq", "./-"], std::process::Stdio::null());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("./-\t"), "{}", stdout(&o));
}

#[test]
fn a_recording_piped_in_is_segmented_as_its_file_is() {
    // what a recorder streaming to a pipe writes (ffmpeg -f wav -, arecord -t wav): both
    // lengths unknown; its windows are the file's, each written as it completes
    let fx = Fixture::new("stdin-seg");
    let mut bytes = fx.recording("rec.wav");
    bytes[4..8].copy_from_slice(&[0xFF; 4]);
    bytes[40..44].copy_from_slice(&[0xFF; 4]);
    let want = stdout(&fx.run(&["predict", "model.laq", "rec.wav", "--segments", "--format", "jsonl"]));
    assert!(want.lines().count() > 5, "{want}");
    let o = fx.run_piped(&["predict", "model.laq", "-", "--segments", "--format", "jsonl"], &bytes);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), want.replace("\"path\": \"rec.wav\"", "\"path\": \"-\""));
}

#[test]
fn an_m4a_whose_index_follows_its_audio_is_named_as_out_of_a_pipes_reach() {
    // ffmpeg and most recorders write the MP4 index (moov) last; a pipe cannot go back for it
    let fx = Fixture::new("stdin-mp4");
    let boxed = |kind: &[u8; 4], body: &[u8]| [&(8 + body.len() as u32).to_be_bytes()[..], kind, body].concat();
    let mp4 = [boxed(b"ftyp", b"M4A \0\0\0\0M4A "), boxed(b"mdat", &[0u8; 4000]), boxed(b"moov", &[0u8; 64])].concat();
    let o = fx.run_piped(&["predict", "model.laq", "-"], &mp4);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.starts_with("serlaq-rt: error: standard input: cannot decode audio: an M4A/MP4 file whose index follows its audio, out of a pipe's reach: give its path, redirect it (< FILE)"), "{err}");
    // the same bytes from a file are judged as a file's (here: no audio track to read)
    std::fs::write(fx.p("odd.m4a"), &mp4).unwrap();
    let err = stderr(&fx.run(&["predict", "model.laq", "odd.m4a"]));
    assert!(err.starts_with("serlaq-rt: error: odd.m4a: ") && !err.contains("pipe"), "{err}");
    // and redirected (`< odd.m4a`), standard input is that file: it can go back
    let file = std::fs::File::open(fx.p("odd.m4a")).unwrap();
    let err = stderr(&fx.run_with_stdin(&["predict", "model.laq", "-"], file.into()));
    assert!(err.starts_with("serlaq-rt: error: standard input: ") && !err.contains("pipe"), "{err}");
}

#[test]
fn caf_and_ima4_aifc_are_read_from_a_file_and_named_out_of_a_pipe() {
    // symphonia's CAF reader needs to seek (an IMA4 AIFF-C is read through it): from a pipe
    // each is named with the remedy; redirected (`< FILE`) or by path it is read
    let fx = Fixture::new("stdin-caf");
    let mut state = 0x9E37_79B9u32;
    let mut noise = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let chunk = |id: &[u8; 4], body: &[u8]| [&id[..], &(body.len() as u32).to_be_bytes(), body].concat();
    let mut packets = Vec::new();
    for _ in 0..400 {
        packets.extend_from_slice(&[0x00, 0x20]); // predictor 0, step index 32
        packets.extend((0..32).map(|_| noise() as u8));
    }
    let mut comm = 1u16.to_be_bytes().to_vec();
    comm.extend_from_slice(&400u32.to_be_bytes());
    comm.extend_from_slice(&16u16.to_be_bytes());
    comm.extend_from_slice(&[0x40, 0x0C, 0xFA, 0, 0, 0, 0, 0, 0, 0, b'i', b'm', b'a', b'4', 0, 0]);
    let body = [&b"AIFC"[..], &chunk(b"COMM", &comm), &chunk(b"SSND", &[&[0u8; 8][..], &packets].concat())].concat();
    let aifc = [&b"FORM"[..], &(body.len() as u32).to_be_bytes(), &body].concat();
    let samples: Vec<u8> = (0..32000).flat_map(|_| ((noise() as i16) / 4).to_be_bytes()).collect();
    let mut desc = 16000f64.to_be_bytes().to_vec();
    desc.extend_from_slice(b"lpcm");
    for field in [6u32, 2, 1, 1, 16] {
        desc.extend_from_slice(&field.to_be_bytes()); // big-endian signed, 2 bytes, 1 frame, mono, 16 bits
    }
    let caf_chunk = |id: &[u8; 4], body: &[u8]| [&id[..], &(body.len() as i64).to_be_bytes(), body].concat();
    let caf = [
        &b"caff\x00\x01\x00\x00"[..],
        &caf_chunk(b"desc", &desc),
        &caf_chunk(b"data", &[&[0u8; 4][..], &samples].concat()),
    ]
    .concat();
    for (name, bytes, format) in [("old.aifc", aifc, "an AIFF-C (IMA4)"), ("memo.caf", caf, "a CAF")] {
        std::fs::write(fx.p(name), &bytes).unwrap();
        let o = fx.run_piped(&["predict", "model.laq", "-"], &bytes);
        assert_eq!(o.status.code(), Some(1), "{name}");
        assert!(
            stderr(&o).starts_with(&format!(
                "serlaq-rt: error: standard input: cannot decode audio: {format} file, which serlaq reads from a file, not a pipe: give its path or redirect it (< FILE)"
            )),
            "{name}: {}",
            stderr(&o)
        );
        let by_path = fx.run(&["predict", "model.laq", name]);
        assert!(by_path.status.success(), "{name}: {}", stderr(&by_path));
        let file = std::fs::File::open(fx.p(name)).unwrap();
        let redirected = fx.run_with_stdin(&["predict", "model.laq", "-"], file.into());
        assert_eq!(stdout(&redirected), stdout(&by_path).replacen(name, "-", 1), "{name}");
    }
}
