//! `serlaq-rt serve` as a user runs it: the built binary on a free loopback port, every
//! endpoint against the CLI's own output for the same files (`predict --format json`,
//! `--segments --format jsonl`, `info --json`), the WebSocket with random frame sizes
//! against offline segmentation, every limit and bad input against its documented answer,
//! and the abuse cases (malformed HTTP, huge Content-Length, endless body, silent and
//! misbehaving WebSockets, thousands of tiny frames), after which the server still serves
//! with bounded memory. Every wait is bounded (short server timeouts, socket timeouts).

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_serlaq-rt");
const EPOCH: &str = "1764835200";
mod common;
use common::{clip, laq_bytes, lcg, wav_bytes};

/// Speech-like bursts between silences, `seconds` long at `rate`.
fn talk(rate: u32) -> Vec<f32> {
    let mut out = Vec::new();
    for (kind, secs, quiet) in [(0u64, 1.7f32, 0.6f32), (2, 2.3, 1.1), (1, 1.2, 0.0), (0, 2.9, 0.4)] {
        out.extend(clip(kind, rate, secs));
        out.extend(std::iter::repeat_n(0.0, (quiet * rate as f32) as usize));
    }
    out
}

struct Server {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Server {
    fn start(name: &str, extra: &[&str]) -> Server {
        let dir = std::env::temp_dir().join(format!("serlaq-serve-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("model.laq"), laq_bytes()).unwrap();
        std::fs::write(dir.join("talk.wav"), wav_bytes(16000, 1, &talk(16000))).unwrap();
        std::fs::write(dir.join("a.wav"), wav_bytes(8000, 2, &clip(0, 8000, 1.0).repeat(2))).unwrap();
        std::fs::write(dir.join("b.wav"), wav_bytes(22050, 1, &clip(2, 22050, 1.5))).unwrap();
        std::fs::write(dir.join("bad.wav"), b"RIFF....not audio").unwrap();
        let mut args = vec!["serve", "--model", "emo=model.laq", "--model", "other=model.laq", "--port", "0"];
        args.extend_from_slice(extra);
        let mut child = Command::new(BIN)
            .args(&args)
            .env("SOURCE_DATE_EPOCH", EPOCH) // an adapted file's date, as the CLI's below
            .current_dir(&dir)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stderr.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("serlaq-rt: serving "), "{line}");
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Server { addr: addr.to_string(), child, dir }
    }

    fn cli(&self, args: &[&str]) -> Vec<u8> {
        Command::new(BIN).args(args).env("SOURCE_DATE_EPOCH", EPOCH).current_dir(&self.dir).output().unwrap().stdout
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    }

    /// One request (`Connection: close`); the status, the head, the de-chunked body.
    fn raw(&self, request: &[u8]) -> (u16, String, Vec<u8>) {
        let mut s = self.connect();
        s.write_all(request).unwrap();
        read_response(&mut s)
    }

    fn req(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String, Vec<u8>) {
        let mut r = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            r.push_str(&format!("{k}: {v}\r\n"));
        }
        r.push_str("\r\n");
        let mut bytes = r.into_bytes();
        bytes.extend_from_slice(body);
        self.raw(&bytes)
    }

    fn get(&self, target: &str) -> (u16, String, Vec<u8>) {
        self.req("GET", target, &[], b"")
    }

    fn post(&self, target: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
        self.req("POST", target, &[], body)
    }

    fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(name)).unwrap()
    }

    fn rss_kb(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).unwrap().parse().unwrap()
    }

    fn ws(&self, path: &str) -> tungstenite::WebSocket<TcpStream> {
        let s = self.connect();
        let (ws, _) = tungstenite::client(format!("ws://{}{path}", self.addr), s).unwrap();
        ws
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn read_response(s: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(&all)));
    let head = String::from_utf8_lossy(&all[..split]).to_string();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = all[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap().trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + n]);
            rest = &rest[nl + 4 + n..];
        }
        body = out;
    }
    (status, head, body)
}

/// The JSON error body every refusal has.
fn error_of(r: &(u16, String, Vec<u8>)) -> (u16, String, String) {
    let v: Value =
        serde_json::from_slice(&r.2).unwrap_or_else(|_| panic!("not JSON: {:?}", String::from_utf8_lossy(&r.2)));
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
    (r.0, v["error"].as_str().unwrap().to_string(), v["detail"].as_str().unwrap().to_string())
}

fn multipart(files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let b = "serlaqboundary7d1";
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend_from_slice(format!("--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={b}"), body)
}

/// Streams `samples` (pcm16 of the WAV) in frames of random sizes; the text messages back.
fn stream_pcm16(srv: &Server, config: Value, pcm: &[u8], seed: u64, max_frame: usize) -> Vec<String> {
    let mut ws = srv.ws("/v1/stream");
    ws.send(Message::text(config.to_string())).unwrap();
    let mut st = seed;
    let mut i = 0;
    while i < pcm.len() {
        let n = 2 * (1 + (lcg(&mut st) as usize % max_frame));
        let end = (i + n).min(pcm.len());
        ws.send(Message::binary(pcm[i..end].to_vec())).unwrap();
        i = end;
    }
    ws.send(Message::text("{\"end\": true}")).unwrap();
    let mut texts = Vec::new();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => texts.push(t.to_string()),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    texts
}

fn wav_pcm(bytes: &[u8]) -> &[u8] {
    &bytes[44..]
}

#[test]
fn endpoints_answer_what_the_cli_prints() {
    let srv = Server::start("endpoints", &[]);
    let (status, head, body) = srv.get("/healthz");
    assert_eq!((status, body.as_slice()), (200, &b"{\"status\": \"ok\"}"[..]), "{head}");

    // models: the CLI's info --json per model, by name, the first the default
    let (status, _, body) = srv.get("/v1/models");
    assert_eq!(status, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    let info: Value = serde_json::from_slice(&srv.cli(&["info", "model.laq", "--json"])).unwrap();
    assert_eq!(v["models"][0]["name"], "emo");
    assert_eq!(v["models"][0]["default"], true);
    assert_eq!(v["models"][1]["name"], "other");
    assert_eq!(v["models"][0]["info"], info);
    // the page's "far from home" note reads the threshold there
    assert!(v["models"][0]["info"]["confidence"]["ood_threshold"].as_f64().is_some_and(|t| t > 0.0));

    // predict, raw body: the bytes of `predict --format json`
    let cli = srv.cli(&["predict", "model.laq", "b.wav", "--format", "json", "--top-k", "2"]);
    let (status, head, body) = srv.post("/v1/predict?name=b.wav&top_k=2", &srv.file("b.wav"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"));
    assert_eq!(String::from_utf8(body).unwrap(), String::from_utf8(cli).unwrap());
    let (_, _, body) = srv.post("/v1/predict?name=b.wav&format=jsonl&model=other", &srv.file("b.wav"));
    assert_eq!(body, srv.cli(&["predict", "model.laq", "b.wav", "--format", "jsonl"]));

    // multipart, several files, a bad one among them: the good ones still answered
    let files = [("a.wav", srv.file("a.wav")), ("bad.wav", srv.file("bad.wav")), ("b.wav", srv.file("b.wav"))];
    let parts: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let (ctype, body) = multipart(&parts);
    let (status, _, got) = srv.req("POST", "/v1/predict", &[("Content-Type", &ctype)], &body);
    assert_eq!(status, 200);
    let cli = srv.cli(&["predict", "model.laq", "a.wav", "bad.wav", "b.wav", "--format", "json"]);
    assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(cli).unwrap());

    // segments: the bytes of `predict --segments --format jsonl`
    for q in [
        "",
        "&hop=0.5&top_k=3",
        "&window=1.0&no_vad=1",
        "&vad_db=-30&min_speech=0.5",
        "&hop=0.5&running_norm=1",
        "&hop=0.5&running_norm=1&running_balance=0",
    ] {
        let (status, head, got) = srv.post(&format!("/v1/segments?name=talk.wav{q}"), &srv.file("talk.wav"));
        assert_eq!(status, 200, "{q}");
        assert!(head.to_ascii_lowercase().contains("application/x-ndjson"));
        let mut args = vec!["predict", "model.laq", "talk.wav", "--segments", "--format", "jsonl"];
        let flags: Vec<String> = q
            .split('&')
            .filter(|s| !s.is_empty())
            .flat_map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                match k {
                    "no_vad" => vec!["--no-vad".to_string()],
                    "running_norm" => vec!["--running-norm".to_string()],
                    "running_balance" => vec!["--no-running-balance".to_string()],
                    _ => vec![format!("--{}", k.replace('_', "-")), v.to_string()],
                }
            })
            .collect();
        args.extend(flags.iter().map(String::as_str));
        let want = srv.cli(&args);
        assert!(want.len() > 500, "{}", String::from_utf8_lossy(&want));
        assert_eq!(String::from_utf8(got).unwrap(), String::from_utf8(want).unwrap(), "{q}");
    }

    // the page: self-contained HTML with the microphone worklet
    let (status, head, body) = srv.get("/");
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("text/html"));
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains("audioWorklet") && page.contains("/v1/stream") && !page.contains("https://"));

    // metrics count what was answered
    let (status, _, body) = srv.get("/metrics");
    assert_eq!(status, 200);
    let m = String::from_utf8(body).unwrap();
    assert!(m.contains("serlaq_http_requests_total{endpoint=\"/v1/predict\",status=\"200\"} 3"), "{m}");
    assert!(m.contains("serlaq_open_streams 0"), "{m}");
    assert!(m.contains("serlaq_audio_seconds_total"), "{m}");
    assert!(m.contains("serlaq_http_request_duration_seconds_bucket"), "{m}");
}

#[test]
fn adapt_answers_the_file_serlaq_rt_adapt_writes() {
    let srv = Server::start("adapt", &[]);
    let names: Vec<String> = (0..24).map(|k| format!("c{k:02}.wav")).collect();
    for (k, name) in names.iter().enumerate() {
        let rate = [8000, 16000, 22050][k % 3];
        let wave = clip(k as u64 % 3, rate, 1.2 + 0.05 * k as f32);
        std::fs::write(srv.dir.join(name), wav_bytes(rate, 1, &wave)).unwrap();
    }
    let mut given: Vec<&str> = names.iter().map(String::as_str).collect();
    given.insert(5, "bad.wav");
    let files: Vec<(&str, Vec<u8>)> = given.iter().map(|n| (*n, srv.file(n))).collect();
    let parts: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let (ctype, body) = multipart(&parts);
    for (query, cli_extra) in
        [("", vec![]), ("?model=other&labels=angry,sad&std=target", vec!["--labels", "angry,sad", "--std", "target"])]
    {
        let (status, head, got) = srv.req("POST", &format!("/v1/adapt{query}"), &[("Content-Type", &ctype)], &body);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&got));
        let mut args = vec!["adapt", "model.laq"];
        args.extend(&given);
        args.extend(["--out", "cli.laq"]);
        args.extend(&cli_extra);
        let line = String::from_utf8(srv.cli(&args)).unwrap();
        assert_eq!(got, srv.file("cli.laq"), "{query}: not the file serlaq-rt adapt writes");
        let summary =
            line.strip_prefix("adapted model.laq ").and_then(|l| l.strip_suffix("; wrote cli.laq\n")).unwrap();
        let head = head.to_ascii_lowercase();
        assert!(head.contains(&format!("x-serlaq-summary: {}", summary.to_ascii_lowercase())), "{head}\n{summary}");
        assert!(
            head.contains("x-serlaq-left-out: bad.wav: ") && head.contains("content-type: application/octet-stream")
        );
        let name = if query.is_empty() { "emo" } else { "other" };
        assert!(head.contains(&format!("content-disposition: attachment; filename=\"{name}-adapted.laq\"")), "{head}");
    }
    // nothing left out: no such header
    let good: Vec<(&str, &[u8])> = parts.iter().filter(|(n, _)| *n != "bad.wav").copied().collect();
    let (ctype, body) = multipart(&good);
    let (status, head, _) = srv.req("POST", "/v1/adapt", &[("Content-Type", &ctype)], &body);
    assert!(status == 200 && !head.to_ascii_lowercase().contains("x-serlaq-left-out"), "{head}");
    // too little: how much more, and the file left out, in one line
    let (ctype, body) = multipart(&parts[..6]);
    let r = srv.req("POST", "/v1/adapt", &[("Content-Type", &ctype)], &body);
    let (status, error, detail) = error_of(&r);
    assert_eq!((status, error.as_str()), (422, "too little audio"), "{detail}");
    assert!(detail.contains("(15 more clips and ") && detail.ends_with("; left out: bad.wav: cannot decode audio (format: unknown (extension .wav); no decodable audio stream found: unsupported feature: core (probe): no suitable format reader found)"), "{detail}");
    // one raw body is one clip (a recording longer than 30 s would be its windows)
    let r = srv.post("/v1/adapt", &srv.file("talk.wav"));
    let (status, _, detail) = error_of(&r);
    assert!(status == 422 && detail.contains(": 1 usable clip with ") && detail.contains("(19 more clips"), "{detail}");
    // a label the model lacks, an unknown option, an unknown model: 400 naming it
    for (query, want) in [
        ("labels=calm,sad", "adapt: labels: "),
        ("window=2", "window: unknown parameter"),
        ("model=nope", "no model named \"nope\""),
    ] {
        let r = srv.req("POST", &format!("/v1/adapt?{query}"), &[("Content-Type", &ctype)], &body);
        let (status, _, detail) = error_of(&r);
        assert_eq!(status, 400, "{query}: {detail}");
        assert!(detail.starts_with(want), "{query}: {detail}");
    }
}

#[test]
fn adapt_with_serve_adds_the_adapted_model_to_the_server() {
    let srv = Server::start("adapt-serve", &["--max-adapted", "2"]);
    let names: Vec<String> = (0..24).map(|k| format!("c{k:02}.wav")).collect();
    for (k, name) in names.iter().enumerate() {
        let rate = [8000, 16000, 22050][k % 3];
        std::fs::write(srv.dir.join(name), wav_bytes(rate, 1, &clip(k as u64 % 3, rate, 1.2 + 0.05 * k as f32)))
            .unwrap();
    }
    let files: Vec<(&str, Vec<u8>)> = names.iter().map(|n| (n.as_str(), srv.file(n))).collect();
    let parts: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let (ctype, body) = multipart(&parts);
    let adapt = |query: &str| srv.req("POST", &format!("/v1/adapt?{query}"), &[("Content-Type", &ctype)], &body);
    let listing = || -> Value { serde_json::from_slice(&srv.get("/v1/models").2).unwrap() };
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    let predict = |model: &str| text(srv.post(&format!("/v1/predict?name=b.wav&model={model}"), &srv.file("b.wav")).2);
    let cli_predict = |laq: &str| text(srv.cli(&["predict", laq, "b.wav", "--format", "json"]));

    // the answer is the adapted file, and the server now serves it under the name asked
    let (status, head, laq) = adapt("serve=room");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&laq));
    assert!(head.to_ascii_lowercase().contains("x-serlaq-served-as: room"), "{head}");
    std::fs::write(srv.dir.join("room.laq"), &laq).unwrap();
    let v = listing();
    assert_eq!(v["max_adapted"], 2);
    let served: Vec<(&str, bool)> =
        v["models"].as_array().unwrap().iter().map(|m| (m["name"].as_str().unwrap(), m["adapted"] == true)).collect();
    assert_eq!(served, [("emo", false), ("other", false), ("room", true)]);
    let info: Value = serde_json::from_slice(&srv.cli(&["info", "room.laq", "--json"])).unwrap();
    assert_eq!(v["models"][2]["info"]["provenance"], info["provenance"]);
    // it answers as the downloaded file does, not as the model it was adapted from
    assert_eq!(predict("room"), cli_predict("room.laq"));
    assert_ne!(predict("room"), predict("emo"));

    // refused before any audio is read: a name the server started with, not a model name
    for (query, want) in [
        ("serve=emo", "serve: \"emo\" is a model this server was started with; choose another name"),
        ("serve=a%20b", "serve: model name \"a b\": character ' ' not allowed (letters, digits, . _ -)"),
    ] {
        let (status, error, detail) = error_of(&srv.req("POST", &format!("/v1/adapt?{query}"), &[], b"x"));
        assert_eq!((status, error.as_str(), detail.as_str()), (400, "bad parameter", want), "{query}");
    }
    // the same name again replaces its model; a second name fits; a third is refused
    let (status, _, again) = adapt("serve=room&model=other&std=target");
    assert_eq!(status, 200);
    std::fs::write(srv.dir.join("room2.laq"), &again).unwrap();
    assert_ne!(again, laq);
    assert_eq!(predict("room"), cli_predict("room2.laq"));
    assert_eq!(adapt("serve=hall").0, 200);
    let (status, error, detail) = error_of(&adapt("serve=third"));
    assert_eq!((status, error.as_str()), (409, "too many adapted models"), "{detail}");
    assert!(detail.ends_with("serve under one of their names to replace it: room, hall"), "{detail}");
    // without serve, nothing is kept
    assert_eq!(adapt("").0, 200);
    assert_eq!(listing()["models"].as_array().unwrap().len(), 4);

    // a server told to keep none
    let none = Server::start("adapt-serve-none", &["--max-adapted", "0"]);
    let (status, _, detail) = error_of(&none.req("POST", "/v1/adapt?serve=room", &[], b"x"));
    assert_eq!((status, detail.as_str()), (400, "serve: this server keeps no adapted models (--max-adapted 0)"));
}

#[test]
fn websocket_equals_offline_segmentation() {
    let srv = Server::start("ws", &[]);
    let wav = srv.file("talk.wav");
    for (seed, opts, max_frame) in [
        (1u64, json!({}), 3000usize),
        (2, json!({"hop": 0.5, "top_k": 2}), 40),
        (3, json!({"no_vad": true, "window": 1.5}), 9000),
        (4, json!({"running_norm": true, "hop": 0.5}), 700),
        (5, json!({"running_norm": true, "running_balance": false}), 900),
    ] {
        let mut config = json!({"sample_rate": 16000, "format": "pcm16", "name": "talk.wav"});
        config.as_object_mut().unwrap().extend(opts.as_object().unwrap().clone());
        let got = stream_pcm16(&srv, config, wav_pcm(&wav), seed, max_frame);
        let mut args = vec![
            "predict".to_string(),
            "model.laq".into(),
            "talk.wav".into(),
            "--segments".into(),
            "--format".into(),
            "jsonl".into(),
        ];
        for (k, v) in opts.as_object().unwrap() {
            match k.as_str() {
                "no_vad" => args.push("--no-vad".into()),
                "running_norm" => args.push("--running-norm".into()),
                "running_balance" => args.push("--no-running-balance".into()),
                _ => args.extend([format!("--{}", k.replace('_', "-")), v.to_string()]),
            }
        }
        let want = String::from_utf8(srv.cli(&args.iter().map(String::as_str).collect::<Vec<_>>())).unwrap();
        let want: Vec<&str> = want.lines().collect();
        assert!(want.len() > 5);
        assert_eq!(got, want, "seed {seed}");
    }
    // f32 frames of the same samples: the same timeline
    let f32s: Vec<u8> = wav_pcm(&wav)
        .chunks_exact(2)
        .flat_map(|c| (i16::from_le_bytes([c[0], c[1]]) as f32 / 32768.0).to_le_bytes())
        .collect();
    let mut ws = srv.ws("/v1/stream");
    ws.send(Message::text(json!({"sample_rate": 16000, "format": "f32", "name": "talk.wav"}).to_string())).unwrap();
    for c in f32s.chunks(4 * 1234) {
        ws.send(Message::binary(c.to_vec())).unwrap();
    }
    ws.send(Message::text("{\"end\": true}")).unwrap();
    let mut got = Vec::new();
    while let Ok(m) = ws.read() {
        if let Message::Text(t) = m {
            got.push(t.to_string());
        }
    }
    let want =
        String::from_utf8(srv.cli(&["predict", "model.laq", "talk.wav", "--segments", "--format", "jsonl"])).unwrap();
    assert_eq!(got, want.lines().collect::<Vec<_>>());
}

const TIGHT: &[&str] = &[
    "--read-timeout",
    "1",
    "--idle-timeout",
    "1",
    "--max-body",
    "400000",
    "--max-audio-seconds",
    "12",
    "--max-files",
    "2",
    "--max-streams",
    "2",
];

#[test]
fn every_limit_and_bad_input_answers_its_4xx() {
    let srv = Server::start("limits", TIGHT);
    let wav = srv.file("b.wav");
    // (what is sent, the response: status, head, body; the status, error and detail it must give)
    type Case<'a> = (&'a str, (u16, String, Vec<u8>), u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        ("unknown path", srv.get("/v2/nothing"), 404, "not found", "/v2/nothing"),
        ("wrong method", srv.get("/v1/predict"), 405, "method not allowed", "GET"),
        ("empty body", srv.post("/v1/predict", b""), 400, "empty body", "body"),
        ("unknown parameter", srv.post("/v1/predict?colour=red", &wav), 400, "bad parameter", "colour"),
        ("top_k 0", srv.post("/v1/predict?top_k=0", &wav), 400, "bad parameter", "top_k"),
        ("top_k text", srv.post("/v1/predict?top_k=two", &wav), 400, "bad parameter", "top_k"),
        ("format", srv.post("/v1/predict?format=xml", &wav), 400, "bad parameter", "format"),
        ("unknown model", srv.post("/v1/predict?model=nope", &wav), 400, "unknown model", "emo, other"),
        ("negative window", srv.post("/v1/segments?window=-1", &wav), 400, "bad parameter", "window"),
        ("hop > window", srv.post("/v1/segments?window=1&hop=2", &wav), 400, "bad parameter", "hop"),
        ("NaN hop", srv.post("/v1/segments?hop=nan", &wav), 400, "bad parameter", "hop"),
        ("vad_db range", srv.post("/v1/segments?vad_db=20", &wav), 400, "bad parameter", "vad_db"),
        ("no_vad + vad_db", srv.post("/v1/segments?no_vad=1&vad_db=-40", &wav), 400, "bad parameter", "no_vad"),
        ("running_norm text", srv.post("/v1/segments?running_norm=maybe", &wav), 400, "bad parameter", "running_norm"),
        ("running_norm on predict", srv.post("/v1/predict?running_norm=1", &wav), 400, "bad parameter", "running_norm"),
        (
            "running_balance text",
            srv.post("/v1/segments?running_norm=1&running_balance=2", &wav),
            400,
            "bad parameter",
            "running_balance",
        ),
        (
            "not audio",
            srv.post("/v1/predict?name=x.wav", b"hello, this is not audio"),
            422,
            "unreadable audio",
            "x.wav",
        ),
        (
            "not audio, segments",
            srv.post("/v1/segments?name=x.wav", b"hello, this is not audio"),
            422,
            "unreadable audio",
            "x.wav",
        ),
        (
            "too long",
            srv.post("/v1/predict?name=long.wav", &wav_bytes(8000, 1, &clip(0, 8000, 13.0))),
            413,
            "audio too long",
            "long.wav",
        ),
        (
            "too long, segments",
            srv.post("/v1/segments?name=long.wav", &wav_bytes(8000, 1, &clip(0, 8000, 13.0))),
            413,
            "audio too long",
            "12 s",
        ),
        ("body too large", srv.post("/v1/predict", &vec![0u8; 400_001]), 413, "body too large", "400000"),
        ("not a websocket", srv.get("/v1/stream"), 400, "not a websocket", "WebSocket"),
    ];
    for (what, r, status, error, detail) in cases {
        let (s, e, d) = error_of(&r);
        assert_eq!((s, e.as_str()), (status, error), "{what}: {d}");
        assert!(d.contains(detail), "{what}: {d:?} should name {detail:?}");
    }
    // chunked, no Content-Length: refused when it passes the limit
    let mut req = "POST /v1/predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
        .to_string()
        .into_bytes();
    for _ in 0..5 {
        req.extend_from_slice(format!("{:x}\r\n", 100_000).as_bytes());
        req.extend_from_slice(&vec![1u8; 100_000]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(error_of(&srv.raw(&req)).1, "body too large");
    // multipart: too many files, no files, a broken body; the limit of files is per request
    let (ctype, body) = multipart(&[("a.wav", &wav), ("b.wav", &wav), ("c.wav", &wav)]);
    assert_eq!(error_of(&srv.req("POST", "/v1/predict", &[("Content-Type", &ctype)], &body)).1, "too many files");
    let (ctype, body) = multipart(&[]);
    assert_eq!(error_of(&srv.req("POST", "/v1/predict", &[("Content-Type", &ctype)], &body)).1, "no files");
    let r = srv.req("POST", "/v1/predict", &[("Content-Type", "multipart/form-data; boundary=zz")], b"--zz\r\nbroken");
    assert_eq!(error_of(&r).0, 400);
    // a too-long file in a multipart batch is that file's error; the others are answered
    let long = wav_bytes(8000, 1, &clip(0, 8000, 13.0));
    let (ctype, body) = multipart(&[("long.wav", &long), ("b.wav", &wav)]);
    let (status, _, got) = srv.req("POST", "/v1/predict", &[("Content-Type", &ctype)], &body);
    let v: Value = serde_json::from_slice(&got).unwrap();
    assert_eq!(status, 200);
    assert!(v[0]["error"].as_str().unwrap().contains("long.wav: more than 12 s"), "{v}");
    assert_eq!(v[1]["path"], "b.wav");
    assert!(v[1]["label"].is_string());
    // streams: at most 2 open, the third is refused before the upgrade
    let a = srv.ws("/v1/stream");
    let b = srv.ws("/v1/stream");
    let upgrade = b"GET /v1/stream HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let (s, e, _) = error_of(&srv.raw(upgrade));
    assert_eq!((s, e.as_str()), (503, "busy"));
    drop((a, b));
    // CORS is off: no Access-Control header even when asked
    let (_, head, _) = srv.req("GET", "/healthz", &[("Origin", "http://evil.example")], b"");
    assert!(!head.to_ascii_lowercase().contains("access-control"), "{head}");
}

#[test]
fn refusals_made_before_the_body_is_read_reach_a_client_that_sends_it_whole() {
    // curl and a browser's fetch send the whole body before reading the answer: a refusal
    // given before the body is read must still take the body in, or they see the
    // connection reset (write failed, or the answer lost), not the refusal
    let srv = Server::start("early", &["--max-adapted", "1"]);
    let big = vec![7u8; 8 << 20]; // far more than a socket's buffers hold
    for (target, status, error) in [
        ("/v1/predict?colour=red", 400, "bad parameter"),
        ("/v1/predict?model=nope", 400, "unknown model"),
        ("/v1/segments?hop=nan", 400, "bad parameter"),
        ("/v1/adapt?serve=emo", 400, "bad parameter"),
        ("/v1/adapt?labels=joy", 400, "bad parameter"),
    ] {
        let (s, e, d) = error_of(&srv.post(target, &big));
        assert_eq!((s, e.as_str()), (status, error), "{target}: {d}");
    }
    // and the server goes on answering
    assert_eq!(srv.post("/v1/predict?name=b.wav", &srv.file("b.wav")).0, 200);
}

#[test]
fn api_key_and_cors_when_asked() {
    let srv = Server::start("key", &["--api-key", "s3cret", "--cors", "http://app.example"]);
    let wav = srv.file("b.wav");
    assert_eq!(error_of(&srv.post("/v1/predict", &wav)).0, 401);
    assert_eq!(error_of(&srv.req("POST", "/v1/predict", &[("Authorization", "Bearer wrong")], &wav)).1, "unauthorized");
    assert_eq!(error_of(&srv.get("/metrics")).0, 401);
    assert_eq!(error_of(&srv.get("/v1/models")).0, 401);
    assert_eq!(srv.req("POST", "/v1/predict", &[("Authorization", "Bearer s3cret")], &wav).0, 200);
    assert_eq!(srv.req("POST", "/v1/predict", &[("X-API-Key", "s3cret")], &wav).0, 200);
    assert_eq!(srv.get("/v1/models?api_key=s3cret").0, 200);
    // the page and the health check stay open (the page asks for the key)
    assert_eq!(srv.get("/").0, 200);
    assert_eq!(srv.get("/healthz").0, 200);
    let (_, head, _) = srv.req("GET", "/healthz", &[("Origin", "http://app.example")], b"");
    assert!(head.to_ascii_lowercase().contains("access-control-allow-origin: http://app.example"), "{head}");
    let (_, head, _) = srv.req("GET", "/healthz", &[("Origin", "http://other.example")], b"");
    assert!(!head.to_ascii_lowercase().contains("access-control-allow-origin"), "{head}");
    // the key from the environment
    let dir = std::env::temp_dir().join(format!("serlaq-serve-test-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("m.laq"), laq_bytes()).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--model", "m.laq", "--port", "0"])
        .env("SERLAQ_API_KEY", "envkey")
        .current_dir(&dir)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.split("http://").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let other = Server { child, addr, dir };
    assert_eq!(other.get("/v1/models").0, 401);
    assert_eq!(other.req("GET", "/v1/models", &[("X-API-Key", "envkey")], b"").0, 200);
}

#[test]
fn bad_start_is_one_line() {
    let out = Command::new(BIN).args(["serve", "--model", "x=/nonexistent/m.laq", "--port", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("model x: /nonexistent/m.laq"), "{err}");
    let out = Command::new(BIN).args(["serve", "--model", "a b=m.laq"]).output().unwrap();
    assert!(String::from_utf8(out.stderr).unwrap().contains("not allowed"));
    // a limit that is no count is refused at the start, naming the flag
    for bad in ["-1", "many"] {
        let out = Command::new(BIN).args(["serve", "--model", "x=m.laq", "--max-adapted", bad]).output().unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("--max-adapted") || err.contains("'-1'"), "{bad}: {err}");
    }
    // a thread count beyond any machine is refused before a thread starts (it once
    // aborted asking for 32 GiB of stacks)
    let out = Command::new(BIN).args(["serve", "--model", "x=m.laq", "--threads", "4294967296"]).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--threads") && err.contains("1024"), "{err}");
}

fn ws_texts(ws: &mut tungstenite::WebSocket<TcpStream>) -> (Vec<String>, Option<u16>) {
    let mut texts = Vec::new();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => texts.push(t.to_string()),
            Ok(Message::Close(c)) => return (texts, c.map(|c| u16::from(c.code))),
            Ok(_) => {}
            Err(_) => return (texts, None),
        }
    }
}

#[test]
fn abuse_is_answered_or_dropped_and_the_server_keeps_serving() {
    let srv = Server::start("abuse", TIGHT);
    let wav = srv.file("talk.wav");
    let pcm = wav_pcm(&wav).to_vec();
    let warm = srv.post("/v1/segments?name=talk.wav", &wav);
    assert_eq!(warm.0, 200);
    let before = srv.rss_kb();
    let t0 = Instant::now();
    for round in 0..3 {
        // malformed HTTP: hyper's bare 400, the connection closed
        let (status, _, _) = srv.raw(b"GARBAGE / NOT-HTTP\r\n\r\n");
        assert_eq!(status, 400);
        // a 2 GB Content-Length: refused from the header, nothing read
        let (status, _, body) =
            srv.raw(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2147483648\r\n\r\nRIFF");
        assert_eq!((status, String::from_utf8_lossy(&body).contains("body too large")), (413, true));
        // a body that never ends: 408 after the read timeout
        let mut s = srv.connect();
        s.write_all(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nRIFF").unwrap();
        let r = read_response(&mut s);
        assert_eq!(error_of(&r).1, "body timeout");
        // a head that never ends: the connection is closed
        let mut s = srv.connect();
        s.write_all(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nX-Slow: ").unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        // a WebSocket that never sends: an idle-timeout error, then a close
        let mut ws = srv.ws("/v1/stream");
        let (texts, code) = ws_texts(&mut ws);
        assert!(texts.len() == 1 && texts[0].contains("idle timeout"), "{texts:?}");
        assert_eq!(code, Some(1008));
        // audio before the config, a bad config, an odd frame length
        let mut ws = srv.ws("/v1/stream");
        ws.send(Message::binary(vec![0u8; 64])).unwrap();
        assert!(ws_texts(&mut ws).0[0].contains("config first"));
        for (bad, key) in [
            (json!({"sample_rate": 0, "format": "pcm16"}), "sample_rate"),
            (json!({"sample_rate": 16000, "format": "mp3"}), "format"),
            (json!({"sample_rate": 16000, "format": "f32", "colour": 1}), "colour"),
            (json!({"sample_rate": 16000, "format": "f32", "hop": -1}), "hop"),
            (json!({"sample_rate": 16000, "format": "f32", "running_norm": "yes"}), "running_norm"),
            (
                json!({"sample_rate": 16000, "format": "f32", "running_norm": true, "running_balance": 2}),
                "running_balance",
            ),
        ] {
            let mut ws = srv.ws("/v1/stream");
            ws.send(Message::text(bad.to_string())).unwrap();
            let (texts, code) = ws_texts(&mut ws);
            assert!(texts[0].contains("bad config") && texts[0].contains(key), "{bad}: {texts:?}");
            assert_eq!(code, Some(1008));
        }
        let mut ws = srv.ws("/v1/stream");
        ws.send(Message::text(json!({"sample_rate": 16000, "format": "pcm16"}).to_string())).unwrap();
        ws.send(Message::binary(vec![0u8; 3])).unwrap();
        assert!(ws_texts(&mut ws).0[0].contains("bad frame"));
        // NaN floats: that chunk refused and dropped, the stream goes on to its result
        let mut ws = srv.ws("/v1/stream");
        ws.send(Message::text(json!({"sample_rate": 16000, "format": "f32", "name": "talk.wav"}).to_string())).unwrap();
        let f32s: Vec<u8> = pcm
            .chunks_exact(2)
            .flat_map(|c| (i16::from_le_bytes([c[0], c[1]]) as f32 / 32768.0).to_le_bytes())
            .collect();
        let (head, tail) = f32s.split_at(4 * 16000 * 3);
        ws.send(Message::binary(head.to_vec())).unwrap();
        ws.send(Message::binary([1.0f32, f32::NAN, 0.5].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()))
            .unwrap();
        ws.send(Message::binary(tail.to_vec())).unwrap();
        ws.send(Message::text("{\"end\": true}")).unwrap();
        let (texts, code) = ws_texts(&mut ws);
        let want = String::from_utf8(srv.cli(&["predict", "model.laq", "talk.wav", "--segments", "--format", "jsonl"]))
            .unwrap();
        let errors: Vec<&String> = texts.iter().filter(|t| t.contains("NaN/inf")).collect();
        assert_eq!(errors.len(), 1, "{texts:?}");
        let rest: Vec<&str> = texts.iter().filter(|t| !t.contains("NaN/inf")).map(String::as_str).collect();
        assert_eq!(rest, want.lines().collect::<Vec<_>>());
        assert_eq!(code, Some(1000));
        // a changing sample rate: refused and closed
        let mut ws = srv.ws("/v1/stream");
        ws.send(Message::text(json!({"sample_rate": 16000, "format": "pcm16"}).to_string())).unwrap();
        ws.send(Message::binary(pcm[..3200].to_vec())).unwrap();
        ws.send(Message::text(json!({"sample_rate": 44100}).to_string())).unwrap();
        let (texts, code) = ws_texts(&mut ws);
        assert!(texts.last().unwrap().contains("sample rate changed"), "{texts:?}");
        assert_eq!(code, Some(1008));
        // frames after the end: the server has closed; they go nowhere
        let mut ws = srv.ws("/v1/stream");
        ws.send(Message::text(json!({"sample_rate": 16000, "format": "pcm16"}).to_string())).unwrap();
        ws.send(Message::binary(pcm[..32000].to_vec())).unwrap();
        ws.send(Message::text("{\"end\": true}")).unwrap();
        for _ in 0..50 {
            if ws.send(Message::binary(pcm[..320].to_vec())).is_err() {
                break;
            }
        }
        let (texts, _) = ws_texts(&mut ws);
        assert!(texts.last().is_some_and(|t| t.contains("\"summary\"")), "{texts:?}");
        // too long a stream: refused when it passes the limit
        let mut ws = srv.ws("/v1/stream");
        ws.send(Message::text(json!({"sample_rate": 16000, "format": "pcm16"}).to_string())).unwrap();
        let (texts, code) = loop {
            if ws.send(Message::binary(vec![0u8; 64000])).is_err() {
                break ws_texts(&mut ws);
            }
            if let Ok(Message::Text(_)) | Ok(Message::Close(_)) = {
                ws.get_mut().set_nonblocking(true).unwrap();
                let r = ws.read();
                ws.get_mut().set_nonblocking(false).unwrap();
                r
            } {
                break ws_texts(&mut ws);
            }
        };
        let _ = (texts, code);
        // a message over the size limit: the connection is closed (1009)
        let mut ws = srv.ws("/v1/stream");
        ws.send(Message::text(json!({"sample_rate": 16000, "format": "pcm16"}).to_string())).unwrap();
        let _ = ws.send(Message::binary(vec![0u8; 2 << 20]));
        let (_, code) = ws_texts(&mut ws);
        assert!(matches!(code, Some(1009) | None), "{code:?}");
        // thousands of tiny frames: the same timeline as offline
        if round == 0 {
            let got =
                stream_pcm16(&srv, json!({"sample_rate": 16000, "format": "pcm16", "name": "talk.wav"}), &pcm, 9, 2);
            assert_eq!(got, want.lines().collect::<Vec<_>>());
        }
    }
    // still serving, memory bounded
    let again = srv.post("/v1/segments?name=talk.wav", &wav);
    assert_eq!((again.0, again.2), (warm.0, warm.2));
    let after = srv.rss_kb();
    assert!(after < before + 30_000, "RSS {before} kB -> {after} kB");
    assert!(t0.elapsed() < Duration::from_secs(120));
}
