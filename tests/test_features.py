"""The torch features against librosa's definitions (librosa is a test-only dependency).

Tolerance: per block, max |ours - librosa| / max |librosa| <= 1e-4 (we measure ~1e-6:
both sides are float32, they differ only in summation order). Both sides get the same
samples at the same rate, so resampling is not part of the comparison.
"""

from __future__ import annotations

import math

import librosa
import numpy as np
import pydantic
import pytest
import torch
from conftest import tone

from serlaq.data.audio import load_audio
import serlaq.feature_config as feature_config
from serlaq.feature_config import BOUNDS
from serlaq.features import FeatureConfig, FeatureExtractor, chroma_filterbank

REL_TOL = 1e-4


def rel_err(ours: np.ndarray, ref: np.ndarray) -> float:
    if ref.size == 0:  # an empty block (n_chroma 0): equal when both are empty
        return 0.0 if ours.size == 0 else float("inf")
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


def librosa_blocks(y: np.ndarray, cfg: FeatureConfig) -> dict[str, np.ndarray]:
    """The librosa recipe with our settings, every block of `cfg` (keys as `block_slices`).

    mfcc, chroma_stft (tuning fixed), melspectrogram (or power_to_db of it); statistics
    with numpy over frames (np.std: population std); deltas with `librosa.feature.delta`
    (Savitzky-Golay slope over `delta_width` frames, mode="nearest": replicated edges).
    """
    kw = dict(sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length)
    mel = librosa.feature.melspectrogram(y=y, n_mels=cfg.n_mels, fmin=cfg.f_min, fmax=cfg.f_max, **kw)
    db = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=cfg.top_db)
    if cfg.db_reference != "absolute":  # dB relative to the clip's own level
        db = db - (db.max() if cfg.db_reference == "peak" else db.mean())
    mfcc = librosa.feature.mfcc(S=db, n_mfcc=cfg.n_mfcc)
    if cfg.n_chroma == 0:  # librosa needs n_chroma >= 1; ours has empty chroma blocks
        chroma = np.zeros((0, mfcc.shape[1]), np.float32)
    elif cfg.chroma_spectrum == "magnitude":
        stft = np.abs(librosa.stft(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length))
        chroma = librosa.feature.chroma_stft(S=stft, sr=cfg.sample_rate, n_chroma=cfg.n_chroma, tuning=cfg.chroma_tuning)
    else:
        chroma = librosa.feature.chroma_stft(y=y, n_chroma=cfg.n_chroma, tuning=cfg.chroma_tuning, **kw)
    per_frame = {"mfcc": mfcc, "chroma": chroma, "mel": mel if cfg.mel_scale == "power" else db}
    pool = {"mean": lambda a: a.mean(axis=1), "std": lambda a: a.std(axis=1)}
    out = {f"{block}_{s}": pool[s](a) for s in cfg.stats for block, a in per_frame.items()}
    if cfg.delta_stats:
        delta = librosa.feature.delta(mfcc, width=cfg.delta_width, order=1, mode="nearest")
        out.update({f"dmfcc_{s}": pool[s](delta) for s in cfg.delta_stats})
    if "mean" in cfg.stats:
        out.update({block: out[f"{block}_mean"] for block in per_frame})
    return out


def signals(sr: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    t = np.arange(int(1.3 * sr)) / sr
    chirp = (0.4 * np.sin(2 * np.pi * (100 * t + 900 * t**2))).astype(np.float32)
    gapped = tone(1.0, sr, freq=330.0)
    gapped[int(0.3 * sr) : int(0.7 * sr)] = 0.0  # exact-zero frames: silent chroma frames stay 0
    return {
        "tone": tone(1.7, sr),
        "chirp": chirp,
        "noise": (0.1 * rng.standard_normal(int(0.8 * sr))).astype(np.float32),
        "gapped": gapped,
        "short": tone(0.1, sr, freq=500.0),  # fewer samples than 2 windows: edge frames dominate
    }


def test_paper_preset_is_the_papers_180_dims() -> None:
    assert FeatureConfig() == FeatureConfig(preset=feature_config.DEFAULT_PRESET)
    cfg = FeatureConfig(preset="paper")
    assert (cfg.sample_rate, cfg.n_mfcc, cfg.n_chroma, cfg.n_mels, cfg.n_fft, cfg.hop_length) == (22050, 40, 12, 128, 2048, 512)
    assert cfg.dim == 180 and FeatureExtractor(cfg).dim == 180
    assert cfg.preset == "paper" and (cfg.mel_scale, cfg.stats, cfg.delta_stats) == ("power", ("mean",), ())
    paper = {"mfcc": slice(0, 40), "chroma": slice(40, 52), "mel": slice(52, 180)}
    assert cfg.block_slices() == {**paper, **{f"{k}_mean": v for k, v in paper.items()}}
    assert cfg.feature_names()[:2] == ["mfcc_0", "mfcc_1"] and cfg.feature_names()[-1] == "mel_127"
    assert len(cfg.feature_names()) == 180


def test_config_round_trips_through_json_and_rejects_bad_fields() -> None:
    cfg = FeatureConfig(n_mfcc=20, chroma_spectrum="power")
    assert FeatureConfig.model_validate_json(cfg.model_dump_json()) == cfg
    with pytest.raises(pydantic.ValidationError, match="n_mfc"):
        FeatureConfig(n_mfc=20)  # unknown key
    with pytest.raises(pydantic.ValidationError, match="win_length"):
        FeatureConfig(win_length=4096)
    with pytest.raises(pydantic.ValidationError, match="n_mfcc"):
        FeatureConfig(n_mfcc=200)
    with pytest.raises(pydantic.ValidationError, match="f_max"):
        FeatureConfig(f_max=20000.0, sample_rate=16000)


@pytest.mark.parametrize("n_chroma,tuning", [(12, 0.0), (12, 0.25), (24, -0.1)])
@pytest.mark.parametrize("sr,n_fft", [(22050, 2048), (16000, 1024)])
def test_chroma_filterbank_is_librosas(sr: int, n_fft: int, n_chroma: int, tuning: float) -> None:
    ours = chroma_filterbank(sr, n_fft, n_chroma, tuning=tuning).numpy()
    ref = librosa.filters.chroma(sr=sr, n_fft=n_fft, n_chroma=n_chroma, tuning=tuning)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)


CONFIGS = {
    "paper": FeatureConfig(preset="paper"),
    "default": FeatureConfig(),
    "power-chroma": FeatureConfig(preset="paper", chroma_spectrum="power"),
    "16k-small": FeatureConfig(preset="paper", sample_rate=16000, n_fft=1024, hop_length=256, win_length=800, n_mels=64, n_mfcc=20, f_min=50.0, f_max=7000.0, top_db=60.0),
    "no-top-db": FeatureConfig(preset="paper", top_db=None, chroma_tuning=0.2),
    "db-mel": FeatureConfig(preset="paper", mel_scale="db"),
    "std": FeatureConfig(preset="paper", stats=("mean", "std")),
    "std-only-power-chroma": FeatureConfig(preset="paper", stats=("std",), chroma_spectrum="power"),
    "rich": FeatureConfig(preset="rich"),
    "rich-128-top-db-120": FeatureConfig(preset="rich", n_mels=128, top_db=120.0),
    "deltas-w5-16k": FeatureConfig(sample_rate=16000, n_fft=1024, hop_length=256, n_mels=40, n_mfcc=13, delta_stats=("mean", "std"), delta_width=5, mel_scale="db", top_db=60.0),
    "std-then-mean-w31": FeatureConfig(stats=("std", "mean"), delta_stats=("std",), delta_width=31),
    "portable": FeatureConfig(preset="portable"),
    "portable-nochroma": FeatureConfig(preset="portable-nochroma"),
    "db-re-peak-power-mel": FeatureConfig(preset="paper", db_reference="peak", stats=("mean", "std")),
}


@pytest.mark.parametrize("cfg_name", CONFIGS)
def test_each_block_matches_librosa(cfg_name: str) -> None:
    cfg = CONFIGS[cfg_name]
    extractor = FeatureExtractor(cfg)
    for name, y in signals(cfg.sample_rate).items():
        ours = extractor(torch.from_numpy(y)).numpy()
        assert ours.shape == (cfg.dim,) and ours.dtype == np.float32
        ref = librosa_blocks(y, cfg)
        for block, sl in cfg.block_slices().items():
            err = rel_err(ours[sl], ref[block])
            assert err <= REL_TOL, f"{cfg_name}/{name}/{block}: relative error {err:.2e}"


def test_synthetic_speech_matches_librosa(tiny_corpus) -> None:
    cfg = FeatureConfig()
    path = sorted(tiny_corpus.rglob("*.wav"))[0]
    y = load_audio(path, cfg.sample_rate)
    ours = FeatureExtractor(cfg)(torch.from_numpy(y)).numpy()
    ref = librosa_blocks(y, cfg)
    for block, sl in cfg.block_slices().items():
        assert rel_err(ours[sl], ref[block]) <= REL_TOL, block


def test_padded_batch_with_lengths_equals_one_clip_at_a_time() -> None:
    extractor = FeatureExtractor()
    waves = [tone(0.6, freq=200.0), tone(1.1, freq=300.0, seed=1), tone(0.3, freq=440.0, seed=2)]
    single = torch.stack([extractor(torch.from_numpy(w)) for w in waves])
    longest = max(len(w) for w in waves)
    batch = torch.zeros(len(waves), longest)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(w)
    lengths = torch.tensor([len(w) for w in waves])
    padded = extractor(batch, lengths)
    torch.testing.assert_close(padded, single, rtol=1e-5, atol=1e-5)
    # Without lengths the padding would count as signal: the short clips' means change.
    assert not torch.allclose(extractor(batch)[2], single[2], rtol=1e-3)
    torch.testing.assert_close(extractor.extract_batch(waves), single, rtol=1e-6, atol=1e-6)


def test_extractor_is_pure_buffers_and_rejects_bad_shapes() -> None:
    extractor = FeatureExtractor()
    assert list(extractor.parameters()) == []
    assert extractor.state_dict() == {}  # rebuilt from the config, never stored
    with pytest.raises(ValueError, match="shape"):
        extractor(torch.zeros(2, 2, 4096))


def test_features_differ_between_tones() -> None:
    # rich: 2048-point frames at 22.05 kHz resolve A3 and C4 (portable's 1024 at 16 kHz,
    # 15.6 Hz bins, is too coarse below ~300 Hz for a one-bin chroma peak)
    cfg = FeatureConfig(preset="rich")
    extractor = FeatureExtractor(cfg)
    a = extractor(torch.from_numpy(tone(1.0, freq=220.0)))
    b = extractor(torch.from_numpy(tone(1.0, freq=261.63)))  # A3 vs C4: chroma peaks move
    sl = cfg.block_slices()["chroma"]
    assert int(a[sl].argmax()) == 9 and int(b[sl].argmax()) == 0  # chroma 0 is C, 9 is A


def test_scratch_buffers_carry_nothing_between_clips() -> None:
    """The CPU path reuses per-thread scratch arrays: a short clip after a long one (stale
    samples past its end) must give what the allocation-per-call path gives."""
    extractor = FeatureExtractor()
    long, short = tone(1.5, freq=300.0, seed=4), tone(0.2, freq=500.0, seed=5)
    extractor(torch.from_numpy(long))
    reused = extractor(torch.from_numpy(short))
    fresh = extractor(torch.from_numpy(short).requires_grad_()).detach()  # autograd: no scratch
    # float32 rounding of the two paths' sums (the clip-mean dB reference adds one over
    # thousands of values) stays below 1e-5; stale samples move features by far more
    torch.testing.assert_close(reused, fresh, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(extractor(torch.from_numpy(long)), extractor(torch.from_numpy(long).requires_grad_()).detach(), rtol=1e-5, atol=1e-5)


# --- presets, layout, bounds -----------------------------------------------------------


def test_rich_preset_layout_names_and_overrides() -> None:
    cfg = FeatureConfig(preset="rich")
    assert (cfg.mel_scale, cfg.stats, cfg.delta_stats, cfg.n_mels) == ("db", ("mean", "std"), ("std",), 64)
    assert cfg.dim == 2 * (40 + 12 + 64) + 40 == FeatureExtractor(cfg).dim == 272
    sl = cfg.block_slices()
    order = ["mfcc_mean", "chroma_mean", "mel_mean", "mfcc_std", "chroma_std", "mel_std", "dmfcc_std"]
    assert [k for k in sl if k in order] == order
    assert [sl[k].start for k in order] == [0, 40, 52, 116, 156, 168, 232] and sl["dmfcc_std"].stop == 272
    assert sl["mel"] == sl["mel_mean"]
    names = cfg.feature_names()
    assert len(names) == len(set(names)) == 272
    assert names[116] == "mfcc_std_0" and names[232] == "dmfcc_std_0" and names[-1] == "dmfcc_std_39"
    # Explicit keys override the preset's values; the rest still come from the preset.
    mine = FeatureConfig(preset="rich", n_mels=128, delta_stats=())
    assert (mine.n_mels, mine.delta_stats, mine.mel_scale, mine.dim) == (128, (), "db", 360)
    assert FeatureConfig.model_validate_json(mine.model_dump_json()) == mine
    assert FeatureConfig.model_validate(cfg.model_dump(mode="json")) == cfg
    no_mean = FeatureConfig(preset="paper", stats=("std",))
    assert "mfcc" not in no_mean.block_slices() and no_mean.feature_names()[0] == "mfcc_std_0"
    with pytest.raises(pydantic.ValidationError, match="preset"):
        FeatureConfig(preset="fancy")
    with pytest.raises(pydantic.ValidationError, match="at most once"):
        FeatureConfig(stats=("mean", "mean"))
    with pytest.raises(pydantic.ValidationError, match="stats"):
        FeatureConfig(stats=())
    with pytest.raises(pydantic.ValidationError, match="stats"):
        FeatureConfig(delta_stats=("max",))


def test_stored_config_without_preset_reads_as_paper_whatever_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    old_header = {k: v for k, v in FeatureConfig(preset="paper").model_dump(mode="json").items()
                  if k not in ("preset", "mel_scale", "stats", "delta_stats", "delta_width")}  # fmt: skip
    monkeypatch.setattr(feature_config, "DEFAULT_PRESET", "rich")
    assert FeatureConfig().preset == "rich" and FeatureConfig().dim == 272  # the default follows DEFAULT_PRESET
    assert FeatureConfig.model_validate(old_header).mel_scale == "db"  # why from_stored exists
    stored = FeatureConfig.from_stored(old_header)
    assert stored.preset == "paper" and stored.dim == 180 and stored.mel_scale == "power"
    rich = FeatureConfig(preset="rich").model_dump(mode="json")
    assert FeatureConfig.from_stored(rich) == FeatureConfig(preset="rich")  # a stored preset wins
    with pytest.raises(ValueError, match="object"):
        FeatureConfig.from_stored([1, 2])  # type: ignore[arg-type]


def _ok(**kw: object) -> bool:
    try:
        FeatureConfig(**kw)
    except pydantic.ValidationError:
        return False
    return True


def test_bounds_are_the_documented_table() -> None:
    """pydantic accepts exactly BOUNDS (the table the Rust FeatureSpec enforces too)."""
    # Fields that must be consistent with others get a config that leaves room.
    roomy = {"n_fft": 16384, "n_mels": 512}
    for name, (lo, hi) in BOUNDS.items():
        extra = {k: v for k, v in roomy.items() if k != name}
        if name == "n_fft":
            extra["hop_length"] = 16
        if name == "n_mels":
            extra["n_mfcc"] = 1
        if name == "sample_rate":
            extra = {}
        if name in ("top_db", "frame_gate_db", "frame_floor_db", "edge_pause_s"):  # exclusive low end: (0, hi]
            assert _ok(**{name: hi}) and not _ok(**{name: hi + 1e-9}) and not _ok(**{name: 0.0}) and _ok(**{name: 1e-6}), name
            continue
        if isinstance(lo, float):
            assert _ok(**extra, **{name: lo}) and _ok(**extra, **{name: hi}), name
            assert not _ok(**extra, **{name: lo - 0.01}) and not _ok(**extra, **{name: hi + 0.01}), name
            continue
        lo_ok = lo if name != "delta_width" else 3
        assert _ok(**extra, **{name: lo_ok}) and _ok(**extra, **{name: hi}), name
        assert not _ok(**extra, **{name: lo - 1}) and not _ok(**extra, **{name: hi + 1}), name
    assert not _ok(delta_width=8) and _ok(delta_width=7)
    assert not _ok(n_fft=2048, hop_length=2049) and _ok(n_fft=2048, hop_length=2048)
    assert not _ok(n_mfcc=65, n_mels=64) and _ok(n_mfcc=64, n_mels=64)
    assert not _ok(sample_rate=22050, f_min=11025.0) and _ok(sample_rate=22050, f_min=11024.0) and not _ok(f_min=-1.0)
    assert not _ok(sample_rate=22050, f_max=11025.5) and _ok(sample_rate=22050, f_max=11025.0)
    assert not _ok(top_db=math.inf) and not _ok(f_min=math.nan) and not _ok(chroma_tuning=math.nan)


# --- the extractor beyond the paper --------------------------------------------------------


def _padded(waves: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    batch = torch.zeros(len(waves), max(len(w) for w in waves))
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(w)
    return batch, torch.tensor([len(w) for w in waves])


@pytest.mark.parametrize("cfg_name", ["rich", "deltas-w5-16k", "std-then-mean-w31", "portable", "portable-nochroma", "db-re-peak-power-mel"])
def test_padded_batch_equals_one_clip_at_a_time_for_every_statistic(cfg_name: str) -> None:
    cfg = CONFIGS[cfg_name]
    extractor = FeatureExtractor(cfg)
    sr = cfg.sample_rate
    waves = [tone(0.6, sr, freq=200.0), tone(1.1, sr, freq=300.0, seed=1), tone(0.3, sr, freq=440.0, seed=2), tone(0.05, sr, seed=3)]
    single = torch.stack([extractor(torch.from_numpy(w)) for w in waves])
    padded = extractor(*_padded(waves))
    torch.testing.assert_close(padded, single, rtol=1e-5, atol=1e-4)


def test_deltas_replicate_each_clips_own_last_frame() -> None:
    """A short clip padded to a long one: its delta-MFCC std must use its own edge frames."""
    cfg = FeatureConfig(preset="paper", delta_stats=("mean", "std"))
    extractor = FeatureExtractor(cfg)
    waves = [tone(1.5, freq=300.0, seed=7), tone(0.25, freq=500.0, seed=8)]
    alone = extractor(torch.from_numpy(waves[1]))
    batch = extractor(*_padded(waves))[1]
    sl = cfg.block_slices()["dmfcc_std"]
    torch.testing.assert_close(batch[sl], alone[sl], rtol=1e-5, atol=1e-4)


def _paper_reference(extractor: FeatureExtractor, wave: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The paper's forward exactly as it was before presets (same ops, same order)."""
    cfg = extractor.cfg
    x = wave.unsqueeze(0) if wave.dim() == 1 else wave
    magnitude, power = extractor._spectra(x.to(torch.float32))
    batch, n_freqs, n_frames = power.shape
    mask = count = None
    if lengths is not None:
        valid = 1 + lengths.long() // cfg.hop_length
        mask = torch.arange(n_frames)[None, :] < valid[:, None]
        count = valid.clamp(max=n_frames).to(torch.float32)[:, None]

    def time_mean(a: torch.Tensor) -> torch.Tensor:
        return a.mean(-1) if mask is None else (a * mask[:, None, :]).sum(-1) / count

    flat = power[0] if batch == 1 else power.transpose(0, 1).reshape(n_freqs, batch * n_frames)
    mel = (extractor.mel_csr @ flat).reshape(-1, batch, n_frames).transpose(0, 1)
    db = torch.log10(torch.clamp(mel, min=1e-10)).mul_(10.0)
    kept = db if mask is None else db.masked_fill(~mask[:, None, :], -math.inf)
    db = torch.maximum(db, kept.amax(dim=(-2, -1), keepdim=True) - cfg.top_db)
    mfcc = time_mean(db) @ extractor.dct_t
    raw = extractor.chroma_fb @ magnitude
    top = raw.amax(dim=-2, keepdim=True)
    chroma = raw / torch.where(top < torch.finfo(torch.float32).tiny, 1.0, top)
    out = torch.cat([mfcc, time_mean(chroma), time_mean(mel)], dim=-1)
    return out[0] if wave.dim() == 1 else out


def test_paper_preset_is_bit_identical_to_the_code_before_presets() -> None:
    extractor = FeatureExtractor(FeatureConfig(preset="paper"))
    waves = list(signals(22050).values())
    for w in waves:
        t = torch.from_numpy(w)
        assert torch.equal(extractor(t), _paper_reference(extractor, t))
    batch, lengths = _padded(waves)
    assert torch.equal(extractor(batch, lengths), _paper_reference(extractor, batch, lengths))
