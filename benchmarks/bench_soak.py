"""Soak: many predictions in one process; resident memory growth and time per call.

    python benchmarks/bench_soak.py                      # 10,000 calls per input kind
    python benchmarks/bench_soak.py --model run/model.laq --calls 2000

Uses only the public runtime API (`serlaq.load`, `.predict(path)`, `.predict_features`),
so it measures whichever runtime is installed. Without --model it first trains the demo
model (`configs/demo.yaml` on a small synthetic corpus, compressed by the run's `laq:`
section) into a temporary folder, in a child process, so that the soak process holds
only what the runtime itself loads. The audio is one generated 2-s, 16-kHz PCM-16 WAV
(so every call decodes, resamples to the model's rate and extracts features); the
feature vectors are fixed random ones of the model's input size.

For each input kind: `--warmup` calls first (caches, allocator pools, thread pools), then
`--calls` timed calls; RSS (from /proc/self/status) is read after the warm-up and after
every 1,000 calls. Printed: RSS growth over the timed calls (target <= 5 MB) and the mean
time per call over the first, middle and last thousand.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

TARGET_MB = 5.0
BLOCK = 1000


def rss_mb() -> float:
    """Current resident set size in MiB (peak RSS where /proc is missing)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)


def write_test_wav(path: Path, seconds: float = 2.0, rate: int = 16000) -> Path:
    """A voiced-like test signal: a 140-Hz harmonic series with vibrato and a little noise."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 140 * (1 + 0.03 * np.sin(2 * math.pi * 5 * t))
    phase = 2 * math.pi * np.cumsum(f0) / rate
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) * 0.2 + 0.01 * rng.normal(size=t.size)
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def train_demo_model(folder: Path) -> Path:
    """Trains the demo model in a child process; returns its .laq path."""
    import subprocess

    subprocess.run([sys.executable, __file__, "--train-to", str(folder)], check=True)
    path = folder / "soak" / "model.laq"
    if not path.is_file():
        raise SystemExit(f"{path}: the demo run wrote no .laq file")
    return path


def _train(folder: Path) -> None:
    from serlaq.config import load_config
    from serlaq.training import fit

    overrides = {
        "data.synthetic.clips_per_class": 12,
        "data.cache_dir": str(folder / "cache"),
        "out_dir": str(folder),
        "name": "soak",
        "train.max_epochs": 20,
        "trainer.enable_progress_bar": False,
    }
    result = fit(load_config(ROOT / "configs" / "demo.yaml", overrides))
    assert result is not None and result.run_dir == folder / "soak"


def soak(name: str, call, calls: int, warmup: int) -> dict:
    for _ in range(warmup):
        call()
    start_rss = rss_mb()
    rss = [start_rss]
    times = np.empty(calls)
    for i in range(calls):
        t0 = time.perf_counter()
        call()
        times[i] = time.perf_counter() - t0
        if (i + 1) % BLOCK == 0:
            rss.append(rss_mb())
    blocks = [times[i : i + BLOCK] for i in range(0, calls, BLOCK)]
    mid = blocks[len(blocks) // 2]
    return {
        "name": name,
        "calls": calls,
        "rss_start": start_rss,
        "rss_end": rss_mb(),
        "rss_max": max(rss),
        "first_ms": 1e3 * blocks[0].mean(),
        "middle_ms": 1e3 * mid.mean(),
        "last_ms": 1e3 * blocks[-1].mean(),
        "p99_ms": 1e3 * float(np.percentile(times, 99)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a .laq model (default: train the demo model first)")
    parser.add_argument("--calls", type=int, default=10_000, help="timed calls per input kind (default 10000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed calls first (default 200)")
    parser.add_argument("--train-to", type=Path, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    if args.train_to is not None:
        _train(args.train_to)
        return 0
    if args.calls < BLOCK:
        parser.error(f"--calls must be at least {BLOCK}")

    import serlaq
    from serlaq import _native

    with tempfile.TemporaryDirectory(prefix="serlaq-soak-") as tmp:
        folder = Path(tmp)
        model_path = args.model or train_demo_model(folder)
        wav = write_test_wav(folder / "soak.wav")
        dim = _native.LaqFile(str(model_path)).layers()[0]["cols"]
        features = np.random.default_rng(1).normal(size=dim).astype(np.float32)
        model = serlaq.load(model_path)
        print(f"soak: {model_path} ({dim}-d input), kernel {_native.kernel()}, pid {os.getpid()}; "
              f"{args.warmup} warm-up + {args.calls:,} timed calls per input")
        results = [
            soak("predict(wav path)", lambda: model.predict(str(wav)), args.calls, args.warmup),
            soak("predict_features(vector)", lambda: model.predict_features(features), args.calls, args.warmup),
        ]
    print()
    print(f"{'input':<26} {'calls':>6} {'RSS start':>10} {'growth':>8} {'max':>8} | "
          f"{'ms/call first':>13} {'middle':>8} {'last':>8} {'p99':>8}")
    worst = 0.0
    for r in results:
        growth = r["rss_end"] - r["rss_start"]
        worst = max(worst, growth)
        print(f"{r['name']:<26} {r['calls']:>6} {r['rss_start']:>8.1f}MB {growth:>+6.2f}MB {r['rss_max']:>6.1f}MB | "
              f"{r['first_ms']:>13.3f} {r['middle_ms']:>8.3f} {r['last_ms']:>8.3f} {r['p99_ms']:>8.3f}")
    print(f"largest RSS growth {worst:+.2f} MB (target <= {TARGET_MB:.0f} MB): {'met' if worst <= TARGET_MB else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
