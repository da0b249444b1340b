"""Layer importance, equations 1-4 of the paper (with the method notes' rulings).

For each quantizable layer l (its weight matrix only; biases stay fp32):

- N_P(l) = weights in l / weights in all quantizable layers                      (eq. 1)
- N_E(l) = H(l) / B, H(l) = Shannon entropy in bits of the histogram of l's
  weights on 2^B equal-width bins over [min, max]; B = reference bits (8)       (eq. 2)
- N_V(l) = ln(e - 1 + var(l) / max_k var(k))                                     (eq. 3)
- Importance(l) = w_P N_P + w_E (1 - N_E) + w_V N_V                              (eq. 4)

Everything is computed in float64 numpy so the ranking does not depend on the device
or on summation order inside torch kernels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from serlaq.errors import ConfigError

DEFAULT_WEIGHTS: tuple[float, float, float] = (0.11, 0.01, 0.88)

#: The nine (w_P, w_E, w_V) rows of the paper's Table 3, in the paper's order.
TABLE3_WEIGHTS: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0, 0.0),
    (1.0, 0.0, 0.0),
    (0.0, 1.0, 0.0),
    (0.0, 0.0, 1.0),
    (0.5, 0.5, 0.0),
    (0.5, 0.0, 0.5),
    (0.0, 0.5, 0.5),
    (0.33, 0.33, 0.33),
    (0.11, 0.01, 0.88),
)


@dataclass(frozen=True)
class LayerImportance:
    """The three statistics of one layer and the weighted importance (eq. 1-4)."""

    name: str
    n_weights: int
    n_p: float
    entropy_bits: float
    n_e: float
    variance: float
    n_v: float
    importance: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_float64(w: Any) -> np.ndarray:
    if hasattr(w, "detach"):  # a torch tensor; keep torch an optional import here
        w = w.detach().cpu().double().numpy()
    return np.asarray(w, dtype=np.float64).ravel()


def histogram_entropy_bits(values: np.ndarray, n_bins: int) -> float:
    """Shannon entropy (bits) of the histogram of `values` on `n_bins` equal bins over [min, max].

    A constant tensor puts every value in one bin: entropy 0.
    """
    if values.size == 0:
        raise ValueError("entropy of an empty tensor is undefined")
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return 0.0
    counts, _ = np.histogram(values, bins=n_bins, range=(lo, hi))
    p = counts[counts > 0].astype(np.float64) / values.size
    return float(-(p * np.log2(p)).sum())


def _check_weights(weights: Sequence[float]) -> tuple[float, float, float]:
    if len(weights) != 3:
        raise ConfigError(f"laq.weights: expected three numbers (w_P, w_E, w_V), got {len(weights)}")
    w = tuple(float(x) for x in weights)
    if any(not math.isfinite(x) or x < 0 for x in w):
        raise ConfigError(f"laq.weights: every weight must be a finite number >= 0, got {list(w)}")
    return w  # type: ignore[return-value]


def layer_importance(
    layers: Mapping[str, Any],
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    reference_bits: int = 8,
) -> list[LayerImportance]:
    """Eq. 1-4 for every layer of `layers` (name -> weight matrix), in the mapping's order.

    `weights` is (w_P, w_E, w_V); `reference_bits` is B, the model's bit precision that
    normalizes the entropy and sets the 2^B histogram bins.
    """
    w_p, w_e, w_v = _check_weights(weights)
    if not 1 <= int(reference_bits) <= 16:
        raise ConfigError(f"laq.reference_bits: must be in 1..16, got {reference_bits}")
    if not layers:
        raise ValueError("layer_importance needs at least one layer")
    flat = {name: _as_float64(w) for name, w in layers.items()}
    for name, v in flat.items():
        if v.size == 0:
            raise ValueError(f"layer {name!r} has no weights")
        if not np.isfinite(v).all():
            raise ValueError(f"layer {name!r} has non-finite weights (NaN or inf)")
    total = sum(v.size for v in flat.values())
    variances = {name: float(v.var()) for name, v in flat.items()}  # population variance
    max_var = max(variances.values())
    out = []
    for name, v in flat.items():
        n_p = v.size / total
        entropy = histogram_entropy_bits(v, 2 ** int(reference_bits))
        n_e = entropy / int(reference_bits)
        ratio = variances[name] / max_var if max_var > 0 else 0.0
        n_v = math.log(math.e - 1.0 + ratio)
        importance = w_p * n_p + w_e * (1.0 - n_e) + w_v * n_v
        out.append(
            LayerImportance(
                name=name,
                n_weights=int(v.size),
                n_p=n_p,
                entropy_bits=entropy,
                n_e=n_e,
                variance=variances[name],
                n_v=n_v,
                importance=importance,
            )
        )
    return out


def rank_by_importance(stats: Sequence[LayerImportance]) -> list[LayerImportance]:
    """Highest importance first; ties keep forward order (a stable sort), so ranks are deterministic."""
    return sorted(stats, key=lambda s: -s.importance)


def average_bits(n_weights: Mapping[str, int], plan: Mapping[str, int]) -> float:
    """Eq. 6: sum_l N_P(l) * b(l), N_P over the quantizable weights."""
    total = sum(n_weights.values())
    missing = set(n_weights) - set(plan)
    if missing:
        raise ValueError(f"bit plan has no bits for layer(s) {sorted(missing)}")
    return float(sum(n * plan[name] for name, n in n_weights.items()) / total)
