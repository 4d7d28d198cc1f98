"""Command-line interface: parses options, calls the core, renders output, maps errors to
exit codes. Heavy libraries are imported inside commands so ``--help`` stays instant."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from . import __version__, config
from .display import safe
from .encoders import AUTO, ENCODERS
from .errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, FaceclusterError


class _Guarded(TyperGroup):
    """The last net: whatever a command let through (a SQLite error, an OSError, a bug)
    ends as one "error: ..." line and exit 2, never a traceback. FACECLUSTER_DEBUG=1
    prints the traceback first."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException, SystemExit):
            raise
        except BaseException as exc:
            raise _unexpected(exc) from None


app = typer.Typer(
    cls=_Guarded,
    name="facecluster",
    help="Turn a photo library into people: detect, align and embed every face (FaceNet), "
    "cache the embeddings, and group them by person.\n\n"
    "Distances are squared L2 between unit-length embeddings, as in the FaceNet paper "
    "(0 = identical, 4 = opposite).\n\n"
    "Exit codes: 0 ok, 1 a check said no (verify, --strict), 2 an error (one line "
    "'error: ...'; FACECLUSTER_DEBUG=1 adds the traceback), 130 interrupted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class Device(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help=f"Face database (default: ${config.ENV_DB} or $XDG_DATA_HOME/facecluster/faces.db).",
        show_default=False,
    ),
]
ModelOption = Annotated[
    str,
    typer.Option(
        help=f"Encoder: auto, {', '.join(ENCODERS.names())}, or one made by "
        f"'facecluster train' (BASE+NAME or a .pt file). 'auto' uses {AUTO[0]} when "
        f"its weights are present, else {AUTO[1]} (offline)."
    ),
]
WeightsOption = Annotated[
    Path | None,
    typer.Option(help=f"FaceNet weights file (or ${config.ENV_WEIGHTS}).", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]


def _stderr() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(err: FaceclusterError) -> typer.Exit:
    print(f"error: {safe(err)}", file=sys.stderr)
    return typer.Exit(err.exit_code)


def _unexpected(exc: BaseException) -> typer.Exit:
    """The one line for an error no command handled (see _Guarded)."""
    import errno
    import sqlite3

    from .dbfile import disk_full, explain, last_opened

    if config.debug():
        import traceback

        traceback.print_exception(exc)
    if isinstance(exc, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return typer.Exit(EXIT_INTERRUPTED)
    if isinstance(exc, FaceclusterError):
        return _fail(exc)
    if isinstance(exc, sqlite3.Error):
        return _fail(explain(exc, last_opened()))
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return _fail(disk_full(exc.filename or last_opened() or "."))
    if isinstance(exc, OSError):
        target = f": {exc.filename}" if exc.filename else ""
        return _fail(FaceclusterError(f"{exc.strerror or exc}{target}"))
    if isinstance(exc, MemoryError):
        return _fail(FaceclusterError("out of memory; try a smaller --batch-size or fewer faces"))
    first = str(exc).splitlines()[0][:200] if str(exc) else ""
    print(
        f"error: internal error: {type(exc).__name__}: {safe(first)} (a bug in facecluster; "
        "FACECLUSTER_DEBUG=1 shows where, please report it)",
        file=sys.stderr,
    )
    return typer.Exit(EXIT_USAGE)


def _interrupted() -> typer.Exit:
    print(
        "interrupted: everything up to the last batch is saved; run the same command to resume",
        file=sys.stderr,
    )
    return typer.Exit(EXIT_INTERRUPTED)


def _emit_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def version_callback(value: bool) -> None:
    if value:
        print(f"facecluster {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
) -> None:
    pass


@app.command()
def scan(
    paths: Annotated[
        list[Path], typer.Argument(help="Photo folders or files.", show_default=False)
    ],
    db: DbOption = None,
    model: ModelOption = "auto",
    weights: WeightsOption = None,
    device: Annotated[Device, typer.Option(help="Where the networks run.")] = Device.auto,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Photos per model batch and per database commit.")
    ] = config.DEFAULT_BATCH_SIZE,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Decoding threads [default: cores, 2-8].", show_default=False),
    ] = None,
    min_face: Annotated[
        int, typer.Option(min=1, help="Smallest face to keep: its shorter side in photo pixels.")
    ] = config.DEFAULT_MIN_FACE,
    follow_symlinks: Annotated[bool, typer.Option(help="Follow symbolic links.")] = False,
    rescan: Annotated[bool, typer.Option(help="Re-read every photo, changed or not.")] = False,
    strict: Annotated[
        bool, typer.Option(help="Exit 1 when any photo failed or a folder could not be read.")
    ] = False,
    profile: Annotated[
        bool,
        typer.Option(
            help="Print where the time went: read, decode, each detection stage, align, "
            "embed, database (--json always has it under 'timings')."
        ),
    ] = False,
    as_json: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Detect, align and embed every face under PATHS and cache them.

    A second scan only reads new or changed photos; moved or renamed photos keep their
    faces; deleted photos are forgotten, but folders that cannot be read (or an empty
    mount point) keep theirs. Names and corrections survive every re-scan. Broken files
    are listed, never fatal (exit 0, or 1 with --strict). Ctrl-C is safe: the next scan
    resumes.
    """
    from .scan_cli import run_scan

    try:
        stats = run_scan(
            paths,
            db=db,
            model=model,
            weights=weights,
            device=device.value,
            batch_size=batch_size,
            workers=workers,
            min_face=min_face,
            follow_symlinks=follow_symlinks,
            rescan=rescan,
            show_progress=not (quiet or as_json),
            quiet=quiet,
        )
    except FaceclusterError as err:
        raise _fail(err) from None
    except KeyboardInterrupt:
        raise _interrupted() from None
    if as_json:
        _emit_json(stats.as_dict())
    elif not quiet:
        from .scan_cli import render_profile, render_summary

        render_summary(stats)
        if profile:
            render_profile(stats)
    if strict and (stats.photos_failed or stats.unavailable):
        raise typer.Exit(EXIT_FAILED)


@app.command()
def models(
    weights: Annotated[
        Path | None, typer.Option(help="FaceNet weights file to check.", show_default=False)
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List the encoders: embedding size, default threshold, whether each works offline."""
    from .encoders import available_encoders

    rows = [
        {
            "name": e.spec.name,
            "dim": e.spec.dim,
            "default_threshold": e.spec.default_threshold,
            "available": e.available,
            "auto": e.auto,
            "weights": e.location,
            "description": e.spec.description,
        }
        for e in available_encoders(weights)
    ]
    if as_json:
        _emit_json(rows)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Encoders (threshold: squared L2 between unit embeddings)")
    for col in ("model", "dim", "threshold", "available", "weights / notes"):
        table.add_column(col)
    for r in rows:
        mark = "yes" if r["available"] else "no"
        name = f"{safe(r['name'])} (auto)" if r["auto"] else safe(r["name"])
        table.add_row(
            Text(name),
            str(r["dim"]),
            f"{r['default_threshold']:g}",
            mark,
            Text(f"{safe(r['weights'])}\n{safe(r['description'])}"),
        )
    Console().print(table)


def main() -> None:
    # Decoding threads run beside torch's own threads. With OpenMP's default busy-waiting,
    # the two fight for the cores: MTCNN on a 1 MP photo took 4.5 s instead of 0.6 s on a
    # 2-core machine with one core busy. Set before torch is imported; a user's own
    # setting wins. (api.load_models does the same for library users.)
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app(prog_name="facecluster")


# Commands defined in their own modules register themselves on `app` when imported.
from . import cli_group, cli_search, cli_train  # noqa: E402, F401
