//! The bounds every number that sizes memory or time is checked against, before use.

/// Lowest input sample rate a file or waveform may have, in Hz.
pub const MIN_INPUT_RATE: u32 = 1_000;
/// Highest input sample rate a file or waveform may have, in Hz.
pub const MAX_INPUT_RATE: u32 = 384_000;
/// Lowest target (model) rate the resampler produces, in Hz.
pub const MIN_TARGET_RATE: u32 = 1_000;
/// Highest target rate the resampler produces, in Hz (the input bound: resampling may go up).
pub const MAX_TARGET_RATE: u32 = 384_000;
/// Most channels a file or waveform may have (downmixed to mono).
pub const MAX_CHANNELS: usize = 64;
/// Most frames one packet may hold, as a header states it: a decoder's buffer is sized from
/// it. Real codecs stay far below (FLAC's largest block is 65,535 frames; an IMA ADPCM
/// WAV's largest, 131,063); a damaged CAF may claim billions.
pub const MAX_PACKET_FRAMES: u64 = 1 << 18;
/// Longest clip read whole ([`crate::audio::load`], [`crate::audio::prepare`]), in seconds.
/// Longer recordings go through [`crate::audio::AudioReader`] (segment mode).
pub const MAX_SECONDS: u64 = 3_600;
/// A clip whose peak is below this level (dBFS) holds no usable signal: under 4 LSB of
/// 16-bit PCM, i.e. only dither or quantization noise.
pub const SILENCE_PEAK_DBFS: f64 = -80.0;

/// The largest peak |sample| a clip may have. Float audio lies within about ±1, and an
/// integer recording stored as float without scaling reaches 2^31; a peak beyond 1e12 is
/// no recording but damaged data, and near 1e15 the features' power sums overflow `f32`.
pub const MAX_PEAK: f32 = 1e12;

/// [`SILENCE_PEAK_DBFS`] as a linear amplitude (`10^(-80/20)` = 1e-4).
pub fn silence_peak() -> f32 {
    10f64.powf(SILENCE_PEAK_DBFS / 20.0) as f32
}
