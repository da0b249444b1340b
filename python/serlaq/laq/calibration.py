"""Honest confidence for the shipped model: temperature scaling and the out-of-domain threshold.

Temperature scaling (Guo et al. 2017): one scalar T >= 1 fitted on the validation logits of
the final, compressed model by minimizing the negative log-likelihood of softmax(logits / T);
it changes no prediction (argmax is invariant), only how sure the model says it is. The
runtime divides logits by the stored `calibration.temperature` before softmax.

The out-of-domain threshold: the 99th percentile of the training clips' RMS z-score (the
root mean square of their standardized features; 1 on average by construction), stored as
`ood.threshold`; a clip above it lies outside what the model was trained on.

With `ood_temper` k > 0 (the default outside `paper` mode) the out-of-domain score is the
distance of the clip's last hidden layer from the training split's (`hidden_reference`: the
mean, the `rank` directions of largest variance and one inverse std per direction plus one
for the rest; `rust/core/src/ood.rs` is the runtime's definition, tested equal), the
threshold the 99th percentile of that distance over the training split, and the runtime
grows the temperature beyond it: `T * max(1, d / threshold)^k`, stopping where the top
label's probability reaches `ood_floor` / classes (m; the default 2, twice chance). With
`ood_features` (the default outside `paper` mode) the reference also stores the features'
own threshold (the 99th percentile of their RMS z-score, `ood_threshold`), and a clip's
score is the larger of its hidden distance and its RMS z-score in the hidden threshold's
units (`ood_scores`): far in either space is far.

All plain float64 numpy, deterministic (a fixed grid, then golden-section refinement; an
eigendecomposition with a fixed sign per direction).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from serlaq.metrics import confidence_scores

#: The runtime's accepted range (rust/core/src/model.rs TEMPERATURE_RANGE).
TEMPERATURE_RANGE = (0.05, 20.0)
#: What the fit may choose: it may soften, never sharpen. Validation splits are small and
#: often nearly perfect in-corpus (TESS: 100 %), where the NLL falls without bound as
#: T -> 0; a sharpened model was measured far more overconfident on a corpus it never
#: heard (EMODB -> TESS ECE 0.39 -> 0.72, TESS -> EMODB 0.07 -> 0.64: docs/adapt.md).
FIT_RANGE = (1.0, 20.0)
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
    """The T in FIT_RANGE minimizing the NLL of (logits, y) (1.0 without samples)."""
    t = np.asarray(y, dtype=np.int64).reshape(-1)
    if t.size == 0:
        return 1.0
    lo, hi = np.log(FIT_RANGE[0]), np.log(FIT_RANGE[1])
    grid = np.linspace(lo, hi, 41)
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
    return float(np.clip(np.exp((a + b) / 2), *FIT_RANGE))


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


#: Directions of the hidden reference (at most the layer's width).
REFERENCE_RANK = 8
#: A direction's variance is floored at this share of the mean one (`ood::VARIANCE_FLOOR`).
VARIANCE_FLOOR = 1.0e-3
#: The runtime's accepted inverse std (`ood::SCALE_RANGE`).
SCALE_RANGE = (1.0e-6, 1.0e6)


#: The largest factor the temperature grows by (`ood::MAX_TEMPER_FACTOR`).
MAX_TEMPER_FACTOR = 1.0e6


def stored_floor(floor: float, classes: int) -> float:
    """The floor a model of `classes` stores: m, or 0 when m / classes would be certainty
    (m >= classes: twice chance with two classes), which the runtime refuses."""
    return floor if 0 < floor < classes else 0.0


def reference_metadata(temper: float, floor: float, classes: int, feature_threshold: float | None = None) -> dict[str, Any]:
    """`ood.reference` as the `.laq` header holds it: the tensor names, the growth `temper`
    and, when set, its `floor` (absent = 0, so files without one read as before) and the
    features' own threshold (absent = the hidden distance alone). A floor m at or above the
    `classes` is not stored: m / classes would be certainty (twice chance with two
    classes), and the runtime refuses it."""
    out: dict[str, Any] = {"space": "hidden", **{k: f"ood.{k}" for k in ("mean", "basis", "scale")}, "temper": temper}
    if stored_floor(floor, classes):
        out["floor"] = floor
    if feature_threshold is not None:
        out["feature_threshold"] = feature_threshold
    return out


def feature_rms(x_raw: Any, mean: Any, std: Any) -> np.ndarray:
    """RMS of each raw row's standardized features, standardized in float32 as the runtime
    does, summed in float64 (`ood::feature_rms`)."""
    f32 = np.float32
    z = (np.asarray(x_raw, dtype=f32) - np.asarray(mean, dtype=f32)) / np.asarray(std, dtype=f32)
    return np.sqrt((z.astype(np.float64) ** 2).mean(axis=1))


def ood_scores(hidden_distances: Any, rms: Any, threshold: float, feature_threshold: float | None) -> np.ndarray:
    """Each row's out-of-domain score (`HiddenReference::score`): its hidden distance, or its
    features' RMS z-score in the hidden `threshold`'s units when a feature threshold is
    stored and that is larger."""
    d = np.asarray(hidden_distances, dtype=np.float64)
    if feature_threshold is None:
        return d
    return np.maximum(d, np.asarray(rms, dtype=np.float64) * threshold / feature_threshold)


#: Bisection steps of the floored temperature (`ood::FLOOR_STEPS`).
FLOOR_STEPS = 48


def _top_probability(logits: np.ndarray, t: np.ndarray) -> np.ndarray:
    z = logits / t[:, None]
    return 1.0 / np.exp(z - z.max(1, keepdims=True)).sum(1)


def floored_temperature(logits: Any, temperature: float, grown: Any, floor: float) -> np.ndarray:
    """Per row, the temperature its logits are divided by: `grown` (T times the growth with
    the distance), lowered to where the top label's probability is `floor` / classes if the
    growth took it below that; rows already below the floor at `temperature` keep it (the
    floor never sharpens beyond the calibration). The runtime's rule
    (`HiddenReference::floored_temperature`): bisection on the logarithm, FLOOR_STEPS steps,
    keeping the sharper end."""
    z = np.asarray(logits, dtype=np.float64)
    out = np.asarray(grown, dtype=np.float64).copy()
    if floor <= 0 or not len(z):
        return out
    c = floor / z.shape[1]
    low = (_top_probability(z, out) < c) & (out != temperature)
    zl, base = z[low], np.full(int(low.sum()), float(temperature))
    lo, hi = np.log(base), np.log(out[low])
    for _ in range(FLOOR_STEPS):
        mid = 0.5 * (lo + hi)
        keep = _top_probability(zl, np.exp(mid)) >= c
        lo, hi = np.where(keep, mid, lo), np.where(keep, hi, mid)
    out[low] = np.where(_top_probability(zl, base) <= c, base, np.exp(lo))
    return out


def runtime_temperatures(
    logits: Any, distances: Any, temperature: float, threshold: float, temper: float, floor: float
) -> np.ndarray:
    """Per row, what the runtime divides the logits by (`Model::calibrated`): `temperature`
    times `max(1, d / threshold)^temper` (at most MAX_TEMPER_FACTOR), stopped at the floor."""
    r = np.maximum(1.0, np.asarray(distances, dtype=np.float64) / threshold)
    grown = temperature * (np.minimum(r**temper, MAX_TEMPER_FACTOR) if temper > 0 else np.ones_like(r))
    return floored_temperature(logits, temperature, grown, floor)


def hidden_reference(hidden: Any, rank: int = REFERENCE_RANK) -> dict[str, np.ndarray]:
    """The reference of last-hidden-layer rows (n, width): {"mean" (width,), "basis" (rank,
    width) orthonormal rows of the largest variance, "scale" (rank + 1,): inverse stds
    along them and per dimension of the rest}, float32 as stored."""
    h = np.asarray(hidden, dtype=np.float64)
    width = h.shape[1]
    rank = max(1, min(rank, width))
    mean = h.mean(axis=0)
    dev = h - mean
    cov = dev.T @ dev / max(len(h), 1)
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    basis = vectors[:, :rank].T.copy()
    # a fixed sign per direction (eigenvectors are defined up to sign): the same bytes every run
    signs = np.sign(basis[np.arange(rank), np.abs(basis).argmax(axis=1)])
    basis *= np.where(signs == 0, 1.0, signs)[:, None]
    variances = np.append(np.maximum(values[:rank], 0.0), max(values[rank:].sum(), 0.0) / max(width - rank, 1))
    floor = VARIANCE_FLOOR * variances.mean()
    scale = np.clip(1.0 / np.sqrt(np.maximum(np.maximum(variances, floor), 1e-12)), *SCALE_RANGE)
    return {
        "mean": mean.astype(np.float32),
        "basis": basis.astype(np.float32),
        "scale": scale.astype(np.float32),
    }


def hidden_distance(hidden: Any, reference: dict[str, np.ndarray]) -> np.ndarray:
    """Distance of each hidden row from `reference` (float64; `ood::HiddenReference::distance`)."""
    h = np.asarray(hidden, dtype=np.float64)
    mean = reference["mean"].astype(np.float64)
    basis = reference["basis"].astype(np.float64).reshape(-1, h.shape[1])
    scale = reference["scale"].astype(np.float64)
    dev = h - mean
    proj = dev @ basis.T
    residual = np.maximum((dev * dev).sum(axis=1) - (proj * proj).sum(axis=1), 0.0)
    total = ((proj * scale[:-1]) ** 2).sum(axis=1) + residual * scale[-1] ** 2
    return np.sqrt(total / h.shape[1])


def distance_threshold(distances: Any, percentile: float = 99.0) -> float:
    """The 99th percentile of training distances (the selection benchmark tries others),
    within the runtime's accepted range."""
    d = np.asarray(distances, dtype=np.float64)
    q = float(np.percentile(d, percentile)) if d.size else 3.0
    return float(np.clip(round(q, 4), *OOD_THRESHOLD_RANGE))
