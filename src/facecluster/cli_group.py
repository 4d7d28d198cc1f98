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
from .cluster import DEFAULT_METHOD, LINKAGES, METHODS
from .display import safe
from .errors import EmptyCache, FaceclusterError
from .pathcodec import shown
from .registry import or_list
from .writers import LAYOUTS, WRITERS

people_app = typer.Typer(
    help="List persons and correct them: name, merge, split, move or remove faces. "
    "Corrections survive every later 'group'. Listing and 'show' also work on a "
    "read-only database.",
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
    from .encoders import encoder_identity, encoder_spec

    spec = encoder_spec(model, weights)
    name = spec.name
    cache = FaceCache(db or config.default_db_path(), create=False, write=write, check=check)
    try:
        enc_id = cache.encoder_id(encoder_identity(spec, weights), register=False)
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
    method: Annotated[str, typer.Option(help=f"{or_list(METHODS.names())}.")] = DEFAULT_METHOD,
    threshold: ThresholdOption = None,
    linkage: Annotated[
        str,
        typer.Option(
            help=f"How cluster distance is measured: {or_list(LINKAGES)} (weighted = WPGMA)."
        ),
    ] = LINKAGES[0],
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
            help="Write one folder per person with links to the photos. A re-run replaces "
            "only what facecluster wrote there and keeps your files.",
            show_default=False,
        ),
    ] = None,
    layout: Annotated[str, typer.Option(help=f"{or_list(LAYOUTS)}.")] = LAYOUTS[0],
    report: Annotated[
        Path | None,
        typer.Option(
            help="Write the JSON report (docs/report-schema.md) to a new file or over a "
            "previous report; never over another file.",
            show_default=False,
        ),
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            help="Write a static page of face thumbnails per person. A re-run replaces "
            "only the page and thumbnails facecluster wrote.",
            show_default=False,
        ),
    ] = None,
    write: Annotated[
        list[str] | None,
        typer.Option(
            "--write",
            metavar="NAME=PATH",
            help="Write an output by its writer's name; repeatable. Writers: "
            + ", ".join(w.name + (f" (as {w.flag})" if w.flag else "") for w in WRITERS)
            + ".",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Say what would change (persons merged or split, named persons affected) "
            "and save nothing.",
        ),
    ] = False,
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
    leaves the rest unknown. Person ids, names and corrections survive re-grouping:
    a named person keeps its faces and is never merged with another. Try settings with
    --dry-run; 'facecluster people undo' goes back to the grouping before. group and a
    scan never write at the same time: the second to start is refused in one line.
    """
    from .cluster import GroupSettings
    from .encoders import encoder_spec
    from .export import check_output_targets, database_files
    from .group import group_faces, threshold_warning
    from .writers import WriteOptions, output_targets, write_outputs

    try:
        if method not in METHODS:
            raise FaceclusterError(f"--method must be {or_list(METHODS.names())}, not {method!r}")
        if linkage not in LINKAGES:
            raise FaceclusterError(f"--linkage must be {or_list(LINKAGES)}")
        if layout not in LAYOUTS:
            raise FaceclusterError(f"--layout must be {or_list(LAYOUTS)}")
        targets = output_targets({"folders": out, "report": report, "html": html}, write or ())
        if dry_run and targets:
            more = "/--write" if write else ""
            raise FaceclusterError(
                f"--dry-run saves and writes nothing: drop --out/--report/--html{more}"
            )
        protect = database_files(db or config.default_db_path())
        check_output_targets(targets, protect)
        cache, enc_id, name = _open(db, model, weights, write=not dry_run, check=True)
        calibrated = encoder_spec(model, weights).default_threshold
        t = threshold if threshold is not None else calibrated
        uses_threshold = "threshold" in METHODS.get(method).uses
        warning = threshold_warning(name, t, calibrated) if uses_threshold else None
        with cache:
            if not dry_run:
                # A scan replaces faces under group's feet (a rescan deletes and re-inserts
                # them): hold the writer lock, so one waits for the other with a clear line.
                cache.lock("group")
            settings = GroupSettings(method, t, linkage, min_cluster_size, min_samples)
            result = group_faces(
                cache, enc_id, name, settings, dry_run=dry_run, action=_action(settings)
            )
        if warning:
            result.warnings.append(warning)
            print(f"warning: {safe(warning)}", file=sys.stderr)
        outputs, found = write_outputs(result.grouping, targets, WriteOptions(layout, protect))
        kept = found or []
        if found is not None:
            outputs["kept"] = [shown(p) for p in kept]  # JSON: the path, not UTF-8 as \xNN
    except FaceclusterError as err:
        raise _fail(err) from None
    if kept and not quiet:
        _say_kept(kept)
    summary = result.summary() | outputs
    if as_json:
        _emit_json(summary)
    elif not quiet:
        _render_group(summary)


def _action(settings: Any) -> str:
    """How a grouping is named in 'people history'."""
    return settings.command()


def _say_kept(kept: list[Path]) -> None:
    shown = [safe(f"{p}/" if p.is_dir() and not p.is_symlink() else str(p)) for p in kept[:10]]
    more = f" and {len(kept) - 10} more" if len(kept) > 10 else ""
    noun = "file" if len(kept) == 1 else "files"
    print(
        f"kept {len(kept)} {noun} that facecluster did not write (or that changed since): "
        f"{', '.join(shown)}{more}",
        file=sys.stderr,
    )


def _render_group(s: dict[str, Any]) -> None:
    detail = (
        f"threshold {s['threshold']:g}, {s['linkage']} linkage"
        if s["method"] == "agglomerative"
        else s["method"]
    )
    would = "" if s["saved"] else "would be "
    print(
        f"{s['persons']} persons {would}made from {s['faces']} faces "
        f"({s['faces_assigned']} assigned, {s['unknown']} unknown); {safe(s['model'])}, {detail}; "
        f"{s['seconds']:.1f} s"
    )
    for line in _change_lines(s["changes"], s["saved"]):
        print(line)
    if not s["saved"]:
        print("dry run: nothing was saved")
    for key in (w.key for w in WRITERS):
        if key in s:
            print(f"{key}: {safe(s[key])}")


def _who(p: dict[str, Any]) -> str:
    if p["id"] is None:
        return "a new person"
    return f"{safe(p['name'])} ({p['id']})" if p["name"] else f"person {p['id']}"


def _change_lines(c: dict[str, Any], saved: bool) -> list[str]:
    """What a regroup changed (or would change), one line a kind."""
    merged, split = ("merged", "split") if saved else ("would merge", "would split")
    lines = []
    for m in c["merged"]:
        absorbed = ", ".join(_who(p) for p in m["absorbed"])
        lines.append(f"{merged}: {absorbed} into {_who(m['into'])}")
    for sp in c["split"]:
        lines.append(f"{split}: {_who(sp['person'])} into {sp['parts']} persons")
    for k in c["kept_persons_changed"]:
        lines.append(f"named/corrected {_who(k)}: {k['faces_before']} -> {k['faces_after']} faces")
    if c["faces_moved"] or c["new_persons"] or c["removed_persons"]:
        moved, gone = ("moved", "dissolved") if saved else ("would move", "would dissolve")
        lines.append(
            f"{c['faces_moved']} faces {moved}, {c['new_persons']} new persons, "
            f"{len(c['removed_persons'])} persons {gone}"
        )
    if saved and lines:
        lines.append("'facecluster people undo' goes back to the grouping before")
    return lines


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


@people_app.command("undo")
def people_undo(
    ctx: typer.Context,
    db: DbOption = None,
    model: ModelOption = "auto",
    weights: WeightsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Go back one step: to the persons as they were before the last 'group' or correction.

    Each step back is one saved grouping or one correction (name, merge, split, move-face,
    remove-face); 'people history' lists them. The last 20 steps are kept.
    """
    g = _people_call(
        ctx, dict(db=db, model=model, weights=weights, json=as_json), lambda pp: pp.undo()
    )
    _say(
        ctx,
        f"undid '{safe(g.action)}' of {_when(g.created)}: back to {g.persons} persons "
        f"with {g.faces} faces",
        {"undone": g.action, "created": g.created, "persons": g.persons, "faces": g.faces},
    )


@people_app.command("history")
def people_history(
    ctx: typer.Context,
    db: DbOption = None,
    model: ModelOption = "auto",
    weights: WeightsOption = None,
    as_json: JsonOption = False,
) -> None:
    """The steps 'people undo' can take back, newest first."""
    gens = _people_call(
        ctx,
        dict(db=db, model=model, weights=weights, json=as_json),
        lambda pp: pp.history(),
        write=False,
    )
    if (ctx.obj or {}).get("json"):
        _emit_json(
            [
                {"step": g.action, "created": g.created, "persons_before": g.persons}
                for g in gens
            ]
        )
        return
    if not gens:
        print("nothing to undo yet", file=sys.stderr)
    for g in gens:
        print(f"{_when(g.created)}  {safe(g.action)}  (before it: {g.persons} persons)")


def _when(t: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


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
        return pp.get(person), pp.faces_with_photos(person)

    p, rows = _people_call(
        ctx, dict(db=db, model=model, weights=weights, json=as_json), action, write=False
    )
    if (ctx.obj or {}).get("json"):
        _emit_json(
            {
                "id": p.id,
                "name": p.name,
                "faces": [{"face_id": r[0], "photo": shown(r[1])} for r in rows],
            }
        )
        return
    print(f"person {p.id} ({safe(p.label)}): {p.faces} faces in {p.photos} photos")
    for fid, path in rows:
        print(f"{fid:8d}  {safe(path)}")
