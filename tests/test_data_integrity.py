"""The data a result rests on stays the data it claims: the split recorded in every checkpoint
and checked when it is rebuilt (compress, report, fit --resume, a moved corpus), a file a
manifest lists twice, clips a label mapping leaves out, every class in every split, and the
one-line refusals of compress and report."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import DEMO_CONFIG, TINY_RUN, run_serlaq

from serlaq.data.corpora import discover, scan
from serlaq.data.datamodule import FINGERPRINT, SERDataModule
from serlaq.data.multi import gather, map_labels
from serlaq.data.splits import split_indices
from serlaq.data.synthetic import generate_corpus
from serlaq.errors import DataError
from serlaq.training import RunResult

EMOTIONS = ["angry", "happy", "neutral", "sad"]


def make_corpus(folder: Path, clips: int = 8, seed: int = 3) -> Path:
    """4 emotions x `clips` clips x 0.3 s from 2 speakers, folder layout."""
    root = generate_corpus(folder, seed=seed, clips_per_class=clips, speakers=2, seconds=0.3, emotions=EMOTIONS)
    (root / "serlaq-synthetic.json").unlink(missing_ok=True)  # a plain corpus, not the demo's
    return root


def corpus_config(corpus: Path, root: Path, name: str, **overrides: Any) -> Any:
    from serlaq.config import load_config

    return load_config(
        DEMO_CONFIG,
        {
            **TINY_RUN,
            "data.dataset": "auto",
            "data.data_dir": str(corpus),
            "data.cache_dir": str(root / "cache"),
            "out_dir": str(root / "runs"),
            "name": name,
            "train.max_epochs": 1,
            "laq": None,
            **overrides,
        },
    )


def train(corpus: Path, root: Path, name: str, **overrides: Any) -> RunResult:
    from serlaq.training import fit

    result = fit(corpus_config(corpus, root, name, **overrides))
    assert result is not None
    return result


def grow(corpus: Path, extra: Path) -> None:
    """Add the clips of `extra` to `corpus` under new names (the corpus grew since training)."""
    for wav in extra.rglob("*.wav"):
        target = corpus / wav.relative_to(extra)
        shutil.copy(wav, target.with_name(f"new_{target.name}"))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("integrity")


@pytest.fixture(scope="module")
def run(root: Path) -> RunResult:
    """A one-epoch run on root/corpus (read-only for the tests: they copy it to change it)."""
    return train(make_corpus(root / "corpus"), root, "base")


# --- 1 and 5: the split fingerprint --------------------------------------------------------


def test_every_checkpoint_records_the_split_fingerprint(run: RunResult) -> None:
    for ckpt in (run.checkpoint, run.last_checkpoint):
        stored = torch.load(ckpt, map_location="cpu", weights_only=True)["SERDataModule"][FINGERPRINT]
        assert stored["clips"] == 32 and len(stored["sha256"]) == 64
        assert sum(len(keys) for keys in stored["splits"].values()) == 32
    datamodule = SERDataModule.from_checkpoint(run.checkpoint)  # the corpus as trained: accepted
    assert datamodule.split_fingerprint()["sha256"] == stored["sha256"]


def test_a_corpus_that_grew_is_refused_with_the_counts(run: RunResult, root: Path, tmp_path: Path) -> None:
    grown = shutil.copytree(root / "corpus", tmp_path / "grown")
    grow(grown, make_corpus(tmp_path / "extra", clips=2, seed=9))
    with pytest.raises(DataError, match=r"changed since the checkpoint was trained: 8 clips added, 0 removed, \d+ moved"):
        SERDataModule.from_checkpoint(run.checkpoint, data_dir=grown)


def test_compress_and_report_refuse_a_changed_corpus_in_one_line(
    run: RunResult, root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shrunk = shutil.copytree(root / "corpus", tmp_path / "shrunk")
    next(shrunk.rglob("*.wav")).unlink()
    for args in (
        ["compress", "--checkpoint", str(run.checkpoint), "--out", str(tmp_path / "m.laq"), "--data-dir", str(shrunk)],
        ["report", str(run.run_dir), "--out", str(tmp_path / "rep"), "--data-dir", str(shrunk)],
    ):
        code, out, err = run_serlaq(args, capsys)
        assert code == 1 and not (tmp_path / "m.laq").exists()
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "0 clips added, 1 removed" in lines[0] and "Traceback" not in err, err


def test_a_moved_corpus_compresses_with_data_dir(
    run: RunResult, root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    moved = shutil.copytree(root / "corpus", tmp_path / "elsewhere" / "renamed")
    out = tmp_path / "out" / "m.laq"
    code, stdout, err = run_serlaq(
        ["compress", "--checkpoint", str(run.checkpoint), "--out", str(out), "--data-dir", str(moved), "--qat-epochs", "1"], capsys
    )
    assert code == 0, err
    assert out.is_file()
    # QAT's scratch checkpoints went to a temporary folder, not beside the output
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.json", "m.laq"]


def test_a_different_corpus_is_refused_even_at_the_same_path_layout(run: RunResult, tmp_path: Path) -> None:
    other = make_corpus(tmp_path / "other", clips=9, seed=3)
    with pytest.raises(DataError, match=r"changed since the checkpoint was trained: [1-9]\d* clips added"):
        SERDataModule.from_checkpoint(run.checkpoint, data_dir=other)


def test_a_checkpoint_without_a_fingerprint_still_works_with_a_note(
    run: RunResult, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = torch.load(run.checkpoint, map_location="cpu", weights_only=True)
    del state["SERDataModule"]  # as saved before the fingerprint existed
    old = tmp_path / "old.ckpt"
    torch.save(state, old)
    with caplog.at_level(logging.WARNING, logger="serlaq.data"):
        datamodule = SERDataModule.from_checkpoint(old)
    assert datamodule.split_sizes["test"] > 0
    assert any("records no split fingerprint" in r.getMessage() for r in caplog.records)


def test_resume_refuses_a_corpus_that_grew(tmp_path: Path) -> None:
    from serlaq.training import fit

    corpus = make_corpus(tmp_path / "corpus")
    result = train(corpus, tmp_path, "r")
    grow(corpus, make_corpus(tmp_path / "extra", clips=2, seed=9))
    with pytest.raises(DataError, match="last.ckpt: the corpus at .* changed since the checkpoint was trained: 8 clips added"):
        fit(corpus_config(corpus, tmp_path, "r"), resume=True)
    assert result.checkpoint.is_file()


# --- 2: a file listed twice ------------------------------------------------------------------


def write_manifest(tmp_path: Path, rows: list[str]) -> Path:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,speaker\n" + "\n".join(rows) + "\n")
    return manifest


def test_a_manifest_that_lists_a_file_twice_names_both_lines(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "c", clips=2)
    wavs = sorted(p.relative_to(tmp_path).as_posix() for p in corpus.rglob("*.wav"))
    a, b = wavs[0], wavs[1]
    # line 4 is line 2's file spelled another way, with another label: it must not train too
    manifest = write_manifest(tmp_path, [f"{a},angry,s1", f"{b},sad,s2", f"./c/../{a},sad,s1"])
    found = scan(tmp_path, "csv", manifest=manifest)
    assert [c.path.name for c in found.clips] == sorted([Path(a).name, Path(b).name])
    (path, reason), = found.problems
    assert "listed twice" in reason and "lines 2 and 4" in reason and "labels angry and sad" in reason
    with pytest.raises(DataError, match=r"listed twice \(.*m.csv lines 2 and 4"):
        discover(tmp_path, "csv", manifest=manifest, on_error="fail")
    kept = discover(tmp_path, "csv", manifest=manifest, on_error="skip")
    assert len(kept) == 2 and {c.label for c in kept} == {"angry", "sad"}  # the first row's label


def test_two_corpora_naming_the_same_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from serlaq.config import CorpusConfig

    corpus = make_corpus(tmp_path / "c", clips=2)
    specs = [CorpusConfig(dataset="folder", data_dir=corpus, name=n) for n in ("one", "two")]
    with pytest.raises(DataError, match=r"data.corpora \(two\): .*in corpus 'one' too"):
        gather(specs, on_error="fail")
    with caplog.at_level(logging.WARNING, logger="serlaq.data"):
        gathered = gather(specs, on_error="skip")
    assert len(gathered.clips) == 8 and set(gathered.corpus) == {"one"} and gathered.repeated == 8
    assert any("left out 8 clips that an earlier corpus" in r.getMessage() for r in caplog.records)


# --- 3: clips a label mapping leaves out ---------------------------------------------------


def test_label_drops_are_a_warning_and_counted_in_the_data_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    corpus = make_corpus(tmp_path / "c", clips=4)
    with caplog.at_level(logging.WARNING, logger="serlaq.data"):
        datamodule = SERDataModule(corpus_config(corpus, tmp_path, "d", **{"data.labels": ["angry", "sad"]}))
        datamodule.setup()
    assert any("left out 8 clips by label (happy 4, neutral 4)" in r.getMessage() for r in caplog.records)
    assert datamodule.summary["clips_dropped_by_label"] == 8


def test_map_labels_warns_by_default() -> None:
    from serlaq.data.corpora import Clip

    clips = [Clip(Path(f"{i}.wav"), label, "s") for i, label in enumerate(["boredom", "angry", "sad"])]
    lines: list[str] = []
    kept = map_labels(clips, {"boredom": None}, None, where="data.corpora (x)", on_drop=lines.append)
    assert [c.label for c in kept] == ["angry", "sad"] and lines == ["data.corpora (x): left out 1 clips by label (boredom 1)"]


# --- 4: every class in every split -----------------------------------------------------------


def labels_of(counts: tuple[int, ...]) -> list[str]:
    return [f"c{k}" for k, n in enumerate(counts) for _ in range(n)]


def test_a_class_of_three_clips_gets_one_val_and_one_test_clip() -> None:
    labels = np.array(labels_of((40, 40, 3)))
    for seed in range(6):
        train, val, test = split_indices(labels, seed=seed)
        for part in (train, val, test):
            assert (labels[part] == "c2").sum() == 1
        assert len(test) == len(val) == 9  # the sizes stay ceil(0.1 * 83)


# The splits of these corpora as drawn before the every-class rule (recorded at HEAD caec45e):
# every class already had a val and a test clip, so nothing may move.
SPLIT_CASES = [(127, 81, 46, 69, 71, 62, 79), (6,) * 7, (10,) * 7, (12, 12, 12, 12), (40, 5, 33, 8, 20)]
SPLITS_BEFORE = "fdab36b5e3bbd39f8963c428689246d3656173213d33d2c5db2e620b3a342d07"


def test_splits_of_normal_corpora_are_unchanged() -> None:
    digest = hashlib.sha256()
    for counts in SPLIT_CASES:
        for seed in range(4):
            for fractions in ((0.8, 0.1, 0.1), (0.7, 0.15, 0.15)):
                for part in split_indices(labels_of(counts), seed=seed, fractions=fractions):
                    digest.update(part.tobytes())
                    digest.update(b"|")
    assert digest.hexdigest() == SPLITS_BEFORE


def test_too_few_test_clips_for_every_class_is_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="serlaq.data"):
        split_indices(labels_of((6,) * 7), seed=0)  # 5 test clips, 7 classes
    messages = [r.getMessage() for r in caplog.records if "split: no test clip" in r.getMessage()]
    assert len(messages) == 1 and "c" in messages[0]


# --- 6 and 7: one-line refusals of compress and report ----------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--budget-kb", "1"], "--budget-kb 1: the budget is below the smallest model"),
        (["--weights", "-1", "0", "0"], "--weights: every weight"),
        (["--data-dir", ""], "--data-dir: empty"),
    ],
)
def test_compress_errors_are_one_line(
    run: RunResult, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    code, _, err = run_serlaq(["compress", "--checkpoint", str(run.checkpoint), "--out", str(tmp_path / "x.laq"), *args], capsys)
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and expected in lines[0], err
    assert "Value error" not in err


def test_report_of_a_laq_file_says_which_protocol_takes_it(
    run: RunResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    laq = tmp_path / "model.laq"
    laq.write_bytes(b"LAQ")
    code, _, err = run_serlaq(["report", str(laq)], capsys)
    assert code == 1 and "needs the run folder" in err and "--protocol cross" in err and "not found" not in err
    code, _, err = run_serlaq(["report", str(run.run_dir), "--data-dir", " "], capsys)
    assert code == 1 and "--data-dir: empty" in err
