//! The server in-process (the library's `Server`, the shipped `general` model) against
//! clients that misbehave at the edges of the protocol: one that never reads its answer,
//! a WebSocket message over the size limit, a client that closes its WebSocket, and a server
//! stopped under an open stream. The runtime has one blocking-pool thread, as
//! `run_blocking` gives a one-core machine, so a worker held by one client would stop
//! every other request. Every wait is bounded (socket timeouts, deadlines on polling);
//! nothing is timed.

use serlaq_server::{Limits, ModelSource, Server, ServerConfig};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};

/// A server on a free loopback port, served by its own runtime on a thread; stopped (as
/// SIGTERM stops it) by `stop` or on drop.
struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(limits: Limits) -> Running {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .max_blocking_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let config = ServerConfig {
                    models: vec![("general".into(), ModelSource::General)],
                    port: 0,
                    limits,
                    ..ServerConfig::default()
                };
                let server = Server::bind(&config).await.unwrap();
                addr_tx.send(server.local_addr()).unwrap();
                server
                    .run(async {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
        });
        let addr = addr_rx.recv_timeout(Duration::from_secs(60)).expect("the server did not start");
        Running { addr, stop: Some(stop_tx), thread: Some(thread) }
    }

    fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        // a hang shows as a failed read, not a test that never ends
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        s
    }

    /// One request with `Connection: close`: the status and the whole answer.
    fn request(&self, method: &str, target: &str, body: &[u8]) -> (u16, String) {
        let mut s = self.connect();
        s.write_all(head(method, target, body.len()).as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut all = Vec::new();
        if let Err(e) = s.read_to_end(&mut all) {
            panic!("{method} {target}: no whole answer ({e}): the server is stuck");
        }
        let text = String::from_utf8_lossy(&all).to_string();
        let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (status, text)
    }

    fn ws(&self) -> tungstenite::WebSocket<TcpStream> {
        let (ws, _) = tungstenite::client(format!("ws://{}/v1/stream", self.addr), self.connect()).unwrap();
        ws
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

fn head(method: &str, target: &str, len: usize) -> String {
    format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n")
}

/// A mono 16-bit WAV of noise, `seconds` long at 8 kHz.
fn noise_wav(seconds: f64) -> Vec<u8> {
    let n = (seconds * 8000.0) as usize;
    let mut st = 7u64;
    let mut data = Vec::with_capacity(2 * n);
    for _ in 0..n {
        st = st.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let v = ((st >> 33) % 6000) as i16 - 3000;
        data.extend_from_slice(&v.to_le_bytes());
    }
    let mut w = Vec::with_capacity(44 + data.len());
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes()); // PCM
    w.extend_from_slice(&1u16.to_le_bytes()); // mono
    w.extend_from_slice(&8000u32.to_le_bytes());
    w.extend_from_slice(&16000u32.to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(data.len() as u32).to_le_bytes());
    w.extend_from_slice(&data);
    w
}

/// The texts received and the close code (None: the connection ended without a close).
fn ws_end(ws: &mut tungstenite::WebSocket<TcpStream>) -> (Vec<String>, Option<CloseCode>) {
    let mut texts = Vec::new();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) => texts.push(t.to_string()),
            Ok(Message::Close(c)) => return (texts, c.map(|c| c.code)),
            Ok(_) => {}
            Err(_) => return (texts, None),
        }
    }
}

/// A client that sends a long `/v1/segments` request and never reads the answer ties up
/// its own request only: another request is answered meanwhile, and the stalled answer is
/// cut (no final chunk) once the client has read nothing for `idle_timeout`, then counted.
#[test]
fn a_client_that_never_reads_holds_up_no_one_else() {
    let srv = Running::start(Limits { idle_timeout: Duration::from_secs(2), ..Limits::default() });
    // ~6 minutes of audio in 16 ms hops: some 10 MB of JSON lines, more than the socket
    // buffers hold
    let long = noise_wav(360.0);
    let mut stalled = srv.connect();
    stalled
        .write_all(head("POST", "/v1/segments?name=long.wav&hop=0.02&window=0.5&no_vad=1", long.len()).as_bytes())
        .unwrap();
    stalled.write_all(&long).unwrap();
    // the head says the worker has started; then this client reads nothing
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(stalled.read(&mut byte).unwrap(), 1, "no answer head: {}", String::from_utf8_lossy(&got));
        got.push(byte[0]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&got));
    // an answer is counted at the end of its body, not at its head
    let (_, metrics) = srv.request("GET", "/metrics", b"");
    assert!(!metrics.contains("endpoint=\"/v1/segments\""), "counted at its head:\n{metrics}");

    // another request still answers (it needs the one blocking-pool thread)
    let (status, text) = srv.request("POST", "/v1/predict?name=short.wav", &noise_wav(1.0));
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"label\""), "{text}");

    // the stalled answer is dropped and then counted (the metrics count an answer at the
    // end of its body)
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, metrics) = srv.request("GET", "/metrics", b"");
        if metrics.contains("serlaq_http_requests_total{endpoint=\"/v1/segments\",status=\"200\"} 1") {
            break;
        }
        assert!(Instant::now() < deadline, "the stalled answer was never dropped:\n{metrics}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // what reached the client is a cut answer: no final chunk
    let mut rest = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match stalled.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => rest.extend_from_slice(&buf[..n]),
        }
    }
    assert!(!rest.is_empty());
    assert!(!rest.ends_with(b"\r\n0\r\n\r\n"), "the answer looks whole");
}

/// A WebSocket message over 1 MiB gets an error message and close 1009 (the frame's
/// header says its length; the rest is never read).
#[test]
fn a_message_over_the_limit_is_closed_with_1009() {
    let srv = Running::start(Limits::default());
    let mut ws = srv.ws();
    ws.send(Message::text(r#"{"sample_rate": 16000, "format": "pcm16"}"#)).unwrap();
    // a masked binary frame of 2 MiB: its header and the first bytes
    let mut frame = vec![0x82, 0xFF];
    frame.extend_from_slice(&(2u64 << 20).to_be_bytes());
    frame.extend_from_slice(&[1, 2, 3, 4]);
    frame.extend_from_slice(&[0u8; 64]);
    ws.get_mut().write_all(&frame).unwrap();
    let (texts, code) = ws_end(&mut ws);
    assert_eq!(texts.len(), 1, "{texts:?}");
    assert!(texts[0].contains("message too big") && texts[0].contains("2097152"), "{texts:?}");
    assert_eq!(code, Some(CloseCode::Size));
}

/// A client's close is answered with a close (the clean 1000 a browser reports), before
/// the config and during a stream.
#[test]
fn a_clients_close_is_answered() {
    let srv = Running::start(Limits::default());
    for config in [false, true] {
        let mut ws = srv.ws();
        if config {
            ws.send(Message::text(r#"{"sample_rate": 16000, "format": "pcm16"}"#)).unwrap();
            ws.send(Message::binary(vec![0u8; 3200])).unwrap();
        }
        ws.close(Some(CloseFrame { code: CloseCode::Normal, reason: "bye".into() })).unwrap();
        let (texts, code) = ws_end(&mut ws);
        assert!(texts.is_empty(), "{texts:?}");
        assert_eq!(code, Some(CloseCode::Normal), "config sent: {config}");
    }
}

/// A chunk holding NaN says so once, and that the stream goes on.
#[test]
fn a_nan_chunk_is_named_once() {
    let srv = Running::start(Limits::default());
    let mut ws = srv.ws();
    ws.send(Message::text(r#"{"sample_rate": 16000, "format": "f32"}"#)).unwrap();
    let chunk: Vec<u8> = [0.0f32, f32::NAN, 0.5].iter().flat_map(|v| v.to_le_bytes()).collect();
    ws.send(Message::binary(chunk)).unwrap();
    let text = match ws.read().unwrap() {
        Message::Text(t) => t.to_string(),
        m => panic!("{m:?}"),
    };
    assert!(text.contains("NaN/inf samples") && text.contains("the stream goes on"), "{text}");
    assert_eq!(text.matches("rejected").count() + text.matches("dropped").count(), 1, "{text}");
    ws.close(None).unwrap();
}

/// A server told to stop (SIGTERM) closes an open stream with an error message and 1001,
/// and stops.
#[test]
fn stopping_closes_open_streams_with_1001() {
    let mut srv = Running::start(Limits::default());
    let mut ws = srv.ws();
    ws.send(Message::text(r#"{"sample_rate": 16000, "format": "pcm16"}"#)).unwrap();
    ws.send(Message::binary(vec![0u8; 3200])).unwrap();
    let stop = srv.stop.take().unwrap();
    let _ = stop.send(());
    let (texts, code) = ws_end(&mut ws);
    assert!(texts.len() == 1 && texts[0].contains("server stopping"), "{texts:?}");
    assert_eq!(code, Some(CloseCode::Away));
    drop(ws);
    srv.stop();
}
