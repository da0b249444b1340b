"""Cold start of the standalone binary: `serlaq-rt predict model.laq clip.wav` and
`serlaq-rt info model.laq` in fresh processes, wall time (median) and peak RSS
(ru_maxrss of the child: see `peak_rss`). Issue 10's target: 20 ms, 10 MB.

    cargo build --release -p serlaq-rt
    python benchmarks/bench_rt.py [--model M.laq] [--clip C.wav] [--repeat 10] [--json]

Without --model a random model of the default shape (paper features, 180 -> 256 -> 512
-> 64 -> 7, 1-4 bits: the size of a default-compressed `model.laq`) is written; without
--clip a 2-s 16 kHz mono PCM16 tone (an emodb-2s clip's length and rate). Also runs the
same with the clip at 44.1 kHz stereo (decode + resample + downmix cost), and a bare
`serlaq-rt --version` (process start and exit, nothing loaded).

`--segments-minutes M` adds `serlaq-rt predict --segments --format jsonl` (2 s windows,
1 s hop, VAD on) on an M-minute 16 kHz mono recording (bench_segments.py's voiced blocks
and pauses), pinned to one core (`taskset -c 0` when it exists); its RSS is also given
above an idle `serlaq-rt info model.laq` (model loaded). Issue 13's target for 60 min:
3.6 s (1000x real time) and 100 MB above idle.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TARGET = {"wall_ms": 20.0, "rss_mb": 10.0}


def binary(arg: str | None) -> str:
    for cand in ([Path(arg)] if arg else []) + [ROOT / "target" / "release" / "serlaq-rt"]:
        if cand.is_file():
            return str(cand)
    found = shutil.which("serlaq-rt")
    if found:
        return found
    sys.exit("serlaq-rt is not built: cargo build --release -p serlaq-rt")


def fresh(argv: list[str], repeat: int) -> dict[str, float]:
    """Median (and min) wall ms of `argv` run `repeat` times after one warm-up run (binary
    and files in the page cache), median CPU ms (user + system: what the run costs when
    the machine is shared), and its peak RSS in MB (`peak_rss`)."""
    walls, cpus = [], []
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        err = proc.stderr.read().decode() if proc.stderr else ""
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {err}")
        if i:
            walls.append(wall * 1000.0)
            cpus.append((usage.ru_utime + usage.ru_stime) * 1000.0)
    rss, how = peak_rss(argv)
    return {
        "wall_ms": statistics.median(walls),
        "wall_min_ms": min(walls),
        "cpu_ms": statistics.median(cpus),
        "rss_mb": rss,
        "rss_by": how,
    }


def peak_rss(argv: list[str], repeat: int = 3) -> tuple[float, str]:
    """The largest peak RSS (MB) of `repeat` runs.

    `ru_maxrss` of a child forked by this Python process includes this process's own
    high-water mark at the child's exec (Linux keeps the larger of the old and new image),
    so a 5 MB binary reads as ~50 MB. The child is therefore started by GNU time (a 1 MB
    process) when it is installed, which reports the child's own ru_maxrss; otherwise the
    wait4 figure is given, marked as an upper bound.
    """
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").is_file() else None)
    out = []
    for _ in range(repeat):
        if gnu_time:
            r = subprocess.run([gnu_time, "-f", "maxrss_kb=%M", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            kb = [ln for ln in r.stderr.splitlines() if ln.startswith("maxrss_kb=")]
            if r.returncode == 0 and kb:
                out.append(int(kb[-1].split("=")[1]) / 1024.0)
                continue
            gnu_time = None
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(proc.pid, 0)
        out.append(usage.ru_maxrss / 1024.0)
    return max(out), ("GNU time (%M)" if gnu_time else "wait4 (upper bound: includes the launcher)")


def write_clip(path: Path, rate: int, channels: int = 1, seconds: float = 2.0) -> Path:
    t = np.arange(int(rate * seconds)) / rate
    x = 0.3 * np.sin(2 * np.pi * 220.0 * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
    x += 0.01 * np.random.default_rng(0).standard_normal(t.size)
    frames = np.repeat(x[:, None], channels, axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((frames * 32767).astype("<i2").tobytes())
    return path


def write_model(path: Path) -> Path:
    """A random default-shaped model (the weights do not matter for timing)."""
    from serlaq import _native
    from serlaq.feature_config import FeatureConfig

    cfg = FeatureConfig()
    labels = ["angry", "boredom", "disgust", "fear", "happy", "neutral", "sad"]
    dims = [cfg.dim, 256, 512, 64, len(labels)]
    bits = [1, 2, 1, 4]
    rng = np.random.default_rng(0)
    layers = []
    for i, b in enumerate(bits):
        rows, cols = dims[i + 1], dims[i]
        binary_ = b == 1
        layers.append(
            {
                "name": f"net.{3 * i}",
                "bits": b,
                "quantizer": "binary" if binary_ else "affine",
                "codes": rng.integers(0, 2**b, (rows, cols), dtype=np.uint8),
                "scale": np.array([0.05], np.float32),
                "zero": np.array([0.5 if binary_ else 2 ** (b - 1)], np.float32),
                "bias": rng.normal(0, 0.1, rows).astype(np.float32),
            }
        )
    meta = {
        "serlaq_version": "bench",
        "labels": labels,
        "features": cfg.model_dump(mode="json"),
        "architecture": {"type": "mlp", "input_dim": cfg.dim, "hidden": dims[1:-1], "activation": "relu", "num_classes": len(labels)},
        "normalization": {"mean": "norm.mean", "std": "norm.std"},
    }
    tensors = {"norm.mean": np.zeros(cfg.dim, np.float32), "norm.std": np.ones(cfg.dim, np.float32)}
    _native.write_laq(str(path), json.dumps(meta), layers, tensors)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path)
    ap.add_argument("--clip", type=Path)
    ap.add_argument("--binary", help="serlaq-rt to run (default: target/release/serlaq-rt)")
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--segments-minutes", type=float, default=0.0, help="also time predict --segments on a recording this long")
    ap.add_argument("--segments-repeat", type=int, default=3)
    args = ap.parse_args()
    exe = binary(args.binary)
    with tempfile.TemporaryDirectory(prefix="bench-rt-") as tmp:
        work = Path(tmp)
        model = str(args.model or write_model(work / "model.laq"))
        clip = str(args.clip or write_clip(work / "clip16k.wav", 16000))
        clip44 = str(write_clip(work / "clip44k-stereo.wav", 44100, channels=2))
        runs = {
            "serlaq-rt --version": [exe, "--version"],
            "serlaq-rt info model.laq": [exe, "info", model],
            "serlaq-rt predict model.laq clip.wav": [exe, "predict", model, clip],
            "serlaq-rt predict (44.1 kHz stereo)": [exe, "predict", model, clip44],
        }
        figures = {name: fresh(argv, args.repeat) for name, argv in runs.items()}
        if args.segments_minutes > 0:
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from bench_segments import write_recording

            rec = work / "recording.wav"
            seconds = write_recording(rec, args.segments_minutes)
            pin = ["taskset", "-c", "0"] if shutil.which("taskset") else []
            name = f"serlaq-rt predict --segments ({args.segments_minutes:g} min, 1 core)"
            f = fresh([*pin, exe, "predict", model, str(rec), "--segments", "--format", "jsonl"], args.segments_repeat)
            f["audio_s"] = seconds
            f["realtime_x"] = seconds / (f["wall_ms"] / 1000.0)
            f["rss_above_idle_mb"] = f["rss_mb"] - figures["serlaq-rt info model.laq"]["rss_mb"]
            figures[name] = f
    figures_meta = {"binary": exe, "model": model if args.model else "random default-shaped", "repeat": args.repeat}
    if args.json:
        print(json.dumps({"runs": figures, "target": TARGET, **figures_meta}, indent=2))
        return
    print(f"cold start, fresh processes (median wall of {args.repeat}, max peak RSS); target {TARGET['wall_ms']:.0f} ms / {TARGET['rss_mb']:.0f} MB")
    for name, f in figures.items():
        print(f"  {name:<40} {f['wall_ms']:7.2f} ms wall (min {f['wall_min_ms']:6.2f})  {f['cpu_ms']:6.2f} ms cpu  {f['rss_mb']:6.2f} MB")
        if "realtime_x" in f:
            print(f"  {'':<40} {f['audio_s']:.0f} s of audio: {f['realtime_x']:.0f}x real time, {f['rss_above_idle_mb']:.2f} MB above idle")
    print(f"  peak RSS measured by {next(iter(figures.values()))['rss_by']}; load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
