"""Clip features: the paper's 180-d (40 MFCC + 12 chroma + 128 mel power, time means) and richer presets.

This is the one module training and inference share: the `.laq` header carries
`FeatureConfig.model_dump()`, and the runtime rebuilds the same `FeatureExtractor` from it.

Definitions follow librosa's defaults (the widely used recipe `mfcc(n_mfcc=40)`,
`chroma_stft`, `melspectrogram`, each `.mean(axis=time)`), computed in torch:

- STFT: periodic Hann window, `center=True` with zero (constant) padding as librosa >= 0.10,
  power 2. It is computed once per clip and all three blocks derive from it.
- mel: slaney mel scale with slaney area normalization (librosa `filters.mel` defaults),
  power (not dB), fmin 0, fmax sr/2.
- MFCC: `10 log10(max(mel, 1e-10))` (ref 1), floored at `max - top_db` (80 dB) over the
  clip, then an orthonormal DCT-II. Because the DCT is linear, the time mean of the MFCCs
  equals the DCT of the time mean of the dB mel spectrum; we use the cheaper form.
- chroma: librosa's `filters.chroma` definition (Gaussian bumps per pitch class, column
  L2-normalized, octave weighting around C5, start at C) built in torch at tuning
  `chroma_tuning` (default 0: no per-clip tuning estimation, unlike `chroma_stft(tuning=None)`,
  so the filterbank is a fixed buffer and the features do not depend on a pitch tracker),
  applied to the magnitude spectrum (the recipe's `chroma_stft(S=np.abs(stft))`) or,
  with `chroma_spectrum="power"`, to the power spectrum (`chroma_stft(y=...)`), then each
  frame is divided by its maximum (norm=inf; all-zero frames stay zero).

Output order is [MFCC, chroma, mel], as in the recipe. Beyond the paper (FeatureConfig
`mel_scale`, `stats`, `delta_stats`; the `rich` preset; rulings in docs/features.md):

- `mel_scale="db"`: the mel block is the floored dB mel the MFCC sees (per band).
- `stats`: pooling over frames, "mean" and/or "std" (population std, ddof 0) of the
  per-frame MFCCs (DCT of each frame's floored dB mel), chroma and mel values; the vector
  is [mfcc_s, chroma_s, mel_s] for each s in `stats`.
- `db_reference` ("absolute" | "peak" | "mean"): every floored dB value minus the clip's
  highest floored dB ("peak") or its mean floored dB over all bands and frames ("mean"):
  a gain on the waveform then changes no feature. Only the mean blocks (MFCC, dB mel)
  move; stds and deltas do not depend on a constant shift. With "mean" the MFCC-0 mean
  (the scaled band mean) is 0 by definition and is stored as exactly 0.
- `delta_stats`: the same statistics of the first-order delta of the per-frame MFCCs
  (`torchaudio.functional.compute_deltas`, `delta_width` frames, each clip's edges
  replicated), appended as [dmfcc_s] for each s.
- `edge_pause_s`: before any of the above, the clip is cut to `edge_span` (at most that many
  seconds before its first and after its last loud block; `edge_floor`: loud over the
  clip's noise floor too); `frame_gate_db` /
  `frame_floor_db` choose which of the remaining frames are pooled (`_gate`).
"""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import Tensor, nn

from serlaq.feature_config import (
    EDGE_BLOCK_S,
    EDGE_ENERGY_RATIO,
    EDGE_FLOOR_DIVISOR,
    EDGE_FLOOR_RATIO,
    FLOOR_QUANTILE,
    FeatureConfig,
)

__all__ = ["FEATURES_VERSION", "FeatureConfig", "FeatureExtractor", "chroma_filterbank", "edge_span"]

# Part of the feature cache key, with a hash of this module's source, feature_config.py,
# data/audio.py and the native module (serlaq.data.cache.code_fingerprint): edits there
# change the key by themselves. Bump this only for a change outside those files.
FEATURES_VERSION = 1


def chroma_filterbank(
    sample_rate: float,
    n_fft: int,
    n_chroma: int = 12,
    tuning: float = 0.0,
    ctroct: float = 5.0,
    octwidth: float | None = 2.0,
) -> Tensor:
    """(n_chroma, n_fft // 2 + 1) chroma weights, librosa `filters.chroma` definition.

    Each FFT bin k > 0 sits at a fractional pitch-class position
    p(k) = n_chroma * log2(f_k / (A440 * 2**(tuning / n_chroma) / 16)); the 0 Hz bin is placed
    1.5 octaves below bin 1. Bin k adds to chroma c with a Gaussian in the circular
    distance d = p(k) - c (wrapped into [-n_chroma/2, n_chroma/2)) of width half the
    local bin spacing (at least one chroma bin); every column is L2-normalized, then
    weighted by a Gaussian over octaves centred at `ctroct` with sd `octwidth`, and the
    rows are rotated so that chroma 0 is C. `n_chroma` 0: an empty (0, n_fft // 2 + 1) matrix.
    """
    f64 = torch.float64
    if n_chroma == 0:
        return torch.zeros((0, n_fft // 2 + 1), dtype=torch.float32)
    freqs = torch.arange(1, n_fft, dtype=f64) * (sample_rate / n_fft)
    a440 = 440.0 * 2.0 ** (tuning / n_chroma)
    pos = n_chroma * torch.log2(freqs / (a440 / 16.0))
    pos = torch.cat([pos[:1] - 1.5 * n_chroma, pos])  # made-up position for 0 Hz
    width = torch.cat([torch.clamp(pos[1:] - pos[:-1], min=1.0), torch.ones(1, dtype=f64)])

    half = float(round(n_chroma / 2))
    dist = pos[None, :] - torch.arange(n_chroma, dtype=f64)[:, None]
    dist = torch.remainder(dist + half + 10 * n_chroma, n_chroma) - half
    weights = torch.exp(-0.5 * (2.0 * dist / width[None, :]) ** 2)

    col_norm = torch.linalg.vector_norm(weights, ord=2, dim=0, keepdim=True)
    weights = weights / torch.where(col_norm < torch.finfo(f64).tiny, 1.0, col_norm)
    if octwidth is not None:
        weights = weights * torch.exp(-0.5 * ((pos / n_chroma - ctroct) / octwidth) ** 2)[None, :]
    weights = torch.roll(weights, -3 * (n_chroma // 12), dims=0)  # start at C, not A
    return weights[:, : n_fft // 2 + 1].to(torch.float32).contiguous()


def edge_span(wave: Tensor, sample_rate: int, keep_s: float, min_samples: int, floor: bool = False) -> tuple[int, int]:
    """[start, end) of a mono clip with at most `keep_s` seconds of quiet lead-in and tail.

    The clip is measured in blocks of `EDGE_BLOCK_S` (whole blocks from its start; a partial
    last block is not measured); a block is loud when its energy (sum of squares, float64) is
    within 40 dB (`EDGE_ENERGY_RATIO`) of the loudest block's and, with `floor`, at least
    10 dB (`EDGE_FLOOR_RATIO`) over the clip's noise floor: block energy number
    `(n - 1) // EDGE_FLOOR_DIVISOR` in rising order (numpy's 10th percentile, method "lower").
    The span runs from `keep_s` before the first loud block to `keep_s` after the last,
    clipped to the clip. A clip shorter than one block, one with no loud block (a flat
    level against the floor line), or one whose span would be shorter than `min_samples`
    (one analysis window) is kept whole. The Rust runtime cuts the same span (`features/edges.rs`).
    """
    length = int(wave.shape[-1])
    block = max(1, math.floor(EDGE_BLOCK_S * sample_rate + 0.5))  # Rust's rounding, not round()'s ties to even
    n = length // block
    if n == 0:
        return 0, length
    energy = wave[: n * block].double().reshape(n, block).square().sum(-1)
    is_loud = energy >= energy.max() * EDGE_ENERGY_RATIO
    if floor:
        noise = energy.sort().values[(n - 1) // EDGE_FLOOR_DIVISOR]
        is_loud &= energy >= noise * EDGE_FLOOR_RATIO
    loud = is_loud.nonzero().flatten()
    if len(loud) == 0:
        return 0, length
    keep = math.floor(keep_s * sample_rate + 0.5)
    start = max(0, int(loud[0]) * block - keep)
    end = min(length, (int(loud[-1]) + 1) * block + keep)
    return (start, end) if end - start >= min_samples else (0, length)


class FeatureExtractor(nn.Module):
    """Waveform(s) at `cfg.sample_rate` -> time-averaged [MFCC, chroma, mel] features.

    `forward(wave)`: (T,) -> (dim,), or (B, T) -> (B, dim) for clips padded with zeros to a
    common length, with `lengths` (B,) giving each clip's true sample count. Because the
    STFT pads with zeros anyway, a zero-padded clip's own frames are unchanged; frames past
    its end are masked out of every mean and of the dB maximum, so batching is exact.

    Every filterbank is built once as a buffer. The mel filterbank (a triangle over a few
    FFT bins per filter: ~98% zeros) is also kept as a sparse CSR matrix for the product.
    """

    window: Tensor
    mel_fb: Tensor
    chroma_fb: Tensor
    dct: Tensor

    def __init__(self, cfg: FeatureConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or FeatureConfig()
        win_length = cfg.win_length or cfg.n_fft
        n_freqs = cfg.n_fft // 2 + 1
        f_max = cfg.f_max if cfg.f_max is not None else cfg.sample_rate / 2
        # Periodic Hann, zero-padded to n_fft in the centre (torch.stft / librosa pad_center).
        window = torch.zeros(cfg.n_fft)
        left = (cfg.n_fft - win_length) // 2
        window[left : left + win_length] = torch.hann_window(win_length, periodic=True)
        self.register_buffer("window", window, persistent=False)
        mel = AF.melscale_fbanks(n_freqs, cfg.f_min, f_max, cfg.n_mels, cfg.sample_rate, norm="slaney", mel_scale="slaney")
        self.register_buffer("mel_fb", mel.T.contiguous(), persistent=False)  # (n_mels, n_freqs)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used here is stable
            warnings.simplefilter("ignore", UserWarning)
            self.register_buffer("mel_csr", self.mel_fb.to_sparse_csr(), persistent=False)
        chroma = chroma_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_chroma, tuning=cfg.chroma_tuning)
        self.register_buffer("chroma_fb", chroma, persistent=False)  # (n_chroma, n_freqs)
        dct = AF.create_dct(cfg.n_mfcc, cfg.n_mels, norm="ortho")  # (n_mels, n_mfcc)
        self.register_buffer("dct", dct.T.contiguous(), persistent=False)  # (n_mfcc, n_mels)
        self.register_buffer("dct_t", dct.contiguous(), persistent=False)
        self._amin = 1e-10
        self._tiny = torch.finfo(torch.float32).tiny

    @property
    def dim(self) -> int:
        return self.cfg.dim

    def forward(self, wave: Tensor, lengths: Tensor | None = None) -> Tensor:
        single = wave.dim() == 1
        x = wave.unsqueeze(0) if single else wave
        if x.dim() != 2:
            raise ValueError(f"expected a waveform of shape (T,) or (B, T), got {tuple(wave.shape)}")
        x = x.to(torch.float32)
        cfg = self.cfg
        if cfg.edge_pause_s is not None:
            x, lengths = self._trim_edges(x, lengths)
        # center=True STFT with zero padding, as frames (B, n_frames, n_fft): same frames as
        # torch.stft, but the spectrum comes out (frames, freqs)-contiguous.
        magnitude, power = self._spectra(x)  # (B, F, n_frames) each, contiguous: what both products want
        batch, n_freqs, n_frames = power.shape
        mask = count = None
        if lengths is not None:
            valid = 1 + torch.as_tensor(lengths, device=x.device).long() // cfg.hop_length
            mask = torch.arange(n_frames, device=x.device)[None, :] < valid[:, None]  # (B, frames)
            count = valid.clamp(max=n_frames).to(torch.float32)[:, None]

        def time_mean(a: Tensor) -> Tensor:  # (B, k, frames) -> (B, k)
            if mask is None:
                return a.mean(-1)
            return (a * mask[:, None, :]).sum(-1) / count

        def time_stat(a: Tensor, stat: str, mean: Tensor | None = None) -> Tensor:
            if stat == "mean":
                return time_mean(a) if mean is None else mean
            # Population std (ddof 0), two-pass: the mean first, then the mean squared deviation.
            dev = a - (time_mean(a) if mean is None else mean)[..., None]
            return time_mean(dev * dev).sqrt()

        # The sparse product wants a 2-D (F, B * frames) operand (a view when B = 1).
        flat = power[0] if batch == 1 else power.transpose(0, 1).reshape(n_freqs, batch * n_frames)
        mel = (self.mel_csr @ flat).reshape(-1, batch, n_frames).transpose(0, 1)  # (B, n_mels, frames)
        db = torch.log10(torch.clamp(mel, min=self._amin)).mul_(10.0)
        if cfg.top_db is not None:
            kept = db if mask is None else db.masked_fill(~mask[:, None, :], -math.inf)
            peak = kept.amax(dim=(-2, -1), keepdim=True)
            db = torch.maximum(db, peak - cfg.top_db)
        length_mask = mask
        if cfg.frame_gate_db is not None or cfg.frame_floor_db is not None:
            mask = self._gate(db, length_mask)
            count = mask.sum(-1, keepdim=True).to(torch.float32)
        db_mean = time_mean(db)
        if cfg.db_reference != "absolute":
            # Level invariance: a gain on the waveform shifts every dB value by one constant,
            # which only the mean blocks see (std and deltas are shift-invariant).
            if cfg.db_reference == "mean":
                ref = db_mean.mean(-1)
            else:
                kept = db if length_mask is None else db.masked_fill(~length_mask[:, None, :], -math.inf)
                ref = kept.amax(dim=(-2, -1))  # the clip's peak, gated frames included (as the floor's)
            db = db - ref[:, None, None]
            db_mean = db_mean - ref[:, None]
        mfcc_mean = db_mean @ self.dct_t  # DCT of the mean = mean of the DCTs
        if cfg.db_reference == "mean":
            # DCT bin 0 is the scaled mean over bands: 0 by definition here. Stored as an
            # exact 0, not float rounding noise a standardizer would blow up.
            mfcc_mean[..., 0] = 0.0
        per_frame_mfcc = None
        if "std" in cfg.stats or cfg.delta_stats:
            per_frame_mfcc = self.dct @ db  # (B, n_mfcc, frames): each frame's MFCCs

        chroma = None
        if cfg.n_chroma:
            spectrum = magnitude if cfg.chroma_spectrum == "magnitude" else power
            raw = self.chroma_fb @ spectrum  # (B, n_chroma, frames), >= 0
            top = raw.amax(dim=-2, keepdim=True)
            chroma = raw / torch.where(top < self._tiny, 1.0, top)

        mel_values, mel_mean = (mel, None) if cfg.mel_scale == "power" else (db, db_mean)
        parts: list[Tensor] = []
        for stat in cfg.stats:
            parts.append(mfcc_mean if stat == "mean" else time_stat(per_frame_mfcc, stat, mfcc_mean))
            if chroma is not None:
                parts.append(time_stat(chroma, stat))
            parts.append(time_stat(mel_values, stat, mel_mean))
        if cfg.delta_stats:
            delta = self._deltas(per_frame_mfcc, length_mask)  # over every frame; pooled over the kept ones
            delta_mean = time_mean(delta)
            parts += [time_stat(delta, stat, delta_mean) for stat in cfg.delta_stats]
        out = torch.cat(parts, dim=-1)
        return out[0] if single else out

    def _trim_edges(self, x: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Each clip of (B, T) cut to its `edge_span`; a batch is packed again from the left
        with the new lengths (zero padding, as the caller's)."""
        cfg = self.cfg
        assert cfg.edge_pause_s is not None
        sizes = [x.shape[-1]] * x.shape[0] if lengths is None else [int(n) for n in lengths]
        spans = [
            edge_span(row[:n], cfg.sample_rate, cfg.edge_pause_s, cfg.min_samples, cfg.edge_floor) for row, n in zip(x, sizes)
        ]
        if x.shape[0] == 1 and lengths is None:
            return x[:, spans[0][0] : spans[0][1]], None
        new = torch.tensor([b - a for a, b in spans], device=x.device)
        out = x.new_zeros((x.shape[0], int(new.max())))
        for i, (a, b) in enumerate(spans):
            out[i, : b - a] = x[i, a:b]
        return out, new

    def _gate(self, db: Tensor, mask: Tensor | None) -> Tensor:
        """(B, frames) mask of the frames pooled: level (mean floored dB over the bands)
        >= max(loudest - frame_gate_db, floor + min(frame_floor_db, (loudest - floor) / 2)),
        floor = the FLOOR_QUANTILE of the clip's levels (linear between order statistics).
        In float64, as the Rust pooling. Pauses and room tone leave the statistics."""
        cfg = self.cfg
        level = db.double().mean(-2)  # (B, frames)
        valid = torch.ones_like(level, dtype=torch.bool) if mask is None else mask
        loudest = level.masked_fill(~valid, -math.inf).amax(-1, keepdim=True)
        threshold = torch.full_like(loudest, -math.inf)
        if cfg.frame_gate_db is not None:
            threshold = loudest - cfg.frame_gate_db
        if cfg.frame_floor_db is not None:
            n = valid.sum(-1, keepdim=True)
            ordered = level.masked_fill(~valid, math.inf).sort(-1).values
            pos = FLOOR_QUANTILE * (n - 1).double()
            lo = pos.floor().long()
            hi = torch.minimum(lo + 1, n - 1)
            low = ordered.gather(-1, lo)
            floor = low + (pos - lo.double()) * (ordered.gather(-1, hi) - low)
            threshold = torch.maximum(threshold, floor + ((loudest - floor) / 2).clamp(max=cfg.frame_floor_db))
        return valid & (level >= threshold)

    def _deltas(self, mfcc: Tensor, mask: Tensor | None) -> Tensor:
        """First-order deltas of (B, n_mfcc, frames) per-frame MFCCs, each clip's own edges replicated.

        `torchaudio.functional.compute_deltas(win_length=delta_width, mode="replicate")`:
        d_t = sum_{n=1..N} n (c_{t+n} - c_{t-n}) / (2 sum n^2), N = (width - 1) / 2, with
        c clamped to the clip's first and last frame. In a padded batch the frames past a
        clip's end are overwritten with its last frame first, so the replicate edge is the
        clip's own, not the batch's.
        """
        if mask is not None:
            last = (mask.sum(-1) - 1).clamp(min=0)  # (B,) index of each clip's last frame
            frames = torch.arange(mfcc.shape[-1], device=mfcc.device)
            index = torch.minimum(frames[None, :], last[:, None])  # (B, frames)
            mfcc = mfcc.gather(-1, index[:, None, :].expand_as(mfcc))
        return AF.compute_deltas(mfcc, win_length=self.cfg.delta_width, mode="replicate")

    def _spectra(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, L) waveforms -> |STFT| and |STFT|^2, each (B, F, n_frames) contiguous.

        center=True STFT with zero padding, as frames (B, n_frames, n_fft): the same frames
        as torch.stft. On CPU (no autograd) the temporaries live in per-thread scratch
        arrays (see `_workspace`) and the complex abs is numpy's vectorized one (~10x
        faster than torch's per-element hypot; same values up to float rounding).
        """
        cfg = self.cfg
        half, n_fft = cfg.n_fft // 2, cfg.n_fft
        batch, length = x.shape
        n_frames, n_freqs = 1 + (length + 2 * half - n_fft) // cfg.hop_length, n_fft // 2 + 1
        scratch = None
        if x.device.type == "cpu" and not x.requires_grad and length > 0:
            scratch = [
                _workspace("padded", (batch, length + 2 * half), np.float32),
                _workspace("frames", (batch, n_frames, n_fft), np.float32),
                _workspace("spec", (batch, n_frames, n_freqs), np.complex64),
                _workspace("magnitude", (batch, n_freqs, n_frames), np.float32),
                _workspace("power", (batch, n_freqs, n_frames), np.float32),
            ]
        if scratch is None or any(a is None for a in scratch):
            frames = F.pad(x, (half, half)).unfold(-1, n_fft, cfg.hop_length)
            spec = torch.fft.rfft(frames * self.window, dim=-1)  # (B, n_frames, F)
            magnitude = spec.abs().transpose(-1, -2).contiguous()
            return magnitude, magnitude.square()
        padded, frames, spec, magnitude, power = scratch
        padded[:, :half] = 0.0
        padded[:, length + half :] = 0.0
        padded_t = torch.from_numpy(padded)
        padded_t[:, half : half + length] = x
        frames_t = torch.from_numpy(frames)
        torch.mul(padded_t.unfold(-1, n_fft, cfg.hop_length), self.window, out=frames_t)
        torch.fft.rfft(frames_t, dim=-1, out=torch.from_numpy(spec))
        np.abs(spec.transpose(0, 2, 1), out=magnitude)
        np.multiply(magnitude, magnitude, out=power)
        return torch.from_numpy(magnitude), torch.from_numpy(power)

    @torch.inference_mode()
    def extract_batch(self, waves: Sequence[Tensor | np.ndarray]) -> Tensor:
        """Features of variable-length clips, (n, dim) float32, in input order.

        Clips run one at a time: on CPU that is faster than zero-padding them into one
        batch (measured: padding wastes frames and the masked means cost more than the
        per-call overhead saved). For an accelerator, pad and call `forward(batch, lengths)`.
        """
        out = torch.empty((len(waves), self.dim), dtype=torch.float32)
        for i, w in enumerate(waves):
            out[i] = self(torch.as_tensor(w, dtype=torch.float32).reshape(-1).to(self.window.device)).cpu()
        return out


def _workspace(name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray | None:
    """A reusable per-thread scratch array of `shape` (None above `_WORKSPACE_MAX` elements).

    The STFT of a clip goes through ~2 MB of temporaries (padded signal, windowed frames,
    complex spectrum, magnitude, power). Fresh buffers that size come from mmap and are
    page-faulted in on every call whenever other work in the process (decoding, another
    library) has made the allocator return memory to the OS: measured 2x slower features
    when clips are interleaved with the librosa recipe. Arrays never leave the forward
    (the returned features are a new tensor), so one set per thread is safe.
    """
    size = math.prod(shape)
    if size > _WORKSPACE_MAX:
        return None
    arrays: dict[str, np.ndarray] = _WORKSPACE.__dict__.setdefault("arrays", {})
    buf = arrays.get(name)
    if buf is None or buf.size < size or buf.dtype != dtype:
        buf = arrays[name] = np.empty(size, dtype=dtype)
    return buf[:size].reshape(shape)


_WORKSPACE = threading.local()
_WORKSPACE_MAX = 1 << 22  # elements per scratch array: 16 MB of float32, about 60 s at 22.05 kHz
