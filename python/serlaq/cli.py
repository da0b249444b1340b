"""The `serlaq` command line: each command is a thin call into the Python API.

Heavy imports (torch, lightning) happen inside the commands so `serlaq --help` is quick.
Every `SerlaqError` is printed as one line on stderr with exit code 1, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from serlaq.errors import SerlaqError

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


# --- commands (each body delegates to a module of the package) -----------------


@app.command()
def predict(
    model: Path = typer.Argument(..., help="packed model file (.laq)"),
    inputs: list[Path] = typer.Argument(..., help="audio files and/or directories (searched recursively)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON array of results instead of lines"),
    top_k: int | None = typer.Option(None, "--top-k", min=1, help="also show the K most probable labels"),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="processes for decoding + features (default: all cores for big batches)"
    ),
) -> None:
    """Predict the emotion of audio files: one line per file (path, label, confidence).

    Any sample rate and channel count works (audio is downmixed and resampled to the model's rate). A file that cannot be read gets one error line on stderr; the others are still predicted and the exit code is 1.

    Example: serlaq predict model.laq clip.wav recordings/ --top-k 3
    """
    import json

    from serlaq.inference import predict_inputs, result_line
    from serlaq.runtime import LaqModel

    laq = LaqModel.load(model)
    failed = 0
    collected = []
    for res in predict_inputs(laq, inputs, workers=workers, top_k=top_k):
        if not res.ok:
            failed += 1
            typer.echo(f"serlaq: error: {res.error}", err=True)
        if as_json:
            collected.append(res.to_dict())
        elif res.ok:
            typer.echo(result_line(res))
    if as_json:
        typer.echo(json.dumps(collected, indent=2))
    if failed:
        raise typer.Exit(1)


@app.command()
def evaluate(
    model: Path = typer.Argument(..., help="packed model file (.laq)"),
    data_dir: Path = typer.Option(..., "--data-dir", help="labelled corpus root"),
    dataset: str = typer.Option(
        "auto", "--dataset", help="corpus layout: tess | emodb | savee | folder | csv | auto"
    ),
    manifest: Path | None = typer.Option(None, "--manifest", help="CSV manifest (path,label[,speaker]) for --dataset csv"),
    out: Path | None = typer.Option(
        None, "--out", help="folder for evaluation.json and confusion_matrix.png (default: ./<model>-eval)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    workers: int | None = typer.Option(None, "--workers", min=1, help="processes for decoding + features"),
) -> None:
    """Score a model on a labelled corpus: accuracy, macro-F1, per-class table, confusion matrix PNG.

    Clips with labels the model does not know are left out and counted in the report. Unreadable files get one error line each on stderr, are left out of the scores, and make the exit code 1.

    Example: serlaq evaluate model.laq --data-dir data/emodb --dataset emodb --out eval/
    """
    import json

    from serlaq.evaluation import evaluate_corpus, write_report
    from serlaq.runtime import LaqModel

    laq = LaqModel.load(model)
    report = evaluate_corpus(laq, data_dir, dataset=dataset, manifest=manifest, workers=workers)
    for failure in report.failures:
        typer.echo(f"serlaq: error: {failure.error}", err=True)
    written = write_report(report, out if out is not None else Path(f"{model.stem}-eval"))
    if as_json:
        typer.echo(json.dumps({**report.to_dict(), "written": {k: str(v) for k, v in written.items()}}, indent=2))
    else:
        typer.echo(report.format_text())
        typer.echo("")
        typer.echo("wrote " + ", ".join(str(p) for p in written.values()))
    if report.failures:
        raise typer.Exit(1)


@app.command()
def info(
    model: Path = typer.Argument(..., help="packed model file (.laq)"),
    as_json: bool = typer.Option(False, "--json", help="print everything as JSON"),
) -> None:
    """Show what a .laq file holds: labels, features, per-layer shape/bits/quantizer/size, average bits, size vs fp32.

    Example: serlaq info model.laq --json
    """
    import json

    from serlaq.runtime import LaqModel

    laq = LaqModel.load(model)
    typer.echo(json.dumps(laq.summary(), indent=2) if as_json else laq.describe())


@app.command()
def fit(
    config: Path | None = typer.Option(None, "--config", "-c", help="run config (YAML); see configs/"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="corpus root (overrides data.data_dir)"),
    seed: int | None = typer.Option(None, "--seed", help="seed of the split, init and shuffling (overrides seed)"),
    out: Path | None = typer.Option(None, "--out", help="run folder (default: <out_dir>/<name>, name = config file stem)"),
    resume: bool = typer.Option(False, "--resume", help="continue the run folder's last.ckpt"),
    overrides: list[str] = typer.Option(
        [], "--set", metavar="KEY=VALUE", help="override any config key, e.g. --set train.max_epochs=50 (repeatable)"
    ),
) -> None:
    """Train the MLP on a corpus and evaluate it: writes best.ckpt, last.ckpt, metrics.json, confusion_matrix.png, logs/metrics.csv and the resolved config.yaml into the run folder.

    Example: serlaq fit --config configs/emodb.yaml --data-dir data/emodb --seed 1 --set model.hidden=2HL

    Ctrl-C keeps the last finished epoch; add --resume to the same command to continue (or: serlaq fit --resume --out RUN_DIR).
    """
    from serlaq.config import command_config

    run_config = command_config(config, data_dir=data_dir, seed=seed, out=out, sets=overrides, resume=resume)
    from serlaq.training import CompressionError, FitInterrupted, fit as run_fit, format_summary

    try:
        result = run_fit(run_config, resume=resume)
    except FitInterrupted as exc:
        typer.echo(f"serlaq: {exc}", err=True)
        raise typer.Exit(130) from None
    except CompressionError as exc:  # training is complete and written: show it, then the failure
        typer.echo(format_summary(exc.result))
        fail(str(exc))
    if result is not None:
        typer.echo(format_summary(result))


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
) -> None:
    """Compress a trained checkpoint with layer-wise adaptive quantization into a packed .laq model.

    Rebuilds the checkpoint's data (same split) from the feature cache. The default mode (qat) runs a budget search: the bit plan within 1.1 average bits (--budget-bits / --budget-kb) whose predictions agree most with the fp32 model on train + val, with the range-search quantizer, then 30 epochs of quantization-aware fine-tuning at that plan. --mode paper is the paper's procedure: layers ranked by importance (eq. 1-4), each layer's bit-width searched on validation accuracy within the margin (eq. 5), no fine-tuning. Writes the .laq file plus a JSON summary (laq.json) with the search trace.

    Example: serlaq compress --checkpoint runs/emodb/model.ckpt --mode paper --margin 0.01 --weights 0.11 0.01 0.88
    """
    import json

    from serlaq.laq.compress import compress as run_compress
    from serlaq.laq.compress import format_outcome, summary_path

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
    )
    target = out if out is not None else checkpoint.parent / outcome.settings.out
    if as_json:
        typer.echo(summary_path(target).read_text(encoding="utf-8").rstrip())
    else:
        typer.echo(format_outcome(outcome, target))


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="a run folder of serlaq fit (holds model.ckpt and config.yaml)"),
    seeds: int = typer.Option(1, "--seeds", min=1, help="seeds of the same config (the run's seed first; others are trained): mean ± sd"),
    hl_sweep: bool = typer.Option(False, "--hl-sweep", help="also train and compare the Table-2 variants 2HL..9HL (slower)"),
    qat_rows: bool = typer.Option(True, "--qat-rows/--no-qat-rows", help="include the QAT rows and the fp32 + extra epochs control"),
    table3: bool = typer.Option(True, "--table3/--no-table3", help="include the importance-weight sweep (Table 3)"),
    out: Path | None = typer.Option(None, "--out", help="report folder (default: RUN_DIR/report)"),
) -> None:
    """Write the paper's tables and figures for a trained run: Table 4 (fp32, fixed 8..1 bits, LAQ, and QAT rows), Table 3 (importance weights), accuracy-vs-bits, per-layer bits and confusion-matrix plots, as Markdown + JSON + PNG.

    Example: serlaq report runs/emodb --seeds 5
    """
    from serlaq.reports import report as run_report

    folder = run_report(
        run_dir,
        seeds=seeds,
        hl_sweep=hl_sweep,
        qat_rows=qat_rows,
        table3=table3,
        out=out,
        progress=lambda msg: typer.echo(f"report: {msg}", err=True),
    )
    typer.echo((folder / "report.md").read_text(encoding="utf-8").rstrip())
    typer.echo(f"\nwrote {folder}/report.md, report.json and the PNG figures")


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
