"""Real-data acceptance of `serlaq fit`: accuracy over seeds and the time of a full fit.

    python benchmarks/bench_fit.py --data-dir /work/shared/datasets/emodb-2s --seeds 20

1. Accuracy: `serlaq.training.fit` with `configs/emodb.yaml` (the paper's 3HL MLP, Adam
   1e-3, batch 32, dropout 0.1, early stopping patience 5 on val accuracy, the model where training stopped) for
   seeds 0..N-1; each seed is a different stratified 80/10/10 split, initialization and
   shuffling. Prints per seed and mean ± sd of validation and test accuracy.
2. Same-run baseline: the widely used librosa + scikit-learn recipe's classifier,
   `MLPClassifier(hidden_layer_sizes=(300,), alpha=0.01, batch_size=256, epsilon=1e-8,
   learning_rate="adaptive", max_iter=500)` on unscaled features, trained on the SAME
   features and the SAME split of every seed, so the difference is the training recipe
   alone. (The features are serlaq's torch port of the recipe's librosa features.)
3. Time: `serlaq fit` as a user runs it (a fresh process: imports, corpus scan, features,
   training, testing, outputs), once with an empty feature cache (a temp dir) and once
   again with that cache filled.

Test accuracy is only reported, never used to choose. `--select` reruns the experiment
that chose `train.monitor` and `train.restore_best` without touching any test split: for
every seed the test split is set aside, the remaining clips are split again (seeded,
stratified) into inner train / inner val / inner holdout (about 379 / 54 / 54 clips on
EMODB), and each variant trains on inner train, stops on inner val and is scored on inner
holdout. Scoring on the same clips that picked the epoch would favour whatever selects
hardest on them; the holdout column does not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any


ROOT = Path(__file__).resolve().parents[1]

# Published figures for context (../shared/datasets/README.md): test accuracy %, mean ± sd.
REFERENCES = {
    "emodb-2s": [
        ("librosa + sklearn MLP recipe, 5 seeds", 64.8, 5.2),
        ("plain torch MLP of the paper, 20 seeds", 63.5, 6.6),
    ],
    "emodb": [
        ("librosa + sklearn MLP recipe, 5 seeds", 69.3, 6.7),
        ("plain torch MLP of the paper, 20 seeds", 70.0, 5.5),
        ("paper, one split", 74.07, None),
    ],
}



def seed_overrides(args: argparse.Namespace, cache_dir: Path, out_dir: Path, seed: int, name: str = "") -> list[str]:
    """The config overrides every fit of this benchmark shares (corpus, cache, seed, quiet); `--set` comes last."""
    return [
        *([f"name={name}"] if name else []),
        f"data.data_dir={args.data_dir}",
        f"data.dataset={args.dataset}",
        f"data.cache_dir={cache_dir}",
        f"out_dir={out_dir}",
        f"seed={seed}",
        "trainer.enable_progress_bar=false",
        *args.set,
    ]

def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def pct(values: list[float]) -> str:
    m, s = mean_sd([100 * v for v in values])
    return f"{m:5.1f} ± {s:4.1f}"


def sklearn_recipe(datamodule: Any, seed: int) -> tuple[float, float]:
    """The recipe's classifier on this run's features and split: (val acc, test acc)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x_train, y_train = (t.numpy() for t in datamodule.split_tensors("train"))
    clf = MLPClassifier(
        hidden_layer_sizes=(300,),
        alpha=0.01,
        batch_size=256,
        epsilon=1e-08,
        learning_rate="adaptive",
        max_iter=500,
        random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x_train, y_train)
    scores = []
    for split in ("val", "test"):
        x, y = (t.numpy() for t in datamodule.split_tensors(split))
        scores.append(float(clf.score(x, y)))
    return scores[0], scores[1]


def accuracy_over_seeds(args: argparse.Namespace, cache_dir: Path, out_dir: Path) -> list[dict[str, Any]]:
    import torch

    from serlaq.config import load_config
    from serlaq.data.datamodule import SERDataModule
    from serlaq.training import fit

    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        overrides = seed_overrides(args, cache_dir, out_dir, seed, name=f"seed-{seed}")
        config = load_config(args.config, overrides)
        result = fit(config)
        assert result is not None
        m = result.metrics
        row = {
            "seed": seed,
            "val": m["val"]["accuracy"],
            "test": m["test"]["accuracy"],
            "test_f1": m["test"]["macro_f1"],
            "best_epoch": m["best_epoch"] + 1,
            "epochs": m["epochs"],
            "fit_s": m["timings"]["fit_s"],
        }
        if args.baseline:
            datamodule = SERDataModule(config)
            datamodule.setup()
            threads = torch.get_num_threads()
            row["sk_val"], row["sk_test"] = sklearn_recipe(datamodule, seed)
            torch.set_num_threads(threads)
        rows.append(row)
        line = (
            f"seed {seed:3d}  val {100 * row['val']:5.1f}  test {100 * row['test']:5.1f}  "
            f"macro-F1 {100 * row['test_f1']:5.1f}  best epoch {row['best_epoch']:3d}/{row['epochs']:3d}"
        )
        if args.baseline:
            line += f"  | recipe val {100 * row['sk_val']:5.1f} test {100 * row['sk_test']:5.1f}"
        print(line, flush=True)
    return rows


SELECTION_VARIANTS = [
    {"train.monitor": "val_loss", "train.restore_best": True},
    {"train.monitor": "val_acc", "train.restore_best": True},
    {"train.monitor": "val_loss", "train.restore_best": False},
    {"train.monitor": "val_acc", "train.restore_best": False},
]


def model_selection(args: argparse.Namespace, cache_dir: Path, out_dir: Path) -> None:
    """Training choices compared on validation data only (see the module docstring)."""
    from _common import inner_splits
    from serlaq.config import load_config
    from serlaq.data.datamodule import SERDataModule
    from serlaq.training import fit

    results: list[list[tuple[float, float, int]]] = [[] for _ in SELECTION_VARIANTS]
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        base = seed_overrides(args, cache_dir, out_dir, seed)
        splits = inner_splits(load_config(args.config, base), seed)
        line = [f"seed {seed:3d}"]
        for k, variant in enumerate(SELECTION_VARIANTS):
            config = load_config(args.config, [*base, f"name=select-{seed}-{k}", *(f"{a}={b}" for a, b in variant.items())])
            result = fit(config, datamodule=SERDataModule(config, splits=splits))
            assert result is not None
            m = result.metrics
            results[k].append((m["val"]["accuracy"], m["test"]["accuracy"], m["epochs"]))
            line.append(f"{100 * m['test']['accuracy']:5.1f} ({m['epochs']:2d} ep)")
        print("  ".join(line), flush=True)
    print()
    print(f"model selection on validation data only: {args.seeds} seeds, test splits never used")
    print(f"{'monitor':10s} {'final model':24s} {'inner val %':>13s} {'inner holdout %':>16s} {'epochs':>7s}")
    for variant, rows in zip(SELECTION_VARIANTS, results):
        final = "best epoch (restored)" if variant["train.restore_best"] else "where training stopped"
        epochs = statistics.fmean(r[2] for r in rows)
        print(
            f"{variant['train.monitor']:10s} {final:24s} {pct([r[0] for r in rows]):>13s} "
            f"{pct([r[1] for r in rows]):>16s} {epochs:7.1f}"
        )


def time_cli(args: argparse.Namespace, cache_dir: Path, out_dir: Path) -> dict[str, float]:
    """Wall time of `serlaq fit` in a fresh process, with a cold then a warm feature cache."""
    env = {**os.environ, "SERLAQ_CACHE": str(cache_dir)}
    python_dir = str(ROOT / "python")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (python_dir, os.environ.get("PYTHONPATH")) if p)
    command = [
        sys.executable, "-m", "serlaq.cli", "fit", "--config", str(args.config),
        "--data-dir", str(args.data_dir), "--set", f"data.dataset={args.dataset}",
        "--set", "trainer.enable_progress_bar=false", *sum((["--set", s] for s in args.set), []),
    ]  # fmt: skip
    times = {}
    for label in ("cold", "cached"):
        started = time.perf_counter()
        done = subprocess.run([*command, "--out", str(out_dir / f"timed-{label}")], env=env, capture_output=True, text=True)
        times[label] = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"serlaq fit failed ({label}):\n{done.stderr}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help="corpus root, e.g. ../shared/datasets/emodb-2s")
    parser.add_argument("--dataset", default="emodb", help="corpus layout (emodb, tess, savee, folder, auto)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "emodb.yaml")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (splits) to average over")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the sklearn recipe")
    parser.add_argument("--no-timing", dest="timing", action="store_false", help="skip the cold/cached CLI timing")
    parser.add_argument("--select", action="store_true", help="run the validation-only model-selection experiment")
    args = parser.parse_args()
    args.data_dir = args.data_dir.resolve()
    if args.select:
        with tempfile.TemporaryDirectory(prefix="bench-fit-") as tmp:
            model_selection(args, Path(tmp) / "cache", Path(tmp) / "runs")
        return

    with tempfile.TemporaryDirectory(prefix="bench-fit-") as tmp:
        tmp_dir = Path(tmp)
        timing = time_cli(args, tmp_dir / "timing-cache", tmp_dir / "timing-runs") if args.timing else None
        rows = accuracy_over_seeds(args, tmp_dir / "cache", tmp_dir / "runs")

    corpus = args.data_dir.name
    n = len(rows)
    print()
    print(f"corpus {args.data_dir} ({args.dataset}), {n} seeds (stratified 80/10/10 splits), overrides: {args.set or 'none'}")
    print(f"{'classifier':48s} {'val acc %':>13s} {'test acc %':>13s}")
    print(f"{'serlaq fit (3HL MLP, configs/emodb.yaml)':48s} {pct([r['val'] for r in rows]):>13s} {pct([r['test'] for r in rows]):>13s}")
    if args.baseline:
        print(
            f"{'sklearn recipe MLP(300), same features + splits':48s} {pct([r['sk_val'] for r in rows]):>13s} "
            f"{pct([r['sk_test'] for r in rows]):>13s}"
        )
        diffs = [r["test"] - r["sk_test"] for r in rows]
        wins = sum(d > 0 for d in diffs)
        ties = sum(d == 0 for d in diffs)
        m, s = mean_sd([100 * d for d in diffs])
        print(f"{'  serlaq - recipe, paired per split':48s} {'':>13s} {m:+5.1f} ± {s:4.1f}   (better on {wins}, tied on {ties} of {n} splits)")
    for name, mean, sd in REFERENCES.get(corpus, []):
        spread = f" ± {sd:4.1f}" if sd is not None else "       "
        print(f"{'reference: ' + name:48s} {'':>13s} {mean:5.1f}{spread}")
    macro = [r["test_f1"] for r in rows]
    epochs = [r["epochs"] for r in rows]
    print(f"test macro-F1 {pct(macro)} %; epochs trained {statistics.fmean(epochs):.1f} (best at {statistics.fmean([r['best_epoch'] for r in rows]):.1f}); "
          f"mean training time {statistics.fmean([r['fit_s'] for r in rows]):.1f} s per fit")
    if timing is not None:
        print()
        print(f"{'serlaq fit, one fresh process (wall s)':48s} {'measured':>9s} {'target':>8s}")
        print(f"{'  cold feature cache (features + training)':48s} {timing['cold']:9.1f} {'< 60':>8s}")
        print(f"{'  cached rerun':48s} {timing['cached']:9.1f} {'< 15':>8s}")
        print(f"{'  cold / cached':48s} {timing['cold'] / timing['cached']:9.2f}")


if __name__ == "__main__":
    main()
