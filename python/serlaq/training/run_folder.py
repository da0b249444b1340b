"""The run folder: its file names, the result of a run, resume checks and what a fresh run clears."""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterable
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
LAQ_OUTPUTS = (LAQ_REPORT, "model.laq", "qat")
RUN_OUTPUTS = (MODEL, BEST, LAST, CONFIG, METRICS, CONFUSION_PNG, LOGS, *LAQ_OUTPUTS)
# The outputs only a serlaq run writes: a folder holding one of them is a run folder that a
# fresh run may replace. `config.yaml` and `logs/` are common names a user's folder may hold
# too, so they mark a run only as a config serlaq saved for that very folder (`saved_run_config`).
RUN_MARKERS = (MODEL, BEST, LAST, METRICS, CONFUSION_PNG, LAQ_REPORT, "model.laq")
# Config sections a resumed run must share with the run it continues ...
RESUME_MUST_MATCH = ("seed", "data", "features", "model", "train")
# ... except these keys, which change how the data are prepared, not what they are: the
# extraction processes, where the cache lives, and what to do with an unreadable file (a
# run that exists either met none, or met them and still fails loudly with "fail"); and
# the CPU threads, which change the speed, not the training.
RESUME_MAY_CHANGE = frozenset({"data.workers", "data.cache_dir", "data.on_error", "train.threads"})


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
    `RESUME_MUST_MATCH` is refused with the first differing key named (in `train`, every one).
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
        if section == "train":
            continue
        key = first_difference(saved.get(section), current.get(section), section)
        if key is not None:
            raise ConfigError(
                f"{saved_path}: cannot resume: {key} differs from this run's config "
                "(resume with the config the run started with, or start a new run without --resume)"
            )
    # last.ckpt holds the optimizer, the learning-rate schedule (cosine over max_epochs) and
    # the early stopping of the run's own train section: a resumed run keeps applying them,
    # so a new value would be recorded in config.yaml yet not be what trained the model.
    changed = differences(saved.get("train"), current.get("train"), "train")
    if changed:
        raise ConfigError(
            f"{saved_path}: cannot resume: {', '.join(changed)} "
            f"{'differs' if len(changed) == 1 else 'differ'} from the run's config, and a resumed run keeps "
            "its own schedule (resume with the run's train settings, or start a fresh run without --resume)"
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


def differences(a: Any, b: Any, key: str) -> list[str]:
    """Every dotted key (sorted) where `a` and `b` differ, leaving out `RESUME_MAY_CHANGE`."""
    if key in RESUME_MAY_CHANGE:
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        return [found for sub in sorted(set(a) | set(b)) for found in differences(a.get(sub), b.get(sub), f"{key}.{sub}")]
    return [] if a == b else [key]


def check_writable(folder: Path, what: str) -> None:
    """Make `folder` (with its parents) and write a file in it, or one line saying why not:
    an unwritable output or cache found before the data are read, not after training."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"{what} {folder}: is a file, not a folder") from None
    except OSError as exc:  # a file on the way (NotADirectoryError), no permission, a read-only disk
        raise ConfigError(f"{what} {folder}: cannot make the folder ({_reason(exc)})") from None
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(f"{what} {folder}: cannot write in the folder ({_reason(exc)})") from None


def _reason(exc: OSError) -> str:
    if isinstance(exc, NotADirectoryError):
        return "a file is on the way"
    return exc.strerror or type(exc).__name__


def check_run_folder(run_dir: Path) -> None:
    """A fresh run replaces a run folder's outputs, so it must write into a run folder (or an
    empty or missing one): a user's own folder would lose its `logs/` and `config.yaml`."""
    if not run_dir.is_dir() or not any(run_dir.iterdir()):
        return
    if any((run_dir / name).exists() for name in RUN_MARKERS) or saved_run_config(run_dir) is not None:
        return
    raise ConfigError(
        f"{run_dir}: the folder exists and is not a serlaq run folder; give an empty or new folder "
        "as the run folder (--out or out_dir/name)"
    )


def saved_run_config(run_dir: Path) -> dict[str, Any] | None:
    """The `config.yaml` a run saved into `run_dir`: every config section, naming this folder."""
    import yaml

    try:
        raw = yaml.safe_load((run_dir / CONFIG).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    sections = ("seed", "name", "out_dir", "data", "features", "model", "train", "trainer")
    if not isinstance(raw, dict) or any(key not in raw for key in sections):
        return None
    try:
        names_it = Path(str(raw["out_dir"])) / str(raw["name"]) == run_dir
    except TypeError:
        return None
    return raw if names_it else None


def laq_outputs(laq_out: str | None) -> tuple[str, ...]:
    """The `.laq` file and report a `laq.out` name writes (compress.summary_path's naming)."""
    if not laq_out or laq_out == "model.laq":
        return ()
    return (laq_out, f"{Path(laq_out).stem}.json")


def clear_run_outputs(run_dir: Path, extra: Iterable[str] = ()) -> None:
    """Remove a previous run's outputs so a fresh run never mixes with them.

    `extra`: the custom-named `.laq` file (and its report) of the new run's `laq.out`; the
    previous run's, named in its saved config, are removed too, so that no stale `.laq`
    passes for this run's compression.
    """
    remove_outputs(run_dir, (*RUN_OUTPUTS, *previous_laq_outputs(run_dir), *extra))


def clear_laq_outputs(run_dir: Path, extra: Iterable[str] = ()) -> None:
    """Remove the compression of the model a resumed run is about to replace."""
    remove_outputs(run_dir, (*LAQ_OUTPUTS, *previous_laq_outputs(run_dir), *extra))


def previous_laq_outputs(run_dir: Path) -> tuple[str, ...]:
    saved = saved_run_config(run_dir)
    laq = saved.get("laq") if saved is not None else None
    return laq_outputs(laq.get("out")) if isinstance(laq, dict) else ()


def remove_outputs(run_dir: Path, names: Iterable[str]) -> None:
    for name in names:
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def write_metrics(metrics: dict[str, Any], path: Path) -> None:
    """metrics.json is strict JSON: a NaN or infinite score (a diverged model) is written null."""
    atomic_write_json(path, finite_or_null(metrics))


def finite_or_null(value: Any) -> Any:
    """`value` with every NaN/inf float replaced by None (JSON null), at any depth."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return value
