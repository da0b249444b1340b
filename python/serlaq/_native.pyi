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

# --- the native model and features (rust/python/src/model.rs over serlaq_core::model) ---------
# Every method releases the GIL while Rust computes and catches panics (raised as
# RuntimeError naming the call). Load errors are LaqFormatError "<file>: <what>".

class Model:
    """A `.laq` file validated whole in Rust (format, metadata, feature spec with its
    bounds, shapes, normalization) and run natively: features -> standardize -> packed
    layers -> softmax."""

    def __init__(self, path: str | os.PathLike[str]) -> None: ...
    @staticmethod
    def from_bytes(data: bytes) -> Model: ...
    labels: list[str]
    spec: dict[str, object]  # the validated feature spec, every FeatureConfig key
    metadata_json: str
    input_dim: int
    num_classes: int
    min_samples: int  # shortest waveform at `sample_rate`: one analysis window
    sample_rate: int  # the model's feature rate
    file_size: int
    version: int
    def layers(self) -> list[dict[str, object]]:
        """name, rows, cols, bits, quantizer, granularity, has_bias, packed_bytes per layer."""
    def features_wave(self, wave: NDArray[np.float32]) -> NDArray[np.float32]:
        """A mono waveform at `sample_rate` -> raw (input_dim,) features."""
    def features_file(self, path: str | os.PathLike[str]) -> NDArray[np.float32]:
        """Decode + downmix + resample (the native audio path) -> raw (input_dim,) features."""
    def predict_file(self, path: str | os.PathLike[str]) -> list[float]:
        """A file -> one probability per label (a list: no numpy needed). AudioError names the file."""
    def predict_files(
        self, paths: list[str | os.PathLike[str]], threads: int = 1
    ) -> list[tuple[list[float] | None, str | None]]:
        """Per file, in input order: (probabilities, None) or (None, "<file>: <what is wrong>")."""
    def forward(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        """Raw features (n, d) or (d,) -> logits; ValueError for a wrong shape or non-finite rows."""
    def probabilities(self, x: NDArray[np.float32]) -> NDArray[np.float64]:
        """Raw features (n, d) or (d,) -> softmax probabilities in float64."""

class FeaturePlan:
    """A feature plan built once from a `features` JSON object (window, FFT, filterbanks)."""

    def __init__(self, spec_json: str) -> None: ...
    dim: int
    spec: dict[str, object]
    def features(self, wave: NDArray[np.float32]) -> NDArray[np.float32]: ...

def features(spec_json: str, wave: NDArray[np.float32]) -> NDArray[np.float32]:
    """A `features` JSON object + a mono waveform at its rate -> raw features (tests, benchmarks)."""

# --- segments (rust/python/src/segments.rs over serlaq_core::segments) ---------------------

# (index, start, end, start_seconds, end_seconds, voiced, probabilities or None = silence);
# start/end in source samples, voiced = share of the window's frames above the VAD level.
SegmentTuple = tuple[int, int, int, float, float, float, list[float] | None]

SEGMENT_WINDOW: float  # default window, seconds (2.0)
SEGMENT_HOP: float  # default hop, seconds (1.0)
VAD_DB: float  # default frame level threshold, dBFS (-50.0)
VAD_MIN_SPEECH: float  # default share of voiced frames for a speech window (0.25)

class Segmenter:
    """One stream cut into windows for `model`; `vad_db=None` turns the voice-activity gate off.

    ValueError: bad options, NaN/inf samples (the chunk is rejected, the stream goes on), a
    changed `sample_rate`, a push after finish; TypeError: a non-float array; AudioError:
    an unsupported rate, or a stream shorter than one analysis window at `finish`.
    """

    def __init__(
        self,
        model: Model,
        sample_rate: int,
        window: float = 2.0,
        hop: float = 1.0,
        vad_db: float | None = -50.0,
        min_speech: float = 0.25,
        source: str = "stream",
    ) -> None: ...
    def push(self, samples: NDArray[np.floating], sample_rate: int | None = None) -> list[SegmentTuple]:
        """Mono float samples (any length) -> the segments they complete."""
    def finish(self) -> list[SegmentTuple]:
        """The remaining segments (the end-aligned last window, or the one window of a short stream)."""
    sample_rate: int
    samples: int  # source samples accepted so far
    window_seconds: float  # the window as whole STFT hops
    hop_seconds: float
    window_frames: int
    hop_frames: int
    rows_held: int  # frame rows held now (<= window_frames + hop_frames)

def segment_file(
    model: Model,
    path: str | os.PathLike[str],
    window: float = 2.0,
    hop: float = 1.0,
    vad_db: float | None = -50.0,
    min_speech: float = 0.25,
) -> tuple[list[SegmentTuple], str | None]:
    """A file read packet by packet -> (segments up to the end or the damage, None or one
    error line naming the file and where it broke). ValueError only for bad options."""
