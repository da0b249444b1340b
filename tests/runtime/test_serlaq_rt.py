"""`serlaq-rt` (the standalone Rust binary) against the Python runtime on the same files.

- against `serlaq predict --json` / `serlaq info`: the same paths, labels, errors and
  probabilities (to PROBA_TOL), and the same `info` text and JSON;
- against `serlaq._native.Model` directly (features_wave -> probabilities) on mono PCM16
  WAVs at the model rate, decoded here with the standard library: the native model the
  Python runtime wraps.

Skips (with the reason) when the binary is not built: `cargo build --release -p
serlaq-rt` makes it at target/release/serlaq-rt (or point SERLAQ_RT at one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from serlaq import _native

from rt_builders import metadata, random_model, tone, write_wav

ROOT = Path(__file__).resolve().parents[2]

#: Both sides run the same Rust model on the same decoded waveform, so the probabilities
#: are expected bit-identical; the bound allows a different summation order in a kernel.
PROBA_TOL = 1e-12


def rt_binary() -> Path:
    env = os.environ.get("SERLAQ_RT")
    if env:
        return Path(env).resolve()
    built = [p for p in (ROOT / "target" / "release" / "serlaq-rt", ROOT / "target" / "debug" / "serlaq-rt") if p.is_file() and os.access(p, os.X_OK)]
    if built:  # the newest build: a stale release binary must not stand in for today's code
        return max(built, key=lambda p: p.stat().st_mtime)
    pytest.skip("serlaq-rt is not built: run `cargo build --release -p serlaq-rt` (or set SERLAQ_RT)")


def rt(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(rt_binary()), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)


def serlaq(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The Python CLI in a fresh interpreter, as a user runs it."""
    code = "import sys; from serlaq.cli import main; sys.argv = ['serlaq', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


def python_runtime_missing() -> str | None:
    """Why the Python runtime cannot predict here (native bindings not built), or None."""
    needed = [n for n in ("predict_files", "predict_file", "layers", "file_size", "version") if not hasattr(_native.Model, n)]
    if needed or not hasattr(_native, "AUDIO_SUFFIXES"):
        return f"serlaq._native lacks the runtime bindings ({', '.join(needed) or 'AUDIO_SUFFIXES'}): rebuild with `maturin develop --release`"
    return None


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model and a folder of clips: rates, channel counts, a subfolder, bad files."""
    root = tmp_path_factory.mktemp("rt")
    random_model(root / "model.laq", bits=(4, 1, 8), per_channel=(True, False, True), seed=3)
    clips = root / "clips"
    for j, (f, sr, ch) in enumerate([(180.0, 22050, 1), (600.0, 16000, 2), (1500.0, 44100, 1), (900.0, 8000, 1), (300.0, 48000, 2)]):
        write_wav(clips / ("sub" if j % 2 else ".") / f"c{j}.wav", tone(f, sr, 0.6, ch, seed=j), sr)
    write_wav(clips / "silent.wav", np.zeros(22050, np.float32), 22050)
    (clips / "text.wav").write_bytes(b"definitely not a wav file")
    write_wav(clips / "short.wav", tone(440.0, 22050, 0.01), 22050)
    return root


def test_predict_json_matches_python_cli(files: Path) -> None:
    reason = python_runtime_missing()
    if reason:
        pytest.skip(reason)
    args = ["predict", "model.laq", "clips", "clips/c0.wav", "missing.wav", "--json", "--top-k", "2"]
    got, want = rt(*args, cwd=files), serlaq(*args, cwd=files)
    assert want.returncode == got.returncode == 1, (want.stderr, got.stderr)
    ours, theirs = json.loads(got.stdout), json.loads(want.stdout)
    assert [r["path"] for r in ours] == [r["path"] for r in theirs]
    assert sum("label" in r for r in ours) == 5
    for a, b in zip(ours, theirs):
        assert a.keys() == b.keys(), (a, b)
        if "error" in b:
            assert a["error"] == b["error"]
            continue
        assert a["label"] == b["label"]
        assert list(a["probabilities"]) == list(b["probabilities"])
        for lab, p in b["probabilities"].items():
            assert abs(a["probabilities"][lab] - p) <= PROBA_TOL, (a["path"], lab)
        assert [t["label"] for t in a["top_k"]] == [t["label"] for t in b["top_k"]]
    # stderr: the same lines, under each tool's name
    assert [ln.replace("serlaq-rt: ", "", 1) for ln in got.stderr.splitlines()] == [
        ln.replace("serlaq: ", "", 1) for ln in want.stderr.splitlines()
    ]


def test_info_matches_python_cli(files: Path) -> None:
    reason = python_runtime_missing()
    if reason:
        pytest.skip(reason)
    for extra in ([], ["--json"]):
        got, want = rt("info", "model.laq", *extra, cwd=files), serlaq("info", "model.laq", *extra, cwd=files)
        assert got.returncode == want.returncode == 0, (got.stderr, want.stderr)
        assert got.stdout == want.stdout


def test_predict_matches_native_predict_files(files: Path) -> None:
    """Every clip (resampled, downmixed) and every bad file: what `_native.Model.predict_files`
    (the call behind `LaqModel.predict_files`) gives, in `serlaq predict`'s order."""
    if not hasattr(_native.Model, "predict_files"):
        pytest.skip("serlaq._native.Model has no predict_files yet: rebuild with `maturin develop --release`")
    got = rt("predict", "model.laq", "clips", "--json", "--threads", "2", cwd=files)
    assert got.returncode == 1
    ours = json.loads(got.stdout)
    model = _native.Model(str(files / "model.laq"))
    paths = [r["path"] for r in ours]
    assert paths == sorted(paths) and len(paths) == 8
    want = model.predict_files([str(files / p) for p in paths], 1)
    labels = list(model.labels)
    for r, (scored, error) in zip(ours, want):
        if error is not None:
            # the native side was given absolute paths: the message names the file the same way
            assert r["error"] == error.replace(str(files) + os.sep, ""), (r, error)
            continue
        assert "error" not in r, r
        proba, ood = scored
        np.testing.assert_allclose([r["probabilities"][lab] for lab in labels], proba, rtol=0, atol=PROBA_TOL)
        assert r["ood"] == pytest.approx(ood, abs=1e-4)
        assert r["label"] == labels[int(np.argmax(proba))]
    assert sum("error" in r for r in ours) == 3  # silent, text, short


def read_pcm16(path: Path) -> tuple[np.ndarray, int]:
    """A mono PCM16 WAV as float32 (x / 32768, the decoder's conversion) and its rate."""
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return (data.astype(np.float32) / np.float32(32768.0)), w.getframerate()


def test_predict_matches_native_model(files: Path) -> None:
    """At the model rate, mono: the same probabilities as `_native.Model` on the waveform."""
    model = _native.Model(str(files / "model.laq"))
    rate = int(model.sample_rate)
    paths = []
    for j, f in enumerate([150.0, 440.0, 1200.0, 3000.0]):
        p = files / "native" / f"n{j}.wav"
        write_wav(p, tone(f, rate, 0.5 + 0.1 * j, seed=10 + j, amplitude=0.1 + 0.2 * j), rate)
        paths.append(p)
    got = rt("predict", "model.laq", *(p.relative_to(files) for p in paths), "--json", cwd=files)
    assert got.returncode == 0, got.stderr
    ours = json.loads(got.stdout)
    labels = list(model.labels)
    answers = set()
    for p, r in zip(paths, ours):
        wave_, sr = read_pcm16(p)
        assert sr == rate
        proba = np.asarray(model.probabilities(model.features_wave(wave_)), dtype=np.float64)
        assert r["path"] == str(p.relative_to(files))
        assert list(r["probabilities"]) == labels
        np.testing.assert_allclose([r["probabilities"][lab] for lab in labels], proba, rtol=0, atol=PROBA_TOL)
        assert r["label"] == labels[int(np.argmax(proba))]
        assert r["confidence"] == pytest.approx(float(proba.max()), abs=PROBA_TOL)
        answers.add(r["label"])
    assert len(answers) >= 2, "the random model should not give one answer for every tone"


# --- predict --segments: the same bytes as `serlaq predict --segments` -------------------

SEG_SR = 16000
SEG_BANDS = {"angry": 1500.0, "neutral": 600.0, "sad": 180.0}
#: (class or None = silence, seconds)
SEG_PLAN = [("sad", 4.0), (None, 3.0), ("angry", 4.0), (None, 2.5), ("neutral", 3.5), (None, 1.0)]


@pytest.fixture(scope="module")
def seg_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained tone model and recordings of tones and silence: 16 kHz mono, 44.1 kHz
    stereo, shorter than a window, all silent, truncated part-way, not audio."""
    from rt_builders import shared_tone_model

    root = tmp_path_factory.mktemp("rtseg")
    (root / "tones.laq").write_bytes(shared_tone_model().path.read_bytes())
    parts = [np.zeros(int(s * SEG_SR), np.float32) if lab is None else tone(SEG_BANDS[lab], SEG_SR, s, seed=j, amplitude=0.3)
             for j, (lab, s) in enumerate(SEG_PLAN)]
    rec = write_wav(root / "rec" / "call.wav", np.concatenate(parts), SEG_SR)
    stereo = np.concatenate([tone(1500.0, 44100, 2.5, 2, seed=7, amplitude=0.4), np.zeros((44100 * 2, 2), np.float32),
                             tone(180.0, 44100, 2.0, 2, seed=8, amplitude=0.2)])
    write_wav(root / "rec" / "stereo.wav", stereo, 44100)
    write_wav(root / "short.wav", tone(600.0, SEG_SR, 0.6, seed=9, amplitude=0.3), SEG_SR)
    write_wav(root / "quiet.wav", np.zeros(SEG_SR * 3, np.float32), SEG_SR)
    (root / "cut.wav").write_bytes(rec.read_bytes()[: 44 + 2 * SEG_SR * 9])
    (root / "text.wav").write_bytes(b"definitely not a wav file")
    return root


SEG_INPUTS = ["rec", "short.wav", "quiet.wav", "cut.wav", "missing.wav", "text.wav"]


def same_run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Both CLIs on `args`: the same exit code, stdout bytes and stderr lines (each under
    its tool's name); returns serlaq-rt's run."""
    got, want = rt(*args, cwd=cwd), serlaq(*args, cwd=cwd)
    assert got.returncode == want.returncode, (args, got.stderr, want.stderr)
    assert got.stdout == want.stdout, args
    assert [ln.replace("serlaq-rt: ", "", 1) for ln in got.stderr.splitlines()] == [
        ln.replace("serlaq: ", "", 1) for ln in want.stderr.splitlines()
    ], args
    return got


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv", "table"])
def test_segments_match_python_cli(seg_files: Path, fmt: str) -> None:
    reason = python_runtime_missing()
    if reason:
        pytest.skip(reason)
    got = same_run(["predict", "tones.laq", *SEG_INPUTS, "--segments", "--format", fmt, "--top-k", "2"], seg_files)
    assert got.returncode == 1  # missing, text, cut
    err = got.stderr.splitlines()
    assert err[0] == "serlaq-rt: error: missing.wav: no such file or directory"
    assert any(ln.startswith("serlaq-rt: error: cut.wav: truncated audio (data ends at 9.000 s") for ln in err)
    if fmt == "jsonl":
        objs = [json.loads(ln) for ln in got.stdout.splitlines()]
        segs = [o for o in objs if "label" in o]
        # every file that holds audio has windows and a summary; the timeline has both
        # speech and silence, the tones get different labels
        assert {o["path"] for o in objs if "summary" in o} == {"rec/call.wav", "rec/stereo.wav", "short.wav", "quiet.wav", "cut.wav"}
        assert {o["label"] for o in segs if o["path"] == "rec/call.wav"} == {"sad", "angry", "neutral", "silence"}
        assert [o["label"] for o in segs if o["path"] == "quiet.wav"] == ["silence"] * 2
        assert sum(o["path"] == "short.wav" for o in segs) == 1
    if fmt == "csv":
        assert all(ln.startswith("serlaq-rt: error: ") or "\tsummary\t" in ln for ln in err)


def test_segments_options_match_python_cli(seg_files: Path) -> None:
    reason = python_runtime_missing()
    if reason:
        pytest.skip(reason)
    for extra in (
        ["--window", "1.5", "--hop", "0.25"],
        ["--no-vad", "--hop", "0.5"],
        ["--vad-db", "-20", "--min-speech", "0.6"],
        ["--json"],
    ):
        got = same_run(["predict", "tones.laq", "rec", "quiet.wav", "--segments", "--format", "jsonl", *extra], seg_files)
        assert got.returncode == 0 and got.stderr == ""
    # the table with its summary lines
    got = same_run(["predict", "tones.laq", "rec/call.wav", "--segments"], seg_files)
    assert got.stdout.splitlines()[-1].startswith("rec/call.wav\tsummary\t")
    # refused options and flag conflicts: one line, exit 2 (usage), nothing on stdout
    for extra, code in (
        (["--hop", "5"], 2),
        (["--window", "0"], 2),
        (["--window", "nan"], 2),
        (["--vad-db", "10"], 2),
        (["--min-speech", "1.5"], 2),
        (["--no-vad", "--vad-db", "-40"], 2),
        (["--no-vad", "--min-speech", "0.5"], 2),
    ):
        got = same_run(["predict", "tones.laq", "rec", "--segments", "--format", "json", *extra], seg_files)
        assert got.returncode == code and got.stdout == "" and len(got.stderr.splitlines()) == 1, extra
    for extra in (["--window", "3"], ["--hop", "1", "--no-vad"], ["--vad-db", "-40", "--min-speech", "0.1"]):
        got = same_run(["predict", "tones.laq", "rec", *extra], seg_files)
        assert got.returncode == 2 and got.stderr.endswith(": only with --segments\n"), extra


def test_adapt_matches_python_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`serlaq-rt adapt` and `serlaq adapt`: the same file, byte for byte, the same line and
    the same error lines (a bad file; a label the model lacks), each under its tool's name."""
    reason = python_runtime_missing()
    if reason or not hasattr(_native, "adapt_source"):
        pytest.skip(reason or "serlaq._native lacks adapt_source: rebuild")
    random_model(tmp_path / "model.laq", seed=5)  # angry, happy, neutral, sad
    for i in range(24):
        write_wav(tmp_path / "room" / f"c{i:02d}.wav", tone([180.0, 600.0, 1500.0][i % 3] * (0.9 + 0.01 * i), 16000, 1.0, seed=i), 16000)
    (tmp_path / "room" / "bad.wav").write_bytes(b"RIFF....not audio")
    (tmp_path / "rt").mkdir()
    (tmp_path / "py").mkdir()
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1796000000"}
    for extra in ([], ["--labels", "angry,sad"], ["--no-balance", "--std", "target"]):
        args = ["adapt", "model.laq", "room", *extra]
        got = subprocess.run([str(rt_binary()), *args, "--out", "rt/m.laq"], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
        code = "import sys; from serlaq.cli import main; sys.argv = ['serlaq', *sys.argv[1:]]; main()"
        want = subprocess.run([sys.executable, "-c", code, *args, "--out", "py/m.laq"], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
        assert got.returncode == want.returncode == 0, (got.stderr, want.stderr)
        assert (tmp_path / "rt" / "m.laq").read_bytes() == (tmp_path / "py" / "m.laq").read_bytes(), extra
        assert got.stdout.replace("rt/m.laq", "OUT") == want.stdout.replace("py/m.laq", "OUT"), (got.stdout, want.stdout)
        assert [ln.replace("serlaq-rt: ", "", 1) for ln in got.stderr.splitlines()] == [
            ln.replace("serlaq: ", "", 1) for ln in want.stderr.splitlines()
        ]
    # --manifest: a header, labels (ignored), paths relative to its own folder, one missing
    # clip; beside the folder that holds the same clips, each clip is taken once
    (tmp_path / "lists").mkdir()
    rows = [f"../room/c{i:02d}.wav,{'angry' if i % 2 else 'sad'}" for i in range(0, 24, 2)] + ["../room/gone.wav,sad"]
    (tmp_path / "lists" / "room.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1796000000")  # one creation date in both files
    outcomes = []
    for args in (["--manifest", "lists/room.csv", "room"], ["--manifest", "lists/room.csv"], ["--manifest", "lists/none.csv", "room"], []):
        got = rt("adapt", "model.laq", *args, "--out", "rt/m.laq", cwd=tmp_path)
        want = serlaq("adapt", "model.laq", *args, "--out", "py/m.laq", cwd=tmp_path)
        assert got.returncode == want.returncode, (args, got.stderr, want.stderr)
        assert got.stdout.replace("rt/m.laq", "OUT") == want.stdout.replace("py/m.laq", "OUT"), (got.stdout, want.stdout)
        assert [ln.replace("serlaq-rt: ", "", 1) for ln in got.stderr.splitlines()] == [
            ln.replace("serlaq: ", "", 1) for ln in want.stderr.splitlines()
        ]
        if want.returncode == 0:
            assert (tmp_path / "rt" / "m.laq").read_bytes() == (tmp_path / "py" / "m.laq").read_bytes(), args
        outcomes.append((want.returncode, want.stdout + want.stderr))
    (both, both_text), (alone, alone_text), (missing, missing_text), (nothing, nothing_text) = outcomes
    assert both == 0 and "on 24 clips" in both_text, both_text
    assert "source lists/room.csv, room," in rt("info", "py/m.laq", cwd=tmp_path).stdout  # the provenance names both
    assert both_text.count("gone.wav") == both_text.count("bad.wav") == 1
    assert alone == 1 and "12 usable clips" in alone_text and "(8 more clips" in alone_text and "gone.wav" in alone_text
    assert missing == 1 and missing_text == "serlaq: error: lists/none.csv: manifest not found\n"
    assert nothing == 2 and nothing_text == "serlaq: error: adapt: give audio files or folders, or --manifest CSV\n"
    got = rt("adapt", "model.laq", "room", "--out", "rt/x.laq", "--labels", "calm,sad", cwd=tmp_path)
    want = serlaq("adapt", "model.laq", "room", "--out", "py/x.laq", "--labels", "calm,sad", cwd=tmp_path)
    assert got.returncode == want.returncode == 1
    assert got.stderr.splitlines()[-1].replace("serlaq-rt: ", "", 1) == want.stderr.splitlines()[-1].replace("serlaq: ", "", 1)
    assert not (tmp_path / "rt" / "x.laq").exists() and not (tmp_path / "py" / "x.laq").exists()


def _same_lines(got: subprocess.CompletedProcess[str], want: subprocess.CompletedProcess[str]) -> None:
    """The same exit code, stdout and stderr lines, each under its tool's name."""
    assert got.returncode == want.returncode, (got.stderr, want.stderr)
    assert got.stdout == want.stdout
    assert [ln.replace("serlaq-rt: ", "", 1) for ln in got.stderr.splitlines()] == [
        ln.replace("serlaq: ", "", 1) for ln in want.stderr.splitlines()
    ]


def test_failures_read_the_same_in_both_clis(tmp_path: Path) -> None:
    """A model that cannot be read, inputs that name no audio, --on-error, the demo model's
    warning: `serlaq-rt` and `serlaq` say the same lines with the same exit codes."""
    reason = python_runtime_missing()
    if reason:
        pytest.skip(reason)
    meta = metadata(["angry", "happy", "neutral", "sad"], [48, 24])
    random_model(tmp_path / "model.laq", seed=5)
    random_model(tmp_path / "demo.laq", seed=5, meta={**meta, "provenance": {"synthetic": True}})
    for i in range(2):
        write_wav(tmp_path / "clips" / f"c{i}.wav", tone(300.0 * (i + 1), 16000, 1.0, seed=i), 16000)
    (tmp_path / "clips" / "bad.wav").write_bytes(b"RIFF....not audio")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "only.wav").write_bytes(b"RIFF....not audio")
    os.mkfifo(tmp_path / "pipe.laq")
    cases = {
        "missing model": (["predict", "missing.laq", "clips"], 1, "error: missing.laq: model file not found"),
        "./general is a path": (["info", "./general"], 1, "error: ./general: model file not found"),
        "a named pipe": (["info", "pipe.laq"], 1, "error: pipe.laq: not a regular file (a named pipe)"),
        "adapt, no input": (["adapt", "model.laq", "gone", "gone2", "--out", "x.laq"], 1, "error: gone2: no such file or directory"),
        "fail": (["predict", "model.laq", "clips", "--format", "csv"], 1, "error: clips/bad.wav: cannot decode audio"),
        "skip": (["predict", "model.laq", "clips", "--format", "csv", "--on-error", "skip"], 0, "skipped: clips/bad.wav"),
        "skip, nothing read": (["predict", "model.laq", "bad", "--on-error", "skip"], 1, "skipped: bad/only.wav"),
        "skip, segments": (["predict", "model.laq", "clips", "--segments", "--format", "jsonl", "--on-error", "skip"], 0, "skipped: clips/bad.wav"),
        "demo model": (["predict", "demo.laq", "clips/c0.wav"], 0, "warning: this model was trained on the synthetic demo corpus"),
        "an empty path": (["predict", "model.laq", ""], 1, "error: '': an empty path names no file"),
    }
    for name, (args, code, line) in cases.items():
        got, want = rt(*args, cwd=tmp_path), serlaq(*args, cwd=tmp_path)
        _same_lines(got, want)
        assert want.returncode == code, (name, want.stderr)
        assert any(ln.startswith(f"serlaq: {line}") for ln in want.stderr.splitlines()), (name, want.stderr)
        if "skip" in name:  # no row for the skipped file
            assert "bad" not in want.stdout, name
    assert "clips/bad.wav" in rt("predict", "model.laq", "clips", "--format", "csv", cwd=tmp_path).stdout  # fail: a row


def test_predict_help_names_the_same_formats_in_both_clis(tmp_path: Path) -> None:
    """Both `predict --help` texts list the core's formats, WAV's encodings included."""
    assert "WAV (PCM 8-32 bit" in _native.FORMATS_HELP and "ADPCM" in _native.FORMATS_HELP
    for name in _native.AUDIO_FORMATS:
        assert name in _native.FORMATS_HELP, name
    for run in (rt, serlaq):
        got = run("predict", "--help", cwd=tmp_path)
        text = " ".join(got.stdout.replace("│", " ").split())
        assert got.returncode == 0 and f"Reads {_native.FORMATS_HELP} at any rate" in text, text
        assert "--on-error" in text
