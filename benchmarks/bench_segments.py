"""Segment timeline throughput and memory on a generated 1-hour 16 kHz mono WAV (issue 13).

    python benchmarks/bench_segments.py [--minutes 60] [--preset paper|rich] [--baseline-windows 300]

Measures, each in a fresh child process pinned to one thread (RAYON_NUM_THREADS=1, one CPU
when `taskset` exists):
- `segment_file` with the defaults (2 s windows, 1 s hop, VAD on): wall time and peak RSS
  (VmHWM) minus the peak RSS of an idle child that imported serlaq and loaded the model;
- the same with `--no-vad` (the model on every window);
- a profile of where the time goes: decoding + resampling alone (`_native.load_audio`), and
  the STFT + pooling of the whole resampled hour as one clip (`FeaturePlan.features`);
- the baseline: `predict` on each 2-s window cut out of the waveform separately (every
  window resampled and framed on its own), timed on `--baseline-windows` windows and
  scaled to the hour's window count.

The recording: 8-s blocks of a voiced-like signal (harmonic tone with vibrato + noise at
speech level), each followed by 4 s of low noise (-70 dBFS), so the VAD gate sees both.
Targets (issue 13): <= 3.6 s for the hour (1000x real time), <= 100 MB above idle.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SR = 16000


def write_recording(path: Path, minutes: float) -> float:
    """Writes the test recording block by block (never whole in memory); returns seconds."""
    rng = np.random.default_rng(0)
    total = int(minutes * 60 * SR)
    block = 12 * SR
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        at = 0
        while at < total:
            n = min(block, total - at)
            t = np.arange(n) / SR
            f0 = 120 + 80 * rng.random()
            phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))) / SR
            voiced = sum(0.3 / k * np.sin(k * phase) for k in range(1, 8)) * (0.5 + 0.5 * np.sin(np.pi * t / 8) ** 2)
            x = np.where(t < 8.0, voiced + 0.01 * rng.standard_normal(n), 3e-4 * rng.standard_normal(n))
            w.writeframes(np.clip(np.rint(x * 32767), -32768, 32767).astype("<i2").tobytes())
            at += n
    return total / SR


CHILD = r"""
import json, sys, time
sys.path.insert(0, {tests!r})
from serlaq import _native
mode, model, wav = sys.argv[1], sys.argv[2], sys.argv[3]
m = _native.Model(model)
out = {{}}
t0 = time.perf_counter()
if mode == "segments":
    segs, err = _native.segment_file(m, wav)
    out.update(segments=len(segs), speech=sum(s[6] is not None for s in segs), error=err)
elif mode == "segments-novad":
    segs, err = _native.segment_file(m, wav, vad_db=None)
    out.update(segments=len(segs), error=err)
elif mode == "decode":
    x = _native.load_audio(wav, m.sample_rate, 1)
    out.update(samples=len(x))
elif mode == "features":
    import json as j
    x = _native.load_audio(wav, m.sample_rate, 1)
    t0 = time.perf_counter()
    plan = _native.FeaturePlan(j.dumps(m.spec))
    plan.features(x)
elif mode == "baseline":
    import numpy as np, wave as wv
    n = int(sys.argv[4])
    with wv.open(wav) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(min(w.getnframes(), (n + 1) * rate)), "<i2").astype(np.float32) / 32768
    from serlaq.runtime import LaqModel
    laq = LaqModel(m, model)
    t0 = time.perf_counter()
    for k in range(n):
        laq.predict(x[k * rate : k * rate + 2 * rate], sample_rate=rate)
    out.update(windows=n)
out["seconds"] = time.perf_counter() - t0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        out["peak_rss_mb"] = int(line.split()[1]) / 1024
print(json.dumps(out))
"""


def child(mode: str, model: Path, wav: Path, *extra: str) -> dict:
    env = {**os.environ, "RAYON_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", CHILD.format(tests=str(ROOT / "tests" / "runtime")), mode, str(model), str(wav), *extra]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child {mode} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def build_model(path: Path, preset: str) -> None:
    sys.path.insert(0, str(ROOT / "tests" / "runtime"))
    from rt_builders import metadata, write_model

    from serlaq.feature_config import FeatureConfig

    cfg = FeatureConfig(preset=preset)
    labels = ["angry", "boredom", "disgust", "fear", "happy", "neutral", "sad"]
    rng = np.random.default_rng(0)
    dims = [cfg.dim, 64, 32, len(labels)]
    ws = [rng.normal(0, 1 / np.sqrt(dims[i]), (dims[i + 1], dims[i])).astype(np.float32) for i in range(3)]
    bs = [rng.normal(0, 0.1, dims[i + 1]).astype(np.float32) for i in range(3)]
    meta = metadata(labels, dims[1:-1], cfg)
    write_model(path, ws, bs, [4, 2, 8], labels, np.zeros(cfg.dim), np.ones(cfg.dim), meta=meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--preset", default="paper", choices=["paper", "rich"])
    ap.add_argument("--baseline-windows", type=int, default=300)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="serlaq-bench-seg-"))
    try:
        wav, model = work / "hour.wav", work / "model.laq"
        t0 = time.perf_counter()
        seconds = write_recording(wav, args.minutes)
        print(f"recording: {seconds:.0f} s at {SR} Hz ({wav.stat().st_size / 1e6:.0f} MB), written in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        build_model(model, args.preset)
        idle = child("idle", model, wav)
        seg = child("segments", model, wav)
        novad = child("segments-novad", model, wav)
        decode = child("decode", model, wav)
        feats = child("features", model, wav) if seconds <= 3600 else None
        base = child("baseline", model, wav, str(args.baseline_windows))
        windows = novad["segments"]
        base_hour = base["seconds"] / base["windows"] * windows
        res = {
            "audio_seconds": seconds,
            "preset": args.preset,
            "segment_seconds": seg["seconds"],
            "realtime_factor": seconds / seg["seconds"],
            "rss_above_idle_mb": seg["peak_rss_mb"] - idle["peak_rss_mb"],
            "idle_rss_mb": idle["peak_rss_mb"],
            "segments": seg["segments"],
            "speech_segments": seg["speech"],
            "novad_seconds": novad["seconds"],
            "novad_rss_above_idle_mb": novad["peak_rss_mb"] - idle["peak_rss_mb"],
            "decode_resample_seconds": decode["seconds"],
            "features_whole_seconds": feats["seconds"] if feats else None,
            "baseline_seconds_per_window": base["seconds"] / base["windows"],
            "baseline_hour_seconds": base_hour,
            "speedup_vs_baseline": base_hour / novad["seconds"],
        }
        print(f"segment_file, VAD on : {seg['seconds']:.2f} s for {seconds:.0f} s of audio "
              f"({res['realtime_factor']:.0f}x real time; target <= {seconds / 1000:.2f} s), "
              f"{seg['segments']} windows ({seg['speech']} speech)")
        print(f"peak RSS above idle  : {res['rss_above_idle_mb']:.1f} MB (idle child {idle['peak_rss_mb']:.0f} MB; "
              f"target <= 100 MB)")
        print(f"segment_file, no VAD : {novad['seconds']:.2f} s ({novad['peak_rss_mb'] - idle['peak_rss_mb']:.1f} MB)")
        print(f"profile: decode + resample alone {decode['seconds']:.2f} s; "
              + (f"STFT + pool of the hour as one clip {feats['seconds']:.2f} s" if feats else ""))
        print(f"baseline: predict per 2-s window {1000 * res['baseline_seconds_per_window']:.2f} ms x {windows} "
              f"windows = {base_hour:.1f} s (timed on {base['windows']}); frame reuse: "
              f"{res['speedup_vs_baseline']:.1f}x faster")
        if args.json:
            args.json.write_text(json.dumps(res, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
