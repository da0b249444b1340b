"""The paper's tables and figures from a trained run (or several seeds of it).

`serlaq report RUN_DIR` loads the run's `model.ckpt`, rebuilds its data, and writes into
`RUN_DIR/report/` (or `--out`):

- `report.md` and `report.json`:
  - Table 4: fp32, fixed 8..1 bits (the paper's quantizer, every layer at b) and the paper's
    LAQ, each with average bits, size (KB = 1000 bytes: packed weights + fp32 biases +
    scales; the real `.laq` file size beside it), validation and test accuracy; plus the
    rows beyond the paper: fixed b + QAT, LAQ + QAT, the default compress mode, and fp32
    fine-tuned for the same extra epochs (the control for "QAT helps because it trains longer");
  - Table 3: the paper's nine importance-weight rows (w_P, w_E, w_V) → LAQ bits and accuracy;
- `accuracy_vs_bits.png` (Fig. 1/3: fixed-bit curve, LAQ star), `layer_bits.png` (bits per
  layer), `confusion_laq.png` (Fig. 4: the LAQ model on the test split);
- with `--hl-sweep`: the Table-2 variants (2HL..9HL) trained with the same config, and
  `hl_sweep.png` (Fig. 3);
- with `--seeds N`: N seeds of the same config (the run's seed first; the others are trained
  into `report/seeds/`), every number as mean ± sd over seeds, and the paired difference
  to fp32 on the same split (test splits of ~54 clips move ~2 points per clip).

All selection (bits, QAT stopping) uses validation or training data; test accuracy is only
reported. `evaluate_model` is the per-model core, shared with `benchmarks/bench_laq.py`.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from serlaq.laq.config import LaqConfig, LaqSettings
from serlaq.laq.export import KB, size_report, write_laq_file
from serlaq.laq.fakequant import PlanQuantizer, fake_quantize, logits_with, quantizable_layers
from serlaq.laq.importance import TABLE3_WEIGHTS, average_bits
from serlaq.laq.pipeline import compress_model, scheme_of, search_plan, splits_of
from serlaq.laq.quantize import QuantScheme
from serlaq.laq.search import uniform_plan

FIXED_BITS = (8, 7, 6, 5, 4, 3, 2, 1)
PAPER = LaqConfig(mode="paper").resolved()

# Table 4 rows, in print order: (key, label)
ROWS: tuple[tuple[str, str], ...] = (
    ("fp32", "fp32 baseline"),
    *((f"fixed{b}", f"{b}-bit fixed") for b in FIXED_BITS),
    ("laq", "LAQ (paper)"),
    ("fixed1_qat", "1-bit fixed + QAT"),
    ("fixed1_pc_qat", "1-bit fixed, per-channel + QAT"),
    ("fixed2_qat", "2-bit fixed (range search) + QAT"),
    ("laq_qat", "LAQ (paper) + QAT"),
    ("default", "default compress (budget + QAT)"),
    ("fp32_extra", "fp32 + the same extra epochs"),
)
QAT_ROWS = ("fixed1_qat", "fixed1_pc_qat", "fixed2_qat", "laq_qat", "default", "fp32_extra")


# --- one trained model ------------------------------------------------------------------


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((logits_with(model, x).argmax(dim=1) == y).to(torch.float64).mean())


def _confusion(model: nn.Module, x: torch.Tensor, y: torch.Tensor, n: int) -> list[list[int]]:
    pred = logits_with(model, x).argmax(dim=1)
    m = torch.zeros((n, n), dtype=torch.int64)
    m.index_put_((y, pred), torch.ones_like(y), accumulate=True)
    return m.tolist()


def quantized_row(
    model: nn.Module, plan: Mapping[str, int], scheme: QuantScheme, splits: Mapping[str, Any], tmp: Path, **extra: Any
) -> dict[str, Any]:
    """avg bits, sizes (payload and the real `.laq` file), val/test accuracy of `model` at `plan`."""
    layers = quantizable_layers(model)
    pq = PlanQuantizer(layers, scheme)
    quantized = {n: pq.get(n, plan[n]) for n in pq.names}
    path = tmp / "row.laq"
    file_bytes = write_laq_file(path, model, quantized, {"plan": dict(plan)})
    sizes = size_report(quantized, {n: m.bias for n, m in layers}, file_bytes)
    fq = fake_quantize(model, plan, scheme)
    return {
        "avg_bits": average_bits({n: m.weight.numel() for n, m in layers}, plan),
        "size_kb": sizes.payload_bytes / KB,
        "file_kb": file_bytes / KB,
        "bound_kb": sizes.information_bound_bytes / KB,
        "val": _accuracy(fq, *splits["val"]),
        "test": _accuracy(fq, *splits["test"]),
        "plan": dict(plan),
        **extra,
    }


def evaluate_model(
    model: nn.Module,
    datamodule: Any,
    *,
    trainer_settings: Mapping[str, Any] | None = None,
    lr: float = 1e-3,
    seed: int = 0,
    qat_rows: bool = True,
    table3: bool = True,
    default: LaqSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every Table-4 row (and Table 3) for one trained model on its own splits."""
    say = progress or (lambda _msg: None)
    model = model.eval()
    splits = splits_of(datamodule)
    names = [n for n, _ in quantizable_layers(model)]
    n_weights = sum(m.weight.numel() for _, m in quantizable_layers(model))
    n_params = sum(p.numel() for p in model.net.parameters()) if hasattr(model, "net") else n_weights
    labels = list(getattr(model, "labels", [str(i) for i in range(int(splits["test"][1].max()) + 1)]))
    rows: dict[str, dict[str, Any]] = {}
    rows["fp32"] = {
        "avg_bits": 32.0,
        "size_kb": 4 * n_params / KB,
        "file_kb": None,
        "bound_kb": 4 * n_params / KB,
        "val": _accuracy(model, *splits["val"]),
        "test": _accuracy(model, *splits["test"]),
    }
    paper_scheme = scheme_of(PAPER)
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for b in FIXED_BITS:
            rows[f"fixed{b}"] = quantized_row(model, uniform_plan(names, b), paper_scheme, splits, tmp)
        say("paper LAQ search")
        outcome = compress_model(model, splits, PAPER)
        rows["laq"] = quantized_row(
            model,
            outcome.plan,
            paper_scheme,
            splits,
            tmp,
            search_s=outcome.timings["search_s"],
            trace=outcome.search.as_dict()["trace"],
        )
        extra["importance"] = [i.as_dict() for i in outcome.importance]
        extra["confusion_laq"] = _confusion(outcome.fake_quantized(), *splits["test"], len(labels))
        if table3:
            extra["table3"] = []
            for w in TABLE3_WEIGHTS:
                settings = LaqConfig(mode="paper", weights=w).resolved()
                result, _, _ = search_plan(model, splits, settings)
                fq = fake_quantize(model, result.plan, paper_scheme)
                extra["table3"].append(
                    {
                        "weights": list(w),
                        "avg_bits": result.avg_bits,
                        "plan": dict(result.plan),
                        "val": _accuracy(fq, *splits["val"]),
                        "test": _accuracy(fq, *splits["test"]),
                    }
                )
        if qat_rows:
            from serlaq.laq.qat import finetune

            cfg = default or LaqConfig().resolved()
            qat_kw = {
                "epochs": cfg.qat_epochs,
                "lr": cfg.qat_lr if cfg.qat_lr is not None else lr,
                "schedule": cfg.qat_schedule,
                "patience": cfg.qat_patience,
                "restore_best": cfg.qat_restore_best,
                "trainer_settings": trainer_settings,
                "seed": seed,
            }
            binary_pt, binary_pc = QuantScheme(), QuantScheme(per_channel=True)
            searched = QuantScheme(range_search=True)
            for key, plan, scheme in (
                ("fixed1_qat", uniform_plan(names, 1), binary_pt),
                ("fixed1_pc_qat", uniform_plan(names, 1), binary_pc),
                ("fixed2_qat", uniform_plan(names, 2), searched),
                ("laq_qat", outcome.plan, paper_scheme),
            ):
                say(f"QAT: {key}")
                res = finetune(model, plan, scheme, datamodule, **qat_kw)
                rows[key] = quantized_row(res.model, plan, scheme, splits, tmp, qat_s=res.seconds, qat_epochs=res.epochs)
            say("default compress")
            started = time.perf_counter()
            d = compress_model(
                model, splits, cfg, datamodule=datamodule, trainer_settings=trainer_settings, lr=lr, seed=seed
            )
            rows["default"] = quantized_row(
                d.model,
                d.plan,
                scheme_of(cfg),
                splits,
                tmp,
                search_s=d.timings["search_s"],
                qat_s=d.timings.get("qat_s"),
                total_s=time.perf_counter() - started,
            )
            extra["confusion_default"] = _confusion(d.fake_quantized(), *splits["test"], len(labels))
            extra["default_settings"] = cfg.as_dict()
            say("fp32 + extra epochs")
            res = finetune(model, None, QuantScheme(), datamodule, **qat_kw)
            rows["fp32_extra"] = {
                "avg_bits": 32.0,
                "size_kb": 4 * n_params / KB,
                "file_kb": None,
                "bound_kb": 4 * n_params / KB,
                "val": _accuracy(res.model, *splits["val"]),
                "test": _accuracy(res.model, *splits["test"]),
                "qat_s": res.seconds,
                "qat_epochs": res.epochs,
            }
    return {
        "labels": labels,
        "layers": [{"name": n, "shape": list(m.weight.shape)} for n, m in quantizable_layers(model)],
        "parameters": n_params,
        "split_sizes": {k: int(v[1].numel()) for k, v in splits.items()},
        "rows": rows,
        **extra,
    }


# --- several seeds ------------------------------------------------------------------------


def mean_sd(values: Sequence[float]) -> tuple[float, float] | None:
    """(mean, sample sd) of the values that are not None; None when there are none."""
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if a.size == 0:
        return None
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def aggregate(per_seed: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean ± sd of every row over seeds, and the paired test difference to fp32."""
    out: dict[str, Any] = {"seeds": len(per_seed), "rows": {}}
    keys = [k for k, _ in ROWS if all(k in r["rows"] for r in per_seed)]
    for key in keys:
        rows = [r["rows"][key] for r in per_seed]
        entry = {}
        for field in ("avg_bits", "size_kb", "file_kb", "bound_kb", "val", "test", "search_s", "qat_s"):
            vals = [row.get(field) for row in rows]
            if any(v is not None for v in vals):
                entry[field] = mean_sd([v for v in vals if v is not None])
        diffs = [row["test"] - r["rows"]["fp32"]["test"] for row, r in zip(rows, per_seed)]
        entry["paired_test_diff"] = mean_sd(diffs)
        out["rows"][key] = entry
    if all("table3" in r for r in per_seed):
        out["table3"] = []
        for i, w in enumerate(TABLE3_WEIGHTS):
            rows = [r["table3"][i] for r in per_seed]
            out["table3"].append(
                {
                    "weights": list(w),
                    "avg_bits": mean_sd([x["avg_bits"] for x in rows]),
                    "val": mean_sd([x["val"] for x in rows]),
                    "test": mean_sd([x["test"] for x in rows]),
                }
            )
    return out


# --- rendering ----------------------------------------------------------------------------


def _pm(pair: Sequence[float] | None, scale: float = 1.0, digits: int = 2, signed: bool = False) -> str:
    if pair is None:
        return "–"
    m, s = pair
    sign = "+" if signed else ""
    return f"{m * scale:{sign}.{digits}f} ± {s * scale:.{digits}f}"


def _v(x: Any, scale: float = 1.0, digits: int = 2) -> str:
    return "–" if x is None else f"{x * scale:.{digits}f}"


def render_markdown(report: Mapping[str, Any]) -> str:
    lines = [f"# LAQ report: {report['run_dir']}", ""]
    meta = report["meta"]
    lines += [
        f"Model: MLP {meta['architecture']}, {meta['parameters']:,} parameters; splits {meta['split_sizes']}; "
        f"seeds {', '.join(map(str, report['seeds']))}. Sizes in KB = 1000 bytes: packed weights + fp32 biases + "
        "scales/zeros (the paper's size); `.laq` = the real file (adds normalization stats and header). "
        "Accuracies in %. Bits, QAT stopping and every other choice use validation/training data only.",
        "",
    ]
    multi = len(report["seeds"]) > 1
    lines += ["## Table 4: fixed-bit quantization vs LAQ (and beyond the paper)", ""]
    if multi:
        agg = report["aggregate"]["rows"]
        lines += [
            "| model | avg bits | size KB | .laq KB | val acc | test acc | test − fp32 (paired) |",
            "|---|---|---|---|---|---|---|",
        ]
        for key, label in ROWS:
            if key not in agg:
                continue
            r = agg[key]
            lines.append(
                f"| {label} | {_pm(r['avg_bits'], digits=3)} | {_pm(r['size_kb'], digits=1)} | "
                f"{_pm(r.get('file_kb'), digits=1)} | {_pm(r['val'], 100, 1)} | {_pm(r['test'], 100, 1)} | "
                f"{'–' if key == 'fp32' else _pm(r['paired_test_diff'], 100, 1, signed=True)} |"
            )
    else:
        rows = report["per_seed"][0]["rows"]
        lines += ["| model | avg bits | size KB | .laq KB | val acc | test acc | plan |", "|---|---|---|---|---|---|---|"]
        for key, label in ROWS:
            if key not in rows:
                continue
            r = rows[key]
            plan = " ".join(str(b) for b in r["plan"].values()) if "plan" in r else ""
            lines.append(
                f"| {label} | {r['avg_bits']:.3f} | {r['size_kb']:.1f} | {_v(r.get('file_kb'), 1, 1)} | "
                f"{100 * r['val']:.2f} | {100 * r['test']:.2f} | {plan} |"
            )
    first = report["per_seed"][0]
    if "table3" in first:
        lines += ["", "## Table 3: importance weights (w_P, w_E, w_V) → LAQ (paper search)", ""]
        lines += ["| w_P | w_E | w_V | avg bits | val acc | test acc |", "|---|---|---|---|---|---|"]
        t3 = report["aggregate"]["table3"] if multi else first["table3"]
        for r in t3:
            wp, we, wv = r["weights"]
            if multi:
                lines.append(f"| {wp} | {we} | {wv} | {_pm(r['avg_bits'], digits=3)} | {_pm(r['val'], 100, 1)} | {_pm(r['test'], 100, 1)} |")
            else:
                lines.append(f"| {wp} | {we} | {wv} | {r['avg_bits']:.3f} | {100 * r['val']:.2f} | {100 * r['test']:.2f} |")
    trace = first["rows"]["laq"].get("trace")
    if trace:
        lines += ["", f"## The paper search on seed {report['seeds'][0]} (validation accuracy, every tried bit-width)", ""]
        lines += ["| rank | layer | importance | margin | tried b: val acc | chosen |", "|---|---|---|---|---|---|"]
        for t in trace:
            tried = ", ".join(f"{x['bits']}: {100 * x['score']:.1f}" for x in t["trials"])
            lines.append(f"| {t['rank']} | {t['name']} | {t['importance']:.4f} | {100 * t['margin']:.3f} pt | {tried} | {t['bits']} |")
    if "hl_sweep" in report:
        lines += ["", "## HL variants (Table 2), seed " + str(report["seeds"][0]), ""]
        lines += ["| variant | fp32 test | 8-bit | 4-bit | 2-bit | 1-bit | LAQ test | LAQ bits |", "|---|---|---|---|---|---|---|---|"]
        for name, r in report["hl_sweep"].items():
            rr = r["rows"]
            lines.append(
                f"| {name} | {100 * rr['fp32']['test']:.2f} | {100 * rr['fixed8']['test']:.2f} | {100 * rr['fixed4']['test']:.2f} | "
                f"{100 * rr['fixed2']['test']:.2f} | {100 * rr['fixed1']['test']:.2f} | {100 * rr['laq']['test']:.2f} | {rr['laq']['avg_bits']:.3f} |"
            )
    lines += ["", "Figures: accuracy_vs_bits.png, layer_bits.png, confusion_laq.png" + (", hl_sweep.png" if "hl_sweep" in report else ""), ""]
    return "\n".join(lines)


def _png(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    from serlaq.config import atomic_write_bytes

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_accuracy_vs_bits(report: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    per_seed = report["per_seed"]

    def stat(key: str, field: str) -> float:
        return float(np.mean([r["rows"][key][field] for r in per_seed]))

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    xs = list(FIXED_BITS)
    ax.plot(xs, [100 * stat(f"fixed{b}", "test") for b in xs], "o-", label="fixed bits (paper quantizer)")
    ax.axhline(100 * stat("fp32", "test"), color="gray", ls="--", label="fp32")
    ax.plot([stat("laq", "avg_bits")], [100 * stat("laq", "test")], "*", ms=16, label="LAQ (paper)")
    if all("default" in r["rows"] for r in per_seed):
        ax.plot([stat("default", "avg_bits")], [100 * stat("default", "test")], "P", ms=12, label="default (budget + QAT)")
    ax.set_xlabel("average bits per weight (eq. 6)")
    ax.set_ylabel("test accuracy (%)" + (f", mean of {len(per_seed)} seeds" if len(per_seed) > 1 else ""))
    ax.set_xticks(range(1, 9))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _png(fig, path)


def plot_layer_bits(report: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = report["per_seed"][0]["rows"]
    plans = {"LAQ (paper)": first["laq"]["plan"]}
    if "default" in first:
        plans["default"] = first["default"]["plan"]
    names = list(plans["LAQ (paper)"])
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    width = 0.8 / len(plans)
    for i, (label, plan) in enumerate(plans.items()):
        ax.bar(np.arange(len(names)) + i * width, [plan[n] for n in names], width, label=label)
    ax.set_xticks(np.arange(len(names)) + width * (len(plans) - 1) / 2, names)
    ax.set_ylabel("bits")
    ax.set_ylim(0, 8.5)
    ax.set_title(f"bit-width per layer (seed {report['seeds'][0]})")
    ax.legend(fontsize=8)
    _png(fig, path)


def plot_hl_sweep(sweep: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (name, r) in enumerate(sweep.items()):
        color = f"C{i}"
        rows = r["rows"]
        ax.plot(FIXED_BITS, [100 * rows[f"fixed{b}"]["test"] for b in FIXED_BITS], "o-", color=color, label=name, ms=4)
        ax.plot([rows["laq"]["avg_bits"]], [100 * rows["laq"]["test"]], "*", color=color, ms=14)
    ax.set_xlabel("average bits per weight")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("HL variants: fixed bits (lines) and LAQ (stars)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _png(fig, path)


# --- the command ----------------------------------------------------------------------------


def _train(config: Any, run_dir: Path, progress: Callable[[str], None]) -> Path:
    """Train `config` into `run_dir` unless a finished run with the same config is already there."""
    from serlaq.config import load_config
    from serlaq.training import fit, resolve_paths

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
) -> Path:
    """Write the report of the run in `run_dir`; returns the report folder."""
    from serlaq.config import RunConfig, atomic_write_bytes
    from serlaq.data.datamodule import SERDataModule
    from serlaq.errors import ConfigError
    from serlaq.laq.compress import load_checkpoint
    from serlaq.model import PRESETS
    from serlaq.training import plot_confusion, quiet_lightning

    say = progress or (lambda _msg: None)
    run = Path(run_dir)
    if not run.is_dir():
        raise ConfigError(f"{run}: run folder not found")
    ckpt = run / "model.ckpt"
    if not ckpt.is_file():
        raise ConfigError(f"{run}: no model.ckpt (train it first with serlaq fit)")
    if seeds < 1:
        raise ConfigError(f"--seeds: must be >= 1, got {seeds}")
    out_dir = Path(out) if out is not None else run / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    base_model = load_checkpoint(ckpt)
    base = RunConfig.model_validate(base_model.hparams["run_config"])
    # the "default compress" row: the run's own laq section when it uses the default mode
    default = (base.laq if base.laq is not None and base.laq.mode == "qat" else LaqConfig()).resolved()
    seed_list = [base.seed + i for i in range(seeds)]

    def rows_for(model: Any, config: Any, s: int) -> dict[str, Any]:
        dm = SERDataModule.from_model(model)
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
    atomic_write_bytes(out_dir / "report.json", (json.dumps(result, indent=1, allow_nan=False) + "\n").encode())
    atomic_write_bytes(out_dir / "report.md", render_markdown(result).encode())
    plot_accuracy_vs_bits(result, out_dir / "accuracy_vs_bits.png")
    plot_layer_bits(result, out_dir / "layer_bits.png")
    plot_confusion(
        first["confusion_laq"], first["labels"], out_dir / "confusion_laq.png", title=f"LAQ (paper), test, seed {seed_list[0]}", cells="rates"
    )
    if sweep:
        plot_hl_sweep(sweep, out_dir / "hl_sweep.png")
    return out_dir
