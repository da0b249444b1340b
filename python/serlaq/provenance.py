"""Where a model comes from: the `provenance` record of a `.laq` file's metadata.

Written by training (`serlaq fit`, `serlaq compress`), read by `serlaq info`, by
`predict`'s warning for models trained on the synthetic demo corpus and by `evaluate`'s
(and the cross report's) warning for a corpus the model was trained on. The keys are the
ones `docs/laq-format.md` lists; every one is optional to a reader, so files written
before provenance existed still load. Plain data only (no torch): the runtime reads it.

`created` is UTC to the second and honours `SOURCE_DATE_EPOCH` (the reproducible-builds
convention), so the same config and seed can still give byte-identical files.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from serlaq import _native
from serlaq.version import __version__

#: One line `predict` prints (stderr) for a model whose provenance says it saw only
#: synthetic audio: the core's words, which `serlaq-rt predict` prints too.
SYNTHETIC_WARNING: str = _native.SYNTHETIC_WARNING


def created_now() -> str:
    """ISO-8601 UTC to the second; `SOURCE_DATE_EPOCH` (seconds since 1970) wins when set."""
    pinned = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if pinned:
        try:
            moment = _dt.datetime.fromtimestamp(int(pinned), tz=_dt.timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise ValueError(f"SOURCE_DATE_EPOCH: expected whole seconds since 1970, got {pinned!r}") from None
    else:
        moment = _dt.datetime.now(tz=_dt.timezone.utc)
    return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def corpus_record(name: str, dataset: str, clips: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """One `corpora` entry from the (label, speaker) of every clip the model was built from."""
    pairs = list(clips)
    labels = Counter(label for label, _ in pairs)
    return {
        "name": name,
        "dataset": dataset,
        "clips": len(pairs),
        "speakers": len({speaker for _, speaker in pairs}),
        "labels": dict(sorted(labels.items())),
    }


def build_provenance(
    *,
    corpora: Sequence[Mapping[str, Any]],
    synthetic: bool,
    protocol: str,
    fractions: Sequence[float] | None,
    seed: int,
    sizes: Mapping[str, int],
    scores: Mapping[str, Mapping[str, float]],
    created: str | None = None,
) -> dict[str, Any]:
    """The whole record; `scores` are the packed model's ({"val"|"test": {"accuracy", "uar"}})."""
    return {
        "serlaq_version": __version__,
        "created": created if created is not None else created_now(),
        "corpora": [dict(c) for c in corpora],
        "synthetic": bool(synthetic),
        "split": {
            "protocol": protocol,
            "fractions": None if fractions is None else [float(f) for f in fractions],
            "seed": int(seed),
            "sizes": {k: int(sizes[k]) for k in ("train", "val", "test") if k in sizes},
        },
        "scores": {
            split: {k: round(float(v), 6) for k, v in values.items()} for split, values in scores.items()
        },
        "adaptations": [],
    }


def trained_on_synthetic(metadata: Mapping[str, Any] | None) -> bool:
    """True when a file's metadata says every corpus it was trained on is synthetic."""
    prov = (metadata or {}).get("provenance")
    return isinstance(prov, Mapping) and prov.get("synthetic") is True


#: Layouts that name one published corpus by its file naming (a folder or a manifest names none).
_FOLDER_LAYOUTS = ("folder", "csv", "synthetic")


def heard_corpus_warning(metadata: Mapping[str, Any], layout: str) -> str | None:
    """One line when the model was built from the corpus being scored: a corpus read by its
    own file naming (`tess`, `emodb`, ...) that the model's provenance lists. Its clips then
    include the ones it was trained on, so the scores say nothing about new recordings."""
    if not layout or layout in _FOLDER_LAYOUTS:
        return None
    provenance = metadata.get("provenance") if isinstance(metadata, Mapping) else None
    corpora = provenance.get("corpora") if isinstance(provenance, Mapping) else None
    if not isinstance(corpora, list):
        return None
    heard = [c for c in corpora if isinstance(c, Mapping) and c.get("dataset") == layout]
    if not heard:
        return None
    clips = heard[0].get("clips")
    size = f", {clips} clips" if isinstance(clips, int) else ""
    scores = provenance.get("scores")
    test = scores.get("test") if isinstance(scores, Mapping) else None
    uar = test.get("uar") if isinstance(test, Mapping) else None
    held_out = f"; its held-out test split scored UAR {100 * uar:.1f}% (serlaq info)" if isinstance(uar, (int, float)) else ""
    return (
        f"warning: the model was trained on this corpus ({layout}{size}): these scores include clips "
        f"it learned from, not new recordings{held_out}"
    )
