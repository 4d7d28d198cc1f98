"""`verify`, `find` and `eval`: the FaceNet applications and the measuring stick."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .. import config
from ..display import safe
from ..errors import EXIT_FAILED, FaceclusterError
from ..pathcodec import shown
from .app import app
from .options import CLUSTERING, Shared, shared
from .output import emit_json, handles_errors


@app.command()
@handles_errors()
@shared("threshold", "model", "weights", "device", "as_json", "quiet")
def verify(
    photo_a: Annotated[Path, typer.Argument(help="First photo.", show_default=False)],
    photo_b: Annotated[Path, typer.Argument(help="Second photo.", show_default=False)],
    face: Annotated[
        int, typer.Option(min=1, help="Which face of each photo, by size: 1 = the largest.")
    ] = 1,
    *,
    opts: Shared,
) -> None:
    """Are two photos of the same person? Compares the largest face of each.

    Exit 0: same person; 1: different people; 2: input error (no face, unreadable file).
    """
    from ..api import verify as verify_faces

    v = verify_faces(
        photo_a, photo_b, model=opts.model, weights=opts.weights, device=opts.device,
        threshold=opts.threshold, face=face,
    )
    if opts.as_json:
        emit_json(
            {
                "same": v.same,
                "distance": round(v.distance, 4),
                "threshold": v.threshold,
                "model": v.model,
                "a": shown(photo_a),
                "b": shown(photo_b),
                "box_a": [round(float(x), 1) for x in v.face_a.box],
                "box_b": [round(float(x), 1) for x in v.face_b.box],
            }
        )
    elif not opts.quiet:
        verdict = "same person" if v.same else "different people"
        print(f"{verdict}: distance {v.distance:.4f} (threshold {v.threshold:g}, {safe(v.model)})")
    if not v.same:
        raise typer.Exit(EXIT_FAILED)


@app.command()
@handles_errors()
@shared("db", "threshold", "model", "weights", "device", "as_json", "quiet")
def find(
    query: Annotated[
        Path, typer.Argument(help="A photo of the person to look for.", show_default=False)
    ],
    k: Annotated[int, typer.Option("-k", "--top", min=1, help="How many photos.")] = 10,
    paths: Annotated[
        bool,
        typer.Option(
            "--paths", help="Print only the photos' paths, one a line, nearest first (for pipes)."
        ),
    ] = False,
    *,
    opts: Shared,
) -> None:
    """Photos in the index whose faces are nearest to the query's largest face.

    Nearest first: the squared L2 distance, the person of the matching face (id and
    name, or 'unknown') and the photo; only photos within the threshold. Exit 0: some
    photo matched; 1: none did (as grep); 2: an error (no face in the query...).
    """
    from ..api import FaceIndex

    with FaceIndex(
        opts.db, model=opts.model, weights=opts.weights, device=opts.device, create=False,
        write=False,
    ) as index:
        t = index.threshold if opts.threshold is None else opts.threshold
        hits = index.find(query, k=k, threshold=t)
        name = index.model
    if opts.as_json:
        emit_json(
            {
                "query": shown(query),
                "model": name,
                "threshold": t,
                "results": [
                    {
                        "photo": shown(h.photo),
                        "distance": round(h.distance, 4),
                        "face_id": h.face_id,
                        "person_id": h.person_id,
                        "person": h.person_name,
                    }
                    for h in hits
                ],
            }
        )
    elif opts.quiet:
        pass
    elif not hits:
        print(f"no face within {t:g} of the query ({safe(name)})", file=sys.stderr)
    elif paths:
        _print_paths([h.photo for h in hits])
    else:
        who = [_person(h.person_id, h.person_name) for h in hits]
        width = max(len(w) for w in who)
        for h, w in zip(hits, who, strict=True):
            print(f"{h.distance:.4f}  {w:{width}}  {safe(h.photo)}")
    if not hits:
        raise typer.Exit(EXIT_FAILED)


def _print_paths(photos: list[str]) -> None:
    """One path a line: as on disk for a pipe (xargs -d '\\n'), escaped on a terminal."""
    import os

    if sys.stdout.isatty():
        print("\n".join(safe(p) for p in photos))
        return
    sys.stdout.flush()
    sys.stdout.buffer.write(b"".join(os.fsencode(p) + b"\n" for p in photos))
    sys.stdout.flush()


def _person(pid: int | None, name: str | None) -> str:
    if pid is None:
        return "unknown"
    return f"{safe(name)} ({pid})" if name else f"person {pid}"


@app.command("eval")
@handles_errors()
@shared(*CLUSTERING, "model", "weights", "device", "detector", "as_json", "quiet")
def eval_(
    directory: Annotated[Path, typer.Argument(help="One folder per identity.", show_default=False)],
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            show_default=False,
            envvar="FACECLUSTER_EVAL_DB",  # not $FACECLUSTER_DB: that is your library
            help="Face database for the labelled set [default: $XDG_DATA_HOME/facecluster/"
            "eval.db, kept apart from your library].",
        ),
    ] = None,
    sweep: Annotated[
        str | None,
        typer.Option(
            help="Thresholds START:STOP:STEP to try; prints each and the best.", show_default=False
        ),
    ] = None,
    *,
    opts: Shared,
) -> None:
    """Measure clustering and verification against folder labels.

    Scans DIRECTORY (reusing the cache), groups its faces with the given settings and
    scores the labelled face of each photo: the central face (largest near the centre);
    other faces are grouped too but not scored. Reports pairwise and BCubed
    precision/recall/F1, NMI, clusters vs identities, unknown rate, and verification
    accuracy, TAR at FAR 1e-3 and the best threshold over all labelled pairs.
    """
    from ..api import FaceIndex
    from ..assess import assess, parse_sweep
    from ..assess import sweep as run_sweep
    from .scan import progress_bar

    try:
        thresholds = parse_sweep(sweep) if sweep else None
    except ValueError as err:
        raise FaceclusterError(str(err)) from None
    clustering = opts.clustering()
    db_path = db or config.data_dir() / "eval.db"
    with FaceIndex(
        db_path,
        model=opts.model,
        weights=opts.weights,
        device=opts.device,
        detector=opts.detector,
    ) as index:
        with progress_bar(not (opts.quiet or opts.as_json)) as bar:
            lab = index.labelled(directory, bar)
        settings = index.settings(**clustering)
        name = index.model
    try:
        result = assess(lab, settings)
        if thresholds:
            result["sweep"], result["best"] = run_sweep(lab, settings, thresholds)
    except ValueError as err:  # a labelled set too small to score
        raise FaceclusterError(str(err)) from None
    result["model"] = name
    if opts.as_json:
        emit_json(result)
    elif not opts.quiet:
        from .eval_render import render_eval

        render_eval(result)
