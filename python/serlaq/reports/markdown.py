"""`report.md`: the tables of a report as Markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from serlaq.reports.loso import LOSO_ROWS
from serlaq.reports.rows import ROWS


def _header(*columns: str) -> list[str]:
    """A Markdown table's header and separator lines."""
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def _pm(pair: Sequence[float] | None, scale: float = 1.0, digits: int = 2, signed: bool = False) -> str:
    if pair is None:
        return "–"
    m, s = pair
    sign = "+" if signed else ""
    return f"{m * scale:{sign}.{digits}f} ± {s * scale:.{digits}f}"


def _v(x: Any, scale: float = 1.0, digits: int = 2) -> str:
    return "–" if x is None else f"{x * scale:.{digits}f}"


def recipe_line(meta: Mapping[str, Any]) -> list[str]:
    """The header line naming the feature preset and training recipe (none for an older report.json)."""
    f, t = meta.get("features"), meta.get("train")
    if not f or not t:
        return []
    stop = f"early stopping patience {t['patience']}" if t["patience"] < t["max_epochs"] else "no early stopping"
    return [
        f"Features: preset `{f['preset']}` ({f['dim']}-d); training recipe `{t['recipe']}` (at most {t['max_epochs']} epochs, "
        f"{stop}, LR schedule {t['scheduler']}, label smoothing {t['label_smoothing']}). "
        "The paper's Tables 3/4: `--set features.preset=paper --set train.recipe=paper` at `serlaq fit`.",
        "",
    ]


def render_markdown(report: Mapping[str, Any]) -> str:
    lines = [f"# LAQ report: {report['run_dir']}", ""]
    meta = report["meta"]
    lines += recipe_line(meta)
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
        lines += _header("model", "avg bits", "size KB", ".laq KB", "val acc", "test acc", "test macro-F1", "test UAR", "test − fp32 (paired)")
        for key, label in ROWS:
            if key not in agg:
                continue
            r = agg[key]
            lines.append(
                f"| {label} | {_pm(r['avg_bits'], digits=3)} | {_pm(r['size_kb'], digits=1)} | "
                f"{_pm(r.get('file_kb'), digits=1)} | {_pm(r['val'], 100, 1)} | {_pm(r['test'], 100, 1)} | "
                f"{_pm(r.get('test_f1'), 100, 1)} | {_pm(r.get('test_uar'), 100, 1)} | "
                f"{'–' if key == 'fp32' else _pm(r['paired_test_diff'], 100, 1, signed=True)} |"
            )
    else:
        rows = report["per_seed"][0]["rows"]
        lines += _header("model", "avg bits", "size KB", ".laq KB", "val acc", "test acc", "test macro-F1", "test UAR", "plan")
        for key, label in ROWS:
            if key not in rows:
                continue
            r = rows[key]
            plan = " ".join(str(b) for b in r["plan"].values()) if "plan" in r else ""
            lines.append(
                f"| {label} | {r['avg_bits']:.3f} | {r['size_kb']:.1f} | {_v(r.get('file_kb'), 1, 1)} | "
                f"{100 * r['val']:.2f} | {100 * r['test']:.2f} | {_v(r.get('test_f1'), 100)} | {_v(r.get('test_uar'), 100)} | {plan} |"
            )
    first = report["per_seed"][0]
    if "table3" in first:
        lines += ["", "## Table 3: importance weights (w_P, w_E, w_V) → LAQ (paper search)", ""]
        lines += _header("w_P", "w_E", "w_V", "avg bits", "val acc", "test acc", "test macro-F1", "test UAR")
        t3 = report["aggregate"]["table3"] if multi else first["table3"]
        for r in t3:
            wp, we, wv = r["weights"]
            if multi:
                lines.append(f"| {wp} | {we} | {wv} | {_pm(r['avg_bits'], digits=3)} | {_pm(r['val'], 100, 1)} | {_pm(r['test'], 100, 1)} | {_pm(r.get('test_f1'), 100, 1)} | {_pm(r.get('test_uar'), 100, 1)} |")
            else:
                lines.append(f"| {wp} | {we} | {wv} | {r['avg_bits']:.3f} | {100 * r['val']:.2f} | {100 * r['test']:.2f} | {_v(r.get('test_f1'), 100)} | {_v(r.get('test_uar'), 100)} |")
    trace = first["rows"]["laq"].get("trace")
    if trace:
        lines += ["", f"## The paper search on seed {report['seeds'][0]} (validation accuracy, every tried bit-width)", ""]
        lines += _header("rank", "layer", "importance", "margin", "tried b: val acc", "chosen")
        for t in trace:
            tried = ", ".join(f"{x['bits']}: {100 * x['score']:.1f}" for x in t["trials"])
            lines.append(f"| {t['rank']} | {t['name']} | {t['importance']:.4f} | {100 * t['margin']:.3f} pt | {tried} | {t['bits']} |")
    if "hl_sweep" in report:
        lines += ["", "## HL variants (Table 2), seed " + str(report["seeds"][0]), ""]
        lines += _header("variant", "fp32 test", "8-bit", "4-bit", "2-bit", "1-bit", "LAQ test", "LAQ bits")
        for name, r in report["hl_sweep"].items():
            rr = r["rows"]
            lines.append(
                f"| {name} | {100 * rr['fp32']['test']:.2f} | {100 * rr['fixed8']['test']:.2f} | {100 * rr['fixed4']['test']:.2f} | "
                f"{100 * rr['fixed2']['test']:.2f} | {100 * rr['fixed1']['test']:.2f} | {100 * rr['laq']['test']:.2f} | {rr['laq']['avg_bits']:.3f} |"
            )
    lines += ["", "Figures: accuracy_vs_bits.png, layer_bits.png, confusion_laq.png" + (", hl_sweep.png" if "hl_sweep" in report else ""), ""]
    return "\n".join(lines)


def render_loso_markdown(report: Mapping[str, Any]) -> str:
    """`report.md` of `--protocol loso`: one row per held-out speaker, then mean ± sd over folds."""
    meta = report["meta"]
    folds = report["folds"]
    settings = meta["compress_settings"]
    budget = f", budget {settings['budget_bits']} bits" if settings.get("budget_bits") is not None else ""
    lines = [f"# Leave-one-speaker-out report: {report['run_dir']}", ""]
    lines += recipe_line(meta)
    lines += [
        f"Model: MLP {meta['architecture']}, {meta['parameters']:,} parameters; seed {report['seed']}; "
        f"{len(folds)} folds (one per speaker: {', '.join(meta['speakers'])}). Each fold trains the run's config "
        f"on the other speakers (a stratified {meta['val_fraction']:g} of their clips for validation), compresses it "
        f"(mode `{settings['mode']}`{budget}) and scores the held-out speaker. Accuracies in %; "
        "`.laq` KB = the real file (1000 bytes). On one speaker's clips UAR averages the recall of the classes "
        "that speaker has; macro-F1 averages over the classes in the clips or the predictions (a class the "
        "speaker lacks but the model predicts counts 0).",
        "",
        "## Per fold (test = the held-out speaker)",
        "",
    ]
    lines += _header(
        "fold", "speaker", "train/val/test clips", "fp32 acc", "fp32 UAR", "fp32 macro-F1",
        "compressed acc", "compressed UAR", "compressed macro-F1", "avg bits", ".laq KB",
    )  # fmt: skip
    for f in folds:
        a, c = f["rows"]["fp32"], f["rows"]["compressed"]
        sizes = f["split_sizes"]
        lines.append(
            f"| {f['fold']} | {f['speaker']} | {sizes['train']}/{sizes['val']}/{sizes['test']} | "
            f"{100 * a['test']:.1f} | {100 * a['test_uar']:.1f} | {100 * a['test_f1']:.1f} | "
            f"{100 * c['test']:.1f} | {100 * c['test_uar']:.1f} | {100 * c['test_f1']:.1f} | "
            f"{c['avg_bits']:.3f} | {c['file_kb']:.1f} |"
        )
    agg = report["aggregate"]["rows"]
    lines += ["", f"## Mean ± sd over {len(folds)} folds", ""]
    lines += _header("model", "avg bits", ".laq KB", "val acc", "test acc", "test UAR", "test macro-F1", "test − fp32 (paired per fold)")
    for key, label in LOSO_ROWS:
        if key not in agg:
            continue
        r = agg[key]
        lines.append(
            f"| {label} | {_pm(r['avg_bits'], digits=3)} | {_pm(r.get('file_kb'), digits=1)} | {_pm(r['val'], 100, 1)} | "
            f"{_pm(r['test'], 100, 1)} | {_pm(r.get('test_uar'), 100, 1)} | {_pm(r.get('test_f1'), 100, 1)} | "
            f"{'–' if key == 'fp32' else _pm(r['paired_test_diff'], 100, 1, signed=True)} |"
        )
    lines.append("")
    return "\n".join(lines)
