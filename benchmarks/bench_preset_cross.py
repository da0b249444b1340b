"""Which side of a corpus pair a feature preset moves: each training preset crossed with each preset the target is read in.

    python benchmarks/bench_preset_cross.py --data-root ../shared/datasets \
        --presets portable-trimmed portable-trimmed-floor --seeds 0 1 2 3 4

A preset that changes cross-corpus UAR does it through the clips the model learns from, the
clips it is read on, or both. Each seed trains one fp32 model per preset on the source corpus
(the default recipe, its own stratified split, `serlaq.training.fit`), then reads every clip of
the target corpus in the features of every preset (UAR on the labels both share, the model
answering among them, as `serlaq evaluate` does). The table pairs each (train, read) cell
against the first preset's diagonal on the same seed; the off-diagonal cells are not a
deployable model (the runtime reads a clip in its model's own preset), only the attribution.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-root", type=Path, required=True, help="folder holding the corpora (emodb/, tess/)")
    ap.add_argument("--source", default="emodb", help="corpus the models learn from (a folder under --data-root)")
    ap.add_argument("--target", default="tess", help="corpus they are read on")
    ap.add_argument("--presets", nargs="+", required=True, help="feature presets; the first is the baseline")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = ap.parse_args()

    from _common import shared_label_score
    from serlaq.config import load_config
    from serlaq.data.cache import extract_features
    from serlaq.data.corpora import discover
    from serlaq.model import SERClassifier
    from serlaq.training import fit

    target = discover(args.data_root / args.target, args.target)
    base = {"data.dataset": args.source, "data.data_dir": str(args.data_root / args.source), "trainer.enable_progress_bar": False}
    read: dict[str, tuple[list, np.ndarray]] = {}
    uar: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-preset-cross-") as work:
        for seed in args.seeds:
            for train in args.presets:
                config = load_config(None, {**base, "seed": seed, "features.preset": train, "name": f"{train}-s{seed}", "out_dir": work})
                fit(config)
                model = SERClassifier.load_from_checkpoint(config.run_dir / "model.ckpt", map_location="cpu").eval()
                for preset in args.presets:
                    if preset not in read:
                        features = load_config(None, {**base, "features.preset": preset}).features
                        ex = extract_features(target, features, config.data.cache_dir, progress=False)
                        read[preset] = (ex.clips, ex.X)
                    score = 100 * shared_label_score(model, *read[preset])["uar"]
                    uar.setdefault((train, preset), []).append(score)
                    print(f"seed {seed} trained {train} read {preset}: UAR {score:.1f}", flush=True)
                shutil.rmtree(config.run_dir, ignore_errors=True)
    first = (args.presets[0], args.presets[0])
    print(f"\n{args.source} -> {args.target}, {len(args.seeds)} seeds, fp32, UAR % (paired against trained and read {args.presets[0]})\n")
    print("| trained | read | UAR | paired |")
    print("|---|---|---|---|")
    for (train, preset), v in uar.items():
        d = np.array(v) - np.array(uar[first])
        paired = "–" if (train, preset) == first else f"{d.mean():+.1f} ± {d.std(ddof=1):.1f} ({(d > 0).sum()}/{(d < 0).sum()})"
        print(f"| {train} | {preset} | {np.mean(v):.1f} ± {np.std(v, ddof=1):.1f} | {paired} |")


if __name__ == "__main__":
    main()
