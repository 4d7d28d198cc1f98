"""`models`: the encoders, whether each works here, and which one 'auto' picks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..display import safe
from .app import app
from .options import Shared, shared
from .output import emit_json, handles_errors, stdout


@app.command()
@handles_errors()
@shared("as_json", "quiet")
def models(
    weights: Annotated[
        Path | None, typer.Option(help="FaceNet weights file to check.", show_default=False)
    ] = None,
    *,
    opts: Shared,
) -> None:
    """List the encoders: embedding size, default threshold, accuracy and speed, whether
    each works offline, and which one 'auto' picks."""
    from ..api import available_encoders

    rows = [
        {
            "name": e.spec.name,
            "dim": e.spec.dim,
            "default_threshold": e.spec.default_threshold,
            "available": e.available,
            "auto": e.auto,
            "weights": e.location,
            "description": e.spec.description,
            "accuracy": e.spec.accuracy,
            "speed": e.spec.speed,
        }
        for e in available_encoders(weights)
    ]
    if opts.as_json:
        emit_json(rows)
        return
    if opts.quiet:
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Encoders (threshold: squared L2 between unit embeddings)")
    for col in ("model", "dim", "threshold", "accuracy", "speed", "available"):
        table.add_column(col, overflow="fold")
    table.add_column("weights / notes", overflow="fold")
    for r in rows:
        mark = "yes" if r["available"] else "no"
        name = f"{safe(r['name'])} (auto)" if r["auto"] else safe(r["name"])
        table.add_row(
            Text(name, overflow="fold"),
            str(r["dim"]),
            f"{r['default_threshold']:g}",
            Text(str(r["accuracy"] or "-"), overflow="fold"),
            str(r["speed"] or "-"),
            mark,
            Text(f"{safe(r['weights'])}\n{safe(r['description'])}", overflow="fold"),
        )
    stdout().print(table)
