"""The `laq:` section of a run config (owned by the LAQ modules)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LaqConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    margin: float = Field(0.01, ge=0.0, description="T_margin: allowed validation-accuracy drop (fraction)")
    weights: tuple[float, float, float] = (0.11, 0.01, 0.88)
    reference_bits: int = Field(8, ge=1, le=8)
    per_channel: bool = False
    out: str | None = None
