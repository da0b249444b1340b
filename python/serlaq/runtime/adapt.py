"""`serlaq adapt`: a model's input statistics re-estimated on unlabelled audio of a new room,
and its output bias shifted so those clips spread over the labels (`balance`). The mean is
the new audio's; the std, by default, the larger of the model's and the audio's per feature
(`std="widen"`: a narrow room is not stretched; "target" and "model" are the other rules).

The numeric work (decoding, features, statistics, the new file) is `serlaq_core::adapt`
through `serlaq._native.adapt_model`; this module finds the files (folders searched
recursively, or a CSV manifest whose labels are ignored) and turns the outcome into a
`LaqModel` or one clear error line. No torch.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from serlaq import _native
from serlaq.errors import AudioError, SerlaqError
from serlaq.labels import canonical_label
from serlaq.runtime.inputs import resolve_threads

__all__ = ["MIN_CLIPS", "MIN_SPEECH_SECONDS", "STD_RULES", "AdaptError", "AdaptResult", "adapt"]

#: The least audio an adaptation accepts (measured in docs/adapt.md; the Rust core's).
MIN_CLIPS = 20
MIN_SPEECH_SECONDS = 20.0
#: How the adapted std is chosen, per feature: the larger of the model's and the audio's
#: (default), the audio's own, or the model's (only the mean moves). `serlaq_core::adapt::StdRule`.
STD_RULES = ("widen", "target", "model")


class AdaptError(SerlaqError):
    """No adaptation was made (too little or no usable audio); `failures` names the bad files."""

    def __init__(self, message: str, failures: Sequence[str] = (), headline: str | None = None) -> None:
        super().__init__(message)
        self.failures = list(failures)
        # the message without its example failure, for a caller that prints every failure itself
        self.headline = message if headline is None else headline


@dataclass
class AdaptResult:
    """What an adaptation used: clip count, seconds, speech seconds, the files left out,
    the median out-of-domain score of the clips before and after, and the share of the
    clips given the most predicted label before and after; `summary`: all that in one line, as
    `serlaq adapt` and `serlaq-rt adapt` print it (`serlaq_core::adapt::Adapted::summary`)."""

    clips: int
    seconds: float
    speech_seconds: float
    ood_before: float
    ood_after: float
    top_share_before: float
    top_share_after: float
    failures: list[str] = field(default_factory=list)
    summary: str = ""


def _prepared_waves(model: Any, given: list[Any], sample_rate: int | None) -> tuple[list[tuple[str, Any]], list[str]]:
    """The waveforms among `given` (anything not a path), each prepared as a decoded file
    is (mono float32 at the model's rate) and named `waveform N` by its place; those that
    cannot be used -> one line each."""
    waves, failures = [], []
    for i, w in enumerate(given):
        if isinstance(w, (str, os.PathLike)):
            continue
        name = f"waveform {i}"
        try:
            waves.append((name, model.prepare_waveform(w, sample_rate, source=name)))
        except (AudioError, TypeError, ValueError) as exc:
            message = str(exc)
            failures.append(message if message.startswith(name) else f"{name}: {message}")
    return waves, failures


def adapt(
    model: Any,
    inputs: Iterable[Any] = (),
    manifest: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    source: str | None = None,
    min_clips: int = MIN_CLIPS,
    min_speech_seconds: float = MIN_SPEECH_SECONDS,
    balance: bool = True,
    std: str = "widen",
    labels: Sequence[str] | None = None,
    sample_rate: int | None = None,
) -> tuple[Any, AdaptResult]:
    """`model` (a `LaqModel`) adapted to the audio of `inputs` (files, folders searched
    recursively, and waveforms: numpy arrays or torch tensors of one clip each, at
    `sample_rate`) and/or the files of `manifest`; `balance` also shifts the output bias so
    those clips spread over the labels; `std` is one of `STD_RULES`; `labels` (spellings as
    a corpus's: "Anger" is angry) the labels the audio holds: the balance spreads the clips
    over these alone and the model answers among them. Unreadable files and unusable
    waveforms (named `waveform N`, N its place in `inputs`) are left out and listed in the
    result; raises `AdaptError` when there is too little usable audio or a label is not the
    model's."""
    if std not in STD_RULES:
        raise ValueError(f"std: unknown rule {std!r} (accepted: {', '.join(STD_RULES)})")
    if isinstance(labels, str):
        raise ValueError("labels: a list of label names, not one string")
    held = [canonical_label(name) or name.strip() for name in labels or ()]
    # one path, or one waveform (an array's rows are its channels, never clips), is one input
    one = isinstance(inputs, (str, os.PathLike)) or hasattr(inputs, "shape")
    given = [inputs] if one else list(inputs)
    items = [os.fspath(p) for p in given if isinstance(p, (str, os.PathLike))]
    waves, failures = _prepared_waves(model, given, sample_rate)
    try:  # each file once, however the folders and the manifest spell it
        files, errors = _native.find_listed_audio_files(items, None if manifest is None else os.fspath(manifest))
    except ValueError as exc:  # the manifest cannot be read
        raise SerlaqError(str(exc)) from None
    failures = [msg for _, msg in errors] + failures
    if not files and not waves:
        what = "no audio files given" if len(waves) == len(given) - len(items) == 0 else "no usable audio given"
        above = f"adapt: {what} ({len(failures)} input{'s' * (len(failures) != 1)} named above)"
        raise AdaptError(f"adapt: {what}" + (f" ({failures[0]})" if failures else ""), failures, above)
    if source is None:
        named = ([os.fspath(manifest)] if manifest is not None else []) + items
        count = len(given) - len(items)
        source = _native.adapt_source(named + ([f"{count} waveform{'s' * (count != 1)}"] if count else []))
    out = _native.adapt_model(
        model._native,
        files,
        waves=waves,
        source=source,
        threads=resolve_threads(workers, len(files)),
        min_clips=min_clips,
        min_speech_seconds=min_speech_seconds,
        balance=balance,
        std=std,
        labels=held,
    )
    failures += list(out["failures"])
    if out["error"] is not None:
        raise AdaptError(out["error"], failures)
    adapted = type(model).from_bytes(out["bytes"], name=f"{model.path} (adapted)")
    return adapted, AdaptResult(
        clips=int(out["clips"]),
        seconds=float(out["seconds"]),
        speech_seconds=float(out["speech_seconds"]),
        ood_before=float(out["ood_before"]),
        ood_after=float(out["ood_after"]),
        top_share_before=float(out["top_share_before"]),
        top_share_after=float(out["top_share_after"]),
        failures=failures,
        summary=str(out["summary"]),
    )
