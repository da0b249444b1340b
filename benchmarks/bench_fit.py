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
hardest on them; the holdout column does not. `--variants` picks the group compared
(`monitor`: the original experiment; `combined`: feature presets x training recipes, the
one that chose the defaults; `features`, `recipe`: wider sweeps).

`--protocol acceptance` (issue 12): per seed, the paper switch (`features.preset=paper`,
`train.recipe=paper`) and the config's defaults are each trained on the same split, fp32
and default-compressed (the config's `laq:` section, else `LaqConfig()`: budget 1.1 bits + QAT; the `.laq` written to get
its real size); accuracy and UAR (sklearn's balanced accuracy), paired per split against
the paper preset's fp32. `--protocol loso`: the same rows over leave-one-speaker-out
folds (`serlaq.data.splits.loso_folds`: test = one speaker, val = a stratified 10% of the
others).
"""

from __future__ import annotations

import argparse
import json
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


def uar(split_metrics: dict[str, Any]) -> float:
    """Unweighted average recall (= sklearn's balanced_accuracy_score) from a split's confusion matrix."""
    import numpy as np

    cm = np.asarray(split_metrics["confusion_matrix"], dtype=np.float64)
    support = cm.sum(axis=1)
    present = support > 0
    return float((np.diag(cm)[present] / support[present]).mean())


# Variant groups for --select: overrides of configs/emodb.yaml; the first of each group is
# the reference the paired column compares with.
FIXED_EPOCHS = {"train.patience": 1000, "train.restore_best": False}  # no early stop: the full schedule
COSINE60_LS = {"train.max_epochs": 60, "train.scheduler": "cosine", "train.label_smoothing": 0.1, **FIXED_EPOCHS}
SELECTION_GROUPS: dict[str, dict[str, dict[str, Any]]] = {
    "monitor": {
        "val_loss, best restored": {"train.monitor": "val_loss", "train.restore_best": True},
        "val_acc, best restored": {"train.monitor": "val_acc", "train.restore_best": True},
        "val_loss, where stopped": {"train.monitor": "val_loss", "train.restore_best": False},
        "val_acc, where stopped": {"train.monitor": "val_acc", "train.restore_best": False},
    },
    "features": {
        "paper (180)": {"features.preset": "paper"},
        "paper + dB mel (180)": {"features.preset": "paper", "features.mel_scale": "db"},
        "dB mel + std, 64 mels (232)": {"features.preset": "rich", "features.delta_stats": []},
        "rich: + delta-MFCC std, 64 mels (272)": {"features.preset": "rich"},
        "rich, 128 mels (400)": {"features.preset": "rich", "features.n_mels": 128},
        "rich + delta mean, 64 mels (312)": {"features.preset": "rich", "features.delta_stats": ["mean", "std"]},
    },
    "combined": {
        "paper features, paper recipe": {"features.preset": "paper"},
        "paper + dB mel, paper recipe": {"features.preset": "paper", "features.mel_scale": "db"},
        "rich, paper recipe": {"features.preset": "rich"},
        "paper features, cosine 60 ep + LS 0.1": {"features.preset": "paper", **COSINE60_LS},
        "rich, cosine 60 ep + LS 0.1": {"features.preset": "rich", **COSINE60_LS},
        "rich, cosine 60 ep + LS 0.1 + noise 0.2": {"features.preset": "rich", **COSINE60_LS, "train.feature_noise": 0.2},
    },
    "recipe": {
        "rich, paper recipe (early stop 5)": {"features.preset": "rich"},
        "rich, early stop 20": {"features.preset": "rich", "train.patience": 20},
        "rich, cosine 60 ep": {"features.preset": "rich", "train.max_epochs": 60, "train.scheduler": "cosine", **FIXED_EPOCHS},
        "rich, cosine 60 ep + LS 0.1": {"features.preset": "rich", "train.max_epochs": 60, "train.scheduler": "cosine", "train.label_smoothing": 0.1, **FIXED_EPOCHS},
        "rich, cosine 60 ep + LS 0.1 + noise 0.2": {"features.preset": "rich", "train.max_epochs": 60, "train.scheduler": "cosine", "train.label_smoothing": 0.1, "train.feature_noise": 0.2, **FIXED_EPOCHS},
        "rich, cosine 60 ep + noise 0.2 + wd 0.01": {"features.preset": "rich", "train.max_epochs": 60, "train.scheduler": "cosine", "train.feature_noise": 0.2, "train.weight_decay": 0.01, **FIXED_EPOCHS},
        "rich, cosine 100 ep + LS 0.1 + noise 0.2": {"features.preset": "rich", "train.max_epochs": 100, "train.scheduler": "cosine", "train.label_smoothing": 0.1, "train.feature_noise": 0.2, **FIXED_EPOCHS},
    },
}


def model_selection(args: argparse.Namespace, cache_dir: Path, out_dir: Path) -> None:
    """Training choices compared on validation data only (see the module docstring)."""
    from _common import inner_splits
    from serlaq.config import load_config
    from serlaq.data.datamodule import SERDataModule
    from serlaq.training import fit

    variants = SELECTION_GROUPS[args.variants]
    results: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name in variants}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        base = seed_overrides(args, cache_dir, out_dir, seed)
        splits = inner_splits(load_config(args.config, base), seed)
        line = [f"seed {seed:3d}"]
        for k, (name, variant) in enumerate(variants.items()):
            config = load_config(args.config, [*base, f"name=select-{seed}-{k}", *(f"{a}={json.dumps(b)}" for a, b in variant.items())])
            result = fit(config, datamodule=SERDataModule(config, splits=splits))
            assert result is not None
            m = result.metrics
            results[name].append((m["val"]["accuracy"], m["test"]["accuracy"], uar(m["test"]), m["epochs"]))
            line.append(f"{100 * m['test']['accuracy']:5.1f} ({m['epochs']:3d} ep)")
        print("  ".join(line), flush=True)
    print()
    print(f"### {args.data_dir.name}: `{args.variants}` variants on inner holdouts ({args.seeds} seeds, test splits never used)")
    print()
    print("| variant | inner val acc | inner holdout acc | holdout UAR | paired acc vs first | better / worse | epochs |")
    print("|---|---|---|---|---|---|---|")
    first = next(iter(results.values()))
    for name, rows in results.items():
        diffs = [r[1] - f[1] for r, f in zip(rows, first)]
        m, s = mean_sd([100 * d for d in diffs])
        paired = "–" if rows is first else f"{m:+.1f} ± {s:.1f}"
        wins = f"{sum(d > 0 for d in diffs)} / {sum(d < 0 for d in diffs)}"
        print(
            f"| {name} | {pct([r[0] for r in rows])} | {pct([r[1] for r in rows])} | {pct([r[2] for r in rows])} | "
            f"{paired} | {wins} | {statistics.fmean(r[3] for r in rows):.1f} |"
        )


# The one switch that reproduces the paper's Tables 3/4 (features and training recipe).
PAPER_SWITCH = ["features.preset=paper", "train.recipe=paper"]


def fit_and_score(config: Any, datamodule: Any, seed: int, tmp: Path, compress: bool = True) -> dict[str, Any]:
    """Fit `config` on `datamodule`'s splits; fp32 and default-compressed test accuracy + UAR, `.laq` size, bits."""
    import torch
    from sklearn.metrics import balanced_accuracy_score

    from serlaq.laq.compress import load_checkpoint
    from serlaq.laq.config import LaqConfig
    from serlaq.laq.pipeline import compress_model, splits_of
    from serlaq.training import fit, quiet_lightning

    settings = (config.laq if config.laq is not None else LaqConfig()).resolved()  # `--set laq.*` applies
    result = fit(config.model_copy(update={"laq": None}), datamodule=datamodule)  # compressed once, below
    assert result is not None
    model = load_checkpoint(result.checkpoint).eval()
    data = splits_of(datamodule)
    x, y = data["test"]

    def scores(net: Any) -> tuple[float, float]:
        with torch.no_grad():
            pred = net(x).argmax(1)
        return float((pred == y).double().mean()), float(balanced_accuracy_score(y.numpy(), pred.numpy()))

    row: dict[str, Any] = {"epochs": result.metrics["epochs"], "dim": int(x.shape[1])}
    row["fp32_acc"], row["fp32_uar"] = scores(model)
    if compress:
        with quiet_lightning():
            out = compress_model(
                model, data, settings, datamodule=datamodule,
                trainer_settings=config.trainer.model_dump(exclude_none=True), lr=config.train.lr, seed=seed,
            )  # fmt: skip
        row["laq_acc"], row["laq_uar"] = scores(out.fake_quantized().eval())
        row["laq_kb"] = out.write(tmp / "model.laq") / 1024
        row["avg_bits"] = out.avg_bits
    return row


def _paired(rows: list[dict[str, Any]], key: str, ref: list[dict[str, Any]], ref_key: str) -> str:
    diffs = [100 * (r[key] - f[ref_key]) for r, f in zip(rows, ref)]
    m, s = mean_sd(diffs)
    return f"{m:+.1f} ± {s:.1f} ({sum(d > 0 for d in diffs)}/{sum(d < 0 for d in diffs)})"


def print_comparison(title: str, unit: str, ref: list[dict[str, Any]], new: list[dict[str, Any]], ref_name: str, new_name: str) -> None:
    """Markdown table: both presets fp32 and compressed, paired per split/fold against the reference's fp32."""
    print(f"\n### {title}\n")
    print(f"| model | input dim | avg bits | `.laq` KB | test acc | paired acc vs {ref_name} fp32 (better/worse {unit}s) | test UAR | paired UAR |")
    print("|---|---|---|---|---|---|---|---|")
    for rows, name in ((ref, ref_name), (new, new_name)):
        for kind in ("fp32", "laq"):
            if f"{kind}_acc" not in rows[0]:
                continue
            bits = "32" if kind == "fp32" else f"{statistics.fmean(r['avg_bits'] for r in rows):.3f}"
            kb = "–" if kind == "fp32" else f"{statistics.fmean(r['laq_kb'] for r in rows):.1f} (max {max(r['laq_kb'] for r in rows):.1f})"
            same = rows is ref and kind == "fp32"
            label = f"{name} {'fp32' if kind == 'fp32' else 'default-compressed'}"
            print(
                f"| {label} | {rows[0]['dim']} | {bits} | {kb} | {pct([r[f'{kind}_acc'] for r in rows])} | "
                f"{'–' if same else _paired(rows, f'{kind}_acc', ref, 'fp32_acc')} | {pct([r[f'{kind}_uar'] for r in rows])} | "
                f"{'–' if same else _paired(rows, f'{kind}_uar', ref, 'fp32_uar')} |"
            )


def acceptance(args: argparse.Namespace, cache_dir: Path, out_dir: Path) -> None:
    """Issue 12: the default preset + recipe, default-compressed, vs the paper preset's fp32, paired per split."""
    from serlaq.config import load_config
    from serlaq.data.datamodule import SERDataModule

    ref, new = [], []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        base = seed_overrides(args, cache_dir, out_dir, seed)
        for rows, extra, name in ((ref, PAPER_SWITCH, "paper"), (new, [], "default")):
            config = load_config(args.config, [*base, f"name=accept-{seed}-{name}", *extra])
            rows.append(fit_and_score(config, SERDataModule(config), seed, out_dir))
        a, b = ref[-1], new[-1]
        print(
            f"seed {seed:3d}  paper fp32 {100 * a['fp32_acc']:5.1f} (laq {100 * a['laq_acc']:5.1f})  "
            f"default fp32 {100 * b['fp32_acc']:5.1f} laq {100 * b['laq_acc']:5.1f} @ {b['avg_bits']:.3f} b, {b['laq_kb']:.1f} KB",
            flush=True,
        )
    print_comparison(
        f"{args.data_dir.name}: default vs paper preset, {args.seeds} seeds (stratified 80/10/10, paired per split)",
        "split", ref, new, "paper", "default",
    )  # fmt: skip


def loso(args: argparse.Namespace, cache_dir: Path, out_dir: Path) -> None:
    """Leave-one-speaker-out on the corpus: one fold per speaker, both presets, fp32 and compressed."""
    from serlaq.config import load_config
    from serlaq.data.datamodule import SERDataModule
    from serlaq.data.splits import loso_folds

    base = seed_overrides(args, cache_dir, out_dir, args.first_seed)
    outer = SERDataModule(load_config(args.config, base))
    outer.setup()
    clips = [c for split in ("train", "val", "test") for c in zip(outer.split_indices(split), outer.split_clips(split))]
    clips.sort(key=lambda item: item[0])
    assert [i for i, _ in clips] == list(range(len(clips)))
    folds = loso_folds([c.label for _, c in clips], [c.speaker for _, c in clips], seed=args.first_seed)
    ref, new = [], []
    for k, (speaker, (train, val, test)) in enumerate(folds):
        splits = {"train": train.tolist(), "val": val.tolist(), "test": test.tolist()}
        for rows, extra, name in ((ref, PAPER_SWITCH, "paper"), (new, [], "default")):
            config = load_config(args.config, [*base, f"name=loso-{speaker}-{name}", *extra])
            rows.append(fit_and_score(config, SERDataModule(config, splits=splits), args.first_seed, out_dir))
        a, b = ref[-1], new[-1]
        print(
            f"fold {k} speaker {speaker} ({len(test)} clips)  paper fp32 {100 * a['fp32_acc']:5.1f} laq {100 * a['laq_acc']:5.1f}  "
            f"default fp32 {100 * b['fp32_acc']:5.1f} laq {100 * b['laq_acc']:5.1f}",
            flush=True,
        )
    print_comparison(
        f"{args.data_dir.name}: leave-one-speaker-out, {len(folds)} folds (mean ± sd over folds, paired per fold)",
        "fold", ref, new, "paper", "default",
    )  # fmt: skip


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
    parser.add_argument("--dataset", default="emodb", help="corpus layout (emodb, tess, savee, ravdess, cremad, emovo, folder, auto)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "emodb.yaml")
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (splits) to average over")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    parser.add_argument("--no-baseline", dest="baseline", action="store_false", help="skip the sklearn recipe")
    parser.add_argument("--no-timing", dest="timing", action="store_false", help="skip the cold/cached CLI timing")
    parser.add_argument("--select", action="store_true", help="run the validation-only model-selection experiment")
    parser.add_argument("--variants", choices=sorted(SELECTION_GROUPS), default="monitor", help="--select: which group of variants")
    parser.add_argument("--cache-dir", type=Path, default=None, help="feature cache (default: a temp dir)")
    parser.add_argument(
        "--protocol", choices=["split", "acceptance", "loso"], default="split",
        help="split: accuracy over seeds (+ timing); acceptance: default preset+recipe compressed vs paper fp32, "
        "paired per seed; loso: leave-one-speaker-out folds, both presets",
    )  # fmt: skip
    args = parser.parse_args()
    args.data_dir = args.data_dir.resolve()
    if args.protocol != "split":
        with tempfile.TemporaryDirectory(prefix="bench-fit-") as tmp:
            run = acceptance if args.protocol == "acceptance" else loso
            run(args, args.cache_dir or Path(tmp) / "cache", Path(tmp) / "runs")
        return
    if args.select:
        with tempfile.TemporaryDirectory(prefix="bench-fit-") as tmp:
            model_selection(args, args.cache_dir or Path(tmp) / "cache", Path(tmp) / "runs")
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
