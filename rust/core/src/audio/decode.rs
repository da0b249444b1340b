//! Incremental decoding with symphonia: one packet at a time, downmixed to mono as it is
//! decoded, so a file is never held whole at its source rate.
//!
//! Integer PCM becomes float exactly as soundfile's `dtype="float32"` decode does it
//! (int16 / 2^15, 24-bit / 2^23, int32 / 2^31, u8 (x - 128) / 128: symphonia's sample
//! conversions, exact in float32 except int32, which is rounded once like libsndfile's).

use super::error::{one_line, AudioError};
use super::limits::{MAX_CHANNELS, MAX_PACKET_FRAMES};
#[cfg(feature = "m4a")]
use super::mp4;
#[cfg(feature = "opus")]
use super::opus::{OpusDecoder, OpusHead, OPUS_RATE};
use super::resample::check_input_rate;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use symphonia::core::audio::conv::FromSample;
use symphonia::core::audio::sample::Sample;
use symphonia::core::audio::{Audio, AudioBuffer, GenericAudioBufferRef};
use symphonia::core::codecs::audio::well_known::CODEC_ID_ADPCM_IMA_QT;
#[cfg(feature = "opus")]
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::codecs::registry::CodecRegistry;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream, ReadOnlySource};
use symphonia::core::meta::MetadataOptions;

/// The file extensions (lower case, without the dot) of the formats decoded.
///
/// `.mp4`, raw ADTS `.aac` and MPEG layer I/II (`.mp2`: broadcast archives) decode too when
/// a file is named, but a folder search does not take them: an `.mp4` in a corpus folder is
/// more often a video than a recording, and the others are rare. `.webm`
/// is taken: it is what a browser records audio into (of a video, its sound is read).
pub const SUFFIXES: &[&str] =
    &["wav", "wave", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "m4a", "caf", "webm"];

/// The formats decoded, by the names users know, each with its extensions: what help texts
/// and error messages list (a test keeps it and [`SUFFIXES`] the same set).
pub const FORMATS: &[(&str, &[&str])] = &[
    ("WAV", &["wav", "wave"]),
    ("FLAC", &["flac"]),
    ("OGG (Vorbis, Opus)", &["ogg", "oga", "opus"]),
    ("MP3", &["mp3"]),
    ("AIFF", &["aif", "aiff"]),
    ("M4A (AAC, ALAC)", &["m4a"]),
    ("CAF", &["caf"]),
    ("WebM (Opus, Vorbis)", &["webm"]),
];

/// Formats [`sniff`] recognises by their first bytes that this build does not decode: an
/// error about such a file names the format (a browser's WebM recording is not "damaged").
pub const UNDECODED: &[&str] = &[
    "AU",
    #[cfg(not(feature = "m4a"))]
    "CAF",
    "Wave64",
    "WavPack",
    #[cfg(not(feature = "opus"))]
    "WebM/Matroska",
    "AMR",
    #[cfg(not(feature = "opus"))]
    "OGG/Opus",
    "WMA/ASF",
];

/// The path that names standard input, as Unix tools take it: `ffmpeg -i talk.mp4 -f wav - |
/// serlaq-rt predict general - --segments`. A file called `-` is reached as `./-`.
pub const STDIN_PATH: &str = "-";

/// How errors name the input at `path`: "standard input" for [`STDIN_PATH`].
pub fn source_name(path: &Path) -> String {
    if path.as_os_str() == STDIN_PATH {
        "standard input".to_string()
    } else {
        path.display().to_string()
    }
}

/// Why an MP4 read as a stream (a pipe) gave no audio: its index (the `moov` box, which
/// ffmpeg and most recorders write last) lies past the audio, and a stream cannot go back.
pub const MP4_INDEX_AFTER_AUDIO: &str = "its index (moov) follows the audio, which a stream cannot go back to";

/// The detail of an AIFF-C whose compression the reader does not take, before its code.
pub const AIFC_UNREAD: &str = "AIFF-C compression not decoded: ";

/// Containers whose header states the exact frame count (a shorter stream is truncated).
const EXACT_LENGTH_FORMATS: &[&str] = &["wave", "aiff", "flac"];

/// The format the first bytes claim, for messages about files that cannot be decoded.
fn sniff(head: &[u8], ext: Option<&str>) -> String {
    let by_magic = match head {
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'A', b'V', b'E', ..] => Some("WAV"),
        [b'R', b'F', b'6', b'4', ..] => Some("WAV (RF64)"),
        [b'f', b'L', b'a', b'C', ..] => Some("FLAC"),
        [b'O', b'g', b'g', b'S', ..] => Some("OGG"),
        [b'I', b'D', b'3', ..] => Some("MP3 (ID3 tag)"),
        [0xFF, b, ..] if b & 0xE0 == 0xE0 => Some("MPEG audio"),
        [b'F', b'O', b'R', b'M', ..] => Some("AIFF"),
        [_, _, _, _, b'f', b't', b'y', b'p', ..] => Some("MP4/M4A"),
        [b'c', b'a', b'f', b'f', ..] => Some("CAF"),
        [b'.', b's', b'n', b'd', ..] => Some("AU"),
        [b'r', b'i', b'f', b'f', 0x2E, 0x91, 0xCF, 0x11, ..] => Some("Wave64"),
        [b'w', b'v', b'p', b'k', ..] => Some("WavPack"),
        [0x1A, 0x45, 0xDF, 0xA3, ..] => Some("WebM/Matroska"),
        [b'#', b'!', b'A', b'M', b'R', ..] => Some("AMR"),
        // the ASF header object's GUID (Windows Media Audio, an old Windows voice recorder's)
        [0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, ..] => Some("WMA/ASF"),
        _ => None,
    };
    // an Ogg stream's first page names its codec in the packet it carries
    let by_magic = match by_magic {
        Some("OGG") if head.len() >= 36 && head[..64.min(head.len())].windows(8).any(|w| w == b"OpusHead") => {
            Some("OGG/Opus")
        }
        other => other,
    };
    match (by_magic, ext) {
        (Some(m), _) => m.to_string(),
        (None, Some(e)) => format!("unknown (extension .{e})"),
        (None, None) => "unknown".to_string(),
    }
}

/// Bytes of a file's start read for [`sniff`] and [`preflight_wav`].
const HEAD_LEN: usize = 1 << 16;

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
fn preflight_wav(head: &[u8], source: &str) -> Result<(), AudioError> {
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
            let widths: &[u16] = match tag {
                1 => &[8, 16, 24, 32],
                3 => &[32, 64],
                0xFFFE => &[8, 16, 24, 32, 64],
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
            if !widths.contains(&bits) {
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

/// Where a CAF's last chunk, its audio data, ends, when a few bytes follow it (libsndfile
/// pads an odd chunk to an even length; CAF has no padding): symphonia would read them as
/// the next chunk's header and refuse the file. Chunk headers are found by seeking.
#[cfg(feature = "m4a")]
fn caf_data_end(media: &mut dyn MediaSource) -> Option<u64> {
    let (len, start) = (media.byte_len()?, media.stream_position().ok()?);
    let mut at = start.checked_add(8)?; // after "caff", version and flags
    let mut found = None;
    for _ in 0..4096 {
        let mut head = [0u8; 12];
        if media.seek(SeekFrom::Start(at)).is_err() || media.read_exact(&mut head).is_err() {
            break;
        }
        let size = i64::from_be_bytes([head[4], head[5], head[6], head[7], head[8], head[9], head[10], head[11]]);
        let Some(end) = u64::try_from(size).ok().and_then(|s| (at + 12).checked_add(s)) else { break };
        if &head[..4] == b"data" && end < len && len - end < 12 {
            found = Some(end);
            break;
        }
        at = end;
    }
    let _ = media.seek(SeekFrom::Start(start));
    found
}

/// A seekable source read as if it ended at `end` (an absolute offset).
#[cfg(feature = "m4a")]
struct Ending<'s> {
    inner: Box<dyn MediaSource + 's>,
    pos: u64,
    end: u64,
}

#[cfg(feature = "m4a")]
impl Read for Ending<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let room = usize::try_from(self.end.saturating_sub(self.pos)).unwrap_or(usize::MAX);
        let take = buf.len().min(room);
        let n = self.inner.read(&mut buf[..take])?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(feature = "m4a")]
impl Seek for Ending<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let to = match to {
            SeekFrom::End(d) => {
                SeekFrom::Start(self.end.checked_add_signed(d).ok_or(std::io::ErrorKind::InvalidInput)?)
            }
            other => other,
        };
        self.pos = self.inner.seek(to)?;
        Ok(self.pos)
    }
}

#[cfg(feature = "m4a")]
impl MediaSource for Ending<'_> {
    fn is_seekable(&self) -> bool {
        true
    }
    fn byte_len(&self) -> Option<u64> {
        Some(self.end)
    }
}

/// A source with some 4-byte fields of its header rewritten as it is read (offsets from
/// where it started): a RIFF length symphonia would refuse read as `0xFFFFFFFF`, its
/// "length unknown", an unfinished data length read the same way
/// ([`unfinished_data_length`]), an RF64 header read as RIFF ([`rf64_patches`]), or a
/// `LIST` chunk's id read as `JUNK` ([`list_chunks`]). Every other byte,
/// and seeking, pass through.
struct HeaderPatch<'s> {
    inner: Box<dyn MediaSource + 's>,
    pos: u64,
    patches: Vec<(u64, [u8; 4])>,
}

impl<'s> HeaderPatch<'s> {
    fn new(mut inner: Box<dyn MediaSource + 's>, patches: Vec<(u64, [u8; 4])>) -> std::io::Result<HeaderPatch<'s>> {
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

/// An unseekable source whose first bytes were read ahead: serves them, then the rest.
struct Replay<'s> {
    head: std::io::Cursor<Vec<u8>>,
    rest: Box<dyn MediaSource + 's>,
}

impl Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.head.read(buf)? {
            0 => self.rest.read(buf),
            n => Ok(n),
        }
    }
}

impl Seek for Replay<'_> {
    fn seek(&mut self, _: SeekFrom) -> std::io::Result<u64> {
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "the source is not seekable"))
    }
}

impl MediaSource for Replay<'_> {
    fn is_seekable(&self) -> bool {
        false
    }
    fn byte_len(&self) -> Option<u64> {
        None
    }
}

/// A format reader and decoder positioned after the last packet returned.
pub struct Decoder<'s> {
    format: Box<dyn FormatReader + 's>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    source: String,
    format_name: &'static str,
    rate: u32,
    channels: usize,
    declared_frames: Option<u64>,
    /// The format as error lines name it (what the first bytes claim, or what was detected).
    claimed: String,
    /// Leading frames still to drop: an MP4 edit list's priming ([`mp4`]).
    skip: u64,
    frames: u64,
    nonfinite: u64,
    done: bool,
}

impl std::fmt::Debug for Decoder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("source", &self.source)
            .field("format", &self.format_name)
            .field("rate", &self.rate)
            .field("channels", &self.channels)
            .finish()
    }
}

impl Decoder<'static> {
    /// Opens `path` and reads its header (no samples yet); [`STDIN_PATH`] is standard input.
    pub fn open(path: &Path) -> Result<Decoder<'static>, AudioError> {
        if path.as_os_str() == STDIN_PATH {
            return Decoder::stdin();
        }
        let source = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => AudioError::NotFound { source: source.clone() },
            _ => AudioError::Io { source: source.clone(), message: e.to_string() },
        })?;
        if !meta.is_file() {
            return Err(AudioError::NotAFile { source });
        }
        let io = |e: std::io::Error| AudioError::Io { source: source.clone(), message: e.to_string() };
        let mut file = File::open(path).map_err(io)?;
        let mut head = vec![0u8; HEAD_LEN];
        let mut got = 0;
        while got < head.len() {
            match file.read(&mut head[got..]).map_err(io)? {
                0 => break,
                n => got += n,
            }
        }
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let ext = path.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
        Decoder::new(Box::new(file), &head[..got], ext.as_deref(), source)
    }

    /// Standard input, read once. Redirected from a file it is that file (seekable: an
    /// M4A's index at its end is reached); a pipe is read as it comes, so a live recording
    /// piped in is segmented as it is spoken. A terminal is refused: nothing would come.
    pub fn stdin() -> Result<Decoder<'static>, AudioError> {
        use std::io::IsTerminal;
        let source = source_name(Path::new(STDIN_PATH));
        let io = |message: String| AudioError::Io { source: source.clone(), message };
        if std::io::stdin().is_terminal() {
            return Err(io("it is a terminal: pipe or redirect the audio into it (e.g. `arecord -f S16_LE -r 16000 \
                           -t wav - | serlaq-rt predict MODEL - --segments`)"
                .into()));
        }
        #[cfg(unix)]
        let media: Box<dyn MediaSource> = {
            use std::os::fd::AsFd;
            let file = File::from(std::io::stdin().as_fd().try_clone_to_owned().map_err(|e| io(e.to_string()))?);
            if file.metadata().is_ok_and(|m| m.is_file()) {
                Box::new(file)
            } else {
                // a pipe's length and position are not a file's: read it as a stream
                Box::new(ReadOnlySource::new(file))
            }
        };
        #[cfg(not(unix))]
        let media: Box<dyn MediaSource> = Box::new(ReadOnlySource::new(std::io::stdin()));
        Decoder::from_source(media, &source, None)
    }
}

impl<'s> Decoder<'s> {
    /// Decodes from memory; `source` names the bytes in errors, `ext` is an optional hint.
    pub fn from_bytes(bytes: &'s [u8], source: &str, ext: Option<&str>) -> Result<Decoder<'s>, AudioError> {
        let head = &bytes[..bytes.len().min(HEAD_LEN)];
        Decoder::new(Box::new(std::io::Cursor::new(bytes)), head, ext, source.to_string())
    }

    /// Decodes from any reader (`File`, `Cursor`, symphonia's `ReadOnlySource`, ...), read
    /// from its current position. The first [`HEAD_LEN`] bytes are read ahead and checked
    /// like [`open`](Decoder::open) checks a file's; a seekable source is then rewound, an
    /// unseekable one replays them.
    pub fn from_source(
        mut media: Box<dyn MediaSource + 's>,
        source: &str,
        ext: Option<&str>,
    ) -> Result<Decoder<'s>, AudioError> {
        let io = |e: std::io::Error| AudioError::Io { source: source.to_string(), message: e.to_string() };
        let seekable = media.is_seekable();
        let start = if seekable { Some(media.stream_position().map_err(io)?) } else { None };
        let mut head = vec![0u8; HEAD_LEN];
        let mut got = 0;
        while got < head.len() {
            match media.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
        head.truncate(got);
        match start {
            Some(at) => {
                media.seek(SeekFrom::Start(at)).map_err(io)?;
                Decoder::new(media, &head, ext, source.to_string())
            }
            None => {
                let replay = Box::new(Replay { head: std::io::Cursor::new(head.clone()), rest: media });
                Decoder::new(replay, &head, ext, source.to_string())
            }
        }
    }

    fn new(
        #[cfg_attr(not(feature = "m4a"), allow(unused_mut))] mut media: Box<dyn MediaSource + 's>,
        head: &[u8],
        ext: Option<&str>,
        source: String,
    ) -> Result<Decoder<'s>, AudioError> {
        if head.is_empty() {
            return Err(AudioError::Empty { source }); // a 0-byte file is not "damaged at its start"
        }
        let claimed = sniff(head, ext);
        preflight_wav(head, &source)?;
        let mut patches = match (rf64_patches(head), unfinished_data_length(head)) {
            (Some(p), _) => p,
            // both lengths unknown: symphonia reads the data chunk to the end of the file
            (None, Some(at)) => vec![(4, [0xFF; 4]), (at, [0xFF; 4])],
            (None, None) if riff_length_unusable(head) => vec![(4, [0xFF; 4])],
            (None, None) => Vec::new(),
        };
        patches.extend(list_chunks(head));
        let seekable = media.is_seekable();
        #[cfg(feature = "m4a")]
        let mut media: Box<dyn MediaSource + 's> =
            match (claimed == "CAF" && seekable).then(|| caf_data_end(&mut *media)) {
                Some(Some(end)) => {
                    let pos = media
                        .stream_position()
                        .map_err(|e| AudioError::Io { source: source.clone(), message: e.to_string() })?;
                    Box::new(Ending { inner: media, pos, end })
                }
                _ => media,
            };
        // the edit lists symphonia leaves unapplied; an unseekable stream's are read from its
        // start (where a streamable MP4 keeps them)
        #[cfg(feature = "m4a")]
        let edits = match claimed.as_str() {
            "MP4/M4A" if seekable => mp4::start_edits(&mut *media),
            "MP4/M4A" => mp4::start_edits(&mut std::io::Cursor::new(head)),
            _ => Vec::new(),
        };
        let media: Box<dyn MediaSource + 's> = if patches.is_empty() {
            media
        } else {
            let io = |e: std::io::Error| AudioError::Io { source: source.clone(), message: e.to_string() };
            Box::new(HeaderPatch::new(media, patches).map_err(io)?)
        };
        let unsupported =
            |detail: String| AudioError::Unsupported { source: source.clone(), format: claimed.clone(), detail };
        let mss = MediaSourceStream::new(media, Default::default());
        let mut hint = Hint::new();
        if let Some(e) = ext {
            hint.with_extension(e);
        }
        let format = symphonia::default::get_probe()
            .probe(&hint, mss, FormatOptions::default(), MetadataOptions::default())
            .map_err(|e| match opus_header_problem(head) {
                // symphonia's OGG reader skips a stream whose Opus header it refuses: say why
                Some((true, detail)) => AudioError::Corrupt { source: source.clone(), at_seconds: 0.0, detail },
                Some((false, detail)) => unsupported(detail),
                None => unsupported(probe_failure(&claimed, head, seekable, &e)),
            })?;
        let format_name = format.format_info().short_name;
        // a codec recognised from the first bytes (Opus in OGG) is named, not only its container
        let claimed = if UNDECODED.contains(&claimed.as_str()) { claimed } else { format!("{format_name} (detected)") };
        let track = open_track(&*format, &source, &claimed, 0.0)?;
        let declared_frames = track.num_frames.filter(|_| EXACT_LENGTH_FORMATS.contains(&format_name));
        #[cfg(feature = "m4a")]
        let skip = edits.iter().find(|e| e.track_id == track.id).map_or(0, |e| e.skip_frames(track.rate));
        #[cfg(not(feature = "m4a"))]
        let skip = 0;
        Ok(Decoder {
            format,
            decoder: track.decoder,
            track_id: track.id,
            source,
            claimed,
            format_name,
            rate: track.rate,
            channels: track.channels,
            declared_frames,
            skip,
            frames: 0,
            nonfinite: 0,
            done: false,
        })
    }

    /// The next logical stream of a chained OGG (files joined end to end, a radio
    /// recording): its own headers, so a new decoder, at the same rate and channel count.
    fn next_stream(&mut self) -> Result<(), AudioError> {
        let track = open_track(&*self.format, &self.source, &self.claimed, self.seconds())?;
        if (track.rate, track.channels) != (self.rate, self.channels) {
            return Err(self.corrupt(format!(
                "the stream changes from {} Hz x {} channels to {} Hz x {} channels",
                self.rate, self.channels, track.rate, track.channels
            )));
        }
        self.track_id = track.id;
        self.decoder = track.decoder;
        Ok(())
    }

    /// The name errors use for this input.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// The sample rate of the stream in Hz (within the input bounds).
    pub fn sample_rate(&self) -> u32 {
        self.rate
    }
    /// Channels per frame (1..=64).
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// symphonia's short name of the container ("wave", "flac", "ogg", "mp3", "aiff").
    pub fn format_name(&self) -> &'static str {
        self.format_name
    }
    /// Frames the header declares, for containers where that count is exact.
    pub fn declared_frames(&self) -> Option<u64> {
        self.declared_frames
    }
    /// Frames decoded so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }
    /// NaN/inf samples (over all channels) decoded so far.
    pub fn nonfinite(&self) -> u64 {
        self.nonfinite
    }

    fn seconds(&self) -> f64 {
        self.frames as f64 / self.rate as f64
    }

    fn corrupt(&self, detail: String) -> AudioError {
        AudioError::Corrupt { source: self.source.clone(), at_seconds: self.seconds(), detail }
    }

    fn end(&mut self) -> Result<bool, AudioError> {
        self.done = true;
        match self.declared_frames {
            Some(declared) if self.frames < declared => Err(AudioError::Truncated {
                source: self.source.clone(),
                at_seconds: self.seconds(),
                declared_seconds: declared as f64 / self.rate as f64,
            }),
            _ => Ok(false),
        }
    }

    /// Replaces `mono` with the next packet's samples, downmixed (mean of channels).
    /// Returns `Ok(false)` at the end of the stream ([`AudioError::Truncated`] if it ends
    /// before the declared length), [`AudioError::Corrupt`] for undecodable data.
    pub fn next_mono(&mut self, mono: &mut Vec<f32>) -> Result<bool, AudioError> {
        mono.clear();
        loop {
            if self.done {
                return Ok(false);
            }
            let packet = match self.format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return self.end(),
                Err(SymError::ResetRequired) => match self.next_stream() {
                    Ok(()) => continue,
                    Err(e) => {
                        self.done = true;
                        return Err(e);
                    }
                },
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return self.end(),
                Err(SymError::IoError(e)) => {
                    self.done = true;
                    return Err(AudioError::Io { source: self.source.clone(), message: e.to_string() });
                }
                Err(e) => {
                    self.done = true;
                    return Err(self.corrupt(sym_detail(&e)));
                }
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let (rate, channels) = (self.rate, self.channels);
            let buf = match self.decoder.decode(&packet) {
                Ok(buf) => buf,
                Err(e) => {
                    self.done = true;
                    return Err(self.corrupt(sym_detail(&e)));
                }
            };
            let spec = buf.spec();
            if spec.rate() != rate || spec.channels().count() != channels || buf.num_planes() != channels {
                let detail = format!(
                    "the stream changes from {rate} Hz x {channels} channels to {} Hz x {} channels",
                    spec.rate(),
                    spec.channels().count()
                );
                self.done = true;
                return Err(self.corrupt(detail));
            }
            self.nonfinite += downmix_generic(&buf, mono);
            let drop = mono.len().min(usize::try_from(self.skip).unwrap_or(usize::MAX));
            mono.drain(..drop);
            self.skip -= drop as u64;
            let frames = mono.len();
            self.frames += frames as u64;
            if frames > 0 {
                return Ok(true);
            }
        }
    }
}

/// Why no reader took a file, where the first bytes say more than symphonia's message.
fn probe_failure(claimed: &str, head: &[u8], seekable: bool, e: &SymError) -> String {
    #[cfg(feature = "m4a")]
    if claimed == "MP4/M4A" && !seekable && !mp4::index_first(head) {
        return MP4_INDEX_AFTER_AUDIO.to_string();
    }
    #[cfg(not(feature = "m4a"))]
    let _ = seekable;
    if claimed == "AIFF" {
        if let Some(code) = aifc_unread_compression(head) {
            return format!("{AIFC_UNREAD}{code}");
        }
    }
    format!("no decodable audio stream found: {}", sym_detail(e))
}

/// The AIFF-C compression codes symphonia's AIFF reader takes (symphonia-format-riff's
/// `aiff/chunks.rs`; either case): PCM in its byte orders and widths, floats, A-law, mu-law.
const AIFC_READ: &[&[u8; 4]] =
    &[b"none", b"alaw", b"ulaw", b"in24", b"in32", b"23ni", b"fl32", b"fl64", b"sowt", b"twos", b"raw "];

/// An AIFF-C's compression code, printable, when the reader does not take it (IMA4 from an
/// old Mac, MACE, QDesign): the `COMM` chunk found among the chunks in `head`.
fn aifc_unread_compression(head: &[u8]) -> Option<String> {
    if head.len() < 12 || &head[..4] != b"FORM" || &head[8..12] != b"AIFC" {
        return None;
    }
    let mut at = 12usize;
    while let Some(chunk) = head.get(at..at + 8) {
        let size = u32::from_be_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]) as usize;
        if &chunk[..4] == b"COMM" {
            // channels (2), frames (4), bits (2), rate (80-bit float), then the code
            let code: [u8; 4] = head.get(at + 8 + 18..at + 8 + 22)?.try_into().ok()?;
            let read = AIFC_READ.iter().any(|known| known.eq_ignore_ascii_case(&code));
            let shown = code.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '?' });
            return (!read).then(|| shown.collect());
        }
        // chunks are padded to an even size
        at = at.checked_add(8)?.checked_add(size)?.checked_add(size & 1)?;
    }
    None
}

/// A format reader's audio track, ready to decode.
struct Track {
    id: u32,
    rate: u32,
    channels: usize,
    num_frames: Option<u64>,
    decoder: Box<dyn AudioDecoder>,
}

/// The default audio track of `format` with its decoder; its header's faults are named
/// (`at_seconds`: where in the input the track starts).
fn open_track(format: &dyn FormatReader, source: &str, claimed: &str, at_seconds: f64) -> Result<Track, AudioError> {
    let unsupported =
        |detail: String| AudioError::Unsupported { source: source.to_string(), format: claimed.to_string(), detail };
    let track = format.default_track(TrackType::Audio).ok_or_else(|| unsupported("no audio track".into()))?;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| unsupported("the audio track has no codec parameters".into()))?;
    let channels = params.channels.as_ref().map(|c| c.count()).unwrap_or(0);
    #[cfg(feature = "opus")]
    let rate = if params.codec == CODEC_ID_OPUS {
        // the header parsed here names what is wrong with it; Opus decodes at 48 kHz
        // whatever rate a container records (WebM gives the encoder's input rate)
        let corrupt = |detail| AudioError::Corrupt { source: source.to_string(), at_seconds, detail };
        let head = OpusHead::parse(params.extra_data.as_deref().unwrap_or_default()).map_err(corrupt)?;
        // WebM states the channel count twice (its track and the Opus header)
        if head.channels != channels {
            let h = head.channels;
            return Err(corrupt(format!("the Opus header gives {h} channels, the container {channels}")));
        }
        Some(OPUS_RATE)
    } else {
        params.sample_rate
    };
    #[cfg(not(feature = "opus"))]
    let rate = params.sample_rate;
    let rate = rate.ok_or_else(|| unsupported("the header gives no sample rate".into()))?;
    let rate = check_input_rate(rate as u64, source)?;
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(AudioError::Channels { source: source.to_string(), channels: channels as u64 });
    }
    let corrupt = |detail| AudioError::Corrupt { source: source.to_string(), at_seconds, detail };
    let packet = params.max_frames_per_packet.max(params.frames_per_block).unwrap_or(0);
    if packet > MAX_PACKET_FRAMES {
        return Err(corrupt(format!(
            "the header gives packets of {packet} frames, beyond any codec's {MAX_PACKET_FRAMES}"
        )));
    }
    // an IMA4 block always holds 64 frames, and symphonia's decoder writes 64 whatever a
    // (CAF) header says: another count would index past its buffer
    if params.codec == CODEC_ID_ADPCM_IMA_QT && params.frames_per_block.is_some_and(|n| n != 64) {
        let n = params.frames_per_block.unwrap_or_default();
        return Err(corrupt(format!("the header gives IMA4 blocks of {n} frames; IMA4's hold 64")));
    }
    let decoder = codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(|e| unsupported(format!("unsupported codec {}: {}", params.codec, sym_detail(&e))))?;
    Ok(Track { id: track.id, rate, channels, num_frames: track.num_frames, decoder })
}

/// What is wrong with the Opus header on an OGG file's first page, if that is what it holds:
/// (true: damaged, false: valid but not read, the detail).
#[cfg(feature = "opus")]
fn opus_header_problem(head: &[u8]) -> Option<(bool, String)> {
    let segments = usize::from(*head.get(26)?);
    let lacing = head.get(27..27 + segments)?;
    // the first packet: lacing values up to and including the first below 255
    let len =
        lacing.iter().position(|&l| l < 255).map(|i| lacing[..=i].iter().map(|&l| usize::from(l)).sum::<usize>())?;
    let packet = head.get(27 + segments..27 + segments + len)?;
    if !(head.starts_with(b"OggS") && packet.starts_with(b"OpusHead")) {
        return None;
    }
    match OpusHead::parse(packet) {
        Err(problem) => Some((true, problem)),
        // a valid header symphonia's OGG reader does not take (families 0 and 1 only)
        Ok(h) if packet[18] > 1 || h.channels > 8 => Some((
            false,
            format!(
                "Opus channel mapping family {} with {} channels is not read (families 0 and 1, up to 8 channels)",
                packet[18], h.channels
            ),
        )),
        Ok(_) => None,
    }
}

#[cfg(not(feature = "opus"))]
fn opus_header_problem(_head: &[u8]) -> Option<(bool, String)> {
    None
}

/// symphonia's decoders and, where built, Opus.
#[cfg(feature = "opus")]
fn codecs() -> &'static CodecRegistry {
    static CODECS: std::sync::LazyLock<CodecRegistry> = std::sync::LazyLock::new(|| {
        let mut registry = CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut registry);
        registry.register_audio_decoder::<OpusDecoder>();
        registry
    });
    &CODECS
}

#[cfg(not(feature = "opus"))]
fn codecs() -> &'static CodecRegistry {
    symphonia::default::get_codecs()
}

fn sym_detail(e: &SymError) -> String {
    one_line(&e.to_string())
}

/// Appends the mean over channels of `buf` to `mono`; returns the NaN/inf sample count.
fn downmix_generic(buf: &GenericAudioBufferRef<'_>, mono: &mut Vec<f32>) -> u64 {
    match buf {
        GenericAudioBufferRef::U8(b) => downmix(b, mono),
        GenericAudioBufferRef::U16(b) => downmix(b, mono),
        GenericAudioBufferRef::U24(b) => downmix(b, mono),
        GenericAudioBufferRef::U32(b) => downmix(b, mono),
        GenericAudioBufferRef::S8(b) => downmix(b, mono),
        GenericAudioBufferRef::S16(b) => downmix(b, mono),
        GenericAudioBufferRef::S24(b) => downmix(b, mono),
        GenericAudioBufferRef::S32(b) => downmix(b, mono),
        GenericAudioBufferRef::F32(b) => downmix(b, mono),
        GenericAudioBufferRef::F64(b) => downmix(b, mono),
    }
}

fn downmix<S: Sample>(buf: &AudioBuffer<S>, mono: &mut Vec<f32>) -> u64
where
    f32: FromSample<S>,
{
    let start = mono.len();
    mono.resize(start + buf.frames(), 0.0);
    let dst = &mut mono[start..];
    let mut bad = 0u64;
    for (i, plane) in buf.iter_planes().enumerate() {
        for (d, &s) in dst.iter_mut().zip(plane) {
            let v = f32::from_sample(s);
            bad += u64::from(!v.is_finite());
            *d = if i == 0 { v } else { *d + v };
        }
    }
    let n = buf.num_planes();
    if n > 1 {
        let n = n as f32;
        dst.iter_mut().for_each(|d| *d /= n);
    }
    bad
}

#[cfg(test)]
mod formats_tests {
    use super::{FORMATS, SUFFIXES};

    #[test]
    fn formats_and_suffixes_name_the_same_extensions() {
        let listed: Vec<&str> = FORMATS.iter().flat_map(|(_, exts)| exts.iter().copied()).collect();
        assert_eq!(listed, SUFFIXES);
    }
}
