"""`serlaq predict / evaluate / info` through the real entry point (`serlaq.cli.main`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from serlaq.cli import main
from serlaq.runtime import LaqModel

from rt_builders import metadata, random_model, shared_tone_model, tone, write_wav


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    """Run `serlaq ARGS` in-process the way the console script does: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["serlaq", *map(str, args)])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr()
    code = exc.value.code
    return (0 if code is None else int(code)), out.out, out.err


def assert_one_line_error(err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("serlaq: error: ")
    assert "Traceback" not in err
    for frag in fragments:
        assert frag in lines[0]


@pytest.fixture(scope="module")
def tones():
    return shared_tone_model()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """folder-per-class corpus of tones at mixed rates and channel counts."""
    root = tmp_path_factory.mktemp("corpus")
    bands = {"angry": 1500.0, "neutral": 600.0, "sad": 180.0}
    for lab, f in bands.items():
        for j, (sr, ch) in enumerate([(16000, 1), (44100, 2), (8000, 1)]):
            write_wav(root / lab / f"spk{j}" / f"{lab}{j}.wav", tone(f * (0.95 + 0.04 * j), sr, 0.5, ch, seed=j), sr)
    return root


# --- info --------------------------------------------------------------------------------


def test_info_text_and_json(tmp_path, capsys, monkeypatch):
    b = random_model(tmp_path / "m.laq", bits=(4, 1, 8))
    m = LaqModel.load(b.path)
    code, out, err = run_cli(["info", b.path], capsys, monkeypatch)
    assert code == 0 and err == ""
    assert "angry, happy, neutral, sad" in out
    assert "48x180" in out and "binary" in out and "affine" in out
    assert f"{m.avg_bits:.3f}" in out
    assert f"{m.compression_ratio:.1f}x" in out
    assert "n_mfcc=40" in out

    code, out, _ = run_cli(["info", b.path, "--json"], capsys, monkeypatch)
    d = json.loads(out)
    assert code == 0
    assert d["labels"] == b.labels
    assert [layer["shape"] for layer in d["layers"]] == [[48, 180], [24, 48], [4, 24]]
    assert [layer["bits"] for layer in d["layers"]] == [4, 1, 8]
    assert d["size_bytes"] == b.path.stat().st_size
    assert d["fp32_size_bytes"] == 4 * m.num_params
    assert d["features"]["n_mels"] == 128


# --- predict -------------------------------------------------------------------------------



@pytest.mark.parametrize(
    "provenance, lines",
    [
        (
            {"serlaq_version": "0.2.0", "created": "2026-12-04T06:00:00Z", "synthetic": False,
             "corpora": [{"name": "emodb", "clips": 535, "labels": {"angry": 127, "sad": 62}}],
             "scores": {"test": {"accuracy": 0.81234, "uar": 0.75}}},
            ["provenance", "  serlaq_version 0.2.0", "  created        2026-12-04T06:00:00Z", "  synthetic      no",
             "  corpora        name emodb, clips 535, labels (angry 127, sad 62)",
             "  scores         test (accuracy 0.8123, uar 0.75)"],
        ),
        ({"created": "2026-12-04T06:00:00Z", "odd": [1, None]}, ["provenance", "  created        2026-12-04T06:00:00Z", "  odd            1; -"]),
        ("hand-made", ["provenance   hand-made"]),
        # free text written through an adapter (C, WebAssembly) stays on its row
        ({"adaptations": [{"source": "my room\nsecond line\t\x1b[31m"}]},
         ["provenance", "  adaptations    source my room\\nsecond line\\t\\u{1b}[31m"]),
    ],
)
def test_info_shows_provenance_first_whatever_it_holds(tmp_path, capsys, monkeypatch, provenance, lines):
    labels = ["angry", "happy", "neutral", "sad"]
    md = {**metadata(labels, [48, 24]), "provenance": provenance}
    b = random_model(tmp_path / "m.laq", meta=md)
    code, out, _ = run_cli(["info", b.path], capsys, monkeypatch)
    assert code == 0
    assert out.splitlines()[: len(lines) + 1] == [*lines, ""]
    assert out.splitlines()[len(lines) + 1].startswith("model        ")
    code, out, _ = run_cli(["info", b.path, "--json"], capsys, monkeypatch)
    info = json.loads(out)
    assert list(info)[:2] == ["path", "provenance"] and info["provenance"] == provenance
    # a file without provenance has no such key (and no such block)
    plain = random_model(tmp_path / "plain.laq")
    assert "provenance" not in LaqModel.load(plain.path).summary()
    assert not LaqModel.load(plain.path).describe().startswith("provenance")


def test_predict_lines_json_and_top_k(tones, tmp_path, capsys, monkeypatch):
    hi = write_wav(tmp_path / "hi.wav", tone(1480, 44100, 0.5, 2), 44100)
    lo = write_wav(tmp_path / "sub" / "deeper" / "lo.wav", tone(185, 8000, 0.5), 8000)
    code, out, err = run_cli(["predict", tones.path, hi, tmp_path / "sub"], capsys, monkeypatch)
    assert code == 0 and err == ""
    rows = [line.split("\t") for line in out.strip().splitlines()]
    assert [(r[0], r[1]) for r in rows] == [(str(hi), "angry"), (str(lo), "sad")]
    assert all(0.0 < float(r[2]) <= 1.0 for r in rows)

    code, out, _ = run_cli(["predict", tones.path, hi, "--top-k", "2"], capsys, monkeypatch)
    (row,) = [line.split("\t") for line in out.strip().splitlines()]
    assert len(row) == 4 and row[1] == "angry" and row[3].count(":") == 1

    code, out, _ = run_cli(["predict", tones.path, hi, lo, "--json", "--top-k", "3"], capsys, monkeypatch)
    d = json.loads(out)
    assert code == 0 and [r["label"] for r in d] == ["angry", "sad"]
    assert [t["label"] for t in d[0]["top_k"]][0] == "angry" and len(d[0]["top_k"]) == 3
    assert sum(d[1]["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)


def test_predict_a_dash_reads_standard_input(tones, tmp_path):
    # the real process (the native reader takes file descriptor 0 itself): `ffmpeg ... -f wav - |
    # serlaq predict MODEL -` gives the file's own row, named "-", and with --segments its windows
    hi = write_wav(tmp_path / "hi.wav", tone(1480, 44100, 2.5, 2), 44100)
    cli = [sys.executable, "-m", "serlaq.cli", "predict", str(tones.path)]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args], input=hi.read_bytes().decode("latin-1"), capture_output=True, text=True,
                              encoding="latin-1", timeout=120)

    for extra in ([], ["--segments", "--format", "jsonl"]):
        piped, from_file = run("-", *extra), run(str(hi), *extra)
        assert piped.returncode == 0 and piped.stderr == "", piped.stderr
        assert piped.stdout == from_file.stdout.replace(str(hi), "-") and piped.stdout.startswith(("-\t", '{"path": "-"'))


def test_predict_bad_files_are_reported_and_the_rest_still_predicted(tones, tmp_path, capsys, monkeypatch):
    good = write_wav(tmp_path / "good.wav", tone(600, 16000), 16000)
    empty = write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x00\x00garbage" * 10)
    silent = write_wav(tmp_path / "silent.wav", np.zeros(8000, np.float32), 16000)
    no_audio = tmp_path / "docs"
    no_audio.mkdir()
    (no_audio / "readme.txt").write_text("no audio here")
    missing = tmp_path / "missing.wav"
    args = ["predict", tones.path, empty, good, junk, no_audio, silent, missing]
    code, out, err = run_cli(args, capsys, monkeypatch)
    assert code == 1
    assert out.strip().split("\t")[:2] == [str(good), "neutral"]
    errs = err.strip().splitlines()
    assert len(errs) == 5 and all(e.startswith("serlaq: error: ") for e in errs)
    assert "Traceback" not in err
    for bad, what in [(empty, "empty"), (junk, "junk.wav"), (no_audio, "no audio"), (silent, "silent"), (missing, "no such")]:
        assert any(str(bad) in e and what in e for e in errs), (bad, errs)

    code, out, err = run_cli([*args, "--json"], capsys, monkeypatch)
    d = json.loads(out)
    assert code == 1 and len(d) == 6
    assert sum("label" in r for r in d) == 1 and sum("error" in r for r in d) == 5


def test_predict_jsonl_and_csv_have_one_record_per_file(tones, tmp_path, capsys, monkeypatch):
    hi = write_wav(tmp_path / "hi.wav", tone(1480, 44100, 0.5, 2), 44100)
    lo = write_wav(tmp_path / "lo.wav", tone(185, 8000, 0.5), 8000)
    missing = tmp_path / "missing.wav"
    code, out, err = run_cli(["predict", tones.path, hi, missing, lo, "--format", "jsonl"], capsys, monkeypatch)
    assert code == 1 and len(err.strip().splitlines()) == 1
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert [r.get("label") for r in rows] == [None, "angry", "sad"]  # inputs that do not exist come first
    assert rows[0]["path"] == str(missing) and "no such" in rows[0]["error"]

    code, out, _ = run_cli(["predict", tones.path, hi, missing, lo, "--format", "csv"], capsys, monkeypatch)
    import csv
    import io

    table = list(csv.DictReader(io.StringIO(out)))
    assert [r["label"] for r in table] == ["", "angry", "sad"]
    assert "no such" in table[0]["error"] and table[1]["error"] == ""
    probs = [float(table[1][f"p_{lab}"]) for lab in tones.labels]
    assert sum(probs) == pytest.approx(1.0, abs=1e-5) and max(probs) == pytest.approx(float(table[1]["confidence"]))

    code, _, err = run_cli(["predict", tones.path, hi, "--format", "xml"], capsys, monkeypatch)
    assert code == 2
    assert_one_line_error(err, "--format", "xml")


def test_predict_a_directory_tree(tones, corpus, capsys, monkeypatch):
    code, out, err = run_cli(["predict", tones.path, corpus, "--workers", "1"], capsys, monkeypatch)
    assert code == 0, err
    rows = [line.split("\t") for line in out.strip().splitlines()]
    assert len(rows) == 9
    assert all(Path(path).parent.parent.name == label for path, label, _ in rows)


# --- evaluate ------------------------------------------------------------------------------


def test_evaluate_writes_scores_table_and_confusion_png(tones, corpus, tmp_path, capsys, monkeypatch):
    out_dir = tmp_path / "eval"
    code, out, err = run_cli(
        ["evaluate", tones.path, "--data-dir", corpus, "--dataset", "folder", "--out", out_dir], capsys, monkeypatch
    )
    assert code == 0, err
    assert "accuracy  100.00%" in out and "macro-F1  100.00%" in out
    assert "9 clips scored" in out
    report = json.loads((out_dir / "evaluation.json").read_text())
    assert report["accuracy"] == 1.0 and report["n_clips"] == 9
    assert report["confusion"] == [[3, 0, 0], [0, 3, 0], [0, 0, 3]]
    assert [c["label"] for c in report["per_class"]] == ["angry", "neutral", "sad"]
    assert "UAR       100.00%" in out
    import importlib.util

    if importlib.util.find_spec("matplotlib") is not None:
        assert (out_dir / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:  # the runtime-only install: scores still written, the figure named as skipped
        assert not (out_dir / "confusion_matrix.png").exists()
        assert 'confusion_matrix.png needs matplotlib: pip install "serlaq[plot]"' in out


def test_evaluate_excludes_unknown_labels_with_a_count(tones, corpus, tmp_path, capsys, monkeypatch):
    import shutil

    root = tmp_path / "mixed"
    shutil.copytree(corpus, root)
    for j in range(2):
        write_wav(root / "happy" / f"h{j}.wav", tone(900, 16000, 0.5, seed=j), 16000)
    # a clip the model gets wrong (a "sad" label on a high tone) shows up in the scores
    write_wav(root / "sad" / "odd.wav", tone(1500, 16000, 0.5), 16000)
    code, out, err = run_cli(
        ["evaluate", tones.path, "--data-dir", root, "--json", "--out", tmp_path / "e"], capsys, monkeypatch
    )
    assert code == 0, err
    d = json.loads(out)
    assert d["excluded"] == {"happy": 2}
    assert d["n_clips"] == 10
    assert d["accuracy"] == pytest.approx(0.9)
    cm = np.array(d["confusion"])
    assert cm.sum() == 10 and cm[2, 0] == 1  # the odd clip: true sad, predicted angry
    per = {c["label"]: c for c in d["per_class"]}
    assert per["sad"]["recall"] == pytest.approx(0.75) and per["angry"]["precision"] == pytest.approx(0.75)
    # macro-F1 over the three classes, computed by hand
    f1_angry = 2 * 0.75 * 1.0 / 1.75
    f1_sad = 2 * 1.0 * 0.75 / 1.75
    assert d["macro_f1"] == pytest.approx((f1_angry + 1.0 + f1_sad) / 3)


def test_evaluate_map_scores_a_corpus_label_as_a_model_label(tones, corpus, tmp_path, capsys, monkeypatch):
    import shutil

    # RAVDESS's "calm" is scored as "neutral" by convention: the tone model knows neutral
    root = tmp_path / "with-calm"
    shutil.copytree(corpus, root)
    for j in range(2):
        write_wav(root / "calm" / f"c{j}.wav", tone(600 * (0.95 + 0.04 * j), 16000, 0.5, seed=j), 16000)
    base = ["evaluate", tones.path, "--data-dir", root, "--json", "--out", tmp_path / "e"]
    code, out, err = run_cli(base, capsys, monkeypatch)
    assert code == 0, err
    d = json.loads(out)
    assert d["excluded"] == {"calm": 2} and d["n_clips"] == 9 and d["mapped"] == {}
    code, out, err = run_cli([*base, "--map", "calm=neutral"], capsys, monkeypatch)
    assert code == 0, err
    d = json.loads(out)
    assert d["excluded"] == {} and d["n_clips"] == 11 and d["accuracy"] == 1.0
    assert d["mapped"] == {"calm": 2} and d["label_map"] == {"calm": "neutral"}
    assert {c["label"]: c["support"] for c in d["per_class"]}["neutral"] == 5
    # an empty target leaves the label's clips out; the text report names every move
    code, out, err = run_cli(
        [*base[:-3], "--out", tmp_path / "e", "--map", "Calm=neutral", "--map", "sad="], capsys, monkeypatch
    )
    assert code == 0, err
    assert "mapped    5 clips by --map: calm -> neutral (2), sad -> left out (3)" in out
    assert "8 clips scored" in out


def test_evaluate_reads_natural_speech_labels_and_maps_them(tones, corpus, tmp_path, capsys, monkeypatch):
    """IEMOCAP's excited and frustrated (here as folders `exc/` and `Frustrated/`) are labels serlaq
    knows: without --map their clips are counted as labels the model lacks, not read as errors;
    --map scores them as the model's labels."""
    import shutil

    root = tmp_path / "natural"
    shutil.copytree(corpus, root)
    for folder, f in (("exc", 1500.0), ("Frustrated", 180.0)):
        for j in range(2):
            write_wav(root / folder / f"{folder}{j}.wav", tone(f * (0.95 + 0.04 * j), 16000, 0.5, seed=j), 16000)
    base = ["evaluate", tones.path, "--data-dir", root, "--dataset", "folder", "--json", "--out", tmp_path / "e"]
    code, out, err = run_cli(base, capsys, monkeypatch)
    assert code == 0, err
    d = json.loads(out)
    assert d["excluded"] == {"excited": 2, "frustrated": 2} and d["n_clips"] == 9
    code, out, err = run_cli([*base, "--map", "excitement=angry", "--map", "fru=sad"], capsys, monkeypatch)
    assert code == 0, err
    d = json.loads(out)
    assert d["mapped"] == {"excited": 2, "frustrated": 2} and d["n_clips"] == 13 and d["accuracy"] == 1.0


@pytest.mark.parametrize(
    ("item", "why"),
    [
        ("calm", "expected CORPUS_LABEL=MODEL_LABEL"),
        ("calm=relaxed", "'relaxed' is not a known label"),
        ("=neutral", "expected CORPUS_LABEL=MODEL_LABEL"),
    ],
)
def test_evaluate_map_refuses_a_bad_item_in_one_line(tones, corpus, tmp_path, capsys, monkeypatch, item, why):
    code, _, err = run_cli(["evaluate", tones.path, "--data-dir", corpus, "--map", item], capsys, monkeypatch)
    assert code == 2
    assert_one_line_error(err, f"--map {item}: {why}")
    code, _, err = run_cli(
        ["evaluate", tones.path, "--data-dir", corpus, "--map", "calm=neutral", "--map", "CALM=sad"], capsys, monkeypatch
    )
    assert code == 2
    assert_one_line_error(err, "calm is mapped twice")


def test_evaluate_map_names_a_corpus_own_codes(tones, corpus, tmp_path, capsys, monkeypatch):
    """A natural-speech corpus's label file as it ships (MSP-Podcast's `FileName,EmoClass,SpkrID`,
    one-letter codes, X = no agreement): `--map A=angry` scores its codes as the model's labels
    and `--map X=` leaves the unlabelled rows out; without them the codes are unknown labels."""
    rows = ["FileName,EmoClass,EmoAct,SpkrID"]
    code_of = {"angry": "A", "neutral": "N", "sad": "S"}
    for p in sorted(corpus.rglob("*.wav")):  # absolute paths: the manifest lives in this test's folder
        rows.append(f"{p},{code_of[p.parent.parent.name]},3.0,{p.parent.name}")
    write_wav(tmp_path / "noagree.wav", tone(900.0, 16000, 0.5), 16000)
    rows.append(f"{tmp_path / 'noagree.wav'},X,4.0,spk9")
    manifest = tmp_path / "labels_consensus.csv"
    manifest.write_text("\n".join(rows[:-1]) + "\n")
    base = ["evaluate", tones.path, "--manifest", manifest, "--json", "--out", tmp_path / "e"]
    code, _, err = run_cli(base, capsys, monkeypatch)
    assert code == 1 and "unknown label: 'A'" in err and "--map A=LABEL names it" in err
    maps = ["--map", "A=angry", "--map", "n=neutral", "--map", "S=sad", "--map", "X="]
    code, out, err = run_cli([*base, *maps], capsys, monkeypatch)
    assert code == 0, err
    d = json.loads(out)
    assert d["n_clips"] == 9 and d["accuracy"] == 1.0 and d["excluded"] == {}
    assert d["mapped"] == {"a": 3, "n": 3, "s": 3}
    # X moved nothing here: said, so that a typo is not read as a mapping that worked
    assert "serlaq: warning: --map x: no clip has this label; nothing was mapped" in err.splitlines()
    manifest.write_text("\n".join(rows) + "\n")
    code, out, err = run_cli([*base, *maps], capsys, monkeypatch)
    assert code == 0, err
    d = json.loads(out)
    assert d["mapped"] == {"a": 3, "n": 3, "s": 3, "x": 1} and d["n_clips"] == 9 and "warning" not in err


def test_evaluate_one_shared_label_says_the_score_means_nothing(tones, tmp_path, capsys, monkeypatch):
    root = tmp_path / "one"
    for j in range(2):
        write_wav(root / "angry" / f"a{j}.wav", tone(1500.0 * (0.95 + 0.04 * j), 16000, 0.5, seed=j), 16000)
    code, out, err = run_cli(["evaluate", tones.path, "--data-dir", root, "--out", tmp_path / "e"], capsys, monkeypatch)
    assert code == 0, err
    assert (
        "serlaq: warning: the corpus shares one label (angry) with the model: it is the only label on offer, "
        "so every answer is right by construction (--all-labels lets the model answer any of its labels)"
    ) in err.splitlines()
    code, out, err = run_cli(
        ["evaluate", tones.path, "--data-dir", root, "--out", tmp_path / "e", "--all-labels"], capsys, monkeypatch
    )
    assert code == 0 and "one label" not in err


def test_evaluate_with_no_known_label_is_an_error(tones, tmp_path, capsys, monkeypatch):
    root = tmp_path / "other"
    write_wav(root / "happy" / "a.wav", tone(900, 16000), 16000)
    code, _, err = run_cli(["evaluate", tones.path, "--data-dir", root, "--out", tmp_path / "e"], capsys, monkeypatch)
    assert code == 1
    assert_one_line_error(err, "happy", "model")


def test_evaluate_skip_names_every_left_out_file_in_serlaq_lines(tones, tmp_path, capsys, monkeypatch):
    """--on-error skip: a name that does not follow the layout and a file that does not
    decode are each accounted for in a `serlaq:` line on stderr; the table says how many
    could not be read; the summary line is in the report's warnings too."""
    root = tmp_path / "emo"
    for name, f in (("03a01Wa", 1500.0), ("03a01Na", 600.0), ("03a01Ta", 180.0)):
        write_wav(root / f"{name}.wav", tone(f, 16000), 16000)
    (root / "bad name.wav").write_bytes(b"RIFFjunk")
    (root / "03a02Wa.wav").write_bytes(b"RIFFjunk")
    base = ["evaluate", tones.path, "--data-dir", root, "--dataset", "emodb", "--on-error", "skip", "--out", tmp_path / "e"]
    code, out, err = run_cli(base, capsys, monkeypatch)
    assert code == 0, err
    lines = err.strip().splitlines()
    assert all(line.startswith("serlaq: ") for line in lines), err
    assert any("03a02Wa.wav" in line and line.startswith("serlaq: skipped: ") for line in lines), err
    assert f"serlaq: {root}: skipped 1 of 5 files (file name does not follow EMODB naming: 1); first: {root / 'bad name.wav'}" in lines
    assert "unread    1 files could not be read (named on stderr)" in out and "3 clips scored" in out
    code, out, err = run_cli([*base, "--json"], capsys, monkeypatch)
    assert any("skipped 1 of 5 files" in w for w in json.loads(out)["warnings"])


def test_evaluate_missing_or_empty_data_dir(tones, tmp_path, capsys, monkeypatch):
    code, _, err = run_cli(["evaluate", tones.path, "--data-dir", tmp_path / "nope"], capsys, monkeypatch)
    assert code == 1
    assert_one_line_error(err, "nope")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(["evaluate", tones.path, "--data-dir", tmp_path / "empty"], capsys, monkeypatch)
    assert code == 1
    assert_one_line_error(err, "empty")


# --- bad model files, through every command ---------------------------------------------------


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("bad")
    good = random_model(tmp / "good.laq").path
    data = good.read_bytes()
    out = {}
    out["truncated"] = tmp / "truncated.laq"
    out["truncated"].write_bytes(data[: len(data) // 3])
    corrupted = bytearray(data)
    for k in range(len(data) - 200, len(data) - 190):
        corrupted[k] ^= 0x5A
    out["corrupted"] = tmp / "corrupted.laq"
    out["corrupted"].write_bytes(bytes(corrupted))
    out["wav"] = write_wav(tmp / "clip.wav", tone(300, 16000), 16000)
    out["text"] = tmp / "notes.laq"
    out["text"].write_text("not a model\n")
    out["empty"] = tmp / "empty.laq"
    out["empty"].write_bytes(b"")
    out["missing"] = tmp / "missing.laq"
    return out


@pytest.mark.parametrize("kind", ["truncated", "corrupted", "wav", "text", "empty", "missing"])
@pytest.mark.parametrize("command", ["info", "predict", "evaluate"])
def test_bad_model_file_is_one_line_error(bad_models, tmp_path, capsys, monkeypatch, kind, command):
    model = bad_models[kind]
    args = {
        "info": ["info", model],
        "predict": ["predict", model, bad_models["wav"]],
        "evaluate": ["evaluate", model, "--data-dir", tmp_path],
    }[command]
    code, out, err = run_cli(args, capsys, monkeypatch)
    assert code == 1 and out == ""
    assert_one_line_error(err, str(model))


def test_console_entry_point_prints_no_traceback(bad_models):
    # the real process: what a user sees in a terminal
    proc = subprocess.run(
        [sys.executable, "-m", "serlaq.cli", "info", str(bad_models["truncated"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert_one_line_error(proc.stderr, str(bad_models["truncated"]))


@pytest.mark.parametrize("command", ["predict", "evaluate", "info"])
def test_every_command_has_help_with_an_example(command, capsys, monkeypatch):
    code, out, _ = run_cli([command, "--help"], capsys, monkeypatch)
    assert code == 0
    assert f"Example: serlaq {command} " in out


@pytest.mark.parametrize("command", [["fit", "--config", "configs/demo.yaml"], ["compress", "--checkpoint", "x.ckpt"], ["report", "run"]])
def test_training_commands_without_the_extra_name_it(command, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    code, _, err = run_cli(command, capsys, monkeypatch)
    assert code == 1
    assert_one_line_error(err, f"serlaq {command[0]}", 'pip install "serlaq[train]"', "torch")
