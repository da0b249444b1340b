"""The run config: one YAML file, validated into typed pydantic models.

Every section forbids unknown keys, so a typo is an error that names the key rather than
a silently ignored setting. `load_config` reads the YAML, applies command-line overrides
(`--set key.sub=value`, values parsed as YAML), validates, and turns any failure into one
`ConfigError` line naming the file (or the override) and the dotted key.

Relative paths (data_dir, manifest, cache_dir, out_dir) are relative to the directory the
command runs in, as on a shell command line.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from serlaq.errors import ConfigError
from serlaq.feature_config import FeatureConfig
from serlaq.io import atomic_write_text
from serlaq.laq_config import LaqConfig

# The corpus layouts of `serlaq.data.corpora.DATASETS` (kept in step; a test checks it).
Dataset = Literal["synthetic", "tess", "emodb", "savee", "ravdess", "cremad", "emovo", "shemo", "folder", "csv", "auto", "multi"]
CorpusLayout = Literal["tess", "emodb", "savee", "ravdess", "cremad", "emovo", "shemo", "folder", "csv", "auto"]
# The layouts that are one published corpus: a corpus read with one is named after it.
NAMED_CORPORA = ("tess", "emodb", "savee", "ravdess", "cremad", "emovo", "shemo")


def default_cache_dir() -> Path:
    """$SERLAQ_CACHE, else the user cache directory ($XDG_CACHE_HOME or ~/.cache)/serlaq."""
    if env := os.environ.get("SERLAQ_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "serlaq"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class SyntheticConfig(_Section):
    """The generated demo corpus (`serlaq.data.synthetic.generate_corpus`).

    Its own `seed` fixes the audio, so runs with different run seeds split the same corpus.
    """

    seed: int = Field(0, ge=0)
    clips_per_class: int = Field(35, ge=1)
    speakers: int = Field(4, ge=1)
    seconds: float = Field(1.0, ge=0.2, le=30.0)
    sample_rate: int = Field(22050, ge=8000)
    emotions: list[str] = Field(
        default_factory=lambda: ["angry", "boredom", "disgust", "fear", "happy", "neutral", "sad"], min_length=2
    )


# Folder names that say nothing about a corpus (EMODB ships its clips in `wav/`): name the parent.
_GENERIC_FOLDERS = {"wav", "wavs", "audio", "data", "clips", "files", "audiodata"}


def corpus_path_name(path: str | os.PathLike[str], manifest: bool = False) -> str:
    """The short name of the corpus at `path`: a manifest's stem, a folder's name (its
    parent's for a generic one: `emodb/wav` -> `emodb`)."""
    where = Path(os.path.abspath(Path(path).expanduser()))  # a linked folder keeps the name it is given
    if manifest or where.suffix.lower() == ".csv":  # a manifest given as the corpus root reads as one
        return where.stem
    return where.parent.name if where.name.lower() in _GENERIC_FOLDERS and where.parent.name else where.name


class CorpusConfig(_Section):
    """One corpus of a multi-corpus run (`data.corpora`).

    `name` (default: the dataset name, or the folder/manifest stem for folder/csv/auto) is
    unique within the run and prefixes the corpus's speaker ids (`emodb-03`, `tess-OAF`),
    so speaker-independent splits stay disjoint across corpora. `labels` maps this
    corpus's canonical labels to the run's label set: `{calm: neutral}` renames,
    `{boredom: null}` leaves those clips out.
    """

    dataset: CorpusLayout
    data_dir: Path | None = None
    manifest: Path | None = None
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_]+$", description="letters, digits and _ (prefixes speaker ids)")
    labels: dict[str, str | None] = Field(default_factory=dict, description="label -> run label, or null to drop")

    @field_validator("data_dir", "manifest")
    @classmethod
    def _expand(cls, path: Path | None) -> Path | None:
        return path.expanduser() if path is not None else None

    @field_validator("labels")
    @classmethod
    def _labels(cls, labels: dict[str, str | None]) -> dict[str, str | None]:
        from serlaq.labels import LABELS, canonical_label

        out: dict[str, str | None] = {}
        for source, target in labels.items():
            key = canonical_label(source)
            if key is None:
                raise ValueError(f"unknown label {source!r} (known: {', '.join(LABELS)})")
            value = canonical_label(target) if target is not None else None
            if target is not None and value is None:
                raise ValueError(f"{source}: unknown target label {target!r} (known: {', '.join(LABELS)})")
            out[key] = value
        return out

    @model_validator(mode="after")
    def _source(self) -> CorpusConfig:
        if self.dataset == "csv" and self.manifest is None:
            raise ValueError("dataset 'csv' needs manifest (a CSV file: path,label[,speaker])")
        if self.dataset != "csv" and self.data_dir is None and self.manifest is None:
            raise ValueError(f"dataset {self.dataset!r} needs data_dir")
        return self

    @property
    def corpus_name(self) -> str:
        if self.name is not None:
            return self.name
        if self.dataset in NAMED_CORPORA:
            return self.dataset
        source = self.manifest if self.manifest is not None else self.data_dir
        stem = re.sub(r"[^A-Za-z0-9_]+", "_", source.stem if source is not None else "") or self.dataset
        return stem

    def resolved(self) -> CorpusConfig:
        return self.model_copy(
            update={
                "data_dir": self.data_dir.resolve() if self.data_dir else None,
                "manifest": self.manifest.resolve() if self.manifest else None,
            }
        )


BALANCE = ("none", "class", "corpus", "corpus_class")


def _bounds(lo: float, hi: float):  # type: ignore[no-untyped-def]
    """A validator for a (low, high) range inside [lo, hi]."""

    def check(value: tuple[float, float]) -> tuple[float, float]:
        a, b = value
        if not (lo <= a <= b <= hi) or not all(math.isfinite(v) for v in value):
            raise ValueError(f"expected [low, high] with {lo} <= low <= high <= {hi}, got {list(value)}")
        return value

    return check


# The transforms of `data.augment`, in the order a copy runs them (serlaq.data.augment).
AUGMENT_ORDER = ("pause", "speed", "pitch", "reverb", "eq", "resample", "noise", "gain")


class _Augment(_Section):
    p: float = Field(0.5, ge=0.0, le=1.0, description="probability that a copy gets this transform")


class GainAugment(_Augment):
    db: tuple[float, float] = (-12.0, 12.0)
    _db = field_validator("db")(_bounds(-40.0, 40.0))


class ResampleAugment(_Augment):
    rates: list[int] = Field(default_factory=lambda: [8000, 16000, 22050, 44100, 48000], min_length=1)

    @field_validator("rates")
    @classmethod
    def _rates(cls, rates: list[int]) -> list[int]:
        bad = [r for r in rates if not 4000 <= r <= 192000]
        if bad:
            raise ValueError(f"sample rates must be within 4000..192000 Hz, got {bad[0]}")
        return rates


class EqAugment(_Augment):
    tilt_db_per_octave: tuple[float, float] = (-3.0, 3.0)
    low_cut_hz: tuple[float, float] = (0.0, 300.0)
    _tilt = field_validator("tilt_db_per_octave")(_bounds(-12.0, 12.0))
    _cut = field_validator("low_cut_hz")(_bounds(0.0, 2000.0))


class NoiseAugment(_Augment):
    snr_db: tuple[float, float] = (5.0, 30.0)
    color: tuple[float, float] = Field((0.0, 2.0), description="spectral slope 1/f^color: 0 white, 1 pink, 2 brown")
    _snr = field_validator("snr_db")(_bounds(-20.0, 100.0))
    _color = field_validator("color")(_bounds(0.0, 3.0))


class PauseAugment(_Augment):
    seconds: tuple[float, float] = Field((0.0, 1.5), description="room tone before the clip and, drawn again, after it, seconds")
    level_db: tuple[float, float] = Field((-70.0, -40.0), description="room tone level relative to the clip's RMS, dB")
    _seconds = field_validator("seconds")(_bounds(0.0, 10.0))
    _level = field_validator("level_db")(_bounds(-120.0, 0.0))


class ReverbAugment(_Augment):
    rt60: tuple[float, float] = Field((0.2, 0.8), description="reverberation time, seconds")
    drr_db: tuple[float, float] = Field((0.0, 12.0), description="direct-to-reverberant energy ratio, dB")
    _rt60 = field_validator("rt60")(_bounds(0.05, 3.0))
    _drr = field_validator("drr_db")(_bounds(-20.0, 40.0))


class SpeedAugment(_Augment):
    factor: tuple[float, float] = (0.9, 1.1)
    _factor = field_validator("factor")(_bounds(0.5, 2.0))


class PitchAugment(_Augment):
    semitones: tuple[float, float] = Field((-3.0, 3.0), description="pitch shift, semitones; the tempo is kept")
    _semitones = field_validator("semitones")(_bounds(-12.0, 12.0))


class AugmentConfig(_Section):
    """`data.augment`: waveform augmentation of the training split (serlaq.data.augment).

    A transform is on when its section is given (`noise: {}` takes its defaults) and off
    when left out; at least one must be on.
    """

    copies: int = Field(1, ge=1, le=64, description="augmented copies per training clip, besides the clean one")
    seed: int | None = Field(None, description="augmentation seed; null = the run's seed")
    pause: PauseAugment | None = None
    speed: SpeedAugment | None = None
    pitch: PitchAugment | None = None
    reverb: ReverbAugment | None = None
    eq: EqAugment | None = None
    resample: ResampleAugment | None = None
    noise: NoiseAugment | None = None
    gain: GainAugment | None = None

    @model_validator(mode="after")
    def _some(self) -> AugmentConfig:
        if all(getattr(self, name) is None for name in AUGMENT_ORDER):
            raise ValueError(f"turns on no transform: give at least one of {', '.join(AUGMENT_ORDER)} (e.g. noise: {{}})")
        return self


class DataConfig(_Section):
    dataset: Dataset = "synthetic"
    data_dir: Path | None = None
    manifest: Path | None = None
    corpora: list[CorpusConfig] | None = Field(
        None, min_length=1, description="several corpora trained as one (instead of dataset/data_dir/manifest)"
    )
    labels: list[str] | None = Field(None, min_length=2, description="keep only clips with these labels (after mapping)")
    balance: Literal["none", "class", "corpus", "corpus_class"] = Field(
        "none", description="training sampler: each class / corpus / (corpus, class) drawn equally often"
    )
    augment: AugmentConfig | None = Field(None, description="waveform augmentation of the training split (off when absent)")
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    speaker_independent: bool = False
    on_error: Literal["fail", "skip"] = "fail"
    cache_dir: Path = Field(default_factory=default_cache_dir)
    workers: int | None = Field(None, ge=1, description="feature-extraction processes; None = all cores")

    @field_validator("data_dir", "manifest", "cache_dir")
    @classmethod
    def _expand(cls, path: Path | None) -> Path | None:
        return path.expanduser() if path is not None else None

    @field_validator("split")
    @classmethod
    def _fractions(cls, split: tuple[float, float, float]) -> tuple[float, float, float]:
        if not all(0 <= f <= 1 for f in split) or abs(sum(split) - 1.0) > 1e-6:
            raise ValueError(f"train/val/test fractions must be within 0..1 and sum to 1, got {list(split)}")
        # a run needs all three; refused here, before features and training, not by a crash at the end
        if split[0] <= 0:
            raise ValueError(f"the train fraction must be above 0, got {list(split)}")
        if split[1] <= 0:
            raise ValueError(
                f"the val fraction must be above 0, got {list(split)}: fit picks its checkpoint, stops early, "
                "fits the calibration temperature and searches the LAQ bits on the validation split"
            )
        if split[2] <= 0:
            raise ValueError(
                f"the test fraction must be above 0, got {list(split)}: fit, metrics.json and laq.json report the "
                "model on its test split; to train on more of the corpus, make it small (e.g. [0.85, 0.1, 0.05])"
            )
        return split

    @field_validator("labels")
    @classmethod
    def _keep_labels(cls, labels: list[str] | None) -> list[str] | None:
        from serlaq.labels import LABELS, canonical_label

        if labels is None:
            return None
        out = []
        for label in labels:
            key = canonical_label(label)
            if key is None:
                raise ValueError(f"unknown label {label!r} (known: {', '.join(LABELS)})")
            out.append(key)
        if len(set(out)) != len(out):
            raise ValueError(f"labels listed twice: {labels}")
        return out

    @model_validator(mode="before")
    @classmethod
    def _dataset_of_source(cls, data: Any) -> Any:
        """`dataset` not given: `corpora` make a multi-corpus run, a corpus folder
        (`--data-dir DIR`) is read by its layout (`auto`) and a manifest as `csv`, not left
        for the generated corpus."""
        if isinstance(data, Mapping) and "dataset" not in data:
            if data.get("corpora") is not None:
                return {**data, "dataset": "multi"}
            if data.get("data_dir") is not None:
                return {**data, "dataset": "auto"}
            if data.get("manifest") is not None:
                return {**data, "dataset": "csv"}
        return data

    @model_validator(mode="after")
    def _source(self) -> DataConfig:
        if self.corpora is not None or self.dataset == "multi":
            if self.dataset != "multi":
                raise ValueError(f"corpora: lists the corpora itself; remove dataset {self.dataset!r} (or remove corpora)")
            if self.corpora is None:
                raise ValueError("dataset 'multi' needs data.corpora (a list of {dataset, data_dir | manifest})")
            if self.data_dir is not None or self.manifest is not None:
                which = "data_dir (--data-dir)" if self.data_dir is not None else "manifest"
                raise ValueError(f"corpora: give each corpus its own data_dir/manifest; {which} is for a single-corpus run")
            names = [c.corpus_name for c in self.corpora]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"corpora: name {twice[0]!r} is used twice (set a distinct name for each corpus)")
            return self
        if self.dataset == "synthetic" and (self.data_dir is not None or self.manifest is not None):
            # training on generated tones while the user's folder sits unread helps no one
            which = f"data_dir {self.data_dir}" if self.data_dir is not None else f"manifest {self.manifest}"
            raise ValueError(
                f"dataset 'synthetic' is serlaq's generated corpus and reads no files, but {which} is given: "
                "set dataset to auto (or the corpus's layout: --set data.dataset=auto), or remove the path"
            )
        if self.dataset == "csv" and self.manifest is None:
            raise ValueError("dataset 'csv' needs data.manifest (a CSV file: path,label[,speaker])")
        if self.dataset not in ("synthetic", "csv") and self.data_dir is None:
            raise ValueError(f"dataset {self.dataset!r} needs data.data_dir (or --data-dir DIR)")
        return self

    @property
    def corpus_name(self) -> str:
        """The name of the one corpus this section reads: its folder (or manifest) name;
        `synthetic` for the generated corpus, `multi` for a list of corpora."""
        if self.dataset in ("synthetic", "multi"):
            return self.dataset
        if self.data_dir is not None:
            return corpus_path_name(self.data_dir)
        return corpus_path_name(self.manifest, manifest=True) if self.manifest is not None else self.dataset


class ModelConfig(_Section):
    hidden: str | list[int] = Field("3HL", description="Table-2 preset (2HL/3HL/5HL/7HL/9HL) or a list of widths")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)

    @field_validator("hidden", mode="before")
    @classmethod
    def _hidden(cls, hidden: Any) -> str | list[int]:
        from serlaq.presets import PRESETS

        if isinstance(hidden, str):
            if hidden.strip().upper() not in PRESETS:
                raise ValueError(f"unknown preset {hidden!r}; choose one of {', '.join(PRESETS)} or a list of widths")
            return hidden.strip().upper()
        if (
            not isinstance(hidden, (list, tuple))
            or not hidden
            or any(isinstance(w, bool) or not isinstance(w, int) or w <= 0 for w in hidden)
        ):
            raise ValueError(f"expected a preset name ({', '.join(PRESETS)}) or a non-empty list of positive integers, got {hidden!r}")
        return list(hidden)


# Training recipes: the values that differ from the TrainConfig field defaults (= the paper's
# recipe: Adam 1e-3, early stopping patience 5 on val accuracy). `tuned` was chosen on inner
# holdouts of the training data (benchmarks/bench_fit.py --select --variants combined);
# speaker_copies on the cross-corpus inner folds (docs/training-data.md).
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {},
    "tuned": {"max_epochs": 60, "patience": 1000, "scheduler": "cosine", "label_smoothing": 0.1, "speaker_copies": True},
}
DEFAULT_RECIPE = "tuned"


class TrainConfig(_Section):
    recipe: Literal["paper", "tuned"] = Field(
        DEFAULT_RECIPE, description="named bundle of defaults for the keys below; explicit keys override"
    )
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(32, ge=1)
    max_epochs: int = Field(200, ge=1)
    patience: int = Field(5, ge=1, description="early-stopping patience, in epochs")
    monitor: Literal["val_acc", "val_loss"] = Field(
        "val_acc", description="validation metric early stopping (and the best checkpoint) watches"
    )
    restore_best: bool = Field(
        False, description="final model = the best-monitored epoch (true) or the weights when training stopped (false)"
    )
    threads: int | None = Field(
        1, ge=1, description="torch intra-op threads for training and QAT; None = the CPUs available to the process (affinity, cgroup quota)"
    )
    # Training recipe beyond the paper (defaults = the paper's plain Adam + cross-entropy).
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="cross-entropy label smoothing")
    weight_decay: float = Field(0.0, ge=0.0, description="decoupled weight decay (AdamW) when > 0")
    scheduler: Literal["none", "cosine"] = Field("none", description="learning-rate schedule: constant or cosine over max_epochs")
    feature_noise: float = Field(
        0.0, ge=0.0, description="sd of Gaussian noise added to the standardized features of each training batch"
    )
    speaker_copies: bool = Field(
        False,
        description="train also on a copy of each clip normalized by its speaker's own statistics "
        "(speakers with at least 10 training clips; docs/training-data.md)",
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_from_recipe(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        name = data.get("recipe", DEFAULT_RECIPE)
        values = RECIPES.get(name) if isinstance(name, str) else None
        if values is None:
            return data  # the Literal check names the bad recipe
        return {**values, **data, "recipe": name}


class TrainerConfig(_Section):
    """Passed through to `lightning.Trainer`: multi-device / multi-node is a config change."""

    accelerator: str = "cpu"
    devices: int | str | list[int] = 1
    num_nodes: int = Field(1, ge=1)
    strategy: str = "auto"
    precision: str | int = "32-true"
    deterministic: bool | Literal["warn"] = True
    log_every_n_steps: int = Field(10, ge=1)
    enable_progress_bar: bool = True
    enable_model_summary: bool = False
    gradient_clip_val: float | None = None
    accumulate_grad_batches: int = Field(1, ge=1)
    check_val_every_n_epoch: int = Field(1, ge=1)
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None


class RunConfig(_Section):
    # Lightning's seed_everything takes an unsigned 32-bit seed
    # strict: `--set seed=true` (YAML's boolean) is a typo, not seed 1
    seed: int = Field(0, ge=0, le=2**32 - 1, strict=True, description="fixes the split, initialisation, batches and QAT")
    name: str = Field("run", min_length=1, description="run folder name under out_dir")
    out_dir: Path = Path("runs")
    data: DataConfig = Field(default_factory=DataConfig)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    laq: LaqConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _paper_switch(cls, data: Any) -> Any:
        """`features.preset: paper` alone reproduces the paper: the training recipe follows
        it unless `train.recipe` is given."""
        if not isinstance(data, Mapping):
            return data
        features, train = data.get("features"), data.get("train")
        preset = features.get("preset") if isinstance(features, Mapping) else getattr(features, "preset", None)
        if preset == "paper" and not (isinstance(train, Mapping) and "recipe" in train) and not isinstance(train, BaseModel):
            return {**data, "train": {**(train or {}), "recipe": "paper"}}
        return data

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> RunConfig:
        """A run config stored in a checkpoint. One from before presets and recipes (no
        `features.preset`, no `train.recipe`) is read as the paper's, whatever today's
        defaults are: an old checkpoint keeps the features and recipe it was trained with."""
        data = dict(stored)
        features = dict(data.get("features") or {})
        if "preset" not in features:
            data["features"] = {**features, "preset": "paper"}
            train = dict(data.get("train") or {})
            data["train"] = {"recipe": "paper", **train}
        train = dict(data.get("train") or {})
        if "speaker_copies" not in train:  # stored before the option: trained without copies
            data["train"] = {**train, "speaker_copies": False}
        return cls.model_validate(data)

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if "/" in name or "\\" in name or name in (".", ".."):
            raise ValueError(f"must be a plain folder name, got {name!r}")
        return name

    @field_validator("out_dir")
    @classmethod
    def _expand(cls, path: Path) -> Path:
        return path.expanduser()

    @property
    def run_dir(self) -> Path:
        return self.out_dir / self.name

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML types (paths as strings): what `config.yaml` and checkpoints hold."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# --- loading ---------------------------------------------------------------------------


def parse_override(item: str) -> tuple[str, Any]:
    """`key.sub=value` → ("key.sub", value).

    The value is parsed as YAML (`[256, 64]`, `null`, `1e-3`), except where the target
    field holds text (a string, a path, a choice of names): there a scalar stays the text
    as written, so `--set name=2024` is the name "2024", not the number.
    """
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {item!r}: expected key.sub=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: cannot parse value {raw!r}: {_first_line(exc)}") from None
    if value is not None and not isinstance(value, (str, list, dict)) and _holds_text(key):
        value = raw.strip()
    return key, value


def _holds_text(key: str) -> bool:
    """True when the field at dotted `key` takes only text (str, Path, Literal of strings), or None."""
    model: Any = RunConfig
    annotation: Any = None
    for part in key.split("."):
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return False
        annotation = field.annotation
        model = _section_model(annotation)
    kinds = [a for a in getattr(annotation, "__args__", (annotation,)) if a is not type(None)]
    if get_origin(annotation) is Literal:
        kinds = [annotation]
    return bool(kinds) and all(
        k in (str, Path) or (get_origin(k) is Literal and all(isinstance(v, str) for v in get_args(k))) for k in kinds
    )


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Set dotted keys into a nested dict (copying the path it touches)."""
    out = dict(raw)
    for key, value in overrides.items():
        node = out
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = {}
            elif not isinstance(child, dict):
                raise ConfigError(f"--set {key}: {'.'.join(parts[: i + 1])} is not a section")
            node[part] = child = dict(child)
            node = child
        node[parts[-1]] = value
    return out


def validate_config(raw: Any, source: str = "config", overridden: Iterable[str] | Mapping[str, str] = ()) -> RunConfig:
    """Validate a parsed config; errors name `source` (or the override) and the key.

    `overridden`: the dotted keys given by `--set`, or a mapping of each to the flag that
    gave it (`{"data.data_dir": "--data-dir"}`), which the error then names."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of config sections at the top level, got {type(raw).__name__}")
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        flags = dict(overridden) if isinstance(overridden, Mapping) else {k: f"--set {k}" for k in overridden}
        raise ConfigError(_describe(exc, source, flags)) from None


class DuplicateKeyError(yaml.YAMLError):
    """A key given twice in one mapping: plain YAML keeps the last silently, so a config
    with two `train:` sections would train with half of what it says."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a key repeated within one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: its keys may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base loader names it
                break
            if first is not None:
                raise DuplicateKeyError(f"line {line}: duplicate key {key!r} (first given on line {first})")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """YAML as `yaml.safe_load` reads it, except that a duplicated key is an error."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)


def load_config(
    path: str | os.PathLike[str] | None,
    overrides: Mapping[str, Any] | Sequence[str] = (),
    flags: Mapping[str, str] | None = None,
) -> RunConfig:
    """Read a YAML run config (None = all defaults) and apply overrides.

    `overrides` is either a mapping of dotted keys to values or `key.sub=value` strings
    (as given to `--set`). The run name defaults to the config file's stem.
    """
    raw: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        file = Path(path)
        source = str(file)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{file}: config file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: cannot read config: {_first_line(exc)}") from None
        try:
            loaded = load_yaml(text)
        except DuplicateKeyError as exc:
            raise ConfigError(f"{file}: {exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: invalid YAML: {_first_line(exc)}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{file}: expected a mapping of config sections at the top level")
        raw = dict(loaded or {})
        raw.setdefault("name", file.stem)
    if not isinstance(overrides, Mapping):
        overrides = dict(parse_override(item) for item in overrides)
    raw = apply_overrides(raw, overrides)
    named = {k: f"--set {k}" for k in overrides} | dict(flags or {})
    return validate_config(raw, source, named)


def command_config(
    path: str | os.PathLike[str] | None,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    seed: int | None = None,
    out: str | os.PathLike[str] | None = None,
    sets: Sequence[str] = (),
    resume: bool = False,
) -> RunConfig:
    """The config of a `serlaq fit` command line: the file, then `--set`, then the flags.

    `--out DIR` names the run folder itself. With `--resume` and no `--config`, the run
    folder's saved `config.yaml` is used. With neither, a corpus (`--data-dir DIR`, its
    layout read: `auto`; or `--set data.manifest=CSV`) is trained with every default, the
    run named after it.
    """
    overrides = dict(parse_override(item) for item in sets)
    flags: dict[str, str] = {}
    if path is None and resume and out is not None:
        path = Path(out) / "config.yaml"
    elif path is None:
        folder = data_dir if data_dir is not None else overrides.get("data.data_dir")
        corpus = folder if folder is not None else overrides.get("data.manifest")
        if corpus is None:
            raise ConfigError(
                "--config or --data-dir: give a run config (configs/*.yaml) or a corpus folder to train with the "
                "defaults (or use --resume --out RUN_DIR to continue a saved run)"
            )
        overrides.setdefault("name", corpus_path_name(str(corpus), manifest=folder is None) or "run")
    if data_dir is not None:
        overrides["data.data_dir"] = str(data_dir)
        flags["data.data_dir"] = "--data-dir"
    if seed is not None:
        overrides["seed"] = seed
        flags["seed"] = "--seed"
    if out is not None:
        run_dir = Path(out).expanduser().resolve()
        overrides["out_dir"] = str(run_dir.parent)
        overrides["name"] = run_dir.name
        flags |= {"out_dir": "--out", "name": "--out"}
    return load_config(path, overrides, flags)


def save_config(config: RunConfig, path: str | os.PathLike[str]) -> None:
    """Write the resolved config as YAML, atomically."""
    atomic_write_text(path, config.to_yaml())


def _describe(exc: ValidationError, source: str, overridden: Mapping[str, str]) -> str:
    errors = exc.errors(include_url=False)
    err = errors[0]
    key = _dotted_key(err["loc"])
    # the --set that gave the value: the key itself, a section above it, a key inside it, or
    # the list it indexes (`--set data.split=[0.5,0.5]` fails as data.split[2])
    origin = next(
        (flag for k, flag in overridden.items() if key == k or key.startswith((k + ".", k + "[")) or k.startswith(key + ".")),
        source,
    )
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = err["loc"][:-1]
        allowed = _allowed_keys(parent)
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        what = f"unknown key '{key}'{hint}"
    else:
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        got = err.get("input")
        shown = "" if kind in ("missing", "value_error") or isinstance(got, (dict, list)) else f" (got {got!r})"
        what = f"{message}{shown}" if origin == f"--set {key}" else f"{key or '<top>'}: {message}{shown}"
    more = len({_dotted_key(e["loc"]) for e in errors} - {key})
    suffix = f" [and {more} more error{'s' if more > 1 else ''}]" if more else ""
    return f"{origin}: {what}{suffix}"


def _dotted_key(loc: Sequence[Any]) -> str:
    """The user's dotted key of an error location, without pydantic's union-branch tags."""
    parts: list[str] = []
    model: Any = RunConfig
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1]}[{part}]"] if parts else [f"[{part}]"]
        elif fields is not None and part in fields:
            parts.append(part)
            model = _section_model(fields[part].annotation)
        elif fields is not None:
            parts.append(str(part))  # an unknown key: name it as written
            model = None
    return ".".join(parts)


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The config section an annotation holds, looking through Optional and list[...] (data.corpora)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for a in getattr(annotation, "__args__", ()) if (m := _section_model(a)) is not None), None)


def _allowed_keys(loc: Sequence[Any]) -> list[str]:
    model: Any = RunConfig
    for part in loc:
        if isinstance(part, int):  # an item of a list of sections
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = _section_model(field.annotation)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


def _first_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
