"""Several corpora as one labelled clip list (`data.corpora`), and the label mapping.

Each corpus is discovered with its own layout (`serlaq.data.corpora.discover`), so its
labels are already canonical (`LABELS`: EMODB's letters, SAVEE's codes, TESS's folder
names with `ps`/`pleasant_surprise` -> `surprise`, RAVDESS's numbers, CREMA-D's and
EMOVO's codes). A corpus's `labels` mapping then
renames (`{calm: neutral}`) or drops (`{boredom: null}`) labels, and `data.labels`
keeps only the listed ones. In a multi-corpus run every speaker id is prefixed with the
corpus name (`emodb-03`, `tess-OAF`): two corpora never share a speaker, so a
speaker-independent split is disjoint across all of them.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from serlaq.data.corpora import Clip, discover
from serlaq.errors import DataError

if TYPE_CHECKING:
    from serlaq.config import CorpusConfig

log = logging.getLogger("serlaq.data")


@dataclass
class Gathered:
    """The clips of every corpus in config order (each sorted by path) and their corpus names."""

    clips: list[Clip]
    corpus: list[str]  # corpus name of clips[i]
    sources: list[dict[str, Any]]  # per corpus: name, dataset, source
    dropped: int = 0  # clips left out by a label mapping (`labels`, `data.labels`)
    repeated: int = 0  # clips left out as a file another corpus of the list names already


def gather(
    corpora: Sequence[CorpusConfig], keep: Sequence[str] | None = None, on_error: str = "fail"
) -> Gathered:
    """Discover every corpus, map its labels, prefix its speakers; `DataError` names the corpus at fault.

    A file two corpora of the list both hold (the same resolved path) would be trained and
    tested on at once: with `on_error="fail"` it is an error naming both corpora, with
    `"skip"` the first corpus keeps it and one warning counts the others."""
    out = Gathered([], [], [])
    owner: dict[Path, str] = {}  # resolved path -> the corpus that listed it first
    repeats: list[tuple[Path, str, str]] = []
    for spec in corpora:
        name = spec.corpus_name
        root = spec.data_dir if spec.data_dir is not None else spec.manifest.parent  # type: ignore[union-attr]
        if spec.dataset != "csv" and spec.data_dir is not None and not spec.data_dir.exists():
            raise DataError(f"data.corpora ({name}): {spec.data_dir}: corpus directory not found")
        try:
            found = discover(root, spec.dataset, manifest=spec.manifest, on_error=on_error)
        except DataError as exc:
            raise DataError(f"data.corpora ({name}): {exc}") from None
        mapped = map_labels(found, spec.labels, keep, where=f"data.corpora ({name})")
        out.dropped += len(found) - len(mapped)
        mapped = _first_owner(mapped, name, owner, repeats, on_error)
        out.clips.extend(replace(c, speaker=f"{name}-{c.speaker}") for c in mapped)
        out.corpus.extend([name] * len(mapped))
        out.sources.append({"name": name, "dataset": spec.dataset, "source": str(spec.manifest or spec.data_dir)})
    if repeats:
        path, first, second = repeats[0]
        log.warning(
            "data.corpora: left out %d clips that an earlier corpus of the list holds too; first: %s (in %s and %s)",
            len(repeats), path, first, second,
        )
        out.repeated = len(repeats)
    return out


def _first_owner(
    clips: list[Clip], name: str, owner: dict[Path, str], repeats: list[tuple[Path, str, str]], on_error: str
) -> list[Clip]:
    """`clips` without the files an earlier corpus holds (recorded in `repeats`); with
    `on_error="fail"` the first such file is a `DataError`."""
    kept = []
    for clip in clips:
        key = clip.path.resolve()
        first = owner.setdefault(key, name)
        if first == name:
            kept.append(clip)
            continue
        if on_error == "fail":
            raise DataError(
                f"data.corpora ({name}): {clip.path}: the same file is in corpus {first!r} too; a clip in two "
                "corpora would land in two splits (remove one, or on_error=skip keeps the first)"
            )
        repeats.append((clip.path, first, name))
    return kept


def map_labels(
    clips: Sequence[Clip],
    mapping: Mapping[str, str | None],
    keep: Sequence[str] | None,
    where: str,
    keys: str = "data.labels / labels",
    on_drop: Callable[[str], None] | None = None,
) -> list[Clip]:
    """Rename / drop labels per `mapping`, then keep only `keep` (None = all). Drops are one
    line to `on_drop` (default: a logged warning, shown like the other notes of `fit`, since
    a left-out class changes what the model learns). `keys` names the settings an empty
    result blames."""
    out, dropped = [], Counter()
    for clip in clips:
        label = mapping.get(clip.label, clip.label)
        if label is None or (keep is not None and label not in keep):
            dropped[clip.label] += 1
            continue
        out.append(clip if label == clip.label else replace(clip, label=label))
    if dropped:
        detail = ", ".join(f"{k} {v}" for k, v in sorted(dropped.items()))
        (on_drop or log.warning)(f"{where}: left out {sum(dropped.values())} clips by label ({detail})")
    if not out:
        raise DataError(f"{where}: no clips left after the label mapping ({keys})")
    return out


def map_and_count(
    clips: Sequence[Clip], mapping: Mapping[str, str | None], where: str, keys: str = "--map"
) -> tuple[list[Clip], dict[str, int]]:
    """`map_labels` over every label (nothing kept out besides the drops), and the clips each
    mapped corpus label moved: what `serlaq evaluate --map` and `serlaq report --protocol cross
    --map` score and report."""
    if not mapping:
        return list(clips), {}
    moved = Counter(c.label for c in clips if c.label in mapping)
    # the caller reports the moves itself (`mapping_summary`): the drop line stays in the log
    return map_labels(clips, mapping, None, where=where, keys=keys, on_drop=log.info), dict(sorted(moved.items()))


def mapping_summary(mapping: Mapping[str, str | None], moved: Mapping[str, int]) -> str:
    """`12 clips by --map: boredom -> left out (4), calm -> neutral (8)` (empty when nothing moved)."""
    if not moved:
        return ""
    parts = ", ".join(f"{src} -> {mapping[src] or 'left out'} ({n})" for src, n in sorted(moved.items()))
    return f"{sum(moved.values())} clips by --map: {parts}"


def corpus_records(clips: Sequence[Clip], corpus: Sequence[str], sources: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per corpus: name, dataset, source, clips, speakers, labels {label: count} (of the clips used)."""
    records = []
    for src in sources:
        mine = [c for c, name in zip(clips, corpus, strict=True) if name == src["name"]]
        records.append(
            {
                **src,
                "clips": len(mine),
                "speakers": len({c.speaker for c in mine}),
                "labels": dict(sorted(Counter(c.label for c in mine).items())),
            }
        )
    return records


def balance_weights(groups: Sequence[Any]) -> list[float]:
    """Sampling weight per item so every distinct group gets the same total weight (sums to len)."""
    counts = Counter(groups)
    n, k = len(groups), len(counts)
    return [n / (k * counts[g]) for g in groups]
