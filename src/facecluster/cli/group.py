"""`group`: persons from faces, and the outputs (folders, report, page, any writer)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import config
from ..display import safe
from ..errors import FaceclusterError
from ..pathcodec import shown
from ..registry import or_list
from ..writers import LAYOUTS, WRITERS
from .app import app
from .options import CLUSTERING, Shared, shared
from .output import emit_json, handles_errors
from .xmp import xmp_name_lines


@app.command()
@handles_errors()
@shared("db", *CLUSTERING, "model", "weights", "as_json", "quiet")
def group(
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
            help="Write the people page: an overview of everyone, each person's faces with "
            "face ids and the commands that correct them, and the persons that may be one. "
            "A re-run replaces only what facecluster wrote and makes only new thumbnails.",
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
    link_base: Annotated[
        str,
        typer.Option(
            "--link-base",
            metavar="auto|file|URL",
            help="Where the page's links to the photos point: 'auto' (relative when the "
            "page and the photos share a folder below /, else file:// links), 'file' "
            "(absolute file:// links), or a URL or path that each photo's path below the "
            "photos' common folder is appended to (e.g. https://nas.local/photos).",
        ),
    ] = "auto",
    full_paths: Annotated[
        bool,
        typer.Option(
            "--full-paths",
            help="Show each photo's absolute path in the page's tooltips (default: its path "
            "below the photos' common folder).",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Say what would change (persons merged or split, named persons affected) "
            "and save nothing.",
        ),
    ] = False,
    *,
    opts: Shared,
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
    from ..api import FaceIndex
    from ..cluster import METHODS
    from ..export import check_output_targets, database_files
    from ..group import threshold_warning
    from ..writers import WriteOptions, output_targets, write_outputs

    clustering = opts.clustering()
    if layout not in LAYOUTS:
        raise FaceclusterError(f"--layout must be {or_list(LAYOUTS)}")
    targets = output_targets({"folders": out, "report": report, "html": html}, write or ())
    if dry_run and targets:
        more = "/--write" if write else ""
        raise FaceclusterError(
            f"--dry-run saves and writes nothing: drop --out/--report/--html{more}"
        )
    protect = database_files(opts.db or config.default_db_path())
    check_output_targets(targets, protect)
    with FaceIndex(
        opts.db, model=opts.model, weights=opts.weights, create=False, write=not dry_run,
        check=True,
    ) as index:
        settings = index.settings(**clustering)
        uses_threshold = "threshold" in METHODS.get(settings.method).uses
        warning = (
            threshold_warning(index.model, settings.threshold, index.threshold)
            if uses_threshold
            else None
        )
        result = index.group(settings, dry_run=dry_run)
    if warning:
        result.warnings.append(warning)
        print(f"warning: {safe(warning)}", file=sys.stderr)
    options = WriteOptions(layout, protect, link_base, full_paths)
    outputs, found = write_outputs(result.grouping, targets, options)
    kept = found or []
    if found is not None:
        outputs["kept"] = [shown(p) for p in kept]  # JSON: the path, not UTF-8 as \xNN
    if kept and not opts.quiet:
        _say_kept(kept)
    summary = result.summary() | outputs
    if opts.as_json:
        emit_json(summary)
    elif not opts.quiet:
        _render_group(summary)


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
    for line in xmp_name_lines(s.get("xmp_names") or {}, s["saved"]):
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
