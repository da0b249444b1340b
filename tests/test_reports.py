"""`serlaq report`: Table 4 / Table 3 rows, multi-seed aggregation, files written."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import fit_tiny

from serlaq.cli import main
from serlaq.reports import ROWS, aggregate, mean_sd, render_markdown, report
from serlaq.training import RunResult

TRAIN: dict[str, Any] = {
    "model.hidden": [48, 24],
    "laq": {"qat": {"epochs": 2}},  # keeps every QAT row of the report short
}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return fit_tiny(tmp_path_factory.mktemp("report"), "r", **TRAIN)


def test_mean_sd_and_paired_differences_by_hand() -> None:
    assert mean_sd([0.5, 0.7]) == pytest.approx((0.6, 0.1414213562))
    assert mean_sd([0.5]) == (0.5, 0.0) and mean_sd([]) is None
    seeds = [
        {"rows": {"fp32": {"avg_bits": 32.0, "size_kb": 10.0, "val": 0.5, "test": 0.60}, "laq": {"avg_bits": 2.0, "size_kb": 1.0, "val": 0.5, "test": 0.65}}},
        {"rows": {"fp32": {"avg_bits": 32.0, "size_kb": 10.0, "val": 0.7, "test": 0.70}, "laq": {"avg_bits": 1.0, "size_kb": 0.5, "val": 0.6, "test": 0.68}}},
    ]
    agg = aggregate(seeds)
    assert agg["seeds"] == 2
    laq = agg["rows"]["laq"]
    assert laq["avg_bits"] == pytest.approx((1.5, 0.7071067811))
    assert laq["test"][0] == pytest.approx(0.665)
    # paired: (0.65 - 0.60, 0.68 - 0.70) = (+0.05, -0.02)
    assert laq["paired_test_diff"] == pytest.approx((0.015, 0.0494974746))
    assert agg["rows"]["fp32"]["paired_test_diff"] == (0.0, 0.0)


def test_report_over_two_seeds(run: RunResult, tmp_path: Path) -> None:
    folder = report(run.run_dir, seeds=2, out=tmp_path / "rep")
    data = json.loads((folder / "report.json").read_text())
    assert data["seeds"] == [0, 1]
    assert (folder / "seeds" / "seed-1" / "model.ckpt").is_file()  # the second seed was trained
    for name in ("accuracy_vs_bits.png", "layer_bits.png", "confusion_laq.png"):
        assert (folder / name).read_bytes()[:8] == PNG
    rows = data["per_seed"][0]["rows"]
    assert set(rows) == {key for key, _ in ROWS}
    # the fp32 row is the model fit scored; fixed rows shrink with their bits
    assert rows["fp32"]["test"] == pytest.approx(run.metrics["test"]["accuracy"])
    sizes = [rows[f"fixed{b}"]["size_kb"] for b in range(8, 0, -1)]
    assert sizes == sorted(sizes, reverse=True)
    for b in range(1, 9):
        assert rows[f"fixed{b}"]["avg_bits"] == b
        assert rows[f"fixed{b}"]["bound_kb"] <= rows[f"fixed{b}"]["size_kb"] < rows[f"fixed{b}"]["file_kb"]
    assert rows["laq"]["avg_bits"] == pytest.approx(
        sum(s[0] * s[1] for s in zip((lay["shape"][0] * lay["shape"][1] for lay in data["per_seed"][0]["layers"]), rows["laq"]["plan"].values()))
        / sum(lay["shape"][0] * lay["shape"][1] for lay in data["per_seed"][0]["layers"])
    )
    assert rows["default"]["avg_bits"] <= 1.1 + 1e-9
    assert rows["fixed1_pc_qat"]["size_kb"] > rows["fixed1_qat"]["size_kb"]  # per-channel scales cost bytes
    assert rows["fixed1_qat"]["qat_epochs"] <= 2
    assert len(data["per_seed"][0]["table3"]) == 9
    # multi-seed aggregation and its Markdown
    agg = data["aggregate"]["rows"]
    assert agg["fp32"]["test"][0] == pytest.approx((data["per_seed"][0]["rows"]["fp32"]["test"] + data["per_seed"][1]["rows"]["fp32"]["test"]) / 2)
    md = (folder / "report.md").read_text()
    assert "## Table 4" in md and "## Table 3" in md and "LAQ (paper)" in md and " ± " in md
    assert "test − fp32 (paired)" in md


def test_single_seed_markdown_lists_plans(run: RunResult, tmp_path: Path) -> None:
    folder = report(run.run_dir, qat_rows=False, table3=False, out=tmp_path / "one")
    data = json.loads((folder / "report.json").read_text())
    assert "fixed1_qat" not in data["per_seed"][0]["rows"] and "table3" not in data["per_seed"][0]
    md = render_markdown(data)
    plan = " ".join(str(b) for b in data["per_seed"][0]["rows"]["laq"]["plan"].values())
    assert f"| {plan} |" in md and "## Table 3" not in md


def test_report_command_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = sys.argv
    sys.argv = ["serlaq", "report", str(tmp_path / "nothing")]
    try:
        with pytest.raises(SystemExit) as exc:
            main()
    finally:
        sys.argv = argv
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "run folder not found" in err and err.count("\n") == 1


def test_hl_sweep_trains_every_table2_variant_and_reuses_finished_runs(run: RunResult, tmp_path: Path) -> None:
    from serlaq.model import PRESETS

    calls: list[str] = []
    folder = report(run.run_dir, qat_rows=False, table3=False, hl_sweep=True, out=tmp_path / "hl", progress=calls.append)
    data = json.loads((folder / "report.json").read_text())
    assert list(data["hl_sweep"]) == list(PRESETS)
    for name, widths in PRESETS.items():
        assert [lay["shape"][0] for lay in data["hl_sweep"][name]["layers"]][:-1] == widths
        assert "laq" in data["hl_sweep"][name]["rows"]
    assert (folder / "hl_sweep.png").read_bytes()[:8] == PNG
    assert "## HL variants" in (folder / "report.md").read_text()
    trained = [c for c in calls if c.startswith("training")]
    assert len(trained) == len(PRESETS)
    calls.clear()
    report(run.run_dir, qat_rows=False, table3=False, hl_sweep=True, out=tmp_path / "hl", progress=calls.append)
    assert not [c for c in calls if c.startswith("training")]  # the finished runs were reused
