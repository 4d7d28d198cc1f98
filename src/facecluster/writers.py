"""Output writers of ``group``: the registry, the options every writer gets, and the
choice of outputs from the command line (``--out``, ``--report``, ``--html`` and the
generic ``--write NAME=PATH``).

A writer is ``write(grouping, target, options) -> summary``: it writes ``grouping``
(grouping.Grouping) to the path ``target`` and returns a small dict, ``{"path": str}``
plus, for a folder facecluster manages, ``"kept": (Path, ...)`` (what it found there and
left alone). Before any work, each target is checked (``check(target, photos, protect)``
raises OutputError) and checked against the others (export.check_output_targets).

Adding a writer: a module with its ``write`` function and one
``WRITERS.register(WriterSpec(...))`` line below; ``group --write NAME=PATH`` runs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import FaceclusterError
from .registry import Ref, Registry, load_ref

if TYPE_CHECKING:
    from .grouping import Grouping

# How person folders hold the photos (the folders writer, `group --layout`).
LAYOUTS = ("symlink", "hardlink", "copy")


@dataclass(frozen=True)
class WriteOptions:
    """What every writer is given besides the grouping and its target."""

    layout: str = LAYOUTS[0]
    protect: tuple[Path, ...] = ()  # the database and its side files: never written or held
    link_base: str | None = None  # the page's links to the photos (html.SheetOptions)
    full_paths: bool = False  # the page's tooltips show absolute paths


@dataclass(frozen=True)
class WriterSpec:
    """An output writer. ``kind``: "file", or "folder" for one facecluster manages
    (outputs.py). ``check``: refuses a target before any work; without one, a folder gets
    outputs.check_folder and a file must not exist yet. ``flag``: the writer's own option
    of ``group`` (built-ins); every writer is also ``--write NAME=PATH``."""

    name: str
    help: str
    write: Ref
    kind: str = "file"
    check: Ref = ""
    flag: str = ""

    @property
    def option(self) -> str:
        """How messages name it: its flag, or ``--write NAME``."""
        return self.flag or f"--write {self.name}"

    @property
    def key(self) -> str:
        """Its key in the summary of ``group`` (``--json``): the flag's name, or NAME."""
        return self.flag.removeprefix("--") if self.flag else self.name


WRITERS: Registry[WriterSpec] = Registry("output writer")
WRITERS.register(
    WriterSpec(
        "folders",
        "one folder per person with links (or copies) of the photos",
        "facecluster.export:folders_output",
        kind="folder",
        flag="--out",
    )
)
WRITERS.register(
    WriterSpec(
        "report",
        "the JSON report (docs/report-schema.md)",
        "facecluster.export:report_output",
        check="facecluster.report:check_report_path",
        flag="--report",
    )
)
WRITERS.register(
    WriterSpec(
        "html",
        "the people page: everyone's faces, suggested merges, correction commands",
        "facecluster.export:html_output",
        kind="folder",
        flag="--html",
    )
)


def output_targets(
    given: Mapping[str, Path | None], writes: Sequence[str] = ()
) -> list[tuple[WriterSpec, Path]]:
    """The outputs to write, in registry order: ``given`` maps writer names to the paths of
    their own options (None: not given), ``writes`` holds ``--write NAME=PATH`` items."""
    chosen = {name: Path(p) for name, p in given.items() if p is not None}
    for item in writes:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise FaceclusterError(f"--write wants NAME=PATH, got {item!r}")
        spec = WRITERS.get(name)
        if name in chosen:
            raise FaceclusterError(f"output {name!r} is given twice ({spec.option} and --write)")
        chosen[name] = Path(path)
    for name in chosen:
        WRITERS.get(name)
    return [(spec, chosen[spec.name]) for spec in WRITERS if spec.name in chosen]


def write_outputs(
    grouping: Grouping, targets: Sequence[tuple[WriterSpec, Path]], options: WriteOptions
) -> tuple[dict[str, Any], list[Path] | None]:
    """Run each writer in turn (check the targets first: export.check_output_targets).
    Returns the summary entries (``WriterSpec.key`` -> path written) and what the folders
    facecluster manages held that it kept (None when no such writer ran)."""
    summary: dict[str, Any] = {}
    kept: list[Path] | None = None
    for spec, target in targets:
        written = load_ref(spec.write)(grouping, target, options)
        summary[spec.key] = written["path"]
        if "kept" in written:
            kept = [*(kept or []), *written["kept"]]
    return summary, kept
