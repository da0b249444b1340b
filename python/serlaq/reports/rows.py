"""The rows of Table 4 (and Table 3) for one trained model, on its own splits."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from serlaq import metrics
from serlaq.laq.export import KB, size_report, write_laq_file
from serlaq.laq.fakequant import PlanQuantizer, logits_with
from serlaq.laq.importance import TABLE3_WEIGHTS, average_bits
from serlaq.laq.layers import LayerSet
from serlaq.laq.pipeline import compress_model, scheme_of, search_plan, splits_of
from serlaq.laq.quantize import QuantScheme
from serlaq.laq.search import uniform_plan
from serlaq.laq_config import LaqConfig, LaqSettings

FIXED_BITS = (8, 7, 6, 5, 4, 3, 2, 1)
PAPER = LaqConfig(mode="paper").resolved()

# Table 4 rows, in print order: (key, label)
ROWS: tuple[tuple[str, str], ...] = (
    ("fp32", "fp32 baseline"),
    *((f"fixed{b}", f"{b}-bit fixed") for b in FIXED_BITS),
    ("laq", "LAQ (paper)"),
    ("fixed1_qat", "1-bit fixed + QAT"),
    ("fixed1_pc_qat", "1-bit fixed, per-channel + QAT"),
    ("fixed2_qat", "2-bit fixed (range search) + QAT"),
    ("laq_qat", "LAQ (paper) + QAT"),
    ("default", "default compress (budget + QAT)"),
    ("fp32_extra", "fp32 + the same extra epochs"),
)
QAT_ROWS = ("fixed1_qat", "fixed1_pc_qat", "fixed2_qat", "laq_qat", "default", "fp32_extra")


def predictions(model: nn.Module, x: torch.Tensor, overrides: Mapping[str, torch.Tensor] | None = None) -> Any:
    return logits_with(model, x, overrides).argmax(dim=1).numpy()


def split_scores(
    model: nn.Module, splits: Mapping[str, Any], labels: list[str], overrides: Mapping[str, torch.Tensor] | None = None
) -> dict[str, float]:
    """val/test accuracy (as "val"/"test"), macro-F1 and UAR of `model` (with `overrides`)."""
    out: dict[str, float] = {}
    for split in ("val", "test"):
        x, y = splits[split]
        s = metrics.label_scores(y.numpy(), predictions(model, x, overrides), labels)
        out.update({split: s.accuracy, f"{split}_f1": s.macro_f1, f"{split}_uar": s.uar})
    return out


def fp32_row(model: nn.Module, splits: Mapping[str, Any], labels: list[str], n_params: int, **extra: Any) -> dict[str, Any]:
    return {
        "avg_bits": 32.0,
        "size_kb": 4 * n_params / KB,
        "file_kb": None,
        "bound_kb": 4 * n_params / KB,
        **split_scores(model, splits, labels),
        **extra,
    }


def quantized_row(
    model: Any,
    plan: Mapping[str, int],
    scheme: QuantScheme,
    splits: Mapping[str, Any],
    tmp: Path,
    labels: list[str] | None = None,
    quantizer: PlanQuantizer | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """avg bits, sizes (payload and the real `.laq` file), val/test scores of `model` (a
    module or its `LayerSet`) at `plan`; `quantizer` (same layers and scheme) reuses its cache."""
    layers = LayerSet.of(model)
    pq = quantizer if quantizer is not None else PlanQuantizer(layers, scheme)
    quantized = pq.quantized(plan)
    file_bytes = write_laq_file(tmp / "row.laq", layers, quantized, {"plan": dict(plan)})
    sizes = size_report(quantized, layers.biases(), file_bytes)
    labels = labels if labels is not None else _labels(layers.model, splits)
    return {
        "avg_bits": average_bits(layers.n_weights(), plan),
        "size_kb": sizes.payload_bytes / KB,
        "file_kb": file_bytes / KB,
        "bound_kb": sizes.information_bound_bytes / KB,
        **split_scores(layers.model, splits, labels, pq.overrides(plan)),
        "plan": dict(plan),
        **extra,
    }


def evaluate_model(
    model: nn.Module,
    datamodule: Any,
    *,
    trainer_settings: Mapping[str, Any] | None = None,
    lr: float = 1e-3,
    seed: int = 0,
    qat_rows: bool = True,
    table3: bool = True,
    default: LaqSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every Table-4 row (and Table 3) for one trained model on its own splits."""
    say = progress or (lambda _msg: None)
    model = model.eval()
    splits = splits_of(datamodule)
    layers = LayerSet.of(model)
    names = layers.names
    n_params = sum(p.numel() for p in model.net.parameters()) if hasattr(model, "net") else sum(layers.n_weights().values())
    labels = _labels(model, splits)
    rows: dict[str, dict[str, Any]] = {"fp32": fp32_row(model, splits, labels, n_params)}
    paper_scheme = scheme_of(PAPER)
    paper_pq = PlanQuantizer(layers, paper_scheme)  # every paper-scheme row shares its quantizations
    extra: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for b in FIXED_BITS:
            rows[f"fixed{b}"] = quantized_row(layers, uniform_plan(names, b), paper_scheme, splits, tmp, labels, paper_pq)
        say("paper LAQ search")
        outcome = compress_model(model, splits, PAPER)
        rows["laq"] = quantized_row(
            layers,
            outcome.plan,
            paper_scheme,
            splits,
            tmp,
            labels,
            paper_pq,
            search_s=outcome.timings["search_s"],
            trace=outcome.search.as_dict()["trace"],
        )
        extra["importance"] = [i.as_dict() for i in outcome.importance]
        extra["confusion_laq"] = _confusion(model, splits, labels, paper_pq.overrides(outcome.plan))
        if table3:
            extra["table3"] = []
            for w in TABLE3_WEIGHTS:
                settings = LaqConfig(mode="paper", weights=w).resolved()
                result, _, _ = search_plan(layers, splits, settings, quantizer=paper_pq)
                scores = split_scores(model, splits, labels, paper_pq.overrides(result.plan))
                extra["table3"].append(
                    {"weights": list(w), "avg_bits": result.avg_bits, "plan": dict(result.plan), **scores}
                )
        if qat_rows:
            from serlaq.laq.qat import finetune

            cfg = default or LaqConfig().resolved()
            qat_kw = {
                "epochs": cfg.qat_epochs,
                "lr": cfg.qat_lr if cfg.qat_lr is not None else lr,
                "schedule": cfg.qat_schedule,
                "patience": cfg.qat_patience,
                "restore_best": cfg.qat_restore_best,
                "trainer_settings": trainer_settings,
                "seed": seed,
            }
            binary_pt, binary_pc = QuantScheme(), QuantScheme(per_channel=True)
            searched = QuantScheme(range_search=True)
            for key, plan, scheme in (
                ("fixed1_qat", uniform_plan(names, 1), binary_pt),
                ("fixed1_pc_qat", uniform_plan(names, 1), binary_pc),
                ("fixed2_qat", uniform_plan(names, 2), searched),
                ("laq_qat", outcome.plan, paper_scheme),
            ):
                say(f"QAT: {key}")
                res = finetune(model, plan, scheme, datamodule, **qat_kw)
                rows[key] = quantized_row(res.model, plan, scheme, splits, tmp, labels, qat_s=res.seconds, qat_epochs=res.epochs)
            say("default compress")
            started = time.perf_counter()
            d = compress_model(
                model, splits, cfg, datamodule=datamodule, trainer_settings=trainer_settings, lr=lr, seed=seed
            )
            rows["default"] = quantized_row(
                d.layers,
                d.plan,
                scheme_of(cfg),
                splits,
                tmp,
                labels,
                d.quantizer,
                search_s=d.timings["search_s"],
                qat_s=d.timings.get("qat_s"),
                total_s=time.perf_counter() - started,
            )
            extra["confusion_default"] = _confusion(d.model, splits, labels, d.quantizer.overrides(d.plan))
            extra["default_settings"] = cfg.as_dict()
            say("fp32 + extra epochs")
            res = finetune(model, None, QuantScheme(), datamodule, **qat_kw)
            rows["fp32_extra"] = fp32_row(res.model, splits, labels, n_params, qat_s=res.seconds, qat_epochs=res.epochs)
    return {
        "labels": labels,
        "layers": [{"name": layer.name, "shape": list(layer.weight.shape)} for layer in layers],
        "parameters": n_params,
        "split_sizes": {k: int(v[1].numel()) for k, v in splits.items()},
        "rows": rows,
        **extra,
    }


def _labels(model: nn.Module, splits: Mapping[str, Any]) -> list[str]:
    return list(getattr(model, "labels", [str(i) for i in range(int(splits["test"][1].max()) + 1)]))


def _confusion(
    model: nn.Module, splits: Mapping[str, Any], labels: list[str], overrides: Mapping[str, torch.Tensor]
) -> list[list[int]]:
    x, y = splits["test"]
    return metrics.confusion_matrix(y.numpy(), predictions(model, x, overrides), len(labels)).tolist()
