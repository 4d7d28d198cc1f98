"""One sidecar's update by export-xmp: facecluster's regions in, everything else kept
(pure functions over ExifTool's JSON; xmp_export.py does the reading and writing).

Only the regions facecluster wrote before (recognised by the mark in their Extensions,
xmp_regions.is_ours) are replaced, together with their Microsoft twins. Regions of other
tools stay as they are; where one of them already covers a face (IoU >= 0.5) facecluster
does not add its own: the same name is "already there", another name a conflict that the
other tool's region wins. Keywords (``--keywords``) are only ever added.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .xmp_regions import (
    MP_TAG,
    MWG_TAG,
    Box,
    clean_name,
    is_ours,
    mp_box,
    mp_region,
    normalised,
    overlap,
)

HS_TAG, TAGS_TAG = "XMP-lr:HierarchicalSubject", "XMP-digiKam:TagsList"
# What a write may change; every other property must read back as it was.
OURS = {MWG_TAG, MP_TAG, HS_TAG, TAGS_TAG, "XMP-x:XMPToolkit"}
DELETE = ("XMP-mwg-rs:RegionInfo", "XMP-MP:RegionInfoMP")  # replaced whole on each write


@dataclass
class Merge:
    """What to write into one sidecar, and what it does."""

    values: dict[str, Any] = field(default_factory=dict)  # exiftool tag -> value
    expected: dict[str, Any] = field(default_factory=dict)  # how those read back
    written: list[str] = field(default_factory=list)  # names of facecluster's regions
    kept: int = 0  # regions of other tools
    notes: list[str] = field(default_factory=list)
    changed: bool = True
    refused: str = ""  # why nothing may be written


def _list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def canonical(value: Any) -> str:
    """A comparable form of a read or written value (floats to 6 places)."""

    def fix(v: Any) -> Any:
        if isinstance(v, float):
            return round(v, 6)
        if isinstance(v, dict):
            return {str(k).rpartition(":")[2]: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    return json.dumps(fix(value), sort_keys=True, ensure_ascii=False)


def merge(
    existing: dict[str, Any] | None,
    ours: list[dict[str, Any]],
    dims: dict[str, Any],
    keywords: bool,
) -> Merge:
    """The update of a sidecar (``existing``: what ExifTool read of it, None when there is
    none yet) that leaves ``ours`` (xmp_regions.mwg_region) as facecluster's regions."""
    out = Merge()
    old = existing or {}
    info: dict[str, Any] = old[MWG_TAG] if isinstance(old.get(MWG_TAG), dict) else {}
    regions = _list(info.get("RegionList"))
    theirs = [r for r in regions if not is_ours(r)]
    before = [r for r in regions if is_ours(r)]
    mp_old: dict[str, Any] = old[MP_TAG] if isinstance(old.get(MP_TAG), dict) else {}
    mine = [(clean_name(r.get("Name")), normalised(r)) for r in before]
    mp_theirs = [m for m in _list(mp_old.get("Regions")) if not _twin(m, mine)]
    boxes = [(clean_name(r.get("Name")), normalised(r)) for r in theirs if _face(r)]
    boxes += [(clean_name(m.get("PersonDisplayName")), mp_box(m)) for m in mp_theirs if
              isinstance(m, dict)]
    keep = []
    for region in ours:
        clash = _clash(normalised(region), boxes)
        if clash is None:
            keep.append(region)
        elif clash == region["Name"]:
            out.notes.append(f"{region['Name']}: already named so by another tool")
        else:
            out.notes.append(
                f"{region['Name']}: another tool's region names this face {clash or 'nobody'}; "
                "it is kept"
            )
    old_dims = info.get("AppliedToDimensions")
    if theirs and isinstance(old_dims, dict) and not _same_shape(old_dims, dims):
        out.refused = (
            f"another tool's regions apply to {old_dims.get('W')}x{old_dims.get('H')} pixels, "
            f"not {dims['W']}x{dims['H']}: left unchanged"
        )
        return out
    out.written = [r["Name"] for r in keep]
    out.kept = len(theirs)
    new_list = theirs + keep
    new_mp = mp_theirs + [mp_region(r) for r in keep]
    if new_list:
        # Only other tools' regions left: their struct stays as they wrote it.
        applied = dims if keep else old_dims if isinstance(old_dims, dict) else None
        info_new: dict[str, Any] = {"AppliedToDimensions": applied} if applied else {}
        out.values["RegionInfo"] = {**info_new, "RegionList": new_list}
        out.expected[MWG_TAG] = out.values["RegionInfo"]
    if new_mp:
        out.values["RegionInfoMP"] = {"Regions": new_mp}
        out.expected[MP_TAG] = out.values["RegionInfoMP"]
    for tag, key, sep in ((HS_TAG, "HierarchicalSubject", "|"), (TAGS_TAG, "TagsList", "/")):
        have = [str(v) for v in _list(old.get(tag))]
        if old.get(tag) is not None:
            out.expected[tag] = old.get(tag)
        if not keywords:
            continue
        add = [f"People{sep}{n}" for n in dict.fromkeys(out.written) if sep not in n]
        add = [k for k in add if k not in have]
        if add:
            out.values[key] = have + add
            out.expected[tag] = have + add
    out.changed = any(
        canonical(out.expected.get(tag)) != canonical(old.get(tag)) for tag in (MWG_TAG, MP_TAG)
    ) or any(k in out.values for k in ("HierarchicalSubject", "TagsList"))
    return out


def _face(region: Any) -> bool:
    return isinstance(region, dict) and str(region.get("Type", "Face")) == "Face"


def _twin(mp: Any, mine: list[tuple[str | None, Box | None]]) -> bool:
    """Is this Microsoft region the twin of one of facecluster's MWG regions?"""
    if not isinstance(mp, dict):
        return False
    name, box = clean_name(mp.get("PersonDisplayName")), mp_box(mp)
    return box is not None and any(
        n == name and b is not None and max(abs(x - y) for x, y in zip(b, box, strict=True)) < 1e-4
        for n, b in mine
    )


def _clash(box: Box | None, others: list[tuple[str | None, Box | None]]) -> str | None:
    """The name ('' for none) of another tool's region over the same face, or None."""
    if box is None:
        return None
    for name, other in others:
        if other is not None and overlap(box, other) >= 0.5:
            return name or ""
    return None


def _same_shape(a: dict[str, Any], b: dict[str, Any]) -> bool:
    try:
        ra, rb = float(a["W"]) / float(a["H"]), float(b["W"]) / float(b["H"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return True  # no usable size: nothing to contradict
    return abs(ra - rb) <= 0.01 * rb


def verify(before: dict[str, Any] | None, after: dict[str, Any] | None, m: Merge) -> str:
    """Why the file ExifTool wrote is not what was asked ('' when it is): every property
    facecluster does not own reads back unchanged, and its own as planned."""
    if after is None:
        return "exiftool wrote no readable file"
    old, new = before or {}, after
    for tag in sorted(set(old) | set(new)):
        if tag in OURS or not tag.startswith("XMP"):
            continue
        if canonical(old.get(tag)) != canonical(new.get(tag)):
            return f"{tag} would not be kept as it is"
    for tag in (MWG_TAG, MP_TAG, HS_TAG, TAGS_TAG):
        if canonical(m.expected.get(tag)) != canonical(new.get(tag)):
            return f"{tag} would lose what other tools wrote in it"
    return ""
