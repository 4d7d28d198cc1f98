"""Rendering for `facecluster scan`: model loading messages, progress bar, summary table."""

from __future__ import annotations

import errno
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import config
from .display import safe
from .errors import DiskFull, FaceclusterError
from .records import ScanProgress, ScanStats

if TYPE_CHECKING:
    from .encoders import EncoderSpec
    from .labelled import LabelledFaces


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def run_scan(
    paths: Sequence[Path],
    *,
    db: Path | None,
    model: str | EncoderSpec,
    weights: Path | None,
    device: str,
    batch_size: int,
    workers: int | None,
    min_face: int,
    follow_symlinks: bool,
    rescan: bool,
    show_progress: bool,
    quiet: bool,
) -> ScanStats:
    from .cache import FaceCache
    from .detect import FaceDetector, load_detector, resolve_device
    from .encoders import encoder_identity, encoder_spec, load_encoder
    from .encoders.facenet_paths import missing_message
    from .indexer import Indexer

    for p in paths:
        if not p.exists():
            raise FaceclusterError(f"no such file or directory: {p}")
    console = _console()
    spec = encoder_spec(model, weights)
    name = spec.name
    with FaceCache(db or config.default_db_path(), check=True) as cache:
        cache.lock()  # before anything slow: a second scan is refused at once
        identity = encoder_identity(spec, weights)
        if not quiet:
            note = ""
            if model == "auto" and name == "dlib-resnet":
                note = f" (offline fallback; {missing_message('facenet-vggface2', 'vggface2')})"
            console.print(f"model: {safe(name)}, {spec.dim}-D{note}", markup=False)

        def load_models() -> tuple[FaceDetector, Any]:
            dev = resolve_device(device)
            _check_device(dev)
            return load_detector(device=dev), load_encoder(spec, weights, dev)

        indexer = Indexer(
            cache,
            identity,
            load_models,
            batch_size=batch_size,
            workers=workers,
            min_face=min_face,
            follow_symlinks=follow_symlinks,
            rescan=rescan,
        )
        saved = _Saved()
        indexer.progress = saved
        try:
            if show_progress and console.is_terminal:
                with _progress_bar(console) as bar:
                    saved.then = bar
                    return indexer.scan(paths)
            return indexer.scan(paths)
        except (DiskFull, OSError, sqlite3.Error) as exc:
            from .dbfile import disk_full, explain

            full = isinstance(exc, DiskFull) or (
                isinstance(exc, OSError) and exc.errno == errno.ENOSPC
            )
            if isinstance(exc, sqlite3.Error):
                err = explain(exc, cache.path)
                full = isinstance(err, DiskFull)
                if not full:
                    raise err from exc
            if not full:
                raise
            where = getattr(exc, "filename", None) or cache.path
            raise disk_full(where, saved.note()) from exc


class _Saved:
    """Counts the photos committed so far (the indexer reports after each batch), for the
    disk-full message; passes the progress on to the bar."""

    def __init__(self) -> None:
        self.last: ScanProgress | None = None
        self.then: Any = None

    def __call__(self, p: ScanProgress) -> None:
        self.last = p
        if self.then is not None:
            self.then(p)

    def note(self) -> str:
        done, total = (self.last.done, self.last.total) if self.last else (0, 0)
        return (
            f"; {done} of the {total} photos this scan had to read were saved, and the next "
            "scan resumes after them"
        )


def scan_labelled(
    directory: Path,
    db: Path,
    model: str | EncoderSpec,
    weights: Path | None,
    device: str,
    show: bool,
) -> tuple[LabelledFaces, dict[str, object]]:
    """Scan a labelled folder (one sub-folder per identity) into ``db`` with ``model``,
    reusing the cache, and return its labelled faces and the encoder identity (for
    `eval` and `train`)."""
    from .cache import FaceCache
    from .encoders import encoder_identity
    from .labelled import load_labelled

    run_scan(
        [directory],
        db=db,
        model=model,
        weights=weights,
        device=device,
        batch_size=config.DEFAULT_BATCH_SIZE,
        workers=None,
        min_face=config.DEFAULT_MIN_FACE,
        follow_symlinks=False,
        rescan=False,
        show_progress=show,
        quiet=not show,
    )
    identity = encoder_identity(model, weights)
    with FaceCache(db) as cache:
        enc_id = cache.encoder_id(identity, register=False)
        return load_labelled(cache, enc_id or 0, directory.resolve()), identity


def _check_device(dev: str) -> None:
    import torch

    if dev == "cuda" and not torch.cuda.is_available():
        raise FaceclusterError("--device cuda: no CUDA GPU is available")
    if dev == "mps" and not torch.backends.mps.is_available():
        raise FaceclusterError("--device mps: Apple MPS is not available")


class _progress_bar:
    """A rich progress bar fed by the indexer's progress callback."""

    def __init__(self, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("scanning"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} photos/s"),
            TextColumn("{task.fields[faces]} faces"),
            TextColumn("{task.fields[failed]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("scan", total=None, rate="-", faces=0, failed="")

    def __enter__(self) -> _progress_bar:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def __call__(self, p: ScanProgress) -> None:
        task = self._progress.tasks[0]
        elapsed = task.elapsed or 0.0
        rate = f"{p.done / elapsed:.1f}" if elapsed > 0 and p.done else "-"
        failed = f"{p.failed} failed" if p.failed else ""
        self._progress.update(
            self._task, total=p.total, completed=p.done, rate=rate, faces=p.faces, failed=failed
        )


def render_summary(stats: ScanStats, max_failures: int = 20) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"scan: {safe(stats.model)}{f' on {stats.device}' if stats.device else ''}, "
        f"{stats.seconds:.1f} s",
        show_header=False,
    )
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
        ("without a face", stats.no_face),
        ("faces found now", stats.faces_new),
        ("faces in the index", stats.faces),
    ]
    for label, value in rows:
        if value or label in ("photos found", "faces in the index", "failed"):
            table.add_row(label, str(value))
    Console().print(table)
    err = _console()
    for u in stats.unavailable[:max_failures]:
        err.print(f"warning: {safe(u.path)}: {safe(u.error)}", markup=False)
    if stats.photos_unavailable:
        err.print(
            f"warning: {stats.photos_unavailable} indexed photos under these folders were kept, "
            "not removed; they are checked again at the next scan",
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
    from rich.console import Console
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
    Console().print(table)
    Console().print(
        "(threads) stages run in the decode pool, overlapping the model stages; "
        "'wait for decode' is the time the models sat idle waiting for them."
    )
