"""`FeatureConfig`: how a waveform becomes the feature vector, without importing torch.

The `.laq` header and the run config both carry this model; parsing them (`serlaq info`,
`serlaq fit --config` validation) must not pay for importing torch. The feature code that
uses it is `serlaq.features` (which re-exports `FeatureConfig`); the Rust runtime
(`rust/core/src/features/`) implements the same definitions and enforces the same bounds
(`BOUNDS` below). Definitions and rulings: docs/features.md.

Presets: `preset` names a bundle of defaults. Every field the user does not give is filled
from the preset's values (a before-validator), explicit keys override. `paper` is the
paper's 180-d recipe (time means of 40 MFCC, 12 chroma, 128 power mel bands); `rich` adds
what measured better on inner holdouts; `portable` is `rich` at a common 16 kHz with
level-invariant dB values, `portable-nochroma` the same without chroma,
`portable-gated` the same pooled over the frames within 30 dB of the loudest,
`portable-trimmed` (the default) the same as `portable-nochroma` with a quiet lead-in and
tail cut to 0.15 s, `portable-trimmed-floor` the same cut also through room tone that sits
near the clip's own noise floor (see `PRESETS`). A stored dict without `preset` (an old `.laq` header or
checkpoint) must be read with `FeatureConfig.from_stored`, which reads it as `paper`: old
files keep the features they were trained on whatever the current default preset is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PresetName = Literal["paper", "rich", "portable", "portable-nochroma", "portable-gated", "portable-trimmed", "portable-trimmed-floor"]
Stat = Literal["mean", "std"]

# Every value of a preset that differs from the field defaults below (the field defaults
# ARE the paper preset).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "rich": {"mel_scale": "db", "stats": ("mean", "std"), "delta_stats": ("std",), "n_mels": 64},
    # rich at a common 16 kHz (analysis band 0-8 kHz whatever the file's rate; 64 ms window,
    # 16 ms hop) with every dB value taken relative to the clip's own mean level: chosen on
    # inner cross-corpus folds
    # (docs/features.md, "portable").
    "portable": {
        "mel_scale": "db",
        "stats": ("mean", "std"),
        "delta_stats": ("std",),
        "n_mels": 64,
        "sample_rate": 16000,
        "n_fft": 1024,
        "hop_length": 256,
        "db_reference": "mean",
    },
}
# portable without the chroma blocks (248-d): the pitch class of a voice says more about
# the speaker than about the emotion; chosen on the inner cross-corpus folds
# (docs/features.md, "portable-nochroma").
PRESETS["portable-nochroma"] = {**PRESETS["portable"], "n_chroma": 0}
# portable-nochroma pooling only the frames within 30 dB of the clip's loudest: quiet pauses
# leave the statistics; not the default (a trade across corpora and under noise:
# docs/features.md, "Frame gates").
PRESETS["portable-gated"] = {**PRESETS["portable-nochroma"], "frame_gate_db": 30.0}
# portable-nochroma with at most 0.15 s kept before the first and after the last loud block:
# a recording that starts a second before the speaker reads as the corpora's close-cut
# clips, which it leaves almost untouched (docs/features.md, "Edge pauses"). The default
# since 2026-12-06.
PRESETS["portable-trimmed"] = {**PRESETS["portable-nochroma"], "edge_pause_s": 0.15}
# portable-trimmed whose cut also takes the blocks within 10 dB of the clip's noise floor: a
# lead-in of room tone 20-30 dB under the voice (a noisy room) goes too, where the 40 dB line
# alone keeps it. The `general` model's preset since 2026-12-06; not the default (it also
# takes soft word edges of clips that are nearly all voice: docs/features.md).
PRESETS["portable-trimmed-floor"] = {**PRESETS["portable-trimmed"], "edge_floor": True}
# The preset `FeatureConfig()` (and a config without `features.preset`) gets:
# `portable-trimmed` since 2026-12-06 (a model trained on close-cut clips no longer answers
# one label for a recording with a quiet lead-in; in-corpus and across corpora within a
# seed's spread: docs/features.md, "Edge pauses"); `portable-nochroma` from 2026-12-04,
# `portable` before it, `rich` before that: each keeps its rows.
DEFAULT_PRESET: PresetName = "portable-trimmed"

# Numeric bounds, inclusive unless noted; the Rust FeatureSpec enforces the same numbers
# (tests/test_features.py checks pydantic against this table).
BOUNDS: dict[str, tuple[float, float]] = {
    "sample_rate": (1000, 192000),
    "n_fft": (16, 16384),
    "hop_length": (1, 16384),  # and <= n_fft
    "win_length": (1, 16384),  # and <= n_fft
    "n_mels": (1, 512),
    "n_mfcc": (1, 512),  # and <= n_mels
    "n_chroma": (0, 96),  # 0: no chroma block
    "top_db": (0.0, 300.0),  # exclusive low: (0, 300]
    "frame_gate_db": (0.0, 300.0),  # exclusive low: (0, 300]
    "frame_floor_db": (0.0, 300.0),  # exclusive low: (0, 300]
    "edge_pause_s": (0.0, 60.0),  # exclusive low: (0, 60]
    "chroma_tuning": (-0.5, 0.5),
    "delta_width": (3, 31),  # and odd
}
FLOOR_QUANTILE = 0.1  # a clip's noise floor for `frame_floor_db`: this quantile of its frame levels
EDGE_BLOCK_S = 0.02  # `edge_pause_s`: a clip's level is measured in blocks this long (at the model rate)
EDGE_BELOW_DB = 40.0  # `edge_pause_s`: a block is loud within this many dB of the loudest block's energy
EDGE_ENERGY_RATIO = 1e-4  # 10 ** (-EDGE_BELOW_DB / 10) as a literal, as in the Rust spec (no libm pow decides it)
EDGE_FLOOR_ABOVE_DB = 10.0  # `edge_floor`: a block is loud only this many dB over the clip's floor too
EDGE_FLOOR_RATIO = 10.0  # 10 ** (EDGE_FLOOR_ABOVE_DB / 10) as a literal (as EDGE_ENERGY_RATIO)
EDGE_FLOOR_DIVISOR = 10  # `edge_floor`: the floor is block energy number (n - 1) // 10 in rising order
INPUT_RATE_BOUNDS = (1000, 384000)  # Hz a file or waveform may have before resampling
MAX_CLIP_SECONDS = 3600.0  # longest whole clip; longer: an error pointing at segment mode


class FeatureConfig(BaseModel):
    """How a waveform becomes a feature vector. `preset="paper"` reproduces the librosa recipe."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    preset: PresetName = Field(DEFAULT_PRESET, description="named bundle of defaults: paper (180-d), rich, portable, portable-nochroma, portable-gated, portable-trimmed or portable-trimmed-floor")
    sample_rate: int = Field(22050, ge=1000, le=192000, description="every clip is resampled to this rate (Hz)")
    n_mfcc: int = Field(40, ge=1, le=512, description="MFCC coefficients")
    n_chroma: int = Field(12, ge=0, le=96, description="chroma bins per octave (0: no chroma block)")
    n_mels: int = Field(128, ge=1, le=512, description="mel bands (the mel block, and the MFCC input)")
    n_fft: int = Field(2048, ge=16, le=16384, description="FFT size (samples)")
    hop_length: int = Field(512, ge=1, le=16384, description="frame step (samples), <= n_fft")
    win_length: int | None = Field(None, ge=1, le=16384, description="Hann window length; None = n_fft")
    f_min: float = Field(0.0, ge=0.0, description="lowest mel frequency (Hz)")
    f_max: float | None = Field(None, gt=0.0, description="highest mel frequency (Hz); None = sample_rate / 2")
    top_db: float | None = Field(80.0, gt=0.0, le=300.0, description="dB floor below the clip's maximum (MFCC, dB mel)")
    chroma_spectrum: Literal["magnitude", "power"] = Field(
        "magnitude", description="spectrum the chroma filterbank sees: |STFT| (the recipe) or |STFT|^2"
    )
    chroma_tuning: float = Field(0.0, ge=-0.5, le=0.5, description="tuning offset in fractions of a chroma bin")
    mel_scale: Literal["power", "db"] = Field(
        "power", description="mel block as power (paper) or as the floored dB values the MFCC sees"
    )
    stats: tuple[Stat, ...] = Field(("mean",), min_length=1, description="pooling statistics over frames")
    delta_stats: tuple[Stat, ...] = Field((), description="statistics of the delta-MFCC over frames")
    delta_width: int = Field(9, ge=3, le=31, description="delta window (frames, odd)")
    db_reference: Literal["absolute", "peak", "mean"] = Field(
        "absolute",
        description="dB values relative to 1.0 (absolute), to the clip's highest floored dB (peak) or to its mean "
        "floored dB over bands and frames (mean): peak/mean make the features level-invariant",
    )

    frame_gate_db: float | None = Field(
        None,
        gt=0.0,
        le=300.0,
        description="pool only the frames whose mean floored dB over the bands lies within this many dB of the "
        "clip's loudest frame (pauses and room tone leave the statistics); None = every frame",
    )

    frame_floor_db: float | None = Field(
        None,
        gt=0.0,
        le=300.0,
        description="pool only the frames at least this many dB (at most half the clip's range) above its noise floor, "
        "the 10th percentile of its frame levels: noise in the pauses leaves the statistics too; None = no floor gate",
    )

    edge_pause_s: float | None = Field(
        None,
        gt=0.0,
        le=60.0,
        description="keep at most this many seconds before the clip's first and after its last 20 ms block within "
        "40 dB of its loudest block (a quiet lead-in and tail are cut before the features); None = the whole clip",
    )
    edge_floor: bool = Field(
        False,
        description="with edge_pause_s: a block is loud only when also 10 dB over the clip's noise floor (its 10th "
        "percentile block energy), so room tone in a noisy room is cut too",
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        name = data.get("preset", DEFAULT_PRESET)
        values = PRESETS.get(name) if isinstance(name, str) else None
        if values is None:
            return data  # the Literal check names the bad preset
        return {**values, **data, "preset": name}

    @field_validator("stats", "delta_stats")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"each statistic at most once, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> FeatureConfig:
        if self.hop_length > self.n_fft:
            raise ValueError(f"hop_length ({self.hop_length}) must be <= n_fft ({self.n_fft})")
        if self.win_length is not None and self.win_length > self.n_fft:
            raise ValueError(f"win_length ({self.win_length}) must be <= n_fft ({self.n_fft})")
        if self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc ({self.n_mfcc}) must be <= n_mels ({self.n_mels})")
        nyquist = self.sample_rate / 2
        if self.f_max is not None and self.f_max > nyquist:
            raise ValueError(f"f_max ({self.f_max}) must be <= sample_rate / 2 ({nyquist})")
        if self.f_min >= (self.f_max if self.f_max is not None else nyquist):
            raise ValueError(f"f_min ({self.f_min}) must be below f_max")
        if self.delta_width % 2 == 0:
            raise ValueError(f"delta_width ({self.delta_width}) must be odd")
        if self.edge_floor and self.edge_pause_s is None:
            raise ValueError("edge_floor needs edge_pause_s (the floor line refines the edge cut)")
        return self

    @classmethod
    def from_stored(cls, raw: Mapping[str, Any]) -> FeatureConfig:
        """A config read back from a `.laq` header or a checkpoint: no `preset` key = `paper`.

        Files written before presets existed hold the paper's fields only; reading them
        with the current default preset could fill the new fields with other values.
        """
        if not isinstance(raw, Mapping):
            raise ValueError(f"features: expected an object, got {type(raw).__name__}")
        return cls.model_validate({"preset": "paper", **raw})

    @property
    def block_width(self) -> int:
        """Width of one statistic's [mfcc, chroma, mel] group."""
        return self.n_mfcc + self.n_chroma + self.n_mels

    @property
    def dim(self) -> int:
        """Length of the feature vector (paper preset: 40 + 12 + 128 = 180)."""
        return len(self.stats) * self.block_width + len(self.delta_stats) * self.n_mfcc

    @property
    def min_samples(self) -> int:
        """Shortest clip accepted: one full analysis window."""
        return self.win_length or self.n_fft

    def block_slices(self) -> dict[str, slice]:
        """Where each block sits: "mfcc_mean", "chroma_std", "dmfcc_std", ...

        Layout: for s in stats: [mfcc_s, chroma_s, mel_s]; then for s in delta_stats:
        [dmfcc_s]. "mfcc" / "chroma" / "mel" alias the mean blocks (when "mean" is pooled).
        """
        out: dict[str, slice] = {}
        at = 0
        for stat in self.stats:
            for block, width in (("mfcc", self.n_mfcc), ("chroma", self.n_chroma), ("mel", self.n_mels)):
                out[f"{block}_{stat}"] = slice(at, at + width)
                at += width
        for stat in self.delta_stats:
            out[f"dmfcc_{stat}"] = slice(at, at + self.n_mfcc)
            at += self.n_mfcc
        if "mean" in self.stats:
            out.update({block: out[f"{block}_mean"] for block in ("mfcc", "chroma", "mel")})
        return out

    def feature_names(self) -> list[str]:
        """One name per element: "mfcc_3" for the means (as before presets), "mel_std_7", "dmfcc_std_0"."""
        names: list[str] = []
        blocks = [(f"{b}_{s}", b if s == "mean" else f"{b}_{s}") for s in self.stats for b in ("mfcc", "chroma", "mel")]
        blocks += [(f"dmfcc_{s}", f"dmfcc_{s}") for s in self.delta_stats]
        slices = self.block_slices()
        for key, prefix in blocks:
            sl = slices[key]
            names += [f"{prefix}_{i}" for i in range(sl.stop - sl.start)]
        return names
