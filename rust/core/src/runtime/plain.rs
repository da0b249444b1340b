//! Failure lines in plain words: the one translation both CLIs (`serlaq-rt`, and `serlaq`
//! through `_native.plain_error`) apply to an audio error before showing it to a person
//! (`--verbose` keeps the decoder's own message).
//!
//! Records keep the full message (a program reading JSON gets every detail); only the
//! human-facing line is rewritten. The input is the one-line `Display` of
//! [`crate::audio::AudioError`] as it travels in a [`super::Failure`].

use super::records::one_line;
use crate::audio::{AAC_UNREAD, AIFC_UNREAD, FILE_ONLY, FORMATS, IMA4_DAMAGED, MP4_INDEX_AFTER_AUDIO, UNDECODED};

/// The decoded formats by name: "WAV, FLAC, OGG (Vorbis, Opus), MP3, AIFF, M4A (AAC, ALAC) or
/// WebM (Opus, Vorbis)".
pub fn format_names() -> String {
    let names: Vec<&str> = FORMATS.iter().map(|(name, _)| *name).collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// The WAV encodings decoded, as help texts name them.
pub const WAV_ENCODINGS: &str = "PCM 8-32 bit, float, extensible, mu-law, A-law, ADPCM";

/// What `predict --help` says is read, in both CLIs: [`format_names`] with WAV's encodings.
pub fn formats_help() -> String {
    format_names().replacen("WAV", &format!("WAV ({WAV_ENCODINGS})"), 1)
}

/// symphonia's short format names -> the names users know.
fn known_name(format: &str) -> String {
    let short = format.trim_end_matches(" (detected)");
    match short {
        "wave" => "WAV".into(),
        "aiff" => "AIFF".into(),
        "flac" => "FLAC".into(),
        "ogg" => "OGG".into(),
        "mp3" => "MP3".into(),
        "isomp4" => "MP4/M4A".into(),
        "matroska" => "WebM/Matroska".into(),
        "aac" => "AAC".into(),
        // a name from the first bytes ("OGG/Opus", "WebM/Matroska") is the user's already
        other if other.chars().any(|c| c.is_ascii_uppercase()) => other.into(),
        other => other.to_uppercase(),
    }
}

/// "a" or "an" before a format's name as it is read aloud ("an OGG", "an MP3", "a WAV").
fn article(name: &str) -> &'static str {
    let vowel = name.starts_with(['A', 'E', 'I', 'O', 'U']) || name.starts_with("MP") || name.starts_with("M4");
    if vowel {
        "an"
    } else {
        "a"
    }
}

const HINT: &str = "(--verbose shows the decoder's message)";

/// `message` in plain words; other messages (plain already) pass unchanged.
///
/// "x.txt: cannot decode audio (format: unknown (extension .txt); no decodable audio
/// stream found: ...)" becomes "x.txt: cannot decode audio: not a WAV, FLAC, OGG (Vorbis,
/// Opus), MP3, AIFF, M4A (AAC, ALAC), CAF or WebM (Opus, Vorbis) file, or damaged at its start
/// (--verbose shows the decoder's message)".
///
/// The line is one line: control characters (a line break in a file's name) are escaped as
/// [`one_line`] shows them.
pub fn plain_error(message: &str) -> String {
    translated(&one_line(message))
}

fn translated(message: &str) -> String {
    const UNSUPPORTED: &str = ": cannot decode audio (format: ";
    const CORRUPT: &str = ": corrupt audio (decode error at ";
    if let (Some(at), Some(body)) = (message.rfind(UNSUPPORTED), message.strip_suffix(')')) {
        let (source, rest) = (&message[..at], &body[at + UNSUPPORTED.len()..]);
        if let Some((format, detail)) = rest.split_once("; ") {
            let named = format.trim_end_matches(" (detected)");
            let what = if UNDECODED.contains(&named) {
                format!(
                    "{} {named} file, a format serlaq does not decode: convert it to WAV or FLAC \
                     (e.g. ffmpeg -i IN -ac 1 OUT.wav)",
                    article(named)
                )
            } else if let Some(code) = detail.strip_prefix(AIFC_UNREAD) {
                // IMA4 from an old Mac, MACE or another codec the reader does not take
                format!(
                    "an AIFF-C file in an encoding serlaq does not decode (compression '{code}'): convert it to PCM \
                     WAV or FLAC (e.g. ffmpeg -i IN -ac 1 OUT.wav)"
                )
            } else if let Some(what) = detail.strip_prefix(AAC_UNREAD) {
                // 5.1 or HE-AAC: the file is fine, serlaq's AAC decoder reads less
                let name = known_name(format);
                format!("{} {name} file in {what}", article(&name))
            } else if detail.starts_with(IMA4_DAMAGED) {
                // the encoding is read; this file's COMM or SSND chunk is not
                "an AIFF-C (IMA4) file whose header is damaged: its COMM or SSND chunk does not describe \
                 readable sound data"
                    .to_string()
            } else if detail == FILE_ONLY {
                let name = known_name(format);
                format!(
                    "{} {name} file, which serlaq reads from a file, not a pipe: give its path or redirect it (< FILE)",
                    article(&name)
                )
            } else if detail == MP4_INDEX_AFTER_AUDIO {
                "an M4A/MP4 file whose index follows its audio, out of a pipe's reach: give its path, redirect \
                 it (< FILE), or move the index first (ffmpeg -i IN -c copy -movflags +faststart OUT.m4a)"
                    .to_string()
            } else if detail.ends_with(": unexpected end of file") && !format.starts_with("unknown") {
                // the container was recognised, then its header's chunk ran past the end
                let name = known_name(format);
                format!(
                    "{} {name} file that ends before its header says: truncated (an interrupted copy or \
                     download?)",
                    article(&name)
                )
            } else if detail.contains("no decodable audio stream") || format.starts_with("unknown") {
                format!("not a {} file, or damaged at its start", format_names())
            } else if detail == "no audio track" {
                // a video with no sound (a WebM or an MP4 from a screen recorder)
                let name = known_name(format);
                format!("{} {name} file with no audio track", article(&name))
            } else if let Some(codec) = detail.split("unsupported codec ").nth(1).and_then(|c| c.split(':').next()) {
                let name = known_name(format);
                format!(
                    "{} {name} file in an encoding serlaq does not decode (codec {}): convert it to PCM WAV or FLAC",
                    article(&name),
                    codec.trim()
                )
            } else {
                let name = known_name(format);
                // a file the container's reader refuses (a CAF whose packet table symphonia
                // misreads): ffmpeg reads more variants than serlaq does
                format!(
                    "{} {name} file serlaq cannot read: convert it to WAV or FLAC (e.g. ffmpeg -i IN -ac 1 OUT.wav)",
                    article(&name)
                )
            };
            return format!("{source}: cannot decode audio: {what} {HINT}");
        }
    }
    if let (Some(at), Some(body)) = (message.rfind(CORRUPT), message.strip_suffix(')')) {
        let rest = &body[at + CORRUPT.len()..];
        if let Some((seconds, detail)) = rest.split_once(" s: ") {
            if let Some(change) = detail.strip_prefix("the stream changes ") {
                // not damage: joined recordings (a chained OGG) at two rates or channel counts
                return format!(
                    "{}: the audio changes {change} at {seconds} s; one file is read at one rate: convert it \
                     (e.g. ffmpeg -i IN -ar 16000 -ac 1 OUT.wav)",
                    &message[..at]
                );
            }
            return format!("{}: corrupt audio: the data is damaged at {seconds} s {HINT}", &message[..at]);
        }
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::AudioError;

    #[test]
    fn decoder_jargon_becomes_plain_words() {
        let unknown = AudioError::Unsupported {
            source: "notes.wav".into(),
            format: "unknown (extension .wav)".into(),
            detail:
                "no decodable audio stream found: unsupported feature: core (probe): no suitable format reader found"
                    .into(),
        };
        assert_eq!(
            plain_error(&unknown.to_string()),
            "notes.wav: cannot decode audio: not a WAV, FLAC, OGG (Vorbis, Opus), MP3, AIFF, M4A (AAC, ALAC), CAF or WebM (Opus, Vorbis) \
             file, or damaged at its start \
             (--verbose shows the decoder's message)"
        );
        // an AIFF-C whose codec the reader refuses (IMA4 from an old Mac) is not "damaged"
        let aifc = AudioError::Unsupported {
            source: "mac.aifc".into(),
            format: "AIFF".into(),
            detail: format!("{AIFC_UNREAD}ima4"),
        };
        assert!(
            plain_error(&aifc.to_string()).starts_with(
                "mac.aifc: cannot decode audio: an AIFF-C file in an encoding serlaq does not decode (compression 'ima4')"
            ),
            "{}",
            plain_error(&aifc.to_string())
        );
        let codec = AudioError::Unsupported {
            source: "a.wav".into(),
            format: "wave (detected)".into(),
            detail: "unsupported codec 0x31: gsm 6.10".into(),
        };
        assert_eq!(
            plain_error(&codec.to_string()),
            "a.wav: cannot decode audio: a WAV file in an encoding serlaq does not decode (codec 0x31): convert it to \
             PCM WAV or FLAC (--verbose shows the decoder's message)"
        );
        let ogg = AudioError::Unsupported {
            source: "a.ogg".into(),
            format: "ogg (detected)".into(),
            detail: "unsupported codec 0x2000: speex".into(),
        };
        assert!(plain_error(&ogg.to_string()).starts_with("a.ogg: cannot decode audio: an OGG file in an encoding"));
        let amr = AudioError::Unsupported {
            source: "memo.amr".into(),
            format: "AMR".into(),
            detail:
                "no decodable audio stream found: unsupported feature: core (probe): no suitable format reader found"
                    .into(),
        };
        assert_eq!(
            plain_error(&amr.to_string()),
            "memo.amr: cannot decode audio: an AMR file, a format serlaq does not decode: convert it to WAV \
             or FLAC (e.g. ffmpeg -i IN -ac 1 OUT.wav) (--verbose shows the decoder's message)"
        );
        let silent_video = AudioError::Unsupported {
            source: "screen.webm".into(),
            format: "matroska (detected)".into(),
            detail: "no audio track".into(),
        };
        assert_eq!(
            plain_error(&silent_video.to_string()),
            "screen.webm: cannot decode audio: a WebM/Matroska file with no audio track (--verbose shows the decoder's message)"
        );
        // an AIFF or CAF cut short: its reader finds the sound chunk running past the end
        let cut = AudioError::Unsupported {
            source: "cut.aiff".into(),
            format: "AIFF".into(),
            detail: "no decodable audio stream found: unexpected end of file".into(),
        };
        assert_eq!(
            plain_error(&cut.to_string()),
            "cut.aiff: cannot decode audio: an AIFF file that ends before its header says: truncated (an \
             interrupted copy or download?) (--verbose shows the decoder's message)"
        );
        let corrupt = AudioError::Corrupt { source: "x.flac".into(), at_seconds: 1.5, detail: "bad crc".into() };
        assert_eq!(
            plain_error(&corrupt.to_string()),
            "x.flac: corrupt audio: the data is damaged at 1.500 s (--verbose shows the decoder's message)"
        );
    }

    #[test]
    fn plain_messages_pass_unchanged() {
        for m in ["x.wav: not found", "x.wav: all silent (peak -inf dBFS, threshold -60 dBFS)", "odd (format: x; y)"] {
            assert_eq!(plain_error(m), m);
        }
    }
}
