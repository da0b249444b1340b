"""The figures serlaq writes, as PNG bytes or files; matplotlib is imported only when one is drawn.

`confusion_png` is the one confusion-matrix figure (training run folder, `serlaq report`,
`serlaq evaluate`); `save_figure` writes any figure atomically.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

from serlaq.io import atomic_write_bytes


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig: Any, dpi: int = 120) -> bytes:
    """The figure as PNG bytes (tight layout); the figure is closed."""
    plt = pyplot()
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def save_figure(fig: Any, path: str | os.PathLike[str]) -> None:
    atomic_write_bytes(path, figure_png(fig))


def confusion_png(
    confusion: Sequence[Sequence[int]],
    labels: Sequence[str],
    title: str | None = None,
    cells: str = "counts",
) -> bytes:
    """Row-normalized confusion matrix; the cells show the clip counts or (cells="rates") the row fractions.

    The default title is the score ("correct/total correct").
    """
    import numpy as np

    plt = pyplot()
    counts = np.asarray(confusion, dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 1.0 + 0.7 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title if title is not None else f"{int(np.trace(counts))}/{int(counts.sum())} correct")
    for (row, col), count in np.ndenumerate(counts):
        text = f"{rates[row, col]:.2f}" if cells == "rates" else str(int(count))
        color = "white" if rates[row, col] > 0.5 else "black"
        ax.text(col, row, text, ha="center", va="center", color=color, fontsize=8 if cells == "rates" else None)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    return figure_png(fig)


def plot_confusion(
    confusion: Sequence[Sequence[int]],
    labels: Sequence[str],
    path: str | os.PathLike[str],
    title: str | None = None,
    cells: str = "counts",
) -> None:
    """`confusion_png` written atomically to `path`."""
    atomic_write_bytes(path, confusion_png(confusion, labels, title, cells))
