"""What the runtime hands back: layer rows, predictions, per-file failures, segments.

Plain frozen dataclasses with `to_dict()` for JSON; no numpy in their fields, so a
prediction made from a path never needs numpy at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from serlaq.errors import SerlaqError

__all__ = ["FileFailure", "LayerInfo", "Prediction", "Segment", "SegmentSummary", "describe_error"]


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

    @classmethod
    def from_info(cls, d: dict[str, Any]) -> LayerInfo:
        """A layer row of `serlaq info --json` (the core's `ModelInfo`)."""
        rows, cols = (int(v) for v in d["shape"])
        return cls(
            name=str(d["name"]),
            rows=rows,
            cols=cols,
            bits=int(d["bits"]),
            quantizer=str(d["quantizer"]),
            granularity=str(d["granularity"]),
            has_bias=bool(d["has_bias"]),
            packed_bytes=int(d["packed_bytes"]),
            size_bytes=int(d["size_bytes"]),
            fp32_bytes=int(d["fp32_bytes"]),
        )

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
    ood: float | None = None

    ok = True

    @classmethod
    def from_probabilities(
        cls, labels: list[str], proba: Any, path: str | None = None, top_k: int | None = None, ood: float | None = None
    ) -> Prediction:
        """`proba`: one probability per label (a list or a 1-D array), in label order;
        `ood`: the clip's out-of-domain score (`LaqModel.ood_scores`)."""
        probs = {lab: float(p) for lab, p in zip(labels, proba)}
        best = max(range(len(labels)), key=lambda i: (probs[labels[i]], -i))
        ranked = tuple(_ranked(probs)[: max(top_k, 0)]) if top_k else ()
        return cls(labels[best], probs[labels[best]], probs, path, ranked, None if ood is None else float(ood))

    def top(self, k: int) -> list[tuple[str, float]]:
        """The k most probable labels with their probabilities, most probable first."""
        return _ranked(self.probabilities)[: max(k, 0)]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.path is not None:
            out["path"] = self.path
        out["label"] = self.label
        out["confidence"] = self.confidence
        out = _with_scores(out, self.top_k, self.probabilities)
        if self.ood is not None:
            out["ood"] = self.ood
        return out


@dataclass(frozen=True)
class FileFailure:
    """A file of a batch that could not be predicted; the rest of the batch still is."""

    path: str
    error: str

    ok = False

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "error": self.error}


SILENCE = "silence"


@dataclass(frozen=True)
class Segment:
    """One window of a recording's timeline (`LaqModel.segments` / `LaqModel.stream`).

    `start`/`end` in seconds of the source (derived from the integer source-sample
    positions `start_sample`/`end_sample`); `speech` False: the voice-activity gate found
    too few voiced frames, the model was not run, `label` is "silence", `confidence` None
    and `probabilities` empty. `voiced`: the share of the window's frames above the gate.
    `ood`: the window's out-of-domain score (`LaqModel.ood_scores`; about 1 on the training
    data, above `LaqModel.ood_threshold` outside it), None for silence.
    """

    start: float
    end: float
    label: str
    confidence: float | None
    probabilities: dict[str, float]
    speech: bool
    voiced: float = 1.0
    index: int = 0
    start_sample: int = 0
    end_sample: int = 0
    path: str | None = None
    top_k: tuple[tuple[str, float], ...] = field(default=())
    ood: float | None = None

    ok = True

    @property
    def duration(self) -> float:
        return self.end - self.start

    def top(self, k: int) -> list[tuple[str, float]]:
        return _ranked(self.probabilities)[: max(k, 0)]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.path is not None:
            out["path"] = self.path
        out["index"] = self.index
        out["start"] = self.start
        out["end"] = self.end
        out["label"] = self.label
        out["confidence"] = self.confidence
        out["speech"] = self.speech
        out["voiced"] = self.voiced
        out = _with_scores(out, self.top_k, self.probabilities)
        if self.ood is not None:
            out["ood"] = self.ood
        return out


@dataclass(frozen=True)
class SegmentSummary:
    """Per-recording totals of a segment timeline (`serlaq.runtime.segments.summarize`).

    Windows overlap, so time is shared out first: every instant of the timeline belongs to
    the window whose centre is nearest (each window owns the span between the midpoints
    to its neighbours' centres, clipped to its own start/end). `speech_seconds` is the
    time owned by speech windows; `emotions[label]` the share of that time owned by
    windows labelled `label` (the shares sum to 1 when there is speech).
    """

    path: str | None
    duration: float  # seconds from 0 to the end of the last window
    segments: int
    speech_segments: int
    speech_seconds: float
    emotions: dict[str, float]
    emotion_seconds: dict[str, float]

    ok = True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.path is None else {"path": self.path}
        out["summary"] = {
            "duration": self.duration,
            "segments": self.segments,
            "speech_segments": self.speech_segments,
            "speech_seconds": self.speech_seconds,
            "emotions": dict(self.emotions),
            "emotion_seconds": dict(self.emotion_seconds),
        }
        return out


def _with_scores(
    out: dict[str, Any], top_k: tuple[tuple[str, float], ...], probabilities: dict[str, float]
) -> dict[str, Any]:
    """`out` + the `top_k` list (when asked for) + the probabilities: the tail every result's JSON shares."""
    if top_k:
        out["top_k"] = [{"label": lab, "probability": p} for lab, p in top_k]
    out["probabilities"] = dict(probabilities)
    return out


def _ranked(probs: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(probs.items(), key=lambda kv: (-kv[1], kv[0]))


def describe_error(exc: BaseException, path: str) -> str:
    """One line that names the file and says what is wrong, whatever the exception."""
    text = str(exc).strip()
    msg = text.splitlines()[0] if text else type(exc).__name__
    if isinstance(exc, SerlaqError):
        return msg if path in msg else f"{path}: {msg}"
    return f"{path}: {type(exc).__name__}: {msg}"
