"""Rust features vs the torch reference on every clip of the real corpora, and their speed.

    python benchmarks/bench_parity.py --data-root /work/shared/datasets

1. Parity (issue 10's acceptance criterion): every clip of each corpus is decoded once
   (`_native.load_audio`, the one decoder/resampler both sides use) and goes through the
   torch `FeatureExtractor` (training path) and the Rust `FeaturePlan` (runtime path) for
   each preset. Per corpus and preset it prints the largest difference after
   standardization (divided by each feature's std over the corpus's torch features, as a
   model's input layer does) beside the 1e-3 target, and the largest raw relative
   difference per block (relative to the block's largest magnitude in that clip).
2. Speed, one thread (`torch.set_num_threads(1)`, `RAYON_NUM_THREADS=1`), on the first
   `--time-clips` clips of `--time-corpus`, alternating the pipelines clip by clip so that
   machine load hits all alike: decode (native), Rust features, torch features, and
   `--librosa` the librosa recipe's load + features (the reference point of the 25x
   target). Medians in ms per clip.
"""

from __future__ import annotations

import os

os.environ.setdefault("RAYON_NUM_THREADS", "1")
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from serlaq import _native  # noqa: E402
from serlaq.features import FeatureConfig, FeatureExtractor  # noqa: E402

TARGET = 1e-3


def clips_of(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in {".wav", ".flac", ".ogg", ".mp3"})


def parity(paths: list[Path], cfg: FeatureConfig) -> dict[str, float | str]:
    ext = FeatureExtractor(cfg).eval()
    plan = _native.FeaturePlan(json.dumps(cfg.model_dump(mode="json")))
    ref, got = [], []
    with torch.inference_mode():
        for p in paths:
            wave = _native.load_audio(str(p), cfg.sample_rate, cfg.min_samples)
            ref.append(ext(torch.from_numpy(wave)).numpy())
            got.append(plan.features(wave))
    a, b = np.stack(ref).astype(np.float64), np.stack(got).astype(np.float64)
    std = a.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    gap = np.abs(a - b) / std
    clip, feat = np.unravel_index(int(np.argmax(gap)), gap.shape)
    names = cfg.feature_names()
    rel = 0.0
    for key, sl in cfg.block_slices().items():
        if key in ("mfcc", "chroma", "mel") or sl.stop == sl.start:  # aliases; empty blocks (n_chroma 0)
            continue
        scale = np.abs(a[:, sl]).max(axis=1, keepdims=True) + 1e-12
        rel = max(rel, float(np.max(np.abs(a[:, sl] - b[:, sl]) / scale)))
    return {
        "clips": len(paths),
        "dim": cfg.dim,
        "max_standardized": float(gap.max()),
        "worst": f"{names[feat]} in {paths[clip].name}",
        "max_block_relative": rel,
    }


def librosa_recipe(path: Path) -> np.ndarray:
    import librosa

    sig, sr = librosa.load(str(path), sr=22050)
    stft = np.abs(librosa.stft(sig))
    mfcc = np.mean(librosa.feature.mfcc(y=sig, sr=sr, n_mfcc=40).T, axis=0)
    chroma = np.mean(librosa.feature.chroma_stft(S=stft, sr=sr).T, axis=0)
    mel = np.mean(librosa.feature.melspectrogram(y=sig, sr=sr).T, axis=0)
    return np.concatenate([mfcc, chroma, mel])


def speed(paths: list[Path], cfg: FeatureConfig, with_librosa: bool, warmup: int = 5) -> dict[str, float]:
    torch.set_num_threads(1)
    ext = FeatureExtractor(cfg).eval()
    plan = _native.FeaturePlan(json.dumps(cfg.model_dump(mode="json")))
    times: dict[str, list[float]] = {"decode": [], "rust_features": [], "torch_features": [], "rust_wav_to_features": []}
    if with_librosa:
        times["librosa_wav_to_features"] = []

    def rust_wav(p: Path) -> np.ndarray:
        return plan.features(_native.load_audio(str(p), cfg.sample_rate, cfg.min_samples))

    with torch.inference_mode():
        for k, p in enumerate(paths):
            wave = _native.load_audio(str(p), cfg.sample_rate, cfg.min_samples)
            t = torch.from_numpy(wave)
            steps = [
                ("decode", lambda: _native.load_audio(str(p), cfg.sample_rate, cfg.min_samples)),
                ("rust_features", lambda: plan.features(wave)),
                ("torch_features", lambda: ext(t)),
                ("rust_wav_to_features", lambda: rust_wav(p)),
            ]
            if with_librosa:
                steps.append(("librosa_wav_to_features", lambda: librosa_recipe(p)))
            order = steps if k % 2 == 0 else steps[::-1]
            for name, fn in order:
                t0 = time.perf_counter()
                fn()
                dt = time.perf_counter() - t0
                if k >= warmup:
                    times[name].append(dt * 1e3)
    return {name: statistics.median(v) for name, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", type=Path, default=Path("/work/shared/datasets"))
    ap.add_argument("--corpora", nargs="+", default=["emodb", "emodb-2s"])
    # the paper's, the old default, and what ships: `serlaq fit`'s default and the `general` model's
    ap.add_argument("--presets", nargs="+", default=["paper", "rich", "portable-trimmed", "portable-trimmed-floor"])
    ap.add_argument("--time-corpus", default="emodb-2s")
    ap.add_argument("--time-clips", type=int, default=200)
    ap.add_argument("--no-librosa", action="store_true", help="skip the librosa recipe timing")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    report: dict[str, object] = {"parity": {}, "speed": {}}
    print(f"parity: max |rust - torch| / std over the corpus (target {TARGET:g})")
    for corpus in args.corpora:
        paths = clips_of(args.data_root / corpus)
        for preset in args.presets:
            r = parity(paths, FeatureConfig(preset=preset))
            report["parity"][f"{corpus}/{preset}"] = r  # type: ignore[index]
            ok = "met" if r["max_standardized"] < TARGET else "MISSED"
            print(
                f"  {corpus:<10} {preset:<6} {r['clips']:>4} clips {r['dim']:>3}-d  "
                f"standardized {r['max_standardized']:.2e} ({ok}; worst {r['worst']})  "
                f"block-relative {r['max_block_relative']:.2e}",
                flush=True,
            )

    paths = clips_of(args.data_root / args.time_corpus)[: args.time_clips]
    print(f"\nspeed: {len(paths)} clips of {args.time_corpus}, one thread, median ms per clip")
    for preset in args.presets:
        s = speed(paths, FeatureConfig(preset=preset), with_librosa=not args.no_librosa and preset == "paper")
        report["speed"][preset] = s  # type: ignore[index]
        line = "  ".join(f"{k} {v:.3f}" for k, v in s.items())
        print(f"  {preset:<6} {line}")
        print(f"         rust features {s['torch_features'] / s['rust_features']:.1f}x faster than torch features"
              f" (target >= 5x)")
        if "librosa_wav_to_features" in s:
            print(f"         rust WAV->features {s['librosa_wav_to_features'] / s['rust_wav_to_features']:.1f}x faster"
                  f" than the librosa recipe (target >= 25x for the whole WAV->label path)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
