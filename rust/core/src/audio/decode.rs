//! Incremental decoding with symphonia: one packet at a time, downmixed to mono as it is
//! decoded, so a file is never held whole at its source rate.
//!
//! Integer PCM becomes float exactly as soundfile's `dtype="float32"` decode does it
//! (int16 / 2^15, 24-bit / 2^23, int32 / 2^31, u8 (x - 128) / 128: symphonia's sample
//! conversions, exact in float32 except int32, which is rounded once like libsndfile's).

use super::aiff;
#[cfg(feature = "m4a")]
use super::caf;
use super::error::{one_line, AudioError};
use super::limits::{MAX_CHANNELS, MAX_PACKET_FRAMES};
#[cfg(feature = "opus")]
use super::mkv;
#[cfg(feature = "m4a")]
use super::mp4;
#[cfg(feature = "opus")]
use super::opus::{OpusDecoder, OpusHead, OPUS_RATE};
use super::resample::check_input_rate;
use super::wav;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use symphonia::core::audio::conv::FromSample;
use symphonia::core::audio::sample::Sample;
use symphonia::core::audio::{Audio, AudioBuffer, GenericAudioBufferRef};
use symphonia::core::codecs::audio::well_known::CODEC_ID_ADPCM_IMA_QT;
#[cfg(feature = "opus")]
use symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS;
#[cfg(feature = "m4a")]
use symphonia::core::codecs::audio::well_known::{CODEC_ID_PCM_ALAW, CODEC_ID_PCM_MULAW};
#[cfg(feature = "m4a")]
use symphonia::core::codecs::audio::AudioCodecParameters;
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
    &["wav", "wave", "flac", "ogg", "oga", "opus", "mp3", "aif", "aiff", "aifc", "m4a", "caf", "webm"];

/// The formats decoded, by the names users know, each with its extensions: what help texts
/// and error messages list (a test keeps it and [`SUFFIXES`] the same set).
pub const FORMATS: &[(&str, &[&str])] = &[
    ("WAV", &["wav", "wave"]),
    ("FLAC", &["flac"]),
    ("OGG (Vorbis, Opus)", &["ogg", "oga", "opus"]),
    ("MP3", &["mp3"]),
    ("AIFF", &["aif", "aiff", "aifc"]),
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
    "AC-3",
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
    } else if path.as_os_str().is_empty() {
        "'' (an empty path)".to_string() // an error line must name something
    } else {
        path.display().to_string()
    }
}

/// Why an MP4 read as a stream (a pipe) gave no audio: its index (the `moov` box, which
/// ffmpeg and most recorders write last) lies past the audio, and a stream cannot go back.
pub const MP4_INDEX_AFTER_AUDIO: &str = "its index (moov) follows the audio, which a stream cannot go back to";

/// Why a format that needs to seek gave no audio from a stream (a pipe): CAF, IMA4 AIFF-C.
pub const FILE_ONLY: &str = "read from a file only: its reader needs to seek, which a stream cannot";

/// The detail of an AIFF-C whose compression the reader does not take, before its code.
pub const AIFC_UNREAD: &str = "AIFF-C compression not decoded: ";

/// The detail of an AAC track symphonia's AAC decoder does not read (it reads AAC-LC in mono
/// or stereo), before what the track is, in plain words.
pub const AAC_UNREAD: &str = "AAC not decoded: ";

/// How messages name an AIFF-C in IMA4 (Apple's IMA ADPCM), which the CAF reader decodes.
const IMA4_AIFC: &str = "AIFF-C (IMA4)";

/// The detail of an IMA4 AIFF-C whose header does not describe sound data that can be read.
pub const IMA4_DAMAGED: &str =
    "damaged header: COMM or SSND does not describe readable IMA4 sound data (channels, rate, offset)";

/// Containers whose header states the exact frame count (a shorter stream is truncated).
const EXACT_LENGTH_FORMATS: &[&str] = &["wave", "aiff", "flac"];

/// Whether `byte_len` bytes can hold `frames` frames of `channels` channels: WAV and AIFF
/// need at least 4 bits a sample (IMA ADPCM, their smallest coding); FLAC has no such floor
/// (silence packs into a few bytes a block), nor has a source of unknown length.
fn fits_in(frames: u64, channels: usize, format_name: &str, byte_len: Option<u64>) -> bool {
    match byte_len {
        Some(len) if matches!(format_name, "wave" | "aiff") => frames.saturating_mul(channels.max(1) as u64) / 2 <= len,
        _ => true,
    }
}

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
        // Dolby Digital's sync word: a film's or a DVD's soundtrack saved as .ac3
        [0x0B, 0x77, ..] => Some("AC-3"),
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

/// Bytes of a file's start read for [`sniff`] and [`wav::preflight`].
const HEAD_LEN: usize = 1 << 16;

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
    /// Whether the file is long enough to hold the frames its header declares ([`fits_in`]).
    header_fits: bool,
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
        let source = source_name(path);
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
        media: Box<dyn MediaSource + 's>,
        head: &[u8],
        ext: Option<&str>,
        source: String,
    ) -> Result<Decoder<'s>, AudioError> {
        if head.is_empty() {
            return Err(AudioError::Empty { source }); // a 0-byte file is not "damaged at its start"
        }
        let mut claimed = sniff(head, ext);
        if claimed == "AIFF" && aiff::is_ima4(head) {
            claimed = IMA4_AIFC.to_string();
        }
        wav::preflight(head, &source)?;
        let mut patches = wav::patches(head);
        let seekable = media.is_seekable();
        let byte_len = media.byte_len();
        #[cfg(feature = "m4a")]
        let media = if claimed == "CAF" { caf::Ending::wrap(media) } else { media };
        // an IMA4 AIFF-C is read by the CAF reader (symphonia's AIFF reader refuses IMA4)
        #[cfg(feature = "m4a")]
        let (mut media, ima4) = match claimed == IMA4_AIFC {
            true => aiff::Ima4AsCaf::wrap(media, head).map_or_else(|media| (media, false), |view| (view, true)),
            false => (media, false),
        };
        #[cfg(not(feature = "m4a"))]
        let ima4 = false;
        #[cfg(all(feature = "opus", not(feature = "m4a")))]
        let mut media = media;
        // the edit lists symphonia leaves unapplied; an unseekable stream's are read from its
        // start (where a streamable MP4 keeps them)
        #[cfg(feature = "m4a")]
        let edits = match claimed.as_str() {
            "MP4/M4A" if seekable => mp4::start_edits(&mut *media),
            "MP4/M4A" => mp4::start_edits(&mut std::io::Cursor::new(head)),
            _ => Vec::new(),
        };
        // a file cut short whose index or header comes first: read up to the cut, then
        // named truncated ([`Decoder::end`]) where the header states the length
        let cut: Vec<(u64, [u8; 4])> = match claimed.as_str() {
            #[cfg(feature = "m4a")]
            "MP4/M4A" if seekable => mp4::cut_short(&mut *media),
            #[cfg(feature = "opus")]
            "WebM/Matroska" if seekable => {
                let room = byte_len.zip(media.stream_position().ok()).map(|(len, at)| len.saturating_sub(at));
                room.map_or_else(Vec::new, |room| mkv::cut_short(head, room))
            }
            _ => Vec::new(),
        };
        let is_cut = !cut.is_empty();
        patches.extend(cut);
        let media: Box<dyn MediaSource + 's> = if patches.is_empty() {
            media
        } else {
            let io = |e: std::io::Error| AudioError::Io { source: source.clone(), message: e.to_string() };
            Box::new(wav::HeaderPatch::new(media, patches).map_err(io)?)
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
        let format_name = if ima4 { "aiff" } else { format.format_info().short_name };
        // a codec recognised from the first bytes (Opus in OGG) is named, not only its container
        let claimed = if UNDECODED.contains(&claimed.as_str()) { claimed } else { format!("{format_name} (detected)") };
        let track = open_track(&*format, &source, &claimed, 0.0)?;
        #[cfg(feature = "m4a")]
        let skip = edits.iter().find(|e| e.track_id == track.id).map_or(0, |e| e.skip_frames(track.rate));
        #[cfg(not(feature = "m4a"))]
        let skip = 0;
        let exact = EXACT_LENGTH_FORMATS.contains(&format_name) || is_cut;
        let declared_frames = track.num_frames.filter(|_| exact).map(|n| n.saturating_sub(skip));
        let header_fits = !is_cut && declared_frames.is_none_or(|n| fits_in(n, track.channels, format_name, byte_len));
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
            header_fits,
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
    /// Whether the file has the bytes its header's frame count needs: a header that
    /// declares hours in a file of kilobytes is a cut file, and its count is not to be
    /// believed before decoding (nor memory reserved for it).
    pub fn header_fits(&self) -> bool {
        self.header_fits
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
    // symphonia's CAF reader (an IMA4 AIFF-C's too) needs to seek
    #[cfg(feature = "m4a")]
    if !seekable && (claimed == "CAF" || claimed == IMA4_AIFC) {
        return FILE_ONLY.to_string();
    }
    // this build decodes IMA4: the view refused the file's header, so the header is at fault
    #[cfg(feature = "m4a")]
    if claimed == IMA4_AIFC {
        return format!("{IMA4_DAMAGED}: {}", sym_detail(e));
    }
    #[cfg(not(feature = "m4a"))]
    let _ = seekable;
    if claimed == "AIFF" || claimed == IMA4_AIFC {
        if let Some(code) = aiff::unread_compression(head) {
            return format!("{AIFC_UNREAD}{code}");
        }
    }
    format!("no decodable audio stream found: {}", sym_detail(e))
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
    // an IMA4 block always holds 64 frames: a (CAF) header that says otherwise is damaged,
    // and its reader would time the packets by the wrong count
    if params.codec == CODEC_ID_ADPCM_IMA_QT && params.frames_per_block.is_some_and(|n| n != 64) {
        let n = params.frames_per_block.unwrap_or_default();
        return Err(corrupt(format!("the header gives IMA4 blocks of {n} frames; IMA4's hold 64")));
    }
    // CAF gives A-law and mu-law the 8 bits they are stored in; symphonia's decoder takes
    // only the 16 bits they expand to (what the WAV and AIFF readers give) and refuses the rest
    #[cfg(feature = "m4a")]
    let expanded;
    #[cfg(feature = "m4a")]
    let params = if matches!(params.codec, CODEC_ID_PCM_ALAW | CODEC_ID_PCM_MULAW) {
        expanded = AudioCodecParameters { bits_per_sample: None, bits_per_coded_sample: None, ..params.clone() };
        &expanded
    } else {
        params
    };
    let decoder = codecs().make_audio_decoder(params, &AudioDecoderOptions::default()).map_err(|e| {
        #[cfg(feature = "m4a")]
        if let Some(what) = aac_unread(params.codec, channels, &e) {
            return unsupported(format!("{AAC_UNREAD}{what}"));
        }
        unsupported(format!("unsupported codec {}: {}", params.codec, sym_detail(&e)))
    })?;
    Ok(Track { id: track.id, rate, channels, num_frames: track.num_frames, decoder })
}

/// What an AAC track symphonia's decoder refused is, and what to do about it: its decoder
/// says "too complex" alike for 5.1 (a camera's, a film's sound), HE-AAC and 960-sample frames.
#[cfg(feature = "m4a")]
fn aac_unread(codec: symphonia::core::codecs::audio::AudioCodecId, channels: usize, e: &SymError) -> Option<String> {
    use symphonia::core::codecs::audio::well_known::CODEC_ID_AAC;
    if codec != CODEC_ID_AAC {
        None
    } else if channels > 2 {
        Some(format!(
            "AAC with {channels} channels; serlaq's AAC decoder reads mono and stereo: convert it \
             (e.g. ffmpeg -i IN -ac 2 OUT.wav)"
        ))
    } else {
        sym_detail(e).contains("too complex").then(|| {
            "AAC other than AAC-LC (HE-AAC, low delay, ...), which serlaq's AAC decoder does not read: convert it \
             (e.g. ffmpeg -i IN -ac 1 OUT.wav)"
                .to_string()
        })
    }
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

/// symphonia's decoders, with serlaq's where built: Opus, and IMA4, whose symphonia decoder
/// differs from Apple's ([`ima4`](super::ima4)).
#[cfg(any(feature = "opus", feature = "m4a"))]
fn codecs() -> &'static CodecRegistry {
    static CODECS: std::sync::LazyLock<CodecRegistry> = std::sync::LazyLock::new(|| {
        let mut registry = CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut registry);
        #[cfg(feature = "opus")]
        registry.register_audio_decoder::<OpusDecoder>();
        // registered after symphonia's, so it replaces symphonia's IMA4 decoder
        #[cfg(feature = "m4a")]
        registry.register_audio_decoder::<super::ima4::Ima4Decoder>();
        registry
    });
    &CODECS
}

#[cfg(not(any(feature = "opus", feature = "m4a")))]
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
