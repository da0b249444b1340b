"""Corpus layouts -> a sorted list of labelled clips with speaker ids.

Supported `dataset` values:

- `tess`: TESS, `OAF_back_angry.wav` (speaker `_` word `_` emotion), in per-emotion
  folders or flat; `ps` (pleasant surprise) -> `surprise`. TESS has two speakers, OAF and
  YAF: a mistyped prefix (`OAF_neutral/OA_bite_neutral.wav`) takes the speaker of its
  `OAF_*` / `YAF_*` folder, or (flat) the one speaker it abbreviates.
- `emodb`: Berlin EMODB, `03a01Fa.wav`: speaker = the first two digits, emotion = the
  letter at index 5 (W angry, L boredom, E disgust, A fear, F happy, T sad, N neutral).
- `savee`: SAVEE, `DC_a01.wav` or `AudioData/DC/a01.wav` (speaker DC/JE/JK/KL; a anger,
  d disgust, f fear, h happy, n neutral, sa sad, su surprise).
- `ravdess`: RAVDESS, `Actor_12/03-01-05-01-02-01-12.wav`: seven two-digit fields,
  modality-channel-emotion-intensity-statement-repetition-actor; speaker = the actor
  (01-24). Only modality 03 (audio-only) is read; vocal channel 01 speech and 02 song both
  are. Emotion 01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fear, 07 disgust,
  08 surprise; every field is checked against its range.
- `cremad`: CREMA-D, `1001_DFA_ANG_XX.wav`: actor (1001-1091) `_` sentence (three capitals)
  `_` emotion (ANG angry, DIS disgust, FEA fear, HAP happy, NEU neutral, SAD sad) `_`
  intensity (LO, MD, HI, XX or X); speaker = the actor.
- `emovo`: EMOVO, `f1/dis-f1-b1.wav`: emotion `-` speaker (f1-f3, m1-m3) `-` sentence
  (`b1`, `l3`, `n5`, ...); dis disgust, gio happy, neu neutral, pau fear, rab angry,
  sor surprise, tri sad.
- `shemo`: ShEMO (Persian), `female/F01A01.wav`: speaker (`F01`, `M12`) then emotion (A
  angry, F fear, H happy, N neutral, S sad, W surprise) then the utterance number.
- `folder`: one folder on each clip's path names its class: `root/<label>/[<speaker>/...]clip.wav`
  or `root/<speaker>/<label>/[...]clip.wav` (CASIA's and ESD's way). The class is the top-most
  folder whose name is a label; the speaker is the folder above it, or, when the class
  folder is the top one, the folder below it when there is one; else `unknown`.
- `csv`: a manifest with rows `path,label[,speaker]` (header optional; with a header the
  path, label and speaker columns are found by name, `path`/`file`/`FileName`,
  `label`/`emotion`/`EmoClass`/`class`, `speaker`/`SpkrID`/`actor` and the other spellings of
  the core's tables; a spreadsheet's `;` or tab separated export reads too); relative paths are resolved
  against the manifest's folder. The core reads it
  (`serlaq_core::runtime::manifest`, as adaptation does): at most 64 MiB of UTF-8 text.
- `auto`: the first of emodb / savee / tess / ravdess / cremad / emovo / shemo whose naming
  every file follows (no file name follows two of them), else `folder` when every file has a
  label folder on its path, else the named layout most files follow.
  A manifest (or a `.csv` as `root`) means `csv`.

Labels are canonical (see `LABELS`; common spellings such as "anger", "sadness",
"pleasant_surprise" are mapped). Clips are sorted by path, so the same files always give
the same order. Per-file problems (a name that does not parse, an unknown label, a
missing manifest file) either fail naming the file (`on_error="fail"`) or are skipped
with one summary line (`on_error="skip"`). `raw_labels` (label keys, `labels.label_key`;
the keys of a `--map`, whose known labels are read as they always are) are labels a caller
will map itself (`serlaq evaluate --map A=angry`, `--map xxx=`): a folder or manifest label
with such a key is kept as that key instead of being unknown.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from serlaq import _native
from serlaq.errors import DataError
from serlaq.labels import LABEL_ALIASES, LABELS, canonical_label, label_key  # noqa: F401 (the label vocabulary, re-exported)

log = logging.getLogger("serlaq.data")

# What the native decoder reads (lower case, with the dot): discovery finds exactly the files
# that `_native.load_audio` can decode, no list of its own.
AUDIO_SUFFIXES = frozenset(_native.AUDIO_SUFFIXES)
DATASETS = ("auto", "tess", "emodb", "savee", "ravdess", "cremad", "emovo", "shemo", "folder", "csv")

EMODB_EMOTIONS = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fear", "F": "happy", "T": "sad", "N": "neutral"}
TESS_SPEAKERS = ("OAF", "YAF")  # older / younger adult female
SAVEE_EMOTIONS = {"a": "angry", "d": "disgust", "f": "fear", "h": "happy", "n": "neutral", "sa": "sad", "su": "surprise"}

_EMODB_RE = re.compile(r"^(\d\d)[a-z]\d\d([WLEAFTN])[a-z]\d?$")
_SAVEE_RE = re.compile(r"^(?:([A-Z]{2})_)?(sa|su|a|d|f|h|n)(\d\d)$")
_SAVEE_SPEAKER_RE = re.compile(r"^[A-Z]{2}$")

RAVDESS_EMOTIONS = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
    "05": "angry", "06": "fear", "07": "disgust", "08": "surprise",
}
CREMAD_EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
CREMAD_INTENSITIES = ("LO", "MD", "HI", "XX", "X")
EMOVO_EMOTIONS = {
    "dis": "disgust", "gio": "happy", "neu": "neutral", "pau": "fear",
    "rab": "angry", "sor": "surprise", "tri": "sad",
}
EMOVO_SPEAKERS = ("f1", "f2", "f3", "m1", "m2", "m3")
SHEMO_EMOTIONS = {"A": "angry", "F": "fear", "H": "happy", "N": "neutral", "S": "sad", "W": "surprise"}

# The shape of each name; the fields are then checked one by one, so a reason can name the
# field that is out of range.
_RAVDESS_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_CREMAD_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})$")
_EMOVO_RE = re.compile(r"^([a-z]{3})-([a-z]\d)-([a-z]+\d+)$")
_SHEMO_RE = re.compile(r"^([FM]\d\d)([A-Z])(\d\d)$")


@dataclass(frozen=True, order=True)
class Clip:
    """One labelled audio file."""

    path: Path
    label: str
    speaker: str


@dataclass
class Discovery:
    """What a scan found: usable clips, and (path, reason) for each file left out."""

    root: Path
    layout: str
    clips: list[Clip] = field(default_factory=list)
    problems: list[tuple[Path, str]] = field(default_factory=list)


def discover(
    root: str | Path,
    dataset: str = "auto",
    manifest: str | Path | None = None,
    on_error: str = "fail",
    raw_labels: Collection[str] = (),
) -> list[Clip]:
    """Labelled clips of the corpus at `root`, sorted by path.

    Raises `DataError` for a missing directory, an unknown `dataset`, a corpus with no
    usable clips, or (with `on_error="fail"`) the first file that cannot be used.
    With `on_error="skip"` the left-out files are logged as one warning with counts.
    """
    return discover_found(root, dataset, manifest, on_error, raw_labels=raw_labels).clips


def discover_found(
    root: str | Path,
    dataset: str = "auto",
    manifest: str | Path | None = None,
    on_error: str = "fail",
    on_skip: Callable[[str], None] | None = None,
    raw_labels: Collection[str] = (),
) -> Discovery:
    """`discover`, keeping the layout read (`"auto"` resolved: `"tess"`, `"folder"`, ...).
    With `on_error="skip"` the summary line of the left-out files goes to `on_skip`
    (default: a logged warning), so a command can print it as its own line."""
    if on_error not in ("fail", "skip"):
        raise DataError(f"on_error: expected 'fail' or 'skip', got {on_error!r}")
    found = scan(root, dataset, manifest, raw_labels)
    if found.problems:
        if on_error == "fail":
            path, reason = found.problems[0]
            more = f" (and {len(found.problems) - 1} more; on_error=skip leaves them out)" if len(found.problems) > 1 else ""
            raise DataError(f"{path}: {reason}{more}")
        line = skip_summary(found.root, found.problems, total=len(found.clips) + len(found.problems))
        if on_skip is None:
            log.warning("%s", line)
        else:
            on_skip(line)
    if not found.clips:
        raise DataError(f"{found.root}: no usable audio clips ({found.layout} layout)")
    return found


def skip_summary(root: Path | str, problems: list[tuple[Path, str]], total: int | None = None) -> str:
    """One line: how many files were left out of `root`, by reason, with one example each."""
    reasons = Counter(_reason_kind(r) for _, r in problems)
    parts = ", ".join(f"{kind}: {n}" for kind, n in reasons.most_common())
    of = f" of {total}" if total is not None else ""
    first = problems[0][0] if problems else ""
    return f"{root}: skipped {len(problems)}{of} files ({parts}); first: {first}"


def _reason_kind(reason: str) -> str:
    return reason.split(" (", 1)[0].split(":", 1)[0]


def scan(
    root: str | Path, dataset: str = "auto", manifest: str | Path | None = None, raw_labels: Collection[str] = ()
) -> Discovery:
    """Find clips without raising on per-file problems (they are listed in `.problems`)."""
    raw = frozenset(raw_labels)
    if dataset not in DATASETS:
        raise DataError(f"dataset: unknown corpus layout {dataset!r} (expected one of {', '.join(DATASETS)})")
    root = Path(root)
    if manifest is not None or dataset == "csv" or (dataset == "auto" and root.suffix.lower() == ".csv"):
        if dataset not in ("csv", "auto"):
            raise DataError(f"manifest: a manifest is only read with dataset 'csv' or 'auto', not {dataset!r}")
        return _scan_csv(Path(manifest) if manifest is not None else root, raw)
    if not root.exists():
        raise DataError(f"{root}: corpus directory not found")
    if not root.is_dir():
        raise DataError(f"{root}: not a directory")
    files = _audio_files(root)
    if not files:
        raise DataError(f"{root}: no audio files (looked for {', '.join(sorted(AUDIO_SUFFIXES))})")
    if dataset == "auto":
        dataset = _recognise(root, files, raw)
    if dataset == "folder":
        return _scan_folder(root, files, raw)
    return _scan_named(root, files, dataset, _PARSERS[dataset])


def _audio_files(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file() and not _hidden(p, root)
    )


def _hidden(path: Path, root: Path) -> bool:
    # Skip dot-files/folders (e.g. macOS "._x.wav" resource forks, in-progress temp dirs).
    return any(part.startswith(".") for part in path.relative_to(root).parts)


# --- named corpora: a parser per file name ---------------------------------------------

Parsed = tuple[str, str]  # (label, speaker)


def _parse_emodb(path: Path) -> Parsed | str:
    m = _EMODB_RE.match(path.stem)
    if not m:
        return "file name does not follow EMODB naming (e.g. 03a01Fa.wav)"
    return EMODB_EMOTIONS[m.group(2)], m.group(1)


def _parse_savee(path: Path) -> Parsed | str:
    m = _SAVEE_RE.match(path.stem)
    if not m:
        return "file name does not follow SAVEE naming (e.g. DC_a01.wav or DC/a01.wav)"
    speaker = m.group(1)
    if speaker is None:
        speaker = path.parent.name
        if not _SAVEE_SPEAKER_RE.match(speaker):
            return "file name does not follow SAVEE naming: no speaker prefix (DC_a01.wav) or speaker folder (DC/a01.wav)"
    return SAVEE_EMOTIONS[m.group(2)], speaker


def _parse_tess(path: Path) -> Parsed | str:
    parts = path.stem.split("_")
    if len(parts) < 3 or not parts[0].isalpha():
        return "file name does not follow TESS naming (e.g. OAF_back_angry.wav)"
    label = canonical_label("_".join(parts[2:]))
    if label is None:
        return f"unknown label: TESS emotion {'_'.join(parts[2:])!r} is not recognised"
    return label, _tess_speaker(parts[0].upper(), path.parent.name.split("_", 1)[0].upper())


def _tess_speaker(prefix: str, folder: str) -> str:
    """TESS's speaker (OAF or YAF) for a file-name prefix in a folder.

    The public copies hold mistyped names (`OAF_neutral/OA_bite_neutral.wav`): a prefix that
    is not a TESS speaker takes the speaker of the folder it sits in (`OAF_neutral/`), or in
    a flat layout the one TESS speaker it abbreviates. Other prefixes (a corpus that only
    follows TESS's naming) are kept as they are.
    """
    if prefix in TESS_SPEAKERS:
        return prefix
    if folder in TESS_SPEAKERS:
        return folder
    matches = [s for s in TESS_SPEAKERS if s.startswith(prefix)]
    return matches[0] if len(matches) == 1 else prefix


_RAVDESS_EXAMPLE = "e.g. Actor_12/03-01-05-01-02-01-12.wav"
# (field, lowest, highest) for the fields after the emotion, in name order
_RAVDESS_RANGES = (("intensity", 1, 2), ("statement", 1, 2), ("repetition", 1, 2), ("actor", 1, 24))


def _parse_ravdess(path: Path) -> Parsed | str:
    m = _RAVDESS_RE.match(path.stem)
    if not m:
        return f"file name does not follow RAVDESS naming ({_RAVDESS_EXAMPLE})"
    modality, channel, emotion, *rest = m.groups()
    if modality in ("01", "02"):
        kind = "audio-video" if modality == "01" else "video-only"
        return f"RAVDESS modality {modality} is {kind}; serlaq reads the audio-only files, modality 03"
    if modality != "03":
        return f"file name does not follow RAVDESS naming: modality {modality} is not 01-03 (audio-only files are 03)"
    if channel not in ("01", "02"):
        return f"file name does not follow RAVDESS naming: vocal channel {channel} is not 01 (speech) or 02 (song)"
    if emotion not in RAVDESS_EMOTIONS:
        return f"unknown label: RAVDESS emotion {emotion} is not 01-08 ({_RAVDESS_EXAMPLE})"
    for (name, lo, hi), value in zip(_RAVDESS_RANGES, rest, strict=True):
        if not lo <= int(value) <= hi:
            return f"file name does not follow RAVDESS naming: {name} {value} is not {lo:02d}-{hi:02d} ({_RAVDESS_EXAMPLE})"
    return RAVDESS_EMOTIONS[emotion], rest[-1]


def _parse_cremad(path: Path) -> Parsed | str:
    m = _CREMAD_RE.match(path.stem)
    if not m:
        return "file name does not follow CREMA-D naming (e.g. 1001_DFA_ANG_XX.wav)"
    actor, _sentence, emotion, intensity = m.groups()
    if not 1001 <= int(actor) <= 1091:
        return f"file name does not follow CREMA-D naming: actor {actor} is not 1001-1091"
    if emotion not in CREMAD_EMOTIONS:
        return f"unknown label: CREMA-D emotion {emotion!r} is not one of {', '.join(CREMAD_EMOTIONS)}"
    if intensity not in CREMAD_INTENSITIES:
        return f"file name does not follow CREMA-D naming: intensity {intensity!r} is not one of {', '.join(CREMAD_INTENSITIES)}"
    return CREMAD_EMOTIONS[emotion], actor


def _parse_emovo(path: Path) -> Parsed | str:
    m = _EMOVO_RE.match(path.stem.lower())
    if not m:
        return "file name does not follow EMOVO naming (e.g. f1/dis-f1-b1.wav)"
    emotion, speaker, _sentence = m.groups()
    if emotion not in EMOVO_EMOTIONS:
        return f"unknown label: EMOVO emotion {emotion!r} is not one of {', '.join(EMOVO_EMOTIONS)}"
    if speaker not in EMOVO_SPEAKERS:
        return f"file name does not follow EMOVO naming: speaker {speaker!r} is not one of {', '.join(EMOVO_SPEAKERS)}"
    return EMOVO_EMOTIONS[emotion], speaker


def _parse_shemo(path: Path) -> Parsed | str:
    m = _SHEMO_RE.match(path.stem)
    if not m:
        return "file name does not follow ShEMO naming (e.g. female/F01A01.wav)"
    speaker, emotion, _utterance = m.groups()
    if emotion not in SHEMO_EMOTIONS:
        return f"unknown label: ShEMO emotion {emotion!r} is not one of {', '.join(SHEMO_EMOTIONS)}"
    return SHEMO_EMOTIONS[emotion], speaker


# The named corpora, in the order `auto` tries them.
_PARSERS: dict[str, Callable[[Path], Parsed | str]] = {
    "emodb": _parse_emodb,
    "savee": _parse_savee,
    "tess": _parse_tess,
    "ravdess": _parse_ravdess,
    "cremad": _parse_cremad,
    "emovo": _parse_emovo,
    "shemo": _parse_shemo,
}


def _scan_named(root: Path, files: Iterable[Path], layout: str, parse: Callable[[Path], Parsed | str]) -> Discovery:
    found = Discovery(root=root, layout=layout)
    for path in files:
        result = parse(path)
        if isinstance(result, str):
            found.problems.append((path, result))
        else:
            found.clips.append(Clip(path, *result))
    return found


# --- folder per class -------------------------------------------------------------------


def _scan_folder(root: Path, files: Iterable[Path], raw: frozenset[str] = frozenset()) -> Discovery:
    found = Discovery(root=root, layout="folder")
    for path in files:
        folders = path.relative_to(root).parts[:-1]
        found_label = _label_folder(folders, raw)
        if found_label is None:
            found.problems.append((path, _no_label_folder(folders)))
            continue
        at, label = found_label
        if at > 0:  # <speaker>/<label>/...: CASIA, ESD
            speaker = folders[at - 1]
        else:  # <label>/<speaker>/...
            speaker = folders[1] if len(folders) > 1 else "unknown"
        found.clips.append(Clip(path, label, speaker))
    return found


def _label(name: str, raw: frozenset[str]) -> str | None:
    """The canonical label of a spelling, or its key when a caller maps that label itself."""
    label = canonical_label(name)
    if label is None:
        key = label_key(name)
        return key if key in raw else None
    return label


def _label_folder(folders: tuple[str, ...], raw: frozenset[str] = frozenset()) -> tuple[int, str] | None:
    """The top-most folder on a clip's path whose name is a label: (its index, the label), or None."""
    for i, name in enumerate(folders):
        label = _label(name, raw)
        if label is not None:
            return i, label
    return None


def _no_label_folder(folders: tuple[str, ...]) -> str:
    if not folders:
        return "not in a class folder: folder layout expects root/<label>/clip.wav or root/<speaker>/<label>/clip.wav"
    shown = "/".join(folders)
    return f"unknown label: no folder of {shown!r} is a known emotion ({', '.join(LABELS)}; --map NAME=LABEL names another)"


# --- CSV manifest -----------------------------------------------------------------------


def _scan_csv(manifest: Path, raw: frozenset[str] = frozenset()) -> Discovery:
    """The clips a manifest lists, read by the core's one manifest reader (adaptation's too)."""
    try:
        rows = _native.manifest_rows(manifest)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    found = Discovery(root=manifest, layout="csv")
    first_line: dict[Path, tuple[int, str]] = {}  # resolved path -> (line, label) of its first row
    for line, raw_path, raw_label, speaker in rows:
        where = f"{manifest} line {line}"
        if raw_path is None or raw_label is None:
            missing = "path" if raw_path is None else "label"
            raise DataError(f"{where}: expected columns path,label[,speaker], got no {missing}")
        path = Path(raw_path)
        label = _label(raw_label, raw)
        if label is None:
            found.problems.append(
                (path, f"unknown label: {raw_label!r} ({where}; known: {', '.join(LABELS)}; --map {raw_label}=LABEL names it)")
            )
            continue
        if not path.is_file():
            found.problems.append((path, f"file not found ({where})"))
            continue
        repeat = _repeated_row(first_line, path, line, label, manifest)
        if repeat is not None:
            found.problems.append((path, repeat))
            continue
        found.clips.append(Clip(path, label, speaker or "unknown"))
    found.clips.sort()
    return found


def _repeated_row(first_line: dict[Path, tuple[int, str]], path: Path, line: int, label: str, manifest: Path) -> str | None:
    """The problem of a manifest row naming a file an earlier row names (the first row
    wins), or None for a new file. A repeated file would be used twice: its copies could
    land in train and test at once, and a second label would teach it both."""
    first = first_line.setdefault(path.resolve(), (line, label))
    if first[0] == line:
        return None
    labels = f"; labels {first[1]} and {label}" if first[1] != label else ""
    return f"listed twice ({manifest} lines {first[0]} and {line}{labels}; on_error=skip keeps the first row)"


# --- layout recognition -----------------------------------------------------------------


def _recognise(root: Path, files: list[Path], raw: frozenset[str] = frozenset()) -> str:
    parsed = {name: sum(not isinstance(parse(p), str) for p in files) for name, parse in _PARSERS.items()}
    for name in _PARSERS:
        if parsed[name] == len(files):
            return name
    labelled = sum(_label_folder(p.relative_to(root).parts[:-1], raw) is not None for p in files)
    if labelled == len(files):
        return "folder"
    best = max(_PARSERS, key=lambda n: parsed[n])
    if parsed[best] * 2 > len(files):
        return best
    if labelled * 2 > len(files):
        return "folder"
    raise DataError(
        f"{root}: cannot recognise the corpus layout of {len(files)} audio files "
        f"(set dataset to one of {', '.join(d for d in DATASETS if d != 'auto')}; "
        "folder wants a folder named for each clip's emotion, csv a manifest of path,label rows)"
    )
