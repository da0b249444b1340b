"""The canonical emotion labels every corpus is mapped to, and the spellings that map to them.

A base-layer module (no data or runtime imports), so the run config can validate label
names at load time; `serlaq.data.corpora` applies it to corpora.
"""

from __future__ import annotations

import re

LABELS: tuple[str, ...] = ("angry", "boredom", "calm", "disgust", "fear", "happy", "neutral", "sad", "surprise")

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
}


def canonical_label(name: str) -> str | None:
    """The canonical label for a spelling ("Anger", "pleasant surprise" -> ...), or None."""
    key = re.sub(r"[\s\-]+", "_", name.strip().lower())
    if key in LABELS:
        return key
    return LABEL_ALIASES.get(key)


__all__ = ["LABELS", "LABEL_ALIASES", "canonical_label"]
