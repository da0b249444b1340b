"""The run folder: its file names, the result of a run, resume checks and what a fresh run clears."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serlaq.config import RunConfig
from serlaq.errors import ConfigError
from serlaq.io import atomic_write_json

MODEL = "model.ckpt"
BEST = "best.ckpt"
LAST = "last.ckpt"
CONFIG = "config.yaml"
METRICS = "metrics.json"
CONFUSION_PNG = "confusion_matrix.png"
LOGS = "logs"
LAQ_REPORT = "laq.json"  # written by the LAQ stage when `laq:` is set
# What a fresh (non-resumed) run replaces in an existing run folder; nothing else is touched.
RUN_OUTPUTS = (MODEL, BEST, LAST, CONFIG, METRICS, CONFUSION_PNG, LOGS, LAQ_REPORT, "model.laq", "qat")
# Config sections a resumed run must share with the run it continues ...
RESUME_MUST_MATCH = ("seed", "data", "features", "model")
# ... except these keys, which change how the data are prepared, not what they are: the
# extraction processes, where the cache lives, and what to do with an unreadable file (a
# run that exists either met none, or met them and still fails loudly with "fail").
RESUME_MAY_CHANGE = frozenset({"data.workers", "data.cache_dir", "data.on_error"})


@dataclass
class RunResult:
    """What `fit` produced; `metrics` is the content of `metrics.json`.

    `checkpoint` (model.ckpt) is the trained model: what was tested and what to compress.
    """

    run_dir: Path
    checkpoint: Path
    best_checkpoint: Path
    last_checkpoint: Path
    metrics: dict[str, Any]
    laq: dict[str, Any] | None = None  # laq.json of the LAQ compression, when `laq:` is set

    @property
    def val_accuracy(self) -> float:
        return float(self.metrics["val"]["accuracy"])

    @property
    def test_accuracy(self) -> float:
        return float(self.metrics["test"]["accuracy"])


def resolve_paths(config: RunConfig) -> RunConfig:
    """Absolute data/cache/output paths, so the saved config works from any directory."""
    data = config.data.model_copy(
        update={
            "data_dir": config.data.data_dir.resolve() if config.data.data_dir else None,
            "manifest": config.data.manifest.resolve() if config.data.manifest else None,
            "cache_dir": config.data.cache_dir.resolve(),
            "corpora": [c.resolved() for c in config.data.corpora] if config.data.corpora else None,
        }
    )
    return config.model_copy(update={"data": data, "out_dir": config.out_dir.resolve()})


def check_resumable(config: RunConfig, run_dir: Path) -> None:
    """A resumed run continues the same data, features and model, from its last.ckpt.

    Keys in `RESUME_MAY_CHANGE` may differ; any other difference in the sections of
    `RESUME_MUST_MATCH` is refused with the first differing key named.
    """
    if not (run_dir / LAST).is_file():
        raise ConfigError(f"{run_dir}: nothing to resume (no {LAST}); run without --resume to start it")
    saved_path = run_dir / CONFIG
    if not saved_path.is_file():
        return
    from serlaq.config import load_config

    saved = resolve_paths(load_config(saved_path)).to_dict()
    current = config.to_dict()
    for section in RESUME_MUST_MATCH:
        key = first_difference(saved.get(section), current.get(section), section)
        if key is not None:
            raise ConfigError(
                f"{saved_path}: cannot resume: {key} differs from this run's config "
                "(resume with the config the run started with, or start a new run without --resume)"
            )


def first_difference(a: Any, b: Any, key: str) -> str | None:
    """The first dotted key (sorted) where `a` and `b` differ, leaving out `RESUME_MAY_CHANGE`."""
    if key in RESUME_MAY_CHANGE:
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        for sub in sorted(set(a) | set(b)):
            found = first_difference(a.get(sub), b.get(sub), f"{key}.{sub}")
            if found is not None:
                return found
        return None
    return None if a == b else key


def clear_run_outputs(run_dir: Path) -> None:
    """Remove a previous run's outputs so a fresh run never mixes with them."""
    for name in RUN_OUTPUTS:
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def write_metrics(metrics: dict[str, Any], path: Path) -> None:
    atomic_write_json(path, metrics)
