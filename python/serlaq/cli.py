"""The `serlaq` command line: each command is a thin call into the Python API.

Heavy imports (torch, lightning) happen inside the commands so `serlaq --help` is quick.
Every `SerlaqError` is printed as one line on stderr with exit code 1, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from serlaq import _native
from serlaq.errors import AudioError, ConfigError, SerlaqError

app = typer.Typer(
    name="serlaq",
    help="Speech emotion recognition with layer-wise adaptive quantization (LAQ).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 1) -> None:
    """Print one clear line on stderr and leave with a non-zero code."""
    typer.echo(f"serlaq: error: {message}", err=True)
    raise typer.Exit(code)


# A model argument is a str, not a Path: typer's Path would read `./general` (a file of that
# name) as `general` (the shipped model).
MODEL_HELP = _native.MODEL_HELP

#: The largest count a server limit takes from the command line (typer refuses more, in one
#: line, instead of an OverflowError from the native call).
COUNT_MAX = 2**32
SERVER_MAX_THREADS = _native.SERVER_MAX_THREADS

#: `serlaq report --protocol`.
PROTOCOLS = ("split", "loso", "cross")

#: The output formats of the runtime commands (`serlaq_core::runtime::Format`).
FORMATS = ("table", "json", "jsonl", "csv")

# The packages of the `train` extra; the runtime commands (predict, evaluate, info) need none.
TRAIN_EXTRA = ("torch", "torchaudio", "lightning", "torchmetrics", "pydantic", "yaml", "soundfile", "matplotlib")


def require_train_extra(command: str) -> None:
    """One line naming the extra to install when a training command runs in a runtime-only install."""
    import importlib.util

    missing = [name for name in TRAIN_EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        fail(f'`serlaq {command}` needs the training extra: pip install "serlaq[train]" (missing: {", ".join(missing)})')


def warn_if_synthetic(metadata: dict) -> None:
    """One stderr line when the model was trained on the synthetic demo corpus only."""
    from serlaq.provenance import SYNTHETIC_WARNING, trained_on_synthetic

    if trained_on_synthetic(metadata):
        typer.echo(f"serlaq: warning: {SYNTHETIC_WARNING}", err=True)


# --- commands (each body delegates to a module of the package) -----------------


@app.command()
def predict(
    model: str = typer.Argument(..., help=MODEL_HELP),
    inputs: list[str] = typer.Argument(..., help="audio files and/or directories (searched recursively for audio files); - reads standard input (a pipe is segmented as it comes; a file called - is ./-)"),
    fmt: str = typer.Option("table", "--format", help="table | json | jsonl | csv (jsonl/csv/table stream as results come)"),
    as_json: bool = typer.Option(False, "--json", help="same as --format json"),
    top_k: int | None = typer.Option(None, "--top-k", min=1, help="also show the K most probable labels with their probabilities (default: off, the best label only)"),
    workers: int | None = typer.Option(None, "--workers", min=1, help="native threads for decoding + features (default: all cores)"),
    on_error: str = typer.Option("fail", "--on-error", help="a file that cannot be read: fail = one error line and exit code 1 (the other files are still predicted); skip = one 'skipped' line, no row, exit code 0 when any file was predicted"),
    verbose: bool = typer.Option(False, "--verbose", help="error lines keep the audio decoder's own detail"),
    segments: bool = typer.Option(False, "--segments", help="long recordings: one row per window (start, end, label, confidence) and a summary per file"),
    window: float | None = typer.Option(None, "--window", help="--segments: window length in seconds (default 2.0, rounded to whole STFT hops)"),
    hop: float | None = typer.Option(None, "--hop", help="--segments: step between windows in seconds (default 1.0: 50% overlap)"),
    vad_db: float | None = typer.Option(None, "--vad-db", help="--segments: a frame is voiced at or above this level in dBFS (default -50)"),
    min_speech: float | None = typer.Option(None, "--min-speech", help="--segments: share of voiced frames that makes a window speech (default 0.25)"),
    no_vad: bool = typer.Option(False, "--no-vad", help="--segments: no voice-activity gate (the model judges every window)"),
    plot: Path | None = typer.Option(None, "--plot", help="--segments: write the emotion timeline(s) as a PNG (needs the train extra's matplotlib)"),
    running_norm: bool = typer.Option(False, "--running-norm", help="--segments: each file's speech windows re-estimate the input statistics as they come (running normalisation: a recording adapts the model to its own room)"),
    running_prior: float | None = typer.Option(None, "--running-prior", help="--running-norm: weight of the model's own statistics, in windows (default 20)"),
    running_horizon: float | None = typer.Option(None, "--running-horizon", help="--running-norm: windows after which older windows fade out (default 600)"),
    no_running_balance: bool = typer.Option(False, "--no-running-balance", help="--running-norm: statistics only, no label balance (a recording that is mostly one emotion)"),
) -> None:
    """Predict the emotion of audio files: one line per file (path, label, confidence).

    Reads {formats} at any rate from 1 to 384 kHz and any channel count (audio is downmixed and resampled to the model's rate). A file that cannot be read gets one error line on stderr; the others are still predicted and the exit code is 1 (--on-error skip: exit code 0). Needs no torch.

    Example: serlaq predict model.laq clip.wav recordings/ --top-k 3 --format jsonl

    With --segments each file is cut into overlapping windows (default 2 s every 1 s); windows where the voice-activity gate finds too little speech are shown as "silence". Output: one row per window and a summary per file (speech time, share of speech time per emotion); in csv the summary lines go to stderr. A file that breaks part-way keeps its windows before the damage plus one error line.

    Example: serlaq predict model.laq call.wav --segments --hop 0.5 --format jsonl --plot call.png
    """
    from serlaq import _native
    from serlaq.runtime import LaqModel
    from serlaq.runtime.inputs import find_audio_files

    fmt = "json" if as_json else fmt
    if fmt not in FORMATS:
        fail(f"--format: must be one of {', '.join(FORMATS)}, got {fmt!r}", code=2)
    check_on_error(on_error)
    seg_flags = {"--window": window, "--hop": hop, "--vad-db": vad_db, "--min-speech": min_speech, "--plot": plot}
    if not segments:
        given = [k for k, v in seg_flags.items() if v is not None] + (["--no-vad"] if no_vad else [])
        running = {"--running-norm": running_norm, "--running-prior": running_prior is not None,
                   "--running-horizon": running_horizon is not None, "--no-running-balance": no_running_balance}
        given += [k for k, v in running.items() if v]
        if given:
            fail(f"{', '.join(given)}: only with --segments", code=2)
    elif no_vad and (vad_db is not None or min_speech is not None):
        fail("--no-vad: cannot be combined with --vad-db / --min-speech", code=2)
    elif not running_norm and (running_prior is not None or running_horizon is not None or no_running_balance):
        fail("--running-prior, --running-horizon, --no-running-balance: only with --running-norm", code=2)
    elif plot is not None:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            fail('--plot needs matplotlib: pip install "serlaq[plot]"')
        try:  # a folder, or a file on the way, is named before any audio is read
            _native.prepare_output(plot, "timeline.png")
        except ValueError as exc:
            fail(f"--plot: {exc}")
    laq = LaqModel.load(model)
    warn_if_synthetic(laq.metadata)
    total = sum(map(len, find_audio_files(inputs)))  # files + inputs that name none: the exit rule of --on-error skip

    def echo_error(message: str) -> None:
        report_file_error(message, on_error, verbose)

    if segments:
        from serlaq.runtime.segments import run_segments_cli

        try:  # the options are checked before anything is written
            failed = run_segments_cli(
                laq, inputs, fmt, top_k=top_k, window=window, hop=hop, vad=not no_vad, vad_db=vad_db,
                min_speech=min_speech, plot=plot, echo_error=echo_error, running_norm=running_norm,
                running_prior=running_prior, running_horizon=running_horizon,
                running_balance=not no_running_balance,
                echo_warning=lambda line: typer.echo(f"serlaq: {line}", err=True), skip_failed=on_error == "skip",
            )
        except ValueError as exc:  # a bad option, named by its flag: a usage error
            fail(str(exc), code=2)
    else:
        # the core's batch and writer: the bytes `serlaq-rt predict` prints
        sys.stdout.flush()
        failed = _native.predict_to(
            laq._native, [str(p) for p in inputs], fmt, sys.stdout, echo_error, top_k=top_k, threads=workers,
            echo_warning=lambda line: typer.echo(f"serlaq: {line}", err=True), skip_failed=on_error == "skip",
        )
    if failed and (on_error == "fail" or failed >= total):
        raise typer.Exit(1)


def check_on_error(value: str) -> None:
    if value not in ("fail", "skip"):
        fail(f"--on-error: must be fail or skip, got {value!r}", code=2)


def check_dataset(value: str) -> None:
    from serlaq.data.corpora import DATASETS

    if value not in DATASETS:
        fail(f"--dataset: unknown corpus layout {value!r} (expected one of {', '.join(DATASETS)})", code=2)


def output_folder(folder: Path, flag: str = "--out") -> Path:
    """`folder`, made with its parents before any work is done, or one line saying why it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        fail(f"{flag}: {folder} is a file, not a folder")
    except OSError as exc:  # a file on the way (NotADirectoryError), no permission, a full disk
        fail(f"{flag}: cannot make the folder {folder} ({exc.strerror or exc})")
    return folder


DATASET_HELP = "corpus layout: tess | emodb | savee | ravdess | cremad | emovo | shemo | folder | csv | auto (default auto: from the file names{csv})"


def parse_label_map(items: list[str]) -> dict[str, str | None]:
    """`--map calm=neutral --map boredom= --map A=angry` -> {"calm": "neutral", "boredom": None,
    "a": "angry"}; a bad item stops the command with one line naming it. The corpus side may
    be any label the corpus writes (MSP-Podcast's `A`, IEMOCAP's `xxx`): a known spelling is
    its canonical label, any other its key (`labels.label_key`); the model side is a label."""
    from serlaq.labels import LABELS, canonical_label, label_key

    mapping: dict[str, str | None] = {}
    for item in items:
        source, sep, target = item.partition("=")
        src = canonical_label(source) or label_key(source)
        dst = canonical_label(target) if target.strip() else None
        if not sep or not src:
            fail(f"--map {item}: expected CORPUS_LABEL=MODEL_LABEL (or CORPUS_LABEL= to leave its clips out)", code=2)
        if target.strip() and dst is None:
            fail(f"--map {item}: {target.strip()!r} is not a known label ({', '.join(LABELS)})", code=2)
        if src in mapping:
            fail(f"--map {item}: {src} is mapped twice", code=2)
        mapping[src] = dst
    return mapping


def report_file_error(message: str, on_error: str, verbose: bool) -> None:
    """One stderr line for a file of a batch that could not be used, in plain words."""
    from serlaq.errors import plain_audio_error

    typer.echo(f"serlaq: {'skipped' if on_error == 'skip' else 'error'}: {plain_audio_error(message, verbose)}", err=True)


@app.command()
def evaluate(
    model: str = typer.Argument(..., help=MODEL_HELP),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="labelled corpus root (not needed with --manifest)"),
    dataset: str = typer.Option("auto", "--dataset", help=DATASET_HELP.format(csv="; csv with --manifest")),
    manifest: Path | None = typer.Option(
        None, "--manifest", help="CSV manifest (path,label[,speaker]); relative paths in it are relative to the manifest's own folder"
    ),
    out: Path | None = typer.Option(
        None, "--out", help="folder for evaluation.json and confusion_matrix.png (default: ./<model>-eval)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    workers: int | None = typer.Option(None, "--workers", min=1, help="native threads for decoding + features"),
    all_labels: bool = typer.Option(
        False, "--all-labels", help="let the model answer any of its labels, also those the corpus has no clip of"
    ),
    speakers: str | None = typer.Option(None, "--speakers", help="comma-separated speaker ids: score only their clips"),
    label_map: list[str] = typer.Option(
        [], "--map", help="score a corpus label as one of the model's: --map calm=neutral (RAVDESS); --map boredom= leaves its clips out; repeatable"
    ),
    on_error: str = typer.Option("fail", "--on-error", help="fail = a file whose name or label cannot be read stops the command, unreadable audio gets one error line and exit code 1; skip = both are left out with one line each, exit code 0"),
    verbose: bool = typer.Option(False, "--verbose", help="error lines keep the audio decoder's own detail"),
) -> None:
    """Score a model on a labelled corpus: accuracy, UAR, macro-F1, per-class table, confusion matrix PNG. Needs no torch.

    The corpus is a folder (--data-dir, layout from --dataset) or a CSV manifest (--manifest, rows path,label[,speaker]; relative paths are relative to the manifest's folder, never to --data-dir or the working directory).

    Cross-corpus: scoring uses the labels both share. Clips with labels the model does not know are left out and counted; model labels the corpus has no clip of are not offered as answers (unless --all-labels); the report names both. Unreadable files get one error line each on stderr, are left out of the scores, and make the exit code 1 (0 with --on-error skip).

    Example: serlaq evaluate model.laq --data-dir data/emodb --dataset emodb --out eval/

    Example: serlaq evaluate model.laq --manifest test.csv

    Example: serlaq evaluate general --data-dir RAVDESS --map calm=neutral
    """
    import json

    from serlaq.errors import DataError
    from serlaq.evaluation import evaluate_corpus, write_report
    from serlaq.runtime import LaqModel

    check_on_error(on_error)
    check_dataset(dataset)
    mapping = parse_label_map(label_map)
    if data_dir is None and manifest is None:
        fail("--data-dir: missing (the corpus folder; or --manifest FILE.csv)", code=2)
    if data_dir is not None and manifest is not None:
        typer.echo(
            f"serlaq: note: --data-dir {data_dir} is not used: paths in {manifest} are relative to its own folder", err=True
        )
    laq = LaqModel.load(model)
    folder = output_folder(out if out is not None else Path(f"{Path(model).stem}-eval"))
    try:
        report = evaluate_corpus(
            laq,
            manifest if manifest is not None else data_dir,
            dataset=dataset,
            manifest=manifest,
            workers=workers,
            shared_only=not all_labels,
            speakers=[s for s in speakers.split(",") if s] if speakers else None,
            on_error=on_error,
            label_map=mapping,
        )
    except DataError as exc:  # name the flag the user has, not the config key
        message = str(exc).replace("on_error=skip", "--on-error skip")
        corpus = str(manifest if manifest is not None else data_dir)
        if "--on-error skip" not in message and not message.startswith(corpus):  # one file's problem
            message += " (--on-error skip leaves such files out)"
        fail(message)
    for failure in report.failures:
        report_file_error(failure.error, on_error, verbose)
    for warning in report.warnings:
        typer.echo(f"serlaq: {warning}", err=True)
    written = write_report(report, folder)
    if as_json:
        typer.echo(json.dumps({**report.to_dict(), "written": {k: str(v) for k, v in written.items()}}, indent=2))
    else:
        typer.echo(report.format_text())
        typer.echo("")
        typer.echo("wrote " + ", ".join(str(p) for p in written.values()))
        if "confusion_png" not in written:
            typer.echo('(confusion_matrix.png needs matplotlib: pip install "serlaq[plot]"; the scores are all in evaluation.json)')
    if report.failures and on_error == "fail":
        raise typer.Exit(1)


@app.command()
def info(
    model: str = typer.Argument(..., help=MODEL_HELP),
    as_json: bool = typer.Option(False, "--json", help="print everything as JSON"),
) -> None:
    """Show what a .laq file holds: labels, features, per-layer shape/bits/quantizer/size, average bits, size vs fp32.

    Example: serlaq info model.laq --json
    """
    from serlaq.runtime import LaqModel

    laq = LaqModel.load(model)
    # the core's `ModelInfo`: the bytes `serlaq-rt info` prints
    typer.echo(laq._native.info(laq.path, json=as_json))


@app.command()
def adapt(
    model: str = typer.Argument(..., help=f"{MODEL_HELP}: the model to adapt"),
    inputs: list[str] = typer.Argument(None, help="unlabelled audio of the new room: files and/or directories (searched recursively)"),
    out: str = typer.Option(..., "--out", help="the adapted model (.laq), written atomically; must differ from MODEL"),
    manifest: Path | None = typer.Option(None, "--manifest", help="CSV manifest (path[,label[,speaker]]) of the audio; labels are ignored"),
    workers: int | None = typer.Option(None, "--workers", min=1, help="native threads for decoding + features (default: all cores)"),
    balance: bool = typer.Option(
        True, "--balance/--no-balance",
        help="also shift the output bias so the new audio's clips spread over the labels (assumes no single emotion dominates the recordings)",
    ),  # fmt: skip
    std: str = typer.Option(
        "widen", "--std",
        help="the adapted std per feature: widen = the larger of the model's and the audio's (a narrow room is not stretched), target = the audio's own, model = the model's (only the mean moves)",
    ),  # fmt: skip
    labels: list[str] = typer.Option(
        [], "--labels",
        help="the labels the audio holds, when only some of the model's (e.g. --labels angry,happy,neutral,sad): the balance spreads the clips over these and the adapted model answers among them",
    ),  # fmt: skip
    verbose: bool = typer.Option(False, "--verbose", help="error lines keep the audio decoder's own detail"),
) -> None:
    """Adapt a model to a new room, microphone or corpus from unlabelled audio: its input statistics are re-estimated on that audio (the feature mean becomes the audio's; the std widens where the audio is wider, --std), the output bias is shifted so the clips spread over the labels (--no-balance: not), and the result is written as a new .laq that records what it was adapted on. Needs no labels and no torch.

    Needs at least 20 readable clips with 20 s of speech in all (below that it says how much more); a recording longer than 30 s counts as its 2-s windows that hold speech; unreadable files are named on stderr and left out.

    Example: serlaq adapt model.laq recordings/ --out model-room.laq

    Example: serlaq adapt general --manifest room.csv --out room.laq

    Example: serlaq adapt general calls/ --labels angry,happy,neutral,sad --out calls.laq
    """
    from serlaq import _native
    from serlaq.runtime import LaqModel
    from serlaq.runtime.adapt import STD_RULES, AdaptError, adapt as run_adapt

    if not inputs and manifest is None:
        fail("adapt: give audio files or folders, or --manifest CSV", code=2)
    if std not in STD_RULES:
        fail(f"--std: unknown rule {std!r} (accepted: {', '.join(STD_RULES)})", code=2)
    clash = _native.adapt_output_clash(model, out)
    if clash is not None:
        fail(clash, code=2)
    try:
        _native.prepare_output(out)
    except ValueError as exc:
        fail(f"--out: {exc}")
    laq = LaqModel.load(model)
    try:
        held = [name for item in labels for name in item.split(",") if name.strip()]
        adapted, result = run_adapt(
            laq, inputs or [], manifest=manifest, workers=workers, balance=balance, std=std, labels=held
        )
    except AdaptError as exc:
        for f in exc.failures:
            report_file_error(f, "fail", verbose)
        fail(exc.headline if exc.failures else str(exc))
    for f in result.failures:
        report_file_error(f, "fail", verbose)
    try:
        adapted.save(out)
    except ValueError as exc:  # the disk filled, or the folder went away meanwhile
        fail(f"--out: {exc}")
    typer.echo(f"adapted {model} {result.summary}; wrote {out}")


@app.command()
def fit(
    config: Path | None = typer.Option(None, "--config", "-c", help="run config (YAML); see configs/. Without it, --data-dir trains with every default"),
    data_dir: str | None = typer.Option(None, "--data-dir", help="corpus root (overrides data.data_dir); a config that names no dataset reads its layout (auto)"),
    seed: int | None = typer.Option(None, "--seed", help="seed of the split, init and shuffling (overrides seed)"),
    out: Path | None = typer.Option(None, "--out", help="run folder (default: <out_dir>/<name>, name = the config file's stem, or the corpus folder's name without a config)"),
    resume: bool = typer.Option(False, "--resume", help="continue the run folder's last.ckpt"),
    overrides: list[str] = typer.Option(
        [], "--set", metavar="KEY=VALUE", help="override any config key, e.g. --set train.max_epochs=50 (repeatable)"
    ),
    no_compress: bool = typer.Option(
        False, "--no-compress", help="stop after training: no model.laq (compress later with serlaq compress --checkpoint RUN/model.ckpt)"
    ),
    verbose: bool = typer.Option(False, "--verbose", help="a clip that cannot be read is named with the audio decoder's own detail"),
) -> None:
    """Train the MLP on a corpus, evaluate it and compress it: writes model.laq (the packed model to deploy, with laq.json), model.ckpt, best.ckpt, last.ckpt, metrics.json, confusion_matrix.png, logs/metrics.csv and the resolved config.yaml into the run folder.

    The compression follows the config's laq: section, or the default LAQ settings (mode qat) when it has none; --no-compress skips it.

    Example: serlaq fit --config configs/emodb.yaml --data-dir data/emodb --seed 1 --set model.hidden=2HL

    Example: serlaq fit --data-dir my_corpus  (every default; one folder per emotion or a named layout; writes runs/my_corpus)

    Ctrl-C keeps the last finished epoch; add --resume to the same command to continue (or: serlaq fit --resume --out RUN_DIR).
    """
    require_train_extra("fit")
    from serlaq.config import command_config
    from serlaq.laq_config import LaqConfig

    if data_dir is not None and not data_dir.strip():  # Path("") is ".": the folder it runs in
        fail("--data-dir: empty (the corpus folder; --data-dir . for the current folder)", code=2)
    run_config = command_config(config, data_dir=None if data_dir is None else Path(data_dir), seed=seed, out=out, sets=overrides, resume=resume)
    saved = run_config.run_dir.resolve() / "config.yaml"
    if config is not None and not resume and saved.exists() and saved.samefile(config):
        # a fresh run replaces config.yaml: the config being read would be lost
        fail(f"--config {config}: is the run folder's own config.yaml, which a fresh run replaces; "
             "copy it elsewhere first, or add --resume to continue that run")
    if no_compress:
        run_config = run_config.model_copy(update={"laq": None})
    elif run_config.laq is None and not _laq_switched_off(config, out if resume else None, overrides):
        run_config = run_config.model_copy(update={"laq": LaqConfig()})
    from serlaq.training import CompressionError, FitInterrupted, fit as run_fit, format_summary
    from serlaq.training.run import CompressionInterrupted

    try:
        result = run_fit(run_config, resume=resume)
    except AudioError as exc:  # a clip of the corpus, in the words predict uses
        from serlaq.errors import plain_audio_error

        fail(f"{plain_audio_error(str(exc), verbose)}; --set data.on_error=skip trains without such files")
    except FitInterrupted as exc:
        if isinstance(exc, CompressionInterrupted):  # training is complete and written: show it
            typer.echo(format_summary(exc.result))
        typer.echo(f"serlaq: {exc}", err=True)
        raise typer.Exit(130) from None
    except CompressionError as exc:  # training is complete and written: show it, then the failure
        typer.echo(format_summary(exc.result))
        fail(str(exc))
    if result is not None:
        typer.echo(format_summary(result))


def _laq_switched_off(config: Path | None, resumed_run: Path | None, overrides: list[str]) -> bool:
    """True when the config says `laq: null` (or `--set laq=null`): no compression, as with
    --no-compress. A config without a `laq:` key gets the default settings instead."""
    import yaml

    from serlaq.config import parse_override

    if any(key == "laq" and value is None for key, value in map(parse_override, overrides)):
        return True
    path = config if config is not None else (resumed_run / "config.yaml" if resumed_run is not None else None)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) if path is not None else None
    except (OSError, yaml.YAMLError):  # command_config has read it already; it cannot fail here
        return False
    return isinstance(raw, dict) and "laq" in raw and raw["laq"] is None


#: `--data-dir` of compress and report: a run's corpus found elsewhere.
DATA_DIR_MOVED_HELP = (
    "the corpus folder, when it moved since training (overrides the checkpoint's data.data_dir; for a manifest run, "
    "the folder holding the manifest); the same clips must be there: a different corpus is refused"
)


def check_data_dir(data_dir: str | None) -> None:
    """An empty --data-dir would read the current folder as the corpus: refused in one line."""
    if data_dir is not None and not data_dir.strip():
        fail("--data-dir: empty; give the corpus folder (an empty path would read the current directory)")


@app.command()
def compress(
    checkpoint: Path = typer.Option(..., "--checkpoint", help="a trained checkpoint (the model.ckpt of a run folder)"),
    out: Path | None = typer.Option(None, "--out", help="output .laq file (default: model.laq next to the checkpoint)"),
    mode: str | None = typer.Option(None, "--mode", help="qat (default: budget search on train+val agreement + QAT) or paper (importance ranking + search on val accuracy)"),
    margin: float | None = typer.Option(None, "--margin", min=0.0, help="T_margin of eq. 5 as a fraction (paper: 0.01 = one point)"),
    weights: tuple[float, float, float] | None = typer.Option(
        None, "--weights", metavar="WP WE WV", help="importance weights (w_P, w_E, w_V) of eq. 4 (default 0.11 0.01 0.88)"
    ),
    per_channel: bool | None = typer.Option(None, "--per-channel/--per-tensor", help="one scale per output row (+8 bytes/row) or one per layer"),
    criterion: str | None = typer.Option(None, "--criterion", help="accuracy (val, the paper) | agreement | kl (with fp32 on train+val)"),
    range_search: bool | None = typer.Option(None, "--range-search/--min-max", help="2-8 bit clip range: reconstruction-error search or min-max"),
    budget_bits: float | None = typer.Option(None, "--budget-bits", help="budget search: the most accurate plan within this many average bits"),
    budget_kb: float | None = typer.Option(None, "--budget-kb", help="budget search: the most accurate plan whose .laq fits in this many KB"),
    qat: bool | None = typer.Option(None, "--qat/--no-qat", help="quantization-aware fine-tuning at the chosen bits"),
    qat_epochs: int | None = typer.Option(None, "--qat-epochs", min=1, help="maximum QAT epochs (default 30)"),
    as_json: bool = typer.Option(False, "--json", help="print the laq.json summary instead of the text lines"),
    data_dir: str | None = typer.Option(None, "--data-dir", help=DATA_DIR_MOVED_HELP),
) -> None:
    """Compress a trained checkpoint with layer-wise adaptive quantization into a packed .laq model.

    Rebuilds the checkpoint's data (same split) from the feature cache; a corpus that changed since training (clips added, removed or relabelled) is refused, since its test split would hold training clips. The default mode (qat) runs a budget search: the bit plan within 1.1 average bits (--budget-bits / --budget-kb) whose predictions agree most with the fp32 model on train + val, with the range-search quantizer, then 30 epochs of quantization-aware fine-tuning at that plan. --mode paper is the paper's procedure: layers ranked by importance (eq. 1-4), each layer's bit-width searched on validation accuracy within the margin (eq. 5), no fine-tuning. Writes the .laq file plus a JSON summary (laq.json) with the search trace.

    Example: serlaq compress --checkpoint runs/emodb/model.ckpt --mode paper --margin 0.01 --weights 0.11 0.01 0.88
    """
    require_train_extra("compress")
    import json

    from serlaq.laq.compress import compress as run_compress
    from serlaq.laq.compress import format_outcome, summary_path

    check_data_dir(data_dir)
    outcome = run_compress(
        checkpoint,
        out,
        margin=margin,
        weights=weights,
        per_channel=per_channel,
        mode=mode,
        criterion=criterion,
        range_search=range_search,
        budget_bits=budget_bits,
        budget_kb=budget_kb,
        qat=qat,
        qat_epochs=qat_epochs,
        data_dir=data_dir,
    )
    target = out if out is not None else checkpoint.parent / outcome.settings.out
    if as_json:
        typer.echo(summary_path(target).read_text(encoding="utf-8").rstrip())
    else:
        typer.echo(format_outcome(outcome, target))


@app.command()
def report(
    run_dir: str = typer.Argument(
        ..., help="a run folder of serlaq fit (holds model.ckpt and config.yaml); with --protocol cross also a .laq file or `general`"
    ),
    seeds: int = typer.Option(1, "--seeds", min=1, help="seeds of the same config (the run's seed first; others are trained): mean ± sd"),
    hl_sweep: bool = typer.Option(False, "--hl-sweep", help="also train and compare the Table-2 variants 2HL..9HL (slower)"),
    qat_rows: bool = typer.Option(True, "--qat-rows/--no-qat-rows", help="include the QAT rows and the fp32 + extra epochs control"),
    table3: bool = typer.Option(True, "--table3/--no-table3", help="include the importance-weight sweep (Table 3)"),
    out: Path | None = typer.Option(
        None, "--out",
        help="report folder (default: RUN_DIR/report, RUN_DIR/report-loso with --protocol loso, RUN_DIR/report-cross with --protocol cross: for a .laq file NAME-report-cross beside it, for general ./general-report-cross)",
    ),  # fmt: skip
    protocol: str = typer.Option(
        "split", "--protocol",
        help="split: the run's own split (the paper's tables); loso: leave-one-speaker-out folds of the run's config, fp32 and compressed, mean ± sd over folds; cross: the run's .laq on other corpora (--test-data), zero-shot and adapted",
    ),  # fmt: skip
    test_data: list[Path] = typer.Option(
        [], "--test-data", help="--protocol cross: a corpus the model never heard, a folder (layout detected) or a CSV manifest (rows path,label[,speaker]); repeatable"
    ),
    dataset: str = typer.Option("auto", "--dataset", help=f"--protocol cross: {DATASET_HELP.format(csv='; csv for a .csv --test-data')}, for every --test-data"),
    label_map: list[str] = typer.Option(
        [], "--map", help="--protocol cross: score a corpus label as one of the model's in every --test-data corpus: --map calm=neutral; --map boredom= leaves its clips out; repeatable"
    ),
    data_dir: str | None = typer.Option(None, "--data-dir", help=f"--protocol split or loso: {DATA_DIR_MOVED_HELP}"),
) -> None:
    """Write the paper's tables and figures for a trained run: Table 4 (fp32, fixed 8..1 bits, LAQ, and QAT rows), Table 3 (importance weights), accuracy-vs-bits, per-layer bits and confusion-matrix plots, as Markdown + JSON + PNG.

    With --protocol loso: leave-one-speaker-out cross-validation instead. One fold per speaker: train the run's config on the other speakers, compress it as its laq: section says (default mode when none), score fp32 and compressed on the held-out speaker (accuracy, UAR, macro-F1); report.md/report.json hold one row per fold and mean ± sd over folds.

    Example: serlaq report runs/emodb --seeds 5

    With --protocol cross: the run's compressed .laq (or a .laq file, or `general`, given instead of RUN_DIR) scored on each --test-data corpus on the labels they share, zero-shot and after `serlaq adapt` on that corpus's own audio (labels unused): UAR, accuracy, the most predicted label's share, mean confidence and ECE, in RUN_DIR/report-cross/ (or --out).

    Example: serlaq report runs/emodb --protocol loso

    Example: serlaq report runs/emodb --protocol cross --test-data ../shared/datasets/tess

    Example: serlaq report runs/emodb --protocol cross --test-data RAVDESS --map calm=neutral

    Example: serlaq report general --protocol cross --test-data my_corpus/
    """
    if protocol not in PROTOCOLS:
        fail(f"--protocol: expected one of {', '.join(PROTOCOLS)}, got {protocol!r}", code=2)
    if protocol == "cross" and data_dir is not None:
        raise ConfigError("--data-dir: only with --protocol split or loso (--protocol cross reads --test-data)")
    if protocol == "cross":  # scoring a .laq: the runtime alone (no torch)
        from serlaq import _native
        from serlaq.cross_corpus import cross_report, find_laq, render_cross_markdown
        from serlaq.io import atomic_write_json, atomic_write_text
        from serlaq.runtime import LaqModel

        # the model scored: a run folder's .laq, a .laq file, or the shipped general model
        given = Path(run_dir)
        if run_dir == _native.GENERAL:
            model_file, default_out = run_dir, Path(f"{_native.GENERAL}-report-cross")
        elif given.is_dir():
            model_file, default_out = str(find_laq(given)), given / "report-cross"
        elif given.is_file():
            model_file, default_out = run_dir, given.with_name(f"{given.stem}-report-cross")
        else:
            raise ConfigError(f"{run_dir}: not found (a run folder, a .laq file or `general`)")
        check_dataset(dataset)
        mapping = parse_label_map(label_map)
        folder = output_folder(out if out is not None else default_out)
        result = cross_report(LaqModel.load(model_file), list(test_data), dataset=dataset, label_map=mapping)
        for row in result["rows"]:
            if "warning" in row:
                typer.echo(f"serlaq: warning: {row['data_dir']}: {row['warning']}", err=True)
        atomic_write_json(folder / "report.json", result, indent=1)
        atomic_write_text(folder / "report.md", render_cross_markdown(result))
        typer.echo((folder / "report.md").read_text(encoding="utf-8").rstrip())
        typer.echo(f"\nwrote {folder}/report.md, report.json")
        return
    require_train_extra("report")
    from serlaq.reports import report as run_report

    cross_only = [name for name, given in (("--test-data", test_data), ("--map", label_map), ("--dataset", dataset != "auto")) if given]
    if cross_only:
        raise ConfigError(f"{cross_only[0]}: only with --protocol cross")
    check_data_dir(data_dir)

    if out is not None:
        output_folder(out)
    folder = run_report(
        Path(run_dir),
        seeds=seeds,
        hl_sweep=hl_sweep,
        qat_rows=qat_rows,
        table3=table3,
        out=out,
        progress=lambda msg: typer.echo(f"report: {msg}", err=True),
        protocol=protocol,
        data_dir=data_dir,
    )
    typer.echo((folder / "report.md").read_text(encoding="utf-8").rstrip())
    typer.echo(f"\nwrote {folder}/report.md, report.json" + (" and the PNG figures" if protocol == "split" else ""))


@app.command()
def serve(
    model: list[str] = typer.Option(..., "--model", help="a model to serve, NAME=PATH (repeat; the first is the default)"),
    host: str = typer.Option("127.0.0.1", help="address to bind"),
    port: int = typer.Option(8000, min=0, max=65535, help="port (0: any free port)"),
    api_key: str | None = typer.Option(None, "--api-key", envvar="SERLAQ_API_KEY", help="require this key on /v1/* and /metrics"),
    cors: list[str] = typer.Option([], "--cors", help="allow cross-origin requests from this origin (repeat; '*' for any)"),
    threads: int = typer.Option(0, min=0, max=SERVER_MAX_THREADS, help=f"native threads (0: one per core; at most {SERVER_MAX_THREADS})"),
    max_body: int | None = typer.Option(None, "--max-body", min=0, max=2**40, help="largest request body in bytes (default 33554432)"),
    max_audio_seconds: float | None = typer.Option(None, "--max-audio-seconds", help="longest audio per file or stream (default 600)"),
    max_files: int | None = typer.Option(None, "--max-files", min=0, max=COUNT_MAX, help="files in one multipart request (default 64)"),
    max_concurrent: int | None = typer.Option(None, "--max-concurrent", min=0, max=COUNT_MAX, help="audio requests worked on at once (default 64)"),
    max_streams: int | None = typer.Option(None, "--max-streams", min=0, max=COUNT_MAX, help="WebSocket streams open at once (default 256)"),
    max_connections: int | None = typer.Option(None, "--max-connections", min=0, max=COUNT_MAX, help="open connections (default 1024)"),
    read_timeout: float | None = typer.Option(None, "--read-timeout", help="seconds to send a request head or body (default 10)"),
    idle_timeout: float | None = typer.Option(None, "--idle-timeout", help="seconds a WebSocket may stay silent (default 10)"),
    max_adapted: int | None = typer.Option(
        None, "--max-adapted", min=0, max=COUNT_MAX,
        help="adapted models POST /v1/adapt?serve=NAME may add, kept in memory until the server stops (default 16; 0: none)",
    ),  # fmt: skip
) -> None:
    """Serve models over HTTP and WebSocket, with a live page at / (microphone or file).

    The same server as `serlaq-rt serve` (Rust, run with the GIL released). Endpoints and
    limits: docs/serve.md. Example: serlaq serve --model emo=model.laq --port 8000
    """
    from serlaq import _native

    models = []
    for arg in model:
        name, sep, path = arg.partition("=")
        if not sep:
            name, path = Path(arg).stem, arg
        if not path:
            fail(f"--model {arg}: no path after '='", code=2)
        models.append((name, str(Path(path).expanduser())))
    try:
        _native.serve(
            models, host, port, api_key=api_key, cors=cors, threads=threads, max_body=max_body,
            max_audio_seconds=max_audio_seconds, max_files=max_files, max_concurrent=max_concurrent,
            max_streams=max_streams, max_connections=max_connections, read_timeout=read_timeout,
            idle_timeout=idle_timeout, max_adapted=max_adapted,
        )
    except ValueError as exc:
        fail(str(exc))


# the formats named in the help are the decoder's own list (one source of truth)
predict.__doc__ = (predict.__doc__ or "").replace("{formats}", _native.FORMATS_HELP)


def main() -> None:
    try:
        app()
    except SerlaqError as exc:
        typer.echo(f"serlaq: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("serlaq: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
