"""`LaqConfig`: the `laq:` section of a run config (base layer, no torch), and how a mode resolves into concrete settings.

Two modes:

- `paper`: the paper's procedure exactly (method notes): importance-ranked bit search
  (eq. 5) on validation accuracy with T_margin = 1 point, per-tensor min-max affine
  quantizer at 2..8 bits and binary at 1 bit, no fine-tuning. Tables 3 and 4 are
  reproduced with it.
- `qat` (the default): a budget search (the plan that agrees most with the fp32 model on
  train + val within `budget_bits` = 1.1 average bits, range-search quantizer at 2..8 bits;
  on the 3HL model every layer ends at 1 bit except the 448-weight output layer), then
  quantization-aware fine-tuning at that plan (30 epochs, cosine learning rate, no early
  stop). Chosen over the alternatives with `benchmarks/bench_laq.py --select` on inner
  holdouts of 20 seeds of EMODB and EMODB-2s (no test split used); see the README.

Every field left unset (None) takes the mode's value; a field that is set wins, so
`mode: paper` with `per_channel: true` is the paper's search with per-channel scales.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Mode = Literal["paper", "qat"]
Criterion = Literal["accuracy", "agreement", "kl"]
Strategy = Literal["paper", "budget"]

DEFAULT_MODE: Mode = "qat"


class QatConfig(BaseModel):
    """Quantization-aware fine-tuning after the bit plan (beyond the paper)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool | None = Field(None, description="fine-tune at the plan's bits; None = the mode decides")
    epochs: int = Field(30, ge=1, description="maximum fine-tuning epochs (the cosine schedule spans them)")
    lr: float | None = Field(None, gt=0, description="peak learning rate; None = the run's train.lr")
    schedule: Literal["cosine", "constant"] = Field("cosine", description="learning-rate schedule over `epochs`")
    patience: int | None = Field(
        None, ge=1, description="early stop when val_loss has not improved for this many epochs; None = run all epochs"
    )
    restore_best: bool = Field(False, description="end on the lowest-val_loss epoch instead of the last one")
    label_smoothing: float | None = Field(
        None, ge=0.0, lt=1.0,
        description="cross-entropy label smoothing while fine-tuning; None = the run's train recipe (0 reproduces files "
        "compressed before 2026-12-04)",
    )  # fmt: skip


class LaqConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Mode = Field(DEFAULT_MODE, description="'paper' (the paper exactly) or 'qat' (budget search + fine-tuning)")
    margin: float | None = Field(
        None, ge=0.0, description="T_margin of eq. 5 (fraction; criterion units). paper: 0.01 = one point"
    )
    weights: tuple[float, float, float] = Field((0.11, 0.01, 0.88), description="(w_P, w_E, w_V) of eq. 4")
    reference_bits: int = Field(8, ge=1, le=8, description="B: histogram bins 2^B, N_E = H/B, start of the search")
    per_channel: bool = Field(False, description="one scale/zero per output row (costs 8 bytes per row)")
    range_search: bool | None = Field(None, description="clip range that minimizes reconstruction error (b >= 2)")
    criterion: Criterion | None = Field(None, description="accuracy (val) | agreement | kl (with fp32, on train+val)")
    search: Strategy | None = Field(None, description="paper (eq. 5) | budget; None = from mode / budget")
    budget_bits: float | None = Field(None, ge=1.0, le=8.0, description="budget search: max average bits")
    budget_kb: float | None = Field(None, gt=0.0, description="budget search: max .laq file size (KB = 1000 bytes)")
    qat: QatConfig = Field(default_factory=QatConfig)
    out: str | None = Field(None, description=".laq file name in the run folder (default model.laq)")
    ood_temper: float | None = Field(
        None, ge=0.0, le=16.0,
        description="store the last hidden layer's training distribution; the runtime grows the temperature beyond its "
        "99th percentile as (distance / threshold)^k. 0 = none (the RMS z-score of the features). Default 12, paper mode 0",
    )  # fmt: skip
    ood_floor: float | None = Field(
        None, ge=0.0, le=16.0,
        description="m: the temperature's growth stops where the top label's probability reaches m / classes "
        "(it never goes below what the calibration gives). 0 = no floor. Default 2 (twice chance), paper mode 0",
    )  # fmt: skip

    ood_features: bool | None = Field(
        None,
        description="the temperature also grows with the features' own distance (RMS z-score over its 99th "
        "percentile) when that is the larger. Default true, paper mode false",
    )

    @field_validator("weights")
    @classmethod
    def _weights(cls, w: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(not math.isfinite(x) or x < 0 for x in w):
            raise ValueError(f"every weight must be a finite number >= 0, got {list(w)}")
        return w

    @field_validator("qat", mode="before")
    @classmethod
    def _qat_shorthand(cls, value: Any) -> Any:
        # `qat: true` / `qat: false` are shorthands for `qat: {enabled: ...}`
        if isinstance(value, bool):
            return {"enabled": value}
        return value

    @field_validator("out")
    @classmethod
    def _out(cls, out: str | None) -> str | None:
        if out is None:
            return out
        if not out or "/" in out or "\\" in out or out in (".", ".."):
            raise ValueError(f"must be a plain file name inside the run folder, got {out!r}")
        stem, dot, suffix = out.rpartition(".")
        # the compression writes the file and its report <stem>.json (laq.json for model.laq)
        if not dot or suffix != "laq" or not stem or stem.startswith("."):
            raise ValueError(f"must be a .laq file name such as small.laq, got {out!r}")
        if f"{stem}.json" in RESERVED_RUN_FILES:
            raise ValueError(f"{out!r} would write its report over the run's {stem}.json; choose another name")
        return out

    @model_validator(mode="after")
    def _consistent(self) -> LaqConfig:
        if self.search == "paper" and (self.budget_bits is not None or self.budget_kb is not None):
            raise ValueError("budget_bits/budget_kb apply to search: budget, not search: paper")
        return self

    def resolved(self) -> LaqSettings:
        """The concrete settings this config means (mode defaults filled in)."""
        paper = self.mode == "paper"
        budget_given = self.budget_bits is not None or self.budget_kb is not None
        search: Strategy = self.search or ("budget" if budget_given or not paper else "paper")
        budget_bits = self.budget_bits
        if search == "budget" and not budget_given:
            budget_bits = DEFAULT_BUDGET_BITS
        qat_enabled = self.qat.enabled if self.qat.enabled is not None else not paper
        return LaqSettings(
            mode=self.mode,
            search=search,
            margin=self.margin if self.margin is not None else 0.01,
            weights=tuple(float(x) for x in self.weights),  # type: ignore[arg-type]
            reference_bits=self.reference_bits,
            per_channel=self.per_channel,
            range_search=self.range_search if self.range_search is not None else not paper,
            criterion=self.criterion or ("accuracy" if paper else "agreement"),
            budget_bits=budget_bits,
            budget_kb=self.budget_kb,
            qat=qat_enabled,
            qat_epochs=self.qat.epochs,
            qat_lr=self.qat.lr,
            qat_schedule=self.qat.schedule,
            qat_patience=self.qat.patience,
            qat_restore_best=self.qat.restore_best,
            qat_label_smoothing=self.qat.label_smoothing,
            out=self.out or "model.laq",
            ood_temper=self.ood_temper if self.ood_temper is not None else (0.0 if paper else DEFAULT_OOD_TEMPER),
            ood_floor=self.ood_floor if self.ood_floor is not None else (0.0 if paper else DEFAULT_OOD_FLOOR),
            ood_features=self.ood_features if self.ood_features is not None else not paper,
        )


#: The run folder's own JSON files (serlaq.training.run_folder), which a `.laq` report
#: (`<stem>.json`) must not replace; `laq.json` is the report of the default `model.laq`.
RESERVED_RUN_FILES = frozenset({"metrics.json", "laq.json"})

#: The default budget of the budget search: every layer at 1 bit plus 10 % spare bits for
#: the layers where they buy the most agreement with fp32 (on the 3HL model that is the
#: output layer only; the next-cheapest raise, 64x512 at 2 bits, costs 0.16).
DEFAULT_BUDGET_BITS = 1.1

#: The exponent k of the temperature's growth with the hidden distance (`ood_temper`):
#: chosen on the cross-corpus inner folds (docs/adapt.md, "Confidence far from home").
DEFAULT_OOD_TEMPER = 12.0
#: m of the softening's floor, the top label keeping m / classes (`ood_floor`): chosen with
#: the exponent on the same inner folds.
DEFAULT_OOD_FLOOR = 2.0


@dataclass(frozen=True)
class LaqSettings:
    """Resolved LAQ settings: what a search, a `.laq` header and a report record."""

    mode: str
    search: str
    margin: float
    weights: tuple[float, float, float]
    reference_bits: int
    per_channel: bool
    range_search: bool
    criterion: str
    budget_bits: float | None
    budget_kb: float | None
    qat: bool
    qat_epochs: int
    qat_lr: float | None
    qat_schedule: str
    qat_patience: int | None
    qat_restore_best: bool
    qat_label_smoothing: float | None
    out: str
    ood_temper: float = 0.0
    ood_floor: float = 0.0
    ood_features: bool = False

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["weights"] = list(self.weights)
        return d
