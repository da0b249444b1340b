"""Evaluating a `.laq` model on a labelled corpus: accuracy, UAR, macro-F1, per-class
table, confusion matrix (JSON + PNG). Needs only the runtime (no torch).

Cross-corpus scoring works on the labels both sides share: clips whose label the model
does not know are excluded and counted per label, and (by default) the model's labels
that the corpus has no clip of are left out of its choices, so a model trained on EMODB's
seven classes is scored on, e.g., the five it shares with another corpus as a five-way
classifier. The report names every label left out and why. Files that cannot be decoded
are reported one per line and left out of the scores. If nothing is left to score, that
is an error.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any


from serlaq.errors import DataError
from serlaq.io import atomic_write_bytes, atomic_write_json
from serlaq.metrics import ClassScores, collapse_warning, confidence_scores, label_scores, top_label_share
from serlaq.provenance import heard_corpus_warning

if TYPE_CHECKING:
    from serlaq.data.corpora import Clip
    from serlaq.runtime import FileFailure, LaqModel


@dataclass
class EvaluationReport:
    model: str
    data_dir: str
    dataset: str
    labels: list[str]  # the labels scored: rows (true) and columns (predicted) of `confusion`
    n_clips: int  # clips scored
    accuracy: float
    uar: float  # unweighted average recall: the mean of the per-class recalls
    macro_f1: float
    per_class: list[ClassScores]
    confusion: list[list[int]]
    excluded: dict[str, int] = field(default_factory=dict)  # corpus label the model lacks -> clips left out
    unscored_model_labels: list[str] = field(default_factory=list)  # model labels with no clip in the corpus
    failures: list[FileFailure] = field(default_factory=list)
    mean_confidence: float = 0.0  # mean top probability (renormalized over the labels scored)
    ece: float = 0.0  # expected calibration error, 15 equal-width bins (serlaq.metrics)
    top_label: str = ""  # the most predicted label
    top_label_share: float = 0.0  # its share of the predictions
    warnings: list[str] = field(default_factory=list)  # the collapse and training-corpus warnings
    layout: str = ""  # the corpus layout read ("auto" resolved: "tess", "folder", "csv", ...)
    # corpus label -> the label it was scored as (None: left out), and the clips each moved
    label_map: dict[str, str | None] = field(default_factory=dict)
    mapped: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["failures"] = [f.to_dict() for f in self.failures]
        return d

    def _layout_text(self) -> str:
        if self.layout and self.layout != self.dataset:
            return f"{self.dataset}: {self.layout}"
        return self.dataset

    def format_text(self) -> str:
        lines = [
            f"model     {self.model}",
            f"data      {self.data_dir} ({self._layout_text()}), {self.n_clips} clips scored",
        ]
        if self.mapped:
            from serlaq.data.multi import mapping_summary

            lines.append(f"mapped    {mapping_summary(self.label_map, self.mapped)}")
        if self.excluded:
            parts = ", ".join(f"{lab} ({n})" for lab, n in sorted(self.excluded.items()))
            lines.append(f"excluded  {sum(self.excluded.values())} clips with labels the model does not know: {parts}")
        if self.unscored_model_labels:
            lines.append(
                f"left out  model labels the corpus has no clip of (not offered as answers): "
                f"{', '.join(self.unscored_model_labels)}"
            )
        if self.failures:
            lines.append(f"unread    {len(self.failures)} files could not be read (named on stderr)")
        lines += [
            f"accuracy  {self.accuracy * 100:.2f}%",
            f"UAR       {self.uar * 100:.2f}% (unweighted average recall)",
            f"macro-F1  {self.macro_f1 * 100:.2f}%",
            f"confidence {self.mean_confidence:.3f} mean, ECE {self.ece:.3f} (15 bins; 0 = honest)",
            f"top label {self.top_label} takes {self.top_label_share * 100:.1f}% of the predictions",
            "",
            f"{'class':<12}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}",
        ]
        for m in self.per_class:
            lines.append(f"{m.label:<12}{m.precision:>10.3f}{m.recall:>10.3f}{m.f1:>10.3f}{m.support:>9d}")
        lines += ["", "confusion (rows: true, columns: predicted)"]
        width = max(7, *(len(lab) + 1 for lab in self.labels))
        lines.append(" " * width + "".join(f"{lab[:width - 1]:>{width}}" for lab in self.labels))
        for lab, row in zip(self.labels, self.confusion):
            lines.append(f"{lab:<{width}}" + "".join(f"{v:>{width}d}" for v in row))
        return "\n".join(lines)


def evaluate_clips(
    model: LaqModel,
    clips: Sequence[Clip],
    workers: int | None = None,
    data_dir: str = "",
    dataset: str = "",
    shared_only: bool = True,
) -> EvaluationReport:
    """Score `model` on labelled clips (see the module docstring for what is left out).

    `shared_only`: the model answers among the labels the corpus has (cross-corpus
    protocol); False keeps all of the model's labels as possible answers.
    """
    from serlaq.runtime import FileFailure, Prediction

    corpus_labels = {c.label for c in clips}
    excluded = Counter(c.label for c in clips if c.label not in model.labels)
    kept = [c for c in clips if c.label in model.labels]
    if not kept:
        raise DataError(
            f"{data_dir or 'corpus'}: none of its {len(clips)} clips has a label the model knows "
            f"(corpus labels: {', '.join(sorted(excluded))}; model labels: {', '.join(model.labels)})"
        )
    unscored = [lab for lab in model.labels if lab not in corpus_labels] if shared_only else []
    labels = [lab for lab in model.labels if lab not in unscored]
    index = {lab: i for i, lab in enumerate(labels)}
    results = model.predict_files([c.path for c in kept], workers=workers)
    y_true, y_pred, probs, failures = [], [], [], []
    for clip, res in zip(kept, results):
        if isinstance(res, Prediction):
            y_true.append(index[clip.label])
            # the most probable of the labels on offer
            y_pred.append(max(range(len(labels)), key=lambda k: (res.probabilities[labels[k]], -k)))
            offered = [res.probabilities[lab] for lab in labels]
            total = sum(offered)
            probs.append([p / total if total > 0 else 1 / len(labels) for p in offered])
        elif isinstance(res, FileFailure):
            failures.append(res)
    if not y_true:
        raise DataError(f"{data_dir or 'corpus'}: none of its {len(kept)} audio files could be read")
    sc = label_scores(y_true, y_pred, labels)
    conf = confidence_scores(probs, y_true)
    top, share = top_label_share(y_pred, len(labels))
    warnings = [w for w in (collapse_warning(y_true, y_pred, labels), one_label_warning(labels, shared_only)) if w]
    return EvaluationReport(
        model=model.path,
        data_dir=data_dir,
        dataset=dataset,
        labels=labels,
        n_clips=len(y_true),
        accuracy=sc.accuracy,
        uar=sc.uar,
        macro_f1=sc.macro_f1,
        per_class=sc.present(),
        confusion=sc.confusion.tolist(),
        excluded=dict(excluded),
        unscored_model_labels=unscored,
        failures=failures,
        mean_confidence=conf["mean_confidence"],
        ece=conf["ece"],
        top_label=labels[top],
        top_label_share=share,
        warnings=warnings,
    )


def one_label_warning(labels: Sequence[str], shared_only: bool) -> str | None:
    """A score over one label on offer is 100 % by construction: say so, in one line."""
    if len(labels) > 1:
        return None
    why = "it is the only label on offer, so every answer is right by construction"
    fix = " (--all-labels lets the model answer any of its labels)" if shared_only else ""
    return f"warning: the corpus shares one label ({labels[0]}) with the model: {why}{fix}"


def evaluate_corpus(
    model: LaqModel,
    data_dir: str | os.PathLike[str],
    dataset: str = "auto",
    manifest: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    shared_only: bool = True,
    speakers: Sequence[str] | None = None,
    on_error: str = "fail",
    label_map: Mapping[str, str | None] | None = None,
) -> EvaluationReport:
    """Discover a corpus (`serlaq.data.corpora.discover`) and score the model on all of it
    (or on the clips of `speakers` only, e.g. speakers held out of training). `on_error`
    "skip" leaves out files whose name or label cannot be read (one summary line).
    `label_map` renames corpus labels before scoring (`{"calm": "neutral"}`: RAVDESS's
    calm scored as neutral) or leaves their clips out (`{"boredom": None}`)."""
    from serlaq.data.corpora import discover_found
    from serlaq.data.multi import map_and_count

    skipped: list[str] = []
    found = discover_found(  # a label the corpus writes that --map names is read as written
        Path(data_dir), dataset, manifest=Path(manifest) if manifest else None, on_error=on_error,
        on_skip=skipped.append, raw_labels=list(label_map or {}),
    )
    clips = found.clips
    if speakers is not None:
        wanted = set(speakers)
        clips = [c for c in clips if c.speaker in wanted]
    if not clips:
        which = f" of speakers {', '.join(sorted(speakers))}" if speakers is not None else ""
        raise DataError(f"{data_dir}: no labelled audio clips{which} found (dataset {dataset!r})")
    mapping = dict(label_map or {})
    clips, moved = map_and_count(clips, mapping, where=str(data_dir))
    unused = [src for src in mapping if src not in moved]
    report = evaluate_clips(
        model, clips, workers=workers, data_dir=str(data_dir), dataset=dataset, shared_only=shared_only
    )
    report.label_map, report.mapped = mapping, moved
    report.layout = found.layout
    report.warnings[:0] = skipped
    if unused:  # a typo, or a label of another corpus: it changed nothing
        report.warnings.append(f"warning: --map {', '.join(unused)}: no clip has this label; nothing was mapped")
    heard = heard_corpus_warning(model.metadata, found.layout)
    if heard:
        report.warnings.append(heard)
    return report


# --- outputs (written atomically) ----------------------------------------------------


def write_report(report: EvaluationReport, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """`evaluation.json` and, where matplotlib is installed (the `train` extra),
    `confusion_matrix.png` in out_dir (created if needed)."""
    import importlib.util

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "evaluation.json"}
    atomic_write_json(paths["json"], report.to_dict())
    if importlib.util.find_spec("matplotlib") is not None:
        from serlaq.plots import confusion_png

        title = f"accuracy {report.accuracy * 100:.1f}%, UAR {report.uar * 100:.1f}%"
        paths["confusion_png"] = out / "confusion_matrix.png"
        atomic_write_bytes(paths["confusion_png"], confusion_png(report.confusion, report.labels, title))
    return paths
