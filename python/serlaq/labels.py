"""The canonical emotion labels every corpus is mapped to, and the spellings that map to them.

A base-layer module (no data or runtime imports), so the run config can validate label
names at load time; `serlaq.data.corpora` applies it to corpora.
"""

from __future__ import annotations

import re

# The basic emotions of acted corpora, plus the three that natural-speech corpora annotate
# (IEMOCAP's excited and frustrated, MSP-Podcast's contempt): a corpus that has them reads
# without errors, and `--map excited=happy` (or `excited=` to leave them out) decides how
# they are scored against a model that lacks them.
LABELS: tuple[str, ...] = (
    "angry", "boredom", "calm", "contempt", "disgust", "excited", "fear", "frustrated", "happy", "neutral", "sad", "surprise",
)  # fmt: skip

# Spellings found in public corpora and manifests -> canonical label.
LABEL_ALIASES: dict[str, str] = {
    "anger": "angry",
    "mad": "angry",
    "bored": "boredom",
    "boring": "boredom",
    "disgusted": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "ps": "surprise",
    "surprised": "surprise",
    "pleasant_surprise": "surprise",
    "pleasant_surprised": "surprise",
    "pleasantsurprise": "surprise",
    "neu": "neutral",
    "contemptuous": "contempt",
    "excitement": "excited",
    "frustration": "frustrated",
    # IEMOCAP's three-letter codes, as its label files and most manifests made from them spell them
    "ang": "angry",
    "dis": "disgust",
    "exc": "excited",
    "fea": "fear",
    "fru": "frustrated",
    "hap": "happy",
    "sur": "surprise",
}


def label_key(name: str) -> str:
    """A spelling as the label tables and `--map` compare it: lower case, runs of spaces and
    hyphens as one `_` ("Pleasant Surprise" -> "pleasant_surprise", MSP-Podcast's "A" -> "a")."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def canonical_label(name: str) -> str | None:
    """The canonical label for a spelling ("Anger", "pleasant surprise" -> ...), or None."""
    key = label_key(name)
    if key in LABELS:
        return key
    return LABEL_ALIASES.get(key)


__all__ = ["LABELS", "LABEL_ALIASES", "canonical_label", "label_key"]
