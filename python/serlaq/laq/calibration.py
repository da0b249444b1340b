"""Honest confidence for the shipped model: temperature scaling and the out-of-domain threshold.

Temperature scaling (Guo et al. 2017): one scalar T fitted on the validation logits of the
final, compressed model by minimizing the negative log-likelihood of softmax(logits / T);
it changes no prediction (argmax is invariant), only how sure the model says it is. The
runtime divides logits by the stored `calibration.temperature` before softmax.

The out-of-domain threshold: the 99th percentile of the training clips' RMS z-score (the
root mean square of their standardized features; 1 on average by construction), stored as
`ood.threshold`; a clip above it lies outside what the model was trained on.

Both are plain float64 numpy, deterministic (a fixed grid, then golden-section refinement).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from serlaq.metrics import confidence_scores

#: The runtime's accepted range (rust/core/src/model.rs TEMPERATURE_RANGE).
TEMPERATURE_RANGE = (0.05, 20.0)
#: The runtime's accepted range of ood.threshold (OOD_THRESHOLD_RANGE).
OOD_THRESHOLD_RANGE = (0.1, 1.0e6)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def nll(logits: Any, y: Any, temperature: float) -> float:
    """Mean negative log-likelihood of softmax(logits / T) at the true classes."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    t = np.asarray(y, dtype=np.int64).reshape(-1)
    return float(-_log_softmax(z)[np.arange(t.size), t].mean())


def softmax(logits: Any, temperature: float = 1.0) -> np.ndarray:
    return np.exp(_log_softmax(np.asarray(logits, dtype=np.float64) / temperature))


def fit_temperature(logits: Any, y: Any) -> float:
    """The T in TEMPERATURE_RANGE minimizing the NLL of (logits, y) (1.0 without samples)."""
    t = np.asarray(y, dtype=np.int64).reshape(-1)
    if t.size == 0:
        return 1.0
    lo, hi = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    grid = np.linspace(lo, hi, 61)
    losses = [nll(logits, t, float(np.exp(g))) for g in grid]
    k = int(np.argmin(losses))
    a, b = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(40):  # golden section on log T inside the best grid cell's neighbours
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if nll(logits, t, float(np.exp(c))) <= nll(logits, t, float(np.exp(d))):
            b = d
        else:
            a = c
    return float(np.clip(np.exp((a + b) / 2), *TEMPERATURE_RANGE))


def calibration_report(temperature: float, splits: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    """Mean confidence and ECE before (T = 1) and after calibration, per split {name: (logits, y)}."""
    out: dict[str, Any] = {"temperature": temperature}
    for name, (logits, y) in splits.items():
        before = confidence_scores(softmax(logits), y)
        after = confidence_scores(softmax(logits, temperature), y)
        out[name] = {
            "ece_before": before["ece"],
            "ece": after["ece"],
            "mean_confidence_before": before["mean_confidence"],
            "mean_confidence": after["mean_confidence"],
            "nll_before": nll(logits, y, 1.0),
            "nll": nll(logits, y, temperature),
        }
    return out


def ood_threshold(x_raw: Any, mean: Any, std: Any) -> float:
    """The 99th percentile of the RMS z-scores of raw feature rows under (mean, std)."""
    x = np.asarray(x_raw, dtype=np.float64)
    z = (x - np.asarray(mean, dtype=np.float64)) / np.asarray(std, dtype=np.float64)
    rms = np.sqrt((z * z).mean(axis=1))
    q = float(np.percentile(rms, 99)) if rms.size else 3.0
    return float(np.clip(round(q, 4), *OOD_THRESHOLD_RANGE))
