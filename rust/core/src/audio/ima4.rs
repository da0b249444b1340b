//! Apple's IMA4 (IMA ADPCM in 34-byte blocks of 64 samples: CAF, AIFF-C `ima4`), decoded
//! as Apple's decoder and ffmpeg's do it.
//!
//! symphonia's decoder (symphonia-codec-adpcm 0.6) starts every block from the predictor
//! its header states, which keeps only the top 9 bits, and expands nibbles with the
//! `(2d + 1) * step / 8` rounding of WAV's IMA ADPCM. Apple's encoder counts on the decoder
//! keeping the full predictor of the block before when the step index is the same and the
//! header's is within 0x7F of it, and rounds each step term down on its own: read
//! symphonia's way, every block is off by up to 134 LSB. The tables are the IMA standard's.

use super::limits::{MAX_CHANNELS, MAX_PACKET_FRAMES};
use symphonia::core::audio::{AsGenericAudioBufferRef, AudioBuffer, AudioMut, AudioSpec, GenericAudioBufferRef};
use symphonia::core::codecs::audio::well_known::CODEC_ID_ADPCM_IMA_QT;
use symphonia::core::codecs::audio::{AudioCodecParameters, AudioDecoder, AudioDecoderOptions, FinalizeResult};
use symphonia::core::codecs::registry::{RegisterableAudioDecoder, SupportedAudioCodec};
use symphonia::core::codecs::CodecInfo;
use symphonia::core::errors::{decode_error, unsupported_error, Result};
use symphonia::core::packet::PacketRef;

/// Bytes of one channel's block: the 2-byte header, then 64 samples at 4 bits.
const BLOCK_BYTES: usize = 34;
/// Samples in one channel's block.
const BLOCK_FRAMES: usize = 64;

const INDEX_TABLE: [i8; 16] = [-1, -1, -1, -1, 2, 4, 6, 8, -1, -1, -1, -1, 2, 4, 6, 8];

#[rustfmt::skip]
const STEP_TABLE: [i16; 89] = [
    7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19, 21, 23, 25, 28, 31, 34, 37, 41, 45, 50, 55, 60, 66,
    73, 80, 88, 97, 107, 118, 130, 143, 157, 173, 190, 209, 230, 253, 279, 307, 337, 371, 408,
    449, 494, 544, 598, 658, 724, 796, 876, 963, 1060, 1166, 1282, 1411, 1552, 1707, 1878, 2066,
    2272, 2499, 2749, 3024, 3327, 3660, 4026, 4428, 4871, 5358, 5894, 6484, 7132, 7845, 8630,
    9493, 10442, 11487, 12635, 13899, 15289, 16818, 18500, 20350, 22385, 24623, 27086, 29794,
    32767,
];

/// One channel's decoder state, carried from block to block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Channel {
    predictor: i32,
    step_index: usize,
}

impl Channel {
    /// Decodes one channel's 34-byte block into `out` (64 samples); `Err` names what is wrong.
    fn block(
        &mut self,
        block: &[u8; BLOCK_BYTES],
        out: &mut [i16; BLOCK_FRAMES],
    ) -> std::result::Result<(), &'static str> {
        let header = i32::from(i16::from_be_bytes([block[0], block[1]]));
        let (predictor, step_index) = (header & !0x7F, (header & 0x7F) as usize);
        // the header's predictor is the running one rounded to 9 bits: a decoder that took it
        // at every block would step by up to 0x7F at each block's start
        if step_index != self.step_index || (predictor - self.predictor).abs() > 0x7F {
            *self = Channel { predictor, step_index };
        }
        if self.step_index >= STEP_TABLE.len() {
            return Err("ima4: a block's step index is beyond 88");
        }
        for (pair, &byte) in out.chunks_exact_mut(2).zip(&block[2..]) {
            pair[0] = self.nibble(byte & 0x0F);
            pair[1] = self.nibble(byte >> 4);
        }
        Ok(())
    }

    fn nibble(&mut self, nibble: u8) -> i16 {
        let step = i32::from(STEP_TABLE[self.step_index]);
        // each term rounded down on its own, as Apple's decoder does (not (2d + 1) * step / 8)
        let mut diff = step >> 3;
        if nibble & 4 != 0 {
            diff += step;
        }
        if nibble & 2 != 0 {
            diff += step >> 1;
        }
        if nibble & 1 != 0 {
            diff += step >> 2;
        }
        let predictor = if nibble & 8 != 0 { self.predictor - diff } else { self.predictor + diff };
        self.predictor = predictor.clamp(i32::from(i16::MIN), i32::from(i16::MAX));
        let index = self.step_index as i32 + i32::from(INDEX_TABLE[usize::from(nibble)]);
        self.step_index = index.clamp(0, STEP_TABLE.len() as i32 - 1) as usize;
        self.predictor as i16
    }
}

/// symphonia's decoder interface around [`Channel`]: a packet is whole frames of blocks,
/// each frame one block per channel in channel order.
pub(super) struct Ima4Decoder {
    params: AudioCodecParameters,
    channels: Vec<Channel>,
    block: [i16; BLOCK_FRAMES],
    buf: AudioBuffer<i16>,
}

impl Ima4Decoder {
    fn try_new(params: &AudioCodecParameters) -> Result<Ima4Decoder> {
        let Some(rate) = params.sample_rate else { return unsupported_error("ima4: the header gives no sample rate") };
        let Some(channels) = params.channels.clone() else {
            return unsupported_error("ima4: the header gives no channel count");
        };
        let count = channels.count();
        if count == 0 || count > MAX_CHANNELS {
            return unsupported_error("ima4: a channel count beyond 1..=64");
        }
        Ok(Ima4Decoder {
            params: params.clone(),
            channels: vec![Channel::default(); count],
            block: [0; BLOCK_FRAMES],
            buf: AudioBuffer::new(AudioSpec::new(rate, channels), BLOCK_FRAMES),
        })
    }

    fn decode_inner(&mut self, packet: &PacketRef<'_>) -> Result<()> {
        let frame_bytes = BLOCK_BYTES * self.channels.len();
        // a cut file's last packet may hold part of a frame: it is left out, as ffmpeg does
        let blocks = packet.data.len() / frame_bytes;
        let frames = blocks.saturating_mul(BLOCK_FRAMES);
        if frames as u64 > MAX_PACKET_FRAMES {
            return decode_error("ima4: a packet of more frames than any codec's");
        }
        self.buf.clear();
        self.buf.grow_capacity(frames);
        self.buf.resize_uninit(frames);
        for (n, frame) in packet.data.chunks_exact(frame_bytes).enumerate() {
            for (c, block) in frame.chunks_exact(BLOCK_BYTES).enumerate() {
                let (Ok(block), Some(state), Some(plane)) =
                    (block.try_into(), self.channels.get_mut(c), self.buf.plane_mut(c))
                else {
                    return decode_error("ima4: a block outside the packet's frames");
                };
                state.block(block, &mut self.block).or_else(decode_error)?;
                let Some(out) = plane.get_mut(n * BLOCK_FRAMES..(n + 1) * BLOCK_FRAMES) else {
                    return decode_error("ima4: a block outside the packet's frames");
                };
                out.copy_from_slice(&self.block);
            }
        }
        Ok(())
    }
}

impl AudioDecoder for Ima4Decoder {
    fn reset(&mut self) {
        self.channels.iter_mut().for_each(|c| *c = Channel::default());
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

impl RegisterableAudioDecoder for Ima4Decoder {
    fn try_registry_new(params: &AudioCodecParameters, _opts: &AudioDecoderOptions) -> Result<Box<dyn AudioDecoder>> {
        Ok(Box::new(Ima4Decoder::try_new(params)?))
    }

    fn supported_codecs() -> &'static [SupportedAudioCodec] {
        const CODECS: &[SupportedAudioCodec] = &[SupportedAudioCodec {
            id: CODEC_ID_ADPCM_IMA_QT,
            info: CodecInfo { short_name: "adpcm_ima_qt", long_name: "Apple IMA4 ADPCM (serlaq)", profiles: &[] },
        }];
        CODECS
    }
}
