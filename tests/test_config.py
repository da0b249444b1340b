"""The run config: YAML → typed objects, one-line errors naming the key, overrides."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from serlaq.config import (
    RunConfig,
    command_config,
    default_cache_dir,
    load_config,
    parse_override,
    save_config,
)
from serlaq.errors import ConfigError
from serlaq.features import FeatureConfig
from serlaq.laq_config import LaqConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["demo", "tess", "emodb", "savee"])
def test_shipped_configs_validate(name: str) -> None:
    config = load_config(CONFIGS / f"{name}.yaml")
    assert config.name == name
    assert config.run_dir == Path("runs") / name
    assert isinstance(config.features, FeatureConfig)
    assert config.features.preset == "portable-trimmed" and config.features.dim == 248 and config.train.recipe == "tuned"
    assert config.features.edge_pause_s == 0.15  # a quiet lead-in/tail is cut: trained on close-cut clips, read on recordings
    assert config.model.hidden == "3HL"
    assert (config.train.lr, config.train.batch_size, config.train.max_epochs, config.train.scheduler) == (1e-3, 32, 60, "cosine")
    assert config.model.dropout == 0.1
    assert config.data.split == (0.8, 0.1, 0.1)
    assert config.data.dataset == ("synthetic" if name == "demo" else name)


def test_defaults_are_the_papers_settings() -> None:
    config = RunConfig()
    assert config.model.hidden == "3HL" and config.model.dropout == 0.1
    assert config.train.lr == 1e-3 and config.train.batch_size == 32 and config.train.recipe == "tuned"
    paper = RunConfig(features={"preset": "paper"}, train={"recipe": "paper"})  # the switch that reproduces the paper
    assert paper.features.dim == 180 and paper.train.patience == 5 and paper.train.max_epochs == 200
    assert config.data.dataset == "synthetic" and config.laq is None
    assert config.trainer.deterministic is True


def test_unknown_key_names_file_and_dotted_key(tmp_path: Path) -> None:
    path = write(tmp_path, "train:\n  lr: 0.01\n  batchsize: 16\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "train.batchsize" in message and "unknown key" in message
    assert "batch_size" in message  # the allowed keys are listed
    assert "\n" not in message


def test_unknown_top_level_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'optimizer'"):
        load_config(write(tmp_path, "optimizer: {lr: 1}\n"))


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "train:\n  max_epochs: many\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: train.max_epochs:")
    assert "integer" in message and "'many'" in message


@pytest.mark.parametrize("value", ["true", "1.5", "'3'"])
def test_a_seed_that_is_not_a_whole_number_is_refused(value: str) -> None:
    """YAML's `true` is no seed (pydantic would read it as 1), nor is 1.5 or a string."""
    with pytest.raises(ConfigError, match="seed"):
        command_config(None, data_dir=Path("corpus"), sets=[f"seed={value}"])
    assert command_config(None, data_dir=Path("corpus"), sets=["seed=7"]).seed == 7


def test_bad_values_are_rejected_with_the_key(tmp_path: Path) -> None:
    cases = {
        "model: {hidden: 4HL}\n": "model.hidden",
        "model: {hidden: [256, -1]}\n": "model.hidden",
        "model: {dropout: 1.5}\n": "model.dropout",
        "data: {split: [0.5, 0.3, 0.3]}\n": "data.split",
        "data: {dataset: timit}\n": "data.dataset",
        "data: {on_error: ignore}\n": "data.on_error",
        "train: {monitor: train_loss}\n": "train.monitor",
        "features: {n_mfcc: 0}\n": "features.n_mfcc",
        "laq: {margin: -1}\n": "laq.margin",
        "laq: {ood_features: maybe}\n": "laq.ood_features",
        "laq: {ood_floor: -1}\n": "laq.ood_floor",
        "features: {edge_floor: maybe}\n": "features.edge_floor",
        "seed: -1\n": "seed",  # Lightning's seed_everything took it as a traceback
        "seed: 4294967296\n": "seed",
        "data: {synthetic: {seed: -1}}\n": "data.synthetic.seed",
    }
    for text, key in cases.items():
        with pytest.raises(ConfigError) as info:
            load_config(write(tmp_path, text))
        assert f": {key}" in str(info.value), (text, str(info.value))


def test_a_split_without_val_or_test_is_refused_before_training(tmp_path: Path) -> None:
    """[0.8, 0.2, 0.0] trained to the end and then failed writing metrics.json (NaN test
    scores); [0.9, 0.0, 0.1] failed in early stopping. Both are refused at load, saying why."""
    cases = {
        "[0.8, 0.2, 0.0]": "the test fraction must be above 0, got [0.8, 0.2, 0.0]: fit, metrics.json and laq.json",
        "[0.9, 0.0, 0.1]": "the val fraction must be above 0, got [0.9, 0.0, 0.1]: fit picks its checkpoint",
        "[.nan, 0.5, 0.5]": "train/val/test fractions must be within 0..1 and sum to 1, got [nan, 0.5, 0.5]",
    }
    for split, message in cases.items():
        path = write(tmp_path, f"data: {{split: {split}}}\n")
        with pytest.raises(ConfigError, match="^" + re.escape(f"{path}: data.split: {message}")):
            load_config(path)
    assert load_config(write(tmp_path, "data: {split: [0.85, 0.1, 0.05]}\n")).data.split == (0.85, 0.1, 0.05)


def test_edge_floor_needs_the_edge_cut(tmp_path: Path) -> None:
    """The floor line refines `edge_pause_s`; alone it would silently do nothing."""
    with pytest.raises(ConfigError, match=r": features: edge_floor needs edge_pause_s"):
        load_config(write(tmp_path, "features: {preset: portable-nochroma, edge_floor: true}\n"))
    with pytest.raises(ConfigError, match=r"edge_floor needs edge_pause_s"):
        load_config(write(tmp_path, "features: {preset: portable-trimmed-floor, edge_pause_s: null}\n"))
    assert load_config(write(tmp_path, "features: {preset: portable-trimmed-floor}\n")).features.edge_floor


def test_corpus_needs_its_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"needs data.data_dir \(or --data-dir DIR\)"):
        load_config(write(tmp_path, "data: {dataset: emodb}\n"))
    assert load_config(write(tmp_path, "data: {dataset: emodb}\n"), ["data.data_dir=/corpora/emodb"]).data.data_dir == Path(
        "/corpora/emodb"
    )


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"run.yaml: invalid YAML"):
        load_config(write(tmp_path, "train: [lr: 1\n"))
    with pytest.raises(ConfigError, match=r"nope.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"expected a mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"))


def test_overrides_parse_yaml_values_and_nest() -> None:
    config = load_config(
        CONFIGS / "demo.yaml",
        ["model.hidden=[128, 32]", "train.lr=5e-4", "data.synthetic.clips_per_class=3", "laq={margin: 0.02}", "seed=7"],
    )
    assert config.model.hidden == [128, 32]
    assert config.train.lr == 5e-4
    assert config.data.synthetic.clips_per_class == 3
    assert config.data.synthetic.speakers == 4  # siblings of an overridden key are kept
    assert config.laq == LaqConfig(margin=0.02)
    assert config.seed == 7
    assert load_config(CONFIGS / "demo.yaml", {"model.hidden": "2hl"}).model.hidden == "2HL"


def test_overrides_of_text_fields_keep_the_text_as_written() -> None:
    # YAML would read these as a number, a boolean and a date; the fields hold text
    config = load_config(
        CONFIGS / "demo.yaml",
        ["name=2024", "data.dataset=auto", "data.data_dir=1e3", "laq={}", "laq.out=7.laq", "trainer.accelerator=2025-01-01", "train.threads=null"],
    )
    assert config.name == "2024" and config.run_dir.name == "2024"
    assert config.data.data_dir == Path("1e3")
    assert config.laq is not None and config.laq.out == "7.laq"
    assert config.trainer.accelerator == "2025-01-01"
    assert config.train.threads is None  # null still means None for an optional field
    assert parse_override("name=true") == ("name", "true")
    # fields of other types still get YAML values
    assert parse_override("seed=2024") == ("seed", 2024)
    assert parse_override("trainer.devices=2") == ("trainer.devices", 2)
    assert parse_override("model.hidden=[8, 4]") == ("model.hidden", [8, 4])


def test_override_errors_name_the_override() -> None:
    with pytest.raises(ConfigError, match=r"^--set train\.lrr: unknown key 'train\.lrr'"):
        load_config(CONFIGS / "demo.yaml", ["train.lrr=1"])
    with pytest.raises(ConfigError, match=r"^--set train\.lr: .*number"):
        load_config(CONFIGS / "demo.yaml", ["train.lr=fast"])
    with pytest.raises(ConfigError, match=r"expected key.sub=value"):
        parse_override("train.lr")
    with pytest.raises(ConfigError, match=r"train.lr is not a section"):
        load_config(CONFIGS / "demo.yaml", ["train.lr.x=1"])
    # a list too short is named by the --set that gave it, with the missing item
    with pytest.raises(ConfigError, match=r"^--set data\.split: data\.split\[2\]: Field required"):
        load_config(CONFIGS / "demo.yaml", ["data.split=[0.5,0.5]"])


def test_command_flags_override_the_file(tmp_path: Path) -> None:
    config = command_config(
        CONFIGS / "emodb.yaml",
        data_dir=tmp_path / "emodb",
        seed=11,
        out=tmp_path / "runs" / "mine",
        sets=["train.max_epochs=3"],
    )
    assert config.data.data_dir == tmp_path / "emodb"
    assert config.seed == 11
    assert config.run_dir == (tmp_path / "runs" / "mine").resolve()
    assert config.train.max_epochs == 3


def test_resume_without_config_reads_the_run_folder(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "old"
    save_config(load_config(CONFIGS / "demo.yaml", ["seed=5"]), run_dir / "config.yaml")
    config = command_config(None, out=run_dir, resume=True)
    assert config.seed == 5 and config.run_dir == run_dir.resolve()
    with pytest.raises(ConfigError, match=r"--config"):
        command_config(None)


def test_a_corpus_folder_is_trained_by_its_layout_never_swapped_for_the_generated_one(tmp_path: Path) -> None:
    """A config without `data.dataset` plus --data-dir trained serlaq's generated tones and
    ignored the folder; `serlaq fit --data-dir DIR` alone refused to start."""
    corpus = tmp_path / "my_corpus"
    # no config at all: every default, the layout read from the folder, the run named after it
    config = command_config(None, data_dir=corpus)
    assert config.data.dataset == "auto" and config.data.data_dir == corpus and config.name == "my_corpus"
    assert command_config(None, data_dir=tmp_path / "emodb" / "wav").name == "emodb"  # a generic folder: its parent
    assert command_config(None, data_dir=tmp_path / "room.csv").name == "room"
    manifest = command_config(None, sets=[f"data.manifest={tmp_path / 'room.csv'}"])
    assert manifest.data.dataset == "csv" and manifest.name == "room"
    # a config that names no dataset reads the folder too
    bare = tmp_path / "bare.yaml"
    bare.write_text("train: {max_epochs: 3}\n")
    assert command_config(bare, data_dir=corpus).data.dataset == "auto"
    assert command_config(bare).data.dataset == "synthetic"  # no folder: the generated corpus
    # one that says synthetic, given a folder: refused, naming the flag and the remedy
    with pytest.raises(ConfigError, match=r"^--data-dir: data: dataset 'synthetic' is serlaq's generated corpus and reads no files, but data_dir .*my_corpus is given: set dataset to auto"):
        command_config(CONFIGS / "demo.yaml", data_dir=corpus)
    with pytest.raises(ConfigError, match=r"^--config or --data-dir: give a run config"):
        command_config(None, seed=3)


def test_saved_config_round_trips(tmp_path: Path) -> None:
    config = load_config(CONFIGS / "emodb.yaml", ["model.hidden=[64, 32]", "laq={margin: 0.03}", "trainer.devices=2"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config
    assert not list(tmp_path.glob(".*tmp"))  # the atomic write leaves no temp file


def test_cache_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERLAQ_CACHE", str(tmp_path / "cache"))
    assert default_cache_dir() == tmp_path / "cache"
    assert RunConfig().data.cache_dir == tmp_path / "cache"
    monkeypatch.delenv("SERLAQ_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "serlaq"


def test_the_paper_preset_is_one_switch_for_features_and_recipe() -> None:
    from serlaq.config import load_config

    root = Path(__file__).resolve().parents[1] / "configs"
    paper = load_config(root / "emodb.yaml", {"features.preset": "paper"})
    assert (paper.features.preset, paper.features.dim, paper.train.recipe) == ("paper", 180, "paper")
    assert (paper.train.max_epochs, paper.train.patience, paper.train.scheduler) == (200, 5, "none")
    default = load_config(root / "emodb.yaml", {})
    assert (default.features.preset, default.features.dim, default.train.recipe) == ("portable-trimmed", 248, "tuned")
    # an explicit recipe still wins
    mixed = load_config(root / "emodb.yaml", {"features.preset": "paper", "train.recipe": "tuned"})
    assert mixed.train.recipe == "tuned"


def test_a_run_config_stored_before_presets_reads_as_the_paper() -> None:
    from serlaq.config import RunConfig

    old = RunConfig.from_stored({"seed": 3, "features": {"n_mels": 128}, "train": {"lr": 0.001}})
    assert (old.features.preset, old.features.dim, old.train.recipe, old.seed) == ("paper", 180, "paper", 3)
    new = RunConfig.from_stored(RunConfig().to_dict())
    assert new == RunConfig()
