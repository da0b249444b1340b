"""importance → bit search → [QAT] → quantized layers: the one LAQ procedure every entry point runs.

`compress_model` is shared by the Lightning callback (after `serlaq fit`), `compress()`
(a saved checkpoint) and the reports, so they all produce the same plan from the same
model and data. It never looks at the test split except to report test accuracy after
every decision is made.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from serlaq.laq_config import LaqSettings
from serlaq.laq.export import KB, SizeReport, size_report, write_laq_file
from serlaq.laq.fakequant import PlanQuantizer, accuracy, fake_quantize, make_evaluator
from serlaq.laq.importance import LayerImportance
from serlaq.laq.layers import LayerSet
from serlaq.laq.quantize import QuantizedWeight, QuantScheme
from serlaq.laq.search import Plan, SearchResult, budget_search, fixed_bit_scores, paper_search, uniform_plan

Splits = Mapping[str, tuple[Tensor, Tensor]]


def scheme_of(settings: LaqSettings) -> QuantScheme:
    return QuantScheme(per_channel=settings.per_channel, range_search=settings.range_search)


def splits_of(datamodule: Any) -> dict[str, tuple[Tensor, Tensor]]:
    """{"train"|"val"|"test": (X_raw, y)} from an `SERDataModule` (after setup)."""
    return {name: datamodule.split_tensors(name) for name in ("train", "val", "test")}


@dataclass
class LaqOutcome:
    """Everything one LAQ run decided and measured."""

    settings: LaqSettings
    importance: list[LayerImportance]
    search: SearchResult
    plan: Plan
    model: nn.Module  # the float weights the plan quantizes (after QAT when it ran)
    layers: LayerSet  # the quantizable layers of `model`, read once
    quantizer: PlanQuantizer  # `layers` quantized with the settings' scheme (cached per bits)
    quantized: dict[str, QuantizedWeight]
    accuracy: dict[str, float]  # fp32_val, fp32_test, laq_val, laq_test (+ laq_search_* before QAT)
    sizes: SizeReport
    timings: dict[str, float]
    qat: dict[str, Any] | None = None
    fixed: dict[int, dict[str, float]] = field(default_factory=dict)
    # temperature fitted on the deployed model's val logits, with ECE before/after per split
    calibration: dict[str, Any] | None = None
    # p99 of the training clips' out-of-domain score: their hidden distance with a
    # reference, else their RMS z-score
    ood_threshold: float | None = None
    provenance: dict[str, Any] | None = None  # where the model comes from (`.laq` metadata), with a datamodule
    # the last hidden layer's reference (calibration.hidden_reference), with settings.ood_temper > 0
    ood_reference: dict[str, Any] | None = None

    def extra_metadata(self) -> dict[str, Any]:
        """The `.laq` metadata keys beside `laq`: `calibration` and `ood` (docs/laq-format.md)."""
        extra: dict[str, Any] = {}
        if self.calibration is not None:
            extra["calibration"] = {"temperature": round(self.calibration["temperature"], 6), "fitted_on": "val"}
        if self.ood_threshold is not None:
            extra["ood"] = {"threshold": self.ood_threshold, "fitted_on": "train"}
            if self.ood_reference is not None:
                from serlaq.laq.calibration import reference_metadata

                extra["ood"]["reference"] = reference_metadata(
                    self.settings.ood_temper, self.settings.ood_floor, self.layers[-1].out_features,
                    self.ood_reference.get("feature_threshold"),
                )  # fmt: skip
        return extra

    def extra_tensors(self) -> dict[str, Any]:
        """The `.laq` tensors beside the normalization: the hidden reference's, when there is one."""
        if self.ood_reference is None:
            return {}
        return {f"ood.{k}": self.ood_reference[k].reshape(-1) for k in ("mean", "basis", "scale")}

    @property
    def avg_bits(self) -> float:
        return self.search.avg_bits

    def fake_quantized(self) -> nn.Module:
        """The torch model that predicts exactly as the `.laq` file does."""
        return fake_quantize(self.layers, self.plan, quantizer=self.quantizer)

    def laq_info(self) -> dict[str, Any]:
        """The compact `laq` record stored in the `.laq` metadata."""
        s = self.settings
        info = {
            "mode": s.mode,
            "search": s.search,
            "criterion": s.criterion,
            "avg_bits": round(self.avg_bits, 6),
            "plan": dict(self.plan),
            "importance": {i.name: round(i.importance, 6) for i in self.importance},
            "margins": {t.name: round(t.margin, 6) for t in self.search.trace} if s.search == "paper" else None,
            "margin": s.margin if s.search == "paper" else None,
            "budget_bits": s.budget_bits,
            "budget_kb": s.budget_kb,
            "weights": list(s.weights),
            "quantizer": {"per_channel": s.per_channel, "range_search": s.range_search},
            "qat": None if self.qat is None else {"epochs": self.qat["epochs"]},
        }
        # unset entries are left out: every byte of the header counts against a ~30 KB model
        return {k: v for k, v in info.items() if v is not None}

    def summary(self) -> dict[str, Any]:
        """The content of `laq.json`: settings, importance, search trace, sizes, accuracies."""
        return {
            "settings": self.settings.as_dict(),
            "importance": [i.as_dict() for i in self.importance],
            "search": self.search.as_dict(),
            "plan": dict(self.plan),
            "avg_bits": self.avg_bits,
            "accuracy": dict(self.accuracy),
            "sizes": self.sizes.as_dict(),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "qat": self.qat,
            "calibration": self.calibration,
            "ood_threshold": self.ood_threshold,
            "fixed": {str(b): v for b, v in self.fixed.items()},
            "layers": [
                {
                    "name": n,
                    "shape": list(q.shape),
                    "bits": q.bits,
                    "quantizer": q.quantizer,
                    "granularity": q.granularity,
                    "packed_bytes": q.packed_bytes(),
                }
                for n, q in self.quantized.items()
            ],
        }

    def write(self, path: str | Path) -> int:
        """Write the `.laq` file; returns its size and records it in `sizes`."""
        n = write_laq_file(
            path, self.layers, self.quantized, self.laq_info(), self.provenance,
            extra=self.extra_metadata(), extra_tensors=self.extra_tensors(),
        )  # fmt: skip
        self.sizes = SizeReport(**{**self.sizes.__dict__, "file_bytes": n})
        return n


def search_plan(
    model: Any,
    splits: Splits,
    settings: LaqSettings,
    stats: list[LayerImportance] | None = None,
    size_bytes: Any = None,
    quantizer: PlanQuantizer | None = None,
) -> tuple[SearchResult, list[LayerImportance], PlanQuantizer]:
    """Importance and the bit plan of `model` (a module or its `LayerSet`; validation /
    train+val data only). `quantizer` (same layers, the settings' scheme) reuses its cache."""
    layers = LayerSet.of(model)
    if stats is None:
        stats = layers.importance(settings.weights, settings.reference_bits)
    pq = quantizer if quantizer is not None else PlanQuantizer(layers, scheme_of(settings))
    if settings.criterion == "accuracy":
        x, y = splits["val"]
        evaluate, baseline = make_evaluator(layers.model, pq, x, y, "accuracy")
    else:
        # label-free criteria compare with the fp32 model's own predictions: train + val
        x = torch.cat([splits["train"][0], splits["val"][0]])
        evaluate, baseline = make_evaluator(layers.model, pq, x, None, settings.criterion)
    if settings.search == "paper":
        result = paper_search(stats, evaluate, baseline, settings.margin, settings.reference_bits)
    else:
        max_bytes = None if settings.budget_kb is None else settings.budget_kb * KB
        result = budget_search(
            stats,
            evaluate,
            baseline,
            max_avg_bits=settings.budget_bits,
            max_bytes=max_bytes,
            size_bytes=size_bytes,
        )
    return result, stats, pq


def file_size_function(
    model: Any, settings: LaqSettings, stats: list[LayerImportance], provenance: Mapping[str, Any] | None = None
) -> Any:
    """size_bytes(plan): an upper bound of the `.laq` file size, tight to about 200 bytes.

    The data region is computed exactly (every buffer starts on a 64-byte boundary, see
    docs/laq-format.md); the JSON header is measured on a probe file with the same
    metadata (`provenance` with its widest scores), plus 128 bytes for the plan's own
    numbers and the header's padding. `model` is a module or its `LayerSet`.
    """
    import struct
    import tempfile

    layers = LayerSet.of(model)
    pq = PlanQuantizer(layers, scheme_of(settings))
    probe = uniform_plan(layers.names, 1)
    info = {
        "mode": settings.mode,
        "search": settings.search,
        "criterion": settings.criterion,
        "avg_bits": 1.0,
        "plan": probe,
        "importance": {s.name: round(s.importance, 6) for s in stats},
        "budget_bits": settings.budget_bits,
        "budget_kb": settings.budget_kb,
        "weights": list(settings.weights),
        "quantizer": {"per_channel": settings.per_channel, "range_search": settings.range_search},
        "qat": {"epochs": settings.qat_epochs} if settings.qat else None,
    }
    def align(n: int) -> int:
        return (n + 63) // 64 * 64

    # the hidden reference (with ood_temper > 0): its tensors, and its keys in the probe's header
    extra: dict[str, Any] = {}
    extra_tensors: dict[str, Any] = {}
    reference_bytes = 0
    if settings.ood_temper > 0 and len(layers) > 1:
        from serlaq.laq.calibration import REFERENCE_RANK, reference_metadata

        width = layers[-1].in_features
        rank = min(REFERENCE_RANK, width)
        names = {"mean": width, "basis": rank * width, "scale": rank + 1}
        # the features' threshold at a typical length (the probe sizes the header; 128 B of slack)
        ref = reference_metadata(
            settings.ood_temper, settings.ood_floor, layers[-1].out_features, 1.2345 if settings.ood_features else None
        )
        extra["ood"] = {"threshold": 0.0, "fitted_on": "train", "reference": ref}
        extra_tensors = {f"ood.{k}": np.zeros(n, dtype=np.float32) for k, n in names.items()}
        reference_bytes = sum(align(4 * n) for n in names.values())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.laq"
        write_laq_file(
            path, layers, pq.quantized(probe), {k: v for k, v in info.items() if v is not None}, provenance,
            extra=extra, extra_tensors=extra_tensors,
        )  # fmt: skip
        header_len = struct.unpack("<I", path.read_bytes()[12:16])[0]

    fixed = 32 + header_len + 128 + 2 * align(4 * layers.input_dim) + reference_bytes  # header, slack, tensors
    for layer in layers:
        groups = layer.out_features if settings.per_channel else 1
        fixed += 2 * align(4 * groups) + (align(4 * layer.out_features) if layer.bias is not None else 0)

    def size_bytes(plan: Mapping[str, int]) -> float:
        return fixed + sum(align(l.out_features * ((l.in_features * plan[l.name] + 7) // 8)) for l in layers)

    return size_bytes


def packed_scores(model: nn.Module, x: Tensor, y: Tensor, overrides: Any, labels: Any) -> dict[str, float]:
    """Accuracy and UAR of `model` at a plan's weights (`overrides`) on (x, y)."""
    from serlaq import metrics
    from serlaq.laq.fakequant import logits_with

    s = metrics.label_scores(y.numpy(), logits_with(model, x, overrides).argmax(dim=1).numpy(), list(labels))
    return {"accuracy": s.accuracy, "uar": s.uar}


def compress_model(
    model: nn.Module,
    splits: Splits,
    settings: LaqSettings,
    *,
    datamodule: Any = None,
    trainer_settings: Mapping[str, Any] | None = None,
    lr: float | None = None,
    folder: str | Path | None = None,
    seed: int = 0,
    fixed_baselines: bool = False,
) -> LaqOutcome:
    """Run the LAQ procedure `settings` describes on a trained `model`.

    The model's layers are read once (`LayerSet`) and that structure goes through
    importance, search, [QAT] and export; QAT changes the weights, so its result is read
    once more. QAT (when `settings.qat`) needs the `datamodule` for its loaders;
    `trainer_settings` are the run's Trainer settings and `lr` its learning rate (used
    when `qat.lr` is unset).
    """
    model = model.eval()
    timings: dict[str, float] = {}
    x_val, y_val = splits["val"]
    x_test, y_test = splits["test"]
    acc = {"fp32_val": accuracy(model, x_val, y_val), "fp32_test": accuracy(model, x_test, y_test)}

    started = time.perf_counter()
    layers = LayerSet.of(model)
    pq = PlanQuantizer(layers, scheme_of(settings))
    stats = layers.importance(settings.weights, settings.reference_bits)
    size_fn = None
    if settings.budget_kb is not None:
        widest = None  # the provenance to come, with scores of the most digits rounding keeps
        if datamodule is not None:
            from serlaq.laq.export import datamodule_provenance

            widest = datamodule_provenance(datamodule, {n: {"accuracy": 0.123456, "uar": 0.123456} for n in ("val", "test")})
        size_fn = file_size_function(layers, settings, stats, widest)
    result, stats, pq = search_plan(layers, splits, settings, stats, size_fn, quantizer=pq)
    timings["search_s"] = time.perf_counter() - started
    plan = dict(result.plan)

    fixed: dict[int, dict[str, float]] = {}
    if fixed_baselines:
        ev_val, _ = make_evaluator(model, pq, x_val, y_val, "accuracy")
        ev_test, _ = make_evaluator(model, pq, x_test, y_test, "accuracy")
        vals, tests = fixed_bit_scores(pq.names, ev_val), fixed_bit_scores(pq.names, ev_test)
        fixed = {b: {"val": vals[b], "test": tests[b]} for b in vals}

    qat_info = None
    if settings.qat:
        if datamodule is None:
            raise ValueError("QAT needs the datamodule (its train/val loaders)")
        from serlaq.laq.qat import finetune

        searched = pq.overrides(plan)
        acc["laq_search_val"] = accuracy(model, x_val, y_val, searched)
        acc["laq_search_test"] = accuracy(model, x_test, y_test, searched)
        peak = settings.qat_lr if settings.qat_lr is not None else (lr if lr is not None else 1e-3)
        res = finetune(
            model,
            plan,
            pq.scheme,
            datamodule,
            epochs=settings.qat_epochs,
            lr=peak,
            schedule=settings.qat_schedule,
            label_smoothing=settings.qat_label_smoothing,
            patience=settings.qat_patience,
            restore_best=settings.qat_restore_best,
            trainer_settings=trainer_settings,
            folder=folder,
            seed=seed,
        )
        qat_info = {**res.as_dict(), "lr": peak, "schedule": settings.qat_schedule}
        timings["qat_s"] = res.seconds
        layers = LayerSet.of(res.model)
        pq = PlanQuantizer(layers, pq.scheme)

    quantized = pq.quantized(plan)
    deployed = pq.overrides(plan)
    acc["laq_val"] = accuracy(layers.model, x_val, y_val, deployed)
    acc["laq_test"] = accuracy(layers.model, x_test, y_test, deployed)
    calibration, ood, reference = calibrate(
        layers.model, deployed, splits, settings.ood_temper, settings.ood_floor, settings.ood_features
    )
    provenance = None
    if datamodule is not None:
        from serlaq.laq.export import datamodule_provenance

        packed = {name: packed_scores(layers.model, *splits[name], deployed, datamodule.labels) for name in ("val", "test")}
        provenance = datamodule_provenance(datamodule, packed)
    timings["total_s"] = time.perf_counter() - started
    return LaqOutcome(
        settings=settings,
        importance=stats,
        search=result,
        plan=plan,
        model=layers.model,
        layers=layers,
        quantizer=pq,
        quantized=quantized,
        accuracy=acc,
        sizes=size_report(quantized, layers.biases()),
        timings=timings,
        qat=qat_info,
        fixed=fixed,
        calibration=calibration,
        ood_threshold=ood,
        provenance=provenance,
        ood_reference=reference,
    )


def calibrate(
    model: nn.Module,
    deployed: Mapping[str, Tensor],
    splits: Splits,
    ood_temper: float = 0.0,
    ood_floor: float = 0.0,
    ood_features: bool = False,
) -> tuple[dict[str, Any], float | None, dict[str, Any] | None]:
    """The temperature of the deployed (quantized) model fitted on val logits, its ECE
    before/after on val and test, the out-of-domain threshold of the train split (None for
    a model without standardization buffers: the runtime's default applies) and, with
    `ood_temper` > 0 and a hidden layer, the last hidden layer's reference on the train
    split (the threshold is then in its distance; val and test then also get the ECE and
    mean confidence the runtime's answers have, growth and floor included: `*_shipped`).
    With `ood_features` the reference also holds `feature_threshold`, the train split's
    99th-percentile RMS z-score, and the scores are `ood_scores`."""
    from serlaq.laq.calibration import (
        calibration_report, distance_threshold, feature_rms, fit_temperature, hidden_distance, hidden_reference,
        ood_scores, ood_threshold, runtime_temperatures, softmax, stored_floor,
    )  # fmt: skip
    from serlaq.metrics import confidence_scores
    from serlaq.laq.fakequant import logits_with

    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    captured: list[Tensor] = []
    hook = linears[-1].register_forward_hook(lambda _m, args, _out: captured.append(args[0].detach())) if linears else None
    try:
        with torch.no_grad():
            logits: dict[str, Any] = {}
            hidden: dict[str, Tensor] = {}
            for name, (x, _) in splits.items():
                captured.clear()
                logits[name] = logits_with(model, x, deployed).double().numpy()
                if captured:
                    hidden[name] = captured[-1]
    finally:
        if hook is not None:
            hook.remove()
    ys = {name: y.numpy() for name, (_, y) in splits.items()}
    temperature = fit_temperature(logits["val"], ys["val"])
    report = calibration_report(temperature, {n: (logits[n], ys[n]) for n in ("val", "test")})
    mean = getattr(model, "feature_mean", None)
    std = getattr(model, "feature_std", None)
    if mean is None or std is None:
        return report, None, None
    if ood_temper > 0 and len(linears) > 1 and "train" in hidden:
        h_train = hidden["train"].double().numpy()
        reference: dict[str, Any] = hidden_reference(h_train)
        threshold = distance_threshold(hidden_distance(h_train, reference))
        floor = stored_floor(ood_floor, logits["val"].shape[1])
        mean_np, std_np = mean.double().cpu().numpy(), std.double().cpu().numpy()
        feature_threshold = None
        if ood_features:
            feature_threshold = ood_threshold(splits["train"][0].double().numpy(), mean_np, std_np)
            reference["feature_threshold"] = feature_threshold
        for name in ("val", "test"):
            rms = feature_rms(splits[name][0].numpy(), mean_np, std_np)
            d = ood_scores(hidden_distance(hidden[name].double().numpy(), reference), rms, threshold, feature_threshold)
            t = runtime_temperatures(logits[name], d, temperature, threshold, ood_temper, floor)
            shipped = confidence_scores(softmax(logits[name] / t[:, None]), ys[name])
            report[name].update(ece_shipped=shipped["ece"], mean_confidence_shipped=shipped["mean_confidence"])
        return report, threshold, reference
    x_train = splits["train"][0].double().numpy()
    return report, ood_threshold(x_train, mean.double().cpu().numpy(), std.double().cpu().numpy()), None
