"""Which files a prediction or an evaluation runs on, and on how many threads: the
rules of `serlaq_core::runtime::files`, the one definition `serlaq-rt` uses too."""

from __future__ import annotations

import os
from collections.abc import Iterable

from serlaq import _native

#: The extensions a directory is searched for: the formats the native decoder reads.
AUDIO_SUFFIXES: frozenset[str] = frozenset(_native.AUDIO_SUFFIXES)


def find_audio_files(inputs: Iterable[str | os.PathLike[str]]) -> tuple[list[str], list[tuple[str, str]]]:
    """Expand files and directories (searched recursively) into audio file paths.

    A directory is searched for `AUDIO_SUFFIXES` (its files sorted); a file named
    explicitly is always tried, whatever its suffix. Paths are written as `pathlib` writes
    them and each file comes once. Returns (files, errors): errors are (input, one-line
    message) for inputs that do not exist and directories that hold no audio.
    """
    return _native.find_audio_files([os.fspath(p) for p in inputs])


def resolve_threads(workers: int | None, n_files: int) -> int:
    """Native threads for a batch: explicit `workers` wins; None means every core."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    return _native.resolve_threads(workers, n_files)
