//! Packing unsigned codes of 1 to 8 bits into bytes.
//!
//! Layout (the `.laq` format relies on it): code `i` of a stream occupies bits
//! `i*bits .. (i+1)*bits` of the stream, counted LSB-first within each byte, so a code
//! may straddle a byte boundary (3, 5, 6, 7 bits). A 2-D matrix is packed row by row
//! and every row starts on a byte boundary: `row_bytes = ceil(cols * bits / 8)`, and the
//! unused high bits of a row's last byte are zero.
//!
//! Every fast path works on groups of 8 codes, which occupy exactly `bits` bytes, so a
//! group is one 64-bit word; `pack_ref`/`unpack_ref` are the bit-by-bit definition the
//! fast paths are tested against.

use std::fmt;

/// Largest supported code width.
pub const MAX_BITS: u32 = 8;

/// A bad argument to a packing function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackError {
    /// `bits` is not in 1..=8.
    Bits(u32),
    /// `codes[index]` does not fit in `bits` bits.
    CodeTooLarge { index: usize, code: u8, bits: u32 },
    /// A buffer has the wrong length.
    Length { what: &'static str, expected: usize, actual: usize },
    /// A size computation overflows `usize`.
    Overflow,
    /// The kernel asked for cannot run on this CPU.
    Kernel(&'static str),
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackError::Bits(b) => write!(f, "bits must be in 1..8, got {b}"),
            PackError::CodeTooLarge { index, code, bits } => {
                write!(f, "code {code} at index {index} does not fit in {bits} bits (max {})", (1u32 << bits) - 1)
            }
            PackError::Length { what, expected, actual } => {
                write!(f, "{what} has length {actual}, expected {expected}")
            }
            PackError::Overflow => write!(f, "size overflows the address space"),
            PackError::Kernel(k) => write!(f, "kernel {k} is not supported by this CPU"),
        }
    }
}

impl std::error::Error for PackError {}

/// Checks that `bits` is a supported width.
pub fn check_bits(bits: u32) -> Result<(), PackError> {
    if (1..=MAX_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(PackError::Bits(bits))
    }
}

/// Bytes taken by `count` codes of `bits` bits: `ceil(count * bits / 8)`.
pub fn packed_len(count: usize, bits: u32) -> Result<usize, PackError> {
    check_bits(bits)?;
    count.checked_mul(bits as usize).map(|b| b.div_ceil(8)).ok_or(PackError::Overflow)
}

fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<(), PackError> {
    if expected == actual {
        Ok(())
    } else {
        Err(PackError::Length { what, expected, actual })
    }
}

// ---------------------------------------------------------------------------------
// Reference implementations: the definition of the layout, one bit at a time.
// ---------------------------------------------------------------------------------

/// Reference packer. `out.len()` must be `packed_len(codes.len(), bits)`.
pub fn pack_ref(codes: &[u8], bits: u32, out: &mut [u8]) -> Result<(), PackError> {
    check_len("packed output", packed_len(codes.len(), bits)?, out.len())?;
    out.fill(0);
    for (i, &code) in codes.iter().enumerate() {
        if u32::from(code) >> bits != 0 {
            return Err(PackError::CodeTooLarge { index: i, code, bits });
        }
        for k in 0..bits as usize {
            let pos = i * bits as usize + k;
            out[pos / 8] |= ((code >> k) & 1) << (pos % 8);
        }
    }
    Ok(())
}

/// Reference unpacker. `packed.len()` must be `packed_len(out.len(), bits)`.
pub fn unpack_ref(packed: &[u8], bits: u32, out: &mut [u8]) -> Result<(), PackError> {
    check_len("packed input", packed_len(out.len(), bits)?, packed.len())?;
    for (i, code) in out.iter_mut().enumerate() {
        let mut c = 0u8;
        for k in 0..bits as usize {
            let pos = i * bits as usize + k;
            c |= ((packed[pos / 8] >> (pos % 8)) & 1) << k;
        }
        *code = c;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// Fast paths: 8 codes (one u64 of bytes) <-> `B` bytes (the low `8*B` bits of a u64).
// ---------------------------------------------------------------------------------

/// Every byte of a u64 set to `(1 << B) - 1`.
const fn lane_mask<const B: u32>() -> u64 {
    0x0101_0101_0101_0101u64 * ((1u64 << B) - 1)
}

/// Squeezes 8 byte-lanes (each `< 2^B`) into the low `8*B` bits.
#[inline(always)]
fn squeeze<const B: u32>(w: u64) -> u64 {
    match B {
        8 => w,
        4 => {
            // Pairs of nibbles, then pairs of bytes, then pairs of u16.
            let w = (w | (w >> 4)) & 0x00FF_00FF_00FF_00FF;
            let w = (w | (w >> 8)) & 0x0000_FFFF_0000_FFFF;
            (w | (w >> 16)) & 0x0000_0000_FFFF_FFFF
        }
        2 => {
            let w = (w | (w >> 6)) & 0x000F_000F_000F_000F;
            let w = (w | (w >> 12)) & 0x0000_00FF_0000_00FF;
            (w | (w >> 24)) & 0xFFFF
        }
        1 => {
            // Gather the low bit of each byte into the top byte with one multiply.
            ((w & 0x0101_0101_0101_0101).wrapping_mul(0x0102_0408_1020_4080)) >> 56
        }
        _ => {
            let mut r = 0u64;
            let mut i = 0;
            while i < 8 {
                r |= ((w >> (8 * i)) & 0xFF) << (i * B);
                i += 1;
            }
            r
        }
    }
}

/// Spreads the low `8*B` bits into 8 byte-lanes (inverse of `squeeze`).
#[inline(always)]
pub(crate) fn spread<const B: u32>(w: u64) -> u64 {
    match B {
        8 => w,
        4 => {
            let w = w & 0xFFFF_FFFF;
            let w = (w | (w << 16)) & 0x0000_FFFF_0000_FFFF;
            let w = (w | (w << 8)) & 0x00FF_00FF_00FF_00FF;
            (w | (w << 4)) & 0x0F0F_0F0F_0F0F_0F0F
        }
        2 => {
            let w = w & 0xFFFF;
            let w = (w | (w << 24)) & 0x0000_00FF_0000_00FF;
            let w = (w | (w << 12)) & 0x000F_000F_000F_000F;
            (w | (w << 6)) & 0x0303_0303_0303_0303
        }
        1 => {
            // Copy the byte into every lane, keep bit i in lane i, then normalise to 0/1.
            let b = (w & 0xFF).wrapping_mul(0x0101_0101_0101_0101) & 0x8040_2010_0804_0201;
            // A lane is non-zero iff its bit was set; (b + 0x7F..) sets each lane's top bit.
            ((b + 0x7F7F_7F7F_7F7F_7F7F) >> 7) & 0x0101_0101_0101_0101
        }
        _ => {
            let mut r = 0u64;
            let mut i = 0;
            while i < 8 {
                r |= ((w >> (i * B)) & ((1 << B) - 1)) << (8 * i);
                i += 1;
            }
            r
        }
    }
}

macro_rules! by_bits {
    ($bits:expr, $f:ident ( $($arg:expr),* )) => {
        match $bits {
            1 => $f::<1>($($arg),*),
            2 => $f::<2>($($arg),*),
            3 => $f::<3>($($arg),*),
            4 => $f::<4>($($arg),*),
            5 => $f::<5>($($arg),*),
            6 => $f::<6>($($arg),*),
            7 => $f::<7>($($arg),*),
            8 => $f::<8>($($arg),*),
            b => unreachable!("bits {b} checked before dispatch"),
        }
    };
}

#[inline(always)]
fn load_u64(bytes: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(a)
}

pub use crate::kernel::Kernel;

/// Packing kernels differ only for AVX-512 (opt-in cargo feature `avx512`); the portable
/// and AVX2 kernels both use the 64-bit word code.
#[inline(always)]
fn uses_simd(kernel: Kernel) -> bool {
    #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
    if kernel == Kernel::Avx512 {
        return true;
    }
    let _ = kernel;
    false
}

/// [`pack_stream_scalar`] with the bulk done by SIMD code where available.
#[inline(always)]
fn pack_stream<const B: u32>(kernel: Kernel, codes: &[u8], out: &mut [u8]) -> Result<(), PackError> {
    if B == 8 {
        // Every byte is a valid 8-bit code.
        out.copy_from_slice(codes);
        return Ok(());
    }
    #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
    if uses_simd(kernel) {
        let n64 = codes.len() / 64 * 64;
        let split = n64 / 8 * B as usize;
        let (oh, ot) = out.split_at_mut(split);
        // SAFETY: callers pass only available kernels: AVX-512 F/BW/VBMI were detected.
        let ok = unsafe { simd::pack(&codes[..n64], B, oh) };
        return if ok && pack_stream_scalar::<B>(&codes[n64..], ot).is_ok() {
            Ok(())
        } else {
            Err(first_too_large(codes, B))
        };
    }
    let _ = uses_simd(kernel);
    pack_stream_scalar::<B>(codes, out)
}

/// [`unpack_stream_scalar`] with the bulk done by SIMD code where available.
#[inline(always)]
fn unpack_stream<const B: u32>(kernel: Kernel, packed: &[u8], out: &mut [u8]) {
    if B == 8 {
        out.copy_from_slice(packed);
        return;
    }
    #[cfg(all(target_arch = "x86_64", feature = "avx512"))]
    if uses_simd(kernel) {
        let n64 = out.len() / 64 * 64;
        let split = n64 / 8 * B as usize;
        let (oh, ot) = out.split_at_mut(n64);
        // SAFETY: callers pass only available kernels: AVX-512 F/BW/VBMI were detected.
        unsafe { simd::unpack(&packed[..split], B, oh) };
        unpack_stream_scalar::<B>(&packed[split..], ot);
        return;
    }
    let _ = uses_simd(kernel);
    unpack_stream_scalar::<B>(packed, out)
}

/// Packs `codes` into `out` (`out.len() == packed_len(codes.len(), B)`), validating codes.
fn pack_stream_scalar<const B: u32>(codes: &[u8], out: &mut [u8]) -> Result<(), PackError> {
    let b = B as usize;
    let groups = codes.len() / 8;
    let mut overflow = 0u64;
    let (head, tail) = codes.split_at(groups * 8);
    let (out_head, out_tail) = out.split_at_mut(groups * b);
    for (src, dst) in head.chunks_exact(8).zip(out_head.chunks_exact_mut(b)) {
        let w = u64::from_le_bytes(src.try_into().unwrap());
        overflow |= w;
        dst.copy_from_slice(&squeeze::<B>(w).to_le_bytes()[..b]);
    }
    if !tail.is_empty() {
        let w = load_u64(tail);
        overflow |= w;
        let n = out_tail.len();
        out_tail.copy_from_slice(&squeeze::<B>(w).to_le_bytes()[..n]);
    }
    if overflow & !lane_mask::<B>() != 0 {
        return Err(first_too_large(codes, B));
    }
    Ok(())
}

#[cold]
fn first_too_large(codes: &[u8], bits: u32) -> PackError {
    let (index, &code) = codes
        .iter()
        .enumerate()
        .find(|(_, &c)| u32::from(c) >> bits != 0)
        .expect("called only when a code is too large");
    PackError::CodeTooLarge { index, code, bits }
}

/// Unpacks `out.len()` codes from `packed` without checking lengths or `bits`; the
/// caller guarantees `bits` in 1..=8 and `packed.len() == packed_len(out.len(), bits)`.
pub(crate) fn unpack_unchecked_portable(packed: &[u8], bits: u32, out: &mut [u8]) {
    by_bits!(bits, unpack_stream(Kernel::Portable, packed, out))
}

/// Unpacks `out.len()` codes from `packed` (`packed.len() == packed_len(out.len(), B)`).
#[inline(always)]
fn unpack_stream_scalar<const B: u32>(packed: &[u8], out: &mut [u8]) {
    let b = B as usize;
    let groups = out.len() / 8;
    let (out_head, out_tail) = out.split_at_mut(groups * 8);
    let (src_head, src_tail) = packed.split_at(groups * b);
    // While 8 bytes are readable from the group start, read a whole word and mask it.
    let wide = match packed.len() {
        _ if B == 8 => groups,
        n if n >= 8 => ((n - 8) / b + 1).min(groups),
        _ => 0,
    };
    let low = if B == 8 { u64::MAX } else { (1u64 << (8 * B)) - 1 };
    for (g, dst) in out_head.chunks_exact_mut(8).enumerate().take(wide) {
        let w = u64::from_le_bytes(packed[g * b..g * b + 8].try_into().unwrap()) & low;
        dst.copy_from_slice(&spread::<B>(w).to_le_bytes());
    }
    for (src, dst) in src_head.chunks_exact(b).zip(out_head.chunks_exact_mut(8)).skip(wide) {
        dst.copy_from_slice(&spread::<B>(load_u64(src)).to_le_bytes());
    }
    if !out_tail.is_empty() {
        let w = spread::<B>(load_u64(src_tail));
        let n = out_tail.len();
        out_tail.copy_from_slice(&w.to_le_bytes()[..n]);
        // The last byte may carry padding bits past the final code: they are ignored.
        if B != 8 {
            let lane = lane_mask::<B>().to_le_bytes()[0];
            out_tail.iter_mut().for_each(|c| *c &= lane);
        }
    }
}

/// Codes per parallel work item; a multiple of 8 so every chunk starts on a byte.
const PAR_CHUNK: usize = 1 << 20;

fn kernel_ok(kernel: Kernel) -> Result<(), PackError> {
    if kernel.is_available() {
        Ok(())
    } else {
        Err(PackError::Kernel(kernel.name()))
    }
}

/// Fast packer of one stream. `out.len()` must be `packed_len(codes.len(), bits)`.
pub fn pack(codes: &[u8], bits: u32, out: &mut [u8]) -> Result<(), PackError> {
    pack_with(Kernel::selected(), codes, bits, out)
}

/// [`pack`] with a given kernel (an error when this CPU cannot run it).
pub fn pack_with(kernel: Kernel, codes: &[u8], bits: u32, out: &mut [u8]) -> Result<(), PackError> {
    kernel_ok(kernel)?;
    check_len("packed output", packed_len(codes.len(), bits)?, out.len())?;
    if codes.len() <= PAR_CHUNK {
        return by_bits!(bits, pack_stream(kernel, codes, out));
    }
    use rayon::prelude::*;
    let out_chunk = PAR_CHUNK / 8 * bits as usize;
    codes
        .par_chunks(PAR_CHUNK)
        .zip(out.par_chunks_mut(out_chunk))
        .try_for_each(|(c, o)| by_bits!(bits, pack_stream(kernel, c, o)))
        .map_err(|_| first_too_large(codes, bits))
}

/// Fast unpacker of one stream. `packed.len()` must be `packed_len(out.len(), bits)`.
pub fn unpack(packed: &[u8], bits: u32, out: &mut [u8]) -> Result<(), PackError> {
    unpack_with(Kernel::selected(), packed, bits, out)
}

/// [`unpack`] with a given kernel (an error when this CPU cannot run it).
pub fn unpack_with(kernel: Kernel, packed: &[u8], bits: u32, out: &mut [u8]) -> Result<(), PackError> {
    kernel_ok(kernel)?;
    check_len("packed input", packed_len(out.len(), bits)?, packed.len())?;
    if out.len() <= PAR_CHUNK {
        by_bits!(bits, unpack_stream(kernel, packed, out));
        return Ok(());
    }
    use rayon::prelude::*;
    let in_chunk = PAR_CHUNK / 8 * bits as usize;
    out.par_chunks_mut(PAR_CHUNK)
        .zip(packed.par_chunks(in_chunk))
        .for_each(|(o, p)| by_bits!(bits, unpack_stream(kernel, p, o)));
    Ok(())
}

/// Packs a row-major `rows x cols` matrix; each row is byte-aligned.
/// `out.len()` must be `rows * packed_len(cols, bits)`.
pub fn pack_rows(codes: &[u8], rows: usize, cols: usize, bits: u32, out: &mut [u8]) -> Result<(), PackError> {
    pack_rows_with(Kernel::selected(), codes, rows, cols, bits, out)
}

/// [`pack_rows`] with a given kernel (an error when this CPU cannot run it).
pub fn pack_rows_with(
    kernel: Kernel,
    codes: &[u8],
    rows: usize,
    cols: usize,
    bits: u32,
    out: &mut [u8],
) -> Result<(), PackError> {
    kernel_ok(kernel)?;
    let row_bytes = packed_len(cols, bits)?;
    check_len("codes", rows.checked_mul(cols).ok_or(PackError::Overflow)?, codes.len())?;
    check_len("packed output", rows.checked_mul(row_bytes).ok_or(PackError::Overflow)?, out.len())?;
    if (cols * bits as usize).is_multiple_of(8) {
        // Rows end on byte boundaries: the matrix is one stream.
        return pack_with(kernel, codes, bits, out);
    }
    if row_bytes == 0 {
        return Ok(());
    }
    for (r, (src, dst)) in codes.chunks_exact(cols).zip(out.chunks_exact_mut(row_bytes)).enumerate() {
        by_bits!(bits, pack_stream(kernel, src, dst)).map_err(|e| match e {
            PackError::CodeTooLarge { index, code, bits } => {
                PackError::CodeTooLarge { index: r * cols + index, code, bits }
            }
            e => e,
        })?;
    }
    Ok(())
}

/// Unpacks a row-major matrix of byte-aligned rows into `rows x cols` codes.
pub fn unpack_rows(packed: &[u8], rows: usize, cols: usize, bits: u32, out: &mut [u8]) -> Result<(), PackError> {
    unpack_rows_with(Kernel::selected(), packed, rows, cols, bits, out)
}

/// [`unpack_rows`] with a given kernel (an error when this CPU cannot run it).
pub fn unpack_rows_with(
    kernel: Kernel,
    packed: &[u8],
    rows: usize,
    cols: usize,
    bits: u32,
    out: &mut [u8],
) -> Result<(), PackError> {
    kernel_ok(kernel)?;
    let row_bytes = packed_len(cols, bits)?;
    check_len("packed input", rows.checked_mul(row_bytes).ok_or(PackError::Overflow)?, packed.len())?;
    check_len("codes output", rows.checked_mul(cols).ok_or(PackError::Overflow)?, out.len())?;
    if (cols * bits as usize).is_multiple_of(8) {
        return unpack_with(kernel, packed, bits, out);
    }
    if cols == 0 {
        return Ok(());
    }
    for (src, dst) in packed.chunks_exact(row_bytes).zip(out.chunks_exact_mut(cols)) {
        by_bits!(bits, unpack_stream(kernel, src, dst));
    }
    Ok(())
}

/// Reference version of [`pack_rows`].
pub fn pack_rows_ref(codes: &[u8], rows: usize, cols: usize, bits: u32, out: &mut [u8]) -> Result<(), PackError> {
    let row_bytes = packed_len(cols, bits)?;
    check_len("codes", rows.checked_mul(cols).ok_or(PackError::Overflow)?, codes.len())?;
    check_len("packed output", rows.checked_mul(row_bytes).ok_or(PackError::Overflow)?, out.len())?;
    for r in 0..rows {
        pack_ref(&codes[r * cols..(r + 1) * cols], bits, &mut out[r * row_bytes..(r + 1) * row_bytes]).map_err(
            |e| match e {
                PackError::CodeTooLarge { index, code, bits } => {
                    PackError::CodeTooLarge { index: r * cols + index, code, bits }
                }
                e => e,
            },
        )?;
    }
    Ok(())
}

/// Reference version of [`unpack_rows`].
pub fn unpack_rows_ref(packed: &[u8], rows: usize, cols: usize, bits: u32, out: &mut [u8]) -> Result<(), PackError> {
    let row_bytes = packed_len(cols, bits)?;
    check_len("packed input", rows.checked_mul(row_bytes).ok_or(PackError::Overflow)?, packed.len())?;
    check_len("codes output", rows.checked_mul(cols).ok_or(PackError::Overflow)?, out.len())?;
    for r in 0..rows {
        unpack_ref(&packed[r * row_bytes..(r + 1) * row_bytes], bits, &mut out[r * cols..(r + 1) * cols])?;
    }
    Ok(())
}

/// True when the padding bits after the last code of every row are zero (the canonical
/// form `pack_rows` writes; the `.laq` reader insists on it).
pub fn row_padding_is_zero(packed: &[u8], rows: usize, cols: usize, bits: u32) -> Result<bool, PackError> {
    let row_bytes = packed_len(cols, bits)?;
    check_len("packed input", rows.checked_mul(row_bytes).ok_or(PackError::Overflow)?, packed.len())?;
    let used = (cols * bits as usize) % 8;
    if used == 0 || row_bytes == 0 {
        return Ok(true);
    }
    let pad_mask = !((1u8 << used) - 1);
    Ok(packed.chunks_exact(row_bytes).all(|row| row[row_bytes - 1] & pad_mask == 0))
}

/// Mask with the low `n` bits set (`n <= 64`): the lane mask of the AVX-512 tails here and in `gemv`.
#[cfg(all(target_arch = "x86_64", feature = "avx512"))]
#[inline(always)]
pub(crate) fn low_mask(n: usize) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// AVX-512 bodies: 64 codes (8 * bits bytes) per step.
#[cfg(all(target_arch = "x86_64", feature = "avx512"))]
mod simd {
    use super::low_mask;
    use std::arch::x86_64::*;

    /// Unpacks `out.len()` (a multiple of 64) codes; `packed.len() == out.len() / 8 * bits`.
    ///
    /// # Safety
    /// The CPU must support AVX-512 F/BW/VBMI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub unsafe fn unpack(packed: &[u8], bits: u32, out: &mut [u8]) {
        let b = bits as usize;
        debug_assert_eq!(out.len() % 64, 0);
        debug_assert_eq!(packed.len(), out.len() / 8 * b);
        let (perm, ctrl) = consts(b);
        let mask = _mm512_set1_epi8(((1u16 << bits) - 1) as u8 as i8);
        let in_mask = low_mask(8 * b);
        for j in 0..out.len() / 64 {
            // SAFETY: group j reads bytes 8*b*j .. 8*b*(j+1) <= packed.len() (masked load)
            // and writes out[64*j .. 64*(j+1)].
            let src = _mm512_maskz_loadu_epi8(in_mask, packed.as_ptr().add(8 * b * j).cast());
            let codes = _mm512_and_si512(_mm512_multishift_epi64_epi8(ctrl, _mm512_permutexvar_epi8(perm, src)), mask);
            _mm512_storeu_si512(out.as_mut_ptr().add(64 * j).cast(), codes);
        }
    }

    /// Packs `codes.len()` (a multiple of 64) codes into `out`; false if a code does not
    /// fit in `bits` (then `out` holds garbage).
    ///
    /// # Safety
    /// The CPU must support AVX-512 F/BW/VBMI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub unsafe fn pack(codes: &[u8], bits: u32, out: &mut [u8]) -> bool {
        let b = bits as usize;
        debug_assert_eq!(codes.len() % 64, 0);
        debug_assert_eq!(out.len(), codes.len() / 8 * b);
        let too_big = _mm512_set1_epi8(!(((1u16 << bits) - 1) as u8) as i8);
        // idx[g*b + k] = 8g + k: the low b bytes of each qword, contiguous.
        let mut idx = [0u8; 64];
        for g in 0..8 {
            for k in 0..b {
                idx[g * b + k] = (8 * g + k) as u8;
            }
        }
        let idx = _mm512_loadu_si512(idx.as_ptr().cast());
        let (s1, s2, s4) =
            (_mm_cvtsi32_si128(b as i32), _mm_cvtsi32_si128(2 * b as i32), _mm_cvtsi32_si128(4 * b as i32));
        let lo8 = _mm512_set1_epi16(0x00FF);
        let lo16 = _mm512_set1_epi32(0xFFFF);
        let lo32 = _mm512_set1_epi64(0xFFFF_FFFF);
        let out_mask = low_mask(8 * b);
        let mut bad = 0u64;
        for j in 0..codes.len() / 64 {
            // SAFETY: reads codes[64*j .. 64*(j+1)], writes 8*b bytes at 8*b*j (masked).
            let v = _mm512_loadu_si512(codes.as_ptr().add(64 * j).cast());
            bad |= _mm512_test_epi8_mask(v, too_big);
            // Merge neighbours: byte pairs -> 2b bits per u16, u16 pairs -> 4b bits per
            // u32, u32 pairs -> 8b bits per u64.
            let p16 = _mm512_or_si512(_mm512_and_si512(v, lo8), _mm512_sll_epi16(_mm512_srli_epi16::<8>(v), s1));
            let p32 = _mm512_or_si512(_mm512_and_si512(p16, lo16), _mm512_sll_epi32(_mm512_srli_epi32::<16>(p16), s2));
            let p64 = _mm512_or_si512(_mm512_and_si512(p32, lo32), _mm512_sll_epi64(_mm512_srli_epi64::<32>(p32), s4));
            let packed = _mm512_permutexvar_epi8(idx, p64);
            _mm512_mask_storeu_epi8(out.as_mut_ptr().add(8 * b * j).cast(), out_mask, packed);
        }
        bad == 0
    }

    /// The byte permutation putting group g's bytes (from g*b) in qword g, and the
    /// multishift control picking code k of a qword at bit k*b.
    #[inline(always)]
    unsafe fn consts(b: usize) -> (__m512i, __m512i) {
        let mut perm = [0u8; 64];
        let mut ctrl = [0u8; 64];
        for g in 0..8 {
            for k in 0..8 {
                perm[g * 8 + k] = (g * b + k) as u8;
                ctrl[g * 8 + k] = (k * b) as u8;
            }
        }
        (_mm512_loadu_si512(perm.as_ptr().cast()), _mm512_loadu_si512(ctrl.as_ptr().cast()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lsb_first_layout() {
        let mut out = [0u8; 2];
        pack(&[1, 2, 3, 0, 3, 1], 2, &mut out).unwrap();
        // codes 1,2,3,0 -> 0b00_11_10_01; codes 3,1 -> 0b0000_01_11
        assert_eq!(out, [0b0011_1001, 0b0000_0111]);
        let mut out = [0u8; 2];
        pack(&[5, 7, 4], 3, &mut out).unwrap();
        // LSB-first bits: 101 111 001 -> the third code straddles into byte 1.
        assert_eq!(out, [0b0011_1101, 0b0000_0001]);
    }

    #[test]
    fn rejects_bad_bits_and_codes() {
        assert_eq!(packed_len(3, 0), Err(PackError::Bits(0)));
        assert_eq!(packed_len(3, 9), Err(PackError::Bits(9)));
        let mut out = [0u8; 2];
        assert_eq!(pack(&[1, 2, 4, 0], 2, &mut out[..1]), Err(PackError::CodeTooLarge { index: 2, code: 4, bits: 2 }));
        let codes = vec![0u8; 40];
        let mut bad = codes.clone();
        bad[33] = 16;
        let mut out = vec![0u8; 20];
        assert_eq!(pack_rows(&bad, 4, 10, 4, &mut out), Err(PackError::CodeTooLarge { index: 33, code: 16, bits: 4 }));
        assert!(matches!(pack(&codes, 4, &mut out[..3]), Err(PackError::Length { .. })));
    }

    #[test]
    fn large_streams_take_the_parallel_path() {
        for &kernel in Kernel::available() {
            for bits in 1..=8u32 {
                let n = PAR_CHUNK * 2 + 13;
                let codes: Vec<u8> =
                    (0..n).map(|i| ((i * 2654435761usize) >> 7) as u8 & ((1u16 << bits) - 1) as u8).collect();
                let len = packed_len(n, bits).unwrap();
                let (mut a, mut b) = (vec![0u8; len], vec![0u8; len]);
                pack_with(kernel, &codes, bits, &mut a).unwrap();
                pack_ref(&codes, bits, &mut b).unwrap();
                assert_eq!(a, b, "{kernel:?} bits {bits}");
                let mut back = vec![0u8; n];
                unpack_with(kernel, &a, bits, &mut back).unwrap();
                assert_eq!(back, codes, "{kernel:?} bits {bits}");
                let mut bad = codes.clone();
                if bits < 8 {
                    bad[PAR_CHUNK + 5] = 1 << bits;
                    assert_eq!(
                        pack_with(kernel, &bad, bits, &mut a),
                        Err(PackError::CodeTooLarge { index: PAR_CHUNK + 5, code: 1 << bits, bits })
                    );
                }
            }
        }
    }

    fn codes_strategy() -> impl Strategy<Value = (u32, Vec<u8>)> {
        (1u32..=8).prop_flat_map(|bits| (Just(bits), prop::collection::vec(0u8..=((1u16 << bits) - 1) as u8, 0..600)))
    }

    /// Every implementation this CPU can run (the registry).
    fn isas() -> &'static [Kernel] {
        Kernel::available()
    }

    fn pack_one(kernel: Kernel, codes: &[u8], bits: u32, out: &mut [u8]) -> Result<(), PackError> {
        by_bits!(bits, pack_stream(kernel, codes, out))
    }

    fn unpack_one(kernel: Kernel, packed: &[u8], bits: u32, out: &mut [u8]) {
        by_bits!(bits, unpack_stream(kernel, packed, out))
    }

    #[test]
    fn every_implementation_reports_the_first_bad_code() {
        for &isa in isas() {
            for bits in 1..8u32 {
                for at in [0usize, 5, 63, 64, 130, 199] {
                    let mut codes = vec![0u8; 200];
                    codes[199] = 255; // a later bad code must not be the one reported
                    codes[at] = 1 << bits;
                    let mut out = vec![0u8; packed_len(200, bits).unwrap()];
                    assert_eq!(
                        pack_one(isa, &codes, bits, &mut out),
                        Err(PackError::CodeTooLarge { index: at, code: 1 << bits, bits }),
                        "{isa:?} bits {bits} at {at}"
                    );
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn fast_pack_matches_reference((bits, codes) in codes_strategy()) {
            let len = packed_len(codes.len(), bits).unwrap();
            let mut slow = vec![0u8; len];
            pack_ref(&codes, bits, &mut slow).unwrap();
            let mut b = vec![0u8; codes.len()];
            unpack_ref(&slow, bits, &mut b).unwrap();
            prop_assert_eq!(&b, &codes);
            for &isa in isas() {
                let mut fast = vec![0xAAu8; len];
                pack_one(isa, &codes, bits, &mut fast).unwrap();
                prop_assert_eq!(&fast, &slow, "{:?}", isa);
                let mut a = vec![0x55u8; codes.len()];
                unpack_one(isa, &fast, bits, &mut a);
                prop_assert_eq!(&a, &codes, "{:?}", isa);
            }
        }

        #[test]
        fn fast_unpack_matches_reference_on_any_bytes(
            bits in 1u32..=8, count in 0usize..400, seed in any::<u64>()
        ) {
            // Arbitrary bytes, including non-zero padding bits, decode identically.
            let len = packed_len(count, bits).unwrap();
            let bytes: Vec<u8> = (0..len).map(|i| (seed.rotate_left(i as u32 * 7) ^ (i as u64).wrapping_mul(seed)) as u8).collect();
            let mut b = vec![0u8; count];
            unpack_ref(&bytes, bits, &mut b).unwrap();
            for &isa in isas() {
                let mut a = vec![0u8; count];
                unpack_one(isa, &bytes, bits, &mut a);
                prop_assert_eq!(&a, &b, "{:?}", isa);
            }
        }

        #[test]
        fn rows_match_reference(bits in 1u32..=8, rows in 0usize..6, cols in 0usize..70, seed in any::<u64>()) {
            let mask = ((1u16 << bits) - 1) as u8;
            let codes: Vec<u8> = (0..rows * cols).map(|i| (seed.rotate_left(i as u32) as u8 ^ i as u8) & mask).collect();
            let len = rows * packed_len(cols, bits).unwrap();
            let mut slow = vec![0u8; len];
            pack_rows_ref(&codes, rows, cols, bits, &mut slow).unwrap();
            let mut b = vec![0u8; rows * cols];
            unpack_rows_ref(&slow, rows, cols, bits, &mut b).unwrap();
            prop_assert_eq!(&b, &codes);
            for &kernel in Kernel::available() {
                let mut fast = vec![0x55u8; len];
                pack_rows_with(kernel, &codes, rows, cols, bits, &mut fast).unwrap();
                prop_assert_eq!(&fast, &slow, "{:?}", kernel);
                prop_assert!(row_padding_is_zero(&fast, rows, cols, bits).unwrap());
                let mut a = vec![0u8; rows * cols];
                unpack_rows_with(kernel, &fast, rows, cols, bits, &mut a).unwrap();
                prop_assert_eq!(&a, &codes, "{:?}", kernel);
            }
        }
    }
}
