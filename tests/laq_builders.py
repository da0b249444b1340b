"""Small `.laq` files and audio for the runtime and inference-CLI tests.

The quantizer here is written independently of `serlaq.laq.quantize` (the method notes'
per-tensor / per-channel min-max affine and the binary form), so the runtime is checked
against a second implementation of the same arithmetic, not against itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from serlaq import _native
from serlaq.features import FeatureConfig


def quantize(w: np.ndarray, bits: int, per_channel: bool = False) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """(quantizer, codes, scale, zero) with w' = scale * (codes - zero)."""
    w = np.asarray(w, dtype=np.float32)
    groups = w if per_channel else w.reshape(1, -1)
    if bits == 1:
        alpha = np.abs(groups).mean(axis=1).astype(np.float32)
        codes = (w >= 0).astype(np.uint8)
        return "binary", codes, (2 * alpha).astype(np.float32), np.full_like(alpha, 0.5)
    levels = 2**bits - 1
    lo, hi = groups.min(axis=1), groups.max(axis=1)
    scale = ((hi - lo) / levels).astype(np.float32)
    scale[scale == 0] = 1.0
    zero = np.rint(-lo / scale).astype(np.float32)
    s = scale[:, None] if per_channel else scale[0]
    z = zero[:, None] if per_channel else zero[0]
    codes = np.clip(np.rint(w / s) + z, 0, levels).astype(np.uint8)
    return "affine", codes, scale, zero


def dequantize(codes: np.ndarray, scale: np.ndarray, zero: np.ndarray) -> np.ndarray:
    if scale.shape[0] == 1:
        return (scale[0] * (codes.astype(np.float32) - zero[0])).astype(np.float32)
    return (scale[:, None] * (codes.astype(np.float32) - zero[:, None])).astype(np.float32)


@dataclass
class BuiltModel:
    """What went into a `.laq` file, and a float64 numpy reference of its forward pass."""

    path: Path
    labels: list[str]
    weights: list[np.ndarray]  # the dequantized weights (what the file encodes)
    biases: list[np.ndarray]
    bits: list[int]
    mean: np.ndarray
    std: np.ndarray
    metadata: dict[str, Any]

    def logits(self, x_raw: np.ndarray) -> np.ndarray:
        h = (np.asarray(x_raw, dtype=np.float64) - self.mean) / self.std
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = h @ w.astype(np.float64).T + b
            if i != len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return h

    def proba(self, x_raw: np.ndarray) -> np.ndarray:
        z = self.logits(x_raw)
        z = np.exp(z - z.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)


def metadata(
    labels: Sequence[str], hidden: Sequence[int], cfg: FeatureConfig | None = None, avg_bits: float = 0.0
) -> dict[str, Any]:
    cfg = cfg or FeatureConfig(preset="paper")
    return {
        "serlaq_version": "0.1.0",
        "labels": list(labels),
        "features": cfg.model_dump(mode="json"),
        "architecture": {
            "type": "mlp",
            "input_dim": cfg.dim,
            "hidden": list(hidden),
            "activation": "relu",
            "num_classes": len(labels),
        },
        "normalization": {"mean": "norm.mean", "std": "norm.std"},
        "laq": {"avg_bits": avg_bits, "mode": "test"},
    }


def write_model(
    path: Path,
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray | None],
    bits: Sequence[int],
    labels: Sequence[str],
    mean: np.ndarray,
    std: np.ndarray,
    per_channel: bool | Sequence[bool] = False,
    meta: dict[str, Any] | None = None,
    meta_json: str | None = None,
) -> BuiltModel:
    """Quantize fp32 weights at `bits` and write them (plus norm stats) as a `.laq` file."""
    cfg = FeatureConfig(preset="paper")
    hidden = [int(w.shape[0]) for w in weights[:-1]]
    chans = [per_channel] * len(weights) if isinstance(per_channel, bool) else list(per_channel)
    layers, deq = [], []
    for i, (w, b, nb, pc) in enumerate(zip(weights, biases, bits, chans)):
        qname, codes, scale, zero = quantize(w, nb, pc)
        layers.append(
            {
                "name": f"net.{2 * i}",
                "bits": int(nb),
                "quantizer": qname,
                "codes": codes,
                "scale": scale,
                "zero": zero,
                "bias": None if b is None else np.asarray(b, dtype=np.float32),
            }
        )
        deq.append(dequantize(codes, scale, zero))
    n = [w.size for w in weights]
    avg = float(sum(k * b for k, b in zip(n, bits)) / sum(n))
    md = meta if meta is not None else metadata(labels, hidden, cfg, avg)
    tensors = {"norm.mean": np.asarray(mean, np.float32), "norm.std": np.asarray(std, np.float32)}
    _native.write_laq(str(path), meta_json if meta_json is not None else json.dumps(md), layers, tensors)
    return BuiltModel(
        path=path,
        labels=list(labels),
        weights=deq,
        biases=[np.zeros(w.shape[0]) if b is None else np.asarray(b, np.float64) for w, b in zip(weights, biases)],
        bits=list(bits),
        mean=np.asarray(mean, np.float64),
        std=np.asarray(std, np.float64),
        metadata=md,
    )


def random_model(
    path: Path,
    labels: Sequence[str] = ("angry", "happy", "neutral", "sad"),
    hidden: Sequence[int] = (48, 24),
    bits: Sequence[int] = (4, 1, 8),
    per_channel: bool | Sequence[bool] = False,
    seed: int = 0,
    **kw: Any,
) -> BuiltModel:
    """A random MLP over 180-d features; norm stats at the scale of real (power) features."""
    rng = np.random.default_rng(seed)
    dims = [180, *hidden, len(labels)]
    weights = [rng.normal(0, 1 / np.sqrt(dims[i]), (dims[i + 1], dims[i])).astype(np.float32) for i in range(len(dims) - 1)]
    biases = [rng.normal(0, 0.1, dims[i + 1]).astype(np.float32) for i in range(len(dims) - 1)]
    mean = rng.normal(0, 1, 180).astype(np.float32)
    std = rng.uniform(0.5, 2.0, 180).astype(np.float32)
    return write_model(path, weights, biases, bits, labels, mean, std, per_channel=per_channel, **kw)


def tone(
    freq: float, sr: int, seconds: float = 0.5, channels: int = 1, seed: int = 0, amplitude: float = 0.5
) -> np.ndarray:
    """(samples,) or (samples, channels) float32: a tone with a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    x = amplitude * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
    if channels == 1:
        return x.astype(np.float32)
    # channels differ in level (a panned source), each with its own noise
    chans = [(1.0 - 0.1 * c) * x + 0.005 * rng.standard_normal(t.size) for c in range(channels)]
    return np.stack(chans, axis=1).astype(np.float32)


def write_wav(path: Path, data: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sr, subtype=subtype)
    return path


_TRAINED: dict[str, BuiltModel] = {}


def shared_tone_model() -> BuiltModel:
    """`trained_tone_model` built once per test session (both inference test files use it)."""
    if "model" not in _TRAINED:
        import atexit
        import shutil
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix="serlaq-tones-"))
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        _TRAINED["model"] = trained_tone_model(tmp / "tones.laq", tmp)
    return _TRAINED["model"]


def trained_tone_model(path: Path, tmp: Path) -> BuiltModel:
    """A tiny MLP really trained (torch, seconds) to tell three tone bands apart:
    angry = high tone, sad = low tone, neutral = mid tone; quantized at 8/4 bits."""
    import torch

    from serlaq.data.audio import load_audio
    from serlaq.features import FeatureExtractor

    labels = ["angry", "neutral", "sad"]
    bands = {"angry": 1500.0, "neutral": 600.0, "sad": 180.0}
    extractor = FeatureExtractor(FeatureConfig(preset="paper")).eval()
    xs, ys = [], []
    # every rate a test uses, so the model does not key on how much bandwidth a clip has
    rates = [8000, 11025, 16000, 22050, 32000, 44100, 48000]
    for k, lab in enumerate(labels):
        for j in range(2 * len(rates)):
            f = bands[lab] * (0.9 + 0.015 * j)
            sr = rates[j % len(rates)]
            amp = (0.15, 0.3, 0.6)[j % 3]  # nor on loudness
            wav = write_wav(tmp / "train" / f"{lab}_{j}.wav", tone(f, sr, 0.4, seed=j, amplitude=amp), sr)
            with torch.inference_mode():
                xs.append(extractor(torch.from_numpy(load_audio(wav, 22050))).numpy())
            ys.append(k)
    x = np.stack(xs).astype(np.float32)
    mean, std = x.mean(0), x.std(0) + 1e-3
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(180, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    xt = torch.from_numpy((x - mean) / std)
    yt = torch.tensor(ys)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    ws = [net[0].weight.detach().numpy(), net[2].weight.detach().numpy()]
    bs = [net[0].bias.detach().numpy(), net[2].bias.detach().numpy()]
    return write_model(path, ws, bs, [8, 4], labels, mean, std, per_channel=True)
