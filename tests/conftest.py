"""Shared fixtures: a tiny generated corpus, WAV helpers and a seconds-long demo run (tests never touch real data)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import soundfile as sf

from serlaq.data.synthetic import generate_corpus

# the torch-free builders of tests/runtime/ (also run alone in the runtime-only venv)
sys.path.insert(0, str(Path(__file__).parent / "runtime"))

if TYPE_CHECKING:
    from serlaq.config import RunConfig
    from serlaq.training import RunResult

TINY_CORPUS = {"seed": 7, "clips_per_class": 6, "speakers": 3, "seconds": 0.5}


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """7 emotions x 6 clips x 0.5 s from 3 speakers, folder layout (read-only: do not modify)."""
    return generate_corpus(tmp_path_factory.mktemp("corpus") / "tiny", **TINY_CORPUS)


def tone(seconds: float = 1.0, sample_rate: int = 22050, freq: float = 220.0, amp: float = 0.3, seed: int = 0) -> np.ndarray:
    """A harmonic tone with vibrato and a little noise, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    phase = 2 * np.pi * freq * t + 0.01 * freq / 5 * np.sin(2 * np.pi * 5 * t)  # 1% vibrato at 5 Hz
    y = sum(amp / k * np.sin(k * phase) for k in range(1, 6)) + 0.01 * rng.standard_normal(t.size)
    return y.astype(np.float32)


def write_wav(path: Path, data: np.ndarray, sample_rate: int = 22050, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sample_rate, subtype=subtype)
    return path


DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
# demo.yaml shrunk to seconds: 7 emotions x 10 clips of 0.5 s = 56 / 7 / 7 clips (one per class in val and test)
TINY_RUN: dict[str, Any] = {
    "data.synthetic.clips_per_class": 10,
    "data.synthetic.speakers": 2,
    "data.synthetic.seconds": 0.5,
    "model.hidden": [64, 32],
    "train.max_epochs": 6,
    "trainer.enable_progress_bar": False,
}


def tiny_config(out_dir: Path, cache_dir: Path, name: str = "tiny", **overrides: Any) -> RunConfig:
    """The tiny demo config writing its run to out_dir/name; overrides are dotted keys as in `--set`."""
    from serlaq.config import load_config

    return load_config(DEMO_CONFIG, {**TINY_RUN, "data.cache_dir": str(cache_dir), "out_dir": str(out_dir), "name": name, **overrides})


def fit_tiny(root: Path, name: str = "tiny", **overrides: Any) -> RunResult:
    """Train the tiny demo config with its cache in root/cache and its run in root/runs/name."""
    from serlaq.training import fit

    result = fit(tiny_config(root / "runs", root / "cache", name, **overrides))
    assert result is not None
    return result


def tiny_set_args(**overrides: Any) -> list[str]:
    """TINY_RUN (plus overrides) as `serlaq fit` options: --set KEY=VALUE, values written as YAML (JSON)."""
    return [arg for key, value in {**TINY_RUN, **overrides}.items() for arg in ("--set", f"{key}={json.dumps(value)}")]


def default_signals() -> None:
    """`preexec_fn` for a child process a test signals: SIGINT and SIGTERM as a terminal gives them.

    A child inherits its parent's signal mask and ignored signals: a shell runs background jobs
    with SIGINT ignored, and a CI runner may start the tests with SIGINT blocked, which leaves a
    Ctrl-C pending forever (the child trains on). The test is about serlaq's handling, not theirs.
    """
    wanted = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_UNBLOCK, wanted)
    for signum in wanted:
        signal.signal(signum, signal.SIG_DFL)


def run_serlaq(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`serlaq ARGS` through the console entry point, in-process: (exit code, stdout, stderr)."""
    from serlaq.cli import main

    argv = sys.argv
    sys.argv = ["serlaq", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out, err


# `.laq` provenance records their creation time; pinned here (the reproducible-builds
# convention serlaq honours) so that byte-determinism tests compare like with like.
os.environ.setdefault("SOURCE_DATE_EPOCH", "1767225600")  # 2026-01-01T00:00:00Z
