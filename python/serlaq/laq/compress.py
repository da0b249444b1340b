"""`compress(checkpoint, ...)`: the LAQ search on a saved checkpoint, written as a `.laq` file.

The checkpoint carries the run config, so the same data, split and standardization are
rebuilt from the feature cache (re-extracted if the cache is gone); the `laq:` section
of that config is the starting point and every argument given here overrides it. The
rebuilt split is checked against the checkpoint's fingerprint
(`SERDataModule.from_checkpoint`): a corpus that changed since training is refused, since its
"test" clips would include clips the model trained on.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from serlaq.errors import ConfigError
from serlaq.io import atomic_write_json
from serlaq.laq_config import LaqConfig

SUMMARY = "laq.json"


def summary_path(out: Path) -> Path:
    """`laq.json` next to the default `model.laq`; `<name>.json` next to any other name."""
    return out.parent / SUMMARY if out.name == "model.laq" else out.with_suffix(".json")


def write_outputs(outcome: Any, out: str | os.PathLike[str]) -> Path:
    """Write the `.laq` file and its JSON summary (both atomically); returns the summary path."""
    out = Path(out)
    outcome.write(out)
    path = summary_path(out)
    atomic_write_json(path, {"laq_file": out.name, **outcome.summary()})
    return path


def load_checkpoint(checkpoint: str | os.PathLike[str]) -> Any:
    """The `SERClassifier` of a checkpoint file; a one-line `ConfigError` if it is not one."""
    from serlaq.model import SERClassifier

    path = Path(checkpoint)
    if not path.exists():
        raise ConfigError(f"{path}: checkpoint not found")
    if not path.is_file():
        raise ConfigError(f"{path}: not a file (pass the model.ckpt of a run folder)")
    with path.open("rb") as f:  # torch.save writes a zip archive; anything else is named, not unpickled
        if f.read(4) != b"PK\x03\x04":
            raise ConfigError(f"{path}: not a serlaq checkpoint (not a PyTorch checkpoint file; pass the model.ckpt of a run folder)")
    try:
        # tensors and plain values only: a checkpoint is data, and a crafted one runs no code
        model = SERClassifier.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch/Lightning raise many types for a file that is not a checkpoint
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ConfigError(f"{path}: not a serlaq checkpoint ({detail})") from None
    if not model.hparams.get("run_config"):
        raise ConfigError(f"{path}: the checkpoint holds no run config; cannot rebuild its data")
    return model.eval()


def compress(
    checkpoint: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    margin: float | None = None,
    weights: Sequence[float] | None = None,
    per_channel: bool | None = None,
    mode: str | None = None,
    criterion: str | None = None,
    range_search: bool | None = None,
    budget_bits: float | None = None,
    budget_kb: float | None = None,
    qat: bool | None = None,
    qat_epochs: int | None = None,
    fixed_baselines: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
) -> Any:
    """Compress a trained checkpoint; returns the `LaqOutcome` (file written to `out`).

    `out` defaults to `model.laq` next to the checkpoint. `data_dir` replaces the corpus
    folder the checkpoint names (a corpus moved whole; its split fingerprint must match).
    QAT (mode `qat`, or `qat=True`) keeps its scratch checkpoints in a temporary folder,
    removed afterwards: its result is the model in memory and the summary's `qat` record.
    """
    from serlaq.config import RunConfig
    from serlaq.data.datamodule import SERDataModule
    from serlaq.laq.pipeline import compress_model, splits_of
    from serlaq.lightning_utils import quiet_lightning

    model = load_checkpoint(checkpoint)
    run_config = RunConfig.model_validate(model.hparams["run_config"])
    base = run_config.laq.model_dump() if run_config.laq is not None else {}
    overrides: dict[str, Any] = {
        "margin": margin,
        "weights": None if weights is None else tuple(weights),
        "per_channel": per_channel,
        "mode": mode,
        "criterion": criterion,
        "range_search": range_search,
        "budget_bits": budget_bits,
        "budget_kb": budget_kb,
    }
    raw = {**base, **{k: v for k, v in overrides.items() if v is not None}}
    qat_raw = dict(raw.get("qat") or {})
    if qat is not None:
        qat_raw["enabled"] = qat
    if qat_epochs is not None:
        qat_raw["epochs"] = qat_epochs
    raw["qat"] = qat_raw
    try:
        laq = LaqConfig.model_validate(raw)
    except Exception as exc:  # pydantic.ValidationError: name the option
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            err = exc.errors()[0]
            key = ".".join(str(p) for p in err["loc"])
            # pydantic prefixes a validator's own message with "Value error, "
            message = str(err["msg"]).removeprefix("Value error, ")
            raise ConfigError(f"--{key.replace('_', '-')}: {message}") from None
        raise
    settings = laq.resolved()
    import torch

    from serlaq.cpus import available_cpus

    # the run's own thread count (1 by default): a pool sized to the machine oversubscribes
    # the CPUs as soon as another process is busy (measured: QAT 10x slower on 2 cores)
    torch.set_num_threads(run_config.train.threads or available_cpus())
    out_path = Path(out) if out is not None else Path(checkpoint).parent / settings.out
    if out_path.suffix != ".laq":
        raise ConfigError(f"--out {out_path}: the output file name must end in .laq")
    with quiet_lightning(), tempfile.TemporaryDirectory(prefix="serlaq-qat-") as scratch:
        datamodule = SERDataModule.from_checkpoint(checkpoint, data_dir=data_dir)
        try:
            outcome = compress_model(
                model,
                splits_of(datamodule),
                settings,
                datamodule=datamodule,
                trainer_settings=run_config.trainer.model_dump(exclude_none=True),
                lr=run_config.train.lr,
                folder=scratch,
                seed=run_config.seed,
                fixed_baselines=fixed_baselines,
            )
        except ValueError as exc:  # the search's own refusal of a budget no plan fits
            if not str(exc).startswith("the budget"):
                raise
            given = settings.budget_kb if settings.budget_kb is not None else settings.budget_bits
            flag = f"--budget-{'kb' if settings.budget_kb is not None else 'bits'} {given:g}"
            raise ConfigError(f"{flag}: {exc}") from None
    if outcome.qat:
        outcome.qat["folder"] = None  # the scratch folder is gone
    write_outputs(outcome, out_path)
    return outcome


def format_outcome(outcome: Any, out: str | os.PathLike[str]) -> str:
    """The few lines `serlaq compress` prints."""
    s = outcome.settings
    acc = outcome.accuracy
    sizes = outcome.sizes
    plan = ", ".join(f"{n}:{b}" for n, b in outcome.plan.items())
    how = f"{s.search} search on {s.criterion}" + (f", margin {s.margin:g}" if s.search == "paper" else "")
    if s.search == "budget":
        how += f", budget {s.budget_bits:g} avg bits" if s.budget_bits is not None else ""
        how += f", budget {s.budget_kb:g} KB" if s.budget_kb is not None else ""
    lines = [
        f"wrote        {out}",
        f"mode         {s.mode} ({how}; {'per-channel' if s.per_channel else 'per-tensor'}"
        f"{', range search' if s.range_search else ''}{', QAT ' + str(outcome.qat['epochs']) + ' epochs' if outcome.qat else ''})",
        f"bits         {plan}  (avg {outcome.avg_bits:.3f})",
        f"size         {sizes.file_bytes / 1000:.1f} KB file, {sizes.payload_bytes / 1000:.1f} KB payload, "
        f"information bound {sizes.information_bound_bytes / 1000:.1f} KB, fp32 {sizes.fp32_bytes / 1000:.1f} KB",
        f"accuracy     val {100 * acc['laq_val']:.2f}% (fp32 {100 * acc['fp32_val']:.2f}%), "
        f"test {100 * acc['laq_test']:.2f}% (fp32 {100 * acc['fp32_test']:.2f}%)",
        f"time         search {outcome.timings['search_s']:.2f} s"
        + (f", QAT {outcome.timings['qat_s']:.2f} s" if "qat_s" in outcome.timings else ""),
    ]
    return "\n".join(lines)
