"""One exception family for everything serlaq reports to a user.

Every message names the file, field or key that is wrong and says what is wrong,
in one line, so the CLI can print it without a traceback.
"""

from __future__ import annotations


class SerlaqError(Exception):
    """Base class of every error serlaq raises on bad input."""


class LaqFormatError(SerlaqError, ValueError):
    """A `.laq` file is malformed, truncated, corrupted or of an unsupported version."""


class AudioError(SerlaqError):
    """An audio file cannot be decoded or holds no usable signal."""


class DataError(SerlaqError):
    """A corpus cannot be used: missing directory, no clips, unparsable file names."""


class ConfigError(SerlaqError, ValueError):
    """A config file or CLI override is invalid; the message names the key."""


def audio_formats() -> str:
    """The formats the native decoder reads, by name ("WAV, FLAC, OGG/Vorbis, MP3 or AIFF")."""
    from serlaq import _native

    names = list(_native.AUDIO_FORMATS)
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


# symphonia's short format names -> the names users know
_FORMAT_NAMES = {"wave": "WAV", "aiff": "AIFF", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3"}


def plain_audio_error(message: str, verbose: bool = False) -> str:
    """A decoder's one-line error in plain words; `verbose` keeps the decoder's own detail.

    "x.txt: cannot decode audio (format: unknown (extension .txt); no decodable audio
    stream found: unsupported feature: core (probe): ...)" becomes "x.txt: cannot decode
    audio: not a WAV, FLAC, OGG/Vorbis, MP3 or AIFF file". Messages of other kinds pass
    unchanged (they are plain already).
    """
    import re

    if verbose:
        return message
    m = re.match(r"^(?P<src>.*): cannot decode audio \(format: (?P<fmt>.*?); (?P<detail>.*)\)$", message)
    if m:
        src, fmt, detail = m["src"], m["fmt"], m["detail"]
        if "no decodable audio stream" in detail or fmt.startswith("unknown"):
            what = f"not a {audio_formats()} file, or damaged at its start"
        elif codec := re.search(r"unsupported codec (\S+?):", detail):
            kind = _FORMAT_NAMES.get(fmt.replace(" (detected)", ""), fmt.replace(" (detected)", "").upper())
            what = f"a {kind} file in an encoding serlaq does not decode (codec {codec[1]}): convert it to PCM WAV or FLAC"
        else:
            kind = _FORMAT_NAMES.get(fmt.replace(" (detected)", ""), fmt.replace(" (detected)", "").upper())
            what = f"a {kind} file serlaq cannot read"
        return f"{src}: cannot decode audio: {what} (--verbose shows the decoder's message)"
    m = re.match(r"^(?P<src>.*): corrupt audio \(decode error at (?P<at>[0-9.]+) s: .*\)$", message)
    if m:
        return f"{m['src']}: corrupt audio: the data is damaged at {m['at']} s (--verbose shows the decoder's message)"
    return message
