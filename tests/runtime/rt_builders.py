"""Small `.laq` files and audio for the runtime and inference-CLI tests, without torch.

These run in the runtime-only environment too (numpy and the native module only), so
WAVs are written with the standard library's `wave` (PCM16) and the tone model is
trained with numpy on the native features.

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

from serlaq import _native


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
    labels: Sequence[str], hidden: Sequence[int], features: dict[str, Any] | None = None, avg_bits: float = 0.0
) -> dict[str, Any]:
    features = dict(features or PAPER_FEATURES)
    return {
        "serlaq_version": "0.1.0",
        "labels": list(labels),
        "features": features,
        "architecture": {
            "type": "mlp",
            "input_dim": PAPER_DIM if features == PAPER_FEATURES else _native.FeaturePlan(json.dumps(features)).dim,
            "hidden": list(hidden),
            "activation": "relu",
            "num_classes": len(labels),
        },
        "normalization": {"mean": "norm.mean", "std": "norm.std"},
        "laq": {"avg_bits": avg_bits, "mode": "test"},
    }


# The paper preset as `FeatureConfig(preset="paper").model_dump(mode="json")` writes it
# (spelled out: pydantic belongs to the training extra, and these builders run without it).
PAPER_FEATURES: dict[str, Any] = {
    "preset": "paper", "sample_rate": 22050, "n_mfcc": 40, "n_chroma": 12, "n_mels": 128, "n_fft": 2048,
    "hop_length": 512, "win_length": None, "f_min": 0.0, "f_max": None, "top_db": 80.0,
    "chroma_spectrum": "magnitude", "chroma_tuning": 0.0, "mel_scale": "power", "stats": ["mean"],
    "delta_stats": [], "delta_width": 9,
}
PAPER_DIM = 180


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
    md = meta if meta is not None else metadata(labels, hidden, avg_bits=avg)
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
    """(samples,) or (samples, channels) float data as a WAV file.

    PCM_16 .wav is written with the standard library; other subtypes (PCM_24, FLOAT, ...)
    and other containers (.flac, .ogg) need soundfile (the dev extra; tests that need it
    skip in the runtime-only environment).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if subtype != "PCM_16" or path.suffix.lower() != ".wav":
        import soundfile as sf

        sf.write(str(path), data, sr, subtype=subtype)
        return path
    import wave

    x = np.asarray(data)
    frames = x if x.ndim == 2 else x[:, None]
    if frames.dtype == np.int16:  # already PCM16
        pcm = frames.astype("<i2")
    else:
        pcm = np.clip(np.rint(frames.astype(np.float64) * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(frames.shape[1])
        w.setsampwidth(2)
        w.setframerate(int(sr))
        w.writeframes(pcm.tobytes())
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
    """A tiny MLP really trained (numpy, a second) to tell three tone bands apart:
    angry = high tone, sad = low tone, neutral = mid tone; quantized at 8/4 bits.

    Features come from the native pipeline the runtime uses (each file decoded and
    resampled to 22050 Hz in Rust), so the model is right for what it will be shown.
    """
    labels = ["angry", "neutral", "sad"]
    bands = {"angry": 1500.0, "neutral": 600.0, "sad": 180.0}
    spec = json.dumps(PAPER_FEATURES)
    xs, ys = [], []
    # every rate a test uses, so the model does not key on how much bandwidth a clip has
    rates = [8000, 11025, 16000, 22050, 32000, 44100, 48000]
    for k, lab in enumerate(labels):
        for j in range(2 * len(rates)):
            f = bands[lab] * (0.9 + 0.015 * j)
            sr = rates[j % len(rates)]
            amp = (0.15, 0.3, 0.6)[j % 3]  # nor on loudness
            wav = write_wav(tmp / "train" / f"{lab}_{j}.wav", tone(f, sr, 0.4, seed=j, amplitude=amp), sr)
            xs.append(_native.features(spec, _native.load_audio(str(wav), 22050, 2048)))
            ys.append(k)
    x = np.stack(xs).astype(np.float32)
    mean, std = x.mean(0), x.std(0) + 1e-3
    ws, bs = _train_mlp((x - mean) / std, np.asarray(ys), hidden=16, classes=3)
    return write_model(path, ws, bs, [8, 4], labels, mean, std, per_channel=True)


def _train_mlp(x: np.ndarray, y: np.ndarray, hidden: int, classes: int, steps: int = 300) -> tuple[list, list]:
    """One-hidden-layer ReLU MLP, full-batch gradient descent with momentum on cross-entropy."""
    rng = np.random.default_rng(0)
    n, d = x.shape
    params = [
        rng.normal(0, 1 / np.sqrt(d), (hidden, d)),
        np.zeros(hidden),
        rng.normal(0, 1 / np.sqrt(hidden), (classes, hidden)),
        np.zeros(classes),
    ]
    velocity = [np.zeros_like(p) for p in params]
    onehot = np.eye(classes)[y]
    for _ in range(steps):
        w1, b1, w2, b2 = params
        h = np.maximum(x @ w1.T + b1, 0.0)
        z = h @ w2.T + b2
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / n
        gh = (g @ w2) * (h > 0)
        grads = [gh.T @ x, gh.sum(0), g.T @ h, g.sum(0)]
        for i in range(4):
            velocity[i] = 0.9 * velocity[i] - 0.05 * grads[i]
            params[i] = params[i] + velocity[i]
    w1, b1, w2, b2 = (np.asarray(p, np.float32) for p in params)
    return [w1, w2], [b1, b2]
