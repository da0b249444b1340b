//! Dequantized GEMV / small-batch GEMM: `y = x W^T + b` with `W` kept packed.
//!
//! `W[r, c] = scale[r'] * (q[r, c] - zero[r'])` (`r' = 0` per tensor, `r' = r` per row),
//! so each output is computed as
//! `y[b, r] = scale[r'] * (sum_c q[r, c] x[b, c] - zero[r'] * sum_c x[b, c]) + bias[r]`:
//! the kernels only ever form dot products of raw integer codes with `x`, decoded from
//! the packed bytes in registers, and never build a float copy of `W`.
//!
//! Kernels ([`Kernel`]; the registry [`Kernel::available`] detects the CPU once):
//! - Portable: unpack a tile of codes with the scalar group unpacker, convert, dot.
//! - AVX2 + FMA: batch 1 decodes 8 codes per 64-bit word into a vector (1 bit: the
//!   byte's bits as lane masks); batches use the portable tiling compiled for AVX2.
//! - AVX-512 (F, BW, VBMI, plus BMI2), compiled only with the opt-in cargo feature
//!   `avx512` (off by default: the default build ships only kernels that the project's
//!   tests run on real hardware):
//!   - batch 1 at 1 and 2 bits: per-call tables of partial sums, one 16-entry table per
//!     nibble of a row (the dot product of `x` with the 4 or 2 codes a nibble value
//!     stands for); 16 rows are looked up at once with in-register permutes.
//!   - batch 1 at 3..8 bits: 64 codes unpacked per step with a byte permute and a
//!     multishift, widened to f32 and multiply-added.
//!   - batches: a block of rows is decoded to a small f32 tile once and applied to the
//!     batch in 4-row x 4-vector register blocks.
//!
//! `SERLAQ_KERNELS=portable|avx2|avx512` forces a kernel (when this build has it and the
//! CPU can run it; otherwise the best available one runs). [`Kernel::selected`] names
//! the kernel that actually runs. Rows are split across the rayon pool when the layer is
//! large enough to pay for it.
//!
//! # Accuracy
//! The raw dot products `d = sum_c q[r, c] x[b, c]` are summed in f32; `sum_c x[b, c]`
//! and the affine combination `s * (d - z * sum x) + bias` are computed in f64 and
//! rounded once. Every kernel spreads a row's columns over accumulators so that no
//! product goes through more than [`dot_roundings`]`(cols)` roundings (see that
//! function for the count per kernel), so with `u = 2^-24` and `gamma(k) = k u / (1 - k u)`
//! (Higham, *Accuracy and Stability of Numerical Algorithms*, Lemma 3.1):
//!
//! `|y - y_exact| <= gamma(dot_roundings(cols)) * |s| * sum_c |q[r, c] x[b, c]| + u |y_exact|`
//! plus an f64 term of order `1e-16` relative. [`qgemm_error_bound`] evaluates it; the
//! Rust and Python tests compare every kernel against the f64 reference with it, and
//! assert bit-exact equality on inputs where no rounding happens at all. Measured over
//! every kernel on random layers (1-8 bits, 33x520 to 64x2048, x uniform in [-1, 1]),
//! the largest error is under 1% of the bound (8-bit 33x520: at most 9e-5 absolute,
//! bound about 0.045, one code step `s * max|x|` about 0.1).

use crate::bitpack::{self, packed_len};
pub use crate::kernel::Kernel;
use rayon::prelude::*;
use std::fmt;

/// A shape or argument error in a GEMV call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GemvError(pub String);

impl fmt::Display for GemvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GemvError {}

fn err<T>(msg: String) -> Result<T, GemvError> {
    Err(GemvError(msg))
}

/// A packed weight matrix with its affine parameters, validated.
#[derive(Debug, Clone, Copy)]
pub struct QMatrix<'a> {
    packed: &'a [u8],
    rows: usize,
    cols: usize,
    bits: u32,
    row_bytes: usize,
    scale: &'a [f32],
    zero: &'a [f32],
}

impl<'a> QMatrix<'a> {
    /// `packed` holds `rows` byte-aligned rows of `cols` codes at `bits` bits;
    /// `scale` and `zero` have length 1 (per tensor) or `rows` (per row).
    pub fn new(
        packed: &'a [u8],
        rows: usize,
        cols: usize,
        bits: u32,
        scale: &'a [f32],
        zero: &'a [f32],
    ) -> Result<Self, GemvError> {
        let row_bytes = packed_len(cols, bits).map_err(|e| GemvError(e.to_string()))?;
        if rows == 0 || cols == 0 {
            return err(format!("weight matrix must be non-empty, got {rows}x{cols}"));
        }
        match rows.checked_mul(row_bytes) {
            Some(n) if n == packed.len() => {}
            _ => {
                return err(format!(
                    "packed weights have {} bytes, expected {rows} rows x {row_bytes} bytes \
                     ({cols} columns at {bits} bits)",
                    packed.len()
                ))
            }
        }
        for (what, v) in [("scale", scale), ("zero", zero)] {
            if v.len() != 1 && v.len() != rows {
                return err(format!("{what} has length {}, expected 1 or {rows} (rows)", v.len()));
            }
        }
        Ok(QMatrix { packed, rows, cols, bits, row_bytes, scale, zero })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn bits(&self) -> u32 {
        self.bits
    }
    pub fn row_bytes(&self) -> usize {
        self.row_bytes
    }
    fn row(&self, r: usize) -> &'a [u8] {
        &self.packed[r * self.row_bytes..(r + 1) * self.row_bytes]
    }
    fn scale_zero(&self, r: usize) -> (f32, f32) {
        let i = if self.scale.len() == 1 { 0 } else { r };
        let j = if self.zero.len() == 1 { 0 } else { r };
        (self.scale[i], self.zero[j])
    }
}

fn check_io(m: &QMatrix, bias: Option<&[f32]>, x: &[f32], batch: usize, y: &[f32]) -> Result<(), GemvError> {
    if let Some(b) = bias {
        if b.len() != m.rows {
            return err(format!("bias has length {}, expected {} (rows)", b.len(), m.rows));
        }
    }
    if batch.checked_mul(m.cols) != Some(x.len()) {
        return err(format!("x has {} values, expected batch {batch} x {} columns", x.len(), m.cols));
    }
    if batch.checked_mul(m.rows) != Some(y.len()) {
        return err(format!("y has {} values, expected batch {batch} x {} rows", y.len(), m.rows));
    }
    Ok(())
}

/// Reference: decode every weight to f64 and take plain dot products.
pub fn qgemm_ref(m: &QMatrix, bias: Option<&[f32]>, x: &[f32], batch: usize, y: &mut [f32]) -> Result<(), GemvError> {
    check_io(m, bias, x, batch, y)?;
    let mut codes = vec![0u8; m.cols];
    for r in 0..m.rows {
        bitpack::unpack_ref(m.row(r), m.bits, &mut codes).map_err(|e| GemvError(e.to_string()))?;
        let (s, z) = m.scale_zero(r);
        for b in 0..batch {
            let xb = &x[b * m.cols..(b + 1) * m.cols];
            let dot: f64 = codes
                .iter()
                .zip(xb)
                .map(|(&q, &xv)| f64::from(s) * (f64::from(q) - f64::from(z)) * f64::from(xv))
                .sum();
            let bias_r = bias.map_or(0.0, |bv| f64::from(bv[r]));
            y[b * m.rows + r] = (dot + bias_r) as f32;
        }
    }
    Ok(())
}

/// Batch vectors handled per pass over the weights; larger batches loop.
pub const MAX_BATCH_PASS: usize = 64;
/// Below this many weight-times-batch products the call stays on one thread: handing
/// work to the pool and waiting for it costs 5-20 us, as much as ~1M products take.
const PAR_MIN_WORK: usize = 1 << 22;
/// Rows per rayon task.
const PAR_ROWS: usize = 32;

/// `y = x W^T + bias`; `x` is `batch x cols` row-major, `y` is `batch x rows`. Runs
/// [`Kernel::selected`].
pub fn qgemm(m: &QMatrix, bias: Option<&[f32]>, x: &[f32], batch: usize, y: &mut [f32]) -> Result<(), GemvError> {
    qgemm_with(Kernel::selected(), m, bias, x, batch, y)
}

/// [`qgemm`] with a given kernel (an error when this CPU cannot run it).
pub fn qgemm_with(
    kernel: Kernel,
    m: &QMatrix,
    bias: Option<&[f32]>,
    x: &[f32],
    batch: usize,
    y: &mut [f32],
) -> Result<(), GemvError> {
    kernel.check_available().map_err(GemvError)?;
    check_io(m, bias, x, batch, y)?;
    if batch == 0 {
        return Ok(());
    }
    let (rows, cols) = (m.rows, m.cols);
    // In f64: the zero-point term then adds no rounding error of its own (see Accuracy).
    let x_sums: Vec<f64> = x.chunks_exact(cols).map(|xb| xb.iter().map(|&v| f64::from(v)).sum()).collect();
    // Raw dots are computed rows-major (each rayon task owns a contiguous slice of
    // rows), then scaled and transposed into y.
    let mut dots = vec![0f32; rows * batch];
    // Runs `f(first_row, out)` over row blocks, on the pool when the work is large.
    let for_rows = |nb: usize, out: &mut [f32], f: &(dyn Fn(usize, &mut [f32]) + Sync)| {
        if rows.saturating_mul(cols).saturating_mul(nb) >= PAR_MIN_WORK && rows >= 2 * PAR_ROWS {
            out.par_chunks_mut(PAR_ROWS * nb).enumerate().for_each(|(i, o)| f(i * PAR_ROWS, o));
        } else {
            f(0, out);
        }
    };
    if let Some(lut) = Lut::build(kernel, m, x, batch) {
        for_rows(1, &mut dots, &|r0, out| lut.dots(m, r0, out));
    } else {
        let pass = |xs: &[f32], nb: usize, out: &mut [f32]| {
            for_rows(nb, out, &|r0, o| block_dots(kernel, m, r0, r0 + o.len() / nb, xs, nb, o));
        };
        if batch <= MAX_BATCH_PASS {
            pass(x, batch, &mut dots);
        } else {
            let mut buf = vec![0f32; rows * MAX_BATCH_PASS];
            for b0 in (0..batch).step_by(MAX_BATCH_PASS) {
                let nb = (batch - b0).min(MAX_BATCH_PASS);
                pass(&x[b0 * cols..(b0 + nb) * cols], nb, &mut buf[..rows * nb]);
                for r in 0..rows {
                    dots[r * batch + b0..r * batch + b0 + nb].copy_from_slice(&buf[r * nb..(r + 1) * nb]);
                }
            }
        }
    }
    for r in 0..rows {
        let (s, z) = m.scale_zero(r);
        let (s, z) = (f64::from(s), f64::from(z));
        let bias_r = bias.map_or(0.0, |bv| f64::from(bv[r]));
        for b in 0..batch {
            y[b * rows + r] = (s * (f64::from(dots[r * batch + b]) - z * x_sums[b]) + bias_r) as f32;
        }
    }
    Ok(())
}

/// Unit roundoff of f32 arithmetic (round to nearest): `2^-24`.
pub const F32_UNIT_ROUNDOFF: f64 = 1.0 / 16_777_216.0;
/// Unit roundoff of f64 arithmetic: `2^-53`.
pub const F64_UNIT_ROUNDOFF: f64 = 1.0 / 9_007_199_254_740_992.0;
/// Every kernel adds a row's products into accumulators so that each accumulator
/// receives at most one product per this many columns (the 2-bit table kernel, which
/// adds one 2-code table entry per nibble into 2 accumulators, is the tightest).
pub const DOT_COLS_PER_ROUNDING: usize = 4;
/// Roundings a product can go through on top of `cols / DOT_COLS_PER_ROUNDING`:
/// the product itself, table entries (up to 4 fused terms), the horizontal reductions
/// (at most 15 sequential lane adds), tails of up to 15 columns summed one by one, and
/// one add per 256-column tile of the portable kernel (bounded by the first term).
pub const DOT_EXTRA_ROUNDINGS: usize = 64;

/// Upper bound on the number of f32 roundings any product `q * x` goes through in any
/// kernel's dot product over `cols` columns. Per kernel (`n = cols`):
/// portable (and AVX2 batches) `<= 16 + 15 + 15 + 1 + n/256` (16 lanes over a 256-column
/// tile, a sequential lane sum, the tail, the tile add); AVX2 batch 1 `<= n/32 + 1 + 2 +
/// 3 + 7`; AVX-512 decode `<= n/64 + 1 + 2 + 4`, 1-bit masked adds `<= n/64 + 2 + 1 + 2 + 4`,
/// tables `<= n/4 + 4 + 4`, batches `<= n/16 + n/1024 + 4`.
pub fn dot_roundings(cols: usize) -> usize {
    cols.div_ceil(DOT_COLS_PER_ROUNDING) + DOT_EXTRA_ROUNDINGS
}

/// `gamma(k) = k u / (1 - k u)`: the relative error bound of `k` roundings.
pub fn gamma(k: usize, unit_roundoff: f64) -> f64 {
    let ku = k as f64 * unit_roundoff;
    assert!(ku < 1.0, "gamma({k}) is unbounded");
    ku / (1.0 - ku)
}

/// Bound on `|y - y_exact|` for one output of [`qgemm`] (any kernel): `abs_qx` is
/// `sum_c |q[r, c] x[b, c]|`, `abs_zx` is `|zero| * sum_c |x[b, c]|`, `y_exact` the exact
/// (f64) result. The f32 dot products contribute `gamma(dot_roundings(cols)) |s| abs_qx`,
/// the final rounding to f32 `u |y_exact|`, the f64 sums and combination
/// `gamma_f64(cols + 4) (|s| (abs_qx + abs_zx) + |bias|)`; `f32::MIN_POSITIVE` covers
/// subnormal results.
pub fn qgemm_error_bound(cols: usize, scale: f32, bias: f32, abs_qx: f64, abs_zx: f64, y_exact: f64) -> f64 {
    let s = f64::from(scale).abs();
    gamma(dot_roundings(cols), F32_UNIT_ROUNDOFF) * s * abs_qx
        + F32_UNIT_ROUNDOFF * y_exact.abs()
        + gamma(cols + 4, F64_UNIT_ROUNDOFF) * (s * (abs_qx + abs_zx) + f64::from(bias).abs())
        + f64::from(f32::MIN_POSITIVE)
}

/// Batch-1 tables of partial sums (see `avx512::build_lut`), when the kernel uses them.
struct Lut {
    #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
    tables: Vec<std::arch::x86_64::__m512>,
}

impl Lut {
    fn build(kernel: Kernel, m: &QMatrix, x: &[f32], batch: usize) -> Option<Lut> {
        #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
        if kernel == Kernel::Avx512 && batch == 1 && avx512::lut_applies(m) {
            // SAFETY: `qgemm_with` checked that the CPU runs `Kernel::Avx512`.
            return Some(Lut { tables: unsafe { avx512::build_lut(m, x) } });
        }
        let _ = (kernel, m, x, batch);
        None
    }

    /// Dot products of rows `r0 .. r0 + out.len()` with the `x` the tables were built from.
    fn dots(&self, m: &QMatrix, r0: usize, out: &mut [f32]) {
        #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
        // SAFETY: tables exist only when AVX-512 was detected; built for this matrix.
        unsafe {
            avx512::lut_dots(m, &self.tables, r0, r0 + out.len(), out)
        }
        #[cfg(not(all(target_arch = "x86_64", feature = "avx512")))]
        {
            let _ = (m, r0, out);
            unreachable!("tables are built only by the AVX-512 kernel")
        }
    }
}

/// `out[(r - r0) * batch + b] = sum_c q[r, c] * x[b, c]` for rows `r0..r1`.
fn block_dots(kernel: Kernel, m: &QMatrix, r0: usize, r1: usize, x: &[f32], batch: usize, out: &mut [f32]) {
    debug_assert_eq!(out.len(), (r1 - r0) * batch);
    match kernel {
        // SAFETY: callers pass only available kernels (`qgemm_with` checks), i.e.
        // the CPU features each variant needs were detected.
        #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
        Kernel::Avx512 => unsafe { avx512::block_dots(m, r0, r1, x, batch, out) },
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => unsafe { avx2::block_dots(m, r0, r1, x, batch, out) },
        Kernel::Portable => portable_block_dots(m, r0, r1, x, batch, out),
    }
}

/// Columns decoded per tile in the portable kernel; a multiple of 8 so each tile of a
/// row starts on a byte boundary.
const TILE: usize = 256;

#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Independent lanes let the compiler keep them in vector registers.
    let mut acc = [0f32; 16];
    let (ah, at) = a.split_at(a.len() / 16 * 16);
    let (bh, bt) = b.split_at(ah.len());
    for (ca, cb) in ah.chunks_exact(16).zip(bh.chunks_exact(16)) {
        for i in 0..16 {
            acc[i] += ca[i] * cb[i];
        }
    }
    let tail: f32 = at.iter().zip(bt).map(|(p, q)| p * q).sum();
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn portable_block_dots(m: &QMatrix, r0: usize, r1: usize, x: &[f32], batch: usize, out: &mut [f32]) {
    let cols = m.cols;
    let bits = m.bits as usize;
    let mut codes = [0u8; TILE];
    let mut w = [0f32; TILE];
    for r in r0..r1 {
        let row = m.row(r);
        let acc = &mut out[(r - r0) * batch..(r - r0 + 1) * batch];
        acc.fill(0.0);
        for c0 in (0..cols).step_by(TILE) {
            let n = (cols - c0).min(TILE);
            let start = c0 * bits / 8;
            let bytes = &row[start..start + (n * bits).div_ceil(8)];
            bitpack::unpack_unchecked_portable(bytes, m.bits, &mut codes[..n]);
            for (wv, &q) in w[..n].iter_mut().zip(&codes[..n]) {
                *wv = f32::from(q);
            }
            for (b, a) in acc.iter_mut().enumerate() {
                *a += dot(&w[..n], &x[b * cols + c0..b * cols + c0 + n]);
            }
        }
    }
}

/// AVX2 + FMA: batch 1 decodes 8 codes per 64-bit word straight into a vector (1 bit:
/// the byte's bits become lane masks); batches run the portable tiling compiled for AVX2.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::QMatrix;
    use crate::bitpack::spread;
    use std::arch::x86_64::*;

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn block_dots(m: &QMatrix, r0: usize, r1: usize, x: &[f32], batch: usize, out: &mut [f32]) {
        if batch > 1 {
            return super::portable_block_dots(m, r0, r1, x, batch, out);
        }
        for r in r0..r1 {
            let row = m.row(r);
            out[r - r0] = match m.bits {
                1 => dot_1bit(row, x),
                2 => dot::<2>(row, x),
                3 => dot::<3>(row, x),
                4 => dot::<4>(row, x),
                5 => dot::<5>(row, x),
                6 => dot::<6>(row, x),
                7 => dot::<7>(row, x),
                _ => dot::<8>(row, x),
            };
        }
    }

    #[inline(always)]
    unsafe fn hsum(acc: [__m256; 4]) -> f32 {
        let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps::<1>(h, h)))
    }

    /// Codes `8g .. 8g+8` of a row (`g < cols / 8`, so its `B` bytes exist).
    #[inline(always)]
    unsafe fn group<const B: u32>(row: &[u8], g: usize, wide: usize) -> __m256 {
        let b = B as usize;
        let w = if g < wide {
            // SAFETY: g < wide means 8 bytes from g*b are inside the row.
            let w = (row.as_ptr().add(g * b) as *const u64).read_unaligned();
            if B == 8 {
                w
            } else {
                w & ((1u64 << (8 * B)) - 1)
            }
        } else {
            let mut a = [0u8; 8];
            a[..b].copy_from_slice(&row[g * b..g * b + b]);
            u64::from_le_bytes(a)
        };
        if B == 8 {
            // Already one code per byte.
            return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(spread::<B>(w) as i64)));
        }
        // Shift a copy of the word per qword lane so lane k holds codes 2k and 2k+1 at its
        // bottom, then split them into the two halves of the lane.
        let b = B as i64;
        let s = _mm256_srlv_epi64(_mm256_set1_epi64x(w as i64), _mm256_setr_epi64x(0, 2 * b, 4 * b, 6 * b));
        let mask = _mm256_set1_epi64x((1i64 << B) - 1);
        let lo = _mm256_and_si256(s, mask);
        let hi = _mm256_and_si256(_mm256_srl_epi64(s, _mm_cvtsi32_si128(B as i32)), mask);
        _mm256_cvtepi32_ps(_mm256_or_si256(lo, _mm256_slli_epi64::<32>(hi)))
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot<const B: u32>(row: &[u8], x: &[f32]) -> f32 {
        let (cols, b) = (x.len(), B as usize);
        let groups = cols / 8;
        let wide = if row.len() >= 8 { ((row.len() - 8) / b + 1).min(groups) } else { 0 };
        let xp = x.as_ptr();
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut g = 0;
        while g + 4 <= groups {
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: group g+k < groups covers columns inside x.
                *a = _mm256_fmadd_ps(group::<B>(row, g + k, wide), _mm256_loadu_ps(xp.add(8 * (g + k))), *a);
            }
            g += 4;
        }
        while g < groups {
            acc[0] = _mm256_fmadd_ps(group::<B>(row, g, wide), _mm256_loadu_ps(xp.add(8 * g)), acc[0]);
            g += 1;
        }
        let mut sum = hsum(acc);
        let c0 = groups * 8;
        if c0 < cols {
            let mut a = [0u8; 8];
            let tail = &row[c0 * b / 8..];
            a[..tail.len()].copy_from_slice(tail);
            let codes = spread::<B>(u64::from_le_bytes(a)).to_le_bytes();
            for (i, xv) in x[c0..].iter().enumerate() {
                sum += f32::from(codes[i] & ((1u16 << B) - 1) as u8) * xv;
            }
        }
        sum
    }

    /// 1 bit: each byte's bits select which of 8 x values to add.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_1bit(row: &[u8], x: &[f32]) -> f32 {
        let cols = x.len();
        let lanes = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
        let select = |byte: u8, xv: __m256| -> __m256 {
            let m = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(i32::from(byte)), lanes), lanes);
            _mm256_and_ps(_mm256_castsi256_ps(m), xv)
        };
        let xp = x.as_ptr();
        let mut acc = [_mm256_setzero_ps(); 4];
        let groups = cols / 8;
        let mut g = 0;
        while g + 4 <= groups {
            for (k, a) in acc.iter_mut().enumerate() {
                // SAFETY: byte g+k < cols / 8 and its 8 columns are inside x.
                *a = _mm256_add_ps(*a, select(row[g + k], _mm256_loadu_ps(xp.add(8 * (g + k)))));
            }
            g += 4;
        }
        while g < groups {
            acc[0] = _mm256_add_ps(acc[0], select(row[g], _mm256_loadu_ps(xp.add(8 * g))));
            g += 1;
        }
        let mut sum = hsum(acc);
        for (i, xv) in x[groups * 8..].iter().enumerate() {
            if row[groups] >> i & 1 == 1 {
                sum += xv;
            }
        }
        sum
    }
}

#[cfg(all(target_arch = "x86_64", feature = "avx512"))]
mod avx512 {
    use super::QMatrix;
    use crate::bitpack::low_mask;
    use std::arch::x86_64::*;

    /// Rows decoded together for a batch, so each load of `x` feeds several rows.
    const RB: usize = 4;
    /// Columns per decoded tile (a multiple of 64).
    const TC: usize = 1024;

    /// # Safety
    /// The CPU must support AVX-512 F/BW/VBMI and BMI2.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,bmi2")]
    pub unsafe fn block_dots(m: &QMatrix, r0: usize, r1: usize, x: &[f32], batch: usize, out: &mut [f32]) {
        if batch == 1 {
            for r in r0..r1 {
                let row = m.row(r);
                out[r - r0] = match m.bits {
                    1 => dot_1bit(row, x),
                    // The bytes after the row (the next rows) let the last steps load
                    // whole vectors; codes past the row meet zero x.
                    _ => dot_vbmi(&m.packed[r * m.row_bytes..], m.bits, x),
                };
            }
        } else {
            batched(m, r0, r1, x, batch, out);
        }
    }

    /// Reads up to 8 bytes of `row` from `start` as a little-endian word (zeros past the
    /// end). The short case is a masked vector load: assembling the word from single
    /// bytes would stall on store-to-load forwarding once per row.
    #[inline(always)]
    unsafe fn read_word(row: &[u8], start: usize) -> u64 {
        if start + 8 <= row.len() {
            u64::from_le_bytes(row[start..start + 8].try_into().unwrap())
        } else {
            let n = row.len() - start;
            // SAFETY: only the first n (in-bounds) bytes are read.
            let v = _mm512_maskz_loadu_epi8(low_mask(n), row.as_ptr().add(start).cast());
            _mm_cvtsi128_si64(_mm512_castsi512_si128(v)) as u64
        }
    }

    /// Loads 16 floats of `x` from `c`, zeros for columns at or past `x.len()`.
    #[inline(always)]
    unsafe fn load_x(x: &[f32], c: usize) -> __m512 {
        let p = x.as_ptr().add(c.min(x.len()));
        if c + 16 <= x.len() {
            _mm512_loadu_ps(p)
        } else {
            let n = x.len().saturating_sub(c);
            _mm512_maskz_loadu_ps(low_mask(n) as u16, p)
        }
    }

    #[inline(always)]
    unsafe fn hsum4(acc: [__m512; 4]) -> f32 {
        _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])))
    }

    /// 1 bit: add `x[c]` wherever bit `c` of the row is set (the row's bits are the
    /// lane masks of a masked add).
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,bmi2")]
    unsafe fn dot_1bit(row: &[u8], x: &[f32]) -> f32 {
        let cols = x.len();
        // Eight accumulators: enough independent adds in flight to cover their latency.
        let mut acc8 = [_mm512_setzero_ps(); 8];
        let (rp, xp) = (row.as_ptr(), x.as_ptr());
        for j in 0..cols / 128 {
            // SAFETY: 128 columns = 16 bytes of the row and 128 floats of x are in bounds.
            let w0 = (rp.add(16 * j) as *const u64).read_unaligned();
            let w1 = (rp.add(16 * j + 8) as *const u64).read_unaligned();
            let xj = xp.add(128 * j);
            for k in 0..4 {
                acc8[k] =
                    _mm512_mask_add_ps(acc8[k], (w0 >> (16 * k)) as u16, acc8[k], _mm512_loadu_ps(xj.add(16 * k)));
                acc8[k + 4] = _mm512_mask_add_ps(
                    acc8[k + 4],
                    (w1 >> (16 * k)) as u16,
                    acc8[k + 4],
                    _mm512_loadu_ps(xj.add(64 + 16 * k)),
                );
            }
        }
        let mut acc = [
            _mm512_add_ps(acc8[0], acc8[4]),
            _mm512_add_ps(acc8[1], acc8[5]),
            _mm512_add_ps(acc8[2], acc8[6]),
            _mm512_add_ps(acc8[3], acc8[7]),
        ];
        let full = cols / 128 * 2 + (cols % 128) / 64;
        if full % 2 == 1 {
            // One more whole 64-column step.
            let j = full - 1;
            let w = (rp.add(8 * j) as *const u64).read_unaligned();
            let xj = xp.add(64 * j);
            for (k, a) in acc.iter_mut().enumerate() {
                *a = _mm512_mask_add_ps(*a, (w >> (16 * k)) as u16, *a, _mm512_loadu_ps(xj.add(16 * k)));
            }
        }
        let mut c = full * 64;
        if c < cols {
            let w = read_word(row, c / 8) & low_mask(cols - c);
            for (k, a) in acc.iter_mut().enumerate() {
                if c + 16 * k < cols {
                    *a = _mm512_mask_add_ps(*a, (w >> (16 * k)) as u16, *a, load_x(x, c + 16 * k));
                }
            }
            c += 64;
        }
        debug_assert!(c >= cols);
        hsum4(acc)
    }

    /// Byte permutation putting group `g` (bytes `g*bits ..`) of 8 codes in qword `g`,
    /// and the multishift control selecting code `j` of a qword at bit `j*bits`.
    #[inline(always)]
    unsafe fn decode_consts(bits: u32) -> (__m512i, __m512i, __m512i) {
        let b = bits as usize;
        let mut perm = [0u8; 64];
        let mut ctrl = [0u8; 64];
        for g in 0..8 {
            for k in 0..8 {
                perm[g * 8 + k] = (g * b + k) as u8;
                ctrl[g * 8 + k] = (k * b) as u8;
            }
        }
        (
            _mm512_loadu_si512(perm.as_ptr().cast()),
            _mm512_loadu_si512(ctrl.as_ptr().cast()),
            _mm512_set1_epi8(((1u16 << bits) - 1) as u8 as i8),
        )
    }

    /// 64 codes starting at code `c` of `row` (a multiple of 64); codes past the row's
    /// bytes read as zero.
    #[inline(always)]
    unsafe fn decode64(row: &[u8], bits: u32, c: usize, k: (__m512i, __m512i, __m512i)) -> __m512i {
        let start = c / 8 * bits as usize;
        let avail = row.len() - start;
        let n = (8 * bits as usize).min(avail);
        let src = _mm512_maskz_loadu_epi8(low_mask(n), row.as_ptr().add(start).cast());
        let grouped = _mm512_permutexvar_epi8(k.0, src);
        _mm512_and_si512(_mm512_multishift_epi64_epi8(k.1, grouped), k.2)
    }

    /// Codes `16Q .. 16Q+16` of 64 as floats. One zero-masking byte permute widens them
    /// to 32-bit lanes (instead of an extract plus a zero-extension: shuffle ports are the
    /// bottleneck of this kernel).
    #[inline(always)]
    unsafe fn quarter_f32<const Q: i32>(codes: __m512i) -> __m512 {
        let idx = _mm512_add_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32(16 * Q),
        );
        _mm512_cvtepi32_ps(_mm512_maskz_permutexvar_epi8(0x1111_1111_1111_1111, idx, codes))
    }

    /// 2..8 bits (any width): decode 64 codes per step, convert, multiply-add. `row`
    /// starts at the row and may run on past its end (then those codes meet zero x).
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,bmi2")]
    unsafe fn dot_vbmi(row: &[u8], bits: u32, x: &[f32]) -> f32 {
        let cols = x.len();
        let (perm, ctrl, mask) = decode_consts(bits);
        let mut acc = [_mm512_setzero_ps(); 4];
        let b = bits as usize;
        // Full 64-byte loads while they stay inside `row`; masked loads after.
        let fast = if row.len() >= 64 { ((row.len() - 64) / (8 * b) + 1).min(cols / 64) } else { 0 };
        let (rp, xp) = (row.as_ptr(), x.as_ptr());
        for j in 0..fast {
            // SAFETY: bytes 8*b*j .. +64 are inside the row (see `fast`), and the 64
            // columns from 64*j are inside x (j < cols / 64).
            let src = _mm512_loadu_si512(rp.add(8 * b * j).cast());
            let codes = _mm512_and_si512(_mm512_multishift_epi64_epi8(ctrl, _mm512_permutexvar_epi8(perm, src)), mask);
            let xj = xp.add(64 * j);
            acc[0] = _mm512_fmadd_ps(quarter_f32::<0>(codes), _mm512_loadu_ps(xj), acc[0]);
            acc[1] = _mm512_fmadd_ps(quarter_f32::<1>(codes), _mm512_loadu_ps(xj.add(16)), acc[1]);
            acc[2] = _mm512_fmadd_ps(quarter_f32::<2>(codes), _mm512_loadu_ps(xj.add(32)), acc[2]);
            acc[3] = _mm512_fmadd_ps(quarter_f32::<3>(codes), _mm512_loadu_ps(xj.add(48)), acc[3]);
        }
        let mut c = 64 * fast;
        while c < cols {
            let codes = decode64(row, bits, c, (perm, ctrl, mask));
            acc[0] = _mm512_fmadd_ps(quarter_f32::<0>(codes), load_x(x, c), acc[0]);
            acc[1] = _mm512_fmadd_ps(quarter_f32::<1>(codes), load_x(x, c + 16), acc[1]);
            acc[2] = _mm512_fmadd_ps(quarter_f32::<2>(codes), load_x(x, c + 32), acc[2]);
            acc[3] = _mm512_fmadd_ps(quarter_f32::<3>(codes), load_x(x, c + 48), acc[3]);
            c += 64;
        }
        hsum4(acc)
    }

    /// Whether the table kernel handles this matrix at batch 1: 1 and 2 bits (4 codes
    /// or 2 codes per nibble; at 4 bits, one code per lookup, decoding is faster), and
    /// offsets of 16 rows that fit the gather's 32-bit indices.
    pub fn lut_applies(m: &QMatrix) -> bool {
        matches!(m.bits, 1 | 2) && m.row_bytes.checked_mul(16).is_some_and(|n| n <= i32::MAX as usize)
    }

    /// Per-nibble tables for batch 1: `t[n][v]` is the dot product of `x` with the
    /// 4/bits codes that nibble value `v` holds at nibble `n` of a row (zero past the
    /// last column, and for the padding nibbles of the last 4-byte chunk).
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,bmi2")]
    pub unsafe fn build_lut(m: &QMatrix, x: &[f32]) -> Vec<__m512> {
        let b = m.bits as usize;
        let per = 4 / b;
        let nibbles = m.row_bytes.div_ceil(4) * 8;
        let mut coef = [[0f32; 16]; 4];
        for (i, c) in coef.iter_mut().enumerate().take(per) {
            for (v, cv) in c.iter_mut().enumerate() {
                *cv = ((v >> (i * b)) & ((1 << b) - 1)) as f32;
            }
        }
        let coef = coef.map(|c| _mm512_loadu_ps(c.as_ptr()));
        let mut t = vec![_mm512_setzero_ps(); nibbles];
        for (n, tn) in t.iter_mut().enumerate() {
            let mut acc = _mm512_setzero_ps();
            for (i, c) in coef.iter().enumerate().take(per) {
                if let Some(&xv) = x.get(n * per + i) {
                    acc = _mm512_fmadd_ps(*c, _mm512_set1_ps(xv), acc);
                }
            }
            *tn = acc;
        }
        t
    }

    /// Batch-1 dot products of rows `r0..r1` by table lookup, 16 rows per vector: a
    /// vector holds 4 bytes (8 nibbles) of each of 16 rows (a 16x16 transpose of 64-byte
    /// row blocks; a gather for the remainder), and each nibble position is one
    /// in-register permute of its 16-entry table, i.e. `4/bits` columns of 16 rows per
    /// permute-and-add: about half the time of the masked-add (1 bit) and decoding
    /// (2 bits) kernels.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,bmi2")]
    pub unsafe fn lut_dots(m: &QMatrix, t: &[__m512], r0: usize, r1: usize, out: &mut [f32]) {
        let rb = m.row_bytes;
        let (full, tail) = (rb / 4, rb % 4);
        debug_assert_eq!(t.len(), rb.div_ceil(4) * 8);
        let tp = t.as_ptr();
        #[inline(always)]
        unsafe fn eight(v: __m512i, tj: *const __m512, acc: &mut [__m512; 2]) {
            acc[0] = _mm512_add_ps(acc[0], _mm512_permutexvar_ps(v, *tj));
            acc[1] = _mm512_add_ps(acc[1], _mm512_permutexvar_ps(_mm512_srli_epi32::<4>(v), *tj.add(1)));
            acc[0] = _mm512_add_ps(acc[0], _mm512_permutexvar_ps(_mm512_srli_epi32::<8>(v), *tj.add(2)));
            acc[1] = _mm512_add_ps(acc[1], _mm512_permutexvar_ps(_mm512_srli_epi32::<12>(v), *tj.add(3)));
            acc[0] = _mm512_add_ps(acc[0], _mm512_permutexvar_ps(_mm512_srli_epi32::<16>(v), *tj.add(4)));
            acc[1] = _mm512_add_ps(acc[1], _mm512_permutexvar_ps(_mm512_srli_epi32::<20>(v), *tj.add(5)));
            acc[0] = _mm512_add_ps(acc[0], _mm512_permutexvar_ps(_mm512_srli_epi32::<24>(v), *tj.add(6)));
            acc[1] = _mm512_add_ps(acc[1], _mm512_permutexvar_ps(_mm512_srli_epi32::<28>(v), *tj.add(7)));
        }
        for blk in (r0..r1).step_by(16) {
            let n = (r1 - blk).min(16);
            // Lanes past the last row re-read the last row; their sums are not stored.
            let mut offs = [0i32; 16];
            for (i, o) in offs.iter_mut().enumerate() {
                *o = (i.min(n - 1) * rb) as i32;
            }
            let offs = _mm512_loadu_si512(offs.as_ptr().cast());
            let base = m.packed.as_ptr().add(blk * rb);
            let mut acc = [_mm512_setzero_ps(); 2];
            // 64-byte blocks of the 16 rows, transposed so that vector j holds bytes
            // 4j..4j+4 of every row.
            let rows: [*const u8; 16] = std::array::from_fn(|i| base.add(i.min(n - 1) * rb));
            for jb in 0..rb / 64 {
                // SAFETY: bytes 64*jb .. 64*jb+64 are inside each of the rows.
                let r: [__m512i; 16] = std::array::from_fn(|i| _mm512_loadu_si512(rows[i].add(64 * jb).cast()));
                let c = transpose16(&r);
                for (j, v) in c.iter().enumerate() {
                    eight(*v, tp.add(8 * (16 * jb + j)), &mut acc);
                }
            }
            for j in rb / 64 * 16..full {
                // SAFETY: every lane reads bytes 4j..4j+4 of one of rows blk..blk+n.
                let v = _mm512_i32gather_epi32::<1>(offs, base.add(4 * j).cast());
                eight(v, tp.add(8 * j), &mut acc);
            }
            if tail > 0 {
                let mut lanes = [0u32; 16];
                for (i, l) in lanes.iter_mut().enumerate().take(n) {
                    let mut a = [0u8; 4];
                    a[..tail].copy_from_slice(&m.row(blk + i)[4 * full..]);
                    *l = u32::from_le_bytes(a);
                }
                eight(_mm512_loadu_si512(lanes.as_ptr().cast()), tp.add(8 * full), &mut acc);
            }
            let sums = _mm512_add_ps(acc[0], acc[1]);
            _mm512_mask_storeu_ps(out.as_mut_ptr().add(blk - r0), low_mask(n) as u16, sums);
        }
    }

    /// Transposes a 16x16 matrix of 32-bit elements held as 16 row vectors.
    #[inline(always)]
    unsafe fn transpose16(r: &[__m512i; 16]) -> [__m512i; 16] {
        // Pairs of rows interleaved by dword, then quads by qword: s[m][q] holds, in
        // 128-bit lane L, element 4L+m of rows 4q..4q+4.
        let mut s = [[_mm512_setzero_si512(); 4]; 4];
        for q in 0..4 {
            let (a, b, c, d) = (r[4 * q], r[4 * q + 1], r[4 * q + 2], r[4 * q + 3]);
            let (lo01, hi01) = (_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
            let (lo23, hi23) = (_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
            s[0][q] = _mm512_unpacklo_epi64(lo01, lo23);
            s[1][q] = _mm512_unpackhi_epi64(lo01, lo23);
            s[2][q] = _mm512_unpacklo_epi64(hi01, hi23);
            s[3][q] = _mm512_unpackhi_epi64(hi01, hi23);
        }
        // A 4x4 transpose of 128-bit lanes for each m.
        let mut out = [_mm512_setzero_si512(); 16];
        for (m, sm) in s.iter().enumerate() {
            let x0 = _mm512_shuffle_i32x4::<0b01_00_01_00>(sm[0], sm[1]);
            let x1 = _mm512_shuffle_i32x4::<0b11_10_11_10>(sm[0], sm[1]);
            let x2 = _mm512_shuffle_i32x4::<0b01_00_01_00>(sm[2], sm[3]);
            let x3 = _mm512_shuffle_i32x4::<0b11_10_11_10>(sm[2], sm[3]);
            out[m] = _mm512_shuffle_i32x4::<0b10_00_10_00>(x0, x2);
            out[4 + m] = _mm512_shuffle_i32x4::<0b11_01_11_01>(x0, x2);
            out[8 + m] = _mm512_shuffle_i32x4::<0b10_00_10_00>(x1, x3);
            out[12 + m] = _mm512_shuffle_i32x4::<0b11_01_11_01>(x1, x3);
        }
        out
    }

    /// Horizontal sums of 16 vectors at once (lane i = sum of `v[i]`): a transpose-and-add
    /// tree, about 3x fewer instructions than 16 separate reductions.
    #[inline(always)]
    unsafe fn reduce16(v: &[__m512]) -> __m512 {
        debug_assert_eq!(v.len(), 16);
        // Within 128-bit lanes: pairs, then quads of vectors.
        let mut w = [_mm512_setzero_ps(); 8];
        for k in 0..8 {
            let (a, b) = (v[2 * k], v[2 * k + 1]);
            w[k] = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
        }
        let mut u = [_mm512_setzero_ps(); 4];
        for k in 0..4 {
            let (a, b) = (w[2 * k], w[2 * k + 1]);
            u[k] = _mm512_add_ps(_mm512_shuffle_ps::<0b01_00_01_00>(a, b), _mm512_shuffle_ps::<0b11_10_11_10>(a, b));
        }
        // Across 128-bit lanes.
        let fold = |a: __m512, b: __m512| {
            _mm512_add_ps(_mm512_shuffle_f32x4::<0b10_00_10_00>(a, b), _mm512_shuffle_f32x4::<0b11_01_11_01>(a, b))
        };
        fold(fold(u[0], u[1]), fold(u[2], u[3]))
    }

    /// Batches: decode `RB` rows x `TC` columns to f32 once, then apply the tile to the
    /// batch in 4-row x 4-vector register blocks (16 independent FMA chains, 8 loads per
    /// 16 FMAs). Partial sums stay in vectors until the rows are done.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,bmi2")]
    unsafe fn batched(m: &QMatrix, r0: usize, r1: usize, x: &[f32], batch: usize, out: &mut [f32]) {
        let cols = m.cols;
        let k = decode_consts(m.bits);
        let mut tile = vec![0f32; RB * TC];
        let mut accs = vec![_mm512_setzero_ps(); RB * batch];
        let tp = tile.as_mut_ptr();
        for rb in (r0..r1).step_by(RB) {
            let nr = (r1 - rb).min(RB);
            accs.fill(_mm512_setzero_ps());
            for c0 in (0..cols).step_by(TC) {
                let nc = (cols - c0).min(TC);
                let steps = nc.div_ceil(64);
                for i in 0..nr {
                    let row = m.row(rb + i);
                    for s in 0..steps {
                        let codes = decode64(row, m.bits, c0 + 64 * s, k);
                        // SAFETY: steps * 64 <= TC, so the stores stay inside row i of the tile.
                        let p = tp.add(i * TC + 64 * s);
                        _mm512_storeu_ps(p, quarter_f32::<0>(codes));
                        _mm512_storeu_ps(p.add(16), quarter_f32::<1>(codes));
                        _mm512_storeu_ps(p.add(32), quarter_f32::<2>(codes));
                        _mm512_storeu_ps(p.add(48), quarter_f32::<3>(codes));
                    }
                }
                // Rows past `nr` keep stale but finite values; their sums are dropped.
                // Columns past `cols` meet zero x (masked loads).
                let whole = nc / 16;
                // The last, partial group of 16 columns loads x under a mask.
                let part = (!nc.is_multiple_of(16)).then(|| low_mask(nc % 16) as u16);
                let xrow = |b: usize| x.as_ptr().add(b * cols + c0);
                let mut b = 0;
                while b + 4 <= batch {
                    let xp = [xrow(b), xrow(b + 1), xrow(b + 2), xrow(b + 3)];
                    let mut acc = [[_mm512_setzero_ps(); 4]; RB];
                    let mut step = |g: usize, xv: [__m512; 4]| {
                        for (i, ai) in acc.iter_mut().enumerate() {
                            let wv = _mm512_loadu_ps(tp.add(i * TC + 16 * g));
                            for (a, xj) in ai.iter_mut().zip(xv) {
                                *a = _mm512_fmadd_ps(wv, xj, *a);
                            }
                        }
                    };
                    for g in 0..whole {
                        step(g, xp.map(|p| _mm512_loadu_ps(p.add(16 * g))));
                    }
                    if let Some(k) = part {
                        step(whole, xp.map(|p| _mm512_maskz_loadu_ps(k, p.add(16 * whole))));
                    }
                    for (i, ai) in acc.iter().enumerate() {
                        for (j, a) in ai.iter().enumerate() {
                            let slot = &mut accs[i * batch + b + j];
                            *slot = _mm512_add_ps(*slot, *a);
                        }
                    }
                    b += 4;
                }
                while b < batch {
                    let xp = xrow(b);
                    let mut acc = [_mm512_setzero_ps(); RB];
                    let mut step = |g: usize, xv: __m512| {
                        for (i, a) in acc.iter_mut().enumerate() {
                            *a = _mm512_fmadd_ps(_mm512_loadu_ps(tp.add(i * TC + 16 * g)), xv, *a);
                        }
                    };
                    for g in 0..whole {
                        step(g, _mm512_loadu_ps(xp.add(16 * g)));
                    }
                    if let Some(k) = part {
                        step(whole, _mm512_maskz_loadu_ps(k, xp.add(16 * whole)));
                    }
                    for (i, a) in acc.iter().enumerate() {
                        let slot = &mut accs[i * batch + b];
                        *slot = _mm512_add_ps(*slot, *a);
                    }
                    b += 1;
                }
            }
            for i in 0..nr {
                let sums = &accs[i * batch..(i + 1) * batch];
                let dst = &mut out[(rb - r0 + i) * batch..(rb - r0 + i + 1) * batch];
                let whole = batch / 16 * 16;
                for b in (0..whole).step_by(16) {
                    // SAFETY: b + 16 <= batch, the length of both slices.
                    _mm512_storeu_ps(dst.as_mut_ptr().add(b), reduce16(&sums[b..b + 16]));
                }
                for b in whole..batch {
                    dst[b] = _mm512_reduce_add_ps(sums[b]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// packed, codes, scale, zero, bias, x
    type Case = (Vec<u8>, Vec<u8>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

    /// Random layer and input. `exact`: integer x in [-4, 4], integer zero points,
    /// power-of-two scales and bias in eighths, so that every sum the kernels and the
    /// reference form is exactly representable and any summation order gives the same bits.
    fn case(bits: u32, rows: usize, cols: usize, batch: usize, per_row: bool, seed: u64, exact: bool) -> Case {
        let mut s = seed | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let mask = ((1u16 << bits) - 1) as u64;
        let codes: Vec<u8> = (0..rows * cols).map(|_| (next() & mask) as u8).collect();
        let mut packed = vec![0u8; rows * packed_len(cols, bits).unwrap()];
        bitpack::pack_rows(&codes, rows, cols, bits, &mut packed).unwrap();
        let n = if per_row { rows } else { 1 };
        let unit = |v: u64| (v % 2001) as f32 / 1000.0 - 1.0;
        let (scale, zero, bias, x): (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) = if exact {
            (
                (0..n).map(|_| 1.0 / (1u32 << (next() % 8)) as f32).collect(),
                (0..n).map(|_| (next() % (mask + 1)) as f32).collect(),
                (0..rows).map(|_| (next() % 33) as f32 / 8.0 - 2.0).collect(),
                (0..batch * cols).map(|_| (next() % 9) as f32 - 4.0).collect(),
            )
        } else {
            (
                (0..n).map(|_| 0.01 + unit(next()).abs() * 0.1).collect(),
                (0..n).map(|_| (next() % (mask + 1)) as f32 + unit(next()) * 0.5).collect(),
                (0..rows).map(|_| unit(next())).collect(),
                (0..batch * cols).map(|_| unit(next())).collect(),
            )
        };
        (packed, codes, scale, zero, bias, x)
    }

    /// The f64 reference on unpacked codes, with the per-output error bound.
    #[allow(clippy::too_many_arguments)] // the layer's parts, as `qgemm` takes them
    fn reference(
        codes: &[u8],
        rows: usize,
        cols: usize,
        scale: &[f32],
        zero: &[f32],
        bias: &[f32],
        x: &[f32],
        batch: usize,
    ) -> (Vec<f64>, Vec<f64>) {
        let (mut want, mut bound) = (vec![0f64; batch * rows], vec![0f64; batch * rows]);
        for r in 0..rows {
            let (s, z) = (scale[r.min(scale.len() - 1)], zero[r.min(zero.len() - 1)]);
            for b in 0..batch {
                let (mut y, mut abs_qx, mut abs_x) = (f64::from(bias[r]), 0f64, 0f64);
                for c in 0..cols {
                    let (q, xv) = (f64::from(codes[r * cols + c]), f64::from(x[b * cols + c]));
                    y += f64::from(s) * (q - f64::from(z)) * xv;
                    abs_qx += (q * xv).abs();
                    abs_x += xv.abs();
                }
                want[b * rows + r] = y;
                bound[b * rows + r] = qgemm_error_bound(cols, s, bias[r], abs_qx, f64::from(z).abs() * abs_x, y);
            }
        }
        (want, bound)
    }

    /// Index of the first output outside its bound.
    fn first_outside(got: &[f32], want: &[f64], bound: &[f64]) -> Option<usize> {
        (0..got.len()).find(|&i| (f64::from(got[i]) - want[i]).abs() > bound[i])
    }

    /// The kernel's own row loop combined like `qgemm`, and the full `qgemm_with` call
    /// (which at batch 1 may take the table path instead).
    fn outputs(kernel: Kernel, m: &QMatrix, bias: &[f32], x: &[f32], batch: usize) -> Vec<Vec<f32>> {
        let (rows, cols) = (m.rows, m.cols);
        let mut dots = vec![0f32; batch * rows];
        block_dots(kernel, m, 0, rows, x, batch, &mut dots);
        let x_sums: Vec<f64> = x.chunks_exact(cols).map(|v| v.iter().map(|&a| f64::from(a)).sum()).collect();
        let mut got = vec![0f32; batch * rows];
        for r in 0..rows {
            let (s, z) = m.scale_zero(r);
            for b in 0..batch {
                got[b * rows + r] = (f64::from(s) * (f64::from(dots[r * batch + b]) - f64::from(z) * x_sums[b])
                    + f64::from(bias[r])) as f32;
            }
        }
        let mut full = vec![0f32; batch * rows];
        qgemm_with(kernel, m, Some(bias), x, batch, &mut full).unwrap();
        vec![got, full]
    }

    fn check(kernel: Kernel, bits: u32, rows: usize, cols: usize, batch: usize, per_row: bool, seed: u64) {
        let what = format!("{kernel:?} bits {bits} {rows}x{cols} batch {batch}");
        // Exactly representable inputs: every kernel gives the reference's bits.
        let (packed, _, scale, zero, bias, x) = case(bits, rows, cols, batch, per_row, seed, true);
        let m = QMatrix::new(&packed, rows, cols, bits, &scale, &zero).unwrap();
        let mut exact = vec![0f32; batch * rows];
        qgemm_ref(&m, Some(&bias), &x, batch, &mut exact).unwrap();
        for got in outputs(kernel, &m, &bias, &x, batch) {
            assert_eq!(got, exact, "{what}: not bit-exact on exactly representable inputs");
        }
        // Any inputs: within the derived bound.
        let (packed, codes, scale, zero, bias, x) = case(bits, rows, cols, batch, per_row, seed, false);
        let m = QMatrix::new(&packed, rows, cols, bits, &scale, &zero).unwrap();
        let (want, bound) = reference(&codes, rows, cols, &scale, &zero, &bias, &x, batch);
        for got in outputs(kernel, &m, &bias, &x, batch) {
            if let Some(i) = first_outside(&got, &want, &bound) {
                panic!("{what} at {i}: {} vs {} (bound {})", got[i], want[i], bound[i]);
            }
        }
    }

    #[test]
    fn registry_lists_the_selected_kernel_and_names_round_trip() {
        let avail = Kernel::available();
        eprintln!("kernels compiled {:?}, available {avail:?}, selected {:?}", Kernel::COMPILED, Kernel::selected());
        assert_eq!(avail[0], Kernel::Portable);
        assert!(avail.contains(&Kernel::selected()));
        for &k in Kernel::COMPILED {
            assert_eq!(Kernel::parse(k.name()), Some(k));
        }
        assert_eq!(Kernel::parse("sse9"), None);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(Kernel::Avx2.is_available(), is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
    }

    #[test]
    fn every_kernel_matches_reference_on_edge_shapes() {
        for &kernel in Kernel::available() {
            for bits in 1..=8 {
                for &(rows, cols) in &[(1, 1), (3, 7), (5, 63), (4, 64), (7, 65), (2, 180), (9, 257), (33, 520)] {
                    for &batch in &[1, 2, 5] {
                        check(kernel, bits, rows, cols, batch, bits % 2 == 0, rows as u64 * 31 + cols as u64);
                    }
                }
            }
        }
    }

    #[test]
    fn one_wrong_code_fails_the_comparison() {
        // The bound is tighter than one code step at the column where |x| is largest:
        // a kernel that decoded one code wrong (by one) would fail `check`.
        for &kernel in Kernel::available() {
            for &(bits, rows, cols, batch) in
                &[(8, 33, 520, 1), (8, 33, 520, 3), (4, 33, 520, 1), (3, 7, 65, 2), (2, 9, 257, 1), (1, 2, 180, 5)]
            {
                for exact in [false, true] {
                    let (packed, mut codes, scale, zero, bias, x) = case(bits, rows, cols, batch, true, 99, exact);
                    let m = QMatrix::new(&packed, rows, cols, bits, &scale, &zero).unwrap();
                    let got = outputs(kernel, &m, &bias, &x, batch);
                    let (want, bound) = reference(&codes, rows, cols, &scale, &zero, &bias, &x, batch);
                    assert_eq!(first_outside(&got[1], &want, &bound), None);
                    let c = (0..cols).max_by(|&a, &b| x[a].abs().total_cmp(&x[b].abs())).unwrap();
                    let r = rows / 2;
                    let q = &mut codes[r * cols + c];
                    *q = if u32::from(*q) == (1 << bits) - 1 { *q - 1 } else { *q + 1 };
                    let (want, bound) = reference(&codes, rows, cols, &scale, &zero, &bias, &x, batch);
                    for g in &got {
                        assert_eq!(
                            first_outside(g, &want, &bound),
                            Some(r),
                            "{kernel:?} bits {bits} {rows}x{cols}: a wrong code at ({r}, {c}) passed"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn bound_is_far_below_one_code_step_at_33x520_8bit() {
        // The figure the issue asks about: bound vs the smallest code step s * max|x|.
        let (_, codes, scale, zero, bias, x) = case(8, 33, 520, 1, true, 5, false);
        let (_, bound) = reference(&codes, 33, 520, &scale, &zero, &bias, &x, 1);
        let xmax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
        for r in 0..33 {
            let step = f64::from(scale[r]) * f64::from(xmax);
            assert!(bound[r] < 0.5 * step, "row {r}: bound {} vs step {step}", bound[r]);
        }
    }

    #[test]
    fn large_layers_and_batches_match_reference() {
        // Big enough for the parallel path (> PAR_MIN_WORK) at batch 1, for both batch-1
        // kernels, and for more than one batch pass. Batch 1 at 1 and 2 bits takes the
        // AVX-512 table kernel: several 64-byte blocks, a 4-byte remainder, a tail and a
        // partial block of 16 rows.
        for &k in Kernel::available() {
            check(k, 4, 2100, 2050, 1, true, 7);
            check(k, 1, 2100, 2050, 1, false, 12);
            check(k, 5, 300, 1030, 16, true, 13);
            check(k, 1, 37, 1100, 1, true, 10);
            check(k, 2, 70, 1043, 1, false, 11);
            check(k, 1, 256, 1024, 3, false, 8);
            check(k, 3, 70, 200, 130, true, 9);
        }
    }

    #[test]
    fn rejects_mismatched_shapes() {
        let packed = vec![0u8; 6];
        assert!(QMatrix::new(&packed, 2, 6, 4, &[1.0], &[0.0]).is_ok());
        assert!(QMatrix::new(&packed, 2, 7, 4, &[1.0], &[0.0]).is_err());
        assert!(QMatrix::new(&packed, 2, 6, 9, &[1.0], &[0.0]).is_err());
        assert!(QMatrix::new(&packed, 2, 6, 4, &[1.0; 3], &[0.0]).is_err());
        let m = QMatrix::new(&packed, 2, 6, 4, &[1.0], &[0.0]).unwrap();
        let mut y = [0f32; 2];
        assert!(qgemm(&m, None, &[0.0; 5], 1, &mut y).is_err());
        assert!(qgemm(&m, Some(&[0.0]), &[0.0; 6], 1, &mut y).is_err());
        assert!(qgemm(&m, None, &[1.0; 6], 1, &mut y).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn qgemm_matches_reference(
            bits in 1u32..=8, rows in 1usize..40, cols in 1usize..300,
            batch in 1usize..9, per_row in any::<bool>(), seed in any::<u64>()
        ) {
            for &kernel in Kernel::available() {
                check(kernel, bits, rows, cols, batch, per_row, seed);
            }
        }
    }
}
