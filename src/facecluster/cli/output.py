"""What every command shares on the way out: one error line and its exit code, JSON on
stdout, the stderr console. Only the CLI prints; the library raises typed errors."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from .. import config
from ..display import safe
from ..errors import EXIT_INTERRUPTED, EXIT_PIPE, EXIT_USAGE, FaceclusterError

F = TypeVar("F", bound=Callable[..., Any])

RESUME = "interrupted: everything up to the last batch is saved; run the same command to resume"


def stderr() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def stdout() -> Any:
    """The console for tables on stdout: a terminal's own width (long cells fold, never
    cut); to a pipe or a file, as wide as the table needs, so that no path is cut short
    (``facecluster models | cat``)."""
    from rich.console import Console

    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=1_000_000)


def fail(err: FaceclusterError) -> typer.Exit:
    print(f"error: {safe(err)}", file=sys.stderr)
    return typer.Exit(err.exit_code)


def interrupted(message: str = RESUME) -> typer.Exit:
    print(message, file=sys.stderr)
    return typer.Exit(EXIT_INTERRUPTED)


def handles_errors(interrupt_message: str = RESUME) -> Callable[[F], F]:
    """The one place a command's errors become output: a FaceclusterError is its one line
    and exit code, Ctrl-C is exit 130 with ``interrupt_message``."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except FaceclusterError as err:
                raise fail(err) from None
            except KeyboardInterrupt:
                raise interrupted(interrupt_message) from None

        return command  # type: ignore[return-value]

    return decorate


def unexpected(exc: BaseException) -> typer.Exit:
    """The one line for an error no command handled (see app._Guarded)."""
    import errno
    import sqlite3

    from ..dbfile import disk_full, explain, last_opened

    if config.debug():
        import traceback

        traceback.print_exception(exc)
    if isinstance(exc, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return typer.Exit(EXIT_INTERRUPTED)
    if isinstance(exc, BrokenPipeError):
        return closed_pipe()
    if isinstance(exc, FaceclusterError):
        return fail(exc)
    if isinstance(exc, sqlite3.Error):
        return fail(explain(exc, last_opened()))
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return fail(disk_full(exc.filename or last_opened() or "."))
    if isinstance(exc, OSError):
        target = f": {exc.filename}" if exc.filename else ""
        return fail(FaceclusterError(f"{exc.strerror or exc}{target}"))
    if isinstance(exc, MemoryError):
        return fail(FaceclusterError("out of memory; try a smaller --batch-size or fewer faces"))
    first = str(exc).splitlines()[0][:200] if str(exc) else ""
    print(
        f"error: internal error: {type(exc).__name__}: {safe(first)} (a bug in facecluster; "
        "FACECLUSTER_DEBUG=1 shows where, please report it)",
        file=sys.stderr,
    )
    return typer.Exit(EXIT_USAGE)


def closed_pipe() -> typer.Exit:
    """``facecluster people | head -3``: the reader left; stop without a word, as ``yes |
    head`` does. What is still buffered for stdout goes nowhere (no second error at exit)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real stdout (a test runner's): nothing to redirect
        pass
    return typer.Exit(EXIT_PIPE)


def emit_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def say(as_json: bool, text: str, obj: object) -> None:
    """``text`` for a person, or ``obj`` as JSON."""
    if as_json:
        emit_json(obj)
    elif text:
        print(text)
