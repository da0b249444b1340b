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


def plain_audio_error(message: str, verbose: bool = False) -> str:
    """A decoder's one-line error in plain words (the core's one translation, which
    `serlaq-rt` applies too); `verbose` keeps the decoder's own detail."""
    from serlaq import _native

    return _native.one_line(message) if verbose else _native.plain_error(message)
