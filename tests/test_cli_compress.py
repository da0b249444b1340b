"""`serlaq compress` as a user runs it: options override the run's laq section, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import fit_tiny, run_serlaq

from serlaq.cli import app
from serlaq.runtime import LaqModel
from serlaq.training import RunResult


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return fit_tiny(tmp_path_factory.mktemp("cli-compress"), "r")


def test_help_lists_the_options_and_an_example() -> None:
    result = CliRunner().invoke(app, ["compress", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for flag in ("--checkpoint", "--out", "--margin", "--weights", "--per-channel", "--mode", "--qat", "--budget-bits", "--budget-kb"):
        assert flag in result.output
    assert "Example: serlaq compress --checkpoint" in result.output


def test_help_says_what_the_default_mode_does() -> None:
    text = " ".join(CliRunner().invoke(app, ["compress", "--help"], terminal_width=400).output.split())
    # the default (qat): a budget search on agreement with fp32 over train + val, then QAT
    assert "default mode (qat) runs a budget search" in text
    assert "agree most with the fp32 model on train + val" in text
    assert "quantization-aware fine-tuning" in text
    # the paper mode: importance ranking, then a search on validation accuracy
    assert "--mode paper is the paper's procedure: layers ranked by importance" in text
    assert "searched on validation accuracy" in text


def test_paper_mode_with_options(run: RunResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "paper.laq"
    args = ["compress", "--checkpoint", str(run.checkpoint), "--out", str(out), "--mode", "paper"]
    code, stdout, err = run_serlaq([*args, "--margin", "0.05", "--weights", "1", "0", "0", "--per-channel"], capsys)
    assert code == 0, err
    assert f"wrote        {out}" in stdout and "avg" in stdout
    summary = json.loads((tmp_path / "paper.json").read_text())
    s = summary["settings"]
    assert (s["mode"], s["margin"], s["weights"], s["per_channel"], s["qat"]) == ("paper", 0.05, [1.0, 0.0, 0.0], True, False)
    laq = LaqModel.load(out)
    assert {layer.granularity for layer in laq.layers} == {"channel"}
    assert laq.metadata["laq"]["weights"] == [1.0, 0.0, 0.0]
    assert laq.avg_bits == pytest.approx(summary["avg_bits"])


def test_default_mode_writes_model_laq_next_to_the_checkpoint(run: RunResult, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, err = run_serlaq(["compress", "--checkpoint", str(run.checkpoint), "--qat-epochs", "2", "--json"], capsys)
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["laq_file"] == "model.laq"
    assert summary["settings"]["mode"] == "qat" and summary["qat"]["epochs"] <= 2
    assert (run.run_dir / "model.laq").is_file() and (run.run_dir / "laq.json").is_file()
    assert (run.run_dir / "qat" / "last.ckpt").is_file()
    assert LaqModel.load(run.run_dir / "model.laq").avg_bits <= 1.1 + 1e-9


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mode", "fast"], "--mode"),
        (["--criterion", "loss"], "--criterion"),
        (["--out", "model.bin"], "must end in .laq"),
        (["--budget-bits", "0.5"], "--budget-bits"),
    ],
)
def test_bad_options_are_one_line_errors(
    run: RunResult, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_serlaq(["compress", "--checkpoint", str(run.checkpoint), *extra], capsys)
    assert code == 1
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_or_bad_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_serlaq(["compress", "--checkpoint", str(tmp_path / "none.ckpt")], capsys)
    assert code == 1 and "none.ckpt: checkpoint not found" in err
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    code, _, err = run_serlaq(["compress", "--checkpoint", str(junk)], capsys)
    assert code == 1 and "junk.ckpt: not a serlaq checkpoint" in err and err.count("\n") == 1
    assert "not a PyTorch checkpoint file" in err


class _Planted:
    """Unpickled, it would create `marker`: what a crafted checkpoint could do instead."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_a_crafted_checkpoint_runs_no_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A checkpoint is unpickled with tensors and plain values only."""
    import torch

    marker = tmp_path / "ran"
    crafted = tmp_path / "crafted.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"x": _Planted(marker)}}, crafted)
    code, _, err = run_serlaq(["compress", "--checkpoint", str(crafted)], capsys)
    assert code == 1 and "crafted.ckpt: not a serlaq checkpoint" in err and err.count("\n") == 1, err
    assert not marker.exists()
