"""Shared by the edge-build tests: the built artefacts (dist/capi, dist/wasm, serlaq-rt),
a generated model and WAVs, and serlaq-rt's answers for them (the native reference).

`make capi` / `make wasm` build the artefacts. Without them the tests skip, saying what to
build; with SERLAQ_EDGE_REQUIRED=1 (`make test-edge`, CI) a missing artefact fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "runtime"))

from rt_builders import PAPER_FEATURES, tone, write_model, write_wav  # noqa: E402
from serlaq import _native  # noqa: E402

DIST = ROOT / "dist"
LABELS = ("angry", "happy", "neutral", "sad")


def need(path: Path, build: str) -> Path:
    """`path` if it exists; otherwise skip (or fail under SERLAQ_EDGE_REQUIRED)."""
    if path.exists():
        return path
    msg = f"{path.relative_to(ROOT)} is not built: run `{build}`"
    if os.environ.get("SERLAQ_EDGE_REQUIRED"):
        pytest.fail(msg)
    pytest.skip(msg)


def tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("SERLAQ_EDGE_REQUIRED"):
        pytest.fail(f"{name} is not installed (.ci/run installs it)")
    pytest.skip(f"{name} is not installed")


def serlaq_rt() -> Path:
    return need(ROOT / "target" / "release" / "serlaq-rt", "make capi")


def rt_json(*args: str | Path) -> list[dict]:
    r = subprocess.run([str(serlaq_rt()), "predict", *map(str, args), "--format", "json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def fixture_model(path: Path, home: list[Path] | None = None) -> None:
    """A random MLP (180 -> 32 -> 4 labels, 4/2/8 bits) scaled so that tones give
    probabilities well inside (0, 1): a saturated softmax would hide differences.

    Its input statistics are generic, so the generated tones lie far outside its training
    distribution (out-of-domain scores of 15 and more, threshold 3). With `home` the
    statistics are those clips' own features instead: each of them is then in domain (its
    RMS z-score is at most sqrt(len(home) - 1))."""
    rng = np.random.default_rng(7)
    dims = [180, 32, 16, len(LABELS)]
    weights = [rng.normal(0, 0.3 / np.sqrt(dims[i]), (dims[i + 1], dims[i])).astype(np.float32) for i in range(3)]
    biases = [rng.normal(0, 0.1, dims[i + 1]).astype(np.float32) for i in range(3)]
    if home:
        spec = json.dumps(PAPER_FEATURES)
        x = np.stack([_native.features(spec, _native.load_audio(str(p), 22050, 2048)) for p in home])
        mean, std = x.mean(0).astype(np.float32), (x.std(0) + 1e-3).astype(np.float32)
    else:
        # standardize around the paper features' typical scale (MFCC ~ -300..100, power mel ~ 0..50)
        mean = np.concatenate([np.full(40, -20.0), np.full(12, 0.5), np.full(128, 0.5)]).astype(np.float32)
        std = np.concatenate([np.full(40, 40.0), np.full(12, 0.2), np.full(128, 5.0)]).astype(np.float32)
    write_model(path, weights, biases, [4, 2, 8], LABELS, mean, std)


def speech_and_silence(rate: int) -> np.ndarray:
    """3 s of tones, 2.5 s of near-silence, 2.5 s of a louder tone: speech and silence windows."""
    quiet = (np.random.default_rng(4).normal(0, 1e-5, int(2.5 * rate))).astype(np.float32)
    return np.concatenate([tone(300, rate, 3.0, seed=1), quiet, tone(1200, rate, 2.5, seed=2, amplitude=0.8)])


def build_fixtures(out: Path) -> dict:
    """A model, clips at several rates (one stereo, one long with silence) and the
    native answers: expected.json = {labels, sample_rate, ood_threshold, files: [prediction
    records], segments: {path, rows}, segments_running: the same with running normalisation
    (prior 3, horizon 40), home_files: the clips' records from home.laq} as serlaq-rt
    writes them (paths relative to `out`). The clips lie far from model.laq's home; home.laq
    (the same network standardized by the clips' own statistics) is their home."""
    out.mkdir(parents=True, exist_ok=True)
    fixture_model(out / "model.laq")
    clips = []
    for i, (rate, secs, freq, ch) in enumerate([(16000, 1.2, 220, 1), (22050, 2.0, 440, 1), (44100, 1.5, 880, 2),
                                                (8000, 3.0, 150, 1), (48000, 1.0, 2500, 1)]):
        clips.append(write_wav(out / f"clip{i}.wav", tone(freq, rate, secs, channels=ch, seed=i), rate).name)
    long = write_wav(out / "long.wav", speech_and_silence(16000), 16000).name
    files = rt_json(out / "model.laq", *[out / c for c in clips])
    fixture_model(out / "home.laq", home=[out / c for c in clips])
    home_files = rt_json(out / "home.laq", *[out / c for c in clips])
    for f, h, c in zip(files, home_files, clips):
        f["path"] = h["path"] = c
    def segment_rows(*extra: str) -> list[dict]:
        rows = rt_json(out / "model.laq", out / long, "--segments", "--window", "1", "--hop", "0.5", *extra)
        return [dict(r, path=long, probabilities=r.get("probabilities", {})) for r in rows if "summary" not in r]

    segs = segment_rows()
    running = segment_rows("--running-norm", "--running-prior", "3", "--running-horizon", "40")
    info = subprocess.run([str(serlaq_rt()), "info", str(out / "model.laq"), "--json"], capture_output=True, text=True)
    rate = json.loads(info.stdout)["features"]["sample_rate"]
    threshold = json.loads(info.stdout)["confidence"]["ood_threshold"]
    expected = {"labels": list(LABELS), "sample_rate": rate, "ood_threshold": threshold, "files": files,
                "segments": {"path": long, "rows": segs},
                "segments_running": {"path": long, "rows": running, "prior": 3, "horizon": 40},
                "home_files": home_files}
    (out / "expected.json").write_text(json.dumps(expected))
    return expected
