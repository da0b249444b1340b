"""The figures of a report: accuracy vs bits (Fig. 1/3), bits per layer, the HL sweep (Fig. 3).

The confusion matrix is `serlaq.plots.plot_confusion`, shared with the run folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from serlaq.plots import pyplot, save_figure
from serlaq.reports.rows import FIXED_BITS


def plot_accuracy_vs_bits(report: Mapping[str, Any], path: Path) -> None:
    plt = pyplot()
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
    save_figure(fig, path)


def plot_layer_bits(report: Mapping[str, Any], path: Path) -> None:
    plt = pyplot()
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
    save_figure(fig, path)


def plot_hl_sweep(sweep: Mapping[str, Any], path: Path) -> None:
    plt = pyplot()
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
    save_figure(fig, path)
