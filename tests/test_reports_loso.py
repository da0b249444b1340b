"""`serlaq report --protocol loso`: folds, speaker independence, rows, aggregation, files, CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import fit_tiny, run_serlaq

from serlaq.errors import ConfigError
from serlaq.reports import aggregate, render_loso_markdown, render_markdown, report
from serlaq.training import RunResult

# 3 speakers -> 3 folds; short QAT keeps each fold's compression quick
TRAIN: dict[str, Any] = {
    "data.synthetic.speakers": 3,
    "model.hidden": [48, 24],
    "laq": {"qat": {"epochs": 2}},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return fit_tiny(tmp_path_factory.mktemp("loso"), "r", **TRAIN)


@pytest.fixture(scope="module")
def loso(run: RunResult) -> tuple[Path, dict[str, Any]]:
    folder = report(run.run_dir, protocol="loso")
    return folder, json.loads((folder / "report.json").read_text())


def corpus_speakers(run: RunResult) -> list[str]:
    """Every clip's speaker, in corpus order (independently of the report's own bookkeeping)."""
    from serlaq.data.datamodule import SERDataModule

    dm = SERDataModule.from_checkpoint(run.checkpoint)
    by_index = {i: c.speaker for s in ("train", "val", "test") for i, c in zip(dm.split_indices(s), dm.split_clips(s))}
    return [by_index[i] for i in range(len(by_index))]


def test_one_fold_per_speaker_never_seen_in_its_train_or_val(run: RunResult, loso: tuple[Path, dict[str, Any]]) -> None:
    folder, data = loso
    assert folder == run.run_dir / "report-loso"
    speakers = corpus_speakers(run)
    names = sorted(set(speakers))
    assert len(names) == 3
    assert data["protocol"] == "loso" and data["meta"]["speakers"] == names
    assert [f["speaker"] for f in data["folds"]] == names
    for k, fold in enumerate(data["folds"]):
        fold_dir = folder / "folds" / f"fold-{k:02d}-{fold['speaker']}"
        splits = json.loads((fold_dir / "splits.json").read_text())  # what the fold trained on
        assert {speakers[i] for i in splits["test"]} == {fold["speaker"]}
        assert splits["test"] == [i for i, s in enumerate(speakers) if s == fold["speaker"]]
        assert fold["speaker"] not in {speakers[i] for i in splits["train"] + splits["val"]}
        assert sorted(splits["train"] + splits["val"] + splits["test"]) == list(range(len(speakers)))
        others = [s for s in names if s != fold["speaker"]]
        assert fold["train_speakers"] == others and set(fold["val_speakers"]) <= set(others)
        assert fold["split_sizes"] == {name: len(idx) for name, idx in splits.items()}
        # the fold's own fit scored the same held-out speaker as the fp32 row
        metrics = json.loads((fold_dir / "metrics.json").read_text())
        assert fold["rows"]["fp32"]["test"] == pytest.approx(metrics["test"]["accuracy"])
        assert fold["rows"]["fp32"]["test_uar"] == pytest.approx(metrics["test"]["uar"])


def test_rows_compressed_and_aggregated_over_folds(loso: tuple[Path, dict[str, Any]]) -> None:
    _, data = loso
    for fold in data["folds"]:
        fp32, comp = fold["rows"]["fp32"], fold["rows"]["compressed"]
        assert fp32["avg_bits"] == 32.0
        assert comp["avg_bits"] <= 1.1 + 1e-9  # the default budget
        assert 0 < comp["file_kb"] < fp32["size_kb"]
        for row in (fp32, comp):
            assert all(0.0 <= row[k] <= 1.0 for k in ("test", "test_uar", "test_f1", "val", "val_uar", "val_f1"))
    agg = data["aggregate"]["rows"]
    assert set(agg) == {"fp32", "compressed"} and data["aggregate"]["seeds"] == 3
    tests = [f["rows"]["compressed"]["test"] for f in data["folds"]]
    assert agg["compressed"]["test"][0] == pytest.approx(sum(tests) / 3)
    diffs = [f["rows"]["compressed"]["test"] - f["rows"]["fp32"]["test"] for f in data["folds"]]
    assert agg["compressed"]["paired_test_diff"][0] == pytest.approx(sum(diffs) / 3)
    assert data["meta"]["compress_settings"]["mode"] == "qat"
    assert data["meta"]["features"]["preset"] == "portable-trimmed" and data["meta"]["train"]["recipe"] == "tuned"


def test_markdown_lists_every_fold_and_the_means(loso: tuple[Path, dict[str, Any]]) -> None:
    folder, data = loso
    md = (folder / "report.md").read_text()
    assert md == render_loso_markdown(data)
    assert "Features: preset `portable-trimmed` (248-d); training recipe `tuned`" in md
    for fold in data["folds"]:
        c = fold["rows"]["compressed"]
        assert f"| {fold['fold']} | {fold['speaker']} |" in md and f"| {c['avg_bits']:.3f} | {c['file_kb']:.1f} |" in md
    m, s = data["aggregate"]["rows"]["fp32"]["test_uar"]
    assert "## Mean ± sd over 3 folds" in md and f"{100 * m:.1f} ± {100 * s:.1f}" in md
    assert "| compressed |" in md and "test − fp32 (paired per fold)" in md


def test_cli_reuses_the_trained_folds(run: RunResult, loso: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    folder, data = loso
    code, out, err = run_serlaq(["report", str(run.run_dir), "--protocol", "loso"], capsys)
    assert code == 0, err
    assert "report: training" not in err and "report: scoring fold 2" in err
    assert "# Leave-one-speaker-out report" in out and "wrote" in out
    again = json.loads((folder / "report.json").read_text())
    assert [f["rows"]["fp32"] for f in again["folds"]] == [f["rows"]["fp32"] for f in data["folds"]]


def test_loso_refuses_options_it_does_not_use(run: RunResult, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--seeds: not used with --protocol loso"):
        report(run.run_dir, protocol="loso", seeds=2, out=tmp_path)
    with pytest.raises(ConfigError, match="--protocol: expected split or loso"):
        report(run.run_dir, protocol="kfold", out=tmp_path)


def test_split_report_header_names_preset_and_recipe(run: RunResult, tmp_path: Path) -> None:
    folder = report(run.run_dir, qat_rows=False, table3=False, out=tmp_path / "split")
    data = json.loads((folder / "report.json").read_text())
    assert data["meta"]["features"] == {"preset": "portable-trimmed", "dim": 248}
    md = (folder / "report.md").read_text()
    assert "Features: preset `portable-trimmed` (248-d); training recipe `tuned` (at most 6 epochs, no early stopping" in md
    del data["meta"]["features"]  # a report.json from before the line existed still renders
    assert "Features:" not in render_markdown(data)


def test_aggregate_over_named_rows_by_hand() -> None:
    folds = [
        {"rows": {"fp32": {"avg_bits": 32.0, "test": 0.50}, "compressed": {"avg_bits": 1.0, "test": 0.40, "file_kb": 30.0}}},
        {"rows": {"fp32": {"avg_bits": 32.0, "test": 0.70}, "compressed": {"avg_bits": 1.1, "test": 0.75, "file_kb": 32.0}}},
    ]
    agg = aggregate(folds, keys=["fp32", "compressed"])
    assert set(agg["rows"]) == {"fp32", "compressed"}
    assert agg["rows"]["compressed"]["file_kb"] == pytest.approx((31.0, 1.4142135623))
    # paired: (0.40 - 0.50, 0.75 - 0.70) = (-0.10, +0.05)
    assert agg["rows"]["compressed"]["paired_test_diff"] == pytest.approx((-0.025, 0.1060660172))
    assert set(aggregate(folds)["rows"]) == {"fp32"}  # the Table-4 rows by default
