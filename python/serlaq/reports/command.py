"""`report(run_dir, ...)`: the command that trains what is missing, computes and writes a report."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from serlaq.config import RunConfig, load_config
from serlaq.errors import ConfigError
from serlaq.io import atomic_write_json, atomic_write_text
from serlaq.laq_config import LaqConfig
from serlaq.lightning_utils import quiet_lightning
from serlaq.plots import plot_confusion
from serlaq.presets import PRESETS
from serlaq.reports.figures import plot_accuracy_vs_bits, plot_hl_sweep, plot_layer_bits
from serlaq.reports.loso import check_loso_options, loso_report
from serlaq.reports.markdown import render_loso_markdown, render_markdown
from serlaq.reports.meta import run_meta
from serlaq.reports.over_seeds import aggregate
from serlaq.reports.rows import evaluate_model
from serlaq.training import fit, resolve_paths


def _train(config: Any, run_dir: Path, progress: Callable[[str], None]) -> Path:
    """Train `config` into `run_dir` unless a finished run with the same config is already there."""
    config = resolve_paths(config)  # what fit saves in config.yaml
    ckpt = run_dir / "model.ckpt"
    saved = run_dir / "config.yaml"
    if ckpt.is_file() and saved.is_file():
        try:
            if load_config(saved).to_dict() == config.to_dict():
                return ckpt
        except Exception:  # an unreadable old config: train again
            pass
    progress(f"training {run_dir}")
    result = fit(config)
    assert result is not None
    return result.checkpoint


def report(
    run_dir: str | os.PathLike[str],
    *,
    seeds: int = 1,
    hl_sweep: bool = False,
    qat_rows: bool = True,
    table3: bool = True,
    out: str | os.PathLike[str] | None = None,
    progress: Callable[[str], None] | None = None,
    protocol: str = "split",
    data_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write the report of the run in `run_dir`; returns the report folder.

    `protocol`: "split" (the run's own split: Table 4 / Table 3, `seeds` seeds) or "loso"
    (leave-one-speaker-out folds of the run's config, fp32 and compressed; `serlaq.reports.loso`).
    The run's data is rebuilt from its checkpoint and checked against the split fingerprint
    it records (`SERDataModule.from_checkpoint`; a changed corpus is refused); `data_dir`
    replaces the corpus folder it names (a corpus moved whole), for the seeds and folds too."""
    from serlaq.data.datamodule import SERDataModule
    from serlaq.laq.compress import load_checkpoint

    say = progress or (lambda _msg: None)
    if protocol not in ("split", "loso"):  # cross scores a .laq: serlaq.cross_corpus.cross_report
        raise ConfigError(f"--protocol: expected split or loso here (cross: serlaq.cross_corpus), got {protocol!r}")
    run = Path(run_dir)
    if run.is_file():
        raise ConfigError(
            f"{run}: a file; --protocol {protocol} needs the run folder of serlaq fit (with model.ckpt); "
            "a .laq file is scored with --protocol cross"
        )
    if not run.is_dir():
        raise ConfigError(f"{run}: run folder not found")
    ckpt = run / "model.ckpt"
    if not ckpt.is_file():
        raise ConfigError(f"{run}: no model.ckpt (train it first with serlaq fit)")
    if seeds < 1:
        raise ConfigError(f"--seeds: must be >= 1, got {seeds}")
    if protocol == "loso":
        check_loso_options(seeds, hl_sweep)
    out_dir = Path(out) if out is not None else run / ("report" if protocol == "split" else "report-loso")
    out_dir.mkdir(parents=True, exist_ok=True)
    base_model = load_checkpoint(ckpt)
    base_dm = SERDataModule.from_checkpoint(ckpt, data_dir=data_dir)  # checked against the checkpoint's split
    base = RunConfig.model_validate(base_model.hparams["run_config"])
    if data_dir is not None:  # the seeds / folds trained here read the corpus where it is now
        base = base.model_copy(update={"data": base_dm.config.data})
    if protocol == "loso":
        loso = loso_report(run, base_model, base, out_dir, progress=say, datamodule=base_dm)
        atomic_write_json(out_dir / "report.json", loso, indent=1)
        atomic_write_text(out_dir / "report.md", render_loso_markdown(loso))
        return out_dir
    # the "default compress" row: the run's own laq section when it uses the default mode
    default = (base.laq if base.laq is not None and base.laq.mode == "qat" else LaqConfig()).resolved()
    seed_list = [base.seed + i for i in range(seeds)]

    def rows_for(model: Any, config: Any, s: int) -> dict[str, Any]:
        dm = base_dm if model is base_model else SERDataModule.from_model(model)
        return evaluate_model(
            model,
            dm,
            trainer_settings={**config.trainer.model_dump(exclude_none=True), "enable_progress_bar": False},
            lr=config.train.lr,
            seed=s,
            qat_rows=qat_rows,
            table3=table3,
            default=default,
            progress=say,
        )

    per_seed = []
    with quiet_lightning():
        for s in seed_list:
            if s == base.seed:
                model, config = base_model, base
            else:
                config = base.model_copy(update={"seed": s, "out_dir": out_dir / "seeds", "name": f"seed-{s}", "laq": None})
                config = config.model_copy(update={"trainer": config.trainer.model_copy(update={"enable_progress_bar": False})})
                model = load_checkpoint(_train(config, out_dir / "seeds" / f"seed-{s}", say))
            say(f"evaluating seed {s}")
            per_seed.append({"seed": s, **rows_for(model, config, s)})
        sweep = {}
        if hl_sweep:
            for preset in PRESETS:
                config = base.model_copy(
                    update={
                        "model": base.model.model_copy(update={"hidden": preset}),
                        "out_dir": out_dir / "hl",
                        "name": preset,
                        "laq": None,
                        "trainer": base.trainer.model_copy(update={"enable_progress_bar": False}),
                    }
                )
                model = load_checkpoint(_train(config, out_dir / "hl" / preset, say))
                say(f"evaluating {preset}")
                dm = SERDataModule.from_model(model)
                sweep[preset] = evaluate_model(model, dm, qat_rows=False, table3=False, seed=base.seed)
    first = per_seed[0]
    result: dict[str, Any] = {
        "run_dir": str(run),
        "seeds": seed_list,
        "meta": {
            **run_meta(base),
            "architecture": f"{first['layers'][0]['shape'][1]}-" + "-".join(str(l['shape'][0]) for l in first["layers"]),
            "parameters": first["parameters"],
            "split_sizes": first["split_sizes"],
            "labels": first["labels"],
            "default_settings": first.get("default_settings"),
        },
        "per_seed": per_seed,
        "aggregate": aggregate(per_seed),
    }
    if sweep:
        result["hl_sweep"] = sweep
    atomic_write_json(out_dir / "report.json", result, indent=1)
    atomic_write_text(out_dir / "report.md", render_markdown(result))
    plot_accuracy_vs_bits(result, out_dir / "accuracy_vs_bits.png")
    plot_layer_bits(result, out_dir / "layer_bits.png")
    plot_confusion(
        first["confusion_laq"], first["labels"], out_dir / "confusion_laq.png", title=f"LAQ (paper), test, seed {seed_list[0]}", cells="rates"
    )
    if sweep:
        plot_hl_sweep(sweep, out_dir / "hl_sweep.png")
    return out_dir
