"""Clips -> feature matrix, with an on-disk cache and parallel extraction.

Cache entries are one `.npy` per clip at
`cache_dir/features-<config key>/<sha[:2]>/<sha256 of the file>.npy`: the key is the
file's content (not its path or mtime), the feature config and the feature code, so
renamed or copied files hit the cache and an edited file, a changed config or changed code
misses it. "The feature code" is `code_fingerprint()`: the SHA-256 of the source of
`serlaq/features.py`, `serlaq/feature_config.py`, `serlaq/data/audio.py` (decoding and
resampling), the bytes of the native module file (`serlaq._native`, which the audio path
calls), and the torch / torchaudio / numpy versions. Nobody has to remember to bump a
version; `FEATURES_VERSION` stays in the key as a manual override for anything else. Entries are written atomically (temp file + rename) and a
damaged entry is recomputed. Only successful extractions are cached.

Extraction runs in a thread pool: decoding (libsndfile), hashing and the torch ops all
release the GIL, and with one intra-op torch thread per worker the threads do not
oversubscribe the cores (measured faster than worker processes, which pay for
importing torch; see benchmarks/features.py).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from serlaq.data.audio import load_audio
from serlaq.data.corpora import Clip, skip_summary
from serlaq.errors import AudioError, DataError, plain_audio_error
from serlaq.features import FEATURES_VERSION, FeatureConfig, FeatureExtractor

if TYPE_CHECKING:
    from serlaq.config import AugmentConfig

log = logging.getLogger("serlaq.data")


class Extracted(NamedTuple):
    """Features of the usable clips; unpacks as `X, clips, skipped`."""

    X: np.ndarray  # (n_kept, dim) float32, row i belongs to clips[i]
    clips: list[Clip]  # the clips that were kept, in input order
    skipped: list[tuple[Path, str]]  # (path, one-line reason) for each clip left out


# The modules whose code decides the numbers a FeatureConfig produces.
FINGERPRINT_MODULES = ("serlaq.features", "serlaq.feature_config", "serlaq.data.audio", "serlaq._native")


def fingerprint_files() -> list[Path]:
    """The files `code_fingerprint` hashes: the sources (and the native library) of FINGERPRINT_MODULES."""
    files = []
    for name in FINGERPRINT_MODULES:
        module = importlib.import_module(name)
        if getattr(module, "__file__", None) is None:
            raise DataError(f"{name}: has no file to fingerprint the feature cache with")
        files.append(Path(module.__file__))
    return files


_FINGERPRINTS: dict[tuple[tuple[str, int, int], ...], str] = {}


def code_fingerprint() -> str:
    """SHA-256 of the feature code: the bytes of `fingerprint_files()` and the numeric libraries' versions.

    Memoized on each file's (path, size, mtime): hashing the native library (~1 MB) takes
    a few milliseconds, once per process and build.
    """
    import torchaudio

    files = fingerprint_files()
    stamp = tuple((str(f), (st := f.stat()).st_size, st.st_mtime_ns) for f in files)
    if (known := _FINGERPRINTS.get(stamp)) is not None:
        return known
    h = hashlib.sha256()
    for name, f in zip(FINGERPRINT_MODULES, files):
        h.update(name.encode() + b"\0")
        h.update(hashlib.sha256(f.read_bytes()).digest())
    h.update(f"torch {torch.__version__} torchaudio {torchaudio.__version__} numpy {np.__version__}".encode())
    _FINGERPRINTS[stamp] = digest = h.hexdigest()
    return digest


def config_key(cfg: FeatureConfig) -> str:
    """Short hash naming the cache folder of one feature config and the current feature code."""
    body = json.dumps(
        {"v": FEATURES_VERSION, "code": code_fingerprint(), "cfg": cfg.model_dump(mode="json")}, sort_keys=True
    )
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def default_workers() -> int:
    from serlaq.cpus import available_cpus  # affinity, capped by a cgroup CPU quota

    return available_cpus()


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _save_atomic(path: Path, vec: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, vec, allow_pickle=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# np.load parses each .npy header with ast.literal_eval, and CPython 3.11's ast is not
# thread-safe ("SystemError: AST constructor recursion depth mismatch" when two pool
# threads parse at once, seen in CI; CPython gh-106905): the header parse is serialized.
_NPY_LOAD_LOCK = threading.Lock()


class _Worker:
    """Everything one clip needs; shared by the pool's threads (no mutable state)."""

    def __init__(self, cfg: FeatureConfig, cache_root: Path | None) -> None:
        self.cfg = cfg
        self.extractor = FeatureExtractor(cfg).eval()
        self.cache_root = cache_root

    def __call__(self, clip: Clip) -> np.ndarray | AudioError:
        try:
            return self._features(Path(clip.path))
        except AudioError as exc:
            return exc

    def _features(self, path: Path) -> np.ndarray:
        entry = None
        if self.cache_root is not None:
            try:
                digest = file_sha256(path)
            except FileNotFoundError:
                raise AudioError(f"{path}: file not found") from None
            except OSError as exc:
                raise AudioError(f"{path}: cannot read ({exc.strerror or exc})") from None
            entry = self.cache_root / digest[:2] / f"{digest}.npy"
            cached = self._load(entry)
            if cached is not None:
                return cached
        wave = load_audio(path, self.cfg.sample_rate, min_samples=self.cfg.min_samples)
        with torch.inference_mode():
            vec = self.extractor(torch.from_numpy(wave)).numpy().astype(np.float32, copy=False)
        if not np.isfinite(vec).all():
            raise AudioError(f"{path}: features are not finite")
        if entry is not None:
            _save_atomic(entry, vec)
        return vec

    def _load(self, entry: Path) -> np.ndarray | None:
        try:
            with _NPY_LOAD_LOCK:
                vec = np.load(entry, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None  # absent or damaged: recompute
        if vec.shape != (self.cfg.dim,) or vec.dtype != np.float32 or not np.isfinite(vec).all():
            return None
        return vec


def extract_features(
    clips: Sequence[Clip],
    feature_cfg: FeatureConfig,
    cache_dir: str | Path | None,
    workers: int | None = None,
    on_error: str = "fail",
    progress: bool = True,
) -> Extracted:
    """Feature vectors of `clips` (cached under `cache_dir`; None disables the cache).

    `workers`: threads (None = the cores this process may use). `on_error="fail"` raises
    the `AudioError` of the first unusable clip (in input order); `"skip"` leaves such
    clips out, lists them in `.skipped` and logs one summary line. `DataError` if no clip
    is usable.
    """
    if on_error not in ("fail", "skip"):
        raise DataError(f"on_error: expected 'fail' or 'skip', got {on_error!r}")
    clips = list(clips)
    if not clips:
        raise DataError("extract_features: no clips given")
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise DataError(f"workers: expected a positive number, got {workers}")
    cache_root = Path(cache_dir) / f"features-{config_key(feature_cfg)}" if cache_dir else None
    worker = _Worker(feature_cfg, cache_root)

    rows: list[np.ndarray] = []
    kept: list[Clip] = []
    skipped: list[tuple[Path, str]] = []
    # disable=None: a live bar in a terminal only; a log gets no half-drawn bar before its lines
    bar = tqdm(total=len(clips), desc="features", unit="clip", disable=None if progress else True, leave=False)
    # One intra-op thread per worker: small FFTs parallelize badly inside torch, across clips well.
    with _torch_threads(1), bar:
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="serlaq-features") if workers > 1 else None
        try:
            results = pool.map(worker, clips) if pool is not None else map(worker, clips)
            for clip, result in zip(clips, results, strict=True):
                bar.update()
                if isinstance(result, AudioError):
                    if on_error == "fail":
                        raise result
                    skipped.append((Path(clip.path), plain_audio_error(str(result)).removeprefix(f"{clip.path}: ")))
                    continue
                rows.append(result)
                kept.append(clip)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    if skipped:
        log.warning("%s", skip_summary("features", skipped, total=len(clips)))
    if not kept:
        raise DataError(f"no usable clips: all {len(clips)} failed (first: {skipped[0][0]}: {skipped[0][1]})")
    X = np.stack(rows).astype(np.float32, copy=False)
    return Extracted(X, kept, skipped)


class _AugmentWorker(_Worker):
    """Features of one augmented copy of a clip, cached per (file content, augment params, seed, copy)."""

    def __init__(self, cfg: FeatureConfig, cache_root: Path | None, augment: AugmentConfig, seed: int) -> None:
        super().__init__(cfg, cache_root)
        self.augment = augment
        self.seed = seed

    def __call__(self, item: tuple[Clip, int]) -> np.ndarray | AudioError:  # type: ignore[override]
        clip, copy = item
        path = Path(clip.path)
        try:
            digest = file_sha256(path)
        except OSError as exc:
            return AudioError(f"{path}: cannot read ({exc.strerror or exc})")
        from serlaq.data.augment import augmented_copy, cache_name

        entry = self.cache_root / cache_name(digest, self.seed, copy) if self.cache_root is not None else None
        if entry is not None and (cached := self._load(entry)) is not None:
            return cached
        try:
            wave = load_audio(path, self.cfg.sample_rate, min_samples=self.cfg.min_samples)
        except AudioError as exc:
            return exc
        wave = augmented_copy(wave, self.cfg.sample_rate, self.augment, self.seed, digest, copy)
        if wave.shape[0] < self.cfg.min_samples:  # sped up below one analysis window
            wave = np.pad(wave, (0, self.cfg.min_samples - wave.shape[0]))
        with torch.inference_mode():
            vec = self.extractor(torch.from_numpy(wave)).numpy().astype(np.float32, copy=False)
        if not np.isfinite(vec).all():
            return AudioError(f"{path}: features of augmented copy {copy} are not finite")
        if entry is not None:
            _save_atomic(entry, vec)
        return vec


def extract_augmented(
    clips: Sequence[Clip],
    feature_cfg: FeatureConfig,
    augment: AugmentConfig,
    seed: int,
    cache_dir: str | Path | None,
    workers: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Features of `augment.copies` augmented copies of each clip: (copies, len(clips), dim) float32.

    Cached under `cache_dir/features-<config key>/augment-<params key>/`, one file per
    (file content, seed, copy). The clips are ones whose clean features were extracted, so
    a failure here (an unreadable file since then) raises its `AudioError`.
    """
    from serlaq.data.augment import params_key

    clips = list(clips)
    workers = default_workers() if workers is None else int(workers)
    cache_root = (
        Path(cache_dir) / f"features-{config_key(feature_cfg)}" / f"augment-{params_key(augment)}" if cache_dir else None
    )
    worker = _AugmentWorker(feature_cfg, cache_root, augment, seed)
    items = [(clip, copy) for copy in range(1, augment.copies + 1) for clip in clips]
    rows: list[np.ndarray] = []
    bar = tqdm(total=len(items), desc="augment", unit="copy", disable=None if progress else True, leave=False)
    with _torch_threads(1), bar:
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="serlaq-augment") if workers > 1 else None
        try:
            for result in pool.map(worker, items) if pool is not None else map(worker, items):
                bar.update()
                if isinstance(result, AudioError):
                    raise result
                rows.append(result)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
    if not rows:
        return np.zeros((augment.copies, 0, feature_cfg.dim), dtype=np.float32)
    return np.stack(rows).astype(np.float32, copy=False).reshape(augment.copies, len(clips), feature_cfg.dim)
