"""Weight quantizers: binary at 1 bit, uniform affine at 2..8 bits, per tensor or per output channel.

Every quantizer returns codes (uint8, one per weight) with a scale and a zero point, and
the weight the runtime will use is always

    w' = scale * (q - zero)        computed in float32, exactly as the Rust GEMV decodes it,

so a torch model carrying `QuantizedWeight.dequantize()` and the packed `.laq` file run
the same numbers.

- Binary (the paper at b = 1): w' = alpha * sign(w), alpha = mean |w| (per tensor, or per
  row with `per_channel`), stored as codes {0, 1} with scale = 2 alpha and zero = 0.5.
  A weight of exactly 0 gets code 1 (+alpha): the format has no third level.
- Affine min-max (the paper at b >= 2, method notes):
  scale = (max - min) / (2^b - 1), zero = round(-min / scale),
  q = clamp(round(w / scale) + zero, 0, 2^b - 1). Rounding is half-to-even (numpy `rint`).
- Affine with range search (beyond the paper, `range_search=True`): the clipping range
  and offset that minimize the squared reconstruction error, found by trying shrunken
  min-max ranges and refining each by alternating least squares (the way llama.cpp's
  k-quants fit their scales). The min-max solution is one of the candidates, so the error
  is never worse than min-max. Its zero point is fractional (the format stores it as f32).

A constant tensor (max == min) has no range; it is stored exactly as scale = |v| with
codes and zero chosen so w' = v (scale 0 when v = 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

Quantizer = Literal["affine", "binary"]

# Shrink factors for the range search's starting clip ranges (1.0 is plain min-max).
_SHRINK = np.linspace(1.0, 0.3, 15)
_LSQ_ITERS = 4


@dataclass(frozen=True)
class QuantScheme:
    """How weights are quantized (not how many bits: that is the plan's job)."""

    per_channel: bool = False
    range_search: bool = False

    def describe(self) -> str:
        gran = "per-channel" if self.per_channel else "per-tensor"
        rng = "range-search" if self.range_search else "min-max"
        return f"{gran}, binary at 1 bit, affine {rng} at 2-8 bits"


@dataclass(frozen=True, eq=False)
class QuantizedWeight:
    """One quantized weight matrix as the `.laq` writer takes it."""

    bits: int
    quantizer: Quantizer
    codes: np.ndarray  # uint8 (rows, cols), each < 2**bits
    scale: np.ndarray  # float32 (1,) per tensor or (rows,) per channel
    zero: np.ndarray  # float32, same shape as scale
    _deq: torch.Tensor | None = field(default=None, repr=False, compare=False)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.codes.shape[0]), int(self.codes.shape[1]))

    @property
    def granularity(self) -> Literal["tensor", "channel"]:
        return "tensor" if self.scale.shape[0] == 1 else "channel"

    def dequantize(self) -> torch.Tensor:
        """w' = scale * (q - zero) in float32, broadcast per row when per channel."""
        return dequantize(self.codes, self.scale, self.zero)

    def packed_bytes(self) -> int:
        """Bytes of the packed codes, every row byte-aligned as the `.laq` stores them."""
        rows, cols = self.shape
        return rows * ((cols * self.bits + 7) // 8)

    def param_bytes(self) -> int:
        """Bytes of the stored scales and zero points (f32 each)."""
        return 4 * (self.scale.size + self.zero.size)

    def layer_dict(self, name: str, bias: np.ndarray | None) -> dict[str, Any]:
        """The layer dict of `serlaq._native.write_laq`."""
        return {
            "name": name,
            "bits": int(self.bits),
            "quantizer": self.quantizer,
            "codes": np.ascontiguousarray(self.codes, dtype=np.uint8),
            "scale": np.ascontiguousarray(self.scale, dtype=np.float32),
            "zero": np.ascontiguousarray(self.zero, dtype=np.float32),
            "bias": None if bias is None else np.ascontiguousarray(bias, dtype=np.float32),
        }


def dequantize(codes: np.ndarray, scale: np.ndarray, zero: np.ndarray) -> torch.Tensor:
    """The runtime's decode: scale[r] * (q[r, c] - zero[r]) in float32 (r = 0 per tensor)."""
    q = torch.from_numpy(np.ascontiguousarray(codes)).to(torch.float32)
    s = torch.from_numpy(np.ascontiguousarray(scale, dtype=np.float32)).reshape(-1, 1)
    z = torch.from_numpy(np.ascontiguousarray(zero, dtype=np.float32)).reshape(-1, 1)
    return s * (q - z)


def _as_matrix(w: Any) -> np.ndarray:
    if isinstance(w, torch.Tensor):
        w = w.detach().cpu().to(torch.float64).numpy()
    m = np.asarray(w, dtype=np.float64)
    if m.ndim == 1:
        m = m.reshape(1, -1)
    if m.ndim != 2:
        raise ValueError(f"expected a weight matrix (rows, cols), got shape {m.shape}")
    if m.size == 0:
        raise ValueError("cannot quantize an empty weight matrix")
    if not np.isfinite(m).all():
        raise ValueError("cannot quantize weights that contain NaN or inf")
    return m


def _groups(m: np.ndarray, per_channel: bool) -> np.ndarray:
    """(groups, n): one row per output channel, or the whole tensor as one group."""
    return m if per_channel else m.reshape(1, -1)


def _codes_for(g: np.ndarray, scale: np.ndarray, zero: np.ndarray, levels: int, integer_zero: bool) -> np.ndarray:
    """Code of every weight under the stored (f32) scale and zero; 0 where scale is 0.

    With an integer zero point this is the method notes' clamp(round(w / scale) + zero);
    with a fractional one (range search) the nearest level, clamp(round(w / scale + zero)).
    """
    s = scale.astype(np.float64)[:, None]
    z = zero.astype(np.float64)[:, None]
    safe = np.where(s > 0, s, 1.0)
    q = np.rint(g / safe) + z if integer_zero else np.rint(g / safe + z)
    q = np.where(s > 0, q, 0.0)
    return np.clip(q, 0, levels).astype(np.uint8)


def _constant_fix(g: np.ndarray, scale: np.ndarray, zero: np.ndarray, codes: np.ndarray) -> None:
    """Store constant groups exactly: w' = |v| * (code - zero) = v (in place)."""
    const = g.max(axis=1) == g.min(axis=1)
    for i in np.flatnonzero(const):
        v = g[i, 0]
        scale[i] = np.float32(abs(v))
        if v >= 0:
            zero[i], codes[i, :] = 0.0, 1 if v > 0 else 0
        else:
            zero[i], codes[i, :] = 1.0, 0


def binary(w: Any, per_channel: bool = False) -> QuantizedWeight:
    """The paper's 1-bit quantizer: alpha * sign(w), alpha = mean |w| (per tensor or per row)."""
    m = _as_matrix(w)
    g = _groups(m, per_channel)
    alpha = np.abs(g).mean(axis=1)
    scale = (2.0 * alpha).astype(np.float32)
    zero = np.full(scale.shape, 0.5, dtype=np.float32)
    codes = (m >= 0).astype(np.uint8)
    return QuantizedWeight(1, "binary", codes, scale, zero)


def affine_minmax(w: Any, bits: int, per_channel: bool = False) -> QuantizedWeight:
    """The method notes' uniform affine quantizer at `bits` >= 2 (integer zero point)."""
    _check_bits(bits, low=2)
    m = _as_matrix(w)
    g = _groups(m, per_channel)
    levels = 2**bits - 1
    lo, hi = g.min(axis=1), g.max(axis=1)
    scale = ((hi - lo) / levels).astype(np.float32)
    s64 = scale.astype(np.float64)
    zero = np.where(s64 > 0, np.rint(-lo / np.where(s64 > 0, s64, 1.0)), 0.0).astype(np.float32)
    codes = _codes_for(g, scale, zero, levels, integer_zero=True)
    _constant_fix(g, scale, zero, codes)
    return QuantizedWeight(bits, "affine", codes.reshape(m.shape), scale, zero)


def _sq_error(g: np.ndarray, scale: np.ndarray, zero: np.ndarray, codes: np.ndarray) -> np.ndarray:
    deq = scale.astype(np.float32)[:, None] * (codes.astype(np.float32) - zero.astype(np.float32)[:, None])
    return ((g - deq.astype(np.float64)) ** 2).sum(axis=1)


def affine_range_search(w: Any, bits: int, per_channel: bool = False) -> QuantizedWeight:
    """Affine quantizer whose clip range and offset minimize the squared reconstruction error."""
    _check_bits(bits, low=2)
    m = _as_matrix(w)
    g = _groups(m, per_channel)
    levels = 2**bits - 1
    best = affine_minmax(m, bits, per_channel)
    best_scale, best_zero = best.scale.copy(), best.zero.copy()
    best_codes = _groups(best.codes, per_channel).copy()
    best_err = _sq_error(g, best_scale, best_zero, best_codes)
    lo0, hi0 = g.min(axis=1), g.max(axis=1)
    varying = hi0 > lo0
    if not varying.any():
        return best
    for f in _SHRINK:
        lo, hi = lo0 * f, hi0 * f
        d = np.where(varying, (hi - lo) / levels, 1.0)
        off = lo.copy()
        for _ in range(_LSQ_ITERS):
            q = np.clip(np.rint((g - off[:, None]) / d[:, None]), 0, levels)
            # least squares for w ~ d * q + off given the codes
            qm = q.mean(axis=1)
            wm = g.mean(axis=1)
            qv = ((q - qm[:, None]) ** 2).sum(axis=1)
            cov = ((q - qm[:, None]) * (g - wm[:, None])).sum(axis=1)
            ok = (qv > 0) & varying
            d_new = np.where(ok, cov / np.where(qv > 0, qv, 1.0), d)
            ok &= d_new > 0
            d = np.where(ok, d_new, d)
            off = np.where(ok, wm - d * qm, off)
        scale = d.astype(np.float32)
        zero = (-off / d).astype(np.float32)
        codes = _codes_for(g, scale, zero, levels, integer_zero=False)
        err = _sq_error(g, scale, zero, codes)
        better = varying & (err < best_err) & (scale > 0)
        if better.any():
            best_scale[better], best_zero[better] = scale[better], zero[better]
            best_codes[better] = codes[better]
            best_err[better] = err[better]
    return QuantizedWeight(bits, "affine", best_codes.reshape(m.shape), best_scale, best_zero)


def quantize(w: Any, bits: int, scheme: QuantScheme = QuantScheme()) -> QuantizedWeight:
    """Quantize a weight matrix at `bits` (1..8) with `scheme`: binary at 1 bit, affine above."""
    _check_bits(bits, low=1)
    if bits == 1:
        return binary(w, scheme.per_channel)
    if scheme.range_search:
        return affine_range_search(w, bits, scheme.per_channel)
    return affine_minmax(w, bits, scheme.per_channel)


def relative_rmse(w: Any, q: QuantizedWeight) -> float:
    """||w - w'|| / ||w||: how well the quantized matrix reconstructs the original."""
    m = _as_matrix(w)
    deq = q.dequantize().to(torch.float64).numpy()
    denom = float(np.sqrt((m**2).sum()))
    return float(np.sqrt(((m - deq) ** 2).sum())) / denom if denom > 0 else 0.0


def _check_bits(bits: int, low: int) -> None:
    if not isinstance(bits, (int, np.integer)) or not low <= bits <= 8:
        raise ValueError(f"bits must be an integer in {low}..8, got {bits!r}")
