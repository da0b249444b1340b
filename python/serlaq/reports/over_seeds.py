"""Several seeds of one config: every number as mean ± sd, and the paired difference to fp32."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from serlaq.laq.importance import TABLE3_WEIGHTS
from serlaq.reports.rows import ROWS

# The score fields of a row: accuracy (as "val"/"test"), macro-F1 and UAR per split.
SCORES = ("val", "test", "val_f1", "test_f1", "val_uar", "test_uar")


def mean_sd(values: Sequence[float]) -> tuple[float, float] | None:
    """(mean, sample sd) of the values that are not None; None when there are none."""
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if a.size == 0:
        return None
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def aggregate(per_seed: Sequence[Mapping[str, Any]], keys: Sequence[str] | None = None) -> dict[str, Any]:
    """Mean ± sd of every row over seeds (or LOSO folds), and the paired test difference to fp32.

    `keys`: the row keys to aggregate (default: the Table-4 `ROWS`); those missing from any
    entry are left out."""
    out: dict[str, Any] = {"seeds": len(per_seed), "rows": {}}
    wanted = [k for k, _ in ROWS] if keys is None else list(keys)
    keys = [k for k in wanted if all(k in r["rows"] for r in per_seed)]
    for key in keys:
        rows = [r["rows"][key] for r in per_seed]
        entry = {}
        for field in ("avg_bits", "size_kb", "file_kb", "bound_kb", *SCORES, "search_s", "qat_s"):
            vals = [row.get(field) for row in rows]
            if any(v is not None for v in vals):
                entry[field] = mean_sd([v for v in vals if v is not None])
        diffs = [row["test"] - r["rows"]["fp32"]["test"] for row, r in zip(rows, per_seed)]
        entry["paired_test_diff"] = mean_sd(diffs)
        out["rows"][key] = entry
    if all("table3" in r for r in per_seed):
        out["table3"] = []
        for i, w in enumerate(TABLE3_WEIGHTS):
            rows = [r["table3"][i] for r in per_seed]
            out["table3"].append(
                {
                    "weights": list(w),
                    "avg_bits": mean_sd([x["avg_bits"] for x in rows]),
                    **{f: mean_sd([x.get(f) for x in rows]) for f in SCORES},
                }
            )
    return out
