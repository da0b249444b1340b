"""`serlaq.cross_corpus`: the cross-corpus scores (UAR, accuracy, top-label share, confidence, ECE)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serlaq.data.corpora import Clip
from serlaq.errors import ConfigError
from serlaq.cross_corpus import cross_scores, find_laq, render_cross_markdown
from serlaq.runtime import Prediction


class FakeModel:
    """Answers each path with fixed probabilities over its labels."""

    def __init__(self, labels: list[str], answers: dict[str, list[float]]) -> None:
        self.labels = labels
        self.answers = answers

    def predict_files(self, paths: list[Path]) -> list[Prediction]:
        return [Prediction.from_probabilities(self.labels, self.answers[str(p)], path=str(p)) for p in paths]


def clip(i: int, label: str) -> Clip:
    return Clip(path=Path(f"c{i}.wav"), label=label, speaker="s")


def test_collapsed_confident_model_scores_chance_with_a_large_ece() -> None:
    labels = ["angry", "happy", "sad", "boredom"]
    clips = [clip(i, lab) for i, lab in enumerate(["angry", "happy", "sad"] * 4)]
    # always 'angry' at 0.97 among the shared labels (boredom, not in the corpus, is left out)
    model = FakeModel(labels, {str(c.path): [0.9, 0.02, 0.01, 0.07] for c in clips})
    s = cross_scores(model, clips, ["angry", "happy", "sad"])
    assert s["top_label"] == "angry" and s["top_share"] == 1.0
    assert s["uar"] == pytest.approx(1 / 3) and s["accuracy"] == pytest.approx(1 / 3)
    assert s["mean_confidence"] == pytest.approx(0.9 / 0.93, abs=1e-6)  # renormalised over the shared labels
    assert s["ece"] == pytest.approx(0.9 / 0.93 - 1 / 3, abs=1e-6)


def test_right_and_honest_model_has_no_collapse_and_small_ece() -> None:
    labels = ["angry", "happy"]
    clips = [clip(i, lab) for i, lab in enumerate(["angry", "happy"] * 5)]
    answers = {str(c.path): ([0.95, 0.05] if c.label == "angry" else [0.05, 0.95]) for c in clips}
    s = cross_scores(FakeModel(labels, answers), clips, labels)
    assert (s["uar"], s["accuracy"], s["top_share"]) == (1.0, 1.0, 0.5)
    assert s["ece"] == pytest.approx(0.05, abs=1e-6)
    text = render_cross_markdown({"model": "m.laq", "features": "portable", "rows": [{"data_dir": "d", "zero-shot": s}]})
    assert "| d | zero-shot | 10 | 100.0 | 100.0 | angry 50 % | 0.95 | 0.050 |" in text


def test_find_laq_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="a folder with no .laq model in it"):
        find_laq(tmp_path)
    (tmp_path / "model.ckpt").write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"a run folder with no model\.laq \(trained with --no-compress\): serlaq compress --checkpoint"):
        find_laq(tmp_path)
    (tmp_path / "a.laq").write_bytes(b"x")
    assert find_laq(tmp_path).name == "a.laq"
    (tmp_path / "b.laq").write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"a folder with 2 \.laq models \(a\.laq, b\.laq\): name the one to use"):
        find_laq(tmp_path)
    (tmp_path / "model.laq").write_bytes(b"x")  # what fit writes wins over a second compression
    assert find_laq(tmp_path).name == "model.laq"


def test_cross_ece_is_the_one_evaluate_reports_and_torchmetrics_computes() -> None:
    """The cross-corpus table and `serlaq evaluate` print one ECE: the same bins as
    torchmetrics' multiclass calibration error (15, equal width), the training side's reference."""
    import numpy as np

    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.functional.classification")
    from serlaq.metrics import confidence_scores

    labels = ["angry", "happy", "neutral", "sad"]
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(200, 4)) * 1.5
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    truth = rng.integers(0, 4, 200)
    clips = [clip(i, labels[t]) for i, t in enumerate(truth)]
    model = FakeModel(labels, {str(c.path): list(p) for c, p in zip(clips, proba)})
    s = cross_scores(model, clips, labels)
    assert s["ece"] == pytest.approx(confidence_scores(proba, truth)["ece"], abs=1e-12)
    ref = tm.multiclass_calibration_error(torch.tensor(proba), torch.tensor(truth), num_classes=4, n_bins=15, norm="l1")
    assert s["ece"] == pytest.approx(float(ref), abs=1e-6)


def run_report(
    run: Path, data: Path, out: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *extra: str
) -> tuple[int, str, str]:
    """`serlaq report RUN --protocol cross --test-data DATA --out OUT EXTRA...` in-process: (exit code, stdout, stderr)."""
    import sys

    from serlaq.cli import main

    monkeypatch.setattr(sys, "argv", ["serlaq", "report", str(run), "--protocol", "cross", "--test-data", str(data), "--out", str(out), *extra])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exc:
        main()
    got = capsys.readouterr()
    return int(exc.value.code or 0), got.out, got.err


def tone_run_and_corpus(tmp_path: Path, labels: dict[str, float], per_label: int = 2, seconds: float = 0.5) -> tuple[Path, Path]:
    """A run folder holding the tone model's `.laq`, and a folder-per-class corpus of tones."""
    import shutil

    from rt_builders import shared_tone_model, tone, write_wav

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(shared_tone_model().path, run / "tones.laq")
    data = tmp_path / "corpus"
    for lab, f in labels.items():
        for j in range(per_label):
            write_wav(data / lab / f"{lab}{j}.wav", tone(f * (0.95 + 0.03 * j), 16000, seconds, seed=j), 16000)
    return run, data


def test_report_cross_maps_labels_and_keeps_zero_shot_when_too_little_to_adapt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serlaq report RUN --protocol cross --test-data DIR --map calm=neutral`: the corpus's calm
    clips are scored as neutral and counted; a corpus too small to adapt on still gets its
    zero-shot row, with the reason adaptation was not made."""
    import json
    import sys

    from serlaq.cli import main

    run, data = tone_run_and_corpus(tmp_path, {"angry": 1500.0, "calm": 600.0, "sad": 180.0, "boredom": 400.0})

    def report(*extra: str) -> tuple[int, str, str]:
        return run_report(run, data, tmp_path / "r", capsys, monkeypatch, *extra)

    code, out, err = report("--map", "calm=neutral", "--map", "boredom=", "--dataset", "folder")
    assert code == 0, err
    row = json.loads((tmp_path / "r" / "report.json").read_text())["rows"][0]
    assert row["labels"] == ["angry", "neutral", "sad"]
    assert row["zero-shot"]["clips"] == 6 and row["zero-shot"]["uar"] == 1.0
    assert row["mapped"] == {"boredom": 2, "calm": 2} and row["label_map"] == {"calm": "neutral", "boredom": None}
    assert "4 clips by --map: boredom -> left out (2), calm -> neutral (2)" in out
    assert "adapted" not in row and "clips" in row["not_adapted"]  # 8 clips of half a second: too little
    assert "Not adapted (zero-shot only)" in out
    # without the map, calm is no label of the model's: angry and sad alone are scored
    code, out, err = report()
    assert code == 0, err
    row = json.loads((tmp_path / "r" / "report.json").read_text())["rows"][0]
    assert row["labels"] == ["angry", "sad"] and "mapped" not in row
    # what was left out is said, as `serlaq evaluate` says it: the corpus's labels the model
    # lacks, and the model's labels no clip has (not offered as answers)
    assert row["excluded"] == {"boredom": 2, "calm": 2} and "neutral" in row["unscored_model_labels"]
    scored = [line for line in out.splitlines() if line.startswith(f"- {data}: scored")]
    assert scored and scored[0].startswith(
        f"- {data}: scored angry, sad; left out: boredom 2, calm 2 (labels the model lacks); not offered as answers: "
    ), out
    # a layout that does not fit is refused by name
    code, out, err = report("--dataset", "emodb")
    assert code != 0 and "does not follow EMODB naming" in err, err
    # --map and --dataset belong to the cross protocol
    for flag, value in (("--map", "calm=neutral"), ("--dataset", "folder")):
        monkeypatch.setattr(sys, "argv", ["serlaq", "report", str(run), flag, value])
        with pytest.raises(SystemExit) as exc:
            main()
        assert exc.value.code != 0 and f"{flag}: only with --protocol cross" in capsys.readouterr().err


def test_report_cross_reads_a_manifest_adapts_on_its_files_and_counts_what_it_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--test-data m.csv`: the manifest's clips are scored, and its files adapted on (not its
    folder's other audio); rows with an unknown label and one naming a missing file are left out
    of the scores, counted and the first named."""
    import json

    from rt_builders import tone, write_wav

    run, data = tone_run_and_corpus(tmp_path, {"angry": 1500.0, "neutral": 600.0, "sad": 180.0}, per_label=8, seconds=1.0)
    rows = ["path,label"] + [f"{p.parent.name}/{p.name},{p.parent.name}" for p in sorted(data.rglob("*.wav"))]
    for j in range(3):  # audio beside the manifest that it does not name: not adapted on
        write_wav(data / "other" / f"x{j}.wav", tone(300.0, 16000, 1.0, seed=j), 16000)
    rows += ["angry/angry0.wav,oth", "sad/gone.wav,sad", "other/x0.wav,xxx"]
    (data / "m.csv").write_text("\n".join(rows) + "\n")
    code, out, err = run_report(run, data / "m.csv", tmp_path / "r", capsys, monkeypatch)
    assert code == 0, err
    row = json.loads((tmp_path / "r" / "report.json").read_text())["rows"][0]
    assert row["zero-shot"]["clips"] == 24 and row["zero-shot"]["uar"] == 1.0
    assert row["unusable"]["files"] == 3 and "oth" in row["unusable"]["first"]
    # adapted on every file the manifest lists, whatever its label, as `serlaq adapt --manifest`
    # reads it: the 24 scored, and x0 (labelled xxx); not the folder's two others
    assert row["adapted_on"] == 25, row.get("not_adapted")
    assert "Left out (unknown label, unreadable name or missing file)" in out
    code, out, err = run_report(run, data / "nope.csv", tmp_path / "r", capsys, monkeypatch)
    assert code != 0 and "not a corpus folder or a .csv manifest" in err


def test_report_cross_bad_map_or_layout_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run, data = tone_run_and_corpus(tmp_path, {"angry": 1500.0, "sad": 180.0})
    for extra, want in (
        (("--map", "calm"), "--map calm: expected CORPUS_LABEL=MODEL_LABEL"),
        (("--map", "calm=chill"), "--map calm=chill: 'chill' is not a known label"),
        (("--dataset", "timit"), "dataset: unknown corpus layout 'timit'"),
    ):
        code, _, err = run_report(run, data, tmp_path / "r", capsys, monkeypatch, *extra)
        lines = err.strip().splitlines()
        assert code != 0 and len(lines) == 1 and want in lines[0], err
        assert not (tmp_path / "r" / "report.json").exists()


def test_report_cross_scores_a_laq_file_or_general_given_instead_of_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serlaq report MODEL.laq|general --protocol cross`: the model file scores as its run
    folder does (report beside it by default); `general` is the shipped model (report in
    ./general-report-cross); a path that is neither is one line."""
    import json
    import sys

    from serlaq.cli import main

    run, data = tone_run_and_corpus(tmp_path, {"angry": 1500.0, "neutral": 600.0, "sad": 180.0})
    monkeypatch.chdir(tmp_path)

    def report(target: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["serlaq", "report", target, "--protocol", "cross", "--test-data", str(data)])
        with pytest.raises(SystemExit) as exc:
            main()
        got = capsys.readouterr()
        return int(exc.value.code or 0), got.out, got.err

    assert report(str(run))[0] == 0
    by_run = json.loads((run / "report-cross" / "report.json").read_text())
    code, _, err = report(str(run / "tones.laq"))
    assert code == 0, err
    by_file = json.loads((run / "tones-report-cross" / "report.json").read_text())
    assert by_file["rows"] == by_run["rows"]
    code, out, err = report("general")
    assert code == 0, err
    general = json.loads((tmp_path / "general-report-cross" / "report.json").read_text())
    assert general["model"] == "general" and general["rows"][0]["labels"] == ["angry", "neutral", "sad"]
    assert "wrote general-report-cross/report.md" in out
    code, _, err = report("nope.laq")
    assert code != 0 and err.strip() == "serlaq: error: nope.laq: not found (a run folder, a .laq file or `general`)"
