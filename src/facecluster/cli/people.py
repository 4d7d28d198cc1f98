"""`people`: list persons and correct them; every correction can be undone."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..display import plural, safe
from ..pathcodec import shown
from .app import app
from .options import STORE, Shared, command_signature, shared
from .output import emit_json, handles_errors, say

if TYPE_CHECKING:
    from ..people import People

people_app = typer.Typer(
    help="List persons and correct them: name, merge, split, move or remove faces, undo. "
    "Corrections survive every later 'group'.",
    no_args_is_help=False,
    invoke_without_command=True,
)
app.add_typer(people_app, name="people")

PersonArg = Annotated[
    int, typer.Argument(help="Person id ('facecluster people' lists them).", show_default=False)
]
FacesArg = Annotated[
    list[int], typer.Argument(help="Face ids ('people show ID' lists them).", show_default=False)
]


def _merged(ctx: typer.Context, opts: Shared) -> Shared:
    """The store options given to this subcommand, else to 'people' itself."""
    parent = ctx.parent.obj if ctx.parent is not None else None
    if not isinstance(parent, Shared):
        return opts
    given = {k: getattr(opts, k) for k in STORE}
    return replace(
        opts,
        **{k: getattr(parent, k) for k, v in given.items() if v in (None, False, "auto")},
    )


@contextmanager
def _people(opts: Shared, *, write: bool) -> Iterator[People]:
    from ..api import FaceIndex

    with FaceIndex(
        opts.db, model=opts.model, weights=opts.weights, create=False, write=write
    ) as index:
        yield index.people


def people_command(
    name: str, *, write: bool = True
) -> Callable[[Callable[..., tuple[str, object]]], Callable[..., Any]]:
    """Register ``fn(people, ...) -> (text, json)`` as 'people NAME', with the store
    options (--db, --model, --weights, --json) and the error handling they all share."""

    def register(fn: Callable[..., tuple[str, object]]) -> Callable[..., Any]:
        @shared(*STORE)
        def command(ctx: typer.Context, *, opts: Shared, **kwargs: Any) -> None:
            given = _merged(ctx, opts)
            with _people(given, write=write) as people:
                text, obj = fn(people, **kwargs)
            say(given.as_json, "" if given.quiet else text, obj)

        sig = command.__signature__  # type: ignore[attr-defined]
        own = command_signature(fn, ())
        ctx = sig.parameters["ctx"].replace(annotation=typer.Context)
        store = [p for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY]
        command.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[ctx, *own.parameters.values(), *store]
        )
        command.__name__, command.__doc__ = fn.__name__, fn.__doc__
        people_app.command(name)(handles_errors()(command))
        return fn

    return register


@people_app.callback()
@handles_errors()
@shared(*STORE)
def people_list(ctx: typer.Context, *, opts: Shared) -> None:
    """List persons: id, name, faces, photos (largest first), and how many faces are in
    no person (unknown)."""
    ctx.obj = opts
    if ctx.invoked_subcommand is not None:
        return
    with _people(opts, write=False) as people:
        persons, unknown = people.persons(), people.unknown()
    if opts.as_json:
        emit_json(
            [{"id": p.id, "name": p.name, "faces": p.faces, "photos": p.photos} for p in persons]
        )
        return
    if opts.quiet:
        return
    if not persons:
        some = plural(unknown, "face")
        print(f"no persons yet ({some} in no person): run 'facecluster group'", file=sys.stderr)
        return
    labels = [safe(p.label) for p in persons]
    width = min(30, max(len("name"), *(len(x) for x in labels)))
    print(f"{'id':>6}  {'name':{width}}  {'faces':>6}  {'photos':>6}")
    for p, label in zip(persons, labels, strict=True):
        print(f"{p.id:6d}  {label:{width}}  {p.faces:6d}  {p.photos:6d}")
    faces = sum(p.faces for p in persons)
    print(
        f"{plural(len(persons), 'person')} with {plural(faces, 'face')}; "
        f"{plural(unknown, 'face')} in no person (unknown)"
    )


@people_command("name")
def people_name(
    people: People, person: PersonArg, name: Annotated[str, typer.Argument(show_default=False)]
) -> tuple[str, object]:
    """Name a person. Names survive re-grouping."""
    p = people.rename(person, name)
    return f"person {p.id} is now {safe(p.name)}", {"id": p.id, "name": p.name}


@people_command("merge")
def people_merge(
    people: People,
    into: PersonArg,
    others: Annotated[list[int], typer.Argument(show_default=False)],
) -> tuple[str, object]:
    """Merge persons into the first one. They stay merged after re-grouping."""
    p = people.merge(into, others)
    text = f"person {p.id} ({safe(p.label)}) now has {plural(p.faces, 'face')}"
    return text, {"id": p.id, "name": p.name, "faces": p.faces}


@people_command("split")
def people_split(
    people: People,
    person: PersonArg,
    faces: FacesArg,
    name: Annotated[str | None, typer.Option(show_default=False)] = None,
) -> tuple[str, object]:
    """Move some faces of a person to a new person."""
    p = people.split(person, faces, name)
    text = f"new person {p.id} ({safe(p.label)}) with {plural(p.faces, 'face')}"
    return text, {"id": p.id, "name": p.name, "faces": p.faces}


@people_command("move-face")
def people_move_face(people: People, person: PersonArg, faces: FacesArg) -> tuple[str, object]:
    """Put faces on a person for good, whatever the clustering says."""
    p = people.move_faces(faces, person)
    return f"person {p.id} ({safe(p.label)}) now has {plural(p.faces, 'face')}", {
        "id": p.id,
        "faces": p.faces,
    }


@people_command("remove-face")
def people_remove_face(people: People, faces: FacesArg) -> tuple[str, object]:
    """Take faces away from their person for good (they become unknown)."""
    n = people.remove_faces(faces)
    return f"removed {plural(n, 'face')} from their person", {"removed": n}


@people_command("undo")
def people_undo(people: People) -> tuple[str, object]:
    """Go back one step: to the persons as they were before the last 'group' or correction.

    Each step back is one saved grouping or one correction (name, merge, split, move-face,
    remove-face); 'people history' lists them. The last 20 steps are kept.
    """
    g = people.undo()
    text = (
        f"undid '{safe(g.action)}' of {_when(g.created)}: back to "
        f"{plural(g.persons, 'person')} with {plural(g.faces, 'face')}"
    )
    return text, {"undone": g.action, "created": g.created, "persons": g.persons, "faces": g.faces}


@people_command("history", write=False)
def people_history(people: People) -> tuple[str, object]:
    """The steps 'people undo' can take back, newest first."""
    gens = people.history()
    if not gens:
        print("nothing to undo yet", file=sys.stderr)
    text = "\n".join(
        f"{_when(g.created)}  {safe(g.action)}  (before it: {plural(g.persons, 'person')})"
        for g in gens
    )
    obj = [{"step": g.action, "created": g.created, "persons_before": g.persons} for g in gens]
    return text, obj


@people_command("show", write=False)
def people_show(people: People, person: PersonArg) -> tuple[str, object]:
    """A person's faces: face id, box (x1,y1,x2,y2 in the photo's pixels), where the face
    sits among the faces of its photo ("left of 3, largest"), and the photo."""
    p = people.get(person)
    faces = people.placed_faces(person)
    lines = [
        f"person {p.id} ({safe(p.label)}): {plural(p.faces, 'face')} in "
        f"{plural(p.photos, 'photo')}"
    ]
    boxes = [",".join(str(round(v)) for v in f.box) for f in faces]
    bw = max([len("box"), *map(len, boxes)])
    ww = max([len("in the photo"), *(len(f.where) for f in faces)])
    lines.append(f"{'face':>8}  {'box':{bw}}  {'in the photo':{ww}}  photo")
    lines += [
        f"{f.face_id:8d}  {box:{bw}}  {f.where:{ww}}  {safe(f.photo)}"
        for f, box in zip(faces, boxes, strict=True)
    ]
    obj = {
        "id": p.id,
        "name": p.name,
        "faces": [
            {
                "face_id": f.face_id,
                "photo": shown(f.photo),
                "box": [round(v, 1) for v in f.box],
                "where": f.where,
                "faces_in_photo": f.faces_in_photo,
            }
            for f in faces
        ],
    }
    return "\n".join(lines), obj


def _when(t: float) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


@people_command("suggest", write=False)
def people_suggest(
    people: People,
    limit: Annotated[int, typer.Option(min=1, help="List at most this many pairs.")] = 20,
    max_distance: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=4.0,
            show_default=False,
            help="Squared L2 distance within which two persons' nearest faces must lie "
            "[default: 1.5 x the encoder's calibrated threshold].",
        ),
    ] = None,
) -> tuple[str, object]:
    """Persons that may be one: pairs, each with its merge command.

    A pair is two persons with a face each within --max-distance of the other; the most
    likely first: pairs near each other rather than near everyone (blurred or tiny faces
    are near many). Persons named differently are never suggested: naming a pair
    differently hides it. The page written by 'group --html' shows the same pairs side
    by side.
    """
    found = people.suggest(max_distance, limit=limit)
    if not found:
        print("no suggestions: no two persons have faces that close", file=sys.stderr)

    def who(pid: int, name: str | None, faces: int) -> str:
        n = f"{faces} {'face' if faces == 1 else 'faces'}"
        return f"{safe(name)} (id {pid}, {n})" if name else f"person_{pid:04d} ({n})"

    lines = [
        f"{s.distance:.3f}  {who(s.into, s.name_into, s.faces_into)} + "
        f"{who(s.other, s.name_other, s.faces_other)}\n       {s.command}"
        for s in found
    ]
    return "\n".join(lines), [s.as_dict() for s in found]
