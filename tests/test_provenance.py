"""A model says where it comes from: `serlaq fit` compresses by default and the `.laq` carries
its corpora, split and scores; `predict` warns about a model of the synthetic demo corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import DEMO_CONFIG, fit_tiny, run_serlaq, tiny_set_args

from serlaq import provenance
from serlaq.runtime import LaqModel
from serlaq.training import RunResult

KEYS = {"serlaq_version", "created", "corpora", "synthetic", "split", "scores", "adaptations"}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return fit_tiny(tmp_path_factory.mktemp("prov"), **{"laq.qat.epochs": 3})


def test_the_laq_file_says_what_it_was_trained_on(demo_run: RunResult) -> None:
    meta = LaqModel.load(demo_run.run_dir / "model.laq").metadata
    prov = meta["provenance"]
    assert set(prov) == KEYS
    assert prov["created"] == "2026-01-01T00:00:00Z"  # SOURCE_DATE_EPOCH, pinned by conftest
    assert prov["synthetic"] is True and prov["adaptations"] == []
    [corpus] = prov["corpora"]
    # TINY_RUN: 7 emotions x 10 clips from 2 speakers
    assert corpus == {
        "name": "synthetic",
        "dataset": "synthetic",
        "clips": 70,
        "speakers": 2,
        "labels": {label: 10 for label in demo_run.metrics["labels"]},
    }
    assert prov["split"] == {
        "protocol": "stratified",
        "fractions": [0.8, 0.1, 0.1],
        "seed": 0,
        "sizes": demo_run.metrics["split_sizes"],
    }
    # the scores are the packed model's, the ones laq.json reports for the file
    assert prov["scores"]["val"]["accuracy"] == pytest.approx(demo_run.laq["accuracy"]["laq_val"], abs=1e-6)
    assert prov["scores"]["test"]["accuracy"] == pytest.approx(demo_run.laq["accuracy"]["laq_test"], abs=1e-6)
    for split in ("val", "test"):
        assert 0.0 <= prov["scores"][split]["uar"] <= 1.0


def test_info_json_carries_the_provenance(demo_run: RunResult, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_serlaq(["info", str(demo_run.run_dir / "model.laq"), "--json"], capsys)
    assert code == 0
    assert set(json.loads(out)["provenance"]) == KEYS


def test_predict_warns_once_about_a_synthetic_model(
    demo_run: RunResult, tiny_corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = next(tiny_corpus.rglob("*.wav"))
    code, out, err = run_serlaq(["predict", str(demo_run.run_dir / "model.laq"), str(clip)], capsys)
    assert code == 0 and clip.name in out
    warnings = [line for line in err.splitlines() if "synthetic demo corpus" in line]
    assert len(warnings) == 1 and warnings[0].startswith("serlaq: warning: ")


def test_no_warning_for_a_model_without_provenance(tmp_path: Path, tiny_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rt_builders import random_model  # an old-style file: no provenance key at all

    built = random_model(tmp_path / "old.laq")
    model = LaqModel.load(built.path)
    assert "provenance" not in model.metadata and model.summary().get("provenance") is None
    clip = next(tiny_corpus.rglob("*.wav"))
    code, _, err = run_serlaq(["predict", str(built.path), str(clip)], capsys)
    assert code == 0 and "warning" not in err


def test_created_honours_source_date_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    assert provenance.created_now() == "1970-01-01T00:00:00Z"
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(ValueError, match="SOURCE_DATE_EPOCH"):
        provenance.created_now()
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    assert provenance.created_now().startswith("20") and provenance.created_now().endswith("Z")


def test_corpus_record_counts_clips_speakers_and_labels() -> None:
    rec = provenance.corpus_record("emodb", "emodb", [("angry", "03"), ("sad", "03"), ("angry", "08")])
    assert rec == {"name": "emodb", "dataset": "emodb", "clips": 3, "speakers": 2, "labels": {"angry": 2, "sad": 1}}
    assert not provenance.trained_on_synthetic({"provenance": {"synthetic": False}})
    assert not provenance.trained_on_synthetic({})


def _config_without_laq(tmp_path: Path) -> Path:
    raw = yaml.safe_load(DEMO_CONFIG.read_text())
    del raw["laq"]
    path = tmp_path / "nolaq.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
def test_fit_compresses_a_config_without_a_laq_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERLAQ_CACHE", str(tmp_path / "cache"))
    config = _config_without_laq(tmp_path)
    args = ["fit", "--config", str(config), *tiny_set_args(**{"train.max_epochs": 2})]
    code, out, err = run_serlaq([*args, "--out", str(tmp_path / "a")], capsys)
    assert code == 0, err
    assert (tmp_path / "a" / "model.laq").is_file() and "compressed   model.laq" in out
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert saved["laq"]["mode"] == "qat"  # the default settings, written where the user can see them

    code, out, err = run_serlaq([*args, "--out", str(tmp_path / "b"), "--no-compress"], capsys)
    assert code == 0, err
    assert (tmp_path / "b" / "model.ckpt").is_file() and not (tmp_path / "b" / "model.laq").exists()
    assert "compressed" not in out


def test_a_multi_corpus_datamodule_names_its_corpora() -> None:
    from types import SimpleNamespace

    from serlaq.config import load_config
    from serlaq.data.corpora import Clip
    from serlaq.laq.export import datamodule_provenance

    config = load_config(None, {"data.dataset": "emodb", "data.data_dir": "/data/emodb/wav", "seed": 4})
    clips = {"train": [Clip(Path("a.wav"), "angry", "03")], "val": [Clip(Path("b.wav"), "sad", "08")], "test": []}
    listed = [
        {"name": "emodb", "dataset": "emodb", "source": "/local/path", "clips": 2, "speakers": 2, "labels": {"angry": 1, "sad": 1}},
        {"name": "tess", "dataset": "tess", "source": "/x", "clips": 5, "speakers": 1, "labels": {"sad": 5}},
    ]
    scores = {"val": {"accuracy": 1.0, "uar": 1.0}, "test": {"accuracy": 0.5, "uar": 0.5}}
    single = SimpleNamespace(config=config, split_clips=clips.__getitem__, split_sizes={"train": 1, "val": 1, "test": 0}, summary={})
    prov = datamodule_provenance(single, scores)
    assert prov["corpora"] == [{"name": "emodb", "dataset": "emodb", "clips": 2, "speakers": 2, "labels": {"angry": 1, "sad": 1}}]
    assert prov["split"]["seed"] == 4 and prov["synthetic"] is False  # "wav/" is named by its parent folder
    # one corpus read with dataset auto: the datamodule lists it by the layout it read, named by its folder
    auto = load_config(None, {"data.dataset": "auto", "data.data_dir": "/data/emodb/wav"})
    read = {**listed[0], "name": "auto"}
    prov = datamodule_provenance(SimpleNamespace(**{**vars(single), "config": auto, "summary": {"corpora": [read]}}), scores)
    assert [(c["name"], c["dataset"]) for c in prov["corpora"]] == [("emodb", "emodb")]
    multi = SimpleNamespace(**{**vars(single), "summary": {"corpora": listed}})
    prov = datamodule_provenance(multi, scores)
    assert [c["name"] for c in prov["corpora"]] == ["emodb", "tess"] and "source" not in prov["corpora"][0]
