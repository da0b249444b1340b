"""The C ABI as a C user gets it (`make capi` -> dist/capi): serlaq.h declares exactly the
library's exports with the struct layout Rust uses; examples/c/predict.c, built with gcc
from the header alone (shared and static), gives serlaq-rt's labels, probabilities (to
1e-6), out-of-domain scores and segments, and serlaq-rt's warning when most files lie far
from the model's home (none at home); bad files give one error line and the others still
run. examples/c/adapt.c writes the file `serlaq-rt adapt` writes from the same clips."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edge_fixtures import DIST, ROOT, build_fixtures, need, rt_json, serlaq_rt, speech_and_silence, tool

CAPI = DIST / "capi"
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    need(CAPI / "libserlaq.so", "make capi")
    out = tmp_path_factory.mktemp("capi")
    return out, build_fixtures(out)


def build_example(name: str, link: str, out_dir: Path) -> Path:
    """examples/c/NAME.c built with gcc from the header alone, linked `shared` or `static`."""
    gcc = tool("gcc")
    need(CAPI / "libserlaq.a", "make capi")
    exe = out_dir / f"{name}-{link}"
    src = ROOT / "examples" / "c" / f"{name}.c"
    if link == "shared":  # the command line, plus an rpath to run in place
        cmd = [gcc, *CFLAGS, str(src), f"-I{CAPI}", f"-L{CAPI}", "-lserlaq", f"-Wl,-rpath,{CAPI}", "-o", str(exe)]
    else:
        cmd = [gcc, *CFLAGS, str(src), f"-I{CAPI}", str(CAPI / "libserlaq.a"), "-lm", "-lpthread", "-ldl", "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return exe


@pytest.fixture(scope="module", params=["shared", "static"])
def predict_bin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_example("predict", request.param, tmp_path_factory.mktemp("bin"))


def header_functions() -> set[str]:
    text = (need(CAPI / "serlaq.h", "make capi")).read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return set(re.findall(r"\b(serlaq_\w+)\s*\(", text))


def test_header_declares_exactly_the_exports() -> None:
    nm = subprocess.run([tool("nm"), "-D", "--defined-only", str(need(CAPI / "libserlaq.so", "make capi"))],
                        capture_output=True, text=True, check=True).stdout
    # every symbol the library defines for the dynamic linker, not only those named serlaq_*:
    # docs/deploy.md says it exports the header's functions and nothing else
    exported = {line.split()[-1] for line in nm.splitlines() if line.strip()}
    declared = header_functions()
    assert {"serlaq_model_open", "serlaq_model_from_bytes", "serlaq_model_free", "serlaq_model_num_labels",
            "serlaq_model_label", "serlaq_predict_file", "serlaq_predict_pcm", "serlaq_last_error",
            "serlaq_stream_new", "serlaq_stream_push", "serlaq_stream_flush", "serlaq_stream_next",
            "serlaq_stream_free", "serlaq_stream_running_norm"} <= declared
    assert declared == exported


def test_header_struct_layout_is_rusts(tmp_path: Path) -> None:
    # the same numbers as rust/capi/tests/abi.rs::segment_layout_is_the_headers
    src = tmp_path / "layout.c"
    src.write_text("""#include <stddef.h>
#include "serlaq.h"
_Static_assert(sizeof(serlaq_segment) == 56, "segment size");
_Static_assert(offsetof(serlaq_segment, voiced) == 40, "voiced");
_Static_assert(offsetof(serlaq_segment, label) == 48, "label");
_Static_assert(offsetof(serlaq_segment, confidence) == 52, "confidence");
_Static_assert(sizeof(serlaq_stream_options) == 40, "options size");
_Static_assert(offsetof(serlaq_stream_options, vad) == 16, "vad");
_Static_assert(offsetof(serlaq_stream_options, vad_db) == 24, "vad_db");
_Static_assert(offsetof(serlaq_adapt_options, labels) == 8, "labels");
_Static_assert(offsetof(serlaq_adapt_options, source) == 8 + sizeof(const char *), "source");
int main(void) { return 0; }
""")
    header_dir = ROOT / "rust" / "capi" / "include"  # the header's source: no build needed to check it
    r = subprocess.run([tool("gcc"), "-std=c11", "-Wall", "-Werror", f"-I{header_dir}", "-fsyntax-only", str(src)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def parse_lines(stdout: str) -> list[tuple[str, str, dict[str, float], float]]:
    rows = []
    for line in stdout.splitlines():
        path, label, _conf, probs, ood = line.split("\t")
        rows.append((path, label, {k: float(v) for k, v in (kv.split("=") for kv in probs.split(","))}, float(ood)))
    return rows


def rt_warning(cwd: Path, model: str, *paths: str) -> list[str]:
    """serlaq-rt's out-of-domain warning for `predict MODEL PATHS...` (a list of 0 or 1
    lines, without its "serlaq-rt: " prefix)."""
    r = subprocess.run([str(serlaq_rt()), "predict", model, *paths], cwd=cwd, capture_output=True, text=True,
                       timeout=120)
    return [ln.removeprefix("serlaq-rt: ") for ln in r.stderr.splitlines() if ln.startswith("serlaq-rt: warning: ")]


def test_c_program_matches_serlaq_rt(fixtures: tuple[Path, dict], predict_bin: Path) -> None:
    out, expected = fixtures
    junk = out / "junk.wav"
    junk.write_bytes(b"not audio at all " * 10)
    paths = [f["path"] for f in expected["files"]]
    args = ["model.laq", *paths[:2], "junk.wav", *paths[2:]]
    r = subprocess.run([str(predict_bin), *args], cwd=out, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    err = r.stderr.strip().splitlines()
    # the failing file's line, then (the fixture's tones being far from model.laq's home)
    # serlaq-rt's warning word for word: counted over the files that were predicted
    warning = rt_warning(out, *args)
    assert len(warning) == 1 and warning[0].startswith(f"warning: {len(paths)} of {len(paths)} files lie far outside")
    assert "serlaq adapt" in warning[0]
    assert len(err) == 2 and err[0].startswith("error: junk.wav: ") and err[1:] == warning, r.stderr
    rows = parse_lines(r.stdout)
    assert [p for p, _, _, _ in rows] == paths
    for (path, label, probs, ood), want in zip(rows, expected["files"]):
        assert label == want["label"], path
        assert probs.keys() == want["probabilities"].keys()
        for k, v in want["probabilities"].items():
            assert abs(probs[k] - v) <= 1e-6, (path, k)
        assert ood == pytest.approx(want["ood"], rel=1e-8) and ood > expected["ood_threshold"], path


def test_c_program_opens_the_general_model_by_name(fixtures: tuple[Path, dict], predict_bin: Path) -> None:
    # the library carries the shipped model: a device needs no .laq file to start
    out, expected = fixtures
    paths = [f["path"] for f in expected["files"]]
    r = subprocess.run([str(predict_bin), "general", *paths], cwd=out, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = parse_lines(r.stdout)
    want = rt_json("general", *(out / p for p in paths))
    assert [label for _, label, _, _ in rows] == [w["label"] for w in want]
    for (path, _, probs, _), w in zip(rows, want):
        assert probs.keys() == w["probabilities"].keys()
        for k, v in w["probabilities"].items():
            assert abs(probs[k] - v) <= 1e-6, (path, k)


def test_c_program_at_home_has_no_warning(fixtures: tuple[Path, dict], predict_bin: Path) -> None:
    out, expected = fixtures
    paths = [f["path"] for f in expected["home_files"]]
    r = subprocess.run([str(predict_bin), "home.laq", *paths], cwd=out, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    rows = parse_lines(r.stdout)
    assert [p for p, _, _, _ in rows] == paths
    for (path, label, _, ood), want in zip(rows, expected["home_files"]):
        assert label == want["label"], path
        assert 0 <= ood <= expected["ood_threshold"] and ood == pytest.approx(want["ood"], rel=1e-8), path
    # serlaq-rt's rule: a single file far from home is no batch to warn about
    r = subprocess.run([str(predict_bin), "model.laq", paths[0]], cwd=out, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert rt_warning(out, "model.laq", paths[0]) == []
    assert parse_lines(r.stdout)[0][3] > expected["ood_threshold"]


@pytest.mark.parametrize("running", [[], ["--running-norm"]], ids=["plain", "running-norm"])
def test_c_stream_matches_serlaq_rt_segments(fixtures: tuple[Path, dict], predict_bin: Path,
                                             running: list[str]) -> None:
    out, _ = fixtures
    wav = out / "long_default.wav"
    from rt_builders import write_wav

    write_wav(wav, speech_and_silence(16000), 16000)
    want = [r for r in rt_json(out / "model.laq", wav, "--segments", *running) if "summary" not in r]
    if running:  # the fixture's room moves the statistics: running normalisation changes the answers
        plain = [r for r in rt_json(out / "model.laq", wav, "--segments") if "summary" not in r]
        assert [w["confidence"] for w in want] != [p["confidence"] for p in plain]
    # the samples the decoder sees: PCM16 / 32768
    import wave

    with wave.open(str(wav)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0
    r = subprocess.run([str(predict_bin), str(out / "model.laq"), "--stream", "16000", *running], input=pcm.tobytes(),
                       capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = [line.split("\t") for line in r.stdout.decode().splitlines()]
    assert len(got) == len(want) and any(w["speech"] for w in want) and not all(w["speech"] for w in want)
    for g, w in zip(got, want):
        assert (float(g[0]), float(g[1])) == pytest.approx((w["start"], w["end"]), abs=5e-4)
        assert g[2] == w["label"]
        assert float(g[3]) == pytest.approx(w["confidence"] or 0.0, abs=1e-6)
        # the window's out-of-domain score; nan for silence (serlaq-rt: none)
        if w.get("ood") is None:
            assert not w["speech"] and g[4] == "nan"
        else:
            assert float(g[4]) == pytest.approx(w["ood"], rel=1e-8)


def test_c_program_bad_model_is_one_line(tmp_path: Path, predict_bin: Path) -> None:
    bad = tmp_path / "bad.laq"
    bad.write_bytes(b"SERLAQ?" + bytes(100))
    for model, needle in [(bad, "bad.laq: "), (tmp_path / "missing.laq", "missing.laq: ")]:
        r = subprocess.run([str(predict_bin), str(model), "x.wav"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1 and r.stdout == ""
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], r.stderr


def test_c_adapt_writes_serlaq_rt_adapts_file(fixtures: tuple[Path, dict], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A device adapts through the C ABI: examples/c/adapt.c on 24 clips (and one that is
    not audio) writes serlaq-rt adapt's file byte for byte, with and without --labels; too
    few clips is one line, nothing written."""
    out, _ = fixtures
    exe = build_example("adapt", "shared", tmp_path)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1764835200")  # the record's date, in both tools
    from rt_builders import tone, write_wav

    clips = [write_wav(tmp_path / f"room{k}.wav", tone(180 + 40 * k, 16000, 1.5, seed=k, amplitude=0.2 + 0.02 * k),
                       16000).name for k in range(24)]
    (tmp_path / "junk.wav").write_bytes(b"not audio at all " * 10)
    model = str(out / "model.laq")
    for labels in [[], ["--labels", "sad,angry"]]:
        r = subprocess.run([str(exe), model, "c.laq", *labels, *clips[:12], "junk.wav", *clips[12:]], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stderr.startswith("error: junk.wav: ") and len(r.stderr.splitlines()) == 1, r.stderr
        assert r.stdout.startswith(f"adapted {model} on 24 clips (") and "1 left out" in r.stdout, r.stdout
        rt = subprocess.run([str(serlaq_rt()), "adapt", model, *clips, "--out", "rt.laq", *labels], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
        assert rt.returncode == 0, rt.stderr
        assert (tmp_path / "c.laq").read_bytes() == (tmp_path / "rt.laq").read_bytes(), labels
    # the adapted file is a model: serlaq-rt predicts with it, among the labels held
    got = rt_json(tmp_path / "c.laq", tmp_path / clips[0])[0]
    assert got["label"] in ("sad", "angry") and got["probabilities"]["happy"] < 1e-6
    # too few clips: how many more, nothing written
    r = subprocess.run([str(exe), model, "few.laq", *clips[:5]], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1 and r.stdout == "" and not (tmp_path / "few.laq").exists()
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "15 more clips" in lines[0], r.stderr
