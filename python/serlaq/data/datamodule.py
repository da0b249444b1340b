"""`SERDataModule`: a run config → clips → cached features → seeded splits → loaders.

The datasets hold RAW feature vectors: standardization lives in the model (its
`feature_mean`/`feature_std` buffers, fitted here on the training split only), so the
checkpoint and the `.laq` file carry it and inference needs nothing else.

With `data.corpora` the clips of several corpora are one list (`serlaq.data.multi`), with
corpus-prefixed speaker ids and splits stratified by (corpus, label); `data.balance` swaps
the epoch shuffle for seeded weighted draws. With `data.augment` the training loader also
draws from augmented copies of the training clips (`serlaq.data.augment`); `split_tensors`
and the standardization stay the clean splits.

The split is fingerprinted (`split_fingerprint`: a digest of every clip's path relative to its
corpus, label, speaker and split) into every checkpoint, through the datamodule's Lightning
state. `from_checkpoint` (compress, report) and `fit --resume` rebuild the split from the
corpus as it is now and refuse to go on when the fingerprint differs: a corpus that gained
clips would otherwise put training clips into the "test" split without a word.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Sampler, TensorDataset

from serlaq.config import RunConfig
from serlaq.data.cache import extract_augmented, extract_features
from serlaq.data.corpora import Clip, discover, discover_found
from serlaq.data.multi import balance_weights, corpus_records, gather, map_labels
from serlaq.data.splits import split_indices
from serlaq.errors import ConfigError, DataError

log = logging.getLogger("serlaq.data")

# A speaker needs this many training clips for its statistics to be worth a copy.
SPEAKER_COPY_MIN_CLIPS = 10

Split = Literal["train", "val", "test"]
SPLITS: tuple[Split, ...] = ("train", "val", "test")

#: The key of the split fingerprint in the datamodule's checkpoint state (Lightning saves
#: `state_dict()` under the class name in every checkpoint it writes, model.ckpt included).
FINGERPRINT = "split_fingerprint"


class EpochShuffleSampler(Sampler[int]):
    """A permutation per epoch drawn from (seed, epoch) alone.

    Lightning calls `set_epoch` before each epoch, so the order of epoch k is the same in
    an uninterrupted run and in one resumed from a checkpoint, and independent of any
    other use of the global RNG.
    """

    def __init__(self, size: int, seed: int, draws: int | None = None) -> None:
        self.size = size
        self.seed = seed
        self.epoch = 0
        self.draws = size if draws is None else min(draws, size)  # rows per epoch (the first of the permutation)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator)[: self.draws].tolist())

    def __len__(self) -> int:
        return self.draws


class BalancedEpochSampler(EpochShuffleSampler):
    """`draws` (default: as many as there are weights) draws with replacement, in proportion
    to `weights`, from (seed, epoch) alone."""

    def __init__(self, weights: Sequence[float], seed: int, draws: int | None = None) -> None:
        super().__init__(len(weights), seed, draws)
        self.weights = torch.tensor(list(weights), dtype=torch.float64)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.multinomial(self.weights, self.draws, replacement=True, generator=generator).tolist())


class SERDataModule(L.LightningDataModule):
    """Everything data-side of a run, built from its `RunConfig`.

    After `setup()`: `labels` (sorted class names; index = class id), `feature_dim`,
    `feature_mean` / `feature_std` (train split, float32), `split_sizes`, `summary`,
    `split_tensors(name)`, `split_clips(name)` and the three dataloaders.
    """

    def __init__(self, config: RunConfig, splits: Mapping[str, Sequence[int]] | None = None) -> None:
        """`splits` gives explicit train/val/test positions in the corpus's sorted clip list
        (e.g. for cross-validation); by default they come from `config.seed` and `config.data`."""
        super().__init__()
        self.config = config
        self._explicit = {name: [int(i) for i in splits[name]] for name in SPLITS} if splits is not None else None
        self._clips: list[Clip] | None = None
        self._clip_corpus: list[str] = []  # corpus name of self._clips[i]
        self._found_corpus: list[str] = []  # corpus name of each discovered clip
        self._sources: list[dict[str, Any]] = []  # per corpus: name, dataset, source
        self._features: np.ndarray | None = None
        self._corpus: dict[str, Any] = {}
        self._roots: dict[str, Path] = {}  # corpus name -> the folder its clip paths are relative to
        self._fingerprint: dict[str, Any] | None = None
        self._ready = False

    @classmethod
    def from_checkpoint(
        cls, checkpoint: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None
    ) -> SERDataModule:
        """The datamodule a checkpoint was trained with (same data, split and statistics),
        its split checked against the checkpoint's fingerprint (`DataError` when the corpus
        changed). `data_dir` replaces the corpus folder the checkpoint names (a moved corpus)."""
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        run_config = (state.get("hyper_parameters") or {}).get("run_config")
        if data_dir is not None:
            run_config = with_data_dir(run_config, data_dir, checkpoint)
        datamodule = cls.from_run_config(run_config)
        datamodule.check_checkpoint_state(state.get(cls.__qualname__), where=str(checkpoint))
        return datamodule

    @classmethod
    def from_model(cls, model: Any) -> SERDataModule:
        """The datamodule of a trained model (its `hparams` carry the run config)."""
        return cls.from_run_config(model.hparams.get("run_config"))

    @classmethod
    def from_run_config(cls, run_config: Mapping[str, Any] | None) -> SERDataModule:
        if not run_config:
            raise DataError("checkpoint: holds no run config; cannot rebuild its data")
        datamodule = cls(RunConfig.from_stored(run_config))
        datamodule.setup()
        return datamodule

    # --- Lightning hooks ---------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        # saved in every checkpoint: what a later rebuild of the split is checked against
        return {FINGERPRINT: self.split_fingerprint()} if self._ready else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # `fit --resume`: Lightning hands back last.ckpt's state once the split is built (a
        # checkpoint from before the fingerprint has no state, and this is not called)
        self.check_checkpoint_state(state_dict, where=str(self.config.run_dir / "last.ckpt"))

    def prepare_data(self) -> None:
        # Once per node: generate the synthetic corpus and fill the feature cache. Other
        # processes then find everything cached in `setup`.
        self._load_features()

    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        clips, features = self._load_features()
        self._build(clips, features)
        self._ready = True

    def train_dataloader(self) -> DataLoader:
        dataset = self._train_rows
        balance = self.config.data.balance
        # speaker copies double the rows, not the steps: an epoch draws as many rows as the
        # clean split has (what the copies were measured with: the same number of updates)
        draws = len(self._indices["train"]) if self.config.train.speaker_copies else None
        if balance == "none":
            sampler: EpochShuffleSampler = EpochShuffleSampler(len(dataset), self.config.seed, draws)
        else:
            sampler = BalancedEpochSampler(balance_weights(self.train_groups(balance)), self.config.seed, draws)
        return DataLoader(dataset, batch_size=self.config.train.batch_size, sampler=sampler, num_workers=0)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    # --- public accessors -------------------------------------------------------------

    @property
    def feature_dim(self) -> int:
        return self.config.features.dim

    def split_tensors(self, name: Split) -> tuple[Tensor, Tensor]:
        """(X_raw float32 (n, dim), y int64 (n,)) of one split, unstandardized."""
        self._require_setup()
        x, y = self._datasets[_check_split(name)].tensors
        return x, y

    def split_clips(self, name: Split) -> list[Clip]:
        """The clips of one split, in the order of `split_tensors(name)`."""
        self._require_setup()
        assert self._clips is not None
        return [self._clips[i] for i in self._indices[_check_split(name)]]

    def split_indices(self, name: Split) -> list[int]:
        """Positions of one split's clips in the corpus (sorted-by-path) clip list."""
        self._require_setup()
        return list(self._indices[_check_split(name)])

    def split_corpora(self, name: Split) -> list[str]:
        """The corpus name of each clip of one split (one name for a single-corpus run)."""
        self._require_setup()
        return [self._clip_corpus[i] for i in self._indices[_check_split(name)]]

    def train_groups(self, balance: str) -> list[Any]:
        """The group of each training row that `balance` equalizes: class, corpus or both."""
        self._require_setup()
        y = self._train_rows.tensors[1].tolist()
        corpus = self.split_corpora("train") * (len(y) // max(1, len(self._indices["train"])))
        if balance == "class":
            return y
        if balance == "corpus":
            return corpus
        if balance == "corpus_class":
            return list(zip(corpus, y, strict=True))
        raise ValueError(f"data.balance: expected one of none, class, corpus, corpus_class, got {balance!r}")

    @property
    def split_sizes(self) -> dict[str, int]:
        self._require_setup()
        return {name: len(self._indices[name]) for name in SPLITS}

    @property
    def summary(self) -> dict[str, Any]:
        """Where the data came from and how each split is made up (for metrics.json)."""
        self._require_setup()
        per_split = {
            name: dict(sorted(Counter(self.labels[int(i)] for i in self._datasets[name].tensors[1]).items()))
            for name in SPLITS
        }
        return {**self._corpus, "class_counts": per_split}

    # --- the split's fingerprint ----------------------------------------------------------

    def split_fingerprint(self) -> dict[str, Any]:
        """sha256 over the sorted (path relative to its corpus, label, speaker, split) rows,
        plus a short key per clip and split, so a mismatch can be counted (added, removed,
        moved). Relative paths: a corpus moved elsewhere whole keeps its fingerprint."""
        self._require_setup()
        if self._fingerprint is None:  # the split is fixed once set up; every checkpoint asks
            self._fingerprint = self._compute_fingerprint()
        return self._fingerprint

    def _compute_fingerprint(self) -> dict[str, Any]:
        rows = sorted(self._fingerprint_rows())
        digest = hashlib.sha256("\n".join("\t".join(row) for row in rows).encode()).hexdigest()
        keys: dict[str, list[str]] = {name: [] for name in SPLITS}
        for *clip, split in rows:
            keys[split].append(_clip_key(clip))
        return {"version": 1, "sha256": digest, "clips": len(rows), "splits": {k: sorted(v) for k, v in keys.items()}}

    def check_fingerprint(self, stored: Mapping[str, Any], where: str) -> None:
        """`DataError` (one line, with the counts) when the split rebuilt now is not `stored`."""
        current = self.split_fingerprint()
        if stored.get("sha256") == current["sha256"]:
            return
        added, removed, moved = _fingerprint_diff(stored.get("splits") or {}, current["splits"])
        raise DataError(
            f"{where}: the corpus at {self._corpus.get('source')} changed since the checkpoint was trained: "
            f"{added} clips added, {removed} removed, {moved} moved between splits; the split would differ from "
            "the one it was trained and tested on, and its test clips would include training clips "
            "(restore the corpus as it was, or train again with serlaq fit)"
        )

    def check_checkpoint_state(self, state: Mapping[str, Any] | None, where: str) -> None:
        """Check against a checkpoint's datamodule state; one that has none (saved before the
        fingerprint existed) is used unchecked, with one warning."""
        stored = (state or {}).get(FINGERPRINT)
        if stored is None:
            log.warning(
                "%s: the checkpoint records no split fingerprint (saved by an older serlaq); its split is rebuilt "
                "from the corpus as it is now, unchecked: clips added since training would change it",
                where,
            )
            return
        self.check_fingerprint(stored, where)

    def _fingerprint_rows(self) -> list[tuple[str, str, str, str]]:
        assert self._clips is not None
        split_of = {i: name for name in SPLITS for i in self._indices[name]}
        multi = self.config.data.corpora is not None
        rows = []
        for i, clip in enumerate(self._clips):
            if i not in split_of:  # explicit splits may leave clips out
                continue
            corpus = self._clip_corpus[i]
            rel = _relative(clip.path, self._roots.get(corpus))
            rows.append((f"{corpus}/{rel}" if multi else rel, clip.label, clip.speaker, split_of[i]))
        return rows

    # --- building -----------------------------------------------------------------------

    def _load_features(self) -> tuple[list[Clip], np.ndarray]:
        if self._features is None:
            data = self.config.data
            found = self._discover_clips()
            extracted = extract_features(
                found,
                self.config.features,
                data.cache_dir,
                workers=data.workers,
                on_error=data.on_error,
                progress=self.config.trainer.enable_progress_bar and _is_main_process(),
            )
            self._clips, self._features = list(extracted.clips), np.asarray(extracted.X, dtype=np.float32)
            corpus_of = dict(zip(found, self._found_corpus, strict=True))
            self._clip_corpus = [corpus_of[clip] for clip in self._clips]
            self._corpus["corpora"] = corpus_records(self._clips, self._clip_corpus, self._sources)
            self._corpus["clips_found"] = len(found)
            self._corpus["clips_used"] = len(extracted.clips)
            self._corpus["clips_skipped"] = len(extracted.skipped)  # unusable audio, with on_error=skip
            self._corpus.setdefault("clips_dropped_by_label", 0)
        assert self._clips is not None
        return self._clips, self._features

    def _discover_clips(self) -> list[Clip]:
        """Every clip of the run's corpus (or corpora); sets `_found_corpus` and `_sources`."""
        data = self.config.data
        if data.corpora is not None:
            gathered = gather(data.corpora, data.labels, on_error=data.on_error)
            self._found_corpus, self._sources = gathered.corpus, gathered.sources
            self._roots = {spec.corpus_name: _corpus_root(spec.data_dir, spec.manifest) for spec in data.corpora}
            self._corpus["clips_dropped_by_label"] = gathered.dropped
            self._corpus.update(source=", ".join(s["source"] for s in gathered.sources), layout="multi")
            return gathered.clips
        if data.dataset == "synthetic":
            root = self._synthetic_corpus()
            self._roots = {data.corpus_name: root}
            self._corpus.update(source=str(root), layout="synthetic")
            clips = discover(root, "folder", on_error=data.on_error)
        else:
            root = data.data_dir if data.data_dir is not None else data.manifest.parent  # type: ignore[union-attr]
            if data.dataset != "csv" and not root.exists():
                raise DataError(f"{root}: corpus directory not found (set data.data_dir or pass --data-dir DIR)")
            found = discover_found(root, data.dataset, manifest=data.manifest, on_error=data.on_error)
            # "auto" is recorded as the layout it read, so `evaluate` knows the corpus again
            self._corpus.update(source=str(root), layout=found.layout)
            self._roots = {data.corpus_name: _corpus_root(data.data_dir, data.manifest)}
            clips = found.clips
        if data.labels is not None:
            kept = map_labels(clips, {}, data.labels, where=str(self._corpus["source"]))
            self._corpus["clips_dropped_by_label"] = len(clips) - len(kept)
            clips = kept
        self._found_corpus = [data.corpus_name] * len(clips)
        layout = self._corpus["layout"]
        self._sources = [{"name": data.corpus_name, "dataset": layout, "source": self._corpus["source"]}]
        return clips

    def _synthetic_corpus(self) -> Path:
        from serlaq.data.synthetic import generate_corpus

        params = self.config.data.synthetic.model_dump(mode="json")
        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
        return generate_corpus(self.config.data.cache_dir / "synthetic" / digest, **params)

    def _build(self, clips: list[Clip], features: np.ndarray) -> None:
        data = self.config.data
        self.labels = sorted({clip.label for clip in clips})
        if len(self.labels) < 2:
            raise DataError(f"{self._corpus.get('source')}: need at least 2 classes, found {self.labels}")
        class_of = {label: i for i, label in enumerate(self.labels)}
        y = torch.tensor([class_of[clip.label] for clip in clips], dtype=torch.int64)
        x = torch.from_numpy(features)
        if self._explicit is not None:
            self._indices = _checked_partition(self._explicit, len(clips))
        else:
            multi = self.config.data.corpora is not None
            train, val, test = split_indices(
                # several corpora: stratify by (corpus, label), so each corpus is in every split in proportion
                [
                    f"{c}|{clip.label}" if multi and not data.speaker_independent else clip.label
                    for c, clip in zip(self._clip_corpus, clips, strict=True)
                ],
                [clip.speaker for clip in clips],
                seed=self.config.seed,
                fractions=data.split,
                speaker_independent=data.speaker_independent,
            )
            self._indices = {"train": train.tolist(), "val": val.tolist(), "test": test.tolist()}
        self._datasets = {name: TensorDataset(x[idx], y[idx]) for name, idx in self._indices.items()}
        self.feature_mean, self.feature_std = standardization(x[self._indices["train"]])
        self._train_rows = self._with_augmented_copies(clips, x, y)
        if self.config.train.speaker_copies:
            self._train_rows = self._with_speaker_copies(clips, self._train_rows)

    def _with_augmented_copies(self, clips: list[Clip], x: Tensor, y: Tensor) -> TensorDataset:
        """The rows training draws from: the clean training split, then each augmented copy of it in turn."""
        augment = self.config.data.augment
        clean = self._datasets["train"]
        if augment is None:
            return clean
        idx = self._indices["train"]
        copies = extract_augmented(
            [clips[i] for i in idx],
            self.config.features,
            augment,
            self.config.seed if augment.seed is None else augment.seed,
            self.config.data.cache_dir,
            workers=self.config.data.workers,
            progress=self.config.trainer.enable_progress_bar and _is_main_process(),
        )
        self._corpus["augmented_rows"] = int(copies.shape[0] * copies.shape[1])
        x_aug = torch.from_numpy(copies.reshape(-1, copies.shape[-1]))
        return TensorDataset(torch.cat([clean.tensors[0], x_aug]), torch.cat([clean.tensors[1], y[idx].repeat(copies.shape[0])]))

    def _with_speaker_copies(self, clips: list[Clip], rows: TensorDataset) -> TensorDataset:
        """`rows` followed by one copy of the clean training split in which every clip of a
        speaker with at least `SPEAKER_COPY_MIN_CLIPS` training clips is standardized by that
        speaker's own mean and std, then mapped back through the global ones
        (`mean + std * (x - mean_speaker) / std_speaker`): after the model's own
        standardization the copy is the per-speaker z-score. The model learns features
        relative to the speaker as well as absolute ones, and the runtime, which never knows
        the speaker, keeps the global statistics. Speakers are told apart per corpus."""
        idx = self._indices["train"]
        x, y = self._datasets["train"].tensors
        keys = [(self._clip_corpus[i] if self._clip_corpus else "", clips[i].speaker) for i in idx]
        mean, std = self.feature_mean.double(), self.feature_std.double()
        copy = x.double().clone()
        groups: dict[tuple[str, str], list[int]] = {}
        for r, key in enumerate(keys):
            groups.setdefault(key, []).append(r)
        kept = 0
        for _, rows_of in sorted(groups.items()):
            if len(rows_of) < SPEAKER_COPY_MIN_CLIPS:
                continue
            xs = copy[rows_of]
            m, s = xs.mean(dim=0), xs.std(dim=0, unbiased=False)
            s = torch.maximum(s, 1e-3 * std)  # a feature constant for one speaker: no division blow-up
            copy[rows_of] = mean + std * (xs - m) / s
            kept += len(rows_of)
        self._corpus["speaker_copy_rows"] = kept  # the other speakers' rows are copied unchanged
        xr, yr = rows.tensors
        return TensorDataset(torch.cat([xr, copy.float()]), torch.cat([yr, y]))

    def _eval_loader(self, name: Split) -> DataLoader:
        # One batch: the split is small, and the batch size does not change eval results.
        dataset = self._datasets[name]
        return DataLoader(dataset, batch_size=max(1, len(dataset)), shuffle=False, num_workers=0)

    def _require_setup(self) -> None:
        if not self._ready:
            raise RuntimeError("SERDataModule: call setup() first")


def with_data_dir(
    run_config: Mapping[str, Any] | None, data_dir: str | os.PathLike[str], checkpoint: str | os.PathLike[str]
) -> dict[str, Any]:
    """The stored run config with its corpus folder replaced (`--data-dir` of compress/report):
    `data.data_dir`, or for a manifest run the folder the manifest is in (its relative paths
    move with it). The split fingerprint then tells the same corpus moved from another one."""
    if not run_config:
        raise DataError(f"{checkpoint}: holds no run config; cannot rebuild its data")
    if not str(data_dir).strip():
        raise ConfigError("--data-dir: empty; give the corpus folder (an empty path would read the current directory)")
    folder = Path(data_dir).expanduser().resolve()
    data = dict(run_config.get("data") or {})
    if data.get("corpora"):
        raise ConfigError(f"--data-dir: {checkpoint} was trained on several corpora (data.corpora); one folder cannot replace theirs")
    if data.get("dataset") == "synthetic":
        raise ConfigError(f"--data-dir: {checkpoint} was trained on the synthetic corpus, which is generated, not read from a folder")
    if data.get("manifest") and not data.get("data_dir"):
        data["manifest"] = str(folder if folder.suffix.lower() == ".csv" else folder / Path(data["manifest"]).name)
    else:
        data["data_dir"] = str(folder)
    return {**run_config, "data": data}


def _corpus_root(data_dir: Path | None, manifest: Path | None) -> Path:
    """The folder a corpus's clip paths are relative to: its data_dir, else its manifest's folder."""
    return data_dir if data_dir is not None else manifest.parent  # type: ignore[union-attr]


def _relative(path: Path, root: Path | None) -> str:
    """`path` relative to `root` ('/'-separated), or the absolute path when it lies elsewhere
    (a manifest may name files anywhere)."""
    if root is not None:
        for p, r in ((path, root), (path.resolve(), root.resolve())):
            try:
                return p.relative_to(r).as_posix()
            except ValueError:
                continue
    return path.resolve().as_posix()


def _clip_key(row: Sequence[str]) -> str:
    return hashlib.sha256("\t".join(row).encode()).hexdigest()[:16]


def _fingerprint_diff(stored: Mapping[str, Sequence[str]], current: Mapping[str, Sequence[str]]) -> tuple[int, int, int]:
    """(added, removed, moved to another split) between two fingerprints' per-split clip keys."""
    before = {key: split for split, keys in stored.items() for key in keys}
    after = {key: split for split, keys in current.items() for key in keys}
    moved = sum(1 for key, split in after.items() if key in before and before[key] != split)
    return len(after.keys() - before.keys()), len(before.keys() - after.keys()), moved


def standardization(x_train: Tensor) -> tuple[Tensor, Tensor]:
    """Per-feature mean and (population) std of the training split, float32.

    A feature that is constant on the training split gets std 1, so it maps to 0 instead
    of dividing by zero.
    """
    x = x_train.double()
    mean = x.mean(dim=0)
    std = x.std(dim=0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return mean.float(), std.float()


def _checked_partition(splits: dict[str, list[int]], n: int) -> dict[str, list[int]]:
    seen: set[int] = set()
    for name in SPLITS:
        bad = [i for i in splits[name] if not 0 <= i < n or i in seen]
        if bad:
            raise DataError(f"splits.{name}: index {bad[0]} is out of range 0..{n - 1} or in another split")
        seen.update(splits[name])
    if not splits["train"]:
        raise DataError("splits.train: empty")
    return splits


def _is_main_process() -> bool:
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def _check_split(name: str) -> Split:
    if name not in SPLITS:
        raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {name!r}")
    return name  # type: ignore[return-value]
