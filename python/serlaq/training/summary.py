"""The few lines `serlaq fit` prints: where the run is and how it scored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from serlaq.training.run_folder import BEST, CONFIG, CONFUSION_PNG, LAQ_REPORT, LAST, LOGS, METRICS, MODEL, RunResult


def format_summary(result: RunResult) -> str:
    m = result.metrics
    sizes = m["split_sizes"]
    lines = [
        f"run folder   {result.run_dir}",
        f"data         {_dataset(m)}: {sizes['train']} train / {sizes['val']} val / {sizes['test']} test clips, "
        f"{len(m['labels'])} classes",
        f"model        MLP {m['input_dim']}-{'-'.join(map(str, m['hidden']))}-{len(m['labels'])}, "
        f"{m['parameters']:,} parameters ({m['fp32_bytes'] / 1000:.0f} KB fp32)",
        f"epochs       {m['epochs']} (best {m['monitor']} at epoch {m['best_epoch'] + 1}; "
        f"model = epoch {m['model_epoch'] + 1}{', restored' if m['restore_best'] else ', where training stopped'})",
        _score_line("val", m["val"]),
        _score_line("test", m["test"]),
        f"time         {m['timings']['total_s']:.1f} s (data {m['timings']['data_s']:.1f} s, "
        f"training {m['timings']['fit_s']:.1f} s)",
        f"wrote        {MODEL}, {METRICS}, {CONFUSION_PNG}, {LOGS}/, {CONFIG} (+ {BEST}, {LAST})",
    ]
    if result.laq is not None:
        lines.append(_laq_line(result.laq))
    return "\n".join(lines)


def _dataset(m: dict[str, Any]) -> str:
    """The dataset setting, and for `auto` the layout it read ("auto (read as tess)")."""
    layout = (m.get("data") or {}).get("layout")
    return f"{m['dataset']} (read as {layout})" if m["dataset"] == "auto" and layout else str(m["dataset"])


def _score_line(split: str, s: dict[str, Any]) -> str:
    return (
        f"{split:<13}accuracy {100 * s['accuracy']:.2f}%  macro-F1 {100 * s['macro_f1']:.2f}%  UAR {100 * s['uar']:.2f}%"
    )


def _laq_line(report: dict[str, Any]) -> str:
    try:
        sizes, accuracy = report["sizes"], report["accuracy"]
        return (
            f"compressed   {report['laq_file']}: {report['avg_bits']:.2f} average bits, {sizes['file_kb']:.1f} KB "
            f"(fp32 {sizes['fp32_kb']:.0f} KB), test accuracy {100 * accuracy['laq_test']:.2f}% "
            f"(fp32 {100 * accuracy['fp32_test']:.2f}%), details in {_report_name(report)}"
        )
    except (KeyError, TypeError, ValueError):
        return f"compressed   see {_report_name(report)}"


def _report_name(report: dict[str, Any]) -> str:
    """The report beside the `.laq`: `laq.json` for `model.laq`, else `<stem>.json`."""
    from serlaq.laq.compress import summary_path

    laq_file = report.get("laq_file") if isinstance(report, dict) else None
    return summary_path(Path(str(laq_file))).name if laq_file else LAQ_REPORT
