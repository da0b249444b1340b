"""Honest confidence at run time: ECE and mean confidence, the collapse warning of
`serlaq evaluate`, the calibration temperature applied before softmax, and the name
`general` in every command. Runtime only (no torch)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import serlaq
from serlaq import _native
from serlaq.errors import LaqFormatError
from serlaq.metrics import collapse_warning, confidence_scores, expected_calibration_error
from serlaq.runtime import LaqModel

from rt_builders import shared_tone_model, tone, write_model, write_wav
from test_runtime_cli import run_cli


def test_ece_by_hand():
    # bins of width 1/15: 0.9 and 0.95 share bin 14 (0.9333.., 1], 0.5 is in bin 7
    conf = [0.95, 0.95, 0.5, 0.5]
    ok = [1, 0, 1, 1]
    # bin 14: acc 0.5, conf 0.95 -> 0.45; bin 7: acc 1.0, conf 0.5 -> 0.5; weights 1/2 each
    assert expected_calibration_error(conf, ok) == pytest.approx(0.475)
    assert expected_calibration_error([1.0] * 10, [1] * 2 + [0] * 8) == pytest.approx(0.8)
    assert expected_calibration_error([], []) == 0.0
    p = np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]])
    got = confidence_scores(p, [0, 1, 1])
    assert got["mean_confidence"] == pytest.approx(0.7)
    # 0.7 and 0.6 fall in different bins; 0.8 alone
    assert got["ece"] == pytest.approx((0.3 + 0.2 + 0.6) / 3)


def test_collapse_warning_rule():
    labels = ["angry", "neutral", "sad"]
    # 60% of the answers are neutral, only 20% of the truth: warns, naming the label
    t = [0, 0, 0, 0, 1, 2, 2, 2, 2, 1]
    p = [1, 1, 1, 1, 1, 1, 2, 2, 0, 0]
    w = collapse_warning(t, p, labels)
    assert w is not None and "'neutral'" in w and "60%" in w and "serlaq adapt" in w and "\n" not in w
    assert collapse_warning(t, t, labels) is None  # healthy
    assert collapse_warning([1] * 6 + [0] * 4, [1] * 10, labels) is None  # the truth is mostly neutral too
    assert collapse_warning(t, [1] * 5 + [0] * 5, labels) is None  # exactly half is not more than half


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 neutral clips of 8: a third of the truth or less."""
    root = tmp_path_factory.mktemp("honest")
    bands = {"angry": 1500.0, "neutral": 600.0, "sad": 180.0}
    for lab, f in bands.items():
        for j in range(2 if lab == "neutral" else 3):
            write_wav(root / lab / f"{lab}{j}.wav", tone(f * (0.95 + 0.04 * j), 16000, 0.5, seed=j), 16000)
    return root


def collapsed_model(path: Path, onto: str = "neutral", temperature: float | None = None) -> Path:
    """The tone model with a bias that makes every clip `onto` (and optional calibration)."""
    m = shared_tone_model()
    biases = [b.copy() for b in m.biases]
    biases[-1][m.labels.index(onto)] += 50.0 if temperature is None else 0.0
    meta = dict(m.metadata)
    if temperature is not None:
        meta["calibration"] = {"temperature": temperature, "fitted_on": "val"}
    write_model(path, m.weights, biases, m.bits, m.labels, m.mean, m.std, per_channel=True, meta=meta)
    return path


def test_evaluate_warns_on_a_collapsed_run_and_not_on_a_healthy_one(corpus, tmp_path, capsys, monkeypatch):
    bad = collapsed_model(tmp_path / "collapsed.laq")
    code, out, err = run_cli(["evaluate", bad, "--data-dir", corpus, "--dataset", "folder", "--out", tmp_path / "e1"],
                             capsys, monkeypatch)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "100% of the predictions are 'neutral'" in warnings[0] and "25%" in warnings[0]
    report = json.loads((tmp_path / "e1" / "evaluation.json").read_text())
    assert report["top_label"] == "neutral" and report["top_label_share"] == 1.0
    assert report["warnings"] == [warnings[0].removeprefix("serlaq: ")]
    assert report["mean_confidence"] > 0.99 and report["ece"] == pytest.approx(report["mean_confidence"] - 0.25)
    assert "ECE" in out and "top label neutral takes 100.0%" in out

    code, out, err = run_cli(["evaluate", shared_tone_model().path, "--data-dir", corpus, "--dataset", "folder",
                              "--out", tmp_path / "e2"], capsys, monkeypatch)
    assert code == 0 and "warning" not in err, err
    report = json.loads((tmp_path / "e2" / "evaluation.json").read_text())
    assert report["warnings"] == [] and report["accuracy"] == 1.0
    assert 0.0 <= report["ece"] <= 1.0 and report["ece"] == pytest.approx(1.0 - report["mean_confidence"])


def model_built_from(path: Path, dataset: str) -> Path:
    """The tone model with a provenance naming `dataset` as the corpus it was trained on."""
    m = shared_tone_model()
    meta = dict(m.metadata)
    meta["provenance"] = {
        "corpora": [{"name": dataset, "dataset": dataset, "clips": 9, "speakers": 1, "labels": {}}],
        "scores": {"test": {"accuracy": 0.9, "uar": 0.875}},
        "synthetic": False,
    }
    write_model(path, m.weights, m.biases, m.bits, m.labels, m.mean, m.std, per_channel=True, meta=meta)
    return path


def test_evaluate_warns_when_the_corpus_is_one_the_model_was_trained_on(tmp_path, capsys, monkeypatch):
    # EMODB's own naming (speaker, text, emotion letter: W angry, N neutral, T sad), so the
    # layout is read as `emodb` whichever folder it sits in
    emodb = tmp_path / "berlin"
    for j, (letter, f) in enumerate([("W", 1500.0), ("N", 600.0), ("T", 180.0)] * 2):
        write_wav(emodb / f"03a0{j}{letter}a.wav", tone(f * (0.95 + 0.01 * j), 16000, 0.5, seed=j), 16000)
    folders = tmp_path / "by-label"  # the same clips in label folders
    for clip in emodb.iterdir():
        label = {"W": "angry", "N": "neutral", "T": "sad"}[clip.stem[5]]
        (folders / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, folders / label / clip.name)
    heard = model_built_from(tmp_path / "emodb.laq", "emodb")
    code, out, err = run_cli(["evaluate", heard, "--data-dir", emodb, "--out", tmp_path / "e1"], capsys, monkeypatch)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert warnings == [
        "serlaq: warning: the model was trained on this corpus (emodb, 9 clips): these scores include clips it "
        "learned from, not new recordings; its held-out test split scored UAR 87.5% (serlaq info)"
    ]
    assert "(auto: emodb)" in out
    report = json.loads((tmp_path / "e1" / "evaluation.json").read_text())
    assert report["warnings"] == [warnings[0].removeprefix("serlaq: ")] and report["layout"] == "emodb"
    # the cross report says the same of that row
    code, out, err = run_cli(["report", heard, "--protocol", "cross", "--test-data", emodb, "--out", tmp_path / "r"],
                             capsys, monkeypatch)
    assert code == 0, err
    assert "Not a cross-corpus test" in out and "trained on this corpus (emodb" in err
    # another corpus (TESS), the same clips read as a plain folder, or a model with no
    # provenance: no such line
    for model, args in [
        (model_built_from(tmp_path / "tess.laq", "tess"), ["--data-dir", emodb]),
        (heard, ["--data-dir", folders, "--dataset", "folder"]),
        (shared_tone_model().path, ["--data-dir", emodb]),
    ]:
        code, out, err = run_cli(["evaluate", model, *args, "--out", tmp_path / "e2"], capsys, monkeypatch)
        assert code == 0 and "trained on this corpus" not in err, (model, args, err)


def test_the_stored_temperature_divides_the_logits(tmp_path):
    plain = LaqModel.load(shared_tone_model().path)
    hot = LaqModel.load(collapsed_model(tmp_path / "t.laq", temperature=3.0))
    assert plain.temperature == 1.0 and hot.temperature == 3.0
    x = np.stack([plain.features_from_waveform(tone(f, 22050, 0.5)) for f in (180.0, 600.0, 1500.0)])
    z = np.asarray(plain.logits(x), dtype=np.float64) / 3.0
    want = np.exp(z - z.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    assert np.allclose(hot.predict_proba(x), want, atol=1e-12)
    assert (hot.predict_proba(x).argmax(1) == plain.predict_proba(x).argmax(1)).all()
    for bad in (0.0, -1.0, 1e9):
        with pytest.raises(LaqFormatError, match="calibration.temperature"):
            LaqModel.load(collapsed_model(tmp_path / "bad.laq", temperature=bad))


# --- the name `general` --------------------------------------------------------------------


@pytest.fixture()
def general(monkeypatch) -> Path:
    """The shipped general model stood in for by the tone model (the file is embedded at build time)."""
    path = Path(shared_tone_model().path)
    monkeypatch.setattr(_native, "general_model_bytes", lambda: path.read_bytes())
    return path


def test_general_resolves_in_load_and_every_command(general, corpus, tmp_path, capsys, monkeypatch):
    m = serlaq.load()
    assert m.path == "general" and m.labels == LaqModel.load(general).labels
    assert serlaq.load("general").summary()["size_bytes"] == general.stat().st_size
    clip = next(corpus.rglob("*.wav"))
    code, out, err = run_cli(["predict", "general", clip, "--format", "json"], capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out)[0]["label"] == LaqModel.load(general).predict(str(clip)).label
    code, out, err = run_cli(["info", "general"], capsys, monkeypatch)
    assert code == 0 and "model        general" in out, err
    code, out, err = run_cli(["evaluate", "general", "--data-dir", corpus, "--dataset", "folder", "--out", tmp_path / "e"],
                             capsys, monkeypatch)
    assert code == 0 and "model     general" in out, err
    room = tmp_path / "room"
    for j in range(22):
        write_wav(room / f"c{j}.wav", tone(200.0 + 40 * j, 16000, 1.2, seed=j), 16000)
    code, out, err = run_cli(["adapt", "general", room, "--out", tmp_path / "mine.laq"], capsys, monkeypatch)
    assert code == 0, err
    mine = LaqModel.load(tmp_path / "mine.laq")
    assert mine.metadata["provenance"]["adaptations"][0]["clips"] == 22
    # the cross-corpus table (a runtime-only install runs this file: no torch needed)
    args = ["report", "general", "--protocol", "cross", "--test-data", corpus, "--dataset", "folder", "--out", tmp_path / "r"]
    code, out, err = run_cli(args, capsys, monkeypatch)
    assert code == 0 and "wrote " in out, err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["model"] == "general" and report["rows"][0]["zero-shot"]["clips"] > 0


def test_general_in_a_build_without_it_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(_native, "general_model_bytes", lambda: None)
    with pytest.raises(LaqFormatError, match="ships no general model"):
        serlaq.load()
    code, _, err = run_cli(["info", "general"], capsys, monkeypatch)
    assert code == 1 and err.count("\n") == 1 and "ships no general model" in err


def test_a_file_named_like_a_path_is_still_a_path(general, tmp_path, monkeypatch):
    shutil.copy(general, tmp_path / "general")
    monkeypatch.chdir(tmp_path)
    assert LaqModel.load("./general").path == "./general"


# --- out-of-domain score and warning of `serlaq predict` ------------------------------------


def test_predict_scores_out_of_domain_and_warns_when_most_files_are(corpus, tmp_path, capsys, monkeypatch):
    from rt_builders import random_model

    clips = sorted(str(p) for p in corpus.rglob("*.wav"))
    # at home: the tone model on tones like its training ones
    code, out, err = run_cli(["predict", shared_tone_model().path, *clips, "--format", "jsonl"], capsys, monkeypatch)
    assert code == 0 and "warning" not in err, err
    rows = [json.loads(line) for line in out.splitlines()]
    home = LaqModel.load(shared_tone_model().path)
    for r in rows:
        assert r["ood"] == pytest.approx(home.ood_scores(home.features_from_file(r["path"]))[0], rel=1e-9)
        assert r["ood"] < home.ood_threshold
    # far away: a model whose statistics were never fitted on such audio
    far = random_model(tmp_path / "far.laq", labels=("angry", "neutral", "sad"))
    code, out, err = run_cli(["predict", far.path, *clips, "--format", "csv"], capsys, monkeypatch)
    assert code == 0, err
    lines = [line for line in err.splitlines() if "warning" in line]
    assert len(lines) == 1 and f"{len(clips)} of {len(clips)} files" in lines[0] and "serlaq adapt" in lines[0]
    header, first = out.splitlines()[:2]
    assert header.endswith(",ood") and float(first.rsplit(",", 1)[1]) > 3.0
    # one file alone never warns
    code, _, err = run_cli(["predict", far.path, clips[0]], capsys, monkeypatch)
    assert code == 0 and "warning" not in err
    # segments: each speech window carries its score; most far away: one line, naming both remedies
    seg_args = [clips[0], "--segments", "--window", "0.25", "--hop", "0.125", "--no-vad", "--format", "jsonl"]
    code, out, err = run_cli(["predict", far.path, *seg_args], capsys, monkeypatch)
    windows = [json.loads(line) for line in out.splitlines() if '"summary"' not in line]
    assert code == 0 and len(windows) >= 2 and all(w["ood"] > LaqModel.load(far.path).ood_threshold for w in windows)
    lines = [line for line in err.splitlines() if "warning" in line]
    assert len(lines) == 1 and f"{len(windows)} of {len(windows)} speech windows" in lines[0], err
    assert "serlaq adapt" in lines[0] and "--running-norm" in lines[0]
    code, out, err = run_cli(["predict", shared_tone_model().path, *seg_args], capsys, monkeypatch)
    assert code == 0 and "warning" not in err, err
