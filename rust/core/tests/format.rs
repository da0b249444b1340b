//! `.laq` reader/writer: round trips, determinism, and every class of corruption.

use proptest::prelude::*;
use serlaq_core::format::{
    self, checksum, encode, LaqError, LaqFile, LayerInput, Quantizer, ReadOptions, TensorInput, ALIGN, MAX_HEADER_LEN,
    PRELUDE_LEN,
};

/// name, rows, cols, bits, quantizer, codes, scale, zero, bias
type Layer = (String, usize, usize, u32, Quantizer, Vec<u8>, Vec<f32>, Vec<f32>, Option<Vec<f32>>);
type HeaderEdit = Box<dyn Fn(&mut serde_json::Value)>;

#[derive(Debug, Clone)]
struct Model {
    layers: Vec<Layer>,
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    metadata: String,
}

impl Model {
    fn encode(&self) -> Result<Vec<u8>, LaqError> {
        let layers: Vec<LayerInput> = self
            .layers
            .iter()
            .map(|(name, rows, cols, bits, q, codes, scale, zero, bias)| LayerInput {
                name,
                rows: *rows,
                cols: *cols,
                bits: *bits,
                quantizer: *q,
                codes,
                scale,
                zero,
                bias: bias.as_deref(),
            })
            .collect();
        let tensors: Vec<TensorInput> =
            self.tensors.iter().map(|(name, shape, data)| TensorInput { name, shape, data }).collect();
        encode(&self.metadata, &layers, &tensors)
    }
}

fn lcg(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        s >> 33
    }
}

fn sample_model(seed: u64) -> Model {
    let mut next = lcg(seed);
    let shapes = [(16usize, 11usize, 3u32, false), (7, 16, 1, true), (5, 7, 8, false)];
    let mut layers = Vec::new();
    for (i, &(rows, cols, bits, binary)) in shapes.iter().enumerate() {
        let codes: Vec<u8> = (0..rows * cols).map(|_| (next() % (1 << bits)) as u8).collect();
        let n = if i == 0 { rows } else { 1 };
        let scale: Vec<f32> = (0..n).map(|_| (next() % 1000) as f32 / 7919.0 + 1e-3).collect();
        let zero: Vec<f32> = if binary { vec![0.5] } else { (0..n).map(|_| (next() % (1 << bits)) as f32).collect() };
        let bias = if i == 1 { None } else { Some((0..rows).map(|_| next() as f32 / 1e9 - 1.0).collect()) };
        let q = if binary { Quantizer::Binary } else { Quantizer::Affine };
        layers.push((format!("net.{}", 3 * i), rows, cols, bits, q, codes, scale, zero, bias));
    }
    let tensors = vec![
        ("norm.std".to_string(), vec![11], (0..11).map(|i| 1.0 + i as f32).collect()),
        ("norm.mean".to_string(), vec![11], (0..11).map(|i| i as f32 * 0.5 - 2.0).collect()),
        ("extra.grid".to_string(), vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    ];
    let metadata = r#"{"serlaq_version":"0.1.0","labels":["angry","sad"],"laq":{"avg_bits":1.9},"architecture":{"hidden":[16,7]}}"#.to_string();
    Model { layers, tensors, metadata }
}

fn format_err(r: Result<LaqFile, LaqError>) -> String {
    match r {
        Err(LaqError::Format(m)) => m,
        Err(e) => panic!("expected a format error, got {e:?}"),
        Ok(_) => panic!("expected a format error, the file was accepted"),
    }
}

/// Builds a file around an arbitrary header and data region with a correct checksum.
fn assemble(header: &str, data: &[u8]) -> Vec<u8> {
    let mut json = header.as_bytes().to_vec();
    let total = (PRELUDE_LEN + json.len()).div_ceil(ALIGN) * ALIGN;
    json.resize(total - PRELUDE_LEN, b' ');
    let mut f = Vec::new();
    f.extend_from_slice(&format::MAGIC);
    f.extend_from_slice(&format::VERSION.to_le_bytes());
    f.extend_from_slice(&(json.len() as u32).to_le_bytes());
    f.extend_from_slice(&(data.len() as u64).to_le_bytes());
    f.extend_from_slice(&[0; 8]);
    f.extend_from_slice(&json);
    f.extend_from_slice(data);
    let crc = checksum(&f);
    f[24..28].copy_from_slice(&crc.to_le_bytes());
    f
}

fn fix_crc(f: &mut [u8]) {
    if f.len() >= PRELUDE_LEN {
        let crc = checksum(f);
        f[24..28].copy_from_slice(&crc.to_le_bytes());
    }
}

/// The header of a valid file as JSON text, for surgical edits.
fn header_of(f: &[u8]) -> (String, Vec<u8>) {
    let hl = u32::from_le_bytes(f[12..16].try_into().unwrap()) as usize;
    let header = String::from_utf8(f[PRELUDE_LEN..PRELUDE_LEN + hl].to_vec()).unwrap();
    (header.trim_end().to_string(), f[PRELUDE_LEN + hl..].to_vec())
}

#[test]
fn round_trip_is_exact() {
    let m = sample_model(1);
    let bytes = m.encode().unwrap();
    let f = LaqFile::from_bytes(bytes.clone()).unwrap();
    assert_eq!(f.version(), 1);
    assert_eq!(f.file_size(), bytes.len());
    assert_eq!(f.layers().len(), 3);
    for (i, (name, rows, cols, bits, q, codes, scale, zero, bias)) in m.layers.iter().enumerate() {
        let l = &f.layers()[i];
        assert_eq!((&l.name, l.rows, l.cols, l.bits, l.quantizer), (name, *rows, *cols, *bits, *q));
        assert_eq!(&f.codes(i), codes);
        assert_eq!(&f.scale(i), scale);
        assert_eq!(&f.zero(i), zero);
        assert_eq!(&f.bias(i), bias);
        assert_eq!(l.has_bias, bias.is_some());
        assert_eq!(l.packed_bytes, rows * (cols * *bits as usize).div_ceil(8));
    }
    assert_eq!(f.layers()[0].granularity, format::Granularity::Channel);
    assert_eq!(f.layers()[1].granularity, format::Granularity::Tensor);
    let names: Vec<&str> = f.tensors().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["extra.grid", "norm.mean", "norm.std"]);
    for (name, shape, data) in &m.tensors {
        let i = f.tensor_index(name).unwrap();
        assert_eq!(&f.tensors()[i].shape, shape);
        assert_eq!(&f.tensor(i), data);
    }
    let meta: serde_json::Value = serde_json::from_str(f.metadata_json()).unwrap();
    assert_eq!(meta, serde_json::from_str::<serde_json::Value>(&m.metadata).unwrap());
    // Keys come back sorted.
    assert!(f.metadata_json().starts_with(r#"{"architecture":"#));
}

#[test]
fn writing_is_deterministic_and_rewrites_byte_identically() {
    let a = sample_model(2).encode().unwrap();
    let b = sample_model(2).encode().unwrap();
    assert_eq!(a, b);
    // Rewrite from what the reader gives back.
    let f = LaqFile::from_bytes(a.clone()).unwrap();
    let owned: Vec<_> = (0..f.layers().len()).map(|i| (f.codes(i), f.scale(i), f.zero(i), f.bias(i))).collect();
    let layers: Vec<LayerInput> = f
        .layers()
        .iter()
        .zip(&owned)
        .map(|(l, (c, s, z, b))| LayerInput {
            name: &l.name,
            rows: l.rows,
            cols: l.cols,
            bits: l.bits,
            quantizer: l.quantizer,
            codes: c,
            scale: s,
            zero: z,
            bias: b.as_deref(),
        })
        .collect();
    let tdata: Vec<Vec<f32>> = (0..f.tensors().len()).map(|i| f.tensor(i)).collect();
    let tensors: Vec<TensorInput> =
        f.tensors().iter().zip(&tdata).map(|(t, d)| TensorInput { name: &t.name, shape: &t.shape, data: d }).collect();
    let again = encode(f.metadata_json(), &layers, &tensors).unwrap();
    assert_eq!(again, a);
}

#[test]
#[cfg_attr(target_family = "wasm", ignore = "needs std::env::temp_dir, which wasm32 targets lack")]
fn atomic_write_replaces_the_file_and_leaves_no_temporaries() {
    let dir = std::env::temp_dir().join(format!("serlaq-core-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.laq");
    std::fs::write(&path, b"old").unwrap();
    let bytes = sample_model(3).encode().unwrap();
    format::write_atomic(&path, &bytes).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(LaqFile::open(&path).unwrap().file_size(), bytes.len());
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("m.laq")]);
    // A failed write (missing directory) reports the path and changes nothing.
    let missing = dir.join("no/such/dir/m.laq");
    assert!(matches!(format::write_atomic(&missing, &bytes), Err(LaqError::Io { .. })));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn writer_rejects_bad_inputs_with_named_errors() {
    let mut m = sample_model(4);
    m.layers[1].5[3] = 2; // a 1-bit layer with code 2
    let e = m.encode().unwrap_err().to_string();
    assert!(e.contains("net.3") && e.contains("code 2 at (0, 3)"), "{e}");

    let mut m = sample_model(4);
    m.layers[0].6 = vec![1.0; 3];
    assert!(m.encode().unwrap_err().to_string().contains("scale and zero"));
    let mut m = sample_model(4);
    m.layers[2].6[0] = f32::NAN;
    assert!(m.encode().unwrap_err().to_string().contains("must be finite"));
    let mut m = sample_model(4);
    m.layers[2].3 = 2;
    m.layers[2].4 = Quantizer::Binary;
    assert!(m.encode().unwrap_err().to_string().contains("binary"));
    let mut m = sample_model(4);
    m.layers[2].0 = "net.0".into();
    assert!(m.encode().unwrap_err().to_string().contains("duplicate layer name"));
    let mut m = sample_model(4);
    m.tensors[0].1 = vec![3, 4];
    assert!(m.encode().unwrap_err().to_string().contains("do not fill shape"));
    let mut m = sample_model(4);
    m.metadata = "[1, 2]".into();
    assert!(m.encode().unwrap_err().to_string().contains("JSON object"));
    m.metadata = "{\"a\": NaN}".into();
    assert!(m.encode().unwrap_err().to_string().contains("not valid JSON"));
}

#[test]
fn truncation_at_every_length_is_rejected() {
    let f = sample_model(5).encode().unwrap();
    for n in 0..f.len() {
        let msg = format_err(LaqFile::from_bytes(f[..n].to_vec()));
        assert!(msg.contains("truncated"), "length {n}: {msg}");
    }
    let mut longer = f.clone();
    longer.push(0);
    assert!(format_err(LaqFile::from_bytes(longer)).contains("trailing bytes"));
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let f = sample_model(6).encode().unwrap();
    for byte in 0..f.len() {
        for bit in 0..8 {
            let mut g = f.clone();
            g[byte] ^= 1 << bit;
            assert!(LaqFile::from_bytes(g).is_err(), "flip of bit {bit} in byte {byte} accepted");
        }
    }
}

#[test]
fn prelude_errors_name_the_problem() {
    let f = sample_model(7).encode().unwrap();
    assert!(format_err(LaqFile::from_bytes(b"PK\x03\x04 not a laq file at all....".to_vec())).contains("bad magic"));

    let mut g = f.clone();
    g[8..12].copy_from_slice(&2u32.to_le_bytes());
    fix_crc(&mut g);
    assert!(format_err(LaqFile::from_bytes(g)).contains("unsupported .laq format version 2"));

    let mut g = f.clone();
    g[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    fix_crc(&mut g);
    assert!(format_err(LaqFile::from_bytes(g)).contains("exceeds"));

    let mut g = f.clone();
    g[12..16].copy_from_slice(&((MAX_HEADER_LEN - 32) as u32).to_le_bytes());
    fix_crc(&mut g);
    assert!(format_err(LaqFile::from_bytes(g)).contains("truncated"));

    let mut g = f.clone();
    g[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    fix_crc(&mut g);
    assert!(format_err(LaqFile::from_bytes(g)).contains("2^64"));

    let mut g = f.clone();
    g[28] = 1;
    fix_crc(&mut g);
    assert!(format_err(LaqFile::from_bytes(g)).contains("reserved"));

    let mut g = f.clone();
    let last = g.len() - 1;
    g[last] ^= 0x10;
    assert!(format_err(LaqFile::from_bytes(g)).contains("checksum mismatch"));
}

/// Rewrites the header of a valid file with `edit` and a correct checksum.
fn edited(f: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let (h, data) = header_of(f);
    let mut v: serde_json::Value = serde_json::from_str(&h).unwrap();
    edit(&mut v);
    assemble(&v.to_string(), &data)
}

#[test]
fn header_errors_name_the_problem() {
    let f = sample_model(8).encode().unwrap();
    let cases: Vec<(&str, HeaderEdit)> = vec![
        ("bits 9 is not in 1..8", Box::new(|v| v["layers"][2]["bits"] = 9.into())),
        ("bits 0 is not in 1..8", Box::new(|v| v["layers"][2]["bits"] = 0.into())),
        ("must be positive", Box::new(|v| v["layers"][0]["rows"] = 0.into())),
        ("buffer length", Box::new(|v| v["layers"][0]["cols"] = 14.into())),
        ("too large", Box::new(|v| v["layers"][0]["cols"] = u64::MAX.into())),
        ("runs past the data region", Box::new(|v| v["layers"][0]["codes"]["offset"] = 1u64.wrapping_shl(40).into())),
        ("runs past the data region", Box::new(|v| v["layers"][0]["codes"]["offset"] = (u64::MAX - 7).into())),
        ("not a multiple of 64", Box::new(|v| v["layers"][0]["codes"]["offset"] = 8.into())),
        (
            "buffers overlap",
            Box::new(|v| v["layers"][1]["codes"]["offset"] = v["layers"][0]["codes"]["offset"].clone()),
        ),
        (
            "buffers overlap",
            Box::new(|v| {
                let o = v["layers"][0]["scale"]["offset"].clone();
                v["tensors"][0]["data"]["offset"] = o;
                v["tensors"][0]["shape"] = serde_json::json!([4]);
                v["tensors"][0]["data"]["length"] = 16.into();
            }),
        ),
        (
            "binary quantizer needs bits 1",
            Box::new(|v| {
                v["layers"][0]["quantizer"] = "binary".into();
            }),
        ),
        ("buffer length", Box::new(|v| v["layers"][1]["granularity"] = "channel".into())),
        ("duplicate layer name", Box::new(|v| v["layers"][2]["name"] = "net.0".into())),
        ("duplicate tensor name", Box::new(|v| v["tensors"][2]["name"] = "norm.mean".into())),
        ("name must be", Box::new(|v| v["layers"][2]["name"] = "".into())),
        ("dimension 0 must be positive", Box::new(|v| v["tensors"][0]["shape"] = serde_json::json!([0, 3]))),
        ("at most 8 allowed", Box::new(|v| v["tensors"][0]["shape"] = serde_json::json!([1, 1, 1, 1, 1, 1, 1, 1, 1]))),
        ("unknown field", Box::new(|v| v["layers"][0]["extra"] = 1.into())),
        (
            "missing field",
            Box::new(|v| {
                v["layers"][0].as_object_mut().unwrap().remove("zero");
            }),
        ),
        ("unknown variant", Box::new(|v| v["layers"][0]["quantizer"] = "ternary".into())),
        ("invalid type", Box::new(|v| v["metadata"] = serde_json::json!([1]))),
        ("invalid value", Box::new(|v| v["layers"][0]["rows"] = (-3).into())),
    ];
    for (want, edit) in cases {
        let r = LaqFile::from_bytes(edited(&f, edit));
        assert!(r.is_err(), "edit expecting {want:?} was accepted");
        let msg = format_err(r);
        assert!(msg.contains(want), "expected {want:?} in {msg:?}");
    }
    // Malformed JSON and non-UTF-8 headers.
    let (_, data) = header_of(&f);
    assert!(format_err(LaqFile::from_bytes(assemble("{\"layers\": [", &data))).contains("header JSON is malformed"));
    assert!(format_err(LaqFile::from_bytes(assemble("{\"a\":\"\u{ff}\"}", &data))).contains("malformed"));
    let mut raw = assemble("{}", &data);
    raw[PRELUDE_LEN + 1] = 0xff;
    fix_crc(&mut raw);
    assert!(format_err(LaqFile::from_bytes(raw)).contains("malformed"));
    // Deep nesting is refused, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(format_err(LaqFile::from_bytes(assemble(&deep, &data))).contains("malformed"));
}

#[test]
fn data_errors_name_the_problem() {
    let f = sample_model(9).encode().unwrap();
    let f0 = LaqFile::from_bytes(f.clone()).unwrap();
    let (h, data) = header_of(&f);
    let v: serde_json::Value = serde_json::from_str(&h).unwrap();
    let at = |k: &str, layer: usize| v["layers"][layer][k]["offset"].as_u64().unwrap() as usize;

    // A non-finite scale.
    let mut d = data.clone();
    d[at("scale", 0)..at("scale", 0) + 4].copy_from_slice(&f32::INFINITY.to_le_bytes());
    assert!(format_err(LaqFile::from_bytes(assemble(&h, &d))).contains("scale: value 0 is not finite"));
    // A NaN in an extra tensor.
    let mut d = data.clone();
    let t = v["tensors"][1]["data"]["offset"].as_u64().unwrap() as usize;
    d[t + 4..t + 8].copy_from_slice(&f32::NAN.to_le_bytes());
    assert!(format_err(LaqFile::from_bytes(assemble(&h, &d))).contains("value 1 is not finite"));
    // Non-zero padding bits after a row (layer 0 is 11 codes x 3 bits = 33 bits per row).
    let mut d = data.clone();
    let rb = f0.layers()[0].row_bytes;
    d[at("codes", 0) + rb - 1] |= 0x80;
    assert!(format_err(LaqFile::from_bytes(assemble(&h, &d))).contains("padding bits"));
}

#[test]
fn non_zero_padding_between_and_after_buffers_is_rejected() {
    let f = sample_model(9).encode().unwrap();
    let (h, data) = header_of(&f);
    let v: serde_json::Value = serde_json::from_str(&h).unwrap();
    let buf = |b: &serde_json::Value| (b["offset"].as_u64().unwrap() as usize, b["length"].as_u64().unwrap() as usize);
    // Layer 0's codes (16 rows x 5 bytes = 80 bytes) are followed by 48 padding bytes.
    let (off, len) = buf(&v["layers"][0]["codes"]);
    assert!(len % ALIGN != 0 && data[off + len..].len() > ALIGN);
    assert_eq!(LaqFile::from_bytes(assemble(&h, &data)).unwrap().file_size(), f.len());
    for at in [off + len, off + len.div_ceil(ALIGN) * ALIGN - 1] {
        let mut d = data.clone();
        d[at] = 1;
        let e = format_err(LaqFile::from_bytes(assemble(&h, &d)));
        assert!(e.contains(&format!("padding byte at offset {at} between layer 0")), "{e}");
    }
    // After the last buffer: the data region's final padding.
    let last = v["tensors"].as_array().unwrap().iter().map(|t| buf(&t["data"])).max().unwrap();
    let end = last.0 + last.1;
    assert!(end < data.len(), "the sample ends on padding");
    let mut d = data.clone();
    *d.last_mut().unwrap() = 0x20;
    let e = format_err(LaqFile::from_bytes(assemble(&h, &d)));
    assert!(e.contains(&format!("padding byte at offset {} after tensor", data.len() - 1)), "{e}");
    // A hole before the first buffer (the writer never leaves one) must be zero too.
    let mut shifted: serde_json::Value = v.clone();
    let bump = |b: &mut serde_json::Value| {
        let o = b["offset"].as_u64().unwrap();
        b["offset"] = (o + ALIGN as u64).into();
    };
    for l in shifted["layers"].as_array_mut().unwrap() {
        for k in ["codes", "scale", "zero", "bias"] {
            if !l[k].is_null() {
                bump(&mut l[k]);
            }
        }
    }
    for t in shifted["tensors"].as_array_mut().unwrap() {
        bump(&mut t["data"]);
    }
    let mut d = vec![0u8; ALIGN];
    d.extend_from_slice(&data);
    let hs = shifted.to_string();
    assert!(LaqFile::from_bytes(assemble(&hs, &d)).is_ok());
    d[3] = 7;
    assert!(format_err(LaqFile::from_bytes(assemble(&hs, &d))).contains("offset 3 before the first buffer"));
}

#[test]
fn float_buffers_are_lent_not_copied() {
    let m = sample_model(4);
    let f = LaqFile::from_bytes(m.encode().unwrap()).unwrap();
    for (i, l) in m.layers.iter().enumerate() {
        assert_eq!(f.scale_slice(i), &l.6[..]);
        assert_eq!(f.zero_slice(i), &l.7[..]);
        assert_eq!(f.bias_slice(i), l.8.as_deref());
        // The same storage every call.
        assert!(std::ptr::eq(f.scale_slice(i), f.scale_slice(i)));
        let q = f.matrix(i);
        assert_eq!((q.rows(), q.cols(), q.bits()), (l.1, l.2, l.3));
    }
    for (i, t) in f.tensors().iter().enumerate() {
        let (_, _, data) = m.tensors.iter().find(|x| x.0 == t.name).unwrap();
        assert_eq!(f.tensor_slice(i), &data[..]);
    }
}

#[test]
#[cfg_attr(target_family = "wasm", ignore = "needs std::env::temp_dir, which wasm32 targets lack")]
fn reading_from_a_path_reports_io_and_format_errors() {
    let dir = std::env::temp_dir().join(format!("serlaq-core-open-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert!(matches!(LaqFile::open(&dir.join("missing.laq")), Err(LaqError::Io { .. })));
    assert_eq!(format_err(LaqFile::open(&dir)), "not a regular file (a directory)");
    let p = dir.join("empty.laq");
    std::fs::write(&p, b"").unwrap();
    assert!(format_err(LaqFile::open(&p)).contains("truncated"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `LaqFile::open` on a thread; None if it has not returned within 10 s.
fn open_within_10s(path: &std::path::Path) -> Option<Result<LaqFile, LaqError>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let p = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(LaqFile::open(&p));
    });
    rx.recv_timeout(std::time::Duration::from_secs(10)).ok()
}

#[cfg(unix)]
#[test]
fn special_files_are_refused_without_blocking() {
    let dir = std::env::temp_dir().join(format!("serlaq-core-special-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A FIFO with no writer: opening it for reading (blocking) would wait forever.
    let fifo = dir.join("pipe.laq");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let r = open_within_10s(&fifo).expect("opening a FIFO blocked");
    assert_eq!(format_err(r), "not a regular file (a named pipe)");
    // A symlink to the FIFO is judged by its target.
    let link = dir.join("link.laq");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    assert_eq!(format_err(open_within_10s(&link).expect("blocked")), "not a regular file (a named pipe)");
    // A character device.
    assert_eq!(format_err(LaqFile::open(std::path::Path::new("/dev/null"))), "not a regular file (a device)");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
#[cfg_attr(target_family = "wasm", ignore = "needs std::env::temp_dir, which wasm32 targets lack")]
fn files_over_the_size_cap_are_refused_before_reading() {
    let dir = std::env::temp_dir().join(format!("serlaq-core-cap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A sparse file: 1 GiB + 1 byte of size, no data on disk.
    let p = dir.join("huge.laq");
    let file = std::fs::File::create(&p).unwrap();
    file.set_len(format::MAX_FILE_LEN + 1).unwrap();
    let e = format_err(LaqFile::open(&p));
    assert_eq!(e, format!("file is {} bytes, over the {}-byte limit", format::MAX_FILE_LEN + 1, format::MAX_FILE_LEN));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn model_strategy() -> impl Strategy<Value = Model> {
    let layer = (1usize..12, 1usize..40, 1u32..=8, any::<bool>(), any::<bool>(), any::<u64>());
    (prop::collection::vec(layer, 0..4), prop::collection::vec((1usize..5, 1usize..4), 0..3), any::<u64>()).prop_map(
        |(ls, ts, seed)| {
            let mut next = lcg(seed);
            let layers = ls
                .into_iter()
                .enumerate()
                .map(|(i, (rows, cols, bits, per_row, with_bias, s))| {
                    let mut nx = lcg(s);
                    let codes = (0..rows * cols).map(|_| (nx() % (1 << bits)) as u8).collect();
                    let n = if per_row { rows } else { 1 };
                    let scale = (0..n).map(|_| nx() as f32 / 3e9).collect();
                    let zero = (0..n).map(|_| (nx() % 256) as f32 - 3.5).collect();
                    let bias = with_bias.then(|| (0..rows).map(|_| nx() as f32 * -1e-3).collect());
                    (format!("l{i}"), rows, cols, bits, Quantizer::Affine, codes, scale, zero, bias)
                })
                .collect();
            let tensors = ts
                .into_iter()
                .enumerate()
                .map(|(i, (a, b))| (format!("t{}", 9 - i), vec![a, b], (0..a * b).map(|_| next() as f32).collect()))
                .collect();
            Model { layers, tensors, metadata: format!("{{\"seed\":{seed},\"x\":[1.25,-3e-7]}}") }
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_models_round_trip(m in model_strategy()) {
        let bytes = m.encode().unwrap();
        prop_assert_eq!(bytes.len() % ALIGN, 0);
        let f = LaqFile::from_bytes(bytes.clone()).unwrap();
        prop_assert_eq!(f.layers().len(), m.layers.len());
        for (i, l) in m.layers.iter().enumerate() {
            prop_assert_eq!(&f.codes(i), &l.5);
            prop_assert_eq!(&f.scale(i), &l.6);
            prop_assert_eq!(&f.zero(i), &l.7);
            prop_assert_eq!(&f.bias(i), &l.8);
        }
        prop_assert_eq!(m.encode().unwrap(), bytes);
    }

    /// Random corruption of header bytes with the checksum repaired, so the structural
    /// checks are what stands between the bytes and the accessors: no panics, and
    /// whatever is accepted can be read in full.
    #[test]
    fn corrupted_files_never_panic(seed in any::<u64>(), edits in 1usize..6, fix in any::<bool>()) {
        let mut f = sample_model(seed % 7).encode().unwrap();
        let mut next = lcg(seed);
        for _ in 0..edits {
            let at = (next() as usize) % f.len();
            match next() % 3 {
                0 => f[at] ^= 1 << (next() % 8),
                1 => f[at] = next() as u8,
                _ => { let n = f.len(); f.truncate(at.max(1).min(n)); }
            }
        }
        if fix { fix_crc(&mut f); }
        if let Ok(file) = LaqFile::from_bytes_with(f, ReadOptions { verify_checksum: false }) {
            for i in 0..file.layers().len() {
                let _ = (file.codes(i), file.scale(i), file.zero(i), file.bias(i), file.packed(i));
            }
            for i in 0..file.tensors().len() {
                let _ = file.tensor(i);
            }
        }
    }
}
