"""`scan`: index every face of a photo tree; its progress bar, summary and profile."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .. import config
from ..display import plural, safe
from ..encoders import AUTO
from ..errors import EXIT_FAILED
from .app import app
from .options import Shared, shared
from .output import emit_json, handles_errors, stderr, stdout

if TYPE_CHECKING:
    from ..api import FaceIndex
    from ..records import ScanProgress, ScanStats


class Engine(StrEnum):
    local = "local"
    ray = "ray"


@app.command()
@handles_errors()
@shared("db", "model", "weights", "device", "detector", "as_json", "quiet")
def scan(
    paths: Annotated[
        list[Path], typer.Argument(help="Photo folders or files.", show_default=False)
    ],
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
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed",
            help="Try again the photos that failed at an earlier scan and have not changed "
            "since (same size and time); without it they are counted, not read.",
        ),
    ] = False,
    strict: Annotated[
        bool, typer.Option(help="Exit 1 when any photo failed or a folder could not be read.")
    ] = False,
    engine: Annotated[
        Engine,
        typer.Option(
            help="Where photos are read and the models run: here (local) or on a Ray "
            "cluster (ray; needs the 'ray' extra, and the photos at the same paths on every "
            "node). The database is written here either way."
        ),
    ] = Engine.local,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="The Ray cluster for --engine ray: auto (the one running here), "
            "HOST:PORT or ray://HOST:10001 [default: a Ray started for this scan].",
            show_default=False,
        ),
    ] = None,
    profile: Annotated[
        bool,
        typer.Option(
            help="Print where the time went: read, decode, each detection stage, align, "
            "embed, database (--json always has it under 'timings')."
        ),
    ] = False,
    *,
    opts: Shared,
) -> None:
    """Detect, align and embed every face under PATHS and cache them.

    A second scan only reads new or changed photos; moved or renamed photos keep their
    faces; deleted photos are forgotten, but folders that cannot be read (or an empty
    mount point) keep theirs. Names and corrections survive every re-scan. Broken files
    are listed, never fatal (exit 0, or 1 with --strict); a file that failed is not
    read again until it changes (or --retry-failed). Ctrl-C is safe: the next scan
    resumes.
    """
    from ..api import FaceIndex, check_paths

    check_paths(paths)  # before the database is made
    quiet, as_json = opts.quiet, opts.as_json
    with FaceIndex(
        opts.db,
        model=opts.model,
        weights=opts.weights,
        device=opts.device,
        detector=opts.detector,
        check=True,
    ) as index:
        index.cache.lock()  # before anything slow: a second scan is refused at once
        index.identity  # noqa: B018  (a missing model file is an error before any output)
        detector = index.detector  # a detector the database refuses: before any output
        if not quiet:
            announce_model(index)
            stderr().print(f"detector: {detector}", markup=False)
        with progress_bar(not (quiet or as_json)) as bar:
            stats = index.scan(
                paths,
                batch_size=batch_size,
                workers=workers,
                min_face=min_face,
                follow_symlinks=follow_symlinks,
                rescan=rescan,
                retry_failed=retry_failed,
                progress=bar,
                engine=engine.value,
                ray_address=ray_address,
            )
    if as_json:
        emit_json(stats.as_dict())
    elif not quiet:
        render_summary(stats)
        if profile:
            render_profile(stats)
    if strict and (stats.photos_failed or stats.photos_failed_unchanged or stats.unavailable):
        raise typer.Exit(EXIT_FAILED)


def announce_model(index: FaceIndex) -> None:
    """The model in use; when 'auto' fell back, why, the first time for this database."""
    note = ""
    if index.asked == "auto" and index.spec.name != AUTO[0]:
        why = index.fallback_notice()
        note = f" (fallback: {why}; said once per database)" if why else " (fallback)"
    stderr().print(f"model: {safe(index.model)}, {index.spec.dim}-D{note}", markup=False)


@contextlib.contextmanager
def progress_bar(
    show: bool, console: Any = None
) -> Iterator[Callable[[ScanProgress], None] | None]:
    """A scan progress bar on stderr when it is a terminal and ``show``; else None."""
    console = console or stderr()
    if not (show and console.is_terminal):
        yield None
        return
    with ScanBar(console) as bar:
        yield bar


class ScanBar:
    """A rich progress bar fed by the indexer's progress callback: a spinner and what is
    happening ("looking for photos", "loading models", "scanning"), then photo by photo."""

    def __init__(self, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[faces]}"),
            TextColumn("{task.fields[failed]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task(
            "looking for photos", total=None, rate="", faces="", failed=""
        )

    def __enter__(self) -> ScanBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, p: ScanProgress) -> None:
        task = self.progress.tasks[0]
        speed = task.speed if p.stage == "scanning" else None
        self.progress.update(
            self.task,
            description=p.stage,
            total=p.total,
            completed=p.done,
            rate=f"{speed:.1f} photos/s" if speed else "",
            faces=plural(p.faces, "face") if p.done else "",
            failed=f"{p.failed} failed" if p.failed else "",
        )


def render_summary(stats: ScanStats, max_failures: int = 20) -> None:
    from rich.table import Table

    title = (
        f"scan: {safe(stats.model)}{f' on {stats.device}' if stats.device else ''}, "
        f"{stats.seconds:.1f} s"
    )
    table = Table(title=title, show_header=False, min_width=len(title) + 4)
    table.add_column(justify="left")
    table.add_column(justify="right")
    rows = [
        ("photos found", stats.photos_total),
        ("new", stats.photos_new),
        ("changed", stats.photos_changed),
        ("unchanged", stats.photos_unchanged),
        ("moved or renamed", stats.photos_moved),
        ("removed", stats.photos_removed),
        ("kept (folder unavailable)", stats.photos_unavailable),
        ("re-embedded for this model", stats.photos_reembedded),
        ("failed", stats.photos_failed),
        ("failed (unchanged since last scan)", stats.photos_failed_unchanged),
        ("without a face", stats.no_face),
        ("faces found now", stats.faces_new),
        ("faces in the index", stats.faces),
        ("faces named in XMP", stats.xmp_faces_named),
        ("XMP names without a face", stats.xmp_regions_alone),
        (f"named persons carried over from {stats.persons_carried_from}", stats.persons_carried),
    ]
    for label, value in rows:
        always = ("photos found", "faces in the index")
        if value or label in always or (label == "failed" and not stats.photos_failed_unchanged):
            table.add_row(label, str(value))
    stdout().print(table)
    err = stderr()
    for u in stats.unavailable[:max_failures]:
        err.print(f"warning: {safe(u.path)}: {safe(u.error)}", markup=False)
    if stats.photos_unavailable:
        err.print(
            f"warning: {stats.photos_unavailable} indexed photos under these folders were kept, "
            "not removed; they are checked again at the next scan",
            markup=False,
        )
    for w in stats.xmp_warnings[:max_failures]:
        err.print(f"warning: {safe(w.path)}: {safe(w.error)}", markup=False)
    if stats.photos_failed_unchanged:
        n = stats.photos_failed_unchanged
        err.print(
            f"{plural(n, 'photo')} that failed before and did not change "
            f"{'was' if n == 1 else 'were'} not read again: --retry-failed tries "
            f"{'it' if n == 1 else 'them'}",
            markup=False,
        )
    if stats.failures:
        for f in stats.failures[:max_failures]:
            err.print(f"failed: {safe(f.path)}: {safe(f.error)}", markup=False)
        if len(stats.failures) > max_failures:
            err.print(f"... and {len(stats.failures) - max_failures} more (--json lists all)")
    if stats.photos_total and stats.seconds > 0:
        sys.stdout.flush()


def render_profile(stats: ScanStats) -> None:
    """The stage timings of a scan, slowest first, with their share of the wall time."""
    from rich.table import Table

    table = Table(title=f"where the time went ({stats.seconds:.1f} s wall)")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("of wall", justify="right")
    table.add_column("per photo", justify="right")
    photos = max(1, stats.photos_new + stats.photos_changed + stats.photos_reembedded)
    wall = max(stats.seconds, 1e-9)
    for stage, sec in sorted(stats.timings.items(), key=lambda kv: -kv[1]):
        table.add_row(stage, f"{sec:.2f}", f"{sec / wall:.0%}", f"{sec / photos * 1000:.0f} ms")
    console = stdout()
    console.print(table)
    console.print(
        "(threads) stages run in the decode pool, overlapping the model stages; "
        "'wait for decode' is the time the models sat idle waiting for them."
    )
    if "wait for detection" in stats.timings:
        console.print(
            "detect.yunet runs in its own thread, beside the encoder; 'wait for detection' "
            "is the time the encoder sat idle waiting for it."
        )
