"""A model and its quantized layers → a `.laq` file through the Rust writer.

The metadata is the object `docs/architecture.md` specifies (labels, feature config,
architecture, normalization tensor names, and the LAQ summary). It is kept small: the
search trace goes to `laq.json` next to the file, not into the model.

Sizes are in KB = 1000 bytes (the paper's unit: 169K parameters x 4 bytes = 676 KB).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from serlaq.version import __version__
from serlaq.laq.layers import LayerSet
from serlaq.laq.quantize import QuantizedWeight

KB = 1000


@dataclass(frozen=True)
class SizeReport:
    """Where the bytes of a quantized model go."""

    weights_bytes: int  # packed codes, rows byte-aligned
    bias_bytes: int  # fp32 biases
    quant_param_bytes: int  # f32 scales and zero points
    information_bound_bytes: float  # sum n_l * b_l / 8 + fp32 biases
    fp32_bytes: int  # every weight and bias at 4 bytes
    file_bytes: int | None = None  # the real .laq file, when written

    @property
    def payload_bytes(self) -> int:
        return self.weights_bytes + self.bias_bytes + self.quant_param_bytes

    def as_dict(self) -> dict[str, Any]:
        d = {
            "weights_bytes": self.weights_bytes,
            "bias_bytes": self.bias_bytes,
            "quant_param_bytes": self.quant_param_bytes,
            "payload_bytes": self.payload_bytes,
            "information_bound_bytes": self.information_bound_bytes,
            "fp32_bytes": self.fp32_bytes,
            "file_bytes": self.file_bytes,
        }
        d["payload_kb"] = self.payload_bytes / KB
        d["information_bound_kb"] = self.information_bound_bytes / KB
        d["fp32_kb"] = self.fp32_bytes / KB
        d["file_kb"] = None if self.file_bytes is None else self.file_bytes / KB
        return d


def size_report(
    quantized: Mapping[str, QuantizedWeight], biases: Mapping[str, torch.Tensor | None], file_bytes: int | None = None
) -> SizeReport:
    n_bias = sum(0 if b is None else int(b.numel()) for b in biases.values())
    n_weights = sum(q.codes.size for q in quantized.values())
    return SizeReport(
        weights_bytes=sum(q.packed_bytes() for q in quantized.values()),
        bias_bytes=4 * n_bias,
        quant_param_bytes=sum(q.param_bytes() for q in quantized.values()),
        information_bound_bytes=sum(q.codes.size * q.bits / 8 for q in quantized.values()) + 4 * n_bias,
        fp32_bytes=4 * (n_weights + n_bias),
        file_bytes=file_bytes,
    )


def architecture_of(model: Any) -> dict[str, Any]:
    """The runtime's architecture record of a model (or its `LayerSet`)."""
    return LayerSet.of(model).architecture()


def datamodule_provenance(datamodule: Any, scores: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """The `provenance` record of a model built from `datamodule` (after setup); `scores` are
    the packed model's val/test accuracy and UAR."""
    from serlaq.provenance import build_provenance, corpus_record

    config = datamodule.config
    clips = [clip for split in ("train", "val", "test") for clip in datamodule.split_clips(split)]
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for clip in clips:  # a clip that names its own corpus (multi-corpus runs) is counted there
        name = getattr(clip, "corpus", None) or config.data.corpus_name
        dataset = getattr(clip, "dataset", None) or config.data.dataset
        groups.setdefault((str(name), str(dataset)), []).append((clip.label, clip.speaker))
    corpora = [corpus_record(name, dataset, pairs) for (name, dataset), pairs in sorted(groups.items())]
    listed = (getattr(datamodule, "summary", None) or {}).get("corpora")
    if listed:  # a multi-corpus datamodule names each corpus itself (the local path is left out)
        corpora = [{k: c[k] for k in ("name", "dataset", "clips", "speakers", "labels")} for c in listed]
        if config.data.corpora is None and len(corpora) == 1:  # one corpus is named by its folder
            corpora[0]["name"] = config.data.corpus_name
        groups = {(str(c["name"]), str(c["dataset"])): [] for c in corpora}
    explicit = getattr(datamodule, "_explicit", None) is not None
    protocol = "explicit" if explicit else ("speaker_independent" if config.data.speaker_independent else "stratified")
    return build_provenance(
        corpora=corpora,
        synthetic=all(dataset == "synthetic" for _, dataset in groups),
        protocol=protocol,
        fractions=None if explicit else list(config.data.split),
        seed=config.seed,
        sizes=datamodule.split_sizes,
        scores=scores,
    )


def laq_metadata(model: Any, laq: Mapping[str, Any], provenance: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The metadata object of a `.laq` file for an `SERClassifier` (or its `LayerSet`);
    `provenance` (where the model comes from, `serlaq.provenance`) is stored when given."""
    layers = LayerSet.of(model)
    module = layers.model
    hparams = getattr(module, "hparams", {})
    labels = list(getattr(module, "labels", None) or hparams.get("labels") or [])
    features = hparams.get("feature_config")
    if features is None:
        from serlaq.feature_config import FeatureConfig

        features = FeatureConfig(preset="paper").model_dump(mode="json")
    return {
        "serlaq_version": __version__,
        "labels": labels,
        "features": dict(features),
        "architecture": layers.architecture(),
        "normalization": {"mean": "norm.mean", "std": "norm.std"},
        "laq": dict(laq),
        **({"provenance": dict(provenance)} if provenance is not None else {}),
    }


def write_laq_file(
    path: str | os.PathLike[str],
    model: Any,
    quantized: Mapping[str, QuantizedWeight],
    laq: Mapping[str, Any],
    provenance: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    extra_tensors: Mapping[str, Any] | None = None,
) -> int:
    """Write `model` (a module or its `LayerSet`) with its layers replaced by `quantized`
    (name -> QuantizedWeight); returns the file size. `extra`: further top-level metadata
    keys (`calibration`, `ood`: docs/laq-format.md); `extra_tensors`: further float32
    tensors (name -> array; the `ood.reference` ones).

    The write is atomic (the Rust writer renames a finished temp file over `path`).
    """
    from serlaq import _native

    layers = LayerSet.of(model)
    missing = [n for n in layers.names if n not in quantized]
    if missing:
        raise ValueError(f"no quantized weights for layer(s) {missing}")
    entries = []
    for layer in layers:
        q = quantized[layer.name]
        if q.shape != tuple(layer.weight.shape):
            raise ValueError(f"layer {layer.name}: quantized shape {q.shape} != weight shape {tuple(layer.weight.shape)}")
        bias = None if layer.bias is None else layer.bias.cpu().numpy()
        entries.append(q.layer_dict(layer.name, bias))
    tensors = {
        "norm.mean": _f32(getattr(layers.model, "feature_mean", None), layers.input_dim, 0.0),
        "norm.std": _f32(getattr(layers.model, "feature_std", None), layers.input_dim, 1.0),
        **{k: np.ascontiguousarray(np.asarray(v, dtype=np.float32).reshape(-1)) for k, v in (extra_tensors or {}).items()},
    }
    meta = json.dumps(
        {**laq_metadata(layers, laq, provenance), **dict(extra or {})}, sort_keys=True, separators=(",", ":"), allow_nan=False
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _native.write_laq(str(path), meta, entries, tensors)
    return path.stat().st_size


def _f32(t: torch.Tensor | None, n: int, fill: float) -> np.ndarray:
    if t is None:
        return np.full(n, fill, dtype=np.float32)
    return np.ascontiguousarray(t.detach().cpu().to(torch.float32).numpy().reshape(-1))
