"""Choose the hidden reference's rank, the temperature's growth (`laq.ood_temper`) and its floor (`laq.ood_floor`) on the cross-corpus inner folds.

    nice python benchmarks/bench_ood_temper.py --seeds 3 --cache-dir /tmp/serlaq-cache

For each direction (EMODB trained, scored on the TESS speaker OAF; TESS trained, scored on
the EMODB speakers 03, 08, 09, 10, 11: speakers the cross-corpus benchmark's outer figures
also contain, so this is a selection, not a result) and seed, one default model is trained
and compressed exactly as `serlaq fit` does. Then, with no retraining (the reference and the
growth only change the confidence, never a label), every (rank, k) of the grid is applied to
the packed model: the reference of `rank` directions is fitted on the last hidden layer of
the training split, its 99th-percentile distance is the threshold, and the probabilities
are softmax(logits / (T * max(1, d / threshold)^k)), the softening stopped where the top
label's probability reaches m / classes (m = the floor, `laq.ood_floor`; 0 = no floor),
`serlaq.laq.calibration.runtime_temperatures`, the runtime's rule. Reported per cell, mean over
seeds: ECE on the other corpus's inner clips (zero-shot), ECE on the source's own test split
(the in-domain price), and the reference's bytes in the `.laq`. The baseline is k = 0 (the
temperature alone). The choice favours the mean of the two directions' zero-shot ECE with
the source's ECE not worse than +0.03, within the file budget (40 KB for the default EMODB
model: at most about 2.6 KB for the reference).

    nice python benchmarks/bench_ood_temper.py --seeds 3 --ranks 8 --tempers 0,4,5,6,8,12,16 --floors 0,1.5,2,2.5,3

is the second grid (2026-12-05): the rank fixed at 8 by the first, the floor added;
`--ranks 8 --percentiles 90,95,99 --tempers 0,8,12,16 --floors 2` the third (the threshold's percentile).
`--spaces hidden,hidden+features` adds, beside each cell, the distance taken as the larger of
the hidden one and the RMS z-score of the standardized features, each over its own threshold
(the same percentile of the training split's), so a clip far in either space is softened.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
INNER = {"tess": ["OAF"], "emodb": ["03", "08", "09", "10", "11"]}


def packed(laq: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(last hidden layer, logits) of the packed file, layer by layer, float64."""
    from serlaq import _native

    f = _native.LaqFile(str(laq.path))
    h = (x.astype(np.float32) - f.tensor("norm.mean")) / f.tensor("norm.std")
    last = len(f.layers()) - 1
    for i in range(last):
        h = np.maximum(np.asarray(f.forward(i, h)), 0.0)
    logits = np.asarray(f.forward(last, h.astype(np.float32)), dtype=np.float64)
    return h.astype(np.float64), logits


def train(args: argparse.Namespace, source: str, seed: int, tmp: Path) -> tuple[Any, Any]:
    """The default model of `source` trained and compressed as `serlaq fit` does; (LaqModel, datamodule)."""
    from _common import fit_compressed
    from serlaq.runtime import LaqModel

    name = f"{source}-s{seed}"
    overrides = [
        f"data.data_dir={args.data_root / source}",
        f"data.cache_dir={args.cache_dir or tmp / 'cache'}",
        f"out_dir={tmp / 'runs'}",
        "trainer.enable_progress_bar=false",
        f"seed={seed}",
        f"name={name}",
    ]
    path = tmp / f"{name}.laq"
    _, _, _, datamodule = fit_compressed(ROOT / "configs" / f"{source}.yaml", overrides, seed, path)
    return LaqModel.load(path), datamodule


def inner_clips(laq: Any, target: str, data_root: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Features (Rust runtime) and shared-label ids of the inner speakers of `target`."""
    from serlaq.cross_corpus import shared_clips

    clips, labels = shared_clips(laq, data_root / target, target)
    clips = [c for c in clips if c.speaker in INNER[target]]
    x = np.stack([np.asarray(laq.features_from_file(c.path), dtype=np.float32) for c in clips])
    return x, np.array([labels.index(c.label) for c in clips]), labels


def ece_of(logits: np.ndarray, t: np.ndarray, y: np.ndarray, cols: list[int]) -> float:
    """ECE of softmax(logits / t) restricted to `cols` (the shared labels, renormalised)."""
    from serlaq import metrics

    z = logits / t[:, None]
    p = np.exp(z - z.max(1, keepdims=True))
    p = p[:, cols] / p[:, cols].sum(1, keepdims=True) if cols else p / p.sum(1, keepdims=True)
    pred, conf = p.argmax(1), p.max(1)
    return metrics.expected_calibration_error(conf, pred == y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, default=Path("/work/shared/datasets"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--ranks", default="4,8,12,16")
    parser.add_argument("--tempers", default="0,2,4,5,6,8")
    parser.add_argument("--percentiles", default="99", help="the threshold: this percentile of the training distances")
    parser.add_argument("--floors", default="0", help="m: the softening stops at m / classes (0 = no floor)")
    parser.add_argument("--spaces", default="hidden", help="hidden, hidden+features: which distance grows the temperature")
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "python"))
    from serlaq import _native
    from serlaq.laq.calibration import (
        distance_threshold, feature_rms, hidden_distance, hidden_reference, runtime_temperatures,
    )  # fmt: skip

    ranks = [int(r) for r in args.ranks.split(",")]
    tempers = [float(k) for k in args.tempers.split(",")]
    floors = [float(m) for m in args.floors.split(",")]
    percentiles = [float(q) for q in args.percentiles.split(",")]
    spaces = args.spaces.split(",")
    if bad := set(spaces) - {"hidden", "hidden+features"}:
        parser.error(f"--spaces: unknown {sorted(bad)} (known: hidden, hidden+features)")
    cells: dict[tuple[str, str, int, float, float, float], dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for source, target in (("emodb", "tess"), ("tess", "emodb")):
            for seed in range(args.seeds):
                laq, datamodule = train(args, source, seed, tmp)
                x_train = datamodule.split_tensors("train")[0].numpy()
                h_train, _ = packed(laq, x_train)
                x_test, y_test = (t.numpy() for t in datamodule.split_tensors("test"))
                h_test, z_test = packed(laq, x_test)
                x_far, y_far, labels = inner_clips(laq, target, args.data_root)
                h_far, z_far = packed(laq, x_far)
                cols = [list(laq.labels).index(lab) for lab in labels]
                temperature = laq.temperature
                width = h_train.shape[1]
                norm = _native.LaqFile(str(laq.path))
                mean, std = norm.tensor("norm.mean"), norm.tensor("norm.std")
                # the runtime's own RMS z-score of the standardized features (`ood::feature_rms`)
                rms_train, rms_test, rms_far = (feature_rms(x, mean, std) for x in (x_train, x_test, x_far))
                for rank in ranks:
                    ref = hidden_reference(h_train, rank)
                    d_train = hidden_distance(h_train, ref)
                    d_test, d_far = hidden_distance(h_test, ref), hidden_distance(h_far, ref)
                    for q in percentiles:
                        thr = distance_threshold(d_train, q)
                        f_thr = distance_threshold(rms_train, q)
                        for space in spaces:
                            # distances in threshold units, so the growth reads max(1, r)^k with threshold 1
                            r_far, r_test = d_far / thr, d_test / thr
                            if space == "hidden+features":
                                r_far, r_test = np.maximum(r_far, rms_far / f_thr), np.maximum(r_test, rms_test / f_thr)
                            for k in tempers:
                                for m in floors:
                                    key = (space, f"{source}->{target}", rank, q, k, m)
                                    cell = cells.setdefault(key, {"far": [], "own": [], "bytes": []})
                                    t_far = runtime_temperatures(z_far, r_far, temperature, 1.0, k, m)
                                    t_test = runtime_temperatures(z_test, r_test, temperature, 1.0, k, m)
                                    cell["far"].append(ece_of(z_far, t_far, y_far, cols))
                                    cell["own"].append(ece_of(z_test, t_test, y_test, []))
                                    cell["bytes"].append(4.0 * (width + rank * width + rank + 1))
                print(f"# {source}->{target} seed {seed}: {len(x_far)} inner clips, threshold at rank 8 "
                      f"{distance_threshold(hidden_distance(h_train, hidden_reference(h_train, 8))):.3f}", flush=True)
    print("\n| space | rank | threshold percentile | k | floor m | EMODB->TESS zero-shot ECE | own test ECE | TESS->EMODB zero-shot ECE | own test ECE "
          "| mean zero-shot | vs k=0 | mean of all four | reference bytes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for space, rank, q in ((s_, r_, q_) for s_ in spaces for r_ in ranks for q_ in percentiles):
        base_key = (rank, q, 0.0, floors[0])
        base = statistics.mean(statistics.mean(cells[(space, d, *base_key)]["far"]) for d in ("emodb->tess", "tess->emodb")) if 0.0 in tempers else None
        for k in tempers:
            for m in floors:
                a, b = cells[(space, "emodb->tess", rank, q, k, m)], cells[(space, "tess->emodb", rank, q, k, m)]
                figures = [statistics.mean(c[key]) for c in (a, b) for key in ("far", "own")]
                mean = (figures[0] + figures[2]) / 2
                vs = f"{mean - base:+.3f}" if base is not None else "-"
                print(f"| {space} | {rank} | {q:g} | {k:g} | {m:g} | {figures[0]:.3f} | {figures[1]:.3f} | {figures[2]:.3f} | {figures[3]:.3f} | "
                      f"{mean:.3f} | {vs} | {statistics.mean(figures):.3f} | {a['bytes'][0]:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
