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
from pathlib import Path
from typing import Any, Callable, Protocol, TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray

FORMAT_VERSION: int
SERVER_MAX_THREADS: int
SYNTHETIC_WARNING: str
FORMATS_HELP: str
MODEL_HELP: str
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
AUDIO_FORMATS: tuple[str, ...]  # the same formats by name (WAV, FLAC, ...), for help and errors
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

# --- features and the native model (rust/python/src/model.rs over rust/core/src/features/,
# rust/core/src/model.rs) -------------------------------------------------------------------
# A `features` spec is `FeatureConfig.model_dump(mode="json")` as JSON text; keys missing
# from old headers take the stored preset's values (no preset = paper), unknown keys and
# values outside the bounds raise ValueError "features.<field>: <value> is outside <bound>"
# before anything is allocated. Waveform problems raise AudioError; the GIL is released while
# Rust computes; a panic is raised as RuntimeError.

def features(spec_json: str, wave: ArrayLike) -> NDArray[np.float32]:
    """A mono waveform at the spec's rate -> the raw (dim,) feature vector (builds a plan
    per call: use `FeaturePlan` for many clips)."""

class FeaturePlan:
    """A spec's window, FFT plan, filterbanks and DCT, built once; thread-safe."""

    dim: int
    spec: dict[str, Any]
    """The validated spec, every `FeatureConfig` key."""

    def __init__(self, spec_json: str) -> None: ...
    def features(self, wave: ArrayLike) -> NDArray[np.float32]:
        """1-D waveform at the spec's rate (>= one window, finite) -> (dim,) float32."""

class Model:
    """A `.laq` model run natively: features -> (x - mean) / std -> packed layers (ReLU
    between) -> softmax in float64. Construction validates the format, the metadata
    (labels, architecture, normalization) and the feature spec: LaqFormatError
    "<path>: <what>" otherwise (OSError subclasses when the file cannot be read)."""

    labels: list[str]
    spec: dict[str, Any]
    metadata_json: str
    input_dim: int
    num_classes: int
    sample_rate: int
    """The rate `features_wave` expects (the spec's sample_rate)."""
    min_samples: int
    """Shortest waveform accepted, in samples at `sample_rate` (one analysis window)."""

    def __init__(self, path: str | os.PathLike[str]) -> None: ...
    @staticmethod
    def from_bytes(data: bytes | bytearray | memoryview | NDArray[np.uint8]) -> Model:
        """Validate an in-memory file; errors name "<bytes>"."""

    def features_wave(self, wave: ArrayLike) -> NDArray[np.float32]:
        """Mono waveform at `sample_rate` -> raw (input_dim,) float32 features. AudioError
        for NaN/inf samples, too short (< min_samples) or longer than 3600 s."""

    def features_file(self, path: str | os.PathLike[str]) -> NDArray[np.float32]:
        """Decode + downmix + resample natively (as `load_audio`), then `features_wave`."""

    def forward(self, x: ArrayLike) -> NDArray[np.float32]:
        """Raw features (n, input_dim) or (input_dim,) -> logits (n, C) or (C,). ValueError
        for another shape or a NaN/inf value (naming its row and column)."""

    def probabilities(self, x: ArrayLike) -> NDArray[np.float64]:
        """Raw features -> softmax probabilities, float64, same shapes as `forward`."""
    def scored(self, x: ArrayLike) -> list[tuple[list[float], float]]:
        """Raw features (n, d) or (d,) -> per row (probabilities, out-of-domain score), one
        pass through the network each."""

    file_size: int
    """Bytes of the whole `.laq` file."""
    version: int
    """The file's `.laq` format version."""

    def layers(self) -> list[dict[str, Any]]:
        """Per packed layer, forward order: name, rows, cols, bits, quantizer, granularity,
        has_bias, packed_bytes."""

    def info(self, name: str, json: bool = False) -> str:
        """`serlaq info` for the model called `name`: the text, or the JSON (indent 2)."""

    def predict_file(self, path: str | os.PathLike[str]) -> tuple[list[float], float]:
        """A file -> (one probability per label, a plain list (a prediction from a path
        never imports numpy); its out-of-domain score). AudioError naming the file."""
    def predict_bytes(self, data: bytes, source: str) -> tuple[list[float], float]:
        """An encoded file held in memory (a WAV's, FLAC's, MP3's... bytes) -> (one
        probability per label, out-of-domain score); AudioError naming `source`."""
    def features_bytes(self, data: bytes, source: str) -> NDArray[np.float32]:
        """An encoded file held in memory -> its raw (d,) feature vector."""

    def predict_files(
        self, paths: list[str | os.PathLike[str]], threads: int = 1
    ) -> list[tuple[tuple[list[float], float] | None, str | None]]:
        """Many files on `threads` native threads (0: one per core), GIL released; in input
        order, `((probabilities, out-of-domain score), None)` or `(None, "<file>: <what is
        wrong>")` per file."""

# --- segments (rust/python/src/segments.rs over serlaq_core::segments) ---------------------

# (index, start, end, start_seconds, end_seconds, voiced, probabilities or None = silence,
# out-of-domain score or None = silence); start/end in source samples, voiced = share of
# the window's frames above the VAD level.
SegmentTuple = tuple[int, int, int, float, float, float, list[float] | None, float | None]

SEGMENT_WINDOW: float  # default window, seconds (2.0)
SEGMENT_HOP: float  # default hop, seconds (1.0)
VAD_DB: float  # default frame level threshold, dBFS (-50.0)
VAD_MIN_SPEECH: float  # default share of voiced frames for a speech window (0.25)
RUNNING_PRIOR: float  # running normalisation: weight of the model's statistics, windows (20.0)
RUNNING_HORIZON: float  # running normalisation: memory of the stream's statistics, windows (600.0)

class Segmenter:
    """One stream cut into windows for `model`; `vad_db=None` turns the voice-activity gate off,
    a `running_prior` turns running normalisation on (the stream's speech windows re-estimate
    the input statistics, the model's own counting as `running_prior` windows; with
    `running_balance` each window's probabilities are also divided by the stream's label mix).

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
        running_prior: float | None = None,
        running_horizon: float = 600.0,
        running_balance: bool = True,
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
    running_prior: float | None = None,
    running_horizon: float = 600.0,
    running_balance: bool = True,
) -> tuple[list[SegmentTuple], str | None]:
    """A file read packet by packet -> (segments up to the end or the damage, None or one
    error line naming the file and where it broke). ValueError only for bad options."""

# --- the runtime facade (serlaq_core::runtime): what the Python CLI prints ---------------

class _TextOut(Protocol):
    def write(self, text: str, /) -> Any: ...
    def flush(self) -> Any: ...

def plain_error(message: str) -> str:
    """A failure line in plain words (decoder jargon translated; other lines unchanged), its
    control characters escaped as `one_line` does."""
def one_line(text: str) -> str:
    """`text` with control characters escaped (`\\n`, `\\t`, `\\u{1b}`): one line on a terminal."""

def predict_to(
    model: Model,
    inputs: list[str | os.PathLike[str]],
    fmt: str,
    out: _TextOut,
    echo_error: Callable[[str], Any],
    top_k: int | None = None,
    threads: int | None = None,
    echo_warning: Callable[[str], Any] | None = None,
    skip_failed: bool = False,
) -> int:
    """`serlaq predict`: every input's result written to `out` as it comes (the bytes
    `serlaq-rt predict` writes), failures' lines to `echo_error` (with `skip_failed` no
    failure row is written), the out-of-domain warning (most files far outside the
    training data) to `echo_warning`; returns the failures."""

def segments_to(
    model: Model,
    inputs: list[str | os.PathLike[str]],
    fmt: str,
    out: _TextOut,
    summary_out: _TextOut,
    echo_error: Callable[[str], Any],
    window: float,
    hop: float,
    vad_db: float | None,
    min_speech: float,
    top_k: int | None = None,
    keep: bool = False,
    running_prior: float | None = None,
    running_horizon: float = 600.0,
    running_balance: bool = True,
    echo_warning: Callable[[str], Any] | None = None,
    skip_failed: bool = False,
) -> tuple[int, list[tuple[str, list[SegmentTuple], str | None]]]:
    """`serlaq predict --segments` (ValueError for bad options, before any output); returns
    (failures, the timelines of files with windows when `keep`). One line (most speech
    windows far outside the training data) to `echo_warning`; `skip_failed`: a failure gets
    its `echo_error` line and no row."""

def summarize(
    windows: list[tuple[int, float, float, str | None]],
) -> tuple[float, int, int, float, list[tuple[str, float]], list[tuple[str, float]]]:
    """(index, start, end, label or None for silence) per window -> (duration, segments,
    speech_segments, speech_seconds, emotions, emotion_seconds)."""

def find_audio_files(inputs: list[str | os.PathLike[str]]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files and directories -> (audio files, [(input, one-line message)])."""

def find_listed_audio_files(
    inputs: list[str | os.PathLike[str]], manifest: str | os.PathLike[str] | None = None
) -> tuple[list[str], list[tuple[str, str]]]:
    """`find_audio_files(inputs)` followed by the audio paths a CSV manifest lists
    (`path[,label[,speaker]]`, a header optional, labels ignored, relative paths resolved
    against the manifest's folder), each file once however it is spelled; ValueError with
    one line naming the manifest when it cannot be read or lists nothing."""

def manifest_rows(manifest: str | os.PathLike[str]) -> list[tuple[int, str | None, str | None, str | None]]:
    """A CSV manifest's rows in its order: (line, path, label, speaker), a cell left empty
    None. Rows `path[,label[,speaker]]`, or a header naming the `path` (or `file`), `label`
    (or `emotion`) and `speaker` columns; paths resolved against the manifest's folder
    (`~/` the home folder). ValueError with one line naming the manifest when it cannot be
    read (over 64 MiB, not UTF-8, not CSV) or has no rows."""

def resolve_threads(requested: int | None, n_files: int) -> int:
    """Threads for a batch of `n_files` (None: every core)."""

# -- adaptation, calibration and the general model (rust/python/src/adapt.rs) ---------

GENERAL: str  # "general": the name that selects the shipped general model
GENERAL_NOT_SHIPPED: str  # the one-line error of a build without it

def adapt_model(
    model: Model,
    paths: list[str | os.PathLike[str]],
    source: str = "",
    created: str | None = None,
    threads: int = 0,
    min_clips: int = 20,
    min_speech_seconds: float = 20.0,
    balance: bool = True,
    std: str = "widen",
    labels: list[str] = ...,
    waves: list[tuple[str, NDArray[np.float32]]] = ...,
) -> dict[str, Any]:
    """`model` adapted to the audio files and `waves` ((name, mono float32 at the model's
    rate) pairs: prepared waveforms): {"bytes" (absent on error), "error" (one line or
    None), "failures" (one line per file or wave left out), "clips", "seconds", "speech_seconds",
    "ood_before", "ood_after", "top_share_before", "top_share_after", "summary" (what was
    done, as `serlaq adapt` and `serlaq-rt adapt` print it)}; `balance` shifts the
    output bias so the clips spread over the labels; `std` is the std rule ("widen": the
    larger of the model's and the clips' per feature, "target": the clips' own, "model":
    the model's); ValueError for another; `labels` the model labels the audio holds (empty:
    all): balanced over alone, the others set out of reach. Writes nothing."""
def adapt_source(inputs: list[str]) -> str:
    """The `source` an adaptation records: the inputs, or the first three and how many more."""
def model_bytes(model: Model) -> bytes:
    """The model's whole .laq file."""
def save_model_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Validate `data` as a model and write it atomically; ValueError (one line) otherwise."""
def prepare_output(path: str | os.PathLike[str], example: str = "adapted.laq") -> None:
    """Refuse a folder at `path` (suggesting the file `example` inside it) and make the folders
    above it, before the work that ends in writing it; ValueError (one line) otherwise."""
def adapt_output_clash(model: str | os.PathLike[str], out: str | os.PathLike[str]) -> str | None:
    """Why `out` may not take the adapted copy of the model `model` names (its own file, a run
    folder's model.laq included; or `general` for the shipped model), or None."""
def model_file(path: str | os.PathLike[str]) -> Path:
    """The model file `path` names: itself, or a run folder's model.laq (else its one .laq);
    ValueError (one line) for a folder without one, or with several and no model.laq."""
def general_model_bytes() -> bytes | None:
    """The shipped general model's .laq bytes (None in a build without it)."""
def model_calibration(model: Model) -> tuple[float, float]:
    """(calibration temperature, out-of-domain threshold) of a model."""
def model_ood_scores(model: Model, features: NDArray[np.floating]) -> list[float]:
    """Out-of-domain scores of raw feature rows (n, d) or one vector (d,), as `Model.scored`
    gives them: the hidden reference's distance when the file has one, else RMS z-scores."""

# -- the server (rust/python/src/serve.rs) --------------------------------------------

def serve(
    models: list[tuple[str, str | os.PathLike[str]]],
    host: str,
    port: int,
    api_key: str | None = None,
    cors: list[str] = ...,
    threads: int = 0,
    max_body: int | None = None,
    max_audio_seconds: float | None = None,
    max_files: int | None = None,
    max_concurrent: int | None = None,
    max_streams: int | None = None,
    max_connections: int | None = None,
    read_timeout: float | None = None,
    idle_timeout: float | None = None,
    max_adapted: int | None = None,
) -> None:
    """Run `serlaq-rt serve`'s server on `models` ([(name, path or "general")], the first the
    default) with the GIL released, until Ctrl-C or SIGTERM; None = the documented default
    (docs/serve.md). ValueError (one line) for a bad name, model, limit or address."""
