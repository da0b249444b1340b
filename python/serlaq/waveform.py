"""In-memory waveforms of any dtype and layout -> float32 (channels, samples) for the native path.

One place for what `LaqModel.predict(wave, sample_rate)` and the training side's
`data.audio.prepare_waveform` accept: numpy arrays or torch tensors, 1-D or 2-D, float or
PCM integers (scaled to [-1, 1) exactly as soundfile decodes them). Downmixing,
validation and resampling then happen in Rust (`_native.prepare_waveform`), the same code
that reads files, so an array and the file it came from give the same features.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from serlaq.errors import AudioError


def checked_rate(sample_rate: Any, source: str = "waveform") -> int:
    """An in-memory waveform's `sample_rate` as an int, or AudioError naming `source` (the
    supported range is the decoder's, checked where the audio is resampled)."""
    if isinstance(sample_rate, (bool, float)) or not hasattr(sample_rate, "__index__") or not 0 < int(sample_rate) < 2**32:
        raise AudioError(f"{source}: sample_rate must be a positive integer, got {sample_rate!r}")
    return int(sample_rate)


def planar_float32(wave: Any, *, source: str = "waveform", channel_axis: int | None = None) -> np.ndarray:
    """`wave` as a C-contiguous float32 array of shape (channels, samples).

    For 2-D input `channel_axis` says which axis holds the channels; None takes the
    shorter one, so both (channels, samples) (torchaudio) and (samples, channels)
    (soundfile) work. Raises `AudioError` ("<source>: <what>") for a non-numeric dtype or
    a shape that is not 1-D or 2-D.
    """
    if hasattr(wave, "detach") and hasattr(wave, "cpu"):  # a torch tensor, without importing torch
        wave = wave.detach().cpu()
        if wave.is_floating_point() and str(wave.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            wave = wave.float()
        wave = wave.numpy()
    arr = np.asarray(wave)
    if arr.dtype.kind not in "fiu":
        raise AudioError(f"{source}: expected a numeric array, got dtype {arr.dtype}")
    if arr.dtype.kind in "iu":  # PCM integers -> [-1, 1), as soundfile decodes them
        full = float(2 ** (8 * arr.dtype.itemsize - 1))
        arr = (arr.astype(np.float64) - (full if arr.dtype.kind == "u" else 0.0)) / full
    if arr.ndim == 1:
        planar = arr[None, :]
    elif arr.ndim == 2:
        axis = channel_axis if channel_axis is not None else int(arr.shape[0] > arr.shape[1])
        planar = arr if axis == 0 else arr.T
    else:
        raise AudioError(f"{source}: must be 1-D or (channels, samples), got shape {arr.shape}")
    return np.ascontiguousarray(planar, dtype=np.float32)
