"""Feature extraction speed: serlaq (torch) vs the librosa recipe, and whole-corpus times.

    python benchmarks/features.py --data-dir ../shared/datasets/emodb
    python benchmarks/features.py --data-dir ../shared/datasets/emodb-2s

Part 1, per clip, one process, one thread each: WAV -> 180 features.
  serlaq: `load_audio` (soundfile + torchaudio-kernel resampling to 22.05 kHz) + `FeatureExtractor`.
  librosa recipe: `librosa.load(sr=22050)` (soxr resampling), `np.abs(librosa.stft)`,
  `mfcc(n_mfcc=40)`, `chroma_stft(S=stft)` (estimates tuning per clip), `melspectrogram`, means.
Part 2, the whole corpus through `extract_features`: serial, threads (the shipped path),
  worker processes (spawn; for comparison only), then a cold and a warm on-disk cache.
"""

from __future__ import annotations

import os

# One thread everywhere, set before numpy/torch load their thread pools: the per-clip
# comparison is one core against one core (multi-threaded BLAS under librosa is also far
# slower, not faster, on a busy 2-core machine).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import multiprocessing as mp
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from serlaq.data.audio import load_audio
from serlaq.data.cache import _Worker, default_workers, extract_features
from serlaq.data.corpora import Clip, discover
from serlaq.features import FeatureConfig, FeatureExtractor


def librosa_recipe(path: Path) -> np.ndarray:
    import librosa

    y, sr = librosa.load(str(path), sr=22050)
    stft = np.abs(librosa.stft(y))
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40).mean(axis=1)
    chroma = librosa.feature.chroma_stft(S=stft, sr=sr).mean(axis=1)
    mel = librosa.feature.melspectrogram(y=y, sr=sr).mean(axis=1)
    return np.concatenate([mfcc, chroma, mel])


def per_clip(clips: list[Clip], repeats: int) -> dict[str, tuple[float, float]]:
    """(wall, CPU) ms per clip, each the best of `repeats` passes: the least disturbed one.

    CPU time (one thread on each side) is the steadier figure on a shared machine.
    """
    cfg = FeatureConfig()
    extractor = FeatureExtractor(cfg)

    def ours_load(c: Clip) -> np.ndarray:
        return load_audio(c.path, cfg.sample_rate, min_samples=cfg.min_samples)

    waves = [ours_load(c) for c in clips]

    def ours_features(i: int) -> None:
        with torch.inference_mode():
            extractor(torch.from_numpy(waves[i]))

    def ours_total(c: Clip) -> None:
        with torch.inference_mode():
            extractor(torch.from_numpy(ours_load(c)))

    jobs = {
        "serlaq decode+resample": lambda: [ours_load(c) for c in clips],
        "serlaq features": lambda: [ours_features(i) for i in range(len(clips))],
        "serlaq total": lambda: [ours_total(c) for c in clips],
        "librosa recipe total": lambda: [librosa_recipe(c.path) for c in clips],
    }
    librosa_recipe(clips[0].path)  # warm-up: librosa's lazy imports and numba JIT
    out = {}
    for name, job in jobs.items():
        wall, cpu = [], []
        for _ in range(repeats):
            t, c = time.perf_counter(), time.process_time()
            job()
            wall.append((time.perf_counter() - t) * 1000 / len(clips))
            cpu.append((time.process_time() - c) * 1000 / len(clips))
        out[name] = (min(wall), min(cpu))
    return out


_PROC_WORKER: _Worker | None = None


def _proc_init() -> None:
    global _PROC_WORKER
    torch.set_num_threads(1)
    _PROC_WORKER = _Worker(FeatureConfig(), None)


def _proc_run(clip: Clip) -> np.ndarray:
    assert _PROC_WORKER is not None
    return _PROC_WORKER(clip)


def corpus_times(clips: list[Clip], workers: int) -> dict[str, float]:
    cfg = FeatureConfig()
    out = {}
    t = time.perf_counter()
    extract_features(clips, cfg, None, workers=1, progress=False)
    out["serial (1 thread)"] = time.perf_counter() - t
    t = time.perf_counter()
    extract_features(clips, cfg, None, workers=workers, progress=False)
    out[f"threads x{workers} (shipped)"] = time.perf_counter() - t
    # Processes: spawn (fork after torch has started its thread pools can hang the child;
    # it did here). Worker start-up (importing torch) is timed apart from the work itself.
    t = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_proc_init) as pool:
        list(pool.map(_proc_run, clips[:workers], chunksize=1))  # every worker started
        started = time.perf_counter()
        list(pool.map(_proc_run, clips, chunksize=8))
        done = time.perf_counter()
    out[f"processes x{workers}, work only"] = done - started
    out[f"processes x{workers}, incl. start-up"] = done - t
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        extract_features(clips, cfg, tmp, workers=workers, progress=False)
        out["cold cache (extract + write)"] = time.perf_counter() - t
        t = time.perf_counter()
        extract_features(clips, cfg, tmp, workers=workers, progress=False)
        out["warm cache (hash + read)"] = time.perf_counter() - t
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/datasets/emodb"))
    ap.add_argument("--dataset", default="auto")
    ap.add_argument("--clips", type=int, default=60, help="clips for the per-clip comparison")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--workers", type=int, default=default_workers())
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    clips = discover(args.data_dir, args.dataset)
    torch.set_num_threads(1)
    sample = clips[:: max(1, len(clips) // args.clips)][: args.clips]
    print(f"corpus: {args.data_dir} ({len(clips)} clips); per-clip sample: {len(sample)} clips; "
          f"cores: {os.cpu_count()}, workers: {args.workers}; python {sys.version.split()[0]}, torch {torch.__version__}")

    pc = per_clip(sample, args.repeats)
    base_wall, base_cpu = pc["librosa recipe total"]
    print(f"\nper clip, WAV -> 180 features, single process, 1 thread (best of {args.repeats} passes)")
    print(f"{'path':<28}{'wall ms':>9}{'vs librosa':>12}{'CPU ms':>9}{'vs librosa':>12}")
    for name, (wall, cpu) in pc.items():
        print(f"{name:<28}{wall:>9.2f}{base_wall / wall:>11.1f}x{cpu:>9.2f}{base_cpu / cpu:>11.1f}x")

    ct = corpus_times(clips, args.workers)
    serial = ct["serial (1 thread)"]
    print(f"\nwhole corpus through extract_features ({len(clips)} clips)")
    print(f"{'mode':<32}{'seconds':>9}{'ms/clip':>9}{'vs serial':>11}")
    for name, s in ct.items():
        print(f"{name:<32}{s:>9.2f}{s * 1000 / len(clips):>9.2f}{serial / s:>10.1f}x")
    print(f"librosa recipe, serial (estimated from part 1): {base_wall * len(clips) / 1000:.1f} s")


if __name__ == "__main__":
    main()
