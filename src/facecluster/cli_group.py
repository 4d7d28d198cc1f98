"""`group` and `people`: persons from faces, and the user's corrections."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from . import config
from .cli import (
    DbOption,
    JsonOption,
    ModelOption,
    QuietOption,
    WeightsOption,
    _emit_json,
    _fail,
    app,
)
from .cli_search import ThresholdOption
from .display import safe
from .errors import EmptyCache, FaceclusterError

people_app = typer.Typer(
    help="List persons and correct them: name, merge, split, move or remove faces. "
    "Corrections survive every later 'group'.",
    no_args_is_help=False,
    invoke_without_command=True,
)
app.add_typer(people_app, name="people")


def _open(
    db: Path | None, model: str, weights: Path | None, *, write: bool, check: bool | None = None
) -> tuple[Any, int, str]:
    """The cache, the encoder id and name whose faces and persons to use. ``write``: the
    command changes the database (a read-only one is refused; otherwise opened read-only)."""
    from .cache import FaceCache
    from .encoders import encoder_identity, resolve

    name = resolve(model, weights)
    cache = FaceCache(db or config.default_db_path(), create=False, write=write, check=check)
    try:
        enc_id = cache.encoder_id(encoder_identity(name, weights), register=False)
    except BaseException:
        cache.close()
        raise
    if enc_id is None:
        cache.close()
        raise EmptyCache(
            f"the database has no {safe(name)} faces: run 'facecluster scan PATH' first"
        )
    return cache, enc_id, name


@app.command()
def group(
    db: DbOption = None,
    method: Annotated[str, typer.Option(help="agglomerative or hdbscan.")] = "agglomerative",
    threshold: ThresholdOption = None,
    linkage: Annotated[
        str,
        typer.Option(
            help="How cluster distance is measured: weighted (WPGMA), average, complete or single."
        ),
    ] = "weighted",
    min_cluster_size: Annotated[
        int,
        typer.Option(min=1, help="Smaller groups go to 'unknown'; 1 gives every face a person."),
    ] = 2,
    min_samples: Annotated[
        int | None, typer.Option(min=1, help="HDBSCAN's min_samples.", show_default=False)
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write one folder per person with links to the photos.", show_default=False
        ),
    ] = None,
    layout: Annotated[str, typer.Option(help="symlink, hardlink or copy.")] = "symlink",
    report: Annotated[
        Path | None,
        typer.Option(help="Write the JSON report (docs/report-schema.md).", show_default=False),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(help="Write a static page of face thumbnails per person.", show_default=False),
    ] = None,
    model: ModelOption = "auto",
    weights: WeightsOption = None,
    as_json: JsonOption = False,
    quiet: QuietOption = False,
) -> None:
    """Group the cached faces into persons.

    agglomerative (default) merges faces while the distance between groups stays under
    --threshold, a squared L2 distance between unit embeddings: the FaceNet paper's scale,
    where 1.1 separates people for FaceNet. Thresholds do not carry across encoders: the
    default is the calibrated value of the encoder in use ('facecluster models'); lower it
    if siblings merge, raise it if one person is split. hdbscan finds dense groups and
    leaves the rest unknown. Person ids, names and corrections survive re-grouping.
    """
    from .cluster import GroupSettings
    from .encoders import ENCODERS
    from .export import export_folders, write_html, write_report
    from .group import group_faces, threshold_warning

    try:
        if method not in ("agglomerative", "hdbscan"):
            raise FaceclusterError(f"--method must be agglomerative or hdbscan, not {method!r}")
        if linkage not in ("weighted", "average", "complete", "single"):
            raise FaceclusterError("--linkage must be weighted, average, complete or single")
        if layout not in ("symlink", "hardlink", "copy"):
            raise FaceclusterError("--layout must be symlink, hardlink or copy")
        cache, enc_id, name = _open(db, model, weights, write=True, check=True)
        calibrated = ENCODERS[name].default_threshold
        t = threshold if threshold is not None else calibrated
        warning = threshold_warning(name, t, calibrated) if method == "agglomerative" else None
        with cache:
            # A scan replaces faces under group's feet (a rescan deletes and re-inserts
            # them): hold the writer lock, so one waits for the other with a clear line.
            cache.lock("group")
            result = group_faces(
                cache,
                enc_id,
                name,
                GroupSettings(method, t, linkage, min_cluster_size, min_samples),
            )
        if warning:
            result.warnings.append(warning)
            print(f"warning: {safe(warning)}", file=sys.stderr)
        outputs: dict[str, str] = {}
        if out is not None:
            stats = export_folders(result.grouping, out, layout)
            outputs["out"] = str(stats.out_dir)
        if report is not None:
            write_report(result.grouping, report)
            outputs["report"] = str(report)
        if html is not None:
            outputs["html"] = str(write_html(result.grouping, html))
    except FaceclusterError as err:
        raise _fail(err) from None
    summary = result.summary() | outputs
    if as_json:
        _emit_json(summary)
    elif not quiet:
        _render_group(summary)


def _render_group(s: dict[str, Any]) -> None:
    detail = (
        f"threshold {s['threshold']:g}, {s['linkage']} linkage"
        if s["method"] == "agglomerative"
        else "hdbscan"
    )
    print(
        f"{s['persons']} persons from {s['faces']} faces ({s['faces_assigned']} assigned, "
        f"{s['unknown']} unknown); {s['model']}, {detail}; {s['seconds']:.1f} s"
    )
    for key in ("out", "report", "html"):
        if key in s:
            print(f"{key}: {safe(s[key])}")


PersonArg = Annotated[
    int, typer.Argument(help="Person id ('facecluster people' lists them).", show_default=False)
]
FacesArg = Annotated[
    list[int], typer.Argument(help="Face ids ('people show ID' lists them).", show_default=False)
]


@people_app.callback()
def people_list(
    ctx: typer.Context,
    db: DbOption = None,
    model: ModelOption = "auto",
    weights: WeightsOption = None,
    as_json: JsonOption = False,
) -> None:
    """List persons: id, name, faces, photos (largest first)."""
    ctx.obj = {"db": db, "model": model, "weights": weights, "json": as_json}
    if ctx.invoked_subcommand is not None:
        return
    from .people import People

    try:
        cache, enc_id, _ = _open(db, model, weights, write=False)
        with cache:
            persons = People(cache, enc_id).persons()
    except FaceclusterError as err:
        raise _fail(err) from None
    if as_json:
        _emit_json(
            [{"id": p.id, "name": p.name, "faces": p.faces, "photos": p.photos} for p in persons]
        )
        return
    if not persons:
        print("no persons yet: run 'facecluster group'", file=sys.stderr)
    for p in persons:
        print(f"{p.id:6d}  {safe(p.label):30s}  {p.faces:5d} faces  {p.photos:5d} photos")


def _people_call(
    ctx: typer.Context, opts: dict[str, Any], action: Any, *, write: bool = True
) -> Any:
    from .people import People

    o = {k: v for k, v in (ctx.obj or {}).items() if v not in (None, False, "auto")}
    o |= {k: v for k, v in opts.items() if v not in (None, False, "auto")}
    ctx.obj = o
    try:
        cache, enc_id, _ = _open(o.get("db"), o.get("model", "auto"), o.get("weights"), write=write)
        with cache:
            return action(People(cache, enc_id))
    except FaceclusterError as err:
        raise _fail(err) from None


def _say(ctx: typer.Context, text: str, obj: object) -> None:
    if (ctx.obj or {}).get("json"):
        _emit_json(obj)
    else:
        print(text)


@people_app.command("name")
def people_name(
    ctx: typer.Context,
    person: PersonArg,
    name: Annotated[str, typer.Argument(show_default=False)],
    db: DbOption = None,
    model: ModelOption = "auto",
    weights: WeightsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Name a person. Names survive re-grouping."""
    p = _people_call(
        ctx,
        dict(db=db, model=model, weights=weights, json=as_json),
        lambda pp: pp.rename(person, name),
    )
    _say(ctx, f"person {p.id} is now {safe(p.name)}", {"id": p.id, "name": p.name})


@people_app.command("merge")
def people_merge(
    ctx: typer.Context,
    into: PersonArg,
    others: Annotated[list[int], typer.Argument(show_default=False)],
    db: DbOption = None,
    model: ModelOption = "auto",
    weights: WeightsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Merge persons into the first one. They stay merged after re-grouping."""
    p = _people_call(
        ctx,
        dict(db=db, model=model, weights=weights, json=as_json),
        lambda pp: pp.merge(into, others),
    )
    _say(
        ctx,
        f"person {p.id} ({safe(p.label)}) now has {p.faces} faces",
        {"id": p.id, "name": p.name, "faces": p.faces},
    )


@people_app.command("split")
def people_split(
    ctx: typer.Context,
    person: PersonArg,
    faces: FacesArg,
    name: Annotated[str | None, typer.Option(show_default=False)] = None,
    db: DbOption = None,
    model: ModelOption = "auto",
    weights: WeightsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move some faces of a person to a new person."""
    p = _people_call(
        ctx,
        dict(db=db, model=model, weights=weights, json=as_json),
        lambda pp: pp.split(person, faces, name),
    )
    _say(
        ctx,
        f"new person {p.id} ({safe(p.label)}) with {p.faces} faces",
        {"id": p.id, "name": p.name, "faces": p.faces},
    )


@people_app.command("move-face")
def people_move_face(
    ctx: typer.Context,
    person: PersonArg,
    faces: FacesArg,
    db: DbOption = None,
    model: ModelOption = "auto",
    weights: WeightsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Put faces on a person for good, whatever the clustering says."""
    p = _people_call(
        ctx,
        dict(db=db, model=model, weights=weights, json=as_json),
        lambda pp: pp.move_faces(faces, person),
    )
    _say(
        ctx,
        f"person {p.id} ({safe(p.label)}) now has {p.faces} faces",
        {"id": p.id, "faces": p.faces},
    )


@people_app.command("remove-face")
def people_remove_face(
    ctx: typer.Context,
    faces: FacesArg,
    db: DbOption = None,
    model: ModelOption = "auto",
    weights: WeightsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take faces away from their person for good (they become unknown)."""
    n = _people_call(
        ctx,
        dict(db=db, model=model, weights=weights, json=as_json),
        lambda pp: pp.remove_faces(faces),
    )
    _say(ctx, f"removed {n} face(s) from their person", {"removed": n})


@people_app.command("show")
def people_show(
    ctx: typer.Context,
    person: PersonArg,
    db: DbOption = None,
    model: ModelOption = "auto",
    weights: WeightsOption = None,
    as_json: JsonOption = False,
) -> None:
    """A person's faces: face id and photo."""

    def action(pp: Any) -> tuple[Any, list[tuple[int, str]]]:
        p = pp.get(person)
        rows = pp.cache.db.execute(
            "SELECT f.id, ph.path FROM assignments a JOIN faces f ON f.id = a.face_id "
            "JOIN photos ph ON ph.id = f.photo_id WHERE a.person_id = ? ORDER BY ph.path",
            (person,),
        ).fetchall()
        return p, rows

    p, rows = _people_call(
        ctx, dict(db=db, model=model, weights=weights, json=as_json), action, write=False
    )
    if (ctx.obj or {}).get("json"):
        _emit_json(
            {"id": p.id, "name": p.name, "faces": [{"face_id": r[0], "photo": r[1]} for r in rows]}
        )
        return
    print(f"person {p.id} ({safe(p.label)}): {p.faces} faces in {p.photos} photos")
    for fid, path in rows:
        print(f"{fid:8d}  {safe(path)}")
