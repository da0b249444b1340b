"""Segment timelines: long recordings and live audio cut into overlapping windows.

The work happens in Rust (`serlaq_core::segments`, through `_native.Segmenter` and
`_native.segment_file`): every STFT frame is computed once, each hop pools the window's
frames and runs the model; a voice-activity gate marks windows without speech as
"silence" (no model call). Files are read packet by packet, never whole.

- `SegmentStream` (`LaqModel.stream`): `push(samples)` any chunk size, returns the
  segments completed so far; `flush()` ends the stream. Offline segmentation of a
  waveform is this loop over the whole array, so both give identical segments.
- `segment_file` / `iter_segments` (`LaqModel.segment_file` / `LaqModel.segments`).
- `summarize`: speech time, number of segments, share of speech time per emotion
  (`serlaq_core::runtime`, as `serlaq-rt` computes it).
- `run_segments_cli`: `serlaq predict --segments`, written by the core's segment writer.
- `timeline_png`: emotion over time with confidence, silence shaded (matplotlib).

Window and hop become whole STFT hops of the model's spec (2.0 s / 1.0 s at 22050 Hz,
hop 512: 86 / 43 frames = 1.997 / 0.999 s); `SegmentStream.window_seconds` tells.
VAD: a frame is voiced when its level (mean square of the Hann-windowed frame, dBFS) is
at least `vad_db` (default -50), a window is speech when at least `min_speech` (0.25) of
its frames are voiced.
Running normalisation (`running_norm=True`, off by default): each speech window is
standardized with the model's statistics (weighted as `running_prior` windows, default 20)
mixed with those of the stream's speech windows so far (forgetting after
`running_horizon`, default 600 windows) and, with `running_balance` (default on), its
probabilities are divided by the stream's label mix so far (pooled with `running_prior`
windows of a uniform mix): a recording adapts the model to its own room as it plays, the
streaming form of `LaqModel.adapt` (statistics, then label balance; docs/adapt.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Union

from serlaq import _native
from serlaq.errors import AudioError
from serlaq.runtime.results import SILENCE, Segment, SegmentSummary, _ranked


class LoadedModel(Protocol):
    """What segmenting needs of a model (`LaqModel` has it): its native handle, labels
    and rate. Named here so this module need not import the model module above it."""

    _native: Any
    labels: list[str]

    @property
    def sample_rate(self) -> int: ...


PathLike = Union[str, "os.PathLike[str]"]

DEFAULT_WINDOW: float = float(_native.SEGMENT_WINDOW)
DEFAULT_HOP: float = float(_native.SEGMENT_HOP)
DEFAULT_VAD_DB: float = float(_native.VAD_DB)
DEFAULT_MIN_SPEECH: float = float(_native.VAD_MIN_SPEECH)
DEFAULT_RUNNING_PRIOR: float = float(_native.RUNNING_PRIOR)
DEFAULT_RUNNING_HORIZON: float = float(_native.RUNNING_HORIZON)

__all__ = [
    "DEFAULT_HOP",
    "DEFAULT_MIN_SPEECH",
    "DEFAULT_RUNNING_HORIZON",
    "DEFAULT_RUNNING_PRIOR",
    "DEFAULT_VAD_DB",
    "DEFAULT_WINDOW",
    "SegmentStream",
    "SegmentTimeline",
    "iter_segments",
    "segment_file",
    "summarize",
    "timeline_png",
]


@dataclass(frozen=True)
class SegmentOptions:
    window: float = DEFAULT_WINDOW
    hop: float = DEFAULT_HOP
    vad: bool = True
    vad_db: float = DEFAULT_VAD_DB
    min_speech: float = DEFAULT_MIN_SPEECH
    top_k: int | None = None
    running_norm: bool = False
    running_prior: float = DEFAULT_RUNNING_PRIOR
    running_horizon: float = DEFAULT_RUNNING_HORIZON
    running_balance: bool = True

    def native(self) -> dict[str, Any]:
        return {
            "window": float(self.window),
            "hop": float(self.hop),
            "vad_db": float(self.vad_db) if self.vad else None,
            "min_speech": float(self.min_speech),
            "running_prior": float(self.running_prior) if self.running_norm else None,
            "running_horizon": float(self.running_horizon),
            "running_balance": bool(self.running_balance),
        }


def _segment(labels: list[str], t: tuple, opts: SegmentOptions, path: str | None) -> Segment:
    index, start, end, start_s, end_s, voiced, proba, ood = t
    if proba is None:
        return Segment(start_s, end_s, SILENCE, None, {}, False, voiced, index, start, end, path)
    probs = {lab: float(p) for lab, p in zip(labels, proba)}
    best = max(range(len(labels)), key=lambda i: (proba[i], -i))  # the first on ties, as in Rust
    ranked = tuple(_ranked(probs)[: opts.top_k]) if opts.top_k else ()
    return Segment(start_s, end_s, labels[best], float(proba[best]), probs, True, voiced, index, start, end, path, ranked, ood)


class SegmentStream:
    """A live stream cut into windows: `push(samples)` (any chunk size) returns the
    segments completed so far, `flush()` the rest. Samples: 1-D mono, float (any float
    dtype, expected in [-1, 1]) or PCM integers (scaled as `predict` scales them), numpy
    arrays, torch tensors or sequences. Every chunk must have the stream's dtype and, when
    given, its `sample_rate`; NaN/inf samples reject the chunk (ValueError, the stream
    stays usable)."""

    def __init__(self, laq: LoadedModel, sample_rate: int, options: SegmentOptions, source: str = "stream") -> None:
        if isinstance(sample_rate, (bool, float)) or not hasattr(sample_rate, "__index__") or not 0 < int(sample_rate) < 2**32:
            raise ValueError(f"{source}: sample_rate must be a positive integer in Hz, got {sample_rate!r}")
        self.labels = list(laq.labels)
        self.options = options
        self.source = source
        self.sample_rate = int(sample_rate)
        self._native = _native.Segmenter(laq._native, self.sample_rate, source=source, **options.native())
        self._dtype: Any = None
        self._closed = False

    @property
    def window_seconds(self) -> float:
        """The window the frame grid gives (whole STFT hops of the model)."""
        return float(self._native.window_seconds)

    @property
    def hop_seconds(self) -> float:
        return float(self._native.hop_seconds)

    @property
    def samples(self) -> int:
        """Source samples accepted so far."""
        return int(self._native.samples)

    def _mono(self, samples: Any) -> Any:
        import numpy as np

        if hasattr(samples, "detach") and hasattr(samples, "cpu"):  # torch, without importing it
            samples = samples.detach().cpu().numpy()
        arr = np.asarray(samples)
        if arr.dtype.kind not in "fiu":
            raise ValueError(f"{self.source}: samples must be float or PCM integers, got dtype {arr.dtype}")
        if self._dtype is None:
            self._dtype = arr.dtype
        elif arr.dtype != self._dtype:
            raise ValueError(
                f"{self.source}: chunk dtype {arr.dtype} differs from the stream's {self._dtype} "
                "(one stream, one sample format)"
            )
        if arr.ndim == 2 and 1 in arr.shape:
            arr = arr.reshape(-1)
        if arr.ndim != 1:
            raise ValueError(f"{self.source}: samples must be 1-D mono, got shape {arr.shape} (downmix first)")
        if arr.dtype.kind in "iu":
            full = float(2 ** (8 * arr.dtype.itemsize - 1))
            arr = (arr.astype(np.float64) - (full if arr.dtype.kind == "u" else 0.0)) / full
        return np.ascontiguousarray(arr, dtype=np.float32)

    def push(self, samples: Any, sample_rate: int | None = None) -> list[Segment]:
        """Appends samples; returns the segments they complete (often none)."""
        if self._closed:
            raise ValueError(f"{self.source}: push after flush (start a new stream)")
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            raise ValueError(
                f"{self.source}: sample rate changed from {self.sample_rate} Hz to {int(sample_rate)} Hz "
                "(start a new stream)"
            )
        out = self._native.push(self._mono(samples))
        return [_segment(self.labels, t, self.options, None) for t in out]

    def flush(self) -> list[Segment]:
        """Ends the stream: the remaining windows (or the one window of a short stream;
        `AudioError` when it is shorter than one analysis window)."""
        if self._closed:
            raise ValueError(f"{self.source}: flush after flush (start a new stream)")
        self._closed = True
        return [_segment(self.labels, t, self.options, None) for t in self._native.finish()]


@dataclass(frozen=True)
class SegmentTimeline:
    """A file's segments, and the error that stopped it early (None: read to its end)."""

    path: str
    segments: list[Segment]
    error: str | None

    def summary(self) -> SegmentSummary:
        return summarize(self.segments, path=self.path)


def segment_file(laq: LoadedModel, path: PathLike, options: SegmentOptions) -> SegmentTimeline:
    """Segments a file read packet by packet; a damaged file gives the segments before the
    damage and one error line naming the file and the time."""
    p = os.fspath(path)
    tuples, error = _native.segment_file(laq._native, p, **options.native())
    return SegmentTimeline(p, [_segment(laq.labels, t, options, p) for t in tuples], error)


def iter_segments(laq: LoadedModel, x: Any, sample_rate: int | None, options: SegmentOptions) -> Iterator[Segment]:
    """A path (its segments, then `AudioError` if the file broke part-way) or a waveform
    (1-D or (channels, samples), downmixed by the mean) with its `sample_rate`."""
    if isinstance(x, (str, os.PathLike)):
        if sample_rate is not None:
            raise AudioError("sample_rate is only for waveforms; a file carries its own rate")
        timeline = segment_file(laq, x, options)
        yield from timeline.segments
        if timeline.error is not None:
            raise AudioError(timeline.error)
        return
    if sample_rate is None:
        raise AudioError("waveform: needs its sample rate, e.g. segments(wave, sample_rate=16000)")
    from serlaq.waveform import checked_rate, planar_float32

    planar = planar_float32(x, source="waveform")
    mono = planar[0] if planar.shape[0] == 1 else planar.mean(axis=0, dtype="float32")
    stream = SegmentStream(laq, checked_rate(sample_rate, "waveform"), options, source="waveform")
    try:  # NaN in an array: the array's problem, as predict reports it
        yield from stream.push(mono)
        yield from stream.flush()
    except ValueError as exc:
        raise AudioError(str(exc)) from None


def summarize(segments: Sequence[Segment], path: str | None = None) -> SegmentSummary:
    """Speech time, number of segments and share of speech time per emotion (see
    `SegmentSummary` for how overlapping windows share the time)."""
    windows = [(s.index, s.start, s.end, s.label if s.speech else None) for s in segments]
    duration, n, speech, speech_seconds, emotions, emotion_seconds = _native.summarize(windows)
    return SegmentSummary(path, duration, n, speech, speech_seconds, dict(emotions), dict(emotion_seconds))


def timeline_png(timelines: Sequence[SegmentTimeline], labels: Sequence[str]) -> bytes:
    """Emotion over time, one panel per file: each speech window is a bar in its label's
    lane over the time it owns (see `SegmentSummary`), as tall as its confidence; silence
    is shaded grey. Needs matplotlib (the `train` extra)."""
    from serlaq.plots import figure_png, pyplot

    plt = pyplot()
    labels = list(labels)
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(len(timelines), 1, figsize=(11, 0.5 + (0.45 * len(labels) + 0.9) * len(timelines)),
                             squeeze=False)
    for ax, tl in zip(axes[:, 0], timelines):
        segs = sorted(tl.segments, key=lambda s: (s.start, s.index))
        centres = [(s.start + s.end) / 2 for s in segs]
        for i, s in enumerate(segs):
            lo = s.start if i == 0 else max(s.start, (centres[i - 1] + centres[i]) / 2)
            hi = s.end if i == len(segs) - 1 else min(s.end, (centres[i] + centres[i + 1]) / 2)
            if not s.speech:
                ax.axvspan(lo, hi, color="0.85", lw=0)
                continue
            k = labels.index(s.label)
            h = 0.8 * float(s.confidence or 0.0)
            ax.add_patch(plt.Rectangle((lo, k - h / 2), hi - lo, h, color=colours(k % 10), lw=0))
        ax.set_yticks(range(len(labels)), labels)
        ax.set_ylim(-0.6, len(labels) - 0.4)
        ax.set_xlim(0, max((s.end for s in segs), default=1.0))
        ax.set_xlabel("time (s)")
        summary = summarize(segs)
        shares = ", ".join(f"{k} {100 * v:.0f}%" for k, v in summary.emotions.items()) or "no speech"
        err = "  [stopped: damaged file]" if tl.error else ""
        ax.set_title(f"{os.path.basename(tl.path)}: {shares} of {summary.speech_seconds:.1f} s speech "
                     f"(bar height = confidence, grey = silence){err}", fontsize=9, loc="left")
    return figure_png(fig)


def iter_timelines(laq: LoadedModel, paths: Iterable[PathLike], options: SegmentOptions) -> Iterator[SegmentTimeline]:
    for p in paths:
        yield segment_file(laq, p, options)


MAX_PANELS = 8  # files drawn in one --plot figure; more get one PNG each


def run_segments_cli(
    laq: LoadedModel,
    inputs: Sequence[PathLike],
    fmt: str,
    *,
    top_k: int | None,
    window: float | None,
    hop: float | None,
    vad: bool,
    vad_db: float | None,
    min_speech: float | None,
    plot: PathLike | None,
    echo_error: Any,
    running_norm: bool = False,
    running_prior: float | None = None,
    running_horizon: float | None = None,
    running_balance: bool = True,
    echo_warning: Any = None,
    skip_failed: bool = False,
) -> int:
    """The body of `serlaq predict --segments`: the core's segment run and writer (the
    bytes `serlaq-rt` prints) to stdout as each file is segmented, csv summaries to
    stderr, error lines through `echo_error`; returns the number of failed files (a
    damaged file counts, its windows before the damage are kept; `skip_failed`: its error
    line only, no error row), and the one line of a
    run whose speech windows lie mostly far from the training data through `echo_warning`.
    Bad options raise ValueError before anything is written."""
    import sys

    opts = SegmentOptions(
        window=DEFAULT_WINDOW if window is None else window,
        hop=DEFAULT_HOP if hop is None else hop,
        vad=vad,
        vad_db=DEFAULT_VAD_DB if vad_db is None else vad_db,
        min_speech=DEFAULT_MIN_SPEECH if min_speech is None else min_speech,
        top_k=top_k,
        running_norm=running_norm,
        running_prior=DEFAULT_RUNNING_PRIOR if running_prior is None else running_prior,
        running_horizon=DEFAULT_RUNNING_HORIZON if running_horizon is None else running_horizon,
        running_balance=running_balance,
    )
    sys.stdout.flush()
    failed, kept = _native.segments_to(
        laq._native, [os.fspath(p) for p in inputs], fmt, sys.stdout, sys.stderr, echo_error,
        top_k=top_k, keep=plot is not None, echo_warning=echo_warning, skip_failed=skip_failed, **opts.native(),
    )
    drawn = [SegmentTimeline(p, [_segment(laq.labels, t, opts, p) for t in ts], err) for p, ts, err in kept]
    if plot is not None and drawn:
        from serlaq.io import atomic_write_bytes

        target = os.fspath(plot)
        if len(drawn) <= MAX_PANELS:
            atomic_write_bytes(target, timeline_png(drawn, laq.labels))
        else:
            stem, ext = os.path.splitext(target)
            for i, tl in enumerate(drawn):
                name = os.path.splitext(os.path.basename(tl.path))[0]
                atomic_write_bytes(f"{stem}-{i:03d}-{name}{ext or '.png'}", timeline_png([tl], laq.labels))
    return failed
