//! Orthonormal DCT-II matrix, as `torchaudio.functional.create_dct(n_mfcc, n_mels, "ortho")`
//! computes it (float32), stored `(n_mfcc, n_mels)` row-major.

pub fn dct_matrix(n_mfcc: usize, n_mels: usize) -> Vec<f32> {
    let scale_all = (2.0f64 / n_mels as f64).sqrt() as f32;
    let scale_0 = (1.0f64 / 2f64.sqrt()) as f32;
    let step = (std::f64::consts::PI / n_mels as f64) as f32;
    let mut d = vec![0f32; n_mfcc * n_mels];
    for k in 0..n_mfcc {
        for n in 0..n_mels {
            let mut v = (step * (n as f32 + 0.5) * k as f32).cos();
            if k == 0 {
                v *= scale_0;
            }
            d[k * n_mels + n] = v * scale_all;
        }
    }
    d
}
