"""Where the runtime commands read and write: a model named as typed (`./general` is a file),
output folders refused before the work, folders that cannot be read named, file names that
are not UTF-8 kept, and flags that do nothing refused rather than ignored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from serlaq import _native

from rt_builders import shared_tone_model, tone, write_wav
from test_runtime_cli import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def tones():
    return shared_tone_model()


def test_dot_slash_general_is_the_file_and_general_the_shipped_model(tones, tmp_path, capsys, monkeypatch):
    """typer's Path would turn `./general` into `general`: the commands take the words as typed."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["info", "./general"], capsys, monkeypatch)
    assert code == 1 and "./general" in err and "not found" in err  # no such file: not the shipped model
    Path("general").write_bytes(Path(tones.path).read_bytes())
    code, out, err = run_cli(["info", "./general", "--json"], capsys, monkeypatch)
    assert code == 0 and json.loads(out)["labels"] == tones.labels, err
    clip = write_wav(tmp_path / "c.wav", tone(1500, 16000), 16000)
    code, out, _ = run_cli(["predict", "./general", clip, "--format", "json"], capsys, monkeypatch)
    assert code == 0 and set(json.loads(out)[0]["probabilities"]) == set(tones.labels)
    if _native.general_model_bytes() is not None:
        code, out, _ = run_cli(["info", "general", "--json"], capsys, monkeypatch)
        assert code == 0 and json.loads(out)["labels"] != tones.labels


def test_segments_on_error_skip_writes_no_error_row(tones, tmp_path, capsys, monkeypatch):
    good = write_wav(tmp_path / "good.wav", tone(600, 16000, 3.0), 16000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....not audio" * 10)
    for fmt in ("jsonl", "csv"):
        args = ["predict", tones.path, good, bad, "--segments", "--format", fmt]
        code, out, err = run_cli([*args, "--on-error", "skip"], capsys, monkeypatch)
        assert code == 0 and "bad.wav" not in out and "good.wav" in out, out
        assert [line for line in err.splitlines() if "bad.wav" in line][0].startswith("serlaq: skipped: ")
        code, out, _ = run_cli(args, capsys, monkeypatch)
        assert code == 1 and "bad.wav" in out  # fail (the default) keeps its error row


def test_output_folders_are_refused_before_the_work(tones, tmp_path, capsys, monkeypatch):
    """An --out that is a file, or lies under one; a --plot that is a folder: one line, no traceback."""
    corpus = tmp_path / "corpus"
    for lab, f in {"angry": 1500.0, "sad": 180.0}.items():
        write_wav(corpus / lab / f"{lab}.wav", tone(f, 16000), 16000)
    taken = tmp_path / "taken.txt"
    taken.write_text("a file")
    for out, why in ((taken, "is a file, not a folder"), (taken / "sub", "cannot make the folder")):
        code, _, err = run_cli(["evaluate", tones.path, "--data-dir", corpus, "--dataset", "folder", "--out", out], capsys, monkeypatch)
        assert code == 1, err
        assert_one_line_error(err, "--out", str(out), why)
        code, _, err = run_cli(["report", tones.path, "--protocol", "cross", "--test-data", corpus, "--out", out], capsys, monkeypatch)
        assert code == 1, err
        assert_one_line_error(err, "--out", why)
    assert taken.read_text() == "a file"
    pytest.importorskip("matplotlib")
    clip = write_wav(tmp_path / "call.wav", tone(600, 16000, 3.0), 16000)
    code, out, err = run_cli(["predict", tones.path, clip, "--segments", "--plot", tmp_path], capsys, monkeypatch)
    assert code == 1 and out == ""
    assert_one_line_error(err, "--plot", "is a folder", "timeline.png")


def test_bad_choices_are_usage_errors_named_by_their_flag(tones, tmp_path, capsys, monkeypatch):
    corpus = tmp_path / "corpus"
    write_wav(corpus / "angry" / "a.wav", tone(1500, 16000), 16000)
    code, _, err = run_cli(["evaluate", tones.path, "--data-dir", corpus, "--dataset", "bogus"], capsys, monkeypatch)
    assert code == 2 and "--on-error" not in err
    assert_one_line_error(err, "--dataset: unknown corpus layout 'bogus'", "folder")
    code, _, err = run_cli(["report", tones.path, "--protocol", "crosss"], capsys, monkeypatch)
    assert code == 2
    assert_one_line_error(err, "--protocol", "split, loso, cross", "'crosss'")
    clip = write_wav(tmp_path / "c.wav", tone(600, 16000), 16000)
    for flag in (["--running-prior", "5"], ["--running-horizon", "9"], ["--no-running-balance"]):
        code, out, err = run_cli(["predict", tones.path, clip, *flag], capsys, monkeypatch)
        assert code == 2 and out == ""
        assert_one_line_error(err, flag[0], "only with --segments")


def test_a_folder_that_cannot_be_read_is_named(tones, tmp_path):
    """Its files would otherwise be missing from the results without a word. Root reads any
    folder, so as root the search (serlaq-rt: the core's, which the Python faces share) runs
    as `nobody`."""
    from test_serlaq_rt import rt_binary

    rt = rt_binary()
    top = Path(tempfile.mkdtemp(dir="/tmp" if os.geteuid() == 0 else tmp_path))
    try:
        top.chmod(0o755)
        (top / "model.laq").write_bytes(Path(tones.path).read_bytes())
        (top / "model.laq").chmod(0o644)
        write_wav(top / "good.wav", tone(600, 16000), 16000).chmod(0o644)
        locked = top / "locked"
        write_wav(locked / "hidden.wav", tone(600, 16000), 16000)
        locked.chmod(0)
        drop = (lambda: os.setuid(65534)) if os.geteuid() == 0 else None
        why = f"{locked}: cannot read this folder (permission denied); its files are left out"
        for inputs, rows in (([top], 1), ([locked], 0)):
            got = subprocess.run([str(rt), "predict", str(top / "model.laq"), *map(str, inputs), "--format", "jsonl"],
                                 capture_output=True, text=True, timeout=60, preexec_fn=drop)
            assert got.returncode == 1, got.stderr
            assert got.stderr.splitlines() == [f"serlaq-rt: error: {why}"]
            records = [json.loads(line) for line in got.stdout.splitlines()]
            assert [r.get("label") is not None for r in records] == [False] + [True] * rows
    finally:
        (top / "locked").chmod(0o755)
        import shutil

        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.skipif(sys.platform == "darwin", reason="macOS file names are UTF-8 by rule")
def test_a_file_name_that_is_not_utf8_reaches_the_runtime_intact(tones, tmp_path):
    folder = tmp_path / "room"
    folder.mkdir()
    name = os.fsdecode(b"z\xff.wav")
    write_wav(folder / name, tone(600, 16000), 16000)
    files, errors = _native.find_audio_files([str(folder)])
    assert errors == [] and files == [str(folder / name)] and os.path.isfile(files[0])
    from serlaq.runtime import LaqModel

    results = LaqModel.load(tones.path).predict_files(files)
    assert results[0].ok, results


@pytest.mark.parametrize("verbose", [[], ["--verbose"]])
def test_an_error_line_stays_one_line_whatever_the_file_is_called(tones, tmp_path, capsys, monkeypatch, verbose):
    """A line break in a file's name never splits an error line on stderr: a file that is
    not audio, and one that does not exist."""
    bad = tmp_path / "two\nlines.wav"
    bad.write_bytes(b"RIFF....not audio" * 10)
    code, _, err = run_cli(["predict", tones.path, bad, tmp_path / "gone\nfile.wav", *verbose], capsys, monkeypatch)
    lines = err.splitlines()
    assert code == 1 and len(lines) == 2, err
    assert "lines.wav: cannot decode audio" in lines[1] and "gone\\nfile.wav: no such file" in lines[0], err
