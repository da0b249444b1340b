"""Decoding, downmix, resampling and the one-line errors of `load_audio`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF
from conftest import tone, write_wav

from serlaq.data.audio import SILENCE_PEAK, _read_pcm16_wav, load_audio, prepare_waveform, resample
from serlaq.errors import AudioError, SerlaqError


def test_reads_pcm16_mono_as_float32(tmp_path: Path) -> None:
    y = tone(0.5)
    path = write_wav(tmp_path / "a.wav", y)
    out = load_audio(path, 22050)
    assert out.dtype == np.float32 and out.ndim == 1 and out.shape == y.shape
    np.testing.assert_allclose(out, y, atol=1.0 / 32768)


def test_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    left, right = tone(0.5, freq=200.0), tone(0.5, freq=300.0, seed=1)
    path = write_wav(tmp_path / "st.wav", np.stack([left, right], axis=1), subtype="FLOAT")
    np.testing.assert_allclose(load_audio(path, 22050), (left + right) / 2, atol=1e-6)


@pytest.mark.parametrize("orig", [8000, 11025, 16000, 32000, 44100, 48000])
def test_resampling_is_torchaudios(tmp_path: Path, orig: int) -> None:
    """Same kernel as torchaudio.functional.resample, compared with its float64 result.

    (Our float32 sums over the kernel's nonzero taps are as close to the float64 result as
    torchaudio's own float32 conv, or closer: at TESS's 24414 Hz, 1e-5 vs 1e-4.)
    """
    y = tone(0.7, sample_rate=orig, freq=180.0)
    path = write_wav(tmp_path / f"r{orig}.flac", y, sample_rate=orig)
    out = load_audio(path, 22050)
    decoded, _ = sf.read(str(path), dtype="float64")
    ref = AF.resample(torch.from_numpy(decoded), orig, 22050).numpy()
    assert out.shape == ref.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_resample_is_identity_at_the_same_rate() -> None:
    y = tone(0.2)
    assert resample(y, 22050, 22050) is y


def _bad(path: Path, match: str, **kw) -> AudioError:
    with pytest.raises(AudioError, match=match) as info:
        load_audio(path, 22050, **kw)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert isinstance(info.value, SerlaqError)
    return info.value


def test_missing_file_and_directory(tmp_path: Path) -> None:
    _bad(tmp_path / "nope.wav", "file not found")
    (tmp_path / "dir.wav").mkdir()
    _bad(tmp_path / "dir.wav", "not a file")


def test_not_audio_and_corrupt(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("this is not a wav file\n" * 20)
    _bad(text, "cannot decode audio")
    good = write_wav(tmp_path / "good.wav", tone(0.5)).read_bytes()
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(good[:8] + b"JUNKJUNK" + good[16:])  # RIFF header broken
    _bad(corrupt, "cannot decode audio")


def test_empty_and_silent(tmp_path: Path) -> None:
    _bad(write_wav(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32)), "empty audio")
    _bad(write_wav(tmp_path / "zeros.wav", np.zeros(22050, dtype=np.float32)), "all silent")
    dither = np.random.default_rng(0).integers(-2, 3, 22050).astype(np.float32) / 32768
    _bad(write_wav(tmp_path / "dither.wav", dither), "all silent")
    # Just above the threshold is accepted.
    quiet = write_wav(tmp_path / "quiet.wav", tone(0.5) / 0.3 * SILENCE_PEAK * 4, subtype="FLOAT")
    assert load_audio(quiet, 22050).shape == (11025,)


def test_nan_and_inf_samples(tmp_path: Path) -> None:
    y = tone(0.5)
    y[100] = np.nan
    y[200] = np.inf
    _bad(write_wav(tmp_path / "nan.wav", y, subtype="FLOAT"), r"NaN/inf samples \(2 of")


def test_too_short_for_one_window(tmp_path: Path) -> None:
    short = write_wav(tmp_path / "short.wav", tone(0.05))
    _bad(short, "too short")
    assert load_audio(short, 22050, min_samples=512).shape == (1102,)
    # The limit applies after resampling: 1500 samples at 16 kHz become 2068 at 22.05 kHz.
    assert load_audio(write_wav(tmp_path / "s16.wav", tone(1500 / 16000, 16000), 16000), 22050).shape == (2068,)


def test_in_memory_waveform_is_prepared_like_the_file(tmp_path: Path) -> None:
    """`prepare_waveform` (the runtime's waveform path) = `load_audio` on the same samples,
    in either channel layout, as float or as PCM integers."""
    left, right = tone(0.6, 16000, freq=200.0), tone(0.6, 16000, freq=300.0, seed=1)
    stereo = np.stack([left, right], axis=1)  # (samples, channels), soundfile's layout
    pcm = np.round(stereo * 32767).astype(np.int16)
    path = write_wav(tmp_path / "st.wav", pcm.astype(np.float32) / 32768, sample_rate=16000)  # PCM_16
    from_file = load_audio(path, 22050)
    for wave in (pcm, pcm.T, torch.from_numpy(pcm.T.copy()), pcm.astype(np.float32) / 32768):
        np.testing.assert_array_equal(prepare_waveform(wave, 16000, 22050), from_file)
    with pytest.raises(AudioError, match=r"^clip\.raw: all silent"):
        prepare_waveform(np.zeros((2, 4000), np.int16), 16000, 22050, source="clip.raw")
    with pytest.raises(AudioError, match="sample_rate must be a positive integer"):
        prepare_waveform(left, 0, 22050)


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_pcm16_wav_fast_path_is_bit_identical_to_soundfile(tmp_path: Path, channels: int) -> None:
    rng = np.random.default_rng(channels)
    y = (0.5 * rng.standard_normal((3000, channels))).clip(-1, 1).astype(np.float32)
    path = tmp_path / "a.wav"
    sf.write(str(path), y, 16000, subtype="PCM_16")
    ref, rate = sf.read(str(path), dtype="float32", always_2d=True)
    fast = _read_pcm16_wav(path)
    assert fast is not None and fast[1] == rate == 16000
    np.testing.assert_array_equal(fast[0], ref)
    # other subtypes and containers, and a truncated data chunk, go to soundfile
    for subtype, name in [("PCM_24", "b.wav"), ("FLOAT", "c.wav"), ("PCM_16", "d.flac")]:
        other = tmp_path / name
        sf.write(str(other), y, 16000, subtype=subtype)
        assert _read_pcm16_wav(other) is None
    truncated = tmp_path / "t.wav"
    truncated.write_bytes(path.read_bytes()[:-100])
    assert _read_pcm16_wav(truncated) is None
    np.testing.assert_allclose(load_audio(truncated, 16000)[:100], ref[:100].mean(axis=1), atol=1e-6)


def _riff(*chunks: tuple[bytes, bytes]) -> bytes:
    body = b"WAVE" + b"".join(cid + len(data).to_bytes(4, "little") + data + b"\0" * (len(data) & 1) for cid, data in chunks)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def test_pcm16_fast_path_leaves_ambiguous_headers_to_soundfile(tmp_path: Path) -> None:
    """Only a plain PCM GUID and a single fmt chunk are read directly; soundfile rejects both
    of these files, so reading samples from them would be a guess."""
    import struct

    pcm = (np.arange(4000, dtype=np.int16) * 7).reshape(-1, 2).tobytes()
    fmt = struct.pack("<HHIIHH", 1, 2, 16000, 64000, 4, 16)

    def extensible(guid: str) -> bytes:
        return struct.pack("<HHIIHHHHI", 0xFFFE, 2, 16000, 64000, 4, 16, 22, 16, 3) + bytes.fromhex(guid)

    plain = tmp_path / "ext.wav"
    plain.write_bytes(_riff((b"fmt ", extensible("0100000000001000800000aa00389b71")), (b"data", pcm)))
    fast = _read_pcm16_wav(plain)
    assert fast is not None
    np.testing.assert_array_equal(fast[0], sf.read(str(plain), dtype="float32", always_2d=True)[0])

    ambisonic = tmp_path / "ambi.wav"  # B-format PCM: same first two GUID bytes, not plain PCM
    ambisonic.write_bytes(_riff((b"fmt ", extensible("01000000210711d38644c8c1ca000000")), (b"data", pcm)))
    two_fmt = tmp_path / "two.wav"
    mono8k = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    two_fmt.write_bytes(_riff((b"fmt ", mono8k), (b"fmt ", fmt), (b"data", pcm)))
    for path in (ambisonic, two_fmt):
        assert _read_pcm16_wav(path) is None
        with pytest.raises(AudioError, match=f"{path.name}: cannot decode audio"):
            load_audio(path, 16000)
