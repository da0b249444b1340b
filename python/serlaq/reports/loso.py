"""`serlaq report RUN --protocol loso`: leave-one-speaker-out cross-validation of a run's config.

One fold per speaker of the run's corpus (`serlaq.data.splits.loso_folds`): test = every clip
of that speaker; validation = a seeded, stratified share (the run's validation fraction) of
the other speakers' clips; train = the rest. Each fold trains the run's config (same
features, recipe, seed) from scratch on its explicit splits into `OUT/folds/fold-KK-SPEAKER/`
(a finished fold with the same config and splits is reused), compresses it the way the run's
`laq:` section says (the default `qat` mode when the run has none) and scores fp32 and
compressed on the held-out speaker: accuracy, UAR and macro-F1. Every choice (early stopping,
the bit plan, QAT stopping) uses the fold's train/val clips only; the held-out speaker is
only scored. `report.json` / `report.md` hold one row per fold and mean ± sd over folds
(`over_seeds.aggregate`, the paired column being compressed − fp32 on the same fold).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from serlaq.errors import ConfigError, DataError
from serlaq.io import atomic_write_json

# The rows of a fold, in print order: (key, label)
LOSO_ROWS: tuple[tuple[str, str], ...] = (("fp32", "fp32"), ("compressed", "compressed"))
SPLITS_FILE = "splits.json"


def corpus_clips(datamodule: Any) -> list[Any]:
    """Every clip of a set-up `SERDataModule`, in corpus order (the positions explicit splits use)."""
    placed = [(i, c) for split in ("train", "val", "test") for i, c in zip(datamodule.split_indices(split), datamodule.split_clips(split))]
    placed.sort(key=lambda item: item[0])
    if [i for i, _ in placed] != list(range(len(placed))):
        raise DataError("loso: the run's splits do not cover its corpus; cannot rebuild the clip list")
    return [c for _, c in placed]


def fold_config(base: Any, out_dir: Path, index: int, speaker: str) -> Any:
    """The run's config for one fold: same data, features, recipe and seed; no `laq:` stage (compressed here)."""
    return base.model_copy(
        update={
            "out_dir": out_dir / "folds",
            "name": f"fold-{index:02d}-{speaker}",
            "laq": None,
            "trainer": base.trainer.model_copy(update={"enable_progress_bar": False}),
        }
    )


def _train_fold(config: Any, splits: Mapping[str, list[int]], say: Callable[[str], None]) -> Path:
    """Train one fold unless a finished one with the same config and splits is already there."""
    from serlaq.config import load_config
    from serlaq.data.datamodule import SERDataModule
    from serlaq.training import fit, resolve_paths

    config = resolve_paths(config)
    run_dir = config.run_dir
    ckpt, saved, saved_splits = run_dir / "model.ckpt", run_dir / "config.yaml", run_dir / SPLITS_FILE
    if ckpt.is_file() and saved.is_file() and saved_splits.is_file():
        try:
            if load_config(saved).to_dict() == config.to_dict() and json.loads(saved_splits.read_text()) == dict(splits):
                return ckpt
        except Exception:  # an unreadable old fold: train it again
            pass
    say(f"training {run_dir.name}")
    result = fit(config, datamodule=SERDataModule(config, splits=splits))
    assert result is not None
    atomic_write_json(saved_splits, dict(splits))
    return result.checkpoint


def score_fold(model: Any, datamodule: Any, config: Any, settings: Any, seed: int) -> dict[str, dict[str, Any]]:
    """fp32 and compressed rows of one fold's model: bits, sizes, val/test accuracy, macro-F1, UAR."""
    from serlaq.laq.export import KB
    from serlaq.laq.pipeline import compress_model, scheme_of, splits_of
    from serlaq.reports.rows import fp32_row, quantized_row

    model = model.eval()
    splits = splits_of(datamodule)
    labels = list(model.labels)
    n_params = sum(p.numel() for p in model.net.parameters())
    rows = {"fp32": fp32_row(model, splits, labels, n_params)}
    trainer_settings = {**config.trainer.model_dump(exclude_none=True), "enable_progress_bar": False}
    d = compress_model(model, splits, settings, datamodule=datamodule, trainer_settings=trainer_settings, lr=config.train.lr, seed=seed)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        row = quantized_row(d.layers, d.plan, scheme_of(settings), splits, tmp, labels, d.quantizer)
        row["file_kb"] = d.write(tmp / "model.laq") / KB  # the real `.laq`, with its laq metadata
    rows["compressed"] = {**row, **({"qat_s": d.timings["qat_s"]} if "qat_s" in d.timings else {})}
    return rows


def _speakers(clips: Sequence[Any], indices: Sequence[int]) -> list[str]:
    return sorted({str(clips[i].speaker) for i in indices})


def loso_report(
    run: Path,
    base_model: Any,
    base: Any,
    out_dir: Path,
    *,
    progress: Callable[[str], None] | None = None,
    datamodule: Any = None,
) -> dict[str, Any]:
    """Train, compress and score every LOSO fold of the run's config; returns the report dict.
    `datamodule`: the run's data, already rebuilt (default: from `base_model`, unchecked)."""
    from serlaq.data.datamodule import SERDataModule
    from serlaq.data.splits import loso_folds
    from serlaq.laq.compress import load_checkpoint
    from serlaq.laq_config import LaqConfig
    from serlaq.lightning_utils import quiet_lightning
    from serlaq.reports.meta import architecture, run_meta
    from serlaq.reports.over_seeds import aggregate

    say = progress or (lambda _msg: None)
    clips = corpus_clips(datamodule if datamodule is not None else SERDataModule.from_model(base_model))
    val_fraction = base.data.split[1] if base.data.split[1] > 0 else 0.1
    folds = loso_folds([c.label for c in clips], [c.speaker for c in clips], seed=base.seed, val_fraction=val_fraction)
    settings = (base.laq if base.laq is not None else LaqConfig()).resolved()
    per_fold = []
    with quiet_lightning():
        for k, (speaker, (train, val, test)) in enumerate(folds):
            splits = {"train": train.tolist(), "val": val.tolist(), "test": test.tolist()}
            seen = set(_speakers(clips, splits["train"])) | set(_speakers(clips, splits["val"]))
            if _speakers(clips, splits["test"]) != [speaker] or speaker in seen:
                raise DataError(f"loso: fold {k} mixes speaker {speaker!r} into train/val")  # loso_folds guarantees this
            config = fold_config(base, out_dir, k, speaker)
            model = load_checkpoint(_train_fold(config, splits, say))
            datamodule = SERDataModule(config, splits=splits)
            datamodule.setup()
            say(f"scoring fold {k} (speaker {speaker}, {len(test)} clips)")
            per_fold.append(
                {
                    "fold": k,
                    "speaker": speaker,
                    "split_sizes": {name: len(idx) for name, idx in splits.items()},
                    "train_speakers": _speakers(clips, splits["train"]),
                    "val_speakers": _speakers(clips, splits["val"]),
                    "rows": score_fold(model, datamodule, config, settings, base.seed),
                }
            )
    return {
        "protocol": "loso",
        "run_dir": str(run),
        "seed": base.seed,
        "meta": {
            **run_meta(base),
            "parameters": sum(p.numel() for p in base_model.net.parameters()),
            "architecture": architecture(base_model),
            "labels": list(base_model.labels),
            "speakers": [s for s, _ in folds],
            "val_fraction": val_fraction,
            "compress_settings": settings.as_dict(),
        },
        "folds": per_fold,
        "aggregate": aggregate(per_fold, keys=[key for key, _ in LOSO_ROWS]),
    }


def check_loso_options(seeds: int, hl_sweep: bool) -> None:
    if seeds != 1:
        raise ConfigError("--seeds: not used with --protocol loso (the folds are the repetitions)")
    if hl_sweep:
        raise ConfigError("--hl-sweep: not used with --protocol loso")
