"""`serlaq fit` as a user runs it: flags over config keys, one-line errors, DDP across two
CPU processes, Ctrl-C and --resume.

Most cases call the console entry point (`serlaq.cli.main`) in this process, with its
real exit codes and stderr; DDP and Ctrl-C need a real process (their own launch / signal).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import DEMO_CONFIG, default_signals, run_serlaq, tiny_set_args

import serlaq
from serlaq.cli import app

TINY = tiny_set_args(**{"train.max_epochs": 4, "laq": None})


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    package_root = str(Path(serlaq.__file__).resolve().parents[1])
    python_path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": python_path, "SERLAQ_CACHE": str(tmp_path_factory.mktemp("cli-cache"))}


def serlaq_fit(args: list[str], env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "serlaq.cli", "fit", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`serlaq fit ARGS` through the console entry point: (exit code, stdout, stderr)."""
    return run_serlaq(["fit", *args], capsys)


@pytest.fixture
def in_process_cache(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERLAQ_CACHE", env["SERLAQ_CACHE"])


def test_help_shows_an_example() -> None:
    result = CliRunner().invoke(app, ["fit", "--help"])
    assert result.exit_code == 0
    for flag in ("--config", "--data-dir", "--seed", "--out", "--resume", "--set"):
        assert flag in result.output
    assert "Example: serlaq fit --config" in result.output


def test_fit_command_writes_the_run_folder(tmp_path: Path, in_process_cache: None, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "my-run"
    code, out, err = run_main(["--config", str(DEMO_CONFIG), "--seed", "4", "--out", str(run_dir), *TINY], capsys)
    assert code == 0, err
    assert f"run folder   {run_dir}" in out and "test         accuracy" in out
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["seed"] == 4 and metrics["hidden"] == [64, 32]
    assert metrics["split_sizes"] == {"train": 56, "val": 7, "test": 7}
    for name in ("best.ckpt", "last.ckpt", "config.yaml", "confusion_matrix.png", "logs/metrics.csv"):
        assert (run_dir / name).is_file(), name
    assert "seed: 4" in (run_dir / "config.yaml").read_text()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set", "train.lrr=0.1"], "--set train.lrr: unknown key 'train.lrr'"),
        (["--set", "model.hidden=4HL"], "--set model.hidden: unknown preset '4HL'"),
        (["--set", "data.dataset=emodb"], "needs data.data_dir (or --data-dir DIR)"),
        (["--set", "data.dataset=emodb", "--data-dir", "/no/such/corpus"], "/no/such/corpus: corpus directory not found"),
        (["--resume"], "nothing to resume (no last.ckpt)"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    tmp_path: Path, in_process_cache: None, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    code, _, err = run_main(["--config", str(DEMO_CONFIG), "--out", str(tmp_path / "run"), *args], capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("serlaq: error: ") and expected in lines[0], err


def test_an_unreadable_clip_in_the_corpus_is_named_in_plain_words(
    tmp_path: Path, in_process_cache: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """`serlaq fit --data-dir DIR` (no config: every default, the folder's layout read) on a
    corpus with a damaged file: one line in predict's words, with the way past it."""
    import numpy as np
    import soundfile as sf

    corpus = tmp_path / "corpus"
    for label in ("angry", "sad"):
        (corpus / label).mkdir(parents=True)
        for i in range(4):
            sf.write(corpus / label / f"c{i}.wav", 0.3 * np.sin(np.arange(8000) * 0.03 * (i + 1)), 16000)
    (corpus / "sad" / "broken.wav").write_bytes(b"not audio at all" * 8)
    args = ["--data-dir", str(corpus), "--out", str(tmp_path / "run"), "--no-compress"]
    code, _, err = run_main(args, capsys)
    last = err.strip().splitlines()[-1]
    assert code == 1 and last == (
        f"serlaq: error: {corpus / 'sad' / 'broken.wav'}: cannot decode audio: not a WAV, FLAC, OGG (Vorbis, Opus), "
        "MP3, AIFF, M4A (AAC, ALAC), CAF or WebM (Opus, Vorbis) file, or damaged at its start (--verbose shows the "
        "decoder's message); --set data.on_error=skip trains without such files"
    ), err
    code, _, err = run_main([*args, "--verbose"], capsys)
    assert code == 1 and "no suitable format reader found" in err.strip().splitlines()[-1], err


def test_bad_config_file_names_file_and_key(tmp_path: Path, env: dict[str, str]) -> None:
    # a real process: exit status 1 and one stderr line, no traceback
    config = tmp_path / "broken.yaml"
    config.write_text("model:\n  hidden: 3HL\n  dropuot: 0.2\n")
    result = serlaq_fit(["--config", str(config)], env)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"serlaq: error: {config}: unknown key 'model.dropuot' (allowed: hidden, dropout)"
    )


def test_ddp_on_two_cpu_processes(tmp_path: Path, env: dict[str, str]) -> None:
    # DDP is a config change: two gloo processes on CPU, launched the way a user launches them,
    # followed by the LAQ stage (rank 0 alone, after the process group is closed).
    run_dir = tmp_path / "ddp"
    args = ["--config", str(DEMO_CONFIG), "--out", str(run_dir), *TINY]
    args += ["--set", "trainer.devices=2", "--set", "trainer.strategy=ddp", "--set", "laq={}"]
    result = serlaq_fit(args, env)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert (run_dir / "model.laq").is_file() and (run_dir / "laq.json").is_file()
    assert "compressed   model.laq" in result.stdout
    # scored once per clip in the main process, not on padded DDP shards
    assert metrics["split_sizes"] == {"train": 56, "val": 7, "test": 7}
    assert metrics["test"]["count"] == 7 and sum(map(sum, metrics["test"]["confusion_matrix"])) == 7
    assert 1 <= metrics["epochs"] <= 4
    assert result.stdout.count("run folder") == 1  # only rank 0 reports


def test_ctrl_c_keeps_last_checkpoint_and_resume_continues(
    tmp_path: Path, env: dict[str, str], in_process_cache: None, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "long"
    # long enough to be interrupted, short enough for the resumed run to finish (a resumed run keeps its train section)
    endless = ["--set", "train.max_epochs=200", "--set", "train.patience=1000000"]
    command = [sys.executable, "-m", "serlaq.cli", "fit", "--config", str(DEMO_CONFIG), "--out", str(run_dir), *TINY, *endless]
    # the Ctrl-C must reach the child however pytest was started (see `default_signals`)
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals
    )
    try:
        deadline = time.monotonic() + 180
        while not (run_dir / "last.ckpt").exists():
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "no checkpoint within 180 s"
            time.sleep(0.05)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stderr
    assert f"the last good checkpoint is {run_dir / 'last.ckpt'}" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr
    epoch = torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=True)["epoch"]
    assert not (run_dir / "metrics.json").exists()

    # A changed train section is refused (last.ckpt holds the run's own schedule) ...
    more = ["--set", f"train.max_epochs={epoch + 3}"]
    code, _, err = run_main(["--config", str(DEMO_CONFIG), "--out", str(run_dir), *TINY, *endless, "--resume", *more], capsys)
    assert code == 1 and "cannot resume: train.max_epochs differs" in err and len(err.strip().splitlines()) == 1, err
    # ... the same command plus --resume finishes the run.
    code, _, err = run_main(["--config", str(DEMO_CONFIG), "--out", str(run_dir), *TINY, *endless, "--resume"], capsys)
    assert code == 0, err
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 200
    assert torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=True)["epoch"] == 199


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_data_dir_is_refused_not_read_as_the_current_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, empty: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(["--data-dir", empty, "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and err.strip() == "serlaq: error: --data-dir: empty (the corpus folder; --data-dir . for the current folder)"
    assert not (tmp_path / "run").exists()
