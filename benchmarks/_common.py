"""Helpers the benchmark scripts share (run as `python benchmarks/<script>.py`, so this folder is on sys.path)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

# The speakers cross-corpus choices are made on (docs/training-data.md): a model learnt from
# EMODB is scored on TESS's OAF, one learnt from TESS on these five EMODB speakers; the rest of
# each corpus is what the choice is then reported on.
INNER_SPEAKERS = {"tess": ("OAF",), "emodb": ("03", "08", "09", "10", "11")}


def inner_splits(config: Any, seed: int) -> dict[str, list[int]]:
    """Train / val / holdout clip indices carved from the outer train+val of `config`'s split.

    Model-selection benchmarks choose on these inner splits so the outer test split is never
    seen; the inner holdout has the size of the outer test split, stratified by label.
    """
    import numpy as np

    from serlaq.data.datamodule import SERDataModule
    from serlaq.data.splits import split_indices

    outer = SERDataModule(config)
    outer.setup()
    label_at = {
        i: clip.label
        for split in ("train", "val")  # the outer test split is set aside
        for i, clip in zip(outer.split_indices(split), outer.split_clips(split))
    }
    kept = np.array(sorted(label_at))
    labels = [label_at[i] for i in kept]
    fraction = len(outer.split_indices("test")) / len(kept)
    inner = split_indices(labels, seed=10_000 + seed, fractions=(1 - 2 * fraction, fraction, fraction))
    return {name: kept[idx].tolist() for name, idx in zip(("train", "val", "test"), inner)}


def fit_compressed(config_path: Path, overrides: list[str], seed: int, laq_path: Path) -> tuple[Any, Any, Any, Any]:
    """Train the run of `config_path` + `overrides` and compress it as `serlaq fit` does,
    the `.laq` written to `laq_path`: (the fit result, the LAQ outcome, the file's size in
    bytes, the datamodule)."""
    from serlaq.config import load_config
    from serlaq.data.datamodule import SERDataModule
    from serlaq.laq.compress import load_checkpoint
    from serlaq.laq.pipeline import compress_model, splits_of
    from serlaq.laq_config import LaqConfig
    from serlaq.training import fit, quiet_lightning

    config = load_config(config_path, overrides)
    settings = (config.laq if config.laq is not None else LaqConfig()).resolved()
    config = config.model_copy(update={"laq": None})
    datamodule = SERDataModule(config)
    result = fit(config, datamodule=datamodule)
    assert result is not None
    model = load_checkpoint(result.checkpoint).eval()
    with quiet_lightning():
        out = compress_model(
            model, splits_of(datamodule), settings, datamodule=datamodule,
            trainer_settings=config.trainer.model_dump(exclude_none=True), lr=config.train.lr, seed=seed,
        )  # fmt: skip
    return result, out, out.write(laq_path), datamodule


def shared_label_score(
    model: Any, clips: list[Any], features: Any, per_speaker: bool = False, inner: Collection[str] = ()
) -> dict[str, Any]:
    """UAR / accuracy / most-predicted share of a torch `SERClassifier` on the labels of
    `clips` it knows, answering among them (as `serlaq evaluate` does); with `per_speaker`,
    each speaker's UAR too (`uar_per_speaker`); with `inner`, the UAR of those speakers' clips
    pooled (`uar_inner`)."""
    import numpy as np
    import torch

    shared = [lab for lab in model.labels if lab in {c.label for c in clips}]
    keep = [i for i, c in enumerate(clips) if c.label in shared]
    with torch.no_grad():
        logits = model(torch.from_numpy(features[keep]))
    cols = [model.labels.index(lab) for lab in shared]
    pred = logits[:, cols].argmax(dim=1).numpy()
    true = np.array([shared.index(clips[i].label) for i in keep])

    def uar(mask: Any) -> float:
        return float(np.mean([(pred[mask & (true == k)] == k).mean() for k in range(len(shared)) if (mask & (true == k)).any()]))

    out = {
        "labels": shared,
        "clips": len(keep),
        "uar": uar(np.ones(len(keep), dtype=bool)),
        "accuracy": float((pred == true).mean()),
        "top_share": float(np.bincount(pred, minlength=len(shared)).max() / len(pred)),
    }
    speakers = np.array([str(clips[i].speaker) for i in keep])
    if per_speaker:
        out["uar_per_speaker"] = {s: uar(speakers == s) for s in sorted(set(speakers))}
    if inner:
        mask = np.isin(speakers, [str(s) for s in inner])
        if not mask.any():
            raise ValueError(f"none of the speakers {', '.join(inner)} is among the scored clips")
        out["uar_inner"] = uar(mask)
    return out


def mean_sd(xs: list[float], sign: bool = False) -> str:
    """`m ± sd` of `xs` (sd 0 for one value; `–` for none), signed for paired differences."""
    import statistics

    if not xs:
        return "–"
    m = statistics.mean(xs)
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{m:+.1f} ± {sd:.1f}" if sign else f"{m:.1f} ± {sd:.1f}"


def paired_table(rows: list[dict[str, Any]], group: str, last: tuple[str, Any], score: str = "uar") -> None:
    """Print a markdown table of result rows (keys `group`, `variant`, `seed`, `score`,
    `top_share`): per variant and group the score (a UAR), its difference from `none` on the
    same seed with the seeds it is better / worse on, and the most predicted label's share;
    `last` = (header, function of the variant's rows and its per-group mean differences) for
    the final column."""
    import statistics

    lacking = [r for r in rows if score not in r]
    if lacking:
        r = lacking[0]
        raise SystemExit(f"{len(lacking)} result rows have no {score!r} (first: {r[group]} {r['variant']} seed {r['seed']}): written by an older run")
    by = {(r[group], r["variant"], r["seed"]): r for r in rows}
    groups = list(dict.fromkeys(r[group] for r in rows))
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    print("\n| variant | " + " | ".join(f"{g} UAR | paired vs none | top label %" for g in groups) + f" | {last[0]} |")
    print("|---|" + "---|---|---|" * len(groups) + "---|")
    for v in variants:
        cells, mean_deltas = [], []
        for g in groups:
            seeds = sorted(s for (gg, vv, s) in by if gg == g and vv == v)
            uar = [100 * by[(g, v, s)][score] for s in seeds]
            deltas = [100 * (by[(g, v, s)][score] - by[(g, "none", s)][score]) for s in seeds if (g, "none", s) in by]
            top = [100 * by[(g, v, s)]["top_share"] for s in seeds]
            mean_deltas.append(statistics.mean(deltas) if deltas else float("nan"))
            wins = f" ({sum(d > 0 for d in deltas)}/{sum(d < 0 for d in deltas)})" if deltas else ""
            paired = "–" if v == "none" else mean_sd(deltas, sign=True) + wins
            cells.append(f"{mean_sd(uar)} (n={len(uar)}) | {paired} | {statistics.mean(top):.0f}" if uar else "– | – | –")
        print(f"| {v} | " + " | ".join(cells) + f" | {last[1]([r for r in rows if r['variant'] == v], mean_deltas)} |")
