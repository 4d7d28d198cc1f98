"""The Typer application: the root command, the last-resort error net, the entry point.
Commands live in their own modules of this package and register themselves on ``app``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .. import __version__
from .output import unexpected


class _Guarded(TyperGroup):
    """The last net: whatever a command let through (a SQLite error, an OSError, a bug)
    ends as one "error: ..." line and exit 2, never a traceback. FACECLUSTER_DEBUG=1
    prints the traceback first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from .conventions import apply

        apply(self)  # environment variables, usage names, examples: for every command

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException, SystemExit):
            raise
        except BaseException as exc:
            raise unexpected(exc) from None


app = typer.Typer(
    cls=_Guarded,
    name="facecluster",
    help="Turn a photo library into people: detect, align and embed every face (FaceNet), "
    "cache the embeddings, and group them by person.\n\n"
    "Distances are squared L2 between unit-length embeddings, as in the FaceNet paper "
    "(0 = identical, 4 = opposite).\n\n"
    "Exit codes: 0 ok, 1 a check said no (verify, --strict), 2 an error (one line "
    "'error: ...'; FACECLUSTER_DEBUG=1 adds the traceback), 130 interrupted.\n\n"
    "Every option can be set in the environment: FACECLUSTER_<OPTION> for every command, "
    "FACECLUSTER_<COMMAND>_<OPTION> for one (FACECLUSTER_DB=~/faces.db, "
    "FACECLUSTER_GROUP_THRESHOLD=0.9); an option on the command line wins. "
    "--install-completion adds tab completion to your shell.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        print(f"facecluster {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    pass


def main() -> None:
    # Decoding threads run beside torch's own threads. With OpenMP's default busy-waiting,
    # the two fight for the cores: MTCNN on a 1 MP photo took 4.5 s instead of 0.6 s on a
    # 2-core machine with one core busy. Set before torch is imported; a user's own
    # setting wins. (api.load_models does the same for library users.)
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app(prog_name="facecluster")
