"""Real-data benchmark of LAQ: the paper's Tables 3/4 and the rows beyond the paper, over seeds.

    # issue 4 (the paper): 5 seeds of emodb-2s
    python benchmarks/bench_laq.py --data-dir /work/shared/datasets/emodb-2s --seeds 5 --no-qat-rows
    # issue 7 (beyond the paper): 20 seeds on both corpora, every row
    python benchmarks/bench_laq.py --data-dir /work/shared/datasets/emodb --data-dir /work/shared/datasets/emodb-2s --seeds 20
    # how the QAT defaults were chosen, on validation data only (test splits never used)
    python benchmarks/bench_laq.py --data-dir ... --seeds 20 --select

For each seed, `serlaq.training.fit` trains the paper's 3HL MLP with `configs/emodb.yaml`
(a different stratified 80/10/10 split, init and shuffling per seed), then
`serlaq.reports.evaluate_model` computes every row on that model's own splits: fp32,
fixed 8..1 bits, the paper's LAQ (eq. 5 on validation accuracy, T_margin = 1 point),
Table 3's nine importance weightings, and (unless --no-qat-rows) fixed-b + QAT, LAQ + QAT,
the default `serlaq compress` (budget search + QAT) and fp32 fine-tuned for the same extra
epochs. Tables print mean ± sd over seeds and the paired test difference to fp32 (same split).

Acceptance checks printed at the end (measured, not asserted):
- issue 4: paper LAQ average bits <= 2.0 with mean test accuracy within 1 point of the fp32
  mean; search time (< 10 s for 3HL); `.laq` size vs the information bound
  (sum n_l b_l / 8 + fp32 biases; target within 2 KB);
- issue 7: default compress avg bits <= 1.25, mean test >= fp32 mean (paired diff >= 0),
  `.laq` <= 35 KB, QAT stage < 10 s per seed.

`--select` reruns the choice of the default mode's QAT settings without any test split:
per seed the test split is set aside, the remaining clips are split again (seeded,
stratified) into inner train / inner val / inner holdout; the model trains on inner train
(stopping on inner val), every variant compresses it using inner train/val only and is
scored on the inner holdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))


def pct(pair: Any, signed: bool = False) -> str:
    if pair is None:
        return "–"
    m, s = pair
    return f"{100 * m:+.1f} ± {100 * s:.1f}" if signed else f"{100 * m:.1f} ± {100 * s:.1f}"


def base_overrides(args: argparse.Namespace, data_dir: Path, seed: int, out_dir: Path, cache_dir: Path) -> list[str]:
    return [
        f"data.data_dir={data_dir}",
        "data.dataset=emodb",
        f"data.cache_dir={cache_dir}",
        f"out_dir={out_dir}",
        f"name={data_dir.name}-seed-{seed}",
        f"seed={seed}",
        "trainer.enable_progress_bar=false",
        *args.set,
    ]


def run_corpus(args: argparse.Namespace, data_dir: Path, cache_dir: Path, out_dir: Path) -> dict[str, Any]:
    from serlaq.config import load_config
    from serlaq.data.datamodule import SERDataModule
    from serlaq.laq.compress import load_checkpoint
    from serlaq.reports import aggregate, evaluate_model
    from serlaq.training import fit, quiet_lightning

    per_seed = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        config = load_config(args.config, base_overrides(args, data_dir, seed, out_dir, cache_dir))
        started = time.perf_counter()
        result = fit(config)
        assert result is not None
        fit_s = time.perf_counter() - started
        model = load_checkpoint(result.checkpoint)
        with quiet_lightning():
            dm = SERDataModule.from_model(model)
            rows = evaluate_model(
                model,
                dm,
                trainer_settings=config.trainer.model_dump(exclude_none=True),
                lr=config.train.lr,
                seed=seed,
                qat_rows=args.qat_rows,
                table3=True,
            )
        rows["seed"], rows["fit_s"] = seed, fit_s
        per_seed.append(rows)
        r = rows["rows"]
        line = (
            f"{data_dir.name} seed {seed:3d}  fp32 {100 * r['fp32']['test']:5.1f}  "
            f"LAQ {100 * r['laq']['test']:5.1f} @ {r['laq']['avg_bits']:.2f} b ({r['laq']['search_s']:.2f} s)"
        )
        if "default" in r:
            line += (
                f"  default {100 * r['default']['test']:5.1f} @ {r['default']['avg_bits']:.3f} b, "
                f"{r['default']['file_kb']:.1f} KB (QAT {r['default']['qat_s']:.1f} s)"
            )
        print(line, flush=True)
    return {"corpus": data_dir.name, "per_seed": per_seed, "aggregate": aggregate(per_seed)}


def print_tables(res: dict[str, Any]) -> None:
    from serlaq.reports import ROWS

    agg = res["aggregate"]
    n = agg["seeds"]
    print(f"\n### {res['corpus']}: Table 4 over {n} seeds (test accuracy %, mean ± sd; paired = test − fp32 on the same split)\n")
    print("| model | avg bits | size KB | .laq KB | val acc | test acc | paired diff |")
    print("|---|---|---|---|---|---|---|")
    for key, label in ROWS:
        if key not in agg["rows"]:
            continue
        r = agg["rows"][key]
        file_kb = "–" if r.get("file_kb") is None else f"{r['file_kb'][0]:.1f}"
        print(
            f"| {label} | {r['avg_bits'][0]:.3f} | {r['size_kb'][0]:.1f} | {file_kb} | {pct(r['val'])} | "
            f"{pct(r['test'])} | {'–' if key == 'fp32' else pct(r['paired_test_diff'], signed=True)} |"
        )
    print(f"\n### {res['corpus']}: Table 3 (paper search with each importance weighting), {n} seeds\n")
    print("| w_P | w_E | w_V | avg bits | val acc | test acc |")
    print("|---|---|---|---|---|---|")
    for r in agg["table3"]:
        wp, we, wv = r["weights"]
        print(f"| {wp} | {we} | {wv} | {r['avg_bits'][0]:.3f} ± {r['avg_bits'][1]:.3f} | {pct(r['val'])} | {pct(r['test'])} |")


def acceptance(res: dict[str, Any]) -> list[str]:
    agg = res["aggregate"]["rows"]
    seeds = res["per_seed"]
    out = []
    fp32 = agg["fp32"]["test"][0]
    laq = agg["laq"]
    search = [s["rows"]["laq"]["search_s"] for s in seeds]
    overhead = [s["rows"]["laq"]["file_kb"] - s["rows"]["laq"]["bound_kb"] for s in seeds]
    ok = laq["avg_bits"][0] <= 2.0 and laq["test"][0] >= fp32 - 0.01
    out.append(
        f"issue 4 [{'met' if ok else 'MISSED'}] paper LAQ {laq['avg_bits'][0]:.2f} avg bits (<= 2.0), "
        f"test {100 * laq['test'][0]:.1f} vs fp32 {100 * fp32:.1f} (within 1 point: {laq['test'][0] >= fp32 - 0.01}); "
        f"paired {pct(laq['paired_test_diff'], signed=True)}"
    )
    out.append(
        f"issue 4 [{'met' if max(search) < 10 else 'MISSED'}] search time {statistics.fmean(search):.2f} s mean, "
        f"{max(search):.2f} s max (< 10 s)"
    )
    out.append(
        f"issue 4 [{'met' if max(overhead) <= 2.0 else 'MISSED'}] .laq file - information bound: "
        f"{statistics.fmean(overhead):.2f} KB mean, {max(overhead):.2f} KB max (<= 2 KB)"
    )
    if "default" in agg:
        d = agg["default"]
        qat = [s["rows"]["default"]["qat_s"] for s in seeds]
        files = [s["rows"]["default"]["file_kb"] for s in seeds]
        checks = {
            "avg bits <= 1.25": d["avg_bits"][0] <= 1.25,
            "mean test >= fp32 mean": d["test"][0] >= fp32,
            "paired diff >= 0": d["paired_test_diff"][0] >= 0,
            ".laq <= 35 KB": max(files) <= 35.0,
            "QAT < 10 s": max(qat) < 10.0,
        }
        out.append(
            f"issue 7 [{'met' if all(checks.values()) else 'MISSED'}] default compress: {d['avg_bits'][0]:.3f} avg bits, "
            f"test {100 * d['test'][0]:.1f} vs fp32 {100 * fp32:.1f}, paired {pct(d['paired_test_diff'], signed=True)}, "
            f".laq {max(files):.1f} KB max, QAT {statistics.fmean(qat):.1f} s mean / {max(qat):.1f} s max; "
            + ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items())
        )
    return out


# --- --select: the QAT defaults, chosen on inner holdouts ------------------------------------

SELECT_VARIANTS: dict[str, dict[str, Any]] = {
    "budget 1.1 + QAT cosine 30, early stop 10, keep last": {"qat": {"patience": 10}},
    "budget 1.1 + QAT cosine 15, early stop 5, keep last": {"qat": {"epochs": 15, "patience": 5}},
    "budget 1.1 + QAT cosine 30, no early stop (default)": {},
    "budget 1.1 + QAT cosine 30, early stop 10, restore best val_loss": {"qat": {"patience": 10, "restore_best": True}},
    "all 1 bit (budget 1.0) + QAT": {"budget_bits": 1.0},
    "budget 1.1, per-channel + QAT": {"per_channel": True},
    "budget 1.1, no QAT": {"qat": {"enabled": False}},
    "paper LAQ (no QAT)": {"mode": "paper"},
}


def select(args: argparse.Namespace, data_dir: Path, cache_dir: Path, out_dir: Path) -> dict[str, Any]:
    from _common import inner_splits
    from serlaq.config import load_config
    from serlaq.data.datamodule import SERDataModule
    from serlaq.laq.config import LaqConfig
    from serlaq.laq.pipeline import compress_model, splits_of
    from serlaq.training import fit, quiet_lightning

    scores: dict[str, list[tuple[float, float]]] = {k: [] for k in ["fp32", *SELECT_VARIANTS]}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        base = base_overrides(args, data_dir, seed, out_dir, cache_dir)
        splits = inner_splits(load_config(args.config, base), seed)
        config = load_config(args.config, [*base, f"name={data_dir.name}-select-{seed}"])
        dm = SERDataModule(config, splits=splits)
        result = fit(config, datamodule=dm)
        assert result is not None
        from serlaq.laq.compress import load_checkpoint

        model = load_checkpoint(result.checkpoint)
        data = splits_of(dm)  # "test" here is the INNER holdout; the outer test split is unused
        x, y = data["test"]
        scores["fp32"].append((1.0, float((model(x).argmax(1) == y).float().mean())))
        line = [f"{data_dir.name} seed {seed:3d} fp32 {100 * scores['fp32'][-1][1]:5.1f}"]
        with quiet_lightning():
            for name, raw in SELECT_VARIANTS.items():
                settings = LaqConfig.model_validate(raw).resolved()
                out = compress_model(
                    model,
                    data,
                    settings,
                    datamodule=dm,
                    trainer_settings=config.trainer.model_dump(exclude_none=True),
                    lr=config.train.lr,
                    seed=seed,
                )
                scores[name].append((out.avg_bits, out.accuracy["laq_test"]))
                line.append(f"{100 * out.accuracy['laq_test']:5.1f}")
        print("  ".join(line), flush=True)
    fp = [s[1] for s in scores["fp32"]]
    print(f"\n### {data_dir.name}: QAT/plan variants scored on inner holdouts ({args.seeds} seeds, outer test never used)\n")
    print("| variant | avg bits | inner holdout acc | paired vs fp32 |")
    print("|---|---|---|---|")
    table = {}
    for name, vals in scores.items():
        acc = [v[1] for v in vals]
        diff = [a - f for a, f in zip(acc, fp)]
        table[name] = {
            "avg_bits": statistics.fmean(v[0] for v in vals) if name != "fp32" else 32.0,
            "acc": (statistics.fmean(acc), statistics.stdev(acc) if len(acc) > 1 else 0.0),
            "paired": (statistics.fmean(diff), statistics.stdev(diff) if len(diff) > 1 else 0.0),
        }
        t = table[name]
        print(f"| {name} | {t['avg_bits']:.3f} | {pct(t['acc'])} | {'–' if name == 'fp32' else pct(t['paired'], signed=True)} |")
    return {"corpus": data_dir.name, "select": table, "per_seed": scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, action="append", required=True, help="corpus root (repeatable)")
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "emodb.yaml")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    parser.add_argument("--no-qat-rows", dest="qat_rows", action="store_false", help="only the paper's rows (faster)")
    parser.add_argument("--select", action="store_true", help="compare QAT/plan variants on inner holdouts instead")
    parser.add_argument("--cache-dir", type=Path, default=None, help="feature cache (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="also write all results to this JSON file")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-laq-") as tmp:
        cache_dir = args.cache_dir or Path(tmp) / "cache"
        out_dir = Path(tmp) / "runs"
        for data_dir in args.data_dir:
            if args.select:
                results.append(select(args, data_dir.resolve(), cache_dir, out_dir))
            else:
                res = run_corpus(args, data_dir.resolve(), cache_dir, out_dir)
                print_tables(res)
                results.append(res)
    if not args.select:
        print("\n### acceptance\n")
        for res in results:
            for line in acceptance(res):
                print(f"- {res['corpus']}: {line}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
