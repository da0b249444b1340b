"""When the new room holds only some of a model's labels, does `serlaq adapt`'s label balance
(uniform over every label of the model) cost what a balance over the labels present would not?

A natural-speech corpus often holds four of the `general` model's eight labels (angry, happy,
neutral, sad). The balance step shifts the output biases until the new clips' mean
probability is uniform over all of the model's labels, so it also pushes clips toward labels
the room never has. This benchmark trains the default EMODB recipe (`configs/emodb.yaml`, 7
labels), adapts it on TESS clips of a label subset only (labels unused, as `serlaq adapt`),
and scores among that subset (as `serlaq evaluate` does):

- `no balance`: the statistics alone (`adapt(..., balance=False)`);
- `balance, all labels`: what `serlaq adapt` ships (uniform over the model's 7);
- `balance, labels present`: `adapt(..., labels=subset)` (`serlaq adapt --labels`): the same
  fixed point over the subset's columns only.

    python benchmarks/bench_balance_subset.py --emodb ../shared/datasets/emodb --tess ../shared/datasets/tess \
        --seeds 0 1 2 3 4 --subset angry happy neutral sad

UAR on TESS speaker OAF (the inner speaker cross-corpus choices are made on) and on all of TESS.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


def uar(pred: np.ndarray, truth: np.ndarray, k: int) -> float:
    return float(np.mean([np.mean(pred[truth == c] == c) for c in range(k) if np.any(truth == c)]))


def run_seed(args: argparse.Namespace, seed: int, tmp: Path) -> dict[str, Any]:
    from _common import fit_compressed

    from serlaq.data.corpora import discover
    from serlaq.runtime import LaqModel

    overrides = [
        f"data.data_dir={args.emodb}",
        f"data.cache_dir={tmp / 'cache'}",
        f"out_dir={tmp / 'runs'}",
        "trainer.enable_progress_bar=false",
        f"seed={seed}",
        f"name=emodb-s{seed}",
    ]
    laq_path = tmp / f"emodb-s{seed}.laq"
    fit_compressed(ROOT / "configs" / "emodb.yaml", overrides, seed, laq_path)
    laq = LaqModel.load(laq_path)
    subset = [lab for lab in laq.labels if lab in args.subset]
    clips = [c for c in discover(args.tess, "tess", on_error="skip") if c.label in subset]
    paths = [c.path for c in clips]
    truth = np.array([subset.index(c.label) for c in clips])
    inner = np.array([c.speaker == "OAF" for c in clips])
    cols = [laq.labels.index(lab) for lab in subset]

    plain = laq.adapt(paths, source="subset", balance=False)
    shipped = laq.adapt(paths, source="subset")
    held = laq.adapt(paths, source="subset", labels=subset)
    feats = np.stack([plain.features_from_file(p) for p in paths])
    z_plain, z_shipped, z_held = (m.logits(feats).astype(np.float64) for m in (plain, shipped, held))
    z_present = z_held[:, cols]

    row: dict[str, Any] = {"seed": seed}
    for name, z in (("no balance", z_plain[:, cols]), ("balance, all labels", z_shipped[:, cols]), ("balance, labels present", z_present)):
        pred = z.argmax(1)
        share = np.bincount(pred, minlength=len(cols)).max() / len(pred)
        row[name] = {"oaf": uar(pred[inner], truth[inner], len(cols)), "all": uar(pred, truth, len(cols)), "top": float(share)}
    print(f"seed {seed}: " + "  ".join(f"{k} OAF {100 * v['oaf']:.1f} all {100 * v['all']:.1f} top {100 * v['top']:.0f}%"
                                       for k, v in row.items() if k != "seed"), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emodb", type=Path, required=True)
    parser.add_argument("--tess", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--subset", nargs="+", default=["angry", "happy", "neutral", "sad"], help="the labels the new room holds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-balance-") as tmp:
        rows = [run_seed(args, seed, Path(tmp)) for seed in args.seeds]
    modes = ["no balance", "balance, all labels", "balance, labels present"]
    print(f"\n### Adapted on TESS clips of {', '.join(args.subset)} only ({len(rows)} seeds; paired against the shipped balance)\n")
    print("| mode | UAR, speaker OAF | paired | UAR, all of TESS | paired | most predicted label |")
    print("|---|---|---|---|---|---|")
    for mode in modes:
        def ms(key: str, m: str = mode) -> str:
            v = [100 * r[m][key] for r in rows]
            return f"{statistics.fmean(v):.1f} ± {statistics.stdev(v) if len(v) > 1 else 0.0:.1f}"

        def paired(key: str, m: str = mode) -> str:
            if m == "balance, all labels":
                return "–"
            d = [100 * (r[m][key] - r["balance, all labels"][key]) for r in rows]
            return f"{statistics.fmean(d):+.1f} ± {statistics.stdev(d) if len(d) > 1 else 0.0:.1f}"

        print(f"| {mode} | {ms('oaf')} | {paired('oaf')} | {ms('all')} | {paired('all')} | {ms('top')} % |")


if __name__ == "__main__":
    main()
