//! Opus (in OGG and in WebM/Matroska) for symphonia, which demuxes both but has no Opus
//! decoder: the packets go to `ropus`, a Rust port of libopus' fixed-point decoder that is
//! bit-exact against the C reference (no C to build, so the wheel and the ARM64 build stay
//! as they are). Its 16-bit samples become float as libopus' own fixed-point build gives
//! them (x / 2^15: within one step of a float build's output).
//!
//! Both containers hand over the Opus identification header (RFC 7845, section 5.1) as the
//! codec's extra data; it gives what the packets do not: the channel mapping, the output
//! gain and the pre-skip (the encoder's look-ahead, 312 samples from libopus, dropped at the
//! start as libopus-based readers drop it). Opus is always decoded at 48 kHz, whatever
//! input rate the header or the container records.

use std::panic::{catch_unwind, AssertUnwindSafe};
use symphonia::core::audio::{
    AsGenericAudioBufferRef, Audio, AudioBuffer, AudioMut, AudioSpec, Channels, GenericAudioBufferRef,
};
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions, FinalizeResult};
use symphonia::core::codecs::registry::{RegisterableAudioDecoder, SupportedAudioCodec};
use symphonia::core::codecs::CodecInfo;
use symphonia::core::errors::{decode_error, unsupported_error, Result};
use symphonia::core::packet::PacketRef;

/// The rate every Opus stream decodes to.
pub const OPUS_RATE: u32 = 48_000;

/// The longest Opus packet: 120 ms at 48 kHz, per channel (RFC 6716, section 3.2.5).
const MAX_PACKET_FRAMES: usize = 5760;

/// The fields of an Opus identification header ("OpusHead") that decoding needs.
#[derive(Debug, Clone, PartialEq)]
pub struct OpusHead {
    pub channels: usize,
    pub pre_skip: usize,
    /// The output gain as a linear factor (the header's Q7.8 dB).
    pub gain: f32,
    pub streams: usize,
    pub coupled: usize,
    /// Output channel -> decoded channel (255: silent), `channels` entries.
    pub mapping: Vec<u8>,
}

impl OpusHead {
    /// Reads and checks the header; the error says which field is wrong.
    pub fn parse(head: &[u8]) -> std::result::Result<OpusHead, String> {
        if head.len() < 19 || &head[..8] != b"OpusHead" {
            return Err("the codec's header is not an Opus identification header".into());
        }
        // the major version (high nibble) is 0 for every version a decoder of RFC 7845 reads
        if head[8] >> 4 != 0 {
            return Err(format!("Opus header version {} is not supported", head[8]));
        }
        let channels = usize::from(head[9]);
        if channels == 0 {
            return Err("the Opus header gives 0 channels".into());
        }
        let pre_skip = usize::from(u16::from_le_bytes([head[10], head[11]]));
        let gain_q8 = i16::from_le_bytes([head[16], head[17]]);
        let gain = 10f32.powf(f32::from(gain_q8) / 256.0 / 20.0);
        let (streams, coupled, mapping) = match head[18] {
            0 if channels <= 2 => (1, channels - 1, (0..channels as u8).collect()),
            0 => return Err(format!("the Opus header gives {channels} channels with mapping family 0 (at most 2)")),
            family => {
                let table = head
                    .get(21..21 + channels)
                    .ok_or_else(|| format!("the Opus header's channel mapping (family {family}) is cut short"))?;
                let (streams, coupled) = (usize::from(head[19]), usize::from(head[20]));
                if streams == 0 || coupled > streams || streams + coupled > 255 {
                    return Err(format!("the Opus header gives {streams} streams, {coupled} of them coupled"));
                }
                if let Some(bad) = table.iter().find(|&&m| m != 255 && usize::from(m) >= streams + coupled) {
                    return Err(format!(
                        "the Opus header maps a channel to stream channel {bad}, beyond its {}",
                        streams + coupled
                    ));
                }
                (streams, coupled, table.to_vec())
            }
        };
        Ok(OpusHead { channels, pre_skip, gain, streams, coupled, mapping })
    }
}

/// A symphonia decoder for Opus over `ropus`' multistream decoder (one stream for the mono
/// and stereo files nearly every recorder writes).
pub struct OpusDecoder {
    params: AudioCodecParameters,
    inner: ropus::OpusMSDecoder,
    head: OpusHead,
    /// Frames of the pre-skip still to drop at the start of the stream.
    to_skip: usize,
    interleaved: Vec<i16>,
    buf: AudioBuffer<f32>,
}

impl OpusDecoder {
    fn try_new(params: &AudioCodecParameters) -> Result<OpusDecoder> {
        let extra = params.extra_data.as_deref().unwrap_or_default();
        // `Decoder::new` has parsed it already to name what is wrong (symphonia's errors
        // carry static text only)
        let Ok(head) = OpusHead::parse(extra) else {
            return unsupported_error("opus: not a valid Opus identification header");
        };
        let inner = match ropus::OpusMSDecoder::new(
            OPUS_RATE as i32,
            head.channels as i32,
            head.streams as i32,
            head.coupled as i32,
            &head.mapping,
        ) {
            Ok(d) => d,
            Err(_) => return unsupported_error("opus: a channel layout the decoder does not take"),
        };
        let mut params = params.clone();
        params.sample_rate = Some(OPUS_RATE);
        let spec = AudioSpec::new(OPUS_RATE, Channels::Discrete(head.channels as u16));
        Ok(OpusDecoder {
            params,
            inner,
            to_skip: head.pre_skip,
            interleaved: vec![0; MAX_PACKET_FRAMES * head.channels],
            buf: AudioBuffer::new(spec, MAX_PACKET_FRAMES),
            head,
        })
    }

    fn decode_inner(&mut self, packet: &PacketRef<'_>) -> Result<()> {
        let (inner, pcm) = (&mut self.inner, &mut self.interleaved);
        let data = packet.data;
        let len = i32::try_from(data.len()).unwrap_or(i32::MAX);
        // untrusted packets through a codec port: a panic in it is this packet's error
        let decoded =
            catch_unwind(AssertUnwindSafe(|| inner.decode(Some(data), len, pcm, MAX_PACKET_FRAMES as i32, false)));
        let frames = match decoded {
            Ok(Ok(n)) => usize::try_from(n).unwrap_or(0).min(MAX_PACKET_FRAMES),
            Ok(Err(code)) => return decode_error(describe(code)),
            Err(_) => return decode_error("opus: the decoder failed on this packet"),
        };
        self.buf.clear();
        self.buf.resize_uninit(frames);
        let (channels, scale) = (self.head.channels, self.head.gain / 32768.0);
        for (c, plane) in self.buf.iter_planes_mut().enumerate() {
            for (d, frame) in plane.iter_mut().zip(self.interleaved.chunks_exact(channels)) {
                *d = f32::from(frame[c]) * scale;
            }
        }
        // the container's trims (OGG's end of stream), then what is left of the pre-skip
        let (start, end) = (packet.trim_start.get() as usize, packet.trim_end.get() as usize);
        self.buf.trim(start.min(frames), end.min(frames - start.min(frames)));
        let skip = self.to_skip.saturating_sub(start).min(self.buf.frames());
        self.to_skip = self.to_skip.saturating_sub(start + skip);
        self.buf.trim(skip, 0);
        Ok(())
    }
}

/// libopus' error codes, which `ropus` keeps.
fn describe(code: i32) -> &'static str {
    match code {
        -4 => "opus: invalid packet",
        -2 => "opus: a packet longer than 120 ms",
        _ => "opus: the decoder cannot decode this packet",
    }
}

impl AudioDecoder for OpusDecoder {
    fn reset(&mut self) {
        self.inner.reset();
    }

    fn codec_info(&self) -> &CodecInfo {
        &Self::supported_codecs()[0].info
    }

    fn codec_params(&self) -> &AudioCodecParameters {
        &self.params
    }

    fn decode_ref(&mut self, packet: &PacketRef<'_>) -> Result<GenericAudioBufferRef<'_>> {
        match self.decode_inner(packet) {
            Ok(()) => Ok(self.buf.as_generic_audio_buffer_ref()),
            Err(e) => {
                self.buf.clear();
                Err(e)
            }
        }
    }

    fn finalize(&mut self) -> FinalizeResult {
        FinalizeResult::default()
    }

    fn last_decoded(&self) -> GenericAudioBufferRef<'_> {
        self.buf.as_generic_audio_buffer_ref()
    }
}

impl RegisterableAudioDecoder for OpusDecoder {
    fn try_registry_new(params: &AudioCodecParameters, _opts: &AudioDecoderOptions) -> Result<Box<dyn AudioDecoder>> {
        Ok(Box::new(OpusDecoder::try_new(params)?))
    }

    fn supported_codecs() -> &'static [SupportedAudioCodec] {
        const CODECS: &[SupportedAudioCodec] = &[SupportedAudioCodec {
            id: CODEC_ID_OPUS,
            info: CodecInfo { short_name: "opus", long_name: "Opus (opus-decoder)", profiles: &[] },
        }];
        CODECS
    }
}
