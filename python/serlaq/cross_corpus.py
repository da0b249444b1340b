"""Cross-corpus scores of a compressed model on corpora it never heard (issue 18's protocol).
Beside `evaluation`, in its layer: a `.laq` scored on labelled corpora, no torch, so
`serlaq report --protocol cross` runs in a runtime-only install.

`serlaq report RUN --protocol cross --test-data DIR [--test-data DIR2 ...]` and
`benchmarks/bench_cross_corpus.py --protocol corpus` share `cross_scores`: the model
answers among the labels the model and the corpus share (its probabilities renormalised
over them), and every clip with such a label is scored. Per corpus, zero-shot (the `.laq`
as trained) and adapted (`LaqModel.adapt` on that corpus's own audio, labels unused, as
`serlaq adapt` does), each with UAR, accuracy, the share of the most predicted label, the
mean confidence and the expected calibration error (ECE: `metrics.expected_calibration_error`,
the one definition `serlaq evaluate`, `metrics.json` and `laq.json` use).
Labels are only used to score, never to choose or adapt anything.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from serlaq.errors import ConfigError, DataError, SerlaqError
from serlaq.provenance import heard_corpus_warning


def cross_scores(model: Any, clips: list[Any], labels: list[str]) -> dict[str, float]:
    """UAR, accuracy, top-label share, mean confidence and ECE of `model` on `clips`, answering among `labels`."""
    results = model.predict_files([c.path for c in clips])
    proba, y, failed = [], [], []
    for clip, res in zip(clips, results):
        if not getattr(res, "ok", False):  # a runtime FileFailure (this layer does not import the runtime)
            failed.append(str(clip.path))
            continue
        p = np.array([res.probabilities[lab] for lab in labels], dtype=np.float64)
        proba.append(p / max(p.sum(), 1e-12))
        y.append(labels.index(clip.label))
    if not y:
        raise DataError(f"none of the {len(clips)} clips could be scored (first: {failed[0] if failed else '-'})")
    return {**proba_scores(np.array(proba), np.array(y), labels), "failed": len(failed)}


def proba_scores(proba: np.ndarray, y: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """The scores of `cross_scores` from class probabilities (n, len(labels)) and class ids (n,)."""
    from serlaq import metrics

    pred, conf = proba.argmax(1), proba.max(1)
    sc = metrics.label_scores(y, pred, labels)
    counts = np.bincount(pred, minlength=len(labels))
    return {
        "clips": int(len(y)),
        "failed": 0,
        "uar": float(sc.uar),
        "accuracy": float(sc.accuracy),
        "top_label": labels[int(counts.argmax())],
        "top_share": float(counts.max() / len(pred)),
        "mean_confidence": float(conf.mean()),
        "ece": metrics.expected_calibration_error(conf, pred == y),
    }


@dataclass
class CorpusClips:
    """A corpus as the cross protocol reads it: its clips with `--map` applied, the clips each
    mapped label moved, the audio to adapt on, and the files that could not be used."""

    clips: list[Any]
    moved: dict[str, int]
    audio: list[Path]  # a folder (searched as `serlaq adapt` searches it), or nothing for a manifest
    problems: list[tuple[Path, str]]
    layout: str = ""  # the layout read ("auto" resolved)
    manifest: Path | None = None  # a manifest's every listed file is adapted on, its labels unused


def mapped_clips(
    data: str | os.PathLike[str], dataset: str = "auto", label_map: Mapping[str, str | None] | None = None
) -> CorpusClips:
    """The labelled clips of the corpus at `data` (a folder, or a CSV manifest `path,label[,speaker]`),
    with `label_map` applied as `serlaq evaluate --map` applies it (`{"calm": "neutral"}` renames,
    `{"boredom": None}` leaves those clips out; a key no label table knows, MSP-Podcast's `a`,
    names a label as the corpus writes it)."""
    from serlaq.data.corpora import scan
    from serlaq.data.multi import map_and_count

    mapping = dict(label_map or {})
    found = scan(Path(data), dataset=dataset, raw_labels=list(mapping))
    if not found.clips:
        first = f" (first of {len(found.problems)} left out: {found.problems[0][0]}: {found.problems[0][1]})" if found.problems else ""
        raise DataError(f"{data}: no usable labelled clips ({found.layout} layout){first}")
    clips, moved = map_and_count(found.clips, mapping, where=str(data))
    # the audio `serlaq adapt DATA` reads: every file of the folder or manifest, whatever its label
    is_dir = Path(data).is_dir()
    return CorpusClips(clips, moved, [Path(data)] if is_dir else [], list(found.problems), found.layout, None if is_dir else Path(data))


def shared_labels(model: Any, clips: list[Any], data_dir: str | os.PathLike[str]) -> tuple[list[Any], list[str]]:
    """`clips` whose label the model knows, and those shared labels (model order)."""
    present = {c.label for c in clips}
    labels = [lab for lab in model.labels if lab in present]
    if len(labels) < 2:
        raise DataError(
            f"{data_dir}: shares {len(labels)} label(s) with the model (corpus: {sorted(present)}; model: {list(model.labels)}): "
            "at least 2 are needed to score (--map CORPUS_LABEL=MODEL_LABEL scores a corpus label as one of the model's)"
        )
    return [c for c in clips if c.label in labels], labels


def shared_clips(model: Any, data_dir: str | os.PathLike[str], dataset: str = "auto") -> tuple[list[Any], list[str]]:
    """The clips of the corpus at `data_dir` whose label the model knows, and those shared labels (model order)."""
    return shared_labels(model, mapped_clips(data_dir, dataset).clips, data_dir)


def corpus_rows(
    model: Any,
    data_dir: str | os.PathLike[str],
    dataset: str = "auto",
    adapt: bool = True,
    label_map: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """Zero-shot (and adapted) scores of `model` on one corpus; with `label_map`, the mapping and the
    clips it moved per corpus label (`label_map`, `mapped`)."""
    corpus = mapped_clips(data_dir, dataset, label_map)
    clips, labels = shared_labels(model, corpus.clips, data_dir)
    row: dict[str, Any] = {"data_dir": str(data_dir), "labels": labels, "zero-shot": cross_scores(model, clips, labels)}
    excluded = Counter(c.label for c in corpus.clips if c.label not in labels)
    if excluded:  # labels the model lacks: left out of the scores, as `serlaq evaluate` counts them
        row["excluded"] = dict(sorted(excluded.items()))
    unoffered = [lab for lab in model.labels if lab not in labels]
    if unoffered:  # model labels the corpus has no clip of: not offered as answers
        row["unscored_model_labels"] = unoffered
    heard = heard_corpus_warning(getattr(model, "metadata", {}), corpus.layout)
    if heard:  # not a cross-corpus figure at all
        row["warning"] = heard.removeprefix("warning: ")
    if label_map:
        row["label_map"], row["mapped"] = dict(label_map), corpus.moved
    if corpus.problems:  # unknown labels, odd names, missing files: left out, counted, the first named
        path, why = corpus.problems[0]
        row["unusable"] = {"files": len(corpus.problems), "first": f"{path}: {why}"}
    if adapt:
        try:
            adapted = model.adapt(corpus.audio, manifest=corpus.manifest, source=str(data_dir))
        except SerlaqError as exc:  # e.g. too little audio to adapt on: the zero-shot row still stands
            row["not_adapted"] = str(exc)
        else:
            row["adapted"] = cross_scores(adapted, clips, labels)
            row["adapted_on"] = adapted.adaptation.clips
    return row


def find_laq(run: Path) -> Path:
    """The compressed model of a run folder, by the rule every model argument follows
    (`model.laq`, which fit's `laq:` stage writes, else the one `.laq` file)."""
    from serlaq import _native

    try:
        return Path(_native.model_file(run))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def cross_report(
    laq: Any,
    test_data: list[Path],
    dataset: str = "auto",
    adapt: bool | None = None,
    label_map: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """Score a loaded `LaqModel` (a run's `.laq`, see `find_laq`) on every corpus of `test_data`;
    `adapt` None = when the model has `adapt`; `label_map` applies to every corpus (`corpus_rows`)."""
    if not test_data:
        raise ConfigError("--protocol cross: give at least one --test-data DIR or CSV (a corpus the model never heard)")
    for d in test_data:
        if not (Path(d).is_dir() or (Path(d).is_file() and Path(d).suffix.lower() == ".csv")):
            raise ConfigError(f"--test-data {d}: not a corpus folder or a .csv manifest")
    adapt = hasattr(laq, "adapt") if adapt is None else adapt
    rows = [corpus_rows(laq, d, dataset, adapt, label_map) for d in test_data]
    # the stored spec's preset (a file without one has the paper's features): no pydantic needed
    return {"protocol": "cross", "model": str(laq.path), "features": laq.feature_spec.get("preset", "paper"), "rows": rows}


def render_cross_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: one row per (corpus, zero-shot/adapted), then the clips `--map` moved."""
    from serlaq.data.multi import mapping_summary

    lines = [
        f"# Cross-corpus report: {report['model']} (features {report['features']})",
        "",
        "Scored on the labels each corpus shares with the model; adapted = `serlaq adapt` on that corpus's own audio (labels unused).",
        "",
        "| corpus | mode | clips | UAR % | accuracy % | most predicted label | mean confidence | ECE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        for mode in ("zero-shot", "adapted"):
            if mode not in row:
                continue
            s = row[mode]
            lines.append(
                f"| {row['data_dir']} | {mode} | {s['clips']} | {100 * s['uar']:.1f} | {100 * s['accuracy']:.1f} | "
                f"{s['top_label']} {100 * s['top_share']:.0f} % | {s['mean_confidence']:.2f} | {s['ece']:.3f} |"
            )
    heard = [f"- {row['data_dir']}: {row['warning']}" for row in report["rows"] if "warning" in row]
    if heard:
        lines += ["", "Not a cross-corpus test:", "", *heard]
    scored = [
        f"- {row['data_dir']}: scored {', '.join(row['labels'])}" + _left_out(row) for row in report["rows"] if "labels" in row
    ]
    if scored:
        lines += ["", "Labels scored:", "", *scored]
    notes = [f"- {row['data_dir']}: {mapping_summary(row['label_map'], row['mapped'])}" for row in report["rows"] if row.get("mapped")]
    if notes:
        lines += ["", "Labels scored as the model's (`--map`):", "", *notes]
    unusable = [
        f"- {row['data_dir']}: {row['unusable']['files']} files (first: {row['unusable']['first']})" for row in report["rows"] if "unusable" in row
    ]
    if unusable:
        lines += ["", "Left out (unknown label, unreadable name or missing file):", "", *unusable]
    skipped = [f"- {row['data_dir']}: {row['not_adapted']}" for row in report["rows"] if "not_adapted" in row]
    if skipped:
        lines += ["", "Not adapted (zero-shot only):", "", *skipped]
    return "\n".join(lines) + "\n"


def _left_out(row: dict[str, Any]) -> str:
    """`; left out: excited 9, frustrated 9 (the model has no such label); not offered: boredom`."""
    parts = []
    if row.get("excluded"):
        parts.append("left out: " + ", ".join(f"{k} {v}" for k, v in row["excluded"].items()) + " (labels the model lacks)")
    if row.get("unscored_model_labels"):
        parts.append("not offered as answers: " + ", ".join(row["unscored_model_labels"]) + " (no clip of the corpus has them)")
    return "; " + "; ".join(parts) if parts else ""
