"""`LaqModel`: a packed `.laq` file run for inference.

header -> `FeatureConfig` -> `FeatureExtractor` (the training feature code) -> standardize
-> each packed layer through the Rust dequantized GEMM (`LaqFile.forward`), ReLU between
layers -> softmax -> labels.

The weights are never unpacked into float arrays on the Python side and Lightning is never
imported: a `.laq` file plus this module is all a deployment needs. torch is imported only
when audio has to be turned into features (the shared `FeatureExtractor` is a torch module).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from serlaq.errors import AudioError, LaqFormatError, SerlaqError

if TYPE_CHECKING:
    from serlaq.feature_config import FeatureConfig

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["FileFailure", "LaqModel", "LayerInfo", "Prediction"]


# --- result types -------------------------------------------------------------------


@dataclass(frozen=True)
class LayerInfo:
    """One packed layer as stored in the file (forward order)."""

    name: str
    rows: int  # output features
    cols: int  # input features
    bits: int
    quantizer: str  # "affine" | "binary"
    granularity: str  # per tensor or per output channel scales
    has_bias: bool
    packed_bytes: int  # the weight codes at `bits` bits
    size_bytes: int  # packed codes + fp32 scale/zero + fp32 bias
    fp32_bytes: int  # the same layer's weights and bias in fp32

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def params(self) -> int:
        return self.rows * self.cols + (self.rows if self.has_bias else 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": [self.rows, self.cols],
            "bits": self.bits,
            "quantizer": self.quantizer,
            "granularity": self.granularity,
            "has_bias": self.has_bias,
            "params": self.params,
            "packed_bytes": self.packed_bytes,
            "size_bytes": self.size_bytes,
            "fp32_bytes": self.fp32_bytes,
        }


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one input."""

    label: str
    confidence: float
    probabilities: dict[str, float]
    path: str | None = None
    top_k: tuple[tuple[str, float], ...] = field(default=())

    ok = True

    def top(self, k: int) -> list[tuple[str, float]]:
        """The k most probable labels with their probabilities, most probable first."""
        ranked = sorted(self.probabilities.items(), key=lambda kv: (-kv[1], kv[0]))
        return ranked[: max(k, 0)]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.path is not None:
            out["path"] = self.path
        out["label"] = self.label
        out["confidence"] = self.confidence
        if self.top_k:
            out["top_k"] = [{"label": lab, "probability": p} for lab, p in self.top_k]
        out["probabilities"] = dict(self.probabilities)
        return out


@dataclass(frozen=True)
class FileFailure:
    """A file of a batch that could not be predicted; the rest of the batch still is."""

    path: str
    error: str

    ok = False

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "error": self.error}


# --- metadata validation ------------------------------------------------------------


def _field_error(path: str, name: str, what: str) -> LaqFormatError:
    return LaqFormatError(f"{path}: metadata field '{name}' {what}")


def _require(meta: dict[str, Any], key: str, kind: type | tuple[type, ...], path: str, prefix: str = "") -> Any:
    name = f"{prefix}{key}"
    if key not in meta:
        raise _field_error(path, name, "is missing")
    value = meta[key]
    # bool is an int in Python; a JSON true is never a valid count
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise _field_error(path, name, f"must be {_kind_name(kind)}, got a boolean")
    if not isinstance(value, kind):
        raise _field_error(path, name, f"must be {_kind_name(kind)}, got {type(value).__name__}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _parse_feature_config(raw: dict[str, Any], path: str) -> FeatureConfig:
    from pydantic import ValidationError

    from serlaq.feature_config import FeatureConfig

    try:
        return FeatureConfig.from_stored(raw)  # no "preset" (files from before presets) = paper
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err.get("loc", ()))
        name = f"features.{loc}" if loc else "features"
        raise _field_error(path, name, f"is invalid: {err.get('msg', 'bad value')}") from None


# --- the model ----------------------------------------------------------------------


class LaqModel:
    """A compressed SER model loaded from a `.laq` file.

    >>> model = serlaq.load("model.laq")
    >>> model.predict("clip.wav").label
    'angry'
    """

    def __init__(self, native: Any, path: str) -> None:
        self._file = native
        self.path = path
        self._extractor: Any = None
        self._parse_header()

    # -- loading ----------------------------------------------------------------------

    @classmethod
    def load(cls, path: PathLike) -> LaqModel:
        """Open and validate a `.laq` file (format, metadata, shapes). Raises LaqFormatError."""
        from serlaq import _native

        p = os.fspath(path)
        if os.path.isdir(p):
            raise LaqFormatError(f"{p}: is a directory, not a .laq model file")
        if not os.path.exists(p):
            raise LaqFormatError(f"{p}: model file not found")
        try:
            native = _native.LaqFile(p)
        except LaqFormatError as exc:
            msg = str(exc)
            raise LaqFormatError(msg if p in msg else f"{p}: {msg}") from None
        except OSError as exc:
            raise LaqFormatError(f"{p}: cannot read model file ({exc.strerror or exc})") from None
        return cls(native, p)

    def _parse_header(self) -> None:
        path, f = self.path, self._file
        try:
            meta = json.loads(f.metadata_json)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LaqFormatError(f"{path}: metadata is not valid JSON ({exc})") from None
        if not isinstance(meta, dict):
            raise LaqFormatError(f"{path}: metadata must be a JSON object, got {type(meta).__name__}")
        self.metadata: dict[str, Any] = meta

        labels = _require(meta, "labels", list, path)
        if not labels or not all(isinstance(x, str) and x for x in labels):
            raise _field_error(path, "labels", "must be a non-empty list of non-empty strings")
        if len(set(labels)) != len(labels):
            raise _field_error(path, "labels", "has duplicate labels")
        self.labels: list[str] = list(labels)

        self.feature_config = _parse_feature_config(_require(meta, "features", dict, path), path)
        feature_dim = int(self.feature_config.dim)

        arch = _require(meta, "architecture", dict, path)
        kind = _require(arch, "type", str, path, "architecture.")
        if kind != "mlp":
            raise _field_error(path, "architecture.type", f"is {kind!r}; this runtime runs 'mlp' models")
        act = arch.get("activation", "relu")
        if act != "relu":
            raise _field_error(path, "architecture.activation", f"is {act!r}; only 'relu' is supported")
        input_dim = _require(arch, "input_dim", int, path, "architecture.")
        hidden = _require(arch, "hidden", list, path, "architecture.")
        if not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden):
            raise _field_error(path, "architecture.hidden", "must be a list of positive integers")
        num_classes = _require(arch, "num_classes", int, path, "architecture.")
        if input_dim != feature_dim:
            raise _field_error(
                path, "architecture.input_dim", f"is {input_dim} but the feature config gives {feature_dim}-d vectors"
            )
        if num_classes != len(self.labels):
            raise _field_error(
                path, "architecture.num_classes", f"is {num_classes} but there are {len(self.labels)} labels"
            )
        self.architecture: dict[str, Any] = arch

        self.layers: list[LayerInfo] = self._layer_table()
        dims = [input_dim, *hidden, num_classes]
        if len(self.layers) != len(dims) - 1:
            raise LaqFormatError(
                f"{path}: architecture has {len(dims) - 1} layers but the file stores {len(self.layers)}"
            )
        for i, layer in enumerate(self.layers):
            if layer.shape != (dims[i + 1], dims[i]):
                raise LaqFormatError(
                    f"{path}: layer {i} ({layer.name}) has shape {layer.rows}x{layer.cols}, "
                    f"the architecture says {dims[i + 1]}x{dims[i]}"
                )

        norm = _require(meta, "normalization", dict, path)
        stats = []
        for key in ("mean", "std"):
            tname = _require(norm, key, str, path, "normalization.")
            if tname not in f.tensor_names():
                raise _field_error(path, f"normalization.{key}", f"names tensor {tname!r}, which the file does not hold")
            t = np.asarray(f.tensor(tname), dtype=np.float32).reshape(-1)
            if t.shape != (input_dim,):
                raise _field_error(
                    path, f"normalization.{key}", f"tensor {tname!r} has {t.size} values, expected {input_dim}"
                )
            if not np.all(np.isfinite(t)):
                raise _field_error(path, f"normalization.{key}", f"tensor {tname!r} holds non-finite values")
            stats.append(t)
        if np.any(stats[1] <= 0):
            raise _field_error(path, "normalization.std", "must be strictly positive")
        self._mean, self._std = stats[0], stats[1]

    def _layer_table(self) -> list[LayerInfo]:
        out = []
        for i, d in enumerate(self._file.layers()):
            rows, cols = int(d["rows"]), int(d["cols"])
            scale_n = int(np.asarray(self._file.scale(i)).size)
            zero_n = int(np.asarray(self._file.zero(i)).size)
            has_bias = bool(d["has_bias"])
            bias_bytes = 4 * rows if has_bias else 0
            out.append(
                LayerInfo(
                    name=str(d["name"]),
                    rows=rows,
                    cols=cols,
                    bits=int(d["bits"]),
                    quantizer=str(d["quantizer"]),
                    granularity=str(d["granularity"]),
                    has_bias=has_bias,
                    packed_bytes=int(d["packed_bytes"]),
                    size_bytes=int(d["packed_bytes"]) + 4 * (scale_n + zero_n) + bias_bytes,
                    fp32_bytes=4 * rows * cols + bias_bytes,
                )
            )
        return out

    # -- what the file holds -----------------------------------------------------------

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def input_dim(self) -> int:
        return int(self.architecture["input_dim"])

    @property
    def num_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def avg_bits(self) -> float:
        """Eq. 6: the weight-count-weighted mean bit-width over the quantized layers."""
        weights = sum(layer.rows * layer.cols for layer in self.layers)
        return sum(layer.rows * layer.cols * layer.bits for layer in self.layers) / weights

    @property
    def size_bytes(self) -> int:
        """The whole `.laq` file: packed weights, fp32 biases/scales, norm stats, header."""
        return int(self._file.file_size)

    @property
    def payload_bytes(self) -> int:
        """Packed weights + their scales/zeros + fp32 biases (the paper's model size)."""
        return sum(layer.size_bytes for layer in self.layers)

    @property
    def fp32_size_bytes(self) -> int:
        """The same MLP with fp32 weights and biases."""
        return sum(layer.fp32_bytes for layer in self.layers)

    @property
    def compression_ratio(self) -> float:
        return self.fp32_size_bytes / self.size_bytes

    @property
    def format_version(self) -> int:
        return int(self._file.version)

    def summary(self) -> dict[str, Any]:
        """Everything `serlaq info` shows, as plain JSON-ready data."""
        return {
            "path": self.path,
            "format_version": self.format_version,
            "serlaq_version": self.metadata.get("serlaq_version"),
            "labels": list(self.labels),
            "features": self.feature_config.model_dump(mode="json"),
            "architecture": dict(self.architecture),
            "layers": [layer.to_dict() for layer in self.layers],
            "params": self.num_params,
            "avg_bits": self.avg_bits,
            "size_bytes": self.size_bytes,
            "payload_bytes": self.payload_bytes,
            "fp32_size_bytes": self.fp32_size_bytes,
            "compression_ratio": self.compression_ratio,
            "laq": self.metadata.get("laq"),
        }

    def describe(self) -> str:
        """The human-readable `serlaq info` text."""
        cfg = self.feature_config
        feats = " ".join(f"{k}={v}" for k, v in cfg.model_dump(mode="json").items())
        name_w = max(5, *(len(layer.name) for layer in self.layers))
        lines = [
            f"model        {self.path} (.laq format v{self.format_version}, "
            f"written by serlaq {self.metadata.get('serlaq_version', '?')})",
            f"labels       {', '.join(self.labels)} ({self.num_classes} classes)",
            f"features     {cfg.dim}-d: {feats}",
            f"params       {self.num_params:,} ({self.input_dim} -> "
            + " -> ".join(str(layer.rows) for layer in self.layers)
            + ", ReLU between layers)",
            "",
            f"{'layer':<{name_w}}  {'shape':>9}  {'bits':>4}  {'quantizer':<9}  {'granularity':<11}"
            f"  {'size':>10}  {'fp32':>10}",
        ]
        for layer in self.layers:
            lines.append(
                f"{layer.name:<{name_w}}  {f'{layer.rows}x{layer.cols}':>9}  {layer.bits:>4}  {layer.quantizer:<9}"
                f"  {layer.granularity:<11}  {_kb(layer.size_bytes):>10}  {_kb(layer.fp32_bytes):>10}"
            )
        lines += [
            "",
            f"avg bits     {self.avg_bits:.3f} (eq. 6: bits weighted by each layer's share of the weights)",
            f"size         {_kb(self.size_bytes)} .laq file ({_kb(self.payload_bytes)} packed weights, "
            f"scales and fp32 biases; the rest is normalization stats and header)",
            f"fp32 size    {_kb(self.fp32_size_bytes)} (same MLP, fp32 weights and biases): "
            f"{self.compression_ratio:.1f}x larger than the .laq file",
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        shapes = " -> ".join([str(self.input_dim), *(str(layer.rows) for layer in self.layers)])
        return (
            f"LaqModel({self.path!r}, {shapes}, labels={self.labels}, "
            f"avg_bits={self.avg_bits:.2f}, size={self.size_bytes} B)"
        )

    # -- the forward pass --------------------------------------------------------------

    def logits(self, features: Any) -> np.ndarray:
        """Raw 180-d feature vectors (n, d) or (d,) -> logits (n, C) or (C,)."""
        x = np.asarray(features, dtype=np.float32)
        single = x.ndim == 1
        if single:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != self.input_dim:
            raise ValueError(f"features must have shape (n, {self.input_dim}) or ({self.input_dim},), got {x.shape}")
        # a divide, as SERClassifier.forward does, so both see the same float32 inputs
        h = np.ascontiguousarray((x - self._mean) / self._std, dtype=np.float32)
        last = len(self.layers) - 1
        for i in range(len(self.layers)):
            h = self._file.forward(i, h)
            if i != last:
                np.maximum(h, 0.0, out=h)
        return h[0] if single else h

    def predict_proba(self, features: Any) -> np.ndarray:
        """Raw feature vectors (n, d) or (d,) -> class probabilities (n, C) or (C,)."""
        z = self.logits(features).astype(np.float64)
        z -= z.max(axis=-1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=-1, keepdims=True)
        return z

    def predict_features(self, features: Any, top_k: int | None = None) -> Prediction | list[Prediction]:
        """Precomputed raw (unstandardized) feature vectors -> prediction(s).

        (d,) gives one `Prediction`, (n, d) a list of n.
        """
        proba = self.predict_proba(features)
        if proba.ndim == 1:
            return self._prediction(proba, top_k=top_k)
        return [self._prediction(p, top_k=top_k) for p in proba]

    def _prediction(self, proba: np.ndarray, path: str | None = None, top_k: int | None = None) -> Prediction:
        best = int(np.argmax(proba))
        probs = {lab: float(p) for lab, p in zip(self.labels, proba)}
        pred = Prediction(label=self.labels[best], confidence=float(proba[best]), probabilities=probs, path=path)
        if top_k:
            pred = Prediction(
                label=pred.label,
                confidence=pred.confidence,
                probabilities=probs,
                path=path,
                top_k=tuple(pred.top(top_k)),
            )
        return pred

    # -- audio -> features ---------------------------------------------------------------

    def _feature_extractor(self) -> Any:
        if self._extractor is None:
            from serlaq.features import FeatureExtractor

            self._extractor = FeatureExtractor(self.feature_config).eval()
        return self._extractor

    def features_from_waveform(self, wave: np.ndarray) -> np.ndarray:
        """A mono float32 waveform already at `feature_config.sample_rate` -> raw (d,) features."""
        import torch

        with torch.inference_mode():
            out = self._feature_extractor()(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)))
        return out.numpy().astype(np.float32, copy=False).reshape(-1)

    def features_from_file(self, path: PathLike) -> np.ndarray:
        """Decode, downmix and resample (the `serlaq.data.audio` path), then extract features."""
        from serlaq.data.audio import load_audio

        cfg = self.feature_config
        wave = load_audio(Path(path), cfg.sample_rate, min_samples=cfg.min_samples)
        return self.features_from_waveform(wave)

    def _prepare_waveform(self, wave: Any, sample_rate: int | None) -> np.ndarray:
        """An in-memory waveform -> mono float32 at the model's rate, checked like a decoded
        file (`serlaq.data.audio.prepare_waveform`, the function behind `load_audio`)."""
        from serlaq.data.audio import prepare_waveform

        if sample_rate is None:
            raise AudioError("waveform: needs its sample rate, e.g. predict(wave, sample_rate=16000)")
        cfg = self.feature_config
        return prepare_waveform(wave, sample_rate, cfg.sample_rate, source="waveform", min_samples=cfg.min_samples)

    # -- predictions -------------------------------------------------------------------

    def predict(
        self, x: Any, sample_rate: int | None = None, top_k: int | None = None
    ) -> Prediction | list[Prediction]:
        """Predict the emotion of audio.

        x: a path (str / PathLike) -> `Prediction`; a list/tuple of paths -> list of
        `Prediction` (the first unreadable file raises; use `predict_files` to collect
        per-file errors instead); a waveform (numpy array or torch tensor, 1-D or
        (channels, samples)) with its `sample_rate` -> `Prediction`. Any rate and channel
        count is accepted: audio is downmixed and resampled to the model's rate.
        """
        if isinstance(x, (str, os.PathLike)):
            if sample_rate is not None:
                raise AudioError("sample_rate is only for waveforms; a file carries its own rate")
            p = os.fspath(x)
            return self._prediction(self.predict_proba(self.features_from_file(p)), path=p, top_k=top_k)
        if isinstance(x, (list, tuple)) and all(isinstance(p, (str, os.PathLike)) for p in x):
            results = self.predict_files(x, top_k=top_k)
            for r in results:
                if isinstance(r, FileFailure):
                    raise AudioError(r.error)
            return results  # type: ignore[return-value]
        wave = self._prepare_waveform(x, sample_rate)
        return self._prediction(self.predict_proba(self.features_from_waveform(wave)), top_k=top_k)

    def predict_files(
        self,
        paths: Iterable[PathLike],
        workers: int | None = None,
        top_k: int | None = None,
    ) -> list[Prediction | FileFailure]:
        """Batch prediction over many files; a bad file gives a `FileFailure`, not an exception.

        Decoding and features run on `workers` processes (None: all cores when the batch is
        big enough to pay for starting them, else in this process); the packed MLP runs on
        batches of feature vectors. Results are in input order.
        """
        return list(self.iter_files(paths, workers=workers, top_k=top_k))

    def iter_files(
        self,
        paths: Iterable[PathLike],
        workers: int | None = None,
        top_k: int | None = None,
        batch_size: int = 256,
    ) -> Iterator[Prediction | FileFailure]:
        """`predict_files` as a stream: results come out in input order as they are ready."""
        from serlaq.inference import iter_features

        plist = [os.fspath(p) for p in paths]
        pending: list[tuple[int, np.ndarray | None, str | None]] = []

        def flush() -> Iterator[Prediction | FileFailure]:
            good = [(i, v) for i, v, _ in pending if v is not None]
            proba = self.predict_proba(np.stack([v for _, v in good])) if good else None
            rows = {i: r for r, (i, _) in enumerate(good)}
            for i, _, err in pending:
                if err is not None or proba is None:
                    yield FileFailure(plist[i], err or f"{plist[i]}: no features")
                else:
                    yield self._prediction(proba[rows[i]], path=plist[i], top_k=top_k)
            pending.clear()

        for item in iter_features(self, plist, workers=workers):
            pending.append(item)
            if len(pending) >= batch_size:
                yield from flush()
        yield from flush()


def describe_error(exc: BaseException, path: str) -> str:
    """One line that names the file and says what is wrong, whatever the exception."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, SerlaqError):
        return msg if path in msg else f"{path}: {msg}"
    return f"{path}: {type(exc).__name__}: {msg}"


def _kb(n: int) -> str:
    return f"{n / 1000:.1f} KB"
