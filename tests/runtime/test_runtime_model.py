"""The `.laq` runtime: loading, validation, the packed forward pass, audio in any form."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import serlaq
from serlaq import _native
from serlaq.errors import AudioError, LaqFormatError
from serlaq.runtime import FileFailure, LaqModel, Prediction

from rt_builders import random_model, shared_tone_model, tone, write_model, write_wav


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    return random_model(tmp_path_factory.mktemp("laq") / "m.laq", bits=(4, 1, 8))


@pytest.fixture(scope="module")
def trained():
    return shared_tone_model()


def feature_batch(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 2, (n, 180)).astype(np.float32)


# --- what the file holds --------------------------------------------------------------


def test_load_exposes_header_and_layer_table(built):
    m = serlaq.load(built.path)
    assert isinstance(m, LaqModel)
    assert m.labels == built.labels
    assert m.input_dim == 180 and m.sample_rate == 22050 and m.feature_spec["preset"] == "paper"
    assert [layer.shape for layer in m.layers] == [(48, 180), (24, 48), (4, 24)]
    assert [layer.bits for layer in m.layers] == [4, 1, 8]
    assert [layer.quantizer for layer in m.layers] == ["affine", "binary", "affine"]
    assert all("tensor" in layer.granularity for layer in m.layers)
    # eq. 6: bits weighted by each layer's share of the weights
    n = [48 * 180, 24 * 48, 4 * 24]
    assert m.avg_bits == pytest.approx((n[0] * 4 + n[1] * 1 + n[2] * 8) / sum(n))
    assert m.size_bytes == built.path.stat().st_size
    params = sum(w.size + w.shape[0] for w in built.weights)
    assert m.num_params == params
    assert m.fp32_size_bytes == 4 * params
    # packed codes: rows byte-aligned at each layer's bits
    assert m.layers[0].packed_bytes == 48 * (180 * 4 // 8)
    assert m.layers[1].packed_bytes == 24 * 6
    assert m.size_bytes < m.fp32_size_bytes
    summary = m.summary()
    json.dumps(summary)  # plain data
    assert summary["layers"][1]["bits"] == 1 and summary["labels"] == built.labels


def test_per_channel_granularity_is_reported(tmp_path):
    b = random_model(tmp_path / "pc.laq", bits=(3, 2, 8), per_channel=True)
    m = LaqModel.load(b.path)
    assert all("channel" in layer.granularity for layer in m.layers)
    # a per-channel layer stores one scale and one zero per output row
    assert m.layers[0].size_bytes == m.layers[0].packed_bytes + 2 * 4 * 48 + 4 * 48


# --- the forward pass -------------------------------------------------------------------


@pytest.mark.parametrize(
    "bits,per_channel",
    [((4, 1, 8), False), ((2, 3, 5), True), ((8, 8, 8), False), ((1, 1, 1), True), ((7, 6, 2), (True, False, True))],
)
def test_packed_forward_matches_dequantized_reference(tmp_path, bits, per_channel):
    b = random_model(tmp_path / "m.laq", bits=bits, per_channel=per_channel, seed=sum(bits))
    m = LaqModel.load(b.path)
    x = feature_batch(9)
    np.testing.assert_allclose(m.logits(x), b.logits(x), rtol=1e-4, atol=1e-4)
    proba = m.predict_proba(x)
    np.testing.assert_allclose(proba, b.proba(x), atol=1e-5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    # one vector gives the same as its row of a batch
    np.testing.assert_allclose(m.predict_proba(x[3]), proba[3], atol=1e-6)


def test_predict_features_returns_typed_results(built):
    m = LaqModel.load(built.path)
    x = feature_batch(5)
    preds = m.predict_features(x, top_k=2)
    ref = built.proba(x)
    assert isinstance(preds, list) and len(preds) == 5
    for p, r in zip(preds, ref):
        assert isinstance(p, Prediction)
        assert p.label == built.labels[int(np.argmax(r))]
        assert p.confidence == pytest.approx(r.max(), abs=1e-5)
        assert list(p.probabilities) == built.labels
        assert len(p.top_k) == 2 and p.top_k[0] == (p.label, p.confidence)
        assert p.top_k[1][1] <= p.top_k[0][1]
    one = m.predict_features(x[0])
    assert isinstance(one, Prediction) and one.label == preds[0].label and one.top_k == ()
    with pytest.raises(ValueError, match=r"\(n, 180\)"):
        m.predict_features(np.zeros((2, 179), np.float32))


def test_forward_never_unpacks_weights_in_python(built, monkeypatch):
    m = LaqModel.load(built.path)
    for fn in ("unpack", "qgemm", "LaqFile"):  # no Python-side unpacking, re-packing or second reader
        monkeypatch.setattr(_native, fn, lambda *a, **k: pytest.fail("unexpected native call"))
    np.testing.assert_allclose(m.predict_proba(feature_batch(6)), built.proba(feature_batch(6)), atol=1e-5)


def test_non_finite_features_are_rejected_with_the_row(built):
    m = LaqModel.load(built.path)
    x = feature_batch(4)
    x[2, 17] = np.nan
    with pytest.raises(ValueError, match="row 2"):
        m.predict_features(x)
    x[2, 17] = np.inf
    with pytest.raises(ValueError, match="row 2"):
        m.logits(x)
    with pytest.raises(ValueError, match="numeric"):
        m.predict_features(np.array(["a"] * 180))


# --- audio in ---------------------------------------------------------------------------


def test_predict_path_waveform_and_tensor_agree(built, tmp_path):
    m = LaqModel.load(built.path)
    x = tone(440, 16000, 0.6)
    wav = write_wav(tmp_path / "a.wav", x, 16000)
    by_path = m.predict(wav, top_k=3)
    by_str = m.predict(str(wav))
    # the array the file holds (PCM16), in memory
    by_array = m.predict(np.clip(np.rint(x * 32768), -32768, 32767).astype(np.int16), sample_rate=16000)
    feats = m.features_from_file(wav)
    assert feats.shape == (180,) and feats.dtype == np.float32
    ref = built.proba(feats)
    assert by_path.path == str(wav) and by_array.path is None
    assert by_path.label == built.labels[int(np.argmax(ref))]
    for p in (by_str, by_array):
        assert p.label == by_path.label
        assert list(p.probabilities.values()) == list(by_path.probabilities.values())
    np.testing.assert_allclose(list(by_path.probabilities.values()), ref, atol=1e-5)
    assert [lab for lab, _ in by_path.top_k] == [lab for lab, _ in by_path.top(3)]
    torch = pytest.importorskip("torch", reason="torch tensors as input: only where torch is installed")
    by_tensor = m.predict(torch.from_numpy(np.clip(np.rint(x * 32768), -32768, 32767) / 32768.0), sample_rate=16000)
    np.testing.assert_allclose(list(by_tensor.probabilities.values()), list(by_path.probabilities.values()), atol=1e-6)
    half = m.predict(torch.from_numpy(x).to(torch.bfloat16), sample_rate=16000)  # numpy has no bfloat16
    assert half.label in built.labels


def test_every_prediction_carries_its_out_of_domain_score(built, tmp_path):
    """`ood` as `serlaq predict --format json` shows it, whatever the input."""
    m = LaqModel.load(built.path)
    x = tone(440, 16000, 0.6)
    wav = write_wav(tmp_path / "a.wav", x, 16000)
    want = m.ood_scores(m.features_from_file(wav))[0]
    assert want > 0
    by_path = m.predict(wav)
    assert by_path.ood == want and by_path.to_dict()["ood"] == want
    assert m.predict(wav.read_bytes()).ood == want
    assert [p.ood for p in m.predict_files([wav, wav])] == [want, want]
    assert m.predict_features(m.features_from_file(wav)).ood == want
    assert [p.ood for p in m.predict_features(np.stack([m.features_from_file(wav)] * 2))] == [want, want]
    by_wave = m.predict(x, sample_rate=16000)
    assert by_wave.ood == m.ood_scores(m.features_from_waveform(m.prepare_waveform(x, 16000)))[0]


def test_the_bytes_of_a_file_predict_as_the_file_does(built, tmp_path):
    """An upload or a blob held in memory: no temporary file needed, the same decoder."""
    m = LaqModel.load(built.path)
    wav = write_wav(tmp_path / "up.wav", tone(300, 44100, 0.8, channels=2), 44100)
    by_path = m.predict(wav)
    data = wav.read_bytes()
    for held in (data, bytearray(data), memoryview(data)):
        p = m.predict(held)
        assert p.path is None and list(p.probabilities.values()) == list(by_path.probabilities.values())
    assert np.array_equal(m.features_from_bytes(data), m.features_from_file(wav))
    # errors name the bytes as the C API does; a rate is the file's own
    with pytest.raises(AudioError, match=r"^<bytes>: empty audio"):
        m.predict(b"")
    with pytest.raises(AudioError, match=r"^<bytes>: cannot decode audio"):
        m.predict(b"not audio at all" * 8)
    with pytest.raises(AudioError, match=r"a file's bytes carry their own rate"):
        m.predict(data, sample_rate=16000)
    assert m.predict([]) == []  # an empty batch, not a waveform without its rate


@pytest.mark.parametrize(
    "sr,channels,subtype",
    [(44100, 2, "PCM_16"), (8000, 1, "PCM_16"), (48000, 6, "PCM_24"), (22050, 1, "FLOAT"), (11025, 2, "PCM_U8")],
)
def test_any_rate_and_channel_count_works(trained, tmp_path, sr, channels, subtype):
    if subtype != "PCM_16":
        pytest.importorskip("soundfile", reason="writing this subtype needs soundfile")
    m = LaqModel.load(trained.path)
    ext = "wav"
    x = tone(1500, sr, 0.5, channels=channels, seed=7)
    wav = write_wav(tmp_path / f"clip.{ext}", x, sr, subtype=subtype)
    from_file = m.predict(wav)
    assert from_file.label == "angry"
    # the same signal in memory, (channels, samples) and (samples, channels)
    arr = x.T if channels > 1 else x
    assert m.predict(arr, sample_rate=sr).label == "angry"
    if channels > 1:
        assert m.predict(x, sample_rate=sr).label == "angry"
        np.testing.assert_allclose(
            list(m.predict(arr, sample_rate=sr).probabilities.values()),
            list(m.predict(x, sample_rate=sr).probabilities.values()),
            atol=1e-6,
        )


def test_int16_waveform_is_scaled_like_a_decoded_file(trained, tmp_path):
    m = LaqModel.load(trained.path)
    x = tone(180, 8000, 0.5)
    pcm = np.round(x * 32767).astype(np.int16)
    wav = write_wav(tmp_path / "low.wav", pcm, 8000)
    a, b = m.predict(wav), m.predict(pcm, sample_rate=8000)
    assert a.label == b.label == "sad"
    np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=1e-5)


def test_trained_model_predicts_the_right_tone_bands(trained, tmp_path):
    pytest.importorskip("soundfile", reason="writing FLAC needs soundfile")
    m = LaqModel.load(trained.path)
    clips = {"angry": 1450.0, "neutral": 620.0, "sad": 190.0}
    paths = [write_wav(tmp_path / f"{lab}.flac", tone(f, 32000, 0.7, seed=99), 32000) for lab, f in clips.items()]
    preds = m.predict(paths)
    assert [p.label for p in preds] == list(clips)
    assert all(p.confidence > 0.5 for p in preds)


def test_bad_waveforms_raise_audio_errors(built):
    m = LaqModel.load(built.path)
    x = tone(300, 16000)
    with pytest.raises(AudioError, match="sample rate"):
        m.predict(x)
    with pytest.raises(AudioError, match="sample_rate must be a positive integer"):
        m.predict(x, sample_rate=0)
    with pytest.raises(AudioError, match="empty"):
        m.predict(np.zeros(0, np.float32), sample_rate=16000)
    with pytest.raises(AudioError, match="silent"):
        m.predict(np.zeros(16000, np.float32), sample_rate=16000)
    with pytest.raises(AudioError, match="NaN"):
        m.predict(np.full(16000, np.nan, np.float32), sample_rate=16000)
    with pytest.raises(AudioError, match="too short"):
        m.predict(x[:100], sample_rate=16000)
    with pytest.raises(AudioError, match="shape"):
        m.predict(np.zeros((2, 2, 100), np.float32), sample_rate=16000)
    with pytest.raises(AudioError, match="only for waveforms"):
        m.predict("clip.wav", sample_rate=16000)


# --- batches of files ---------------------------------------------------------------------


def _batch_files(tmp_path: Path) -> list[Path]:
    good = [write_wav(tmp_path / f"g{i}.wav", tone(200 + 300 * i, 16000, 0.4, seed=i), 16000) for i in range(3)]
    empty = write_wav(tmp_path / "empty.wav", np.zeros((0,), np.float32), 16000)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n")
    missing = tmp_path / "missing.wav"
    return [good[0], empty, good[1], text, missing, good[2]]


def test_predict_files_reports_bad_files_and_keeps_going(built, tmp_path):
    m = LaqModel.load(built.path)
    paths = _batch_files(tmp_path)
    results = m.predict_files(paths, workers=1)
    assert [r.ok for r in results] == [True, False, True, False, False, True]
    for p, r in zip(paths, results):
        assert r.path == str(p)
        if isinstance(r, FileFailure):
            assert str(p) in r.error and "\n" not in r.error
        else:
            assert r.label == m.predict(p).label
    assert "empty" in results[1].error
    assert "not found" in results[4].error
    with pytest.raises(AudioError, match="empty.wav"):
        m.predict([paths[0], paths[1]])


def test_predict_files_on_native_threads_gives_the_same_results(built, tmp_path):
    m = LaqModel.load(built.path)
    paths = _batch_files(tmp_path)
    one = m.predict_files(paths, workers=1)
    two = m.predict_files(paths * 10, workers=2)
    assert [r.to_dict() for r in one] * 10 == [r.to_dict() for r in two]


# --- bad model files ------------------------------------------------------------------------


def _expect_format_error(path: Path, *fragments: str) -> str:
    with pytest.raises(LaqFormatError) as info:
        serlaq.load(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg
    for frag in fragments:
        assert frag in msg
    return msg


def test_truncated_and_corrupted_files_are_format_errors(built, tmp_path):
    data = built.path.read_bytes()
    for cut in (0, 3, 16, len(data) // 2, len(data) - 1):
        p = tmp_path / f"cut{cut}.laq"
        p.write_bytes(data[:cut])
        _expect_format_error(p)
    # flip bytes in the packed payload: a checksum or a length check must catch it
    bad = bytearray(data)
    for k in range(len(data) // 2, len(data) // 2 + 8):
        bad[k] ^= 0xFF
    p = tmp_path / "flipped.laq"
    p.write_bytes(bytes(bad))
    _expect_format_error(p)


def _with_version(data: bytes, version: int) -> bytes:
    """The same file claiming another format version, with a valid CRC (docs/laq-format.md)."""
    import zlib

    b = bytearray(data)
    b[8:12] = version.to_bytes(4, "little")
    b[24:28] = zlib.crc32(bytes(b[28:]), zlib.crc32(bytes(b[:24]))).to_bytes(4, "little")
    return bytes(b)


def test_unsupported_format_version(built, tmp_path):
    data = built.path.read_bytes()
    p = tmp_path / "same.laq"
    p.write_bytes(_with_version(data, 1))
    assert serlaq.load(p).labels == built.labels  # the helper itself keeps a valid file valid
    for v in (0, 2, 99):
        p = tmp_path / f"v{v}.laq"
        p.write_bytes(_with_version(data, v))
        msg = _expect_format_error(p)
        assert "version" in msg


def test_other_formats_are_format_errors(tmp_path):
    wav = write_wav(tmp_path / "clip.wav", tone(300, 16000), 16000)
    _expect_format_error(wav)
    txt = tmp_path / "model.laq"
    txt.write_text("hello, I am a text file\n" * 20)
    _expect_format_error(txt)
    _expect_format_error(tmp_path / "nope.laq", "not found")
    # a folder is read as a run folder: its model.laq (the text file above), or none
    _expect_format_error(tmp_path, "model.laq: not a .laq file")
    (tmp_path / "empty").mkdir()
    _expect_format_error(tmp_path / "empty", "a folder with no .laq model in it")


def test_a_run_folder_stands_for_its_model(built, tmp_path):
    """`serlaq predict runs/emodb clip.wav`: the folder fit wrote, read as its model.laq."""
    import shutil

    run = tmp_path / "runs" / "emodb"
    run.mkdir(parents=True)
    shutil.copy(built.path, run / "model.laq")
    shutil.copy(built.path, run / "paper.laq")  # a second compression beside it: model.laq still wins
    m = serlaq.load(run)
    assert m.path == str(run / "model.laq")
    wav = write_wav(tmp_path / "a.wav", tone(440, 16000, 0.6), 16000)
    assert m.predict(wav).probabilities == LaqModel.load(built.path).predict(wav).probabilities
    (run / "model.laq").unlink()
    assert serlaq.load(run).path == str(run / "paper.laq")  # the one .laq there
    shutil.copy(built.path, run / "int8.laq")
    _expect_format_error(run, "a folder with 2 .laq models (int8.laq, paper.laq): name the one to use")
    for name in ("int8.laq", "paper.laq"):
        (run / name).unlink()
    (run / "model.ckpt").write_bytes(b"x")
    with pytest.raises(LaqFormatError, match=r"a run folder with no model\.laq \(trained with --no-compress\): serlaq compress --checkpoint .*model\.ckpt$"):
        serlaq.load(run)


def _meta(built) -> dict:
    return json.loads(json.dumps(built.metadata))


@pytest.mark.parametrize(
    "edit,field",
    [
        (lambda md: md.pop("labels"), "labels"),
        (lambda md: md.__setitem__("labels", "angry"), "labels"),
        (lambda md: md.__setitem__("labels", ["a", "a", "b", "c"]), "labels"),
        (lambda md: md.__setitem__("labels", ["a", "b\tc", "d", "e"]), "labels[1]"),
        (lambda md: md.__setitem__("labels", ["a", "b", "\x1b[31mred", "e"]), "labels[2]"),
        # 300k labels for 4 classes: refused at once (a scan of the labels so far took minutes)
        (lambda md: md.__setitem__("labels", [f"l{i}" for i in range(300_000)]), "num_classes"),
        (lambda md: md.pop("features"), "features"),
        (lambda md: md["features"].__setitem__("n_mfcc", "forty"), "features.n_mfcc"),
        (lambda md: md["features"].__setitem__("n_fft", -2), "features.n_fft"),
        (lambda md: md["features"].__setitem__("bogus", 1), "features.bogus"),
        (lambda md: md.pop("architecture"), "architecture"),
        (lambda md: md["architecture"].__setitem__("type", "cnn"), "architecture.type"),
        (lambda md: md["architecture"].__setitem__("num_classes", 5), "architecture.num_classes"),
        (lambda md: md["architecture"].__setitem__("input_dim", True), "architecture.input_dim"),
        (lambda md: md["architecture"].__setitem__("hidden", [48, 25]), "shape"),
        (lambda md: md.pop("normalization"), "normalization"),
        (lambda md: md["normalization"].__setitem__("std", "norm.missing"), "normalization.std"),
    ],
)
def test_bad_metadata_names_the_field(built, tmp_path, edit, field):
    md = _meta(built)
    edit(md)
    p = tmp_path / "bad.laq"
    rng = np.random.default_rng(0)
    dims = [180, 48, 24, 4]
    ws = [rng.normal(size=(dims[i + 1], dims[i])).astype(np.float32) for i in range(3)]
    write_model(p, ws, [None] * 3, (4, 1, 8), built.labels, built.mean, built.std, meta=md)
    _expect_format_error(p, field)


def _with_metadata_text(data: bytes, metadata: str) -> bytes:
    """The same file with its header's metadata object replaced by `metadata` (any text),
    offsets, padding and CRC kept valid, so only the metadata itself is wrong."""
    import zlib

    header_len = int.from_bytes(data[12:16], "little")
    header = json.loads(data[32 : 32 + header_len])
    key = '"metadata":'
    text = json.dumps(header, sort_keys=True, separators=(",", ":"))
    start = text.index(key) + len(key)
    end = start + len(json.dumps(header["metadata"], sort_keys=True, separators=(",", ":")))
    new = (text[:start] + metadata + text[end:]).encode()
    pad = (-(32 + len(new))) % 64
    b = bytearray(data[:32]) + new + b" " * pad + data[32 + header_len :]
    b[12:16] = (len(new) + pad).to_bytes(4, "little")
    b[24:28] = zlib.crc32(bytes(b[28:]), zlib.crc32(bytes(b[:24]))).to_bytes(4, "little")
    return bytes(b)


@pytest.mark.parametrize("text", ["[1, 2]", '"a string"', "{not json", "null"])
def test_metadata_that_is_not_an_object_or_not_json(built, tmp_path, text):
    p = tmp_path / "meta.laq"
    # the helper keeps a file valid when it writes the same metadata back
    p.write_bytes(_with_metadata_text(built.path.read_bytes(), json.dumps(built.metadata, sort_keys=True)))
    assert serlaq.load(p).labels == built.labels
    p.write_bytes(_with_metadata_text(built.path.read_bytes(), text))
    _expect_format_error(p, "metadata")


def test_non_positive_std_is_rejected(tmp_path):
    rng = np.random.default_rng(0)
    std = np.ones(180, np.float32)
    std[7] = 0.0
    dims = [180, 8, 2]
    ws = [rng.normal(size=(dims[i + 1], dims[i])).astype(np.float32) for i in range(2)]
    write_model(tmp_path / "s.laq", ws, [None, None], (8, 8), ["angry", "sad"], np.zeros(180), std)
    _expect_format_error(tmp_path / "s.laq", "normalization.std", "positive")


def test_scores_that_overflow_fail_the_prediction_not_answer_nan(built, tmp_path):
    """A bias of 3e38 (finite, so the reader takes it) overflows the network: the
    prediction fails with one line; no label is answered with a NaN confidence."""
    rng = np.random.default_rng(0)
    dims = [180, 48, 24, 4]
    ws = [rng.normal(0, 0.1, size=(dims[i + 1], dims[i])).astype(np.float32) for i in range(3)]
    bias = np.zeros(48, np.float32)
    bias[0] = 3e38
    write_model(tmp_path / "over.laq", ws, [bias, None, None], (8, 8, 8), built.labels, built.mean, built.std)
    m = serlaq.load(tmp_path / "over.laq")
    with pytest.raises(ValueError, match="scores are NaN or infinite"):
        m.predict_features(feature_batch(1)[0])
    wav = write_wav(tmp_path / "a.wav", tone(440, 22050, 1.0), 22050)
    [res] = m.predict_files([wav])
    assert isinstance(res, FileFailure) and "NaN or infinite" in res.error


def test_a_big_file_that_is_no_model_is_refused_before_it_is_read(tmp_path):
    """A 1 GiB file of zeros (sparse) says 'bad magic' without reading it: under a 256 MiB
    address-space limit the reader would otherwise fail to allocate its bytes."""
    big = tmp_path / "big.laq"
    with open(big, "wb") as f:
        f.truncate(1 << 30)
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 28, 1 << 28)); "
        "from serlaq import _native\n"
        "try: _native.LaqFile(sys.argv[1])\nexcept Exception as e: print(type(e).__name__, e)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(big)], capture_output=True, text=True, timeout=120)
    assert "bad magic bytes" in out.stdout, (out.stdout, out.stderr[-500:])


# --- what gets imported ----------------------------------------------------------------------


def test_a_prediction_imports_neither_torch_nor_numpy(built, tmp_path):
    wav = write_wav(tmp_path / "c.wav", tone(500, 44100, 0.5, channels=2), 44100)
    code = f"""
import sys
import serlaq
m = serlaq.load({str(built.path)!r})
p = m.predict({str(wav)!r})
r = m.predict_files([{str(wav)!r}] * 3, workers=2)
assert p.label in m.labels and [x.label for x in r] == [p.label] * 3
print(m.describe().splitlines()[0])
heavy = sorted(k for k in sys.modules if k.split(".")[0] in (
    "torch", "torchaudio", "lightning", "pytorch_lightning", "torchmetrics", "numpy", "soundfile", "pydantic"))
assert not heavy, heavy
training = sorted(k for k in sys.modules if k.startswith(("serlaq.training", "serlaq.laq", "serlaq.features",
                                                          "serlaq.data", "serlaq.model")))
assert not training, training
print("ok", p.label)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].startswith("ok ")


def test_save_refuses_the_shipped_name_and_makes_its_folders(built, tmp_path, monkeypatch):
    m = serlaq.load(built.path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="shipped model's name"):
        m.save("general")
    assert not (tmp_path / "general").exists()
    m.save("./general")  # the file of that name, as every command reads ./general
    assert serlaq.load("./general").labels == built.labels
    m.save(tmp_path / "new" / "dir" / "m.laq")
    assert (tmp_path / "new" / "dir" / "m.laq").read_bytes() == built.path.read_bytes()
    with pytest.raises(ValueError, match="folder"):
        m.save(tmp_path / "new")


def test_a_model_pickles_as_its_bytes_and_predicts_the_same(built):
    import pickle

    m = serlaq.load(built.path)
    twin = pickle.loads(pickle.dumps(m))
    x = feature_batch(3)
    assert [p.probabilities for p in twin.predict_features(x)] == [p.probabilities for p in m.predict_features(x)]
    assert twin.labels == m.labels and twin.path == m.path


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_top_k_must_be_a_whole_number_from_one(built, bad):
    m = serlaq.load(built.path)
    with pytest.raises(ValueError, match="top_k must be a whole number"):
        m.predict_features(feature_batch(1)[0], top_k=bad)
    assert len(m.predict_features(feature_batch(1)[0], top_k=2).top_k) == 2


@pytest.mark.parametrize("bad", [None, 3, {"a": 1}])
def test_predict_names_what_it_takes_for_a_wrong_kind_of_input(built, bad):
    with pytest.raises(AudioError, match=f"expected a path, a file's bytes, a list of paths or a waveform, got {type(bad).__name__}"):
        serlaq.load(built.path).predict(bad)


def test_an_empty_path_is_named(built):
    with pytest.raises(AudioError, match=r"^'' \(an empty path\): file not found"):
        serlaq.load(built.path).predict("")
