"""Deployment: WAV -> label with the native runtime, against serlaq's torch feature path and
the librosa + scikit-learn recipe, measured in one run (issue 10's acceptance).

    python benchmarks/bench_inference.py --data-dir ../shared/datasets/emodb-2s \
        [--batch-dir ../shared/datasets/emodb] [--model M.laq] [--limit N] [--install-size]

1. model: `--model`, or `serlaq fit` (the default config, default compression) on the
   corpus at `--seed`, whose `model.laq` is the runtime's and `model.ckpt` the torch side's;
2. warm, one thread, clip by clip with the three pipelines interleaved on every clip (so
   machine load hits all alike): `LaqModel.predict(path)` (Rust decode, features, packed
   MLP); serlaq's torch path (`serlaq.data.audio.load_audio` + the torch `FeatureExtractor`
   + the packed MLP); the recipe (`librosa.load(sr=22050)`, means of mfcc(40),
   chroma_stft, melspectrogram, then a scikit-learn `MLPClassifier` trained on the recipe's
   features of the same train split). Medians over clips, after `--warmup` clips;
3. cold: fresh processes of `serlaq predict model.laq clip.wav` and of
   `serlaq-rt predict` (if built), wall time and peak RSS (`wait4`), beside
   `python -c "import torch, torchaudio"` measured the same way;
4. batch: `predict_files` over `--batch-dir` with 1 and 2 native threads;
5. odd rates: 2-s WAVs at 44101, 22051, 7999 and 192000 Hz, each predicted in a fresh
   `serlaq predict` process and turned into training features (`load_audio` + the torch
   extractor) in a fresh process: wall and peak RSS;
6. `--install-size`: a fresh venv with `pip install .` (the runtime, no extras): its
   site-packages on disk.
Every figure is printed beside the baseline it is compared with, as a ratio from this run.
"""

from __future__ import annotations

import os

# one thread everywhere, before numpy / torch / the native module start their pools
for _var in ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ODD_RATES = (44101, 22051, 7999, 192000)


def median_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1000.0


# --- 1. the model ---------------------------------------------------------------------------


def fit_default(data_dir: Path, seed: int, work: Path) -> tuple[Path, Path, list[int]]:
    """`serlaq fit` with the default config and compression: (model.laq, model.ckpt, train indices)."""
    from serlaq.config import RunConfig
    from serlaq.training import fit

    config = RunConfig.model_validate({
        "seed": seed, "name": "bench", "out_dir": str(work),
        "data": {"dataset": "auto", "data_dir": str(data_dir), "cache_dir": str(work / "cache")},
        "trainer": {"enable_progress_bar": False},
        "laq": {},
    })
    result = fit(config)
    assert result is not None
    from serlaq.data.datamodule import SERDataModule

    dm = SERDataModule.from_checkpoint(result.checkpoint)
    dm.setup()
    return result.run_dir / "model.laq", result.checkpoint, [int(i) for i in dm.split_indices("train")]


# --- 2. the three pipelines, one clip at a time -----------------------------------------------


class TorchPath:
    """serlaq's training-side features: native decode + resample, the torch extractor, then
    the same packed MLP (so only the feature code differs from the runtime)."""

    def __init__(self, model: Any) -> None:
        import torch

        from serlaq.data.audio import load_audio
        from serlaq.features import FeatureExtractor

        torch.set_num_threads(1)
        self.torch, self.load, self.model = torch, load_audio, model
        self.cfg = model.feature_config
        self.extractor = FeatureExtractor(self.cfg).eval()

    def __call__(self, path: str) -> str:
        wave = self.load(path, self.cfg.sample_rate, min_samples=self.cfg.min_samples)
        with self.torch.inference_mode():
            vec = self.extractor(self.torch.from_numpy(wave)).numpy()
        return self.model.predict_features(vec).label


def recipe_features(path: str) -> np.ndarray:
    """The widely used recipe: librosa.load at 22050 Hz, means of mfcc(40), chroma_stft (on
    |STFT|) and melspectrogram over time."""
    import librosa

    sig, sr = librosa.load(path, sr=22050)
    stft = np.abs(librosa.stft(sig))
    mfcc = np.mean(librosa.feature.mfcc(y=sig, sr=sr, n_mfcc=40).T, axis=0)
    chroma = np.mean(librosa.feature.chroma_stft(S=stft, sr=sr).T, axis=0)
    mel = np.mean(librosa.feature.melspectrogram(y=sig, sr=sr).T, axis=0)
    return np.hstack([mfcc, chroma, mel])


def recipe_classifier(paths: list[str], labels: list[str], train: list[int]) -> Any:
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.stack([recipe_features(paths[i]) for i in train])
    y = [labels[i] for i in train]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = make_pipeline(StandardScaler(), MLPClassifier((256, 512, 64), max_iter=300, early_stopping=True, random_state=0))
        clf.fit(x, y)
    return clf


def warm(model: Any, paths: list[str], torch_path: TorchPath, clf: Any, warmup: int) -> dict[str, float]:
    times: dict[str, list[float]] = {"runtime": [], "torch": [], "recipe": []}
    agree = 0
    for k, p in enumerate(paths):
        t0 = time.perf_counter()
        a = model.predict(p).label
        t1 = time.perf_counter()
        b = torch_path(p)
        t2 = time.perf_counter()
        clf.predict(recipe_features(p)[None, :])
        t3 = time.perf_counter()
        agree += a == b
        if k >= warmup:
            times["runtime"].append(t1 - t0)
            times["torch"].append(t2 - t1)
            times["recipe"].append(t3 - t2)
    out = {name: median_ms(v) for name, v in times.items()}
    out["labels_equal_pct"] = 100.0 * agree / len(paths)
    return out


# --- 3. and 5. fresh processes ----------------------------------------------------------------


def fresh(argv: list[str], repeat: int = 5, env: dict[str, str] | None = None) -> dict[str, float]:
    """Median wall seconds and max peak RSS (MB) of `argv` run `repeat` times."""
    walls, rss = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - t0)
        rss.append(usage.ru_maxrss / 1024.0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return {"wall_ms": statistics.median(walls) * 1000.0, "rss_mb": max(rss)}


def serlaq_rt() -> str | None:
    for cand in (ROOT / "target" / "release" / "serlaq-rt", shutil.which("serlaq-rt")):
        if cand and Path(cand).is_file():
            return str(cand)
    return None


def write_tone(path: Path, rate: int, seconds: float = 2.0) -> Path:
    import wave

    t = np.arange(int(rate * seconds)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220.0 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    return path


TRAINING_SIDE = """
import sys, torch
from serlaq.data.audio import load_audio
from serlaq.features import FeatureConfig, FeatureExtractor
cfg = FeatureConfig()
x = FeatureExtractor(cfg)(torch.from_numpy(load_audio(sys.argv[1], cfg.sample_rate)))
assert x.shape == (cfg.dim,)
"""


def install_size(work: Path) -> float:
    venv = work / "rt-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    base = _du(venv)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], check=True)
    return (_du(venv) - base) / 1e6


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


# --- the run --------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True, help="corpus of the warm and cold runs (emodb-2s)")
    ap.add_argument("--batch-dir", type=Path, default=None, help="corpus of the batch run (default: --data-dir)")
    ap.add_argument("--model", type=Path, default=None, help="a .laq to use instead of fitting one")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="clips in the warm run (0: all)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--install-size", action="store_true", help="also measure a runtime-only install (a minute)")
    args = ap.parse_args()

    import serlaq
    from serlaq.data.corpora import discover

    clips = discover(args.data_dir, "auto")
    paths, labels = [str(c.path) for c in clips], [c.label for c in clips]
    work = Path(tempfile.mkdtemp(prefix="serlaq-bench-inference-"))
    try:
        if args.model is None:
            laq_path, _, train = fit_default(args.data_dir, args.seed, work)
        else:
            laq_path, train = args.model, list(range(0, len(paths), 2))
        model = serlaq.load(laq_path)
        print(f"model: {laq_path} ({model.size_bytes / 1000:.1f} KB, {model.avg_bits:.2f} avg bits, {model.input_dim}-d features)")

        order = np.random.default_rng(args.seed).permutation(len(paths))
        warm_paths = [paths[i] for i in (order[: args.limit] if args.limit else order)]
        res = warm(model, warm_paths, TorchPath(model), recipe_classifier(paths, labels, train), args.warmup)
        print(f"\nwarm WAV -> label, one thread, {len(warm_paths)} clips of {args.data_dir.name} (median ms/clip)")
        print(f"  serlaq runtime (Rust)          {res['runtime']:8.3f}")
        print(f"  serlaq torch feature path      {res['torch']:8.3f}   runtime is {res['torch'] / res['runtime']:5.1f}x faster (target >= 5x)")
        print(f"  librosa + scikit-learn recipe  {res['recipe']:8.3f}   runtime is {res['recipe'] / res['runtime']:5.1f}x faster (target >= 25x)")
        print(f"  same label from both serlaq paths on {res['labels_equal_pct']:.1f}% of clips")

        clip = warm_paths[0]
        cli = shutil.which("serlaq") or sys.executable
        cli_argv = [cli, "predict", str(laq_path), clip] if cli != sys.executable else [cli, "-m", "serlaq.cli", "predict", str(laq_path), clip]
        cold = fresh(cli_argv)
        torch_import = fresh([sys.executable, "-c", "import torch, torchaudio"], repeat=3)
        print(f"\ncold: a fresh process predicting one clip (median of 5 wall, max peak RSS)")
        print(f"  serlaq predict                 {cold['wall_ms']:8.1f} ms {cold['rss_mb']:7.1f} MB   (target 150 ms, 80 MB)")
        rt = serlaq_rt()
        if rt:
            crt = fresh([rt, "predict", str(laq_path), clip])
            print(f"  serlaq-rt predict              {crt['wall_ms']:8.1f} ms {crt['rss_mb']:7.1f} MB   (target 20 ms, 10 MB)")
        else:
            print("  serlaq-rt predict              not built (cargo build --release -p serlaq-rt)")
        print(f"  python -c 'import torch, torchaudio' {torch_import['wall_ms']:6.1f} ms {torch_import['rss_mb']:7.1f} MB"
              f"   serlaq predict is {torch_import['wall_ms'] / cold['wall_ms']:.1f}x faster than the import alone")

        batch_dir = args.batch_dir or args.data_dir
        batch = [str(c.path) for c in discover(batch_dir, "auto")]
        model.predict_files(batch[:20], workers=1)
        speed = {}
        for threads in (1, 2):
            t0 = time.perf_counter()
            out = model.predict_files(batch, workers=threads)
            speed[threads] = len(batch) / (time.perf_counter() - t0)
            assert all(r.ok for r in out)
        print(f"\nbatch: predict_files over {len(batch)} clips of {batch_dir.name}")
        print(f"  1 thread  {speed[1]:8.1f} clips/s")
        print(f"  2 threads {speed[2]:8.1f} clips/s   {speed[2] / speed[1]:.2f}x the throughput of 1 (target >= 1.7x)")

        print("\nodd rates: a 2-s WAV in a fresh process (wall ms, peak RSS MB; targets 1000 ms, 100 MB)")
        base_train = fresh([sys.executable, "-c", "import torch, serlaq.features, serlaq.data.audio"], repeat=1)
        for rate in ODD_RATES:
            wav = write_tone(work / f"tone_{rate}.wav", rate)
            a = fresh([*cli_argv[:-1], str(wav)], repeat=1)
            b = fresh([sys.executable, "-c", TRAINING_SIDE, str(wav)], repeat=1)
            print(f"  {rate:>6} Hz  runtime {a['wall_ms']:7.1f} ms {a['rss_mb']:6.1f} MB   training features "
                  f"{b['wall_ms']:7.1f} ms {b['rss_mb']:6.1f} MB (+{b['rss_mb'] - base_train['rss_mb']:.1f} MB over importing torch)")

        if args.install_size:
            mb = install_size(work)
            print(f"\nruntime-only install (fresh venv, pip install .): {mb:.1f} MB on disk (target <= 80 MB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
