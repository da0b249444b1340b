//! The `.laq` container: a fixed little-endian prelude, a JSON header, 64-byte aligned
//! buffers, and a CRC-32 over everything. The spec is `docs/laq-format.md`; this
//! module is its implementation and the constants below are normative.
//!
//! The reader validates the whole file (prelude, checksum, header shape, every buffer
//! reference, the values that must be finite) before any accessor can hand out data,
//! and every size is computed with checked arithmetic, so a hostile file can neither
//! panic the reader nor make it allocate more than the file's own size.

use crate::bitpack::{self, packed_len, PackError};
use crate::gemv::QMatrix;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// First 8 bytes of every `.laq` file.
pub const MAGIC: [u8; 8] = *b"\x89SERLAQ\n";
/// The format version this code writes and reads.
pub const VERSION: u32 = 1;
/// Bytes before the JSON header.
pub const PRELUDE_LEN: usize = 32;
/// Alignment of the data region and of every buffer in it.
pub const ALIGN: usize = 64;
/// Absolute cap on the JSON header (padding included).
pub const MAX_HEADER_LEN: usize = 16 << 20;
/// Longest layer or tensor name, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Most dimensions of an extra tensor.
pub const MAX_NDIM: usize = 8;
/// Largest `.laq` file the reader accepts (checked before anything is read or allocated).
pub const MAX_FILE_LEN: u64 = 1 << 30;

/// Everything that can go wrong reading or writing a `.laq` file.
#[derive(Debug)]
pub enum LaqError {
    /// The file is malformed: truncated, corrupted, inconsistent, unsupported version.
    Format(String),
    /// The writer was given bad input (the message names the layer or tensor).
    Invalid(String),
    /// The operating system refused a read or write.
    Io { path: PathBuf, source: io::Error },
}

impl fmt::Display for LaqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaqError::Format(m) | LaqError::Invalid(m) => f.write_str(m),
            LaqError::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for LaqError {}

fn bad<T>(msg: impl Into<String>) -> Result<T, LaqError> {
    Err(LaqError::Format(msg.into()))
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, LaqError> {
    Err(LaqError::Invalid(msg.into()))
}

/// How stored codes map back to weights (both dequantize as `scale * (q - zero)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantizer {
    /// Uniform affine codes at any width.
    Affine,
    /// Sign codes {0, 1} at 1 bit (`alpha * sign(w)` as `scale = 2 alpha, zero = 0.5`).
    Binary,
}

impl Quantizer {
    pub fn as_str(self) -> &'static str {
        match self {
            Quantizer::Affine => "affine",
            Quantizer::Binary => "binary",
        }
    }

    pub fn parse(s: &str) -> Option<Quantizer> {
        match s {
            "affine" => Some(Quantizer::Affine),
            "binary" => Some(Quantizer::Binary),
            _ => None,
        }
    }
}

/// Whether `scale`/`zero` hold one value or one per output row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Tensor,
    Channel,
}

impl Granularity {
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Tensor => "tensor",
            Granularity::Channel => "channel",
        }
    }
}

/// A byte range in the data region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufRef {
    pub length: u64,
    pub offset: u64,
}

// Header structs: fields in alphabetical order so the serialized header has sorted keys.

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerEntry {
    bias: Option<BufRef>,
    bits: u32,
    codes: BufRef,
    cols: u64,
    granularity: Granularity,
    name: String,
    quantizer: Quantizer,
    rows: u64,
    scale: BufRef,
    zero: BufRef,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TensorEntry {
    data: BufRef,
    name: String,
    shape: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    layers: Vec<LayerEntry>,
    metadata: Map<String, Value>,
    tensors: Vec<TensorEntry>,
}

/// A validated layer description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    pub bits: u32,
    pub quantizer: Quantizer,
    pub granularity: Granularity,
    pub has_bias: bool,
    /// Bytes of packed codes (`rows * row_bytes`).
    pub packed_bytes: usize,
    pub row_bytes: usize,
    codes: (usize, usize),
    // (start, count) in `LaqFile::floats` (byte ranges during validation).
    scale: (usize, usize),
    zero: (usize, usize),
    bias: Option<(usize, usize)>,
}

/// A validated extra tensor description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub shape: Vec<usize>,
    // (start, count) in `LaqFile::floats` (a byte range during validation).
    data: (usize, usize),
}

/// A `.laq` file held in memory, fully validated on construction.
#[derive(Debug, Clone)]
pub struct LaqFile {
    bytes: Vec<u8>,
    data_start: usize,
    /// Every float buffer (scale, zero, bias, tensors), decoded once on open, so that
    /// accessors lend slices instead of copying per call.
    floats: Vec<f32>,
    layers: Vec<LayerInfo>,
    tensors: Vec<TensorInfo>,
    metadata_json: String,
    version: u32,
}

/// CRC-32 (IEEE, as zlib's `crc32`) of the file with the checksum field left out:
/// bytes `0..24` followed by bytes `28..`.
pub fn checksum(file: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&file[..24]);
    h.update(&file[28..]);
    h.finalize()
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Options for reading; the default verifies everything.
#[derive(Debug, Clone, Copy)]
pub struct ReadOptions {
    /// Check the CRC-32. Only the fuzzer turns this off, to reach the checks behind it.
    pub verify_checksum: bool,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { verify_checksum: true }
    }
}

impl LaqFile {
    /// Reads and validates a file. Anything but a regular file (a directory, FIFO,
    /// socket or device) is refused from its metadata, before it is opened, and a file
    /// over [`MAX_FILE_LEN`] before it is read; the file is opened non-blocking, so a
    /// FIFO swapped in after the check cannot block the reader either.
    pub fn open(path: &Path) -> Result<LaqFile, LaqError> {
        let io_err = |source| LaqError::Io { path: path.to_path_buf(), source };
        let meta = fs::metadata(path).map_err(io_err)?;
        check_regular(&meta)?;
        let mut file = open_nonblocking(path).map_err(io_err)?;
        // The path may have been replaced between the two calls: check what was opened.
        let meta = file.metadata().map_err(io_err)?;
        check_regular(&meta)?;
        // Read at most the cap plus one byte, so a file that grows after the check
        // cannot make us allocate without bound.
        let cap = usize::try_from(meta.len().min(MAX_FILE_LEN)).map_err(|_| too_large(meta.len()))?;
        let mut bytes = Vec::with_capacity(cap.min(PRELUDE_LEN));
        // the magic first: a gigabyte that is no model is refused before it is read
        Read::by_ref(&mut file).take(PRELUDE_LEN as u64).read_to_end(&mut bytes).map_err(io_err)?;
        if bytes.len() >= MAGIC.len() && bytes[..MAGIC.len()] != MAGIC {
            return bad("not a .laq file (bad magic bytes)");
        }
        bytes.reserve(cap.saturating_sub(bytes.len()));
        Read::by_ref(&mut file).take(MAX_FILE_LEN + 1 - bytes.len() as u64).read_to_end(&mut bytes).map_err(io_err)?;
        LaqFile::from_bytes(bytes)
    }

    /// Validates an in-memory file.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<LaqFile, LaqError> {
        LaqFile::from_bytes_with(bytes, ReadOptions::default())
    }

    pub fn from_bytes_with(bytes: Vec<u8>, opts: ReadOptions) -> Result<LaqFile, LaqError> {
        let n = bytes.len();
        if n as u64 > MAX_FILE_LEN {
            return Err(too_large(n as u64));
        }
        if n < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            if n < MAGIC.len() && MAGIC.starts_with(&bytes) {
                return bad(format!("truncated: {n} bytes, shorter than the {PRELUDE_LEN}-byte prelude"));
            }
            return bad("not a .laq file (bad magic bytes)");
        }
        if n < PRELUDE_LEN {
            return bad(format!("truncated: {n} bytes, shorter than the {PRELUDE_LEN}-byte prelude"));
        }
        let version = le_u32(&bytes, 8);
        if version != VERSION {
            return bad(format!("unsupported .laq format version {version} (this serlaq reads version {VERSION})"));
        }
        let header_len = le_u32(&bytes, 12) as usize;
        let data_len = le_u64(&bytes, 16);
        let stored_crc = le_u32(&bytes, 24);
        if le_u32(&bytes, 28) != 0 {
            return bad("reserved prelude field (bytes 28..32) is not zero");
        }
        if header_len > MAX_HEADER_LEN {
            return bad(format!("header length {header_len} exceeds the {MAX_HEADER_LEN}-byte limit"));
        }
        let data_start = PRELUDE_LEN + header_len;
        let declared = (data_start as u64).checked_add(data_len);
        if declared != Some(n as u64) {
            let what = match declared {
                Some(d) if d > n as u64 => "truncated",
                _ => "has trailing bytes or a corrupt length",
            };
            return bad(format!(
                "{what}: the prelude declares {} bytes (header {header_len} + data {data_len}), the file has {n}",
                declared.map_or_else(|| "more than 2^64".to_string(), |d| d.to_string())
            ));
        }
        if !data_start.is_multiple_of(ALIGN) {
            return bad(format!("data region starts at byte {data_start}, not a multiple of {ALIGN}"));
        }
        if opts.verify_checksum {
            let crc = checksum(&bytes);
            if crc != stored_crc {
                return bad(format!(
                    "checksum mismatch (stored {stored_crc:#010x}, computed {crc:#010x}): the file is corrupted"
                ));
            }
        }
        let header: Header = serde_json::from_slice(&bytes[PRELUDE_LEN..data_start])
            .map_err(|e| LaqError::Format(format!("header JSON is malformed: {e}")))?;
        let data = &bytes[data_start..];
        let mut floats = Vec::new();
        let (layers, tensors) = validate(&header, data, &mut floats)?;
        let metadata_json = serde_json::to_string(&header.metadata)
            .map_err(|e| LaqError::Format(format!("metadata cannot be re-encoded: {e}")))?;
        Ok(LaqFile { bytes, data_start, floats, layers, tensors, metadata_json, version })
    }

    pub fn version(&self) -> u32 {
        self.version
    }
    pub fn file_size(&self) -> usize {
        self.bytes.len()
    }
    /// The metadata object as compact JSON with sorted keys.
    pub fn metadata_json(&self) -> &str {
        &self.metadata_json
    }
    pub fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }
    /// The whole file, as read.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn buf(&self, (off, len): (usize, usize)) -> &[u8] {
        &self.bytes[self.data_start + off..self.data_start + off + len]
    }

    /// Packed codes of layer `i`: `rows` byte-aligned rows of `row_bytes`.
    pub fn packed(&self, i: usize) -> &[u8] {
        self.buf(self.layers[i].codes)
    }

    /// Unpacked codes of layer `i`, row-major `rows x cols`.
    pub fn codes(&self, i: usize) -> Vec<u8> {
        let l = &self.layers[i];
        let mut out = vec![0u8; l.rows * l.cols];
        bitpack::unpack_rows(self.packed(i), l.rows, l.cols, l.bits, &mut out).expect("lengths validated on open");
        out
    }

    fn floats(&self, (start, count): (usize, usize)) -> &[f32] {
        &self.floats[start..start + count]
    }

    /// Scale of layer `i` (1 or `rows` values), borrowed.
    pub fn scale_slice(&self, i: usize) -> &[f32] {
        self.floats(self.layers[i].scale)
    }
    /// Zero point of layer `i` (1 or `rows` values), borrowed.
    pub fn zero_slice(&self, i: usize) -> &[f32] {
        self.floats(self.layers[i].zero)
    }
    /// Bias of layer `i` (`rows` values), borrowed.
    pub fn bias_slice(&self, i: usize) -> Option<&[f32]> {
        self.layers[i].bias.map(|b| self.floats(b))
    }
    /// Layer `i` as a matrix for [`crate::gemv::qgemm`], borrowing the stored data.
    pub fn matrix(&self, i: usize) -> QMatrix<'_> {
        let l = &self.layers[i];
        QMatrix::new(self.packed(i), l.rows, l.cols, l.bits, self.scale_slice(i), self.zero_slice(i))
            .expect("layer validated on open")
    }

    /// Copy of [`LaqFile::scale_slice`].
    pub fn scale(&self, i: usize) -> Vec<f32> {
        self.scale_slice(i).to_vec()
    }
    /// Copy of [`LaqFile::zero_slice`].
    pub fn zero(&self, i: usize) -> Vec<f32> {
        self.zero_slice(i).to_vec()
    }
    /// Copy of [`LaqFile::bias_slice`].
    pub fn bias(&self, i: usize) -> Option<Vec<f32>> {
        self.bias_slice(i).map(<[f32]>::to_vec)
    }

    /// Index of the extra tensor called `name`.
    pub fn tensor_index(&self, name: &str) -> Option<usize> {
        self.tensors.iter().position(|t| t.name == name)
    }
    /// Values of extra tensor `i`, row-major in its `shape`, borrowed.
    pub fn tensor_slice(&self, i: usize) -> &[f32] {
        self.floats(self.tensors[i].data)
    }
    /// Copy of [`LaqFile::tensor_slice`].
    pub fn tensor(&self, i: usize) -> Vec<f32> {
        self.tensor_slice(i).to_vec()
    }
}

/// Checks every header field and buffer reference against the data region.
fn validate(h: &Header, data: &[u8], floats: &mut Vec<f32>) -> Result<(Vec<LayerInfo>, Vec<TensorInfo>), LaqError> {
    let data_len = data.len();
    // Every buffer, for the overlap check: (offset, end, label).
    let mut spans: Vec<(usize, usize, String)> = Vec::new();
    let mut take = |what: String, r: BufRef, expected: usize| -> Result<(usize, usize), LaqError> {
        let (off, len) = (r.offset, r.length);
        if len != expected as u64 {
            return bad(format!("{what}: buffer length {len}, expected {expected}"));
        }
        let end = off.checked_add(len).filter(|&e| e <= data_len as u64);
        let Some(end) = end else {
            return bad(format!(
                "{what}: buffer at offset {off} with length {len} runs past the data region ({data_len} bytes)"
            ));
        };
        if off % ALIGN as u64 != 0 {
            return bad(format!("{what}: buffer offset {off} is not a multiple of {ALIGN}"));
        }
        spans.push((off as usize, end as usize, what));
        Ok((off as usize, len as usize))
    };

    let mut layers = Vec::with_capacity(h.layers.len().min(data_len));
    for (i, e) in h.layers.iter().enumerate() {
        check_name(&e.name, &format!("layer {i}"))?;
        let what = format!("layer {i} ({:?})", e.name);
        if !(1..=8).contains(&e.bits) {
            return bad(format!("{what}: bits {} is not in 1..8", e.bits));
        }
        if e.quantizer == Quantizer::Binary && e.bits != 1 {
            return bad(format!("{what}: the binary quantizer needs bits 1, got {}", e.bits));
        }
        let (rows, cols) = match (dim::<usize>(e.rows), dim::<usize>(e.cols)) {
            (Ok(r), Ok(c)) => (r, c),
            (Err(why), _) | (_, Err(why)) => return bad(format!("{what}: shape {}x{} {why}", e.rows, e.cols)),
        };
        let too_big = || LaqError::Format(format!("{what}: shape {rows}x{cols} is too large"));
        let row_bytes = packed_len(cols, e.bits).map_err(|_| too_big())?;
        let packed_bytes = rows.checked_mul(row_bytes).ok_or_else(too_big)?;
        let rows4 = rows.checked_mul(4).ok_or_else(too_big)?;
        let params = match e.granularity {
            Granularity::Tensor => 4,
            Granularity::Channel => rows4,
        };
        let codes = take(format!("{what} codes"), e.codes, packed_bytes)?;
        let scale = take(format!("{what} scale"), e.scale, params)?;
        let zero = take(format!("{what} zero"), e.zero, params)?;
        let bias = match e.bias {
            Some(b) => Some(take(format!("{what} bias"), b, rows4)?),
            None => None,
        };
        // Byte ranges for now; the contents are checked once no buffers overlap.
        layers.push(LayerInfo {
            name: e.name.clone(),
            rows,
            cols,
            bits: e.bits,
            quantizer: e.quantizer,
            granularity: e.granularity,
            has_bias: bias.is_some(),
            packed_bytes,
            row_bytes,
            codes,
            scale,
            zero,
            bias,
        });
    }
    check_unique(h.layers.iter().map(|l| l.name.as_str()), "layer")?;

    let mut tensors = Vec::with_capacity(h.tensors.len().min(data_len));
    for (i, t) in h.tensors.iter().enumerate() {
        check_name(&t.name, &format!("tensor {i}"))?;
        let what = format!("tensor {:?}", t.name);
        if t.shape.len() > MAX_NDIM {
            return bad(format!("{what}: {} dimensions, at most {MAX_NDIM} allowed", t.shape.len()));
        }
        let mut count: usize = 1;
        let mut shape = Vec::with_capacity(t.shape.len());
        for &d in &t.shape {
            let d = dim::<usize>(d).map_err(|why| LaqError::Format(format!("{what}: dimension {d} {why}")))?;
            count = count
                .checked_mul(d)
                .ok_or_else(|| LaqError::Format(format!("{what}: shape {:?} is too large", t.shape)))?;
            shape.push(d);
        }
        let bytes = count
            .checked_mul(4)
            .ok_or_else(|| LaqError::Format(format!("{what}: shape {:?} is too large", t.shape)))?;
        let data_ref = take(what.clone(), t.data, bytes)?;
        tensors.push(TensorInfo { name: t.name.clone(), shape, data: data_ref });
    }
    check_unique(h.tensors.iter().map(|t| t.name.as_str()), "tensor")?;

    spans.sort();
    for w in spans.windows(2) {
        if w[1].0 < w[0].1 {
            return bad(format!("buffers overlap: {} and {}", w[0].2, w[1].2));
        }
    }
    // Every byte no buffer covers is padding and must be zero.
    let mut at = 0;
    for (i, &(off, end, _)) in spans.iter().chain(std::iter::once(&(data_len, data_len, String::new()))).enumerate() {
        if let Some(k) = data[at..off].iter().position(|&b| b != 0) {
            let place = match i {
                0 => "before the first buffer".to_string(),
                _ if off == data_len => format!("after {}", spans[i - 1].2),
                _ => format!("between {} and {}", spans[i - 1].2, spans[i].2),
            };
            return bad(format!("data region: padding byte at offset {} {place} is not zero", at + k));
        }
        at = end;
    }
    // Contents, in time linear in the data region now that no byte is in two buffers:
    // row padding bits, finite floats (decoded once, byte ranges become float ranges).
    let slice = |(o, l): (usize, usize)| &data[o..o + l];
    for (i, l) in layers.iter_mut().enumerate() {
        let what = format!("layer {i} ({:?})", l.name);
        if !bitpack::row_padding_is_zero(slice(l.codes), l.rows, l.cols, l.bits).unwrap_or(false) {
            return bad(format!("{what} codes: padding bits after the last code of a row are not zero"));
        }
        l.scale = decode_finite(&format!("{what} scale"), slice(l.scale), floats)?;
        l.zero = decode_finite(&format!("{what} zero"), slice(l.zero), floats)?;
        if let Some(b) = l.bias {
            l.bias = Some(decode_finite(&format!("{what} bias"), slice(b), floats)?);
        }
    }
    for t in tensors.iter_mut() {
        t.data = decode_finite(&format!("tensor {:?}", t.name), slice(t.data), floats)?;
    }
    Ok((layers, tensors))
}

/// A header dimension as an index type: zero is refused as "must be positive" and a value
/// past the type (any `u64` above `u32::MAX` where `usize` is 32 bits) as "is too large",
/// the same words a 64-bit build gives when the size computations overflow. Generic so
/// the 32-bit case is tested on 64-bit hosts too.
fn dim<U: TryFrom<u64>>(v: u64) -> Result<U, &'static str> {
    if v == 0 {
        return Err("must be positive");
    }
    U::try_from(v).map_err(|_| "is too large")
}

fn too_large(len: u64) -> LaqError {
    LaqError::Format(format!("file is {len} bytes, over the {MAX_FILE_LEN}-byte limit"))
}

/// Refuses anything but a regular file, naming what it is.
fn check_regular(meta: &fs::Metadata) -> Result<(), LaqError> {
    let t = meta.file_type();
    if t.is_file() {
        return if meta.len() > MAX_FILE_LEN { Err(too_large(meta.len())) } else { Ok(()) };
    }
    let what = if t.is_dir() { "a directory" } else { special_kind(&t) };
    bad(format!("not a regular file ({what})"))
}

#[cfg(unix)]
fn special_kind(t: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "a named pipe"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &fs::FileType) -> &'static str {
    "a special file"
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> io::Result<fs::File> {
    fs::File::open(path)
}

fn check_name(name: &str, what: &str) -> Result<(), LaqError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return bad(format!("{what}: name must be 1 to {MAX_NAME_LEN} bytes, got {}", name.len()));
    }
    Ok(())
}

fn check_unique<'a>(names: impl Iterator<Item = &'a str>, what: &str) -> Result<(), LaqError> {
    let mut seen: Vec<&str> = names.collect();
    seen.sort_unstable();
    for w in seen.windows(2) {
        if w[0] == w[1] {
            return bad(format!("duplicate {what} name {:?}", w[0]));
        }
    }
    Ok(())
}

/// Appends the little-endian f32 values of `bytes` to `floats`, all of which must be
/// finite; returns their (start, count) there.
fn decode_finite(what: &str, bytes: &[u8], floats: &mut Vec<f32>) -> Result<(usize, usize), LaqError> {
    let start = floats.len();
    for (i, c) in bytes.chunks_exact(4).enumerate() {
        let v = f32::from_le_bytes(c.try_into().unwrap());
        if !v.is_finite() {
            return bad(format!("{what}: value {i} is not finite"));
        }
        floats.push(v);
    }
    Ok((start, floats.len() - start))
}

// ---------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------

/// One quantized layer to write; `codes` are unpacked, row-major `rows x cols`.
#[derive(Debug, Clone, Copy)]
pub struct LayerInput<'a> {
    pub name: &'a str,
    pub rows: usize,
    pub cols: usize,
    pub bits: u32,
    pub quantizer: Quantizer,
    pub codes: &'a [u8],
    pub scale: &'a [f32],
    pub zero: &'a [f32],
    pub bias: Option<&'a [f32]>,
}

/// One extra f32 tensor to write (e.g. `norm.mean`).
#[derive(Debug, Clone, Copy)]
pub struct TensorInput<'a> {
    pub name: &'a str,
    pub shape: &'a [usize],
    pub data: &'a [f32],
}

/// A [`LayerInput`] that owns its data: what a writer builds (the Python bindings from
/// their dicts, tests, examples) before lending it to [`encode`] / [`write`].
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedLayer {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    pub bits: u32,
    pub quantizer: Quantizer,
    pub codes: Vec<u8>,
    pub scale: Vec<f32>,
    pub zero: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

impl OwnedLayer {
    pub fn input(&self) -> LayerInput<'_> {
        LayerInput {
            name: &self.name,
            rows: self.rows,
            cols: self.cols,
            bits: self.bits,
            quantizer: self.quantizer,
            codes: &self.codes,
            scale: &self.scale,
            zero: &self.zero,
            bias: self.bias.as_deref(),
        }
    }
}

/// A [`TensorInput`] that owns its data.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl OwnedTensor {
    pub fn input(&self) -> TensorInput<'_> {
        TensorInput { name: &self.name, shape: &self.shape, data: &self.data }
    }
}

fn pad_to(buf: &mut Vec<u8>, align: usize, byte: u8) {
    let n = buf.len().div_ceil(align) * align;
    buf.resize(n, byte);
}

fn check_values(what: &str, v: &[f32]) -> Result<(), LaqError> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(i) => invalid(format!("{what}: value {i} is {} (must be finite)", v[i])),
        None => Ok(()),
    }
}

/// Encodes a complete `.laq` file. Identical inputs give identical bytes: the header
/// has sorted keys, tensors are stored sorted by name, and nothing depends on time.
pub fn encode(metadata_json: &str, layers: &[LayerInput], tensors: &[TensorInput]) -> Result<Vec<u8>, LaqError> {
    let metadata: Value = serde_json::from_str(metadata_json)
        .map_err(|e| LaqError::Invalid(format!("metadata_json is not valid JSON: {e}")))?;
    let Value::Object(metadata) = metadata else {
        return invalid("metadata_json must be a JSON object");
    };
    let mut data: Vec<u8> = Vec::new();
    let push = |data: &mut Vec<u8>, bytes: &[u8]| -> BufRef {
        pad_to(data, ALIGN, 0);
        let r = BufRef { offset: data.len() as u64, length: bytes.len() as u64 };
        data.extend_from_slice(bytes);
        r
    };
    let f32_bytes = |v: &[f32]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };

    let mut entries = Vec::with_capacity(layers.len());
    for l in layers {
        let what = format!("layer {:?}", l.name);
        if l.name.is_empty() || l.name.len() > MAX_NAME_LEN {
            return invalid(format!("{what}: name must be 1 to {MAX_NAME_LEN} bytes"));
        }
        if l.quantizer == Quantizer::Binary && l.bits != 1 {
            return invalid(format!("{what}: the binary quantizer needs bits 1, got {}", l.bits));
        }
        if l.rows == 0 || l.cols == 0 {
            return invalid(format!("{what}: codes shape {}x{} must be non-empty", l.rows, l.cols));
        }
        let row_bytes = packed_len(l.cols, l.bits).map_err(|e| LaqError::Invalid(format!("{what}: {e}")))?;
        let mut packed = vec![0u8; l.rows * row_bytes];
        bitpack::pack_rows(l.codes, l.rows, l.cols, l.bits, &mut packed).map_err(|e| {
            LaqError::Invalid(match e {
                PackError::CodeTooLarge { index, code, bits } => format!(
                    "{what}: code {code} at ({}, {}) does not fit in {bits} bits",
                    index / l.cols,
                    index % l.cols
                ),
                e => format!("{what}: {e}"),
            })
        })?;
        let granularity = match (l.scale.len(), l.zero.len()) {
            (1, 1) => Granularity::Tensor,
            (s, z) if s == l.rows && z == l.rows => Granularity::Channel,
            (s, z) => {
                return invalid(format!(
                    "{what}: scale and zero must both have length 1 or {} (rows), got {s} and {z}",
                    l.rows
                ))
            }
        };
        check_values(&format!("{what} scale"), l.scale)?;
        check_values(&format!("{what} zero"), l.zero)?;
        if let Some(b) = l.bias {
            if b.len() != l.rows {
                return invalid(format!("{what}: bias has length {}, expected {} (rows)", b.len(), l.rows));
            }
            check_values(&format!("{what} bias"), b)?;
        }
        let codes = push(&mut data, &packed);
        let scale = push(&mut data, &f32_bytes(l.scale));
        let zero = push(&mut data, &f32_bytes(l.zero));
        let bias = l.bias.map(|b| push(&mut data, &f32_bytes(b)));
        entries.push(LayerEntry {
            bias,
            bits: l.bits,
            codes,
            cols: l.cols as u64,
            granularity,
            name: l.name.to_string(),
            quantizer: l.quantizer,
            rows: l.rows as u64,
            scale,
            zero,
        });
    }
    check_unique(layers.iter().map(|l| l.name), "layer").map_err(|e| LaqError::Invalid(e.to_string()))?;

    let mut sorted: Vec<&TensorInput> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(b.name));
    let mut tensor_entries = Vec::with_capacity(sorted.len());
    for t in sorted {
        let what = format!("tensor {:?}", t.name);
        if t.name.is_empty() || t.name.len() > MAX_NAME_LEN {
            return invalid(format!("{what}: name must be 1 to {MAX_NAME_LEN} bytes"));
        }
        if t.shape.len() > MAX_NDIM || t.shape.contains(&0) {
            return invalid(format!("{what}: shape {:?} must have at most {MAX_NDIM} positive dimensions", t.shape));
        }
        if t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) != Some(t.data.len()) {
            return invalid(format!("{what}: {} values do not fill shape {:?}", t.data.len(), t.shape));
        }
        check_values(&what, t.data)?;
        let data_ref = push(&mut data, &f32_bytes(t.data));
        tensor_entries.push(TensorEntry {
            data: data_ref,
            name: t.name.to_string(),
            shape: t.shape.iter().map(|&d| d as u64).collect(),
        });
    }
    check_unique(tensors.iter().map(|t| t.name), "tensor").map_err(|e| LaqError::Invalid(e.to_string()))?;
    pad_to(&mut data, ALIGN, 0);

    let header = Header { layers: entries, metadata, tensors: tensor_entries };
    let mut json = serde_json::to_vec(&header).map_err(|e| LaqError::Invalid(format!("cannot encode header: {e}")))?;
    // Pad with spaces (JSON whitespace) so the data region starts aligned.
    let total = (PRELUDE_LEN + json.len()).div_ceil(ALIGN) * ALIGN;
    json.resize(total - PRELUDE_LEN, b' ');
    if json.len() > MAX_HEADER_LEN {
        return invalid(format!("header is {} bytes, over the {MAX_HEADER_LEN}-byte limit", json.len()));
    }

    let mut file = Vec::with_capacity(total + data.len());
    file.extend_from_slice(&MAGIC);
    file.extend_from_slice(&VERSION.to_le_bytes());
    file.extend_from_slice(&(json.len() as u32).to_le_bytes());
    file.extend_from_slice(&(data.len() as u64).to_le_bytes());
    file.extend_from_slice(&[0u8; 8]); // checksum + reserved
    file.extend_from_slice(&json);
    file.extend_from_slice(&data);
    let crc = checksum(&file);
    file[24..28].copy_from_slice(&crc.to_le_bytes());
    // The writer must never produce a file its own reader rejects.
    LaqFile::from_bytes(file.clone())
        .map_err(|e| LaqError::Invalid(format!("internal error, encoded file is invalid: {e}")))?;
    Ok(file)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory is
/// written, flushed to disk and renamed over `path`, so readers see the old file or
/// the complete new one, never a partial write.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LaqError> {
    let io_err = |p: &Path, source| LaqError::Io { path: p.to_path_buf(), source };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(name) = path.file_name() else {
        return invalid(format!("{}: not a file path", path.display()));
    };
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.tmp-{}-{n}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(path, e));
    }
    // Make the rename itself durable; not every platform can open a directory.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Makes `path` ready for a file that [`write_atomic`] will write once the work is done, so a
/// bad output path fails before it, not after: a folder at `path` is refused, naming it, and
/// missing folders above it are created (as `serlaq compress --out` creates its folder).
/// `example` is the file name the refusal of a folder suggests inside it.
pub fn prepare_output(path: &Path, example: &str) -> Result<(), String> {
    if path.is_dir() {
        return Err(format!(
            "{}: is a folder; give the file to write (e.g. {})",
            path.display(),
            path.join(example).display()
        ));
    }
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.is_dir()) else { return Ok(()) };
    if let Some(file) = dir.ancestors().find(|a| a.exists()).filter(|a| !a.is_dir()) {
        return Err(format!("{}: {} is a file, not a folder", path.display(), file.display()));
    }
    fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create its folder {}: {e}", path.display(), dir.display()))
}

/// Encodes and atomically writes a `.laq` file.
pub fn write(path: &Path, metadata_json: &str, layers: &[LayerInput], tensors: &[TensorInput]) -> Result<(), LaqError> {
    let bytes = encode(metadata_json, layers, tensors)?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::dim;

    #[test]
    fn dimensions_past_a_32_bit_usize_are_too_large_not_zero() {
        // What a wasm32/armv7 build sees for `u64::MAX`: "too large", as on 64 bits.
        assert_eq!(dim::<u32>(u64::MAX), Err("is too large"));
        assert_eq!(dim::<u32>(1 << 32), Err("is too large"));
        assert_eq!(dim::<u32>(0), Err("must be positive"));
        assert_eq!(dim::<u32>(u64::from(u32::MAX)), Ok(u32::MAX));
        assert_eq!(dim::<usize>(0), Err("must be positive"));
        assert_eq!(dim::<usize>(7), Ok(7));
    }
}
