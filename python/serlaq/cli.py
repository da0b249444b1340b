"""The `serlaq` command line: each command is a thin call into the Python API.

Heavy imports (torch, lightning) happen inside the commands so `serlaq --help` is quick.
Every `SerlaqError` is printed as one line on stderr with exit code 1, never a traceback.
"""

from __future__ import annotations

import sys

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
