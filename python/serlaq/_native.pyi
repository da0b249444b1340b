"""Typed stub of `serlaq._native`, the Rust extension (crate `rust/python` over `rust/core`).

Bit layout: code i of a stream occupies bits i*bits .. (i+1)*bits, LSB-first within each
byte; 2-D arrays are packed row by row with every row starting on a byte boundary
(row_bytes = ceil(cols * bits / 8)) and zero padding bits. See docs/laq-format.md.

Errors: bad arguments raise ValueError (TypeError for a wrong dtype or type); a malformed
`.laq` file raises serlaq.errors.LaqFormatError naming the file and the problem; OS
refusals raise the matching OSError subclass (FileNotFoundError, ...) naming the path.
"""

from __future__ import annotations

import os
from typing import Any, TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray

FORMAT_VERSION: int
"""The `.laq` format version this build writes and reads."""

QGEMM_DOT_COLS_PER_ROUNDING: int
QGEMM_DOT_EXTRA_ROUNDINGS: int
F32_UNIT_ROUNDOFF: float
"""Constants of qgemm's error bound: a product goes through at most
ceil(cols / QGEMM_DOT_COLS_PER_ROUNDING) + QGEMM_DOT_EXTRA_ROUNDINGS f32 roundings."""

def kernel() -> str:
    """Name of the kernel pack/unpack/qgemm run: "portable", "avx2" or "avx512" (the
    last only in builds with the `avx512` cargo feature); SERLAQ_KERNELS can force one."""

def kernels() -> list[str]:
    """The kernels this build has and this CPU runs, plainest first."""

def pack(codes: NDArray[np.uint8], bits: int, *, kernel: str | None = None) -> NDArray[np.uint8]:
    """Pack codes (each < 2**bits) at `bits` in 1..8.

    1-D (n,) -> (ceil(n*bits/8),); 2-D (rows, cols) -> (rows, ceil(cols*bits/8)).
    ValueError if bits is not in 1..8 or a code does not fit (the message gives its index).
    """

def unpack(packed: NDArray[np.uint8], bits: int, count: int, *, kernel: str | None = None) -> NDArray[np.uint8]:
    """Inverse of `pack`: 1-D -> (count,); 2-D (rows, row_bytes) -> (rows, count).

    ValueError unless the (last) dimension is exactly ceil(count*bits/8) bytes.
    """

def qgemm(
    packed: NDArray[np.uint8],
    bits: int,
    cols: int,
    scale: ArrayLike,
    zero: ArrayLike,
    bias: ArrayLike | None,
    x: ArrayLike,
    *,
    kernel: str | None = None,
) -> NDArray[np.float32]:
    """y = x @ W.T + bias with W[r, c] = scale[r'] * (q[r, c] - zero[r']) decoded on the fly.

    packed: uint8 (rows, ceil(cols*bits/8)); scale, zero: float32 of length 1 (per tensor)
    or rows (per row); bias: float32 (rows,) or None; x: float32 (cols,) -> (rows,) or
    (batch, cols) -> (batch, rows). Non-float32 inputs are converted; the GIL is released
    while large products run. `kernel` forces one of `kernels()` (ValueError otherwise).
    """

class LayerDict(TypedDict):
    """One entry of `LaqFile.layers()`."""

    name: str
    rows: int
    cols: int
    bits: int
    quantizer: str  # "affine" | "binary"
    granularity: str  # "tensor" | "channel"
    has_bias: bool
    packed_bytes: int

def write_laq(
    path: str | os.PathLike[str],
    metadata_json: str,
    layers: list[dict[str, Any]],
    tensors: dict[str, NDArray[np.float32]],
) -> None:
    """Write a `.laq` file atomically (temp file in the same dir + fsync + rename).

    metadata_json: a JSON object (stored with sorted keys). Each layer dict has exactly the
    keys name (str), bits (int 1..8), quantizer ("affine" | "binary", binary needs bits 1),
    codes (uint8 (rows, cols), unpacked), scale and zero (float32, both of length 1 or both
    of length rows), bias (float32 (rows,) or None; may be omitted). tensors: name -> float32
    array of any shape (stored sorted by name). All floats must be finite. Identical inputs
    give a byte-identical file. ValueError/TypeError on bad input, OSError if the write fails.
    """

class LaqFile:
    """A `.laq` file read into memory and fully validated on construction."""

    version: int
    file_size: int
    metadata_json: str
    """The metadata object as compact JSON with sorted keys."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Read and validate `path`; LaqFormatError (naming the path) if it is malformed."""

    @staticmethod
    def from_bytes(data: bytes | bytearray | memoryview | NDArray[np.uint8]) -> LaqFile:
        """Validate an in-memory file; LaqFormatError if it is malformed."""

    def layers(self) -> list[LayerDict]:
        """Layer descriptions in stored (forward) order."""

    def codes(self, i: int) -> NDArray[np.uint8]:
        """Unpacked codes of layer i, (rows, cols). IndexError if i is out of range."""

    def packed(self, i: int) -> NDArray[np.uint8]:
        """Packed codes of layer i, (rows, ceil(cols*bits/8))."""

    def scale(self, i: int) -> NDArray[np.float32]:
        """Scale of layer i: (1,) per tensor or (rows,) per channel."""

    def zero(self, i: int) -> NDArray[np.float32]:
        """Zero point of layer i, same length as its scale."""

    def bias(self, i: int) -> NDArray[np.float32] | None:
        """Bias of layer i, (rows,), or None when the layer has none."""

    def tensor_names(self) -> list[str]:
        """Names of the extra float32 tensors (e.g. norm.mean, norm.std), sorted."""

    def tensor(self, name: str) -> NDArray[np.float32]:
        """Extra tensor `name` in its stored shape. KeyError if absent."""

    def forward(self, i: int, x: ArrayLike, *, kernel: str | None = None) -> NDArray[np.float32]:
        """x @ W_i.T + b_i computed from the stored packed layer (see `qgemm`)."""

# --- audio (rust/python/src/audio.rs over rust/core/src/audio/) ---------------------------
# Every failure raises serlaq.errors.AudioError with one line "<source>: <kind> (<details>)";
# the GIL is released while Rust decodes and resamples; a panic is raised as AudioError too.

AUDIO_SUFFIXES: tuple[str, ...]
"""File extensions the decoder reads, lower case with the dot (".wav", ".flac", ...)."""

def load_audio(path: str | os.PathLike[str], sample_rate: int, min_samples: int) -> NDArray[np.float32]:
    """Decode `path` packet by packet, average the channels, resample to `sample_rate`
    and validate: (samples,) float32. AudioError for a missing/unreadable/unsupported,
    truncated or corrupt file, a rate outside 1000..=384000 Hz, 0 or > 64 channels, more
    than 3600 s, no samples, NaN/inf samples, a peak below -80 dBFS, or fewer than
    `min_samples` samples after resampling."""

def prepare_waveform(
    wave: NDArray[np.float32], sample_rate: int, target_rate: int, min_samples: int, source: str
) -> NDArray[np.float32]:
    """`wave` float32 (samples,) or (channels, samples) -> the channels' mean resampled to
    `target_rate` and validated as in `load_audio`; `source` names it in errors.
    TypeError for another dtype."""

def resample(wave: NDArray[np.float32], orig: int, new: int) -> NDArray[np.float32]:
    """The one resampler: 1-D float32 -> ceil(n * new / orig) samples (a copy at equal
    rates). Rates must be within 1000..=384000 Hz (AudioError otherwise)."""
