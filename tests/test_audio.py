"""Decoding, downmix, resampling and the one-line errors of `load_audio` (all native).

Decoded samples are compared bit for bit with soundfile's float32 decode for every PCM
subtype; the resampler is tested by its properties (length, a tone's frequency and
amplitude, alias rejection, chunking invariance, bounded memory), not against torchaudio.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import tone, write_wav
from m4a import write_m4a
from webm import write_webm

from serlaq import _native
from serlaq.data.audio import AUDIO_SUFFIXES, SILENCE_PEAK, load_audio, prepare_waveform, resample
from serlaq.errors import AudioError, SerlaqError, plain_audio_error

# Lossy codecs decoded by symphonia vs libsndfile (libvorbis / mpg123): measured 2.7e-7
# (Vorbis) and 1.3e-6 (MP3) on a 0.5-amplitude 440 Hz tone.
LOSSY_DECODER_TOL = 1e-5
# A pass-band tone's amplitude after resampling: measured within 4e-6 (Rust tests).
TONE_AMPLITUDE_TOL = 1e-4
# Spectrum energy left from a tone at 1.1x the new Nyquist (-100 dB; measured ~-140 dB).
ALIAS_REJECTION = 1e-5


def _soundfile_mono(path: Path) -> np.ndarray:
    data, _ = sf.read(str(path), dtype="float32", always_2d=True)
    return data[:, 0] if data.shape[1] == 1 else data.mean(axis=1, dtype=np.float32)


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


SUBTYPES = [
    ("WAV", "PCM_U8", "wav"),
    ("WAV", "PCM_16", "wav"),
    ("WAV", "PCM_24", "wav"),
    ("WAV", "PCM_32", "wav"),
    ("WAV", "FLOAT", "wav"),
    ("WAV", "DOUBLE", "wav"),
    ("WAVEX", "PCM_16", "wav"),
    ("WAVEX", "PCM_24", "wav"),
    ("WAVEX", "FLOAT", "wav"),
    ("FLAC", "PCM_16", "flac"),
    ("FLAC", "PCM_24", "flac"),
    ("AIFF", "PCM_16", "aiff"),
    ("AIFF", "ULAW", "aiff"),
    ("WAV", "ULAW", "wav"),
    ("WAV", "ALAW", "wav"),
    ("RF64", "PCM_16", "wav"),
    ("RF64", "FLOAT", "wav"),
]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(("fmt", "subtype", "ext"), SUBTYPES)
def test_lossless_decode_is_bit_identical_to_soundfile(
    tmp_path: Path, fmt: str, subtype: str, ext: str, channels: int
) -> None:
    rng = np.random.default_rng(channels)
    y = (0.5 * rng.standard_normal((3000, channels))).clip(-1, 1)
    path = tmp_path / f"a.{ext}"
    sf.write(str(path), y, 16000, format=fmt, subtype=subtype)
    np.testing.assert_array_equal(load_audio(path, 16000, min_samples=1), _soundfile_mono(path))


@pytest.mark.parametrize(("fmt", "subtype", "ext"), [("OGG", "VORBIS", "ogg"), ("MP3", "MPEG_LAYER_III", "mp3")])
def test_lossy_formats_decode(tmp_path: Path, fmt: str, subtype: str, ext: str) -> None:
    if fmt not in sf.available_formats():
        pytest.skip(f"this libsndfile cannot write {fmt}")
    y = 0.5 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050)
    path = tmp_path / f"a.{ext}"
    sf.write(str(path), y, 22050, format=fmt, subtype=subtype)
    out, ref = load_audio(path, 22050), _soundfile_mono(path)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, atol=LOSSY_DECODER_TOL)


@pytest.mark.parametrize("channels", [1, 2])
def test_m4a_apple_lossless_decodes_bit_for_bit(tmp_path: Path, channels: int) -> None:
    # what a phone's lossless voice memo is: ALAC in an MP4 container (tests/m4a.py writes it)
    pcm = (np.random.default_rng(channels).standard_normal((9000, channels)) * 8000).clip(-32768, 32767)
    pcm = pcm.astype(np.int16)
    path = write_m4a(tmp_path / "memo.m4a", pcm if channels == 2 else pcm[:, 0], 16000)
    want = (pcm.astype(np.float32) / 32768).mean(axis=1, dtype=np.float32)
    np.testing.assert_array_equal(load_audio(path, 16000, min_samples=1), want)
    # the same bytes under another name are still found by their content
    other = tmp_path / "memo.bin"
    other.write_bytes(path.read_bytes())
    np.testing.assert_array_equal(load_audio(other, 16000, min_samples=1), want)


@pytest.mark.parametrize("version", [0, 1])
def test_an_m4a_edit_list_start_is_where_the_recording_starts(tmp_path: Path, version: int) -> None:
    # An AAC encoder's first frame is priming (1024 samples from ffmpeg, 2112 from Apple's)
    # that the track's edit list tells a reader to skip; read without it, every time in the
    # recording comes late. ALAC in tests/m4a.py carries the same edit losslessly.
    pcm = (np.random.default_rng(version).standard_normal(9000) * 8000).clip(-32768, 32767).astype(np.int16)
    cases = {
        "one edit": ([(7000, 1500)], 1500),
        "an empty edit first (a pause before the track), then one": ([(400, -1), (7000, 1500)], 1500),
        "two played edits (a cut in the recording): all samples kept": ([(3000, 0), (4000, 5000)], 0),
        "an edit from the first sample": ([(9000, 0)], 0),
    }
    for name, (edits, start) in cases.items():
        path = write_m4a(tmp_path / f"{len(edits)}-{start}.m4a", pcm, 16000, edits=edits, version=version)
        want = pcm[start:].astype(np.float32) / 32768
        np.testing.assert_array_equal(load_audio(path, 16000, min_samples=1), want, err_msg=name)
    # resampled, the skip comes first: as the same samples written without their priming
    path = write_m4a(tmp_path / "primed.m4a", pcm, 16000, edits=[(7000, 2112)], version=version)
    plain = write_m4a(tmp_path / "plain.m4a", pcm[2112:], 16000)
    np.testing.assert_array_equal(load_audio(path, 11025, min_samples=1), load_audio(plain, 11025, min_samples=1))


def _refused_in_one_line(tmp_path: Path, suffix: str, damaged: list[bytes]) -> int:
    """Reads each damaged copy: samples, or one AudioError line naming the file (never a
    panic's message). Returns how many were refused."""
    refused = 0
    for n, bad in enumerate(damaged):
        path = tmp_path / f"bad{n}{suffix}"
        path.write_bytes(bad)
        try:
            load_audio(path, 16000, min_samples=1)
        except AudioError as exc:
            refused += 1
            assert str(exc).startswith(str(path)) and "\n" not in str(exc) and "panic" not in str(exc), exc
    return refused


def test_damaged_m4a_files_are_refused_in_one_line(tmp_path: Path) -> None:
    # An MP4 is a tree of length-prefixed boxes read by a parser serlaq did not write: a
    # soak over damaged copies (flipped bytes, box lengths rewritten, cut short) must give
    # samples or one AudioError naming the file, never a panic, a hang or a huge allocation.
    pcm = (np.random.default_rng(0).standard_normal((6000, 2)) * 6000).astype(np.int16)
    good = write_m4a(tmp_path / "good.m4a", pcm, 16000, edits=[(5000, 300)]).read_bytes()  # edits read too
    boxes = [i - 4 for i in range(4, len(good) - 4) if good[i : i + 4].isalpha() and good[i : i + 4].islower()]
    rng = np.random.default_rng(1)
    damaged = []
    for n in range(300):
        bad = bytearray(good)
        kind = n % 3
        if kind == 0:  # flipped bytes
            for at in rng.integers(0, len(bad), size=int(rng.integers(1, 8))):
                bad[at] ^= int(rng.integers(1, 256))
        elif kind == 1:  # a box's length rewritten (0, tiny, huge, off by a little)
            at = int(rng.choice(boxes))
            size = int(rng.choice([0, 1, 7, 8, 0xFFFFFFFF, 0x7FFFFFFF, int.from_bytes(bad[at : at + 4], "big") + int(rng.integers(-9, 9))]))
            bad[at : at + 4] = (size % 2**32).to_bytes(4, "big")
        else:  # cut short
            bad = bad[: int(rng.integers(8, len(bad)))]
        damaged.append(bytes(bad))
    assert _refused_in_one_line(tmp_path, ".m4a", damaged) > 100  # the soak reached the parser's error paths


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg to encode AAC (nothing else offline can)")
def test_m4a_aac_decodes_a_tone(tmp_path: Path) -> None:
    # AAC-LC, the lossy codec phones record in; the decoder's output is checked by what a
    # listener would check: the length, the pitch and the level of a 440 Hz tone
    path = tmp_path / "tone.m4a"
    cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=1.5:sample_rate=44100"]
    subprocess.run([*cmd, "-filter:a", "volume=0.5", "-c:a", "aac", "-b:a", "96k", str(path)], check=True)
    y = load_audio(path, 16000)
    # the priming ffmpeg's edit list names is skipped (ffmpeg keeps the end's padding, <= 1 frame)
    assert 24000 <= y.size < 24000 + 1024 * 16000 // 44100, y.size
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    assert abs(np.argmax(spectrum) * 16000 / y.size - 440) < 2
    # ffmpeg's sine source is 1/8 full scale; -filter volume 0.5 halves it: RMS 0.0625 / sqrt 2
    assert abs(np.sqrt(np.mean(y[4000:-4000] ** 2)) - 0.0625 / np.sqrt(2)) < 0.005
    # and sample for sample what ffmpeg decodes (its own AAC decoder, also in float)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-"], capture_output=True, check=True)
    ref = np.frombuffer(raw.stdout, dtype=np.float32)
    y = load_audio(path, 44100)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, atol=LOSSY_DECODER_TOL)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg to encode MPEG layer II (nothing else offline can)")
def test_mp2_decodes_as_ffmpeg_decodes_it(tmp_path: Path) -> None:
    # MPEG-1 layer II, broadcast and DVD archives' audio: read when a file is named (a folder
    # search leaves .mp2 out), to ffmpeg's own samples (both decoders in float)
    path = tmp_path / "archive.mp2"
    cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=1.5:sample_rate=48000"]
    subprocess.run([*cmd, "-c:a", "mp2", "-b:a", "192k", str(path)], check=True)
    raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-"], capture_output=True, check=True)
    ref = np.frombuffer(raw.stdout, dtype=np.float32)
    y = load_audio(path, 48000)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, atol=1e-4)
    assert ".mp2" not in AUDIO_SUFFIXES


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="no ffmpeg to encode IMA4 (nothing else offline can)")
def test_an_ima4_aifc_reads_as_its_caf_twin(tmp_path: Path) -> None:
    # IMA4 AIFF-C (old Macs' recordings) is read through the CAF reader, which takes the same
    # packets: the samples of the same packets in a CAF, bit for bit, and ffmpeg's samples bit
    # for bit (serlaq's IMA4 decoder keeps the running predictor across blocks as Apple's and
    # ffmpeg's do; symphonia's restarted each block from the header's 9 bits)
    src = tmp_path / "src.wav"
    sf.write(str(src), np.stack([tone(0.9, 44100, freq=220.0), tone(0.9, 44100, freq=330.0)], axis=1) * 0.5, 44100)
    for channels in (1, 2):
        aifc, caf = tmp_path / f"old{channels}.aifc", tmp_path / f"old{channels}.caf"
        for path, fmt in ((aifc, "aiff"), (caf, "caf")):
            cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-ac", str(channels), "-c:a", "adpcm_ima_qt"]
            subprocess.run([*cmd, "-f", fmt, str(path)], check=True)
        assert aifc.read_bytes()[8:12] == b"AIFC" and b"ima4" in aifc.read_bytes()[:64]
        y = load_audio(aifc, 44100)
        np.testing.assert_array_equal(y, load_audio(caf, 44100))
        raw = subprocess.run(["ffmpeg", "-v", "error", "-i", str(aifc), "-f", "f32le", "-"], capture_output=True, check=True)
        ref = np.frombuffer(raw.stdout, dtype=np.float32).reshape(-1, channels).mean(axis=1)
        np.testing.assert_array_equal(y, ref)


def test_damaged_ima4_aifc_files_are_refused_in_one_line(tmp_path: Path) -> None:
    # the view that shows an IMA4 AIFF-C to the CAF reader trusts no header field: channel
    # counts, packet counts, rates, the sound data's offset and chunk sizes rewritten, bytes
    # flipped, files cut short give samples or one line, never a panic or a hang
    rng = np.random.default_rng(3)
    packets = b"".join(b"\x00\x20" + rng.integers(0, 256, 32, dtype=np.uint8).tobytes() for _ in range(2 * 120))
    comm = (2).to_bytes(2, "big") + (120).to_bytes(4, "big") + (16).to_bytes(2, "big")
    comm += bytes([0x40, 0x0C, 0xFA, 0, 0, 0, 0, 0, 0, 0]) + b"ima4" + b"\x00\x00"
    ssnd = bytes(8) + packets
    body = b"AIFC" + b"COMM" + len(comm).to_bytes(4, "big") + comm + b"SSND" + len(ssnd).to_bytes(4, "big") + ssnd
    good = b"FORM" + len(body).to_bytes(4, "big") + body
    assert _load_written(tmp_path / "good.aifc", good).size == 120 * 64
    fields = [good.find(b"COMM") + 8 + k for k in (0, 2, 8)] + [good.find(b"SSND") + k for k in (4, 8)] + [4]
    damaged = []
    for n in range(300):
        bad = bytearray(good)
        kind = n % 3
        if kind == 0:  # a header field rewritten (0, tiny, huge, off by a little)
            at = int(rng.choice(fields))
            value = int(rng.choice([0, 1, 7, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF, int.from_bytes(bad[at : at + 4], "big") + int(rng.integers(-9, 9))]))
            bad[at : at + 4] = (value % 2**32).to_bytes(4, "big")
        elif kind == 1:  # flipped bytes
            for at in rng.integers(0, len(bad), size=int(rng.integers(1, 8))):
                bad[at] ^= int(rng.integers(1, 256))
        else:  # cut short
            bad = bad[: int(rng.integers(8, len(bad)))]
        damaged.append(bytes(bad))
    assert _refused_in_one_line(tmp_path, ".aifc", damaged) > 50


def _load_written(path: Path, data: bytes) -> np.ndarray:
    path.write_bytes(data)
    return load_audio(path, 16000, min_samples=1)


def test_adpcm_wav_decodes_like_soundfile(tmp_path: Path) -> None:
    # IMA and MS ADPCM WAVs (voice recorders, old corpora): libsndfile and symphonia round
    # ADPCM's steps differently, so the two agree to one quantizer step, not to the bit
    y = 0.4 * np.sin(2 * np.pi * 300 * np.arange(8000) / 8000)
    for subtype, step in (("IMA_ADPCM", 2e-3), ("MS_ADPCM", 2e-2)):
        path = tmp_path / f"{subtype}.wav"
        sf.write(str(path), y, 8000, subtype=subtype)
        out, ref = load_audio(path, 8000), _soundfile_mono(path)
        assert out.shape == ref.shape, subtype
        np.testing.assert_allclose(out, ref, atol=step, err_msg=subtype)
        assert np.abs(out[400:7600] - y[400:7600]).max() < 0.05, subtype  # after the step adapts, before padding


@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT", "ALAC_16"])
def test_caf_decodes_as_libsndfile_reads_it(tmp_path: Path, subtype: str) -> None:
    # Apple's Core Audio Format, what iOS recording apps save: PCM or Apple Lossless, read to
    # libsndfile's own samples (ALAC bit for bit: it is lossless). libsndfile pads an odd data
    # chunk with a byte CAF does not have, which symphonia would read as a chunk header: the
    # reader stops where the data chunk ends (here: ALAC_16's 0.7 s stereo is odd-sized).
    # Not here: libsndfile's 24-bit ALAC, whose packet table it pads too (docs/deploy.md).
    if subtype not in sf.available_subtypes("CAF"):
        pytest.skip(f"this libsndfile cannot write CAF/{subtype}")
    y = np.stack([tone(0.7, 44100, freq=220.0), tone(0.7, 44100, freq=330.0)], axis=1) * 0.8
    path = tmp_path / "memo.caf"
    sf.write(str(path), y, 44100, format="CAF", subtype=subtype)
    out, ref = load_audio(path, 44100), _soundfile_mono(path)
    assert out.shape == ref.shape == (y.shape[0],)
    np.testing.assert_array_equal(out, ref)


def test_damaged_caf_files_are_refused_in_one_line(tmp_path: Path) -> None:
    # CAF's chunk sizes are 64-bit and its description sizes the decoder's buffers: a header
    # claiming packets of 2^31 frames is refused before any is decoded (it took seconds, then
    # "too long"), and a soak of damaged copies gives samples or one line, never a panic
    if "ALAC_16" not in sf.available_subtypes("CAF"):
        pytest.skip("this libsndfile cannot write CAF/ALAC_16")
    y = np.stack([tone(0.4, 16000, freq=220.0), tone(0.4, 16000, freq=330.0)], axis=1)
    goods = []
    for subtype in ("PCM_16", "ALAC_16"):
        sf.write(str(tmp_path / "good.caf"), y, 16000, format="CAF", subtype=subtype)
        goods.append((tmp_path / "good.caf").read_bytes())
    bad = bytearray(goods[0])
    at = bad.find(b"desc") + 12 + 20  # the description's frames per packet
    bad[at : at + 4] = (2**31).to_bytes(4, "big")
    (tmp_path / "huge.caf").write_bytes(bytes(bad))
    with pytest.raises(AudioError, match="packets of 2147483648 frames"):
        load_audio(tmp_path / "huge.caf", 16000)
    rng = np.random.default_rng(2)
    damaged = []
    for n in range(400):
        good = goods[n % 2]
        heads = [j for j in range(8, len(good) - 12) if good[j : j + 4] in (b"desc", b"kuki", b"pakt", b"data")]
        bad = bytearray(good)
        if n % 3 == 0:
            for at in rng.integers(0, 200, size=int(rng.integers(1, 6))):
                bad[at] ^= int(rng.integers(1, 256))
        elif n % 3 == 1:
            j = int(rng.choice(heads))
            size = int(rng.choice([-1, 0, 7, 12, 2**31, 2**62, int.from_bytes(bad[j + 4 : j + 12], "big") + int(rng.integers(-9, 9))]))
            bad[j + 4 : j + 12] = size.to_bytes(8, "big", signed=True)
        else:
            bad = bad[: int(rng.integers(8, len(bad)))]
        damaged.append(bytes(bad))
    assert _refused_in_one_line(tmp_path, ".caf", damaged) > 100


@pytest.mark.parametrize(("fmt", "subtype", "ext", "name"), [
    ("AU", "PCM_16", "au", "AU"),
    ("W64", "PCM_16", "w64", "Wave64"),
])
def test_formats_not_decoded_are_named(tmp_path: Path, fmt: str, subtype: str, ext: str, name: str) -> None:
    # files libsndfile writes (so a user may well hold them) that the runtime does not
    # decode: the line a person reads says what the file is, not that it may be damaged
    if subtype not in sf.available_subtypes(fmt):
        pytest.skip(f"this libsndfile cannot write {fmt}/{subtype}")
    path = tmp_path / f"memo.{ext}"
    sf.write(str(path), tone(0.5, 16000), 16000, format=fmt, subtype=subtype)
    with pytest.raises(AudioError) as err:
        load_audio(path, 16000)
    line = plain_audio_error(str(err.value))
    assert line.startswith(f"{path}: cannot decode audio: ") and f" {name} file, a format serlaq does not decode" in line


@pytest.mark.parametrize("channels", [1, 2])
def test_opus_reads_as_libopus_decodes_it(tmp_path: Path, channels: int) -> None:
    # libsndfile's Ogg Opus (libopus encodes and decodes it): the runtime's decoder (ropus,
    # libopus' fixed-point decoder ported) gives the same samples, pre-skip and end trim
    # included, within a few 16-bit steps of libopus' float output
    if "OPUS" not in sf.available_subtypes("OGG"):
        pytest.skip("this libsndfile cannot write OGG/OPUS")
    y = tone(1.3, 48000, freq=330.0)
    if channels == 2:
        y = np.stack([y, 0.5 * y[::-1]], axis=1)
    path = tmp_path / "voice-note.opus"
    sf.write(str(path), y, 48000, format="OGG", subtype="OPUS")
    out, ref = load_audio(path, 48000), _soundfile_mono(path)
    assert out.shape == ref.shape == (62400,)
    assert np.abs(out - ref).max() < 8 / 32768
    mono = y if channels == 1 else y.mean(axis=1)
    assert np.abs(out - mono)[4800:-4800].max() < 0.1  # aligned: the pre-skip is dropped
    # and at a model's rate, by the one resampler
    np.testing.assert_allclose(load_audio(path, 16000), resample(out, 48000, 16000), atol=1e-6)


def test_webm_holds_the_same_opus_as_ogg(tmp_path: Path) -> None:
    # the same libopus packets in WebM (a browser's container: no end trim) read as the Ogg
    # file does, sample for sample, then the last packet's padding
    if "OPUS" not in sf.available_subtypes("OGG"):
        pytest.skip("this libsndfile cannot write OGG/OPUS")
    y = tone(1.0, 48000, freq=250.0)
    ogg = tmp_path / "a.opus"
    sf.write(str(ogg), y, 48000, format="OGG", subtype="OPUS")
    webm = write_webm(tmp_path / "a.webm", y, 48000)
    a, b = load_audio(ogg, 48000), load_audio(webm, 48000)
    assert a.size == 48000 and 48000 <= b.size < 48000 + 960
    np.testing.assert_array_equal(b[:a.size], a)


@pytest.mark.parametrize("subtype", ["VORBIS", "OPUS"])
def test_a_chained_ogg_reads_as_its_parts_joined(tmp_path: Path, subtype: str) -> None:
    # OGG files joined end to end (`cat a.ogg b.ogg`, a radio recording): each logical stream
    # brings its own headers, so each gets a new decoder, and the parts follow one another
    if subtype not in sf.available_subtypes("OGG"):
        pytest.skip(f"this libsndfile cannot write OGG/{subtype}")
    rate = 48000 if subtype == "OPUS" else 16000
    a, b, joined = tmp_path / "a.ogg", tmp_path / "b.ogg", tmp_path / "joined.ogg"
    sf.write(str(a), tone(0.8, rate, freq=220.0), rate, format="OGG", subtype=subtype)
    sf.write(str(b), tone(0.6, rate, freq=440.0), rate, format="OGG", subtype=subtype)
    joined.write_bytes(a.read_bytes() + b.read_bytes())
    want = np.concatenate([load_audio(a, rate), load_audio(b, rate)])
    np.testing.assert_array_equal(load_audio(joined, rate), want)
    if subtype == "VORBIS":
        # at two rates: one line naming the change and where, not "damaged"
        c, mixed = tmp_path / "c.ogg", tmp_path / "mixed.ogg"
        sf.write(str(c), tone(0.6, 22050, freq=440.0), 22050, format="OGG", subtype=subtype)
        mixed.write_bytes(a.read_bytes() + c.read_bytes())
        with pytest.raises(AudioError) as exc:
            load_audio(mixed, 16000)
        assert "the stream changes from 16000 Hz x 1 channels to 22050 Hz x 1 channels" in str(exc.value)
        assert plain_audio_error(str(exc.value)).startswith(f"{mixed}: the audio changes from 16000 Hz x 1 channels to 22050")


def test_suffixes_cover_the_decoded_formats() -> None:
    assert {".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".m4a", ".webm"} <= set(AUDIO_SUFFIXES)
    assert _native.AUDIO_SUFFIXES == AUDIO_SUFFIXES


def test_streamed_file_equals_resampling_the_whole_clip(tmp_path: Path) -> None:
    """The file path resamples packet by packet; the result equals one whole-clip call."""
    y = tone(1.3, 44100, freq=180.0)
    path = write_wav(tmp_path / "r.flac", y, sample_rate=44100)
    np.testing.assert_array_equal(load_audio(path, 22050), resample(_soundfile_mono(path), 44100, 22050))


@pytest.mark.parametrize("orig", [1000, 7999, 16000, 22051, 44100, 44101, 48000, 192000, 384000])
def test_resampled_tone_keeps_frequency_amplitude_and_length(orig: int) -> None:
    n = orig // 2 + 3
    freq = 0.3 * min(orig, 22050) / 2 + 17.0
    y = (0.5 * np.sin(2 * np.pi * freq * np.arange(n) / orig)).astype(np.float32)
    out = resample(y, orig, 22050)
    assert out.dtype == np.float32 and out.shape == (-(-n * 22050 // orig),)
    mid = out[out.size // 4 : 3 * out.size // 4].astype(np.float64)
    t = np.arange(mid.size) / 22050
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, mid, rcond=None)
    assert abs(np.hypot(*coef) - 0.5) < TONE_AMPLITUDE_TOL
    spectrum = np.abs(np.fft.rfft(mid * np.hanning(mid.size)))
    assert abs(np.argmax(spectrum) * 22050 / mid.size - freq) < 2 * 22050 / mid.size


@pytest.mark.parametrize("orig", [44101, 48000, 192000])
def test_resampler_rejects_aliases_above_the_new_nyquist(orig: int) -> None:
    freq = 1.1 * 22050 / 2
    y = (0.5 * np.sin(2 * np.pi * freq * np.arange(orig // 2) / orig)).astype(np.float32)
    out = resample(y, orig, 22050)
    mid = out[out.size // 4 : 3 * out.size // 4]
    assert np.sqrt(np.mean(mid.astype(np.float64) ** 2)) / 0.5 < ALIAS_REJECTION


def test_resample_identity_and_bounds() -> None:
    y = tone(0.2)
    assert resample(y, 22050, 22050) is y
    for orig, new in [(999, 22050), (384001, 22050), (22050, 500)]:
        with pytest.raises(AudioError, match="unsupported sample rate|unsupported target rate|rate"):
            resample(y, orig, new)


def test_ten_minutes_at_48k_stays_within_64_mb(tmp_path: Path) -> None:
    """A 10-min file is decoded and resampled incrementally: peak RSS above the idle process
    is the 22.05 kHz output (53 MB) plus small buffers, never the 48 kHz source."""
    path = tmp_path / "long.wav"
    with sf.SoundFile(str(path), "w", 48000, 2, "PCM_16") as f:
        block = (0.3 * np.sin(2 * np.pi * 220 * np.arange(48000) / 48000)).astype(np.float32)
        for _ in range(600):
            f.write(np.stack([block, block], axis=1))
    script = textwrap.dedent(
        f"""
        import resource
        from serlaq import _native
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = _native.load_audio({str(path)!r}, 22050, 2048)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(out.size, (after - before) / 1024)
        """
    )
    size, grew_mb = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert int(size) == 600 * 22050
    assert float(grew_mb) < 64, f"peak RSS grew by {grew_mb} MB"


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


def test_not_audio_corrupt_and_truncated(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("this is not a wav file\n" * 20)
    _bad(text, r"cannot decode audio \(format: unknown \(extension \.wav\)")
    good = write_wav(tmp_path / "good.wav", tone(0.5)).read_bytes()
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(good[:8] + b"JUNKJUNK" + good[16:])  # RIFF header broken
    _bad(corrupt, "cannot decode audio")
    truncated = tmp_path / "t.wav"
    truncated.write_bytes(good[:-1000])
    _bad(truncated, r"truncated audio \(data ends at 0\.477 s of the 0\.500 s the header declares\)")
    flac = write_wav(tmp_path / "a.flac", tone(1.0)).read_bytes()
    damaged = tmp_path / "damaged.flac"
    damaged.write_bytes(flac[: len(flac) // 2] + bytes(64) + flac[len(flac) // 2 + 64 :])
    _bad(damaged, r"corrupt audio \(decode error at|truncated audio")


def test_wav_with_an_unfinished_riff_length_reads_like_soundfile(tmp_path: Path) -> None:
    # Recorders that stop without finishing the header leave RIFF length 0; a file appended
    # to has one too short for its data; a streaming writer's data length is 0xFFFFFFFF.
    # soundfile (libsndfile) reads all three, and so must serlaq.
    good = write_wav(tmp_path / "good.wav", tone(0.5), sample_rate=16000).read_bytes()
    data_at = good.index(b"data")
    want = load_audio(tmp_path / "good.wav", 16000)
    for name, riff, data in [("zero", 0, None), ("short", 20, None), ("stream", None, 0xFFFFFFFF)]:
        odd = bytearray(good)
        if riff is not None:
            odd[4:8] = riff.to_bytes(4, "little")
        if data is not None:
            odd[data_at + 4 : data_at + 8] = data.to_bytes(4, "little")
        path = tmp_path / f"{name}.wav"
        path.write_bytes(bytes(odd))
        np.testing.assert_array_equal(load_audio(path, 16000), want, err_msg=name)
        np.testing.assert_array_equal(_soundfile_mono(path), want, err_msg=name)
    # A data length left at 0 over the samples: soundfile reads nothing, ffmpeg (and serlaq)
    # the samples to the end of the file.
    odd = bytearray(good)
    odd[data_at + 4 : data_at + 8] = bytes(4)
    (tmp_path / "unfinished.wav").write_bytes(bytes(odd))
    np.testing.assert_array_equal(load_audio(tmp_path / "unfinished.wav", 16000), want)
    assert _soundfile_mono(tmp_path / "unfinished.wav").size == 0


def test_empty_and_silent(tmp_path: Path) -> None:
    _bad(write_wav(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32)), r"empty audio \(0 samples\)")
    _bad(write_wav(tmp_path / "zeros.wav", np.zeros(22050, dtype=np.float32)), r"all silent \(peak -inf dBFS")
    dither = np.random.default_rng(0).integers(-2, 3, 22050).astype(np.float32) / 32768
    _bad(write_wav(tmp_path / "dither.wav", dither), r"all silent \(peak -84\.3 dBFS, threshold -80 dBFS\)")
    # Just above the threshold is accepted.
    quiet = write_wav(tmp_path / "quiet.wav", tone(0.5) / 0.3 * SILENCE_PEAK * 4, subtype="FLOAT")
    assert load_audio(quiet, 22050).shape == (11025,)


def test_nan_and_inf_samples(tmp_path: Path) -> None:
    y = np.stack([tone(0.5), tone(0.5)], axis=1)
    y[100, 0] = np.nan
    y[200, 1] = np.inf
    _bad(write_wav(tmp_path / "nan.wav", y, subtype="FLOAT"), r"NaN/inf samples \(2 of 22050\)")


def test_rate_channel_and_duration_bounds(tmp_path: Path) -> None:
    _bad(write_wav(tmp_path / "slow.wav", tone(0.5, 800), 800), r"unsupported sample rate \(sample rate 800 Hz")
    many = np.tile(tone(0.1, 16000)[:, None], (1, 65))
    _bad(write_wav(tmp_path / "many.wav", many, 16000), r"unsupported channel count \(65; must be 1\.\.=64\)")
    # 2 hours of 8 kHz audio are refused from the header, before anything is decoded (a
    # sparse file: its silence takes no disk)
    head = bytearray(write_wav(tmp_path / "x.wav", tone(0.1, 8000), 8000).read_bytes())
    size = 7200 * 8000 * 2
    head[4:8] = (size + 36).to_bytes(4, "little")
    head[40:44] = size.to_bytes(4, "little")
    with open(tmp_path / "long.wav", "wb") as f:
        f.write(bytes(head))
        f.truncate(44 + size)
    _bad(tmp_path / "long.wav", r"too long \(7200\.0 s; .*segment mode")
    # the same header on a file of 1.6 KB is a cut file, named so
    (tmp_path / "cut.wav").write_bytes(bytes(head))
    _bad(tmp_path / "cut.wav", r"truncated audio \(data ends at 0\.100 s of the 7200\.000 s the header declares\)")


def test_too_short_for_one_window(tmp_path: Path) -> None:
    short = write_wav(tmp_path / "short.wav", tone(0.05))
    _bad(short, r"too short \(0\.050 s; features need at least 0\.093 s = 2048 samples at 22050 Hz\)")
    assert load_audio(short, 22050, min_samples=512).shape == (1102,)
    # The limit applies after resampling: 1500 samples at 16 kHz become 2068 at 22.05 kHz.
    assert load_audio(write_wav(tmp_path / "s16.wav", tone(1500 / 16000, 16000), 16000), 22050).shape == (2068,)


def test_in_memory_waveform_is_prepared_like_the_file(tmp_path: Path) -> None:
    """`prepare_waveform` (the runtime's waveform path) = `load_audio` on the same samples,
    in either channel layout, as float or as PCM integers (numpy or torch)."""
    left, right = tone(0.6, 16000, freq=200.0), tone(0.6, 16000, freq=300.0, seed=1)
    stereo = np.stack([left, right], axis=1)  # (samples, channels), soundfile's layout
    pcm = np.round(stereo * 32767).astype(np.int16)
    path = write_wav(tmp_path / "st.wav", pcm.astype(np.float32) / 32768, sample_rate=16000)  # PCM_16
    from_file = load_audio(path, 22050)
    waves: list[object] = [pcm, pcm.T, pcm.astype(np.float32) / 32768, pcm.astype(np.float64) / 32768]
    try:
        import torch

        waves.append(torch.from_numpy(pcm.T.copy()))
    except ImportError:
        pass
    for wave in waves:
        np.testing.assert_array_equal(prepare_waveform(wave, 16000, 22050), from_file)
    with pytest.raises(AudioError, match=r"^clip\.raw: all silent"):
        prepare_waveform(np.zeros((2, 4000), np.int16), 16000, 22050, source="clip.raw")
    with pytest.raises(AudioError, match="sample_rate must be a positive integer"):
        prepare_waveform(left, 0, 22050)
    with pytest.raises(AudioError, match=r"^w: NaN/inf samples \(1 of 9600\)"):
        prepare_waveform(np.where(np.arange(9600) == 5, np.nan, left), 16000, 22050, source="w")
    with pytest.raises(AudioError, match="must be 1-D or"):
        prepare_waveform(np.zeros((2, 2, 2), np.float32), 16000, 22050)


def test_native_entry_points_reject_wrong_types() -> None:
    with pytest.raises(TypeError, match="float32"):
        _native.resample(np.zeros(10, np.float64), 16000, 22050)
    with pytest.raises(TypeError, match="float32"):
        _native.prepare_waveform(np.zeros(10, np.int16), 16000, 22050, 1, "w")
