"""`LaqModel`: a packed `.laq` file run for inference, with nothing but the native module.

header (validated and bounded in Rust) -> features (Rust, the definitions of the torch
reference `serlaq.features`) -> standardize -> packed layers (Rust GEMV) -> softmax.
torch, torchaudio and Lightning are never imported, and numpy only where a caller hands in
or asks for arrays: `serlaq predict model.laq clip.wav` starts in milliseconds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Union

from serlaq import _native
from serlaq.errors import AudioError, LaqFormatError
from serlaq.runtime.inputs import resolve_threads
from serlaq.runtime.results import FileFailure, LayerInfo, Prediction, Segment

if TYPE_CHECKING:
    import numpy as np

    from serlaq.feature_config import FeatureConfig
    from serlaq.runtime.segments import SegmentStream, SegmentTimeline

PathLike = Union[str, "os.PathLike[str]"]

# How errors name audio given as the bytes of an encoded file (as the C API names them).
BYTES_SOURCE = "<bytes>"

__all__ = ["LaqModel"]


def _check_top_k(top_k: Any) -> None:
    """`top_k` is None or a whole number >= 1 (0, -1 or 1.5 would be answered oddly)."""
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be a whole number >= 1 or None, got {top_k!r}")


class LaqModel:
    """A compressed SER model loaded from a `.laq` file.

    >>> model = serlaq.load("model.laq")
    >>> model.predict("clip.wav").label
    'angry'
    """

    def __init__(self, native: Any, path: str) -> None:
        self._native = native
        self.path = path
        # Every field below was validated by the Rust loader (types, counts, shapes, bounds).
        self.metadata: dict[str, Any] = json.loads(native.metadata_json)
        self.labels: list[str] = list(native.labels)
        self.feature_spec: dict[str, Any] = dict(native.spec)
        self.architecture: dict[str, Any] = dict(self.metadata["architecture"])
        # the core's `ModelInfo` (`serlaq info --json`): layers, sizes, average bits
        self._info: dict[str, Any] = json.loads(native.info(path, json=True))
        self.layers: list[LayerInfo] = [LayerInfo.from_info(d) for d in self._info["layers"]]
        self.adaptation: Any = None  # the `AdaptResult` of the `adapt` call that made this model

    # -- loading ----------------------------------------------------------------------

    @classmethod
    def load(cls, path: PathLike) -> LaqModel:
        """Open and validate a `.laq` file (format, metadata, feature spec, shapes).

        The name `general` (not a path) selects the general model shipped inside serlaq; a
        run folder, its `model.laq`. Raises `LaqFormatError` naming the file and what is
        wrong.
        """
        p = os.fspath(path)
        if p == _native.GENERAL:
            data = _native.general_model_bytes()
            if data is None:
                raise LaqFormatError(_native.GENERAL_NOT_SHIPPED)
            return cls.from_bytes(data, name=_native.GENERAL)
        if os.path.isdir(p):  # a run folder: its model.laq (a file keeps its spelling: ./general)
            try:
                p = os.fspath(_native.model_file(p))
            except ValueError as exc:
                raise LaqFormatError(str(exc)) from None
        try:
            native = _native.Model(p)
        except OSError as exc:  # missing, a FIFO, a device, no permission: the core's one line
            raise LaqFormatError(str(exc)) from None
        return cls(native, p)

    @classmethod
    def from_bytes(cls, data: bytes, name: str = "<bytes>") -> LaqModel:
        return cls(_native.Model.from_bytes(bytes(data)), name)

    # -- adaptation ---------------------------------------------------------------------

    def adapt(
        self,
        paths: Iterable[Any] | PathLike = (),
        manifest: PathLike | None = None,
        workers: int | None = None,
        source: str | None = None,
        balance: bool = True,
        std: str = "widen",
        labels: Sequence[str] | None = None,
        sample_rate: int | None = None,
    ) -> LaqModel:
        """A copy of this model adapted to a new room from unlabelled audio: its input
        statistics re-estimated on `paths` (files, folders searched recursively, and
        waveforms: numpy arrays or torch tensors of one utterance each, at `sample_rate`,
        e.g. clips recorded from a microphone) and/or the files of a CSV `manifest`
        (labels ignored), and (`balance`) its output bias
        shifted so those clips spread over the labels. The mean becomes the audio's; the
        std (`std`) the larger of the model's and the audio's per feature ("widen"), the
        audio's own ("target") or the model's ("model"). `labels`: the labels the audio
        holds, when you know it holds only some of the model's (a room of angry, happy,
        neutral and sad speech): the balance spreads the clips over these alone and the
        model's other labels are set out of reach. The adapted model records what it
        was adapted on in `metadata["provenance"]["adaptations"]`; `.save(path)` writes it.
        Unreadable files are left out (listed in `.adaptation.failures`); too little usable
        audio raises `serlaq.runtime.adapt.AdaptError` saying how much more is needed.
        """
        from serlaq.runtime.adapt import adapt

        model, result = adapt(
            self,
            paths,
            manifest=manifest,
            workers=workers,
            source=source,
            balance=balance,
            std=std,
            labels=labels,
            sample_rate=sample_rate,
        )
        model.adaptation = result
        return model

    def save(self, path: PathLike) -> None:
        """Write this model's `.laq` file to `path` atomically (temporary file, fsync, rename),
        making the folders above it. ValueError (one line) for `general`, the shipped model's
        name, which every load would read back as the shipped model (`./general` is a file),
        and for a path that is a folder or cannot be made."""
        p = os.fspath(path)
        if p == _native.GENERAL:
            raise ValueError(
                f"{p}: the shipped model's name, so a file saved as that would be read back as the shipped model; "
                f"save as ./{p} or another name"
            )
        _native.prepare_output(p, "model.laq")
        _native.save_model_bytes(p, _native.model_bytes(self._native))

    def __reduce__(self) -> tuple[Any, ...]:
        # a model pickles as its file's bytes (data, never code): workers of a process
        # pool get a model that predicts as this one does
        return (LaqModel.from_bytes, (_native.model_bytes(self._native), self.path))

    @property
    def temperature(self) -> float:
        """The calibration temperature the logits are divided by before softmax (1: none stored)."""
        return float(_native.model_calibration(self._native)[0])

    @property
    def ood_threshold(self) -> float:
        """The out-of-domain score above which a clip lies far outside the training data."""
        return float(_native.model_calibration(self._native)[1])

    def ood_scores(self, features: Any) -> list[float]:
        """Out-of-domain scores of raw feature rows (n, d) or one vector (d,), as predictions
        carry them (`Prediction.ood`): with the file's reference (`ood.reference`, the
        shipped model has one), the larger of its last hidden layer's distance from the
        training data and its features' RMS z-score, in threshold units; without, the RMS
        z-score of the standardized features. About 1 at home."""
        return list(_native.model_ood_scores(self._native, self._features_array(features)))

    # -- what the file holds -----------------------------------------------------------

    @property
    def feature_config(self) -> FeatureConfig:
        """The feature spec as the training side's `FeatureConfig` (imports pydantic)."""
        from serlaq.feature_config import FeatureConfig

        return FeatureConfig.model_validate(self.feature_spec)

    @property
    def sample_rate(self) -> int:
        return int(self.feature_spec["sample_rate"])

    @property
    def min_samples(self) -> int:
        return int(self._native.min_samples)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def input_dim(self) -> int:
        return int(self._native.input_dim)

    @property
    def num_params(self) -> int:
        return int(self._info["params"])

    @property
    def avg_bits(self) -> float:
        """Eq. 6: the weight-count-weighted mean bit-width over the quantized layers."""
        return float(self._info["avg_bits"])

    @property
    def size_bytes(self) -> int:
        """The whole `.laq` file: packed weights, fp32 biases/scales, norm stats, header."""
        return int(self._info["size_bytes"])

    @property
    def payload_bytes(self) -> int:
        """Packed weights + their scales/zeros + fp32 biases (the paper's model size)."""
        return int(self._info["payload_bytes"])

    @property
    def fp32_size_bytes(self) -> int:
        """The same MLP with fp32 weights and biases."""
        return int(self._info["fp32_size_bytes"])

    @property
    def compression_ratio(self) -> float:
        return float(self._info["compression_ratio"])

    @property
    def format_version(self) -> int:
        return int(self._native.version)

    def summary(self) -> dict[str, Any]:
        """Everything `serlaq info` shows, as plain JSON-ready data (`provenance` first
        when the file has it)."""
        return json.loads(self._native.info(self.path, json=True))

    def describe(self) -> str:
        """The human-readable `serlaq info` text."""
        return self._native.info(self.path)

    def __repr__(self) -> str:
        shapes = " -> ".join([str(self.input_dim), *(str(layer.rows) for layer in self.layers)])
        return (
            f"LaqModel({self.path!r}, {shapes}, labels={self.labels}, "
            f"avg_bits={self.avg_bits:.2f}, size={self.size_bytes} B)"
        )

    # -- features -> scores ------------------------------------------------------------

    def logits(self, features: Any) -> np.ndarray:
        """Raw (unstandardized) feature vectors (n, d) or (d,) -> logits (n, C) or (C,).

        Non-finite features are an error naming the row (they would silently give one label).
        """
        return self._native.forward(self._features_array(features))

    def predict_proba(self, features: Any) -> np.ndarray:
        """Raw feature vectors (n, d) or (d,) -> class probabilities (n, C) or (C,), float64."""
        return self._native.probabilities(self._features_array(features))

    def predict_features(self, features: Any, top_k: int | None = None) -> Prediction | list[Prediction]:
        """Precomputed raw feature vectors -> prediction(s): (d,) gives one, (n, d) a list;
        each carries its out-of-domain score (`ood`)."""
        _check_top_k(top_k)
        x = self._features_array(features)
        scored = [
            Prediction.from_probabilities(self.labels, p, top_k=top_k, ood=ood) for p, ood in self._native.scored(x)
        ]
        return scored[0] if x.ndim == 1 else scored

    def _features_array(self, features: Any) -> np.ndarray:
        import numpy as np

        x = np.asarray(features)
        if x.dtype.kind not in "fiu":
            raise ValueError(f"features must be numeric, got dtype {x.dtype}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_dim:
            raise ValueError(f"features must have shape (n, {self.input_dim}) or ({self.input_dim},), got {x.shape}")
        return x

    # -- audio -> features -------------------------------------------------------------

    def features_from_file(self, path: PathLike) -> np.ndarray:
        """Decode, downmix, resample and extract the raw (d,) feature vector of a file."""
        return self._native.features_file(os.fspath(path))

    def features_from_bytes(self, data: bytes | bytearray | memoryview) -> np.ndarray:
        """The bytes of an encoded file -> its raw (d,) features, decoded as a file is."""
        return self._native.features_bytes(bytes(data), BYTES_SOURCE)

    def features_from_waveform(self, wave: Any) -> np.ndarray:
        """A mono float32 waveform already at the model's rate -> raw (d,) features."""
        import numpy as np

        return self._native.features_wave(np.ascontiguousarray(np.asarray(wave).reshape(-1), dtype=np.float32))

    def prepare_waveform(self, wave: Any, sample_rate: int | None, source: str = "waveform") -> np.ndarray:
        """An in-memory waveform (any dtype, 1-D or 2-D, any rate) -> validated mono
        float32 at the model's rate: the native path a decoded file takes. Errors name
        `source`."""
        from serlaq.waveform import checked_rate, planar_float32

        if sample_rate is None:
            raise AudioError(f"{source}: needs its sample rate, e.g. predict(wave, sample_rate=16000)")
        rate = checked_rate(sample_rate, source)
        planar = planar_float32(wave, source=source)
        return _native.prepare_waveform(planar, rate, self.sample_rate, self.min_samples, source)

    # -- predictions -------------------------------------------------------------------

    def predict(
        self, x: Any, sample_rate: int | None = None, top_k: int | None = None
    ) -> Prediction | list[Prediction]:
        """Predict the emotion of audio.

        x: a path (str / PathLike) -> `Prediction`; a list/tuple of paths -> list of
        `Prediction` (the first unreadable file raises `AudioError`; `predict_files`
        collects per-file failures instead; an empty list gives an empty list); the bytes
        of an encoded file (bytes, bytearray, memoryview: an upload, a blob; any format a
        path takes) -> `Prediction`, errors naming it `<bytes>`; a waveform (numpy array or
        torch tensor, 1-D or (channels, samples), float or PCM integers) with its
        `sample_rate` -> `Prediction`. Any rate from 1 to 384 kHz and any channel count:
        audio is downmixed and resampled to the model's rate.
        """
        _check_top_k(top_k)
        if isinstance(x, (str, os.PathLike)):
            if sample_rate is not None:
                raise AudioError("sample_rate is only for waveforms; a file carries its own rate")
            p = os.fspath(x)
            proba, ood = self._native.predict_file(p)
            return Prediction.from_probabilities(self.labels, proba, path=p, top_k=top_k, ood=ood)
        if isinstance(x, (bytes, bytearray, memoryview)):
            if sample_rate is not None:
                raise AudioError("sample_rate is only for waveforms; a file's bytes carry their own rate")
            proba, ood = self._native.predict_bytes(bytes(x), BYTES_SOURCE)
            return Prediction.from_probabilities(self.labels, proba, top_k=top_k, ood=ood)
        if isinstance(x, (list, tuple)) and not x:
            return []
        if isinstance(x, (list, tuple)) and all(isinstance(p, (str, os.PathLike)) for p in x):
            results = self.predict_files(x, top_k=top_k)
            for r in results:
                if isinstance(r, FileFailure):
                    raise AudioError(r.error)
            return results  # type: ignore[return-value]
        if x is None or isinstance(x, (bool, int, float, dict, set)):
            raise AudioError(
                f"predict: expected a path, a file's bytes, a list of paths or a waveform, got {type(x).__name__}"
            )
        mono = self.prepare_waveform(x, sample_rate)
        ((proba, ood),) = self._native.scored(self._native.features_wave(mono))
        return Prediction.from_probabilities(self.labels, proba, top_k=top_k, ood=ood)

    def predict_files(
        self, paths: Iterable[PathLike], workers: int | None = None, top_k: int | None = None
    ) -> list[Prediction | FileFailure]:
        """Batch prediction over many files on native threads (the GIL released).

        A bad file gives a `FileFailure` with one line naming it; every other file still
        gets its `Prediction`. Results are in input order. `workers`: threads (None: all
        cores).
        """
        return list(self.iter_files(paths, workers=workers, top_k=top_k))

    def iter_files(
        self, paths: Iterable[PathLike], workers: int | None = None, top_k: int | None = None, block: int = 64
    ) -> Iterator[Prediction | FileFailure]:
        """`predict_files` as a stream: results come out in input order, a block at a time."""
        _check_top_k(top_k)
        plist = [os.fspath(p) for p in paths]
        threads = resolve_threads(workers, len(plist))
        step = max(block, block * threads)
        for start in range(0, len(plist), step):
            part = plist[start : start + step]
            for p, (scored, error) in zip(part, self._native.predict_files(part, threads)):
                if scored is None:
                    yield FileFailure(p, error or f"{p}: no result")
                else:
                    proba, ood = scored
                    yield Prediction.from_probabilities(self.labels, proba, path=p, top_k=top_k, ood=ood)

    # -- segment timelines (serlaq.runtime.segments) ----------------------------------

    def segments(
        self,
        x: Any,
        sample_rate: int | None = None,
        window: float = 2.0,
        hop: float = 1.0,
        top_k: int | None = None,
        vad: bool = True,
        vad_db: float = -50.0,
        min_speech: float = 0.25,
        running_norm: bool = False,
        running_prior: float = 20.0,
        running_horizon: float = 600.0,
        running_balance: bool = True,
    ) -> Iterator[Segment]:
        """Cut a long recording into overlapping windows: yields one `Segment` per window
        (label, confidence, probabilities; "silence" where the voice-activity gate finds
        too little speech). `x`: a path (read packet by packet; a file that breaks
        part-way yields the segments before the damage, then raises `AudioError` naming
        the file and the time) or a waveform with its `sample_rate`. Window and hop in
        seconds, rounded to whole STFT hops of the model. VAD: a frame is voiced at or
        above `vad_db` dBFS, a window is speech when `min_speech` of its frames are.
        `running_norm`: each speech window is standardized with the model's statistics
        (weighted as `running_prior` windows) mixed with those of the recording's speech
        windows so far (fading after `running_horizon` windows), and with `running_balance`
        each window's probabilities are divided by the recording's label mix so far: the
        recording adapts the model to its own room as it plays (docs/adapt.md).
        """
        from serlaq.runtime.segments import SegmentOptions, iter_segments

        opts = SegmentOptions(window, hop, vad, vad_db, min_speech, top_k, running_norm, running_prior, running_horizon, running_balance)
        return iter_segments(self, x, sample_rate, opts)

    def segment_file(
        self,
        path: PathLike,
        window: float = 2.0,
        hop: float = 1.0,
        top_k: int | None = None,
        vad: bool = True,
        vad_db: float = -50.0,
        min_speech: float = 0.25,
        running_norm: bool = False,
        running_prior: float = 20.0,
        running_horizon: float = 600.0,
        running_balance: bool = True,
    ) -> SegmentTimeline:
        """A file's segments and, when it broke part-way, the error line (no exception for
        the file itself); `.summary()` gives speech time and shares per emotion."""
        from serlaq.runtime.segments import SegmentOptions, segment_file

        opts = SegmentOptions(window, hop, vad, vad_db, min_speech, top_k, running_norm, running_prior, running_horizon, running_balance)
        return segment_file(self, path, opts)

    def stream(
        self,
        sample_rate: int,
        window: float = 2.0,
        hop: float = 1.0,
        top_k: int | None = None,
        vad: bool = True,
        vad_db: float = -50.0,
        min_speech: float = 0.25,
        source: str = "stream",
        running_norm: bool = False,
        running_prior: float = 20.0,
        running_horizon: float = 600.0,
        running_balance: bool = True,
    ) -> SegmentStream:
        """A live stream at `sample_rate` Hz: `.push(samples)` (any chunk size) returns the
        segments completed so far, `.flush()` the rest; the same segments as `segments()`
        on the whole recording (`running_norm`: as in `segments()`)."""
        from serlaq.runtime.segments import SegmentOptions, SegmentStream

        opts = SegmentOptions(window, hop, vad, vad_db, min_speech, top_k, running_norm, running_prior, running_horizon, running_balance)
        return SegmentStream(self, sample_rate, opts, source)

