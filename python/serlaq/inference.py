"""Batch inference over many audio files: finding them, and decoding + features on the cores.

Only decoding and feature extraction are spread over processes; the packed MLP then runs
once over the whole batch in the calling process (one batched native GEMM per layer).
A bad file becomes an error string for that file and never stops the batch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from serlaq.runtime import FileFailure, LaqModel, Prediction


# Starting a worker process costs an import of torch (about a second); below this many files
# per worker, extracting in the calling process is faster.
MIN_FILES_PER_WORKER = 64


def find_audio_files(inputs: Iterable[str | os.PathLike[str]]) -> tuple[list[str], list[tuple[str, str]]]:
    """Expand files and directories (searched recursively) into audio file paths.

    A directory is searched for the suffixes corpus discovery uses; a file named explicitly
    is always tried, whatever its suffix. Paths are kept as given (relative stays relative)
    and each file comes once. Returns (files, errors): errors are (input, message) for inputs that do not exist or
    directories that hold no audio. Files under one directory come in sorted order.
    """
    from serlaq.data.corpora import AUDIO_SUFFIXES

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
    # a file named twice (or named and inside a named directory) is predicted once
    return list(dict.fromkeys(files)), errors


def resolve_workers(workers: int | None, n_files: int) -> int:
    """How many processes to use: explicit `workers` wins; None means all cores, if worth it."""
    if workers is not None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        return max(1, min(workers, n_files))
    cores = os.cpu_count() or 1
    return max(1, min(cores, n_files // MIN_FILES_PER_WORKER))


def iter_features(
    model: LaqModel, paths: Sequence[str], workers: int | None = None
) -> Iterator[tuple[int, np.ndarray | None, str | None]]:
    """(index, raw feature vector, None) or (index, None, one-line error) per path, in order."""
    from serlaq.runtime import describe_error

    n_workers = resolve_workers(workers, len(paths))
    if n_workers <= 1:
        for i, p in enumerate(paths):
            try:
                yield i, model.features_from_file(p), None
            except Exception as exc:  # noqa: BLE001 - any decoder failure is this file's error
                yield i, None, describe_error(exc, p)
        return

    indexed = list(enumerate(paths))
    # a few chunks per worker keeps them busy without a round trip per file, and small
    # chunks let results stream out in order while later files are still being decoded
    size = max(1, min(32, math.ceil(len(indexed) / (n_workers * 4))))
    chunks = [indexed[k : k + size] for k in range(0, len(indexed), size)]
    cfg = model.feature_config.model_dump(mode="json")
    # spawn, not fork: a forked child inherits torch's thread pools in an unusable state
    with ProcessPoolExecutor(
        max_workers=n_workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(cfg,)
    ) as pool:
        for part in pool.map(_extract_chunk, chunks):
            yield from part


def predict_inputs(
    model: LaqModel, inputs: Iterable[str | os.PathLike[str]], workers: int | None = None, top_k: int | None = None
) -> Iterator[Prediction | FileFailure]:
    """What `serlaq predict` runs: inputs that are not audio come first as failures, then
    one result per audio file found, streamed in order."""
    from serlaq.runtime import FileFailure

    files, errors = find_audio_files(inputs)
    for item, message in errors:
        yield FileFailure(item, message)
    yield from model.iter_files(files, workers=workers, top_k=top_k)


def result_line(result: Prediction) -> str:
    """`path<TAB>label<TAB>confidence`, then `label:probability` for the other top-k labels."""
    cols = [result.path or "-", result.label, f"{result.confidence:.4f}"]
    cols += [f"{label}:{p:.4f}" for label, p in result.top_k[1:]]
    return "\t".join(cols)


# --- worker side (module level so spawned processes can import it) ----------------------

_WORKER: dict[str, Any] = {}


def _init_worker(cfg: dict[str, Any]) -> None:
    import torch

    from serlaq.features import FeatureConfig, FeatureExtractor

    # the processes are the parallelism; intra-op threads would oversubscribe the cores
    torch.set_num_threads(1)
    config = FeatureConfig.model_validate(cfg)
    _WORKER["config"] = config
    _WORKER["extractor"] = FeatureExtractor(config).eval()


def _extract_chunk(chunk: list[tuple[int, str]]) -> list[tuple[int, np.ndarray | None, str | None]]:
    import torch

    from serlaq.data.audio import load_audio
    from serlaq.runtime import describe_error

    config, extractor = _WORKER["config"], _WORKER["extractor"]
    out: list[tuple[int, np.ndarray | None, str | None]] = []
    for i, path in chunk:
        try:
            wave = load_audio(Path(path), config.sample_rate, min_samples=config.min_samples)
            with torch.inference_mode():
                vec = extractor(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)))
            out.append((i, vec.numpy().astype(np.float32, copy=False).reshape(-1), None))
        except Exception as exc:  # noqa: BLE001 - reported per file
            out.append((i, None, describe_error(exc, path)))
    return out
