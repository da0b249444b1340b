"""Which files a prediction or an evaluation runs on, and on how many threads."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from serlaq import _native

#: The extensions a directory is searched for: the formats the native decoder reads.
AUDIO_SUFFIXES: frozenset[str] = frozenset(_native.AUDIO_SUFFIXES)


def find_audio_files(inputs: Iterable[str | os.PathLike[str]]) -> tuple[list[str], list[tuple[str, str]]]:
    """Expand files and directories (searched recursively) into audio file paths.

    A directory is searched for `AUDIO_SUFFIXES`; a file named explicitly is always tried,
    whatever its suffix (the decoder then names its format if it cannot read it). Paths
    are kept as given and each file comes once; files under one directory come sorted.
    Returns (files, errors): errors are (input, one-line message) for inputs that do not
    exist and directories that hold no audio.
    """
    files: list[str] = []
    errors: list[tuple[str, str]] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file())
            if not found:
                exts = ", ".join(sorted(AUDIO_SUFFIXES))
                errors.append((str(item), f"{item}: directory holds no audio files ({exts})"))
            files.extend(found)
        elif p.exists():
            files.append(str(item))
        else:
            errors.append((str(item), f"{item}: no such file or directory"))
    return list(dict.fromkeys(files)), errors


def resolve_threads(workers: int | None, n_files: int) -> int:
    """Native threads for a batch: explicit `workers` wins; None means every core."""
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        return max(1, min(workers, n_files))
    return max(1, min(os.cpu_count() or 1, n_files))
