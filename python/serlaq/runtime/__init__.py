"""The runtime: the Python face of the Rust model.

Imports only the base modules (`serlaq.errors`, `serlaq.waveform`) and `serlaq._native`:
no torch, torchaudio, Lightning, nor any training-side module (a test enforces it), so a
runtime-only install (`pip install serlaq`) loads a `.laq` file and predicts.
"""

from serlaq.runtime.inputs import AUDIO_SUFFIXES, find_audio_files
from serlaq.runtime.model import LaqModel
from serlaq.runtime.results import FileFailure, LayerInfo, Prediction, Segment, SegmentSummary, describe_error

__all__ = [
    "AUDIO_SUFFIXES",
    "FileFailure",
    "LaqModel",
    "LayerInfo",
    "Prediction",
    "Segment",
    "SegmentSummary",
    "describe_error",
    "find_audio_files",
]
