"""Prediction results as text for pipelines: table, json, jsonl or csv.

Every format is written as results come (json closes its array at the end), so a long
batch can be piped; a failure is a row/object with an `error` field in the structured
formats (the CLI also prints it as one line on stderr).
"""

from __future__ import annotations

import csv
import json
from typing import IO, Any, Protocol

FORMATS = ("table", "json", "jsonl", "csv")


class Result(Protocol):
    ok: bool

    def to_dict(self) -> dict[str, Any]: ...


class ResultWriter:
    """Writes one result at a time to `out` in `fmt`; call `close()` once at the end."""

    def __init__(self, out: IO[str], fmt: str, labels: list[str]) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        self.out, self.fmt, self.labels = out, fmt, list(labels)
        self._count = 0
        self._csv: Any = None
        if fmt == "csv":
            self._csv = csv.writer(out, lineterminator="\n")
            self._csv.writerow(["path", "label", "confidence", "error", *(f"p_{lab}" for lab in self.labels)])
        elif fmt == "json":
            out.write("[")

    def write(self, result: Result) -> None:
        d = result.to_dict()
        if self.fmt == "table":
            if result.ok:
                self.out.write(table_line(d) + "\n")
        elif self.fmt == "jsonl":
            self.out.write(json.dumps(d) + "\n")
        elif self.fmt == "json":
            self.out.write(("," if self._count else "") + "\n  " + json.dumps(d))
        else:
            probs = d.get("probabilities", {})
            conf = d.get("confidence")
            self._csv.writerow(
                [d.get("path", ""), d.get("label", ""), "" if conf is None else f"{conf:.6f}", d.get("error", "")]
                + [f"{probs[lab]:.6f}" if lab in probs else "" for lab in self.labels]
            )
        self._count += 1
        self.out.flush()

    def close(self) -> None:
        if self.fmt == "json":
            self.out.write("\n]\n" if self._count else "]\n")
            self.out.flush()


def table_line(d: dict[str, Any]) -> str:
    """`path<TAB>label<TAB>confidence`, then `label:probability` for the other top-k labels."""
    cols = [d.get("path") or "-", d["label"], f"{d['confidence']:.4f}"]
    cols += [f"{t['label']}:{t['probability']:.4f}" for t in d.get("top_k", [])[1:]]
    return "\t".join(cols)
