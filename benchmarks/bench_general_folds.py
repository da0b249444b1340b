"""New voices for the general recipe: inner folds of a model trained on both corpora.

    python benchmarks/bench_general_folds.py --emodb ../shared/datasets/emodb --tess ../shared/datasets/tess \
        --seeds 0 1 2 --variant none \
        --variant noise data.augment.copies=1 data.augment.seed=0 'data.augment.noise.snr_db=[20,40]' data.augment.noise.p=1 \
        --out bench-general-folds.jsonl

`bench_augment.py` chooses a training switch on single-corpus models (EMODB -> TESS speaker
OAF, TESS -> EMODB speakers 03/08/09/10/11). The shipped `general` model learns from both
corpora at once, so a switch that costs a one-corpus model its new voices may not cost it
the same. These folds ask that question of `configs/general.yaml` itself: the same held-out
speakers, left out of the training pool while every other clip of both corpora trains.

- `oaf`: EMODB (all) + TESS speaker YAF train; scored on TESS speaker OAF.
- `emodb5`: EMODB without speakers 03, 08, 09, 10, 11 + TESS (all) train; scored on those five.

Each (fold, variant, seed) is one `serlaq fit` of `configs/general.yaml` with the pool
written as two csv manifests (named `emodb` and `tess`, so balancing and speaker ids are
the config's own) and the variant's overrides; the held-out speakers' clips never enter
the split. The score is the fp32 model's UAR on the held-out speakers (the labels they
have, the model answering among them), accuracy and the most predicted label's share, and
the model's own test accuracy (the pool's stratified test split). One JSON line per run is
appended to --out (a rerun skips what is there); the table pairs each variant against
`none` on the same seed (`--table A.jsonl [B.jsonl ...]` prints it for finished files).
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import INNER_SPEAKERS

FOLDS = {
    # fold: (corpus the scored speakers come from, those speakers): the one-corpus inner speakers
    "oaf": ("tess", INNER_SPEAKERS["tess"]),
    "emodb5": ("emodb", INNER_SPEAKERS["emodb"]),
}


def write_manifest(path: Path, clips: list[Any]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "speaker"])
        for c in clips:
            w.writerow([str(Path(c.path).resolve()), c.label, c.speaker])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--emodb", type=Path, required=True)
    ap.add_argument("--tess", type=Path, required=True)
    ap.add_argument("--config", type=Path, default=Path(__file__).resolve().parents[1] / "configs" / "general.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--folds", nargs="+", default=list(FOLDS), choices=list(FOLDS))
    ap.add_argument(
        "--variant", dest="variants", nargs="+", action="append", metavar=("NAME", "KEY=VALUE"),
        help="a variant: its name, then its config overrides (none: the config as it is); repeat for more",
    )
    ap.add_argument("--work", type=Path, default=Path("bench-general-folds"))
    ap.add_argument("--out", type=Path, default=Path("bench-general-folds.jsonl"))
    args = ap.parse_args()
    variants = {v[0]: v[1:] for v in (args.variants or [["none"]])}

    from _common import shared_label_score
    from serlaq.config import load_config, parse_override
    from serlaq.data.cache import extract_features
    from serlaq.data.corpora import discover
    from serlaq.model import SERClassifier
    from serlaq.training import fit

    corpora = {"emodb": discover(args.emodb, "emodb"), "tess": discover(args.tess, "tess")}
    done = set()
    if args.out.exists():
        done = {(r["fold"], r["variant"], r["seed"]) for r in map(json.loads, args.out.read_text().splitlines())}
    args.work.mkdir(parents=True, exist_ok=True)
    held: dict[tuple[str, str], tuple[list[Any], np.ndarray]] = {}
    for seed in args.seeds:  # seed-major: a run cut short still has every fold paired
        for fold in args.folds:
            corpus, speakers = FOLDS[fold]
            manifests = {}
            for name, clips in corpora.items():
                pool = [c for c in clips if not (name == corpus and c.speaker in speakers)]
                manifests[name] = args.work / f"{fold}-{name}.csv"
                write_manifest(manifests[name], pool)
            for variant, sets in variants.items():
                if (fold, variant, seed) in done:
                    continue
                overrides = {
                    "seed": seed,
                    "name": f"{fold}-{variant}-s{seed}",
                    "out_dir": str(args.work),
                    "data.corpora": [{"dataset": "csv", "manifest": str(manifests[n]), "name": n} for n in corpora],
                    "trainer.enable_progress_bar": False,
                    **dict(parse_override(s) for s in sets),
                }
                config = load_config(args.config, overrides)
                t0 = time.perf_counter()
                result = fit(config)
                model = SERClassifier.load_from_checkpoint(config.run_dir / "model.ckpt", map_location="cpu").eval()
                # the held-out clips in this variant's own features (a variant may change them)
                key = (fold, config.features.model_dump_json())
                if key not in held:
                    clips = [c for c in corpora[corpus] if c.speaker in speakers]
                    ex = extract_features(clips, config.features, config.data.cache_dir, progress=False)
                    held[key] = (ex.clips, ex.X)
                row = {
                    "fold": fold,
                    "variant": variant,
                    "seed": seed,
                    "sets": sets,
                    "preset": config.features.preset,
                    "source_test_accuracy": result.test_accuracy,
                    **shared_label_score(model, *held[key]),
                    "seconds": round(time.perf_counter() - t0, 1),
                }
                with args.out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{fold} {variant} seed {seed}: UAR {100 * row['uar']:.1f} top {100 * row['top_share']:.0f}% "
                      f"own test {100 * result.test_accuracy:.1f} ({row['seconds']} s)", flush=True)
                shutil.rmtree(config.run_dir, ignore_errors=True)
    table(args.out)


def table(*paths: Path) -> None:
    """The markdown table of one or more result files, each variant paired against `none`."""
    from _common import paired_table

    rows = [json.loads(line) for path in paths for line in path.read_text().splitlines() if line.strip()]
    own = ("own test %", lambda vrows, _deltas: f"{statistics.mean(100 * r['source_test_accuracy'] for r in vrows):.1f}")
    paired_table(rows, "fold", own)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--table":  # --table RESULTS.jsonl [MORE.jsonl ...]
        table(*(Path(p) for p in sys.argv[2:]))
    else:
        main()
