//! The float32 dot product every feature stage uses (mel and chroma filterbanks, the
//! MFCC DCT in pooling), plain and AVX2-compiled, and the run-time choice between them.
//! Both give the same bits. The stages import this module; it imports none of them.

/// Whether the AVX2 kernels can run (cached by std after the first call).
#[inline(always)]
pub(crate) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`dot`], through [`dot_avx2`] when `avx2` (the caller checked [`has_avx2`]): the same
/// bits either way. LLVM packs [`dot`]'s 8 partial sums into 2-lane registers (measured:
/// the mel/chroma products were 2x slower than these 8-lane ones).
#[inline(always)]
pub(crate) fn dot_dispatch(a: &[f32], b: &[f32], avx2: bool) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if avx2 {
            // SAFETY: `avx2` is only true when the CPU has AVX2.
            return unsafe { dot_avx2(a, b) };
        }
    }
    let _ = avx2;
    dot(a, b)
}

/// [`dot`] with AVX2 intrinsics: accumulator `j` lane `i` is `dot`'s `acc[j][i]` (mul
/// then add, no FMA), then the same reduction order and the same scalar tail.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mul = |i: usize| _mm256_mul_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    // SAFETY (all loads): i + 32 <= n, then i + 8 <= n, within both slices
    while i + 32 <= n {
        for (j, v) in acc.iter_mut().enumerate() {
            *v = _mm256_add_ps(*v, mul(i + 8 * j));
        }
        i += 32;
    }
    while i + 8 <= n {
        acc[0] = _mm256_add_ps(acc[0], mul(i));
        i += 8;
    }
    let acc = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
    let q = _mm_add_ps(h, _mm_movehl_ps(h, h));
    let r = _mm_add_ss(q, _mm_movehdup_ps(q));
    let mut tail = 0f32;
    for (x, y) in a[i..n].iter().zip(&b[i..n]) {
        tail += x * y;
    }
    _mm_cvtss_f32(r) + tail
}

/// float32 dot product in 4 x 8 interleaved partial sums (4 independent chains: the add
/// latency does not bind), blocks of 32, then of 8 into the first, then a scalar tail.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = [[0f32; 8]; 4];
    let mut i = 0;
    while i + 32 <= n {
        for (j, lanes) in acc.iter_mut().enumerate() {
            for (l, v) in lanes.iter_mut().enumerate() {
                *v += a[i + 8 * j + l] * b[i + 8 * j + l];
            }
        }
        i += 32;
    }
    while i + 8 <= n {
        for (l, v) in acc[0].iter_mut().enumerate() {
            *v += a[i + l] * b[i + l];
        }
        i += 8;
    }
    let s: [f32; 8] = std::array::from_fn(|l| (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]));
    // the usual 256-bit reduction: halves, then quarters, then the last pair
    let h = [s[0] + s[4], s[1] + s[5], s[2] + s[6], s[3] + s[7]];
    let q = [h[0] + h[2], h[1] + h[3]];
    let mut tail = 0f32;
    for (x, y) in a[i..n].iter().zip(&b[i..n]) {
        tail += x * y;
    }
    (q[0] + q[1]) + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 kernel gives `dot`'s bits exactly.
    #[test]
    fn avx2_dot_equals_the_plain_one_bit_for_bit() {
        if !has_avx2() {
            eprintln!("no AVX2 here: nothing to compare");
            return;
        }
        let mut state = 7u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for n in [0usize, 1, 7, 8, 9, 15, 16, 17, 63, 64, 100, 1025] {
            let a: Vec<f32> = (0..n).map(|_| next()).collect();
            let b: Vec<f32> = (0..n).map(|_| next() * 1e3).collect();
            assert_eq!(dot(&a, &b).to_bits(), dot_dispatch(&a, &b, true).to_bits(), "n {n}");
        }
    }
}
