"""The runtime commands' flags a new user meets first: evaluate from a manifest alone,
--on-error, plain decoder errors with the detail behind --verbose, and help that lists the
decoder's own formats and states its defaults."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from serlaq import _native

from rt_builders import shared_tone_model, tone, write_wav
from test_runtime_cli import run_cli


@pytest.fixture(scope="module")
def tones():
    return shared_tone_model()


@pytest.fixture
def manifest_corpus(tmp_path: Path) -> Path:
    """A manifest in its own folder, naming clips by paths relative to that folder."""
    root = tmp_path / "set"
    for lab, f in {"angry": 1500.0, "neutral": 600.0, "sad": 180.0}.items():
        for j in range(2):
            write_wav(root / "clips" / f"{lab}{j}.wav", tone(f * (0.96 + 0.03 * j), 16000, 0.5, seed=j), 16000)
    rows = ["path,label"] + [f"clips/{lab}{j}.wav,{lab}" for lab in ("angry", "neutral", "sad") for j in range(2)]
    (root / "m.csv").write_text("\n".join(rows) + "\n")
    return root / "m.csv"


def test_evaluate_reads_a_manifest_without_data_dir_from_any_folder(tones, manifest_corpus, tmp_path, capsys, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative paths follow the manifest's folder, not the working directory
    code, out, err = run_cli(
        ["evaluate", tones.path, "--dataset", "csv", "--manifest", manifest_corpus, "--json", "--out", tmp_path / "e"],
        capsys, monkeypatch,
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["n_clips"] == 6 and err == ""


def test_evaluate_says_when_data_dir_is_not_used(tones, manifest_corpus, tmp_path, capsys, monkeypatch):
    args = ["evaluate", tones.path, "--manifest", manifest_corpus, "--data-dir", tmp_path, "--out", tmp_path / "e"]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 0
    assert err.startswith("serlaq: note: --data-dir") and "relative to its own folder" in err


def test_evaluate_needs_a_corpus(tones, capsys, monkeypatch):
    code, _, err = run_cli(["evaluate", tones.path], capsys, monkeypatch)
    assert code == 2 and err.strip() == "serlaq: error: --data-dir: missing (the corpus folder; or --manifest FILE.csv)"


def test_evaluate_on_error(tones, manifest_corpus, tmp_path, capsys, monkeypatch):
    (manifest_corpus.parent / "clips" / "broken.wav").write_bytes(b"RIFF\x00\x00 not audio" * 20)
    with manifest_corpus.open("a") as f:
        f.write("clips/broken.wav,sad\nclips/gone.wav,sad\n")  # unreadable audio, and a missing file
    base = ["evaluate", tones.path, "--manifest", manifest_corpus, "--out", tmp_path / "e"]
    code, _, err = run_cli(base, capsys, monkeypatch)
    assert code == 1 and "gone.wav" in err and "--on-error skip" in err and "on_error=" not in err
    code, out, err = run_cli([*base, "--on-error", "skip", "--json"], capsys, monkeypatch)
    assert code == 0
    assert json.loads(out)["n_clips"] == 6
    assert "serlaq: skipped: " in err and "broken.wav" in err
    code, _, err = run_cli([*base, "--on-error", "maybe"], capsys, monkeypatch)
    assert code == 2 and "--on-error: must be fail or skip" in err


def test_predict_on_error_skip_drops_the_row_and_exits_0(tones, tmp_path, capsys, monkeypatch):
    good = write_wav(tmp_path / "good.wav", tone(600, 16000), 16000)
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio\n" * 50)
    code, out, err = run_cli(["predict", tones.path, good, text, "--format", "jsonl"], capsys, monkeypatch)
    assert code == 1 and len(out.splitlines()) == 2  # fail (the default): an error record too
    code, out, err = run_cli(["predict", tones.path, good, text, "--format", "jsonl", "--on-error", "skip"], capsys, monkeypatch)
    assert code == 0 and [json.loads(line)["path"] for line in out.splitlines()] == [str(good)]
    assert err.startswith("serlaq: skipped: ") and "notes.wav" in err
    code, _, _ = run_cli(["predict", tones.path, text, "--on-error", "skip"], capsys, monkeypatch)
    assert code == 1  # nothing predicted at all is still a failure


def test_decoder_jargon_is_translated_and_kept_behind_verbose(tones, tmp_path, capsys, monkeypatch):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    code, _, err = run_cli(["predict", tones.path, text], capsys, monkeypatch)
    formats = ", ".join(_native.AUDIO_FORMATS[:-1]) + " or " + _native.AUDIO_FORMATS[-1]
    assert code == 1
    assert err.strip() == (
        f"serlaq: error: {text}: cannot decode audio: not a {formats} file, or damaged at its start "
        "(--verbose shows the decoder's message)"
    )
    assert "probe" not in err
    code, _, err = run_cli(["predict", tones.path, text, "--verbose"], capsys, monkeypatch)
    assert code == 1 and "no decodable audio stream" in err and "--verbose" not in err


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_help_lists_the_decoders_formats_and_states_defaults(command, capsys, monkeypatch):
    code, out, _ = run_cli([command, "--help"], capsys, monkeypatch)
    text = " ".join(out.split())
    assert code == 0 and "--on-error" in text and "--verbose" in text
    if command == "predict":
        for name in _native.AUDIO_FORMATS:
            assert name in text, name
        assert "AIFF" in _native.AUDIO_FORMATS
        assert "(default: off, the best label only)" in " ".join(text.replace("│", " ").split())
    else:
        assert "relative to the manifest's own folder" in " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize("bad", ["-1", "many"])
def test_serve_refuses_a_max_adapted_that_is_no_count(bad, capsys, monkeypatch):
    """Refused before anything is bound, naming the flag (the server never starts)."""
    code, _, err = run_cli(["serve", "--model", "g=general", "--port", "0", "--max-adapted", bad], capsys, monkeypatch)
    assert code == 2 and "--max-adapted" in err, err


@pytest.mark.parametrize(
    "flag,bad",
    [("--port", "70000"), ("--threads", "-2"), ("--threads", "4294967296"), ("--max-concurrent", "-1"), ("--max-files", str(2**70))],
)
def test_serve_refuses_numbers_out_of_range_naming_the_flag(flag, bad, capsys, monkeypatch):
    """A number the native server could not hold is a usage error, not an OverflowError."""
    code, _, err = run_cli(["serve", "--model", "g=general", flag, bad], capsys, monkeypatch)
    assert code == 2 and flag in err and "Traceback" not in err and "Overflow" not in err, err


def test_serve_passes_every_documented_limit(capsys, monkeypatch):
    """`serlaq serve` takes the limits `serlaq-rt serve` and docs/serve.md name."""
    seen = {}
    monkeypatch.setattr(_native, "serve", lambda models, host, port, **kw: seen.update(kw, host=host, port=port))
    args = ["serve", "--model", "g=general", "--port", "0", "--max-files", "3", "--max-connections", "5"]
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert code == 0, err
    assert (seen["max_files"], seen["max_connections"], seen["host"]) == (3, 5, "127.0.0.1")
