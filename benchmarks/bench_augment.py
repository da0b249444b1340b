"""Which waveform augmentations help across corpora: chosen on the inner cross-corpus folds.

    python benchmarks/bench_augment.py --emodb ../shared/datasets/emodb --tess ../shared/datasets/tess \
        --seeds 0 1 2 --variants none noise reverb eq resample gain speed all --out bench-augment.jsonl

Two directions, each a training corpus and a validation corpus: train on EMODB (its own
stratified 80/10/10 split, the current default preset and recipe), score on every TESS
speaker; and the reverse. The test splits are not used: only the training corpus's train
split trains, and the other corpus serves as validation for the choice. Each (direction,
variant, seed) is one `serlaq fit` of the default config with `data.augment` set to the
variant (`copies` augmented copies per training clip; single-transform variants apply their
transform to every copy, p = 1; `all` applies each with p = 0.5), paired against `none`
on the same seed. The score is UAR on the labels both corpora share, the model answering
among them (as `serlaq evaluate` does), and the share of the most predicted label, on the
whole other corpus and on its inner speakers (`uar_inner`: TESS's OAF, EMODB's 03, 08, 09,
10 and 11 pooled, the speakers the switches are chosen on). One JSON line per run is
appended to --out (a rerun skips what is there), then both tables are printed (`python
benchmarks/bench_augment.py --table [--inner] A.jsonl [B.jsonl ...]` prints one for files
written by several processes).

A switch that is not an augmentation (a network width, a weight decay) runs as `--variants
none --set KEY=VALUE --tag NAME`: its rows are named NAME and pair, in `--table`, against
the `none` rows of a plain run on the same seeds.

`--augment-seed N` fixes the augmentation draws across run seeds (the run seed still sets
the split and the initialisation): the augmented features are then extracted once per
variant instead of once per seed, which is what makes the run fit on a small machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SINGLE = ("noise", "reverb", "eq", "resample", "gain", "speed", "pitch", "pause")


def variant_augment(name: str, copies: int, seed: int | None) -> dict[str, Any] | None:
    """The `data.augment` section of a variant: none, one transform, `all`, or a + joined set (p 0.5 each)."""
    if name == "none":
        return None
    if name in SINGLE:
        return {"copies": copies, "seed": seed, name: {"p": 1.0}}
    names = SINGLE if name == "all" else name.split("+")
    bad = [n for n in names if n not in SINGLE]
    if bad:
        raise SystemExit(f"--variants: unknown transform {bad[0]!r} (known: none, all, {', '.join(SINGLE)}, or a+b)")
    return {"copies": copies, "seed": seed, **{n: {"p": 0.5} for n in names}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--emodb", type=Path, required=True)
    ap.add_argument("--tess", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=["none", *SINGLE, "all"])
    ap.add_argument("--directions", nargs="+", default=["emodb->tess", "tess->emodb"])
    ap.add_argument("--copies", type=int, default=1)
    ap.add_argument("--augment-seed", type=int, default=None)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="extra config override key=value")
    ap.add_argument("--work", type=Path, default=Path("bench-augment-runs"))
    ap.add_argument("--out", type=Path, default=Path("bench-augment.jsonl"))
    ap.add_argument(
        "--tag", default=None,
        help="name the rows of this run TAG (variant `none`) or VARIANT+TAG, so a run with --set pairs against a plain run's `none` in --table",
    )  # fmt: skip
    args = ap.parse_args()

    from _common import INNER_SPEAKERS, shared_label_score
    from serlaq.config import load_config, parse_override
    from serlaq.data.cache import extract_features
    from serlaq.data.corpora import discover
    from serlaq.model import SERClassifier
    from serlaq.training import fit

    corpora = {"emodb": ("emodb", args.emodb), "tess": ("tess", args.tess)}
    done = set()
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["direction"], r["variant"], r["seed"]))
    targets: dict[tuple[str, str], tuple[list[Any], np.ndarray]] = {}
    for seed in args.seeds:  # seed-major: a run cut short still has every direction paired
        for direction in args.directions:
            source, target = direction.split("->")
            for variant in args.variants:
                label = variant if args.tag is None else args.tag if variant == "none" else f"{variant}+{args.tag}"
                if (direction, label, seed) in done:
                    continue
                overrides = {
                    "seed": seed,
                    "name": f"{source}-{target}-{label}-s{seed}",
                    "out_dir": str(args.work),
                    "data.dataset": corpora[source][0],
                    "data.data_dir": str(corpora[source][1]),
                    "data.augment": variant_augment(variant, args.copies, args.augment_seed),
                    "trainer.enable_progress_bar": False,
                    **dict(parse_override(s) for s in args.sets),
                }
                config = load_config(None, overrides)
                t0 = time.perf_counter()
                result = fit(config)
                model = SERClassifier.load_from_checkpoint(config.run_dir / "model.ckpt", map_location="cpu").eval()
                # the target's clips in this run's own features (a --set may change them)
                key = (target, config.features.model_dump_json())
                if key not in targets:
                    clips = discover(corpora[target][1], corpora[target][0])
                    ex = extract_features(clips, config.features, config.data.cache_dir, progress=False)
                    targets[key] = (ex.clips, ex.X)
                row = {
                    "direction": direction,
                    "variant": label,
                    "seed": seed,
                    "augment": overrides["data.augment"],
                    "sets": args.sets,  # transform parameters given with --set land here, not in "augment"
                    "preset": config.features.preset,
                    "source_test_accuracy": result.test_accuracy,
                    **shared_label_score(model, *targets[key], per_speaker=True, inner=INNER_SPEAKERS[target]),
                    "seconds": round(time.perf_counter() - t0, 1),
                }
                with args.out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(f"{direction} {label} seed {seed}: UAR {100 * row['uar']:.1f} top {100 * row['top_share']:.0f}% ({row['seconds']} s)", flush=True)
                shutil.rmtree(config.run_dir, ignore_errors=True)
    table(args.out)
    table(args.out, score="uar_inner")


def table(*paths: Path, score: str = "uar") -> None:
    """The markdown table of one or more result files (runs split across processes)."""
    from _common import paired_table

    rows = [json.loads(line) for path in paths for line in path.read_text().splitlines() if line.strip()]
    paired_table(rows, "direction", ("mean paired", lambda _rows, deltas: f"{statistics.mean(deltas):+.1f}"), score=score)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--table":  # --table [--inner] RESULTS.jsonl [MORE.jsonl ...]
        inner = sys.argv[2:3] == ["--inner"]
        table(*(Path(p) for p in sys.argv[2 + inner :]), score="uar_inner" if inner else "uar")
    else:
        main()
