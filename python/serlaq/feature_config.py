"""`FeatureConfig`: how a waveform becomes the feature vector, without importing torch.

The `.laq` header and the run config both carry this model; parsing them (`serlaq info`,
`serlaq fit --config` validation) must not pay for importing torch. The feature code that
uses it is `serlaq.features` (which re-exports `FeatureConfig`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FeatureConfig(BaseModel):
    """How a waveform becomes a feature vector. Defaults reproduce the librosa recipe."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_rate: int = Field(22050, gt=0, description="every clip is resampled to this rate (Hz)")
    n_mfcc: int = Field(40, ge=1, description="MFCC coefficients (block 1)")
    n_chroma: int = Field(12, ge=1, description="chroma bins per octave (block 2)")
    n_mels: int = Field(128, ge=1, description="mel bands (block 3, power; also the MFCC input)")
    n_fft: int = Field(2048, ge=16, description="FFT size (samples)")
    hop_length: int = Field(512, ge=1, description="frame step (samples)")
    win_length: int | None = Field(None, ge=1, description="Hann window length; None = n_fft")
    f_min: float = Field(0.0, ge=0.0, description="lowest mel frequency (Hz)")
    f_max: float | None = Field(None, gt=0.0, description="highest mel frequency (Hz); None = sample_rate / 2")
    top_db: float | None = Field(80.0, gt=0.0, description="dB floor below the clip's maximum before the MFCC DCT")
    chroma_spectrum: Literal["magnitude", "power"] = Field(
        "magnitude", description="spectrum the chroma filterbank sees: |STFT| (the recipe) or |STFT|^2"
    )
    chroma_tuning: float = Field(0.0, ge=-0.5, le=0.5, description="tuning offset in fractions of a chroma bin")

    @model_validator(mode="after")
    def _consistent(self) -> FeatureConfig:
        if self.win_length is not None and self.win_length > self.n_fft:
            raise ValueError(f"win_length ({self.win_length}) must be <= n_fft ({self.n_fft})")
        if self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc ({self.n_mfcc}) must be <= n_mels ({self.n_mels})")
        nyquist = self.sample_rate / 2
        if self.f_max is not None and self.f_max > nyquist:
            raise ValueError(f"f_max ({self.f_max}) must be <= sample_rate / 2 ({nyquist})")
        if self.f_min >= (self.f_max if self.f_max is not None else nyquist):
            raise ValueError(f"f_min ({self.f_min}) must be below f_max")
        return self

    @property
    def dim(self) -> int:
        """Length of the feature vector: n_mfcc + n_chroma + n_mels (180 by default)."""
        return self.n_mfcc + self.n_chroma + self.n_mels

    @property
    def min_samples(self) -> int:
        """Shortest clip accepted: one full analysis window."""
        return self.win_length or self.n_fft

    def block_slices(self) -> dict[str, slice]:
        """Where each block sits in the feature vector."""
        a, b = self.n_mfcc, self.n_mfcc + self.n_chroma
        return {"mfcc": slice(0, a), "chroma": slice(a, b), "mel": slice(b, self.dim)}

    def feature_names(self) -> list[str]:
        return (
            [f"mfcc_{i}" for i in range(self.n_mfcc)]
            + [f"chroma_{i}" for i in range(self.n_chroma)]
            + [f"mel_{i}" for i in range(self.n_mels)]
        )
