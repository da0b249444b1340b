"""Several corpora as one run (`data.corpora`): config, label mapping, speaker-disjoint splits, balancing.

The corpora are generated: EMODB- and TESS-named WAVs of short tones (tests never read real corpora).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import tone, write_wav

from serlaq.config import load_config
from serlaq.data.datamodule import SPEAKER_COPY_MIN_CLIPS, BalancedEpochSampler, SERDataModule
from serlaq.data.multi import balance_weights
from serlaq.errors import ConfigError

EMODB_LETTERS = {"W": "angry", "T": "sad", "N": "neutral", "L": "boredom"}
TESS_WORDS = {"angry": "angry", "sad": "sad", "neutral": "neutral", "ps": "surprise"}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """emodb/: 4 speakers x 4 emotions x 2 clips; tess/: OAF, YAF x 4 emotions x 4 clips (0.25 s tones)."""
    root = tmp_path_factory.mktemp("corpora")
    k = 0
    for spk in ("03", "08", "09", "10"):
        for letter in EMODB_LETTERS:
            for take in "ab":
                k += 1
                write_wav(root / "emodb" / f"{spk}a0{take == 'b' and 2 or 1}{letter}{take}.wav", tone(0.25, 16000, 150 + 7 * k, seed=k), 16000)
    for spk in ("OAF", "YAF"):
        for word in TESS_WORDS:
            for n, item in enumerate(("back", "bar", "base", "bath")):
                k += 1
                write_wav(root / "tess" / f"{spk}_{word}" / f"{spk}_{item}_{word}.wav", tone(0.25, 24414, 200 + 5 * k, seed=k), 24414)
    return root


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def multi_config(root: Path, cache: Path, **overrides: Any):
    corpora = [
        {"dataset": "emodb", "data_dir": str(root / "emodb")},
        {"dataset": "tess", "data_dir": str(root / "tess"), "labels": {"surprise": None}},
    ]
    base = {"data.corpora": corpora, "data.cache_dir": str(cache), "data.workers": 1, "trainer.enable_progress_bar": False}
    return load_config(None, {**base, **overrides})


def setup(config) -> SERDataModule:
    dm = SERDataModule(config)
    dm.setup()
    return dm


def test_corpora_config_is_one_multi_run_and_keeps_the_single_form() -> None:
    config = load_config(None, {"data.corpora": [{"dataset": "emodb", "data_dir": "e"}, {"dataset": "csv", "manifest": "m/x.csv"}]})
    assert config.data.dataset == "multi"
    assert [c.corpus_name for c in config.data.corpora] == ["emodb", "x"]
    single = load_config(None, {"data.dataset": "tess", "data.data_dir": "t"})
    assert single.data.corpora is None and single.data.data_dir == Path("t")


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"data.corpora": [{"dataset": "tess"}]}, "data.corpora[0]: dataset 'tess' needs data_dir"),
        ({"data.corpora": [{"dataset": "csv", "data_dir": "x"}]}, "data.corpora[0]: dataset 'csv' needs manifest"),
        ({"data.corpora": [{"dataset": "tess", "data_dir": "a"}, {"dataset": "tess", "data_dir": "b"}]}, "name 'tess' is used twice"),
        ({"data.corpora": [{"dataset": "tess", "data_dir": "a"}], "data.data_dir": "x"}, "data_dir (--data-dir) is for a single-corpus run"),
        ({"data.corpora": [{"dataset": "tess", "data_dir": "a"}], "data.dataset": "emodb"}, "remove dataset 'emodb'"),
        ({"data.corpora": [{"dataset": "tess", "data_dir": "a", "labels": {"joyful": "happy"}}]}, "data.corpora[0].labels: unknown label 'joyful'"),
        ({"data.corpora": [{"dataset": "tess", "data_dir": "a", "labels": {"happy": "glad"}}]}, "unknown target label 'glad'"),
        ({"data.corpora": [{"dataset": "tess", "data_dir": "a", "dir": "b"}]}, "unknown key 'data.corpora[0].dir'"),
        ({"data.corpora": [{"dataset": "tess", "data_dir": "a", "name": "my-tess"}]}, "data.corpora[0].name"),
        ({"data.corpora": []}, "data.corpora"),
        ({"data.dataset": "multi"}, "needs data.corpora"),
        ({"data.labels": ["angry", "rage"]}, "data.labels: unknown label 'rage'"),
        ({"data.balance": "speaker"}, "data.balance"),
    ],
)
def test_bad_multi_corpus_configs_name_the_key(overrides: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, overrides)
    message = str(err.value)
    assert named in message and "\n" not in message


def test_command_line_data_dir_is_refused_for_a_multi_corpus_config(tmp_path: Path) -> None:
    from serlaq.config import command_config

    file = tmp_path / "multi.yaml"
    file.write_text("data:\n  corpora:\n    - {dataset: tess, data_dir: t}\n    - {dataset: emodb, data_dir: e}\n")
    with pytest.raises(ConfigError, match="single-corpus run"):
        command_config(file, data_dir="elsewhere")


def test_labels_map_to_one_set_and_speakers_are_prefixed(corpora: Path, cache: Path) -> None:
    dm = setup(multi_config(corpora, cache, **{"data.labels": ["angry", "sad", "neutral"]}))
    clips = [c for name in ("train", "val", "test") for c in dm.split_clips(name)]
    assert dm.labels == ["angry", "neutral", "sad"]  # EMODB boredom left out by data.labels, TESS ps by its mapping
    assert {c.speaker for c in clips} == {"emodb-03", "emodb-08", "emodb-09", "emodb-10", "tess-OAF", "tess-YAF"}
    records = {r["name"]: r for r in dm.summary["corpora"]}
    assert records["emodb"]["clips"] == 24 and records["emodb"]["speakers"] == 4
    assert records["tess"]["labels"] == {"angry": 8, "neutral": 8, "sad": 8}
    # stratified by (corpus, label): each corpus is in every split
    for name in ("train", "val", "test"):
        assert set(dm.split_corpora(name)) == {"emodb", "tess"}


def test_label_mapping_renames(corpora: Path, cache: Path) -> None:
    config = multi_config(corpora, cache)
    config.data.corpora[0].labels["boredom"] = "neutral"  # validated form: canonical -> canonical
    dm = setup(config)
    assert "boredom" not in dm.labels and "surprise" not in dm.labels
    assert dm.summary["corpora"][0]["labels"]["neutral"] == 16


def test_speaker_independent_split_is_disjoint_across_corpora(corpora: Path, cache: Path) -> None:
    config = multi_config(corpora, cache, **{"data.speaker_independent": True, "data.split": [0.5, 0.25, 0.25]})
    dm = setup(config)
    speakers = {name: {c.speaker for c in dm.split_clips(name)} for name in ("train", "val", "test")}
    assert not (speakers["train"] & speakers["val"]) and not (speakers["train"] & speakers["test"]) and not (speakers["val"] & speakers["test"])
    assert sum(len(s) for s in speakers.values()) == 6
    again = setup(config)
    assert again.split_indices("test") == dm.split_indices("test")


def test_balance_weights_give_each_group_the_same_mass() -> None:
    groups = ["a"] * 6 + ["b"] * 2 + ["c"]
    w = np.array(balance_weights(groups))
    mass = {g: w[[i for i, x in enumerate(groups) if x == g]].sum() for g in "abc"}
    assert np.allclose(list(mass.values()), 3.0) and np.isclose(w.sum(), len(groups))


def test_balanced_sampler_is_deterministic_per_seed_and_balances(corpora: Path, cache: Path) -> None:
    dm = setup(multi_config(corpora, cache, **{"data.balance": "corpus"}))
    loader = dm.train_dataloader()
    sampler = loader.sampler
    assert isinstance(sampler, BalancedEpochSampler)
    first = list(sampler)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first
    corpus = dm.train_groups("corpus")  # the corpus of every row the sampler draws from (speaker copies included)
    counts = Counter(corpus)
    assert counts["emodb"] != counts["tess"]  # unbalanced to start with
    drawn = Counter(corpus[i] for epoch in range(20) for i in (sampler.set_epoch(epoch) or list(sampler)))
    assert abs(drawn["emodb"] / sum(drawn.values()) - 0.5) < 0.06
    other = SERDataModule(multi_config(corpora, cache, **{"data.balance": "corpus", "seed": 1}))
    other.setup()
    assert list(other.train_dataloader().sampler) != first


def test_corpus_class_balance_groups_by_both(corpora: Path, cache: Path) -> None:
    dm = setup(multi_config(corpora, cache, **{"data.balance": "corpus_class"}))
    groups = dm.train_groups("corpus_class")
    assert len(set(groups)) == 4 + 3  # emodb's 4 labels, tess's 3
    assert isinstance(dm.train_dataloader().sampler, BalancedEpochSampler)


def test_a_missing_corpus_names_it(corpora: Path, tmp_path: Path) -> None:
    from serlaq.errors import DataError

    config = load_config(None, {"data.corpora": [{"dataset": "emodb", "data_dir": str(corpora / "emodb")}, {"dataset": "tess", "data_dir": str(tmp_path / "nope")}], "data.cache_dir": str(tmp_path)})
    with pytest.raises(DataError, match=r"data.corpora \(tess\): .*nope: corpus directory not found"):
        setup(config)


def test_saved_config_holds_absolute_corpus_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from serlaq.training import resolve_paths

    monkeypatch.chdir(tmp_path)
    config = resolve_paths(load_config(None, {"data.corpora": [{"dataset": "tess", "data_dir": "t"}, {"dataset": "csv", "manifest": "m.csv"}]}))
    assert [c.data_dir for c in config.data.corpora][0] == tmp_path / "t"
    assert config.data.corpora[1].manifest == tmp_path / "m.csv"
    assert load_config(None, config.to_dict()).data.corpora == config.data.corpora  # round-trips through config.yaml


def test_speaker_copies_add_rows_normalized_per_speaker(corpora: Path, cache: Path) -> None:
    """train.speaker_copies: a second copy of the training split in which each speaker with
    enough clips is its own z-score after the model's (global) standardization; the global
    statistics, the labels and the updates per epoch stay those of the clean split."""
    every_label = [
        {"dataset": "emodb", "data_dir": str(corpora / "emodb")},
        {"dataset": "tess", "data_dir": str(corpora / "tess")},  # 16 clips per TESS speaker, 8 per EMODB one
    ]
    off = setup(multi_config(corpora, cache, **{"data.corpora": every_label, "train.speaker_copies": False}))
    on = setup(multi_config(corpora, cache, **{"data.corpora": every_label, "train.speaker_copies": True}))
    n = len(on.split_indices("train"))
    loader = on.train_dataloader()
    x, y = loader.dataset.tensors
    assert len(x) == 2 * n and len(loader.sampler) == n == len(off.train_dataloader().sampler)
    assert torch.equal(on.feature_mean, off.feature_mean) and torch.equal(on.feature_std, off.feature_std)
    assert torch.equal(y[n:], y[:n]) and torch.equal(x[:n], off.train_dataloader().dataset.tensors[0])
    z = ((x[n:].double() - on.feature_mean.double()) / on.feature_std.double()).numpy()
    raw = x[:n].double().numpy()
    speakers = np.array([c.speaker for c in on.split_clips("train")])
    copied = 0
    for spk in sorted(set(speakers)):
        rows = speakers == spk
        if rows.sum() < SPEAKER_COPY_MIN_CLIPS:
            assert np.array_equal(x[n:][rows].numpy(), x[:n][rows].numpy()), spk  # too few clips: copied as they are
            continue
        copied += 1
        varied = raw[rows].std(axis=0) > 1e-3 * on.feature_std.double().numpy()
        assert np.abs(z[rows].mean(axis=0)).max() < 1e-3, spk
        assert np.abs(z[rows][:, varied].std(axis=0) - 1.0).max() < 1e-3, spk
    assert copied == 2  # both TESS speakers, no EMODB one


def test_a_single_corpus_read_with_auto_records_the_layout_it_read(corpora: Path, cache: Path) -> None:
    # what `serlaq evaluate` later matches a corpus against (the training-corpus warning)
    base = {"data.data_dir": str(corpora / "emodb"), "data.cache_dir": str(cache), "data.workers": 1}
    dm = setup(load_config(None, {**base, "data.dataset": "auto"}))
    [record] = dm.summary["corpora"]
    assert record["dataset"] == "emodb" and dm.summary["layout"] == "emodb"
    # named by its folder, as the .laq's provenance names it (it said "auto")
    assert record["name"] == "emodb"
