"""`_native.Model`: the whole `.laq` -> features -> logits path in Rust, checked against
the Python runtime (`LaqModel`, torch features) and a float64 numpy reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rt_builders import metadata, random_model, tone
from serlaq import _native
from serlaq.errors import AudioError, LaqFormatError
from serlaq.features import FeatureConfig
from serlaq.runtime import LaqModel

# Native logits against the float64 dequantized reference, relative to the row's largest
# logit: float32 GEMM kernels vs float64 sums. Measured 2.9e-6.
LOGIT_REL = 1e-4
# Native features against the torch features of the Python runtime, after
# standardization by the file's std (what the model sees). Measured 3.3e-4: this file's
# made-up std (0.5..2) is far below real MFCC spreads (10s of dB), so it overstates the gap.
STANDARDIZED_TOL = 1e-3


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    return random_model(tmp_path_factory.mktemp("native") / "m.laq", bits=(4, 2, 8), per_channel=(True, False, True))


def test_properties(built) -> None:  # noqa: ANN001
    m = _native.Model(built.path)
    assert m.labels == built.labels
    assert m.input_dim == 180 and m.num_classes == 4
    spec = m.spec
    assert spec == FeatureConfig(preset="paper").model_dump(mode="json")
    assert FeatureConfig.from_stored(spec) == FeatureConfig(preset="paper")
    assert json.loads(m.metadata_json) == json.loads(_native.LaqFile(built.path).metadata_json)
    assert m.sample_rate == 22050 and m.min_samples == 2048
    assert "180 -> 48 -> 24 -> 4" in repr(m)
    assert _native.Model.from_bytes(Path(built.path).read_bytes()).labels == built.labels


def test_forward_matches_reference_and_python_runtime(built) -> None:  # noqa: ANN001
    m = _native.Model(built.path)
    rng = np.random.default_rng(3)
    x = (built.mean + built.std * rng.normal(size=(7, 180))).astype(np.float32)
    logits = m.forward(x)
    assert logits.shape == (7, 4) and logits.dtype == np.float32
    want = built.logits(x)
    assert np.max(np.abs(logits - want) / np.abs(want).max(axis=1, keepdims=True)) < LOGIT_REL
    py = LaqModel.load(built.path)
    np.testing.assert_array_equal(logits, py.logits(x))  # same standardization, same kernels
    p = m.probabilities(x)
    assert p.dtype == np.float64 and p.shape == (7, 4)
    np.testing.assert_allclose(p, py.predict_proba(x), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    one = m.forward(x[2])
    assert one.shape == (4,)
    np.testing.assert_allclose(one, logits[2], rtol=1e-5, atol=1e-6)


def test_features_wave_matches_torch_runtime(built) -> None:  # noqa: ANN001
    m = _native.Model(built.path)
    py = LaqModel.load(built.path)
    waves = [tone(f, 22050, seconds=s, seed=i) for i, (f, s) in enumerate([(220, 0.5), (880, 1.0), (3000, 0.3)])]
    for w in waves:
        got = m.features_wave(w)
        ref = py.features_from_waveform(w)
        assert got.shape == (180,) and got.dtype == np.float32
        assert np.max(np.abs(got.astype(np.float64) - ref) / built.std) < STANDARDIZED_TOL
        assert int(np.argmax(m.probabilities(got))) == int(np.argmax(py.predict_proba(ref)))


def test_input_errors(built) -> None:  # noqa: ANN001
    m = _native.Model(built.path)
    with pytest.raises(ValueError, match=r"features must have shape \(n, 180\) or \(180,\), got \[179\]"):
        m.forward(np.zeros(179, np.float32))
    x = np.zeros((2, 180), np.float32)
    x[1, 5] = np.inf
    with pytest.raises(ValueError, match="row 1, column 5 is NaN or infinite"):
        m.probabilities(x)
    w = tone(440, 22050)
    w[10] = np.nan
    with pytest.raises(AudioError, match="waveform: sample 10 is NaN or infinite"):
        m.features_wave(w)
    with pytest.raises(AudioError, match="too short"):
        m.features_wave(np.zeros(100, np.float32))


def _meta_with(**edits: object) -> dict:
    md = metadata(["angry", "happy", "neutral", "sad"], [48, 24])
    for dotted, value in edits.items():
        *path, last = dotted.split("__")
        d = md
        for p in path:
            d = d[p]
        d[last] = value
    return md


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        ({"features__n_fft": 2**30}, r"metadata features\.n_fft: 1073741824 is outside 16\.\.=16384"),
        ({"features__sample_rate": 2_000_000_000}, r"features\.sample_rate: 2000000000 is outside 1000\.\.=192000"),
        ({"features__bogus": 1}, r"features\.bogus: unknown key"),
        ({"labels": ["a", "a", "b", "c"]}, r"metadata field 'labels' has duplicate label \"a\""),
        ({"architecture__type": "cnn"}, r"metadata field 'architecture\.type' is \"cnn\""),
        ({"architecture__num_classes": 5}, r"'architecture\.num_classes' is 5 but there are 4 labels"),
        ({"architecture__hidden": [48, 25]}, r"layer 1 \(net\.2\) has shape 24x48, the architecture says 25x48"),
        ({"normalization__std": "nope"}, r"'normalization\.std' names tensor \"nope\""),
    ],
)
def test_bad_metadata_is_laq_format_error_naming_file(tmp_path: Path, edits: dict, message: str) -> None:
    path = tmp_path / "bad.laq"
    random_model(path, meta=_meta_with(**edits))
    with pytest.raises(LaqFormatError, match=message) as exc:
        _native.Model(path)
    assert str(exc.value).startswith(f"{path}: ") and "\n" not in str(exc.value)
    with pytest.raises(LaqFormatError, match=r"^<bytes>: "):
        _native.Model.from_bytes(path.read_bytes())


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        _native.Model(tmp_path / "missing.laq")
    junk = tmp_path / "junk.laq"
    junk.write_bytes(b"not a model")
    with pytest.raises(LaqFormatError, match="junk.laq: not a .laq file"):
        _native.Model(junk)


def test_files_native_decode_and_batch(built, tmp_path: Path) -> None:  # noqa: ANN001
    from rt_builders import write_wav

    m = _native.Model(built.path)
    good = write_wav(tmp_path / "a.wav", tone(440, 16000, seconds=0.6), 16000)
    stereo = write_wav(tmp_path / "b.flac", tone(660, 44100, seconds=0.5, channels=2), 44100, subtype="PCM_24")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF but not audio")
    wave = _native.load_audio(str(good), 22050, 2048)
    np.testing.assert_array_equal(m.features_file(good), m.features_wave(wave))
    proba, ood = m.predict_file(good)
    np.testing.assert_array_equal(proba, m.probabilities(m.features_wave(wave)))
    assert ood == _native.model_ood_scores(m, m.features_wave(wave))[0]
    assert m.scored(m.features_wave(wave)) == [(proba, ood)]
    with pytest.raises(AudioError, match="missing.wav"):
        m.predict_file(tmp_path / "missing.wav")
    paths = [str(good), str(junk), str(stereo), str(tmp_path / "missing.wav")]
    for threads in (1, 2):
        out = m.predict_files(paths, threads=threads)
        assert [p is None for p, _ in out] == [False, True, False, True]
        assert out[0][0] == m.predict_file(good) and out[2][0] == m.predict_file(stereo)
        assert "junk.wav" in out[1][1] and "missing.wav" in out[3][1]
        assert out[0][1] is None and "\n" not in out[1][1]


def test_feature_plan_class() -> None:
    cfg = FeatureConfig(preset="rich")
    plan = _native.FeaturePlan(json.dumps(cfg.model_dump(mode="json")))
    assert plan.dim == cfg.dim == 272 and plan.spec == cfg.model_dump(mode="json")
    w = tone(300, 22050)
    np.testing.assert_array_equal(plan.features(w), _native.features(json.dumps(cfg.model_dump(mode="json")), w))
    with pytest.raises(ValueError, match=r"features\.n_mels: 600 is outside 1\.\.=512"):
        _native.FeaturePlan(json.dumps({"n_mels": 600}))
