"""`people export-xmp` and `people regions`: names that travel to and from other tools
(digiKam, Lightroom, immich, ExifToolGui) as XMP face regions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..display import safe
from ..pathcodec import shown
from .people import people_command

if TYPE_CHECKING:
    from ..people import People


@people_command("export-xmp", write=False)
def people_export_xmp(
    people: People,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Only photos under these folders or files [default: all].",
                       show_default=False),
    ] = None,
    all_persons: Annotated[
        bool, typer.Option("--all", help="Persons without a name too, as 'Person N' (N: id).")
    ] = False,
    keywords: Annotated[
        bool,
        typer.Option(
            "--keywords",
            help="Also add each name as a keyword: People|Name (lr:hierarchicalSubject, "
            "Lightroom) and People/Name (digiKam:TagsList). Keywords are only ever added."
        ),
    ] = False,
    stem_sidecar: Annotated[
        bool,
        typer.Option(
            "--stem-sidecar",
            help="Name sidecars photo.xmp (Lightroom, for raw files) instead of "
            "photo.jpg.xmp (digiKam, darktable, immich).",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the sidecars that would be written.")
    ] = False,
) -> tuple[str, object]:
    """Write the persons' names as XMP face regions into sidecars, for other tools.

    For every photo with a face of a named person, its sidecar gets one MWG region
    (mwg-rs, read by digiKam, Lightroom, immich, ExifToolGui) and one Microsoft region
    (MP) per face, with the person's name. A sidecar that exists is updated: only the
    regions facecluster wrote before are replaced; ratings, keywords, every other property
    and the regions of other tools are kept. The photos themselves are never written.
    Needs ExifTool. 'facecluster scan' reads such regions back (docs/guide.md, "Your names
    in other tools").
    """
    from ..api import check_paths
    from ..xmp_export import ExportOptions, export_xmp

    roots = check_paths(paths or [])
    options = ExportOptions(all_persons, keywords, stem_sidecar, dry_run)
    result = export_xmp(people, roots, options)
    for f in result.skipped:
        print(f"skipped: {safe(f.path)}: {safe(f.error)}", file=sys.stderr)
    lines = []
    for s in result.sidecars:
        for note in s.notes:
            print(f"note: {safe(s.photo)}: {safe(note)}", file=sys.stderr)
        if dry_run and s.action != "unchanged":
            names = ", ".join(safe(n) for n in s.names) or "no region of facecluster"
            lines.append(f"would {s.action} {safe(s.path)}: {names}")
    c = result.counts()
    verb = "would write" if dry_run else "wrote"
    lines.append(
        f"{verb} {c['created'] + c['updated']} sidecars ({c['created']} new, {c['updated']} "
        f"updated), {c['unchanged']} already up to date, {c['skipped']} photos skipped; "
        f"{c['regions']} face regions of facecluster in them"
    )
    return "\n".join(lines), result.as_dict()


@people_command("regions", write=False)
def people_regions(people: People) -> tuple[str, object]:
    """Named face regions read from the photos' XMP where no face was detected.

    'scan' reads the face regions other tools wrote (digiKam, Lightroom, immich...); a
    named region that matches a detected face names that face, and 'group' names its
    person. The regions listed here matched no face; they are kept with their photo.
    """
    rows = people.lone_regions()
    if not rows:
        print("no named region without a detected face", file=sys.stderr)
    text = "\n".join(
        f"{safe(path)}  {safe(name)}  ({box[0]:.0f},{box[1]:.0f})-({box[2]:.0f},{box[3]:.0f})"
        for path, name, box, _ in rows
    )
    obj: list[dict[str, Any]] = [
        {"photo": shown(path), "name": name, "box": [round(v, 1) for v in box], "source": src}
        for path, name, box, src in rows
    ]
    return text, obj


def xmp_name_lines(d: dict[str, Any], saved: bool) -> list[str]:
    """What ``group`` did (or would do) with the names found in the photos' XMP."""
    lines = []
    named = d.get("persons_named") or []
    if named:
        who = ", ".join(f"{safe(p['name'])} ({p['id']})" if p["id"] > 0 else safe(p["name"])
                        for p in named[:10])
        more = f" and {len(named) - 10} more" if len(named) > 10 else ""
        lines.append(f"{'named' if saved else 'would name'} from XMP: {who}{more}")
    if d.get("persons_created"):
        new = ", ".join(safe(n) for n in d["persons_created"][:10])
        lines.append(f"{'new' if saved else 'would make new'} persons from XMP names: {new}")
    for c in (d.get("conflicts") or [])[:10]:
        lines.append(f"XMP name conflict: {_conflict(c)}")
    if len(d.get("conflicts") or []) > 10:
        lines.append(f"... and {len(d['conflicts']) - 10} more XMP conflicts (--json lists all)")
    return lines


def _who(pid: Any) -> str:
    return f"person {pid}" if isinstance(pid, int) and pid > 0 else "a new person"


def _conflict(c: dict[str, Any]) -> str:
    kind = c.get("kind")
    if kind == "tie":
        names = ", ".join(map(safe, c["xmp_names"]))
        return f"the faces of {_who(c['person'])} are named {names}: left unnamed"
    if kind == "same_name":
        merge = f"'facecluster people merge {c['named']} {c['person']}'"
        return (
            f"the faces of {_who(c['person'])} are named {safe(c['xmp_name'])}, as "
            f"{_who(c['named'])} is: not merged ({merge} if they are one)"
        )
    if kind == "other_name":
        return (
            f"{c['faces']} face(s) of {safe(c['name'])} ({_who(c['person'])}) are named "
            f"{safe(c['xmp_name'])} in XMP"
        )
    return f"{c.get('faces')} face(s) named {safe(c.get('xmp_name'))} in XMP: several persons " \
        "have that name"
