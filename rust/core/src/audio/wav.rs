//! WAV headers as the training side's decoder (libsndfile) and ffmpeg read them, where
//! symphonia alone would refuse or misread them: bounds checked before symphonia multiplies
//! them ([`preflight`]), and header fields rewritten as the file is read ([`patches`],
//! [`HeaderPatch`]): an unusable RIFF length, an unfinished data length, RF64, a malformed
//! `LIST` chunk. Only the first bytes of the file (`head`) are looked at.

use super::error::AudioError;
use super::limits::MAX_CHANNELS;
use super::resample::check_input_rate;
use std::io::{Read, Seek, SeekFrom};
use symphonia::core::io::MediaSource;

/// The header fields to rewrite as the file is read (offsets from its start), each 4 bytes;
/// empty for a header symphonia reads as it is.
pub(super) fn patches(head: &[u8]) -> Vec<(u64, [u8; 4])> {
    let mut patches = match (rf64_patches(head), unfinished_data_length(head)) {
        (Some(p), _) => p,
        // both lengths unknown: symphonia reads the data chunk to the end of the file
        (None, Some(at)) => vec![(4, [0xFF; 4]), (at, [0xFF; 4])],
        (None, None) if riff_length_unusable(head) => vec![(4, [0xFF; 4])],
        (None, None) => Vec::new(),
    };
    patches.extend(list_chunks(head));
    patches.extend(pcm_container(head));
    patches
}

/// A PCM `fmt ` chunk (format tag 1) in `head` whose bits per sample are not a whole number
/// of bytes (12 bits in 2 bytes, 20 in 3), its block align and bits per sample to be read as
/// the container's: WAVEFORMATEX stores such samples left-justified in whole bytes, the
/// low bits zero, as ffmpeg reads them; symphonia refuses the width.
fn pcm_container(head: &[u8]) -> Option<(u64, [u8; 4])> {
    let (pos, _, size) = wav_chunks(head).find(|(_, id, _)| id == b"fmt ")?;
    let fmt = head.get(pos + 8..pos + 24).filter(|_| size >= 16)?;
    let bits = u16::from_le_bytes([fmt[14], fmt[15]]);
    let container = bits.div_ceil(8) * 8;
    let pcm = u16::from_le_bytes([fmt[0], fmt[1]]) == 1;
    (pcm && bits % 8 != 0 && bits < 32).then(|| {
        let [lo, hi] = container.to_le_bytes();
        (pos as u64 + 20, [fmt[12], fmt[13], lo, hi])
    })
}

/// The chunks of a RIFF/WAVE (or RF64) header whose 8-byte headers lie in `head`, in
/// order: (offset of the chunk's id, id, declared size). Each size, padded to 2 bytes,
/// leads to the next; the walk stops at the first header beyond `head` (or an offset past
/// `usize`: on wasm32 it holds no more than a 32-bit chunk size plus its pad).
fn wav_chunks(head: &[u8]) -> impl Iterator<Item = (usize, [u8; 4], u32)> + '_ {
    let wave = head.len() >= 12 && matches!(&head[..4], b"RIFF" | b"RF64") && &head[8..12] == b"WAVE";
    let mut next = wave.then_some(12usize);
    std::iter::from_fn(move || {
        let at = next?;
        let h = head.get(at..at.checked_add(8)?)?;
        let size = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        next = (size as usize).checked_add(size as usize & 1).and_then(|padded| (at + 8).checked_add(padded));
        Some((at, [h[0], h[1], h[2], h[3]], size))
    })
}

/// Bounds a RIFF/WAVE `fmt ` chunk found in `head` before symphonia reads it: channel
/// count, rate and sample width (symphonia multiplies them without overflow checks).
/// A header this does not find is left to symphonia.
pub(super) fn preflight(head: &[u8], source: &str) -> Result<(), AudioError> {
    let u16_at = |at: usize| u16::from_le_bytes([head[at], head[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    for (pos, id, size) in wav_chunks(head) {
        let size = size as usize;
        let start = pos + 8;
        if &id == b"fmt " {
            if size < 16 || start + 16 > head.len() {
                return Ok(());
            }
            let (tag, channels, rate, bits) = (u16_at(start), u16_at(start + 2), u32_at(start + 4), u16_at(start + 14));
            if channels == 0 || channels as usize > MAX_CHANNELS {
                return Err(AudioError::Channels { source: source.into(), channels: channels as u64 });
            }
            check_input_rate(rate as u64, source)?;
            let read = match tag {
                // a width between whole bytes is read as its container's ([`pcm_container`])
                1 => (1..=32).contains(&bits),
                3 => matches!(bits, 32 | 64),
                0xFFFE => matches!(bits, 8 | 16 | 24 | 32 | 64),
                // the other tags symphonia reads (ADPCM when built with it, A-law, mu-law)
                2 | 6 | 7 | 0x11 => return Ok(()),
                // symphonia refuses the rest as "unsupported wave format"; the tag tells a user
                // what the WAV holds (0x0055: MP3, 0x0031: GSM 6.10, ...)
                _ => {
                    return Err(AudioError::Unsupported {
                        source: source.into(),
                        format: "WAV".into(),
                        detail: format!("unsupported codec {tag:#06x}: the fmt chunk's format tag"),
                    })
                }
            };
            if !read {
                return Err(AudioError::Unsupported {
                    source: source.into(),
                    format: "WAV".into(),
                    detail: format!("{bits} bits per sample for format tag {tag:#06x}"),
                });
            }
            if tag == 0xFFFE && size >= 24 && start + 24 <= head.len() {
                check_channel_mask(u32_at(start + 20), channels, source)?;
            }
            return Ok(());
        }
    }
    Ok(())
}

/// A WAVE_FORMAT_EXTENSIBLE channel mask naming fewer speakers than there are channels:
/// symphonia fills in the missing bits with `((1 << missing) - 1) << (32 - leading ones of
/// !mask)`, which overflows its shifts (a panic in debug builds, a garbage mask otherwise)
/// when 32 or more bits are missing or the mask's top bit is already set. Such a header
/// is refused here, with the mask named; every other mask is left to symphonia.
fn check_channel_mask(mask: u32, channels: u16, source: &str) -> Result<(), AudioError> {
    let named = mask.count_ones();
    let missing = u32::from(channels).saturating_sub(named);
    let shift = 32 - (!mask).leading_ones();
    if missing > 0 && (missing > 31 || shift > 31) {
        return Err(AudioError::Unsupported {
            source: source.into(),
            format: "WAV".into(),
            detail: format!("WAVE_FORMAT_EXTENSIBLE channel mask {mask:#010x} names {named} of {channels} channels"),
        });
    }
    Ok(())
}

/// Whether symphonia would refuse a RIFF/WAVE header in `head` for its RIFF length alone:
/// a length under 4 (writers that never went back to fill it in write 0), or one too short
/// for a chunk it holds, the `data` chunk included (a file appended to, or a data length of
/// `0xFFFFFFFF` from a streaming writer under a finished RIFF length). libsndfile reads such
/// files, so the training side's reference decoder did; [`HeaderPatch`] makes symphonia
/// read them the same way. Walks the chunks as symphonia's `ChunksReader` does (headers
/// 2-byte aligned) up to the `data` chunk; a header it cannot see in `head` is left alone.
fn riff_length_unusable(head: &[u8]) -> bool {
    if head.len() < 12 || &head[..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return false;
    }
    let u32_at = |at: usize| u64::from(u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]));
    let riff_len = u32_at(4);
    if riff_len == u64::from(u32::MAX) {
        return false; // symphonia's "length unknown": it reads chunks to the data chunk
    }
    if riff_len < 4 {
        return true;
    }
    let parent = riff_len - 4;
    let mut consumed = 0u64;
    loop {
        consumed += consumed & 1;
        let at = 12 + consumed as usize;
        if at + 8 > head.len() {
            return false;
        }
        if consumed + 8 > parent {
            return true; // symphonia would stop here without having seen the data chunk
        }
        consumed += 8;
        let size = u32_at(at + 4);
        if parent - consumed < size {
            return true;
        }
        if &head[at..at + 4] == b"data" {
            return false;
        }
        consumed += size;
    }
}

/// Where the 4-byte length of an unfinished `data` chunk stands in `head`: a RIFF/WAVE
/// file whose data chunk declares 0 bytes while samples follow it (a recorder stopped before
/// it went back to fill the length in). ffmpeg reads such a file to its end, and so does
/// serlaq (libsndfile reads nothing). Bytes after the header that read as another chunk's id
/// (four printable ASCII characters: an empty data chunk before `LIST`, `id3 `, ...) leave
/// the file as it is: empty.
fn unfinished_data_length(head: &[u8]) -> Option<u64> {
    if !head.starts_with(b"RIFF") {
        return None; // RF64 states its lengths in `ds64` ([`rf64_patches`])
    }
    let (pos, _, size) = wav_chunks(head).find(|(_, id, _)| id == b"data")?;
    let after = head.get(pos + 8..pos + 12)?;
    let chunk_id = after.iter().all(|b| (0x20..=0x7E).contains(b));
    (size == 0 && !chunk_id).then_some(pos as u64 + 4)
}

/// The `LIST` chunks before the `data` chunk in `head`, each to be read as `JUNK`, a chunk
/// symphonia skips. serlaq reads no metadata from them, and symphonia refuses the whole
/// file for a malformed one (an INFO entry longer than its list), which libsndfile and
/// ffmpeg read past.
fn list_chunks(head: &[u8]) -> Vec<(u64, [u8; 4])> {
    wav_chunks(head)
        .take_while(|(_, id, _)| id != b"data")
        .filter(|(_, id, _)| id == b"LIST")
        .map(|(pos, _, _)| (pos as u64, *b"JUNK"))
        .collect()
}

/// An RF64 header in `head` (a WAV whose 32-bit lengths are 0xFFFFFFFF, the real ones in a
/// `ds64` chunk: broadcast recorders, and ffmpeg or libsndfile for long recordings). It is
/// read as the RIFF/WAVE file it is otherwise: "RF64" as "RIFF", the RIFF length unknown,
/// and the data chunk's length from `ds64` where it fits 32 bits and the chunk is in `head`
/// (longer data, or a data chunk beyond `head`, is read to the end of the file).
fn rf64_patches(head: &[u8]) -> Option<Vec<(u64, [u8; 4])>> {
    if head.len() < 12 || &head[..4] != b"RF64" || &head[8..12] != b"WAVE" {
        return None;
    }
    let mut patches = vec![(0, *b"RIFF"), (4, [0xFF; 4])];
    let u32_at = |at: usize| u32::from_le_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
    let u64_at = |at: usize| u64::from(u32_at(at)) | (u64::from(u32_at(at + 4)) << 32);
    // ds64: RIFF size (8 bytes), data size (8), sample count (8), table length (4), table
    let data_len = match head.get(12..20) {
        Some(h) if &h[..4] == b"ds64" && u32_at(16) >= 16 && head.len() >= 36 => u64_at(28),
        _ => return Some(patches),
    };
    if let Some((pos, _, _)) = wav_chunks(head).find(|(_, id, _)| id == b"data") {
        if let Ok(len) = u32::try_from(data_len) {
            if len != u32::MAX {
                patches.push((pos as u64 + 4, len.to_le_bytes()));
            }
        }
    }
    Some(patches)
}

/// A source with some 4-byte fields of its header rewritten as it is read (offsets from
/// where it started): a RIFF length symphonia would refuse read as `0xFFFFFFFF`, its
/// "length unknown", an unfinished data length read the same way
/// ([`unfinished_data_length`]), an RF64 header read as RIFF ([`rf64_patches`]), or a
/// `LIST` chunk's id read as `JUNK` ([`list_chunks`]). Every other byte,
/// and seeking, pass through.
pub(super) struct HeaderPatch<'s> {
    inner: Box<dyn MediaSource + 's>,
    pos: u64,
    patches: Vec<(u64, [u8; 4])>,
}

impl<'s> HeaderPatch<'s> {
    pub(super) fn new(
        mut inner: Box<dyn MediaSource + 's>,
        patches: Vec<(u64, [u8; 4])>,
    ) -> std::io::Result<HeaderPatch<'s>> {
        let start = if inner.is_seekable() { inner.stream_position()? } else { 0 };
        let patches = patches.into_iter().map(|(at, bytes)| (start + at, bytes)).collect();
        Ok(HeaderPatch { inner, pos: start, patches })
    }
}

impl Read for HeaderPatch<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (at, bytes) in &self.patches {
            let (from, to) = (self.pos.max(*at), (self.pos + n as u64).min(at + 4));
            for i in from..to {
                buf[(i - self.pos) as usize] = bytes[(i - at) as usize];
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for HeaderPatch<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = self.inner.seek(to)?;
        Ok(self.pos)
    }
}

impl MediaSource for HeaderPatch<'_> {
    fn is_seekable(&self) -> bool {
        self.inner.is_seekable()
    }
    fn byte_len(&self) -> Option<u64> {
        self.inner.byte_len()
    }
}
