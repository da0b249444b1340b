"""Waveform augmentation for training (`data.augment`): rooms, microphones, levels, rates.

Each training clip gets `copies` augmented versions besides its clean one. A copy runs the
enabled transforms in a fixed order, each with its probability `p`:

    pause -> speed -> pitch -> reverb -> eq -> resample -> noise -> gain

- `pause`: a recording started before the speaker and stopped after: room tone (white
  noise `level_db` below the clip's RMS) of a length drawn from `seconds` before and,
  drawn again, after the clip.
- `speed`: speed perturbation (tempo and pitch together, as in Kaldi's): the clip is read
  as if recorded at `factor` x the rate and resampled back.
- `pitch`: the voice `semitones` higher or lower at the same tempo: a phase-vocoder time
  stretch by the pitch ratio, then `speed` by that ratio (the stretch undone, the pitch moved).
- `reverb`: a synthetic room: the clip convolved with direct sound plus an exponentially
  decaying noise tail of reverberation time `rt60` seconds, at a direct-to-reverberant
  energy ratio `drr_db`.
- `eq`: a microphone's colour: a spectral tilt of `tilt_db_per_octave` around 1 kHz and a
  second-order low cut at `low_cut_hz`.
- `resample`: down to one of `rates` and back (band-limiting to rate/2 for rates below the
  feature rate), through the project's one resampler (`_native.resample`).
- `noise`: additive noise of spectral slope 1/f^`color` (0 white, 1 pink, 2 brown) at an
  SNR drawn from `snr_db` (signal power over the whole clip).
- `gain`: a level change of `db` decibels (not clipped: features see the scaled signal).

`reverb` and `eq` keep the clip's RMS, so only `gain` changes the level. Every draw comes
from a generator seeded by (seed, the file's SHA-256, copy index): the same seed gives the
same samples in any thread order, and `augmented_features` caches each copy's features
under (file content, feature config and code, augment parameters, seed, copy).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torchaudio.functional as AF
from torch import Tensor

from serlaq.config import AUGMENT_ORDER as ORDER
from serlaq.data.audio import resample

if TYPE_CHECKING:
    from serlaq.config import AugmentConfig

PITCH_FFT, PITCH_HOP = 512, 128  # at the clip's own rate: 32 ms at 16 kHz, 21 ms at 24 kHz, fine enough in time and frequency for a voice


def seed_for(seed: int, digest: str, copy: int) -> int:
    """The generator seed of one copy of one file (64 bits of SHA-256, thread-order free)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{digest}:{copy}".encode()).digest()[:8], "little") >> 1


def params_key(cfg: AugmentConfig) -> str:
    """Short hash of the augment parameters that change the audio (not `copies`, not `seed`) and of this module."""
    body = {name: getattr(cfg, name).model_dump(mode="json") if getattr(cfg, name) is not None else None for name in ORDER}
    body["code"] = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()  # an edited transform misses the cache
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _uniform(g: torch.Generator, bounds: Sequence[float]) -> float:
    lo, hi = float(bounds[0]), float(bounds[1])
    return lo + (hi - lo) * float(torch.rand((), generator=g, dtype=torch.float64))


def _rms(x: Tensor) -> Tensor:
    return x.double().pow(2).mean().sqrt().float()


def _keep_rms(out: Tensor, ref: Tensor) -> Tensor:
    r = _rms(out)
    return out * (_rms(ref) / r) if r > 0 else out


def _shape_spectrum(x: Tensor, gain: Tensor) -> Tensor:
    n = x.shape[-1]
    return torch.fft.irfft(torch.fft.rfft(x.double()) * gain, n=n).float()


def speed(x: Tensor, rate: int, factor: float) -> Tensor:
    return torch.from_numpy(resample(x.numpy(), max(1, round(rate * factor)), rate).copy())


def pitch(x: Tensor, rate: int, semitones: float) -> Tensor:
    ratio = 2 ** (semitones / 12)
    n = x.shape[-1]
    if n < PITCH_FFT or ratio == 1.0:
        return x
    window = torch.hann_window(PITCH_FFT, dtype=torch.float64)
    spec = torch.stft(x.double(), PITCH_FFT, PITCH_HOP, window=window, return_complex=True)
    advance = torch.linspace(0, math.pi * PITCH_HOP, spec.shape[-2], dtype=torch.float64)[..., None]
    stretched = AF.phase_vocoder(spec, 1 / ratio, advance)
    longer = torch.istft(stretched, PITCH_FFT, PITCH_HOP, window=window, length=round(n * ratio))
    y = speed(longer.float(), rate, ratio)
    y = torch.nn.functional.pad(y[:n], (0, max(0, n - y.shape[-1])))
    return _keep_rms(y, x)


def reverb(x: Tensor, rate: int, rt60: float, drr_db: float, g: torch.Generator) -> Tensor:
    n_ir = max(2, int(min(1.5 * rt60, 2.0) * rate))
    t = torch.arange(n_ir, dtype=torch.float64) / rate
    tail = torch.randn(n_ir, generator=g, dtype=torch.float64) * torch.exp(-3 * math.log(10) * t / rt60)
    tail[0] = 0.0
    tail *= math.sqrt(10 ** (-drr_db / 10) / float(tail.pow(2).sum()))  # direct (energy 1) / tail energy = drr
    tail[0] = 1.0
    wet = AF.fftconvolve(x.double(), tail)[: x.shape[-1]]
    return _keep_rms(wet.float(), x)


def eq(x: Tensor, rate: int, tilt_db_per_octave: float, low_cut_hz: float) -> Tensor:
    f = torch.fft.rfftfreq(x.shape[-1], 1 / rate).double()
    db = (tilt_db_per_octave * torch.log2(f.clamp(min=50.0) / 1000.0)).clamp(-24.0, 24.0)
    gain = 10 ** (db / 20)
    if low_cut_hz > 0:
        r4 = (f / low_cut_hz) ** 4
        gain = gain * torch.sqrt(r4 / (1 + r4))
    return _keep_rms(_shape_spectrum(x, gain), x)


def band_limit(x: Tensor, rate: int, via: int) -> Tensor:
    n = x.shape[-1]
    y = resample(resample(x.numpy(), rate, via), via, rate)
    y = torch.from_numpy(np.ascontiguousarray(y[:n]))
    return torch.nn.functional.pad(y, (0, n - y.shape[-1]))


def pause(x: Tensor, rate: int, before: float, after: float, level_db: float, g: torch.Generator) -> Tensor:
    tone = float(_rms(x)) * 10 ** (level_db / 20)
    pads = [torch.randn(int(rate * t), generator=g) * tone for t in (before, after)]
    return torch.cat([pads[0], x, pads[1]])


def noise(x: Tensor, rate: int, snr_db: float, color: float, g: torch.Generator) -> Tensor:
    n = x.shape[-1]
    white = torch.randn(n, generator=g, dtype=torch.float64)
    if color != 0:
        f = torch.fft.rfftfreq(n, 1 / rate).double().clamp(min=20.0)
        white = torch.fft.irfft(torch.fft.rfft(white) * f ** (-color / 2), n=n)
    p_signal = float(x.double().pow(2).mean())
    p_noise = float(white.pow(2).mean())
    if p_noise == 0 or p_signal == 0:
        return x
    scale = math.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10)))
    return (x.double() + scale * white).float()


def augment(x: Tensor, rate: int, cfg: AugmentConfig, g: torch.Generator) -> Tensor:
    """One augmented copy of mono float32 `x` at `rate` (the draws come from `g` in ORDER)."""
    for name in ORDER:
        spec = getattr(cfg, name)
        if spec is None:
            continue
        # Each transform draws all its numbers, applied or not, so enabling one never shifts another's draws.
        apply = float(torch.rand((), generator=g, dtype=torch.float64)) < spec.p
        if name == "pause":
            before, after, level = _uniform(g, spec.seconds), _uniform(g, spec.seconds), _uniform(g, spec.level_db)
            sub = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (), generator=g)))
            x = pause(x, rate, before, after, level, sub) if apply else x
        elif name == "speed":
            factor = _uniform(g, spec.factor)
            x = speed(x, rate, factor) if apply else x
        elif name == "pitch":
            semitones = _uniform(g, spec.semitones)
            x = pitch(x, rate, semitones) if apply else x
        elif name == "reverb":
            rt60, drr = _uniform(g, spec.rt60), _uniform(g, spec.drr_db)
            sub = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (), generator=g)))
            x = reverb(x, rate, rt60, drr, sub) if apply else x
        elif name == "eq":
            tilt, cut = _uniform(g, spec.tilt_db_per_octave), _uniform(g, spec.low_cut_hz)
            x = eq(x, rate, tilt, cut) if apply else x
        elif name == "resample":
            via = spec.rates[int(torch.randint(0, len(spec.rates), (), generator=g))]
            x = band_limit(x, rate, via) if apply else x
        elif name == "noise":
            snr, color = _uniform(g, spec.snr_db), _uniform(g, spec.color)
            sub = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (), generator=g)))
            x = noise(x, rate, snr, color, sub) if apply else x
        elif name == "gain":
            db = _uniform(g, spec.db)
            x = x * 10 ** (db / 20) if apply else x
    return x.contiguous()


def augmented_copy(wave: np.ndarray, rate: int, cfg: AugmentConfig, seed: int, digest: str, copy: int) -> np.ndarray:
    """Copy number `copy` of a decoded clip (file SHA-256 `digest`), deterministic in (seed, digest, copy)."""
    g = torch.Generator().manual_seed(seed_for(seed, digest, copy))
    return augment(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)), rate, cfg, g).numpy()


def cache_name(digest: str, seed: int, copy: int) -> Path:
    return Path(digest[:2]) / f"{digest}-s{seed}-c{copy}.npy"
