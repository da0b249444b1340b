"""The README works as written: its `bash` blocks run in order, as a new user would run them.

Every ```bash block of README.md runs in one working folder (the repository's `configs/`
beside it), in the order the README gives them, except a block right after a line
`<!-- doc-test: skip (why) -->` (the set-up itself, package installs, the user's own
recordings). `make demo` is replaced by what it runs. The commands are the README's own
text; only the world around them is made up: HOME holds a generated corpus in EMODB's file
naming at `~/data/emodb/wav`, the clips a user would bring (`your_clip.wav`,
`recordings/`, `call.wav`, `test.csv`) are generated tones, `serlaq` is this checkout, and
every `serlaq fit` gets a few epochs instead of sixty (`--set train.max_epochs=...`) and a
small synthetic corpus, so the whole guide runs in well under a minute.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serlaq.data.synthetic import generate_corpus

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP = re.compile(r"^<!--\s*doc-test:\s*skip\b")
EMODB_LETTER = {"angry": "W", "boredom": "L", "disgust": "E", "fear": "A", "happy": "F", "sad": "T", "neutral": "N"}
# what `serlaq fit` gets on top of the README's own arguments (speed only, nothing the README relies on)
FIT_EXTRA = "--set train.max_epochs=5 --set data.synthetic.clips_per_class=8 --set data.synthetic.seconds=0.5 --set trainer.enable_progress_bar=false"


def bash_blocks(text: str) -> list[tuple[int, str, bool]]:
    """(line number, code, skipped) of every ```bash block, in order."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            start = i
            previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            j = i + 1
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            blocks.append((start + 1, "\n".join(lines[i + 1 : j]), bool(SKIP.match(previous.strip()))))
            i = j
        i += 1
    return blocks


def test_the_parser_finds_blocks_and_honours_skip_marks() -> None:
    text = "a\n```bash\necho 1\n```\n<!-- doc-test: skip (x) -->\n```bash\necho 2\n```\n```python\nx\n```\n"
    assert bash_blocks(text) == [(2, "echo 1", False), (6, "echo 2", True)]


def _user_world(home: Path, work: Path) -> None:
    """The corpus and clips the README's commands name, generated."""
    synthetic = generate_corpus(home / "synthetic", seed=5, clips_per_class=6, speakers=3, seconds=0.8)
    wav_dir = home / "data" / "emodb" / "wav"
    wav_dir.mkdir(parents=True)
    clips: dict[str, list[Path]] = {}
    for label, letter in EMODB_LETTER.items():
        for k, clip in enumerate(sorted((synthetic / label).rglob("*.wav"))):
            speaker = (3, 8, 9)[k % 3]
            target = wav_dir / f"{speaker:02d}a{k + 1:02d}{letter}a.wav"  # e.g. 03a01Fa.wav: speaker 03, happy
            shutil.copy(clip, target)
            clips.setdefault(label, []).append(target)
    shutil.copy(clips["happy"][0], work / "your_clip.wav")
    (work / "recordings").mkdir()
    for label in ("angry", "sad"):
        shutil.copy(clips[label][1], work / "recordings" / f"{label}.wav")
    call = np.concatenate([sf.read(str(clips[lab][2]), dtype="float32")[0] for lab in ("angry", "neutral", "sad", "happy")])
    sf.write(str(work / "call.wav"), call, 22050)
    (work / "clips").mkdir()
    rows = ["path,label"]
    for label in ("angry", "neutral", "sad"):
        for clip in clips[label][:2]:
            shutil.copy(clip, work / "clips" / clip.name)
            rows.append(f"clips/{clip.name},{label}")
    (work / "test.csv").write_text("\n".join(rows) + "\n")


def _serlaq_on_path(bin_dir: Path) -> None:
    bin_dir.mkdir()
    script = bin_dir / "serlaq"
    script.write_text(
        "#!/usr/bin/env bash\n"
        f'if [ "${{1:-}}" = fit ]; then shift; set -- fit "$@" {FIT_EXTRA}; fi\n'
        f'exec {sys.executable} -m serlaq.cli "$@"\n'
    )
    script.chmod(0o755)


@pytest.mark.slow
def test_every_user_guide_command_runs_in_order(tmp_path: Path) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (work / "configs").symlink_to(ROOT / "configs")
    _user_world(home, work)
    _serlaq_on_path(tmp_path / "bin")
    env = {
        **os.environ,
        "HOME": str(home),
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "python"), os.environ.get("PYTHONPATH", "")) if p),
        "SERLAQ_CACHE": str(tmp_path / "cache"),
        "COLUMNS": "120",
    }

    def run(code: str, where: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{where} failed (exit {done.returncode}):\n{code}\n--- stderr ---\n{done.stderr[-3000:]}"
        return done

    blocks = bash_blocks(README.read_text(encoding="utf-8"))
    assert sum(not skipped for _, _, skipped in blocks) >= 4, "the README lost its user guide"
    makefile = (ROOT / "Makefile").read_text()
    demo = re.search(r"^demo:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert demo is not None and "serlaq.cli fit --config configs/demo.yaml --out runs/demo" in demo[1]
    run("serlaq fit --config configs/demo.yaml --out runs/demo", "make demo's command")
    outputs = {}
    for line, code, skipped in blocks:
        if not skipped:
            outputs[line] = run(code, f"README.md line {line}")

    # what the guide promises along the way
    assert (work / "runs" / "demo" / "model.laq").is_file() and (work / "runs" / "emodb" / "model.laq").is_file()
    assert (work / "runs" / "emodb" / "paper.laq").is_file() and (work / "eval" / "evaluation.json").is_file()
    first = next(out for out in outputs.values() if "your_clip.wav" in out.stdout)
    assert first.stderr.count("synthetic demo corpus") == 1  # the demo model says what it is
