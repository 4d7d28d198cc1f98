"""XMP face regions: MWG (mwg-rs) and Microsoft (MP) regions to and from face boxes.

Pure functions over the structures ExifTool reads and writes (exiftool.py: -struct -G1 -n).

Coordinates. facecluster's boxes are in pixels of the upright original: the photo as a
viewer shows it, EXIF orientation applied. XMP regions are normalised (0-1) to the image
*as stored*, before orientation: the MWG guidelines (2.0, 5.9: "region metadata is applied
to the stored image", and rotating by Exif Orientation must rotate the regions too), and
what digiKam, ExifTool's rotate_regions.config and immich's importer do.
``AppliedToDimensions`` holds the stored size. On reading, a region list whose
AppliedToDimensions has the upright shape of a photo turned a quarter (orientations 5-8)
was written against the upright image by a tool that does so, and is read that way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .records import NamedRegion

MARK = "facecluster"  # xmp:CreatorTool in the Extensions of the regions facecluster writes
MWG_TAG, MP_TAG = "XMP-mwg-rs:RegionInfo", "XMP-MP:RegionInfoMP"
MAX_REGIONS = 500  # per photo; more is not a face list
MAX_NAME = 200

Box = tuple[float, float, float, float]
_Turn = Callable[[float, float], tuple[float, float]]

# A point of the stored image (normalised) -> the same point upright, for each EXIF
# orientation, as Pillow's exif_transpose turns the pixels.
TO_UPRIGHT: dict[int, _Turn] = {
    1: lambda x, y: (x, y),
    2: lambda x, y: (1 - x, y),
    3: lambda x, y: (1 - x, 1 - y),
    4: lambda x, y: (x, 1 - y),
    5: lambda x, y: (y, x),
    6: lambda x, y: (1 - y, x),
    7: lambda x, y: (1 - y, 1 - x),
    8: lambda x, y: (y, 1 - x),
}
INVERSE = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}


def swaps(orientation: int) -> bool:
    """Orientations 5-8 turn the image a quarter: width and height trade places."""
    return orientation in (5, 6, 7, 8)


def stored_size(upright: tuple[int, int], orientation: int) -> tuple[int, int]:
    w, h = upright
    return (h, w) if swaps(orientation) else (w, h)


def turn(box: Box, orientation: int) -> Box:
    """A normalised box of the stored image, upright."""
    f = TO_UPRIGHT.get(orientation, TO_UPRIGHT[1])
    (ax, ay), (bx, by) = f(box[0], box[1]), f(box[2], box[3])
    return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)


def to_stored(box: Box, upright: tuple[int, int], orientation: int) -> Box:
    """A pixel box of the upright original -> normalised, in the stored image."""
    w, h = upright
    x1, y1 = max(0.0, box[0] / w), max(0.0, box[1] / h)
    x2, y2 = min(1.0, box[2] / w), min(1.0, box[3] / h)
    return turn((x1, y1, x2, y2), INVERSE.get(orientation, 1))


def to_upright(box: Box, upright: tuple[int, int], orientation: int) -> Box:
    """A normalised box of the stored image -> pixels of the upright original."""
    x1, y1, x2, y2 = turn(box, orientation)
    w, h = upright
    return x1 * w, y1 * h, x2 * w, y2 * h


# -- writing ------------------------------------------------------------------------------


def _r(v: float) -> float:
    return round(v, 6)


def mwg_region(name: str, box: Box, upright: tuple[int, int], orientation: int) -> dict:
    """The MWG region of a face (``box`` in upright pixels), marked as facecluster's."""
    x1, y1, x2, y2 = to_stored(box, upright, orientation)
    area = {"X": _r((x1 + x2) / 2), "Y": _r((y1 + y2) / 2), "W": _r(x2 - x1), "H": _r(y2 - y1)}
    return {
        "Type": "Face",
        "Name": name,
        "Area": {**area, "Unit": "normalized"},
        "Extensions": {"CreatorTool": MARK},
    }


def mp_region(mwg: dict) -> dict:
    """The Microsoft region of an MWG region: Rectangle = left, top, width, height."""
    a = mwg["Area"]
    rect = (a["X"] - a["W"] / 2, a["Y"] - a["H"] / 2, a["W"], a["H"])
    text = ", ".join(f"{max(v, 0.0):.6f}".rstrip("0").rstrip(".") for v in rect)
    return {"PersonDisplayName": mwg["Name"], "Rectangle": text}


def dimensions(upright: tuple[int, int], orientation: int) -> dict:
    w, h = stored_size(upright, orientation)
    return {"W": w, "H": h, "Unit": "pixel"}


def is_ours(region: Any) -> bool:
    """A region facecluster wrote (its Extensions carry xmp:CreatorTool = facecluster)."""
    ext = region.get("Extensions") if isinstance(region, dict) else None
    if not isinstance(ext, dict):
        return False
    return any(
        str(k).rpartition(":")[2] == "CreatorTool" and str(v).startswith(MARK)
        for k, v in ext.items()
    )


def normalised(region: Any) -> Box | None:
    """An MWG region's normalised box (stored image), or None when it has none."""
    area = region.get("Area") if isinstance(region, dict) else None
    if not isinstance(area, dict):
        return None
    try:
        x, y, w, h = (float(area[k]) for k in ("X", "Y", "W", "H"))
    except (KeyError, TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return None
    return x - w / 2, y - h / 2, x + w / 2, y + h / 2


def mp_box(region: Any) -> Box | None:
    """A Microsoft region's normalised box, or None."""
    rect = region.get("Rectangle") if isinstance(region, dict) else None
    try:
        x, y, w, h = (float(v) for v in str(rect).split(","))
    except ValueError:
        return None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return None
    return x, y, x + w, y + h


def overlap(a: Box, b: Box) -> float:
    """Intersection over union."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# -- reading ------------------------------------------------------------------------------


def clean_name(value: Any) -> str | None:
    """A region's name as facecluster stores names (spaces collapsed), or None."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    name = " ".join(str(value).split())
    return name[:MAX_NAME] if name else None


def _valid(box: Box) -> str | None:
    """Why a normalised box is absurd, or None when it is a plausible face region."""
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        return "an empty or negative area"
    if x1 < -0.01 or y1 < -0.01 or x2 > 1.01 or y2 > 1.01:
        return "an area outside the image"
    return None


def read_regions(
    meta: dict[str, Any], upright: tuple[int, int], orientation: int, source: str
) -> tuple[list[NamedRegion], list[str]]:
    """The named face regions of one file's XMP: MWG, else Microsoft's; and warnings."""
    warnings: list[str] = []
    found = _mwg(meta.get(MWG_TAG), upright, orientation, source, warnings)
    if not found:
        found = _mp(meta.get(MP_TAG), upright, orientation, source, warnings)
    unique: dict[tuple[str, tuple[float, ...]], NamedRegion] = {}
    for r in found:
        unique.setdefault((r.name, tuple(round(v, 1) for v in r.box)), r)
    return list(unique.values()), warnings


def _items(value: Any, key: str, warnings: list[str], what: str) -> list[Any]:
    items = value.get(key) if isinstance(value, dict) else None
    if items is None:
        return []
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        warnings.append(f"{what}: the region list is not a list")
        return []
    if len(items) > MAX_REGIONS:
        warnings.append(f"{what}: {len(items)} regions; only the first {MAX_REGIONS} were read")
    return items[:MAX_REGIONS]


def _mwg(
    info: Any, upright: tuple[int, int], o: int, source: str, warnings: list[str]
) -> list[NamedRegion]:
    items = _items(info, "RegionList", warnings, f"{source} MWG regions")
    frame = o
    dims = info.get("AppliedToDimensions") if isinstance(info, dict) else None
    if swaps(o) and isinstance(dims, dict) and upright[0] != upright[1]:
        try:
            ratio = float(dims["W"]) / float(dims["H"])
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            ratio = 0.0
        if abs(ratio - upright[0] / upright[1]) < abs(ratio - upright[1] / upright[0]):
            frame = 1  # written against the upright image
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("Type")
        name = clean_name(item.get("Name"))
        if (kind is not None and str(kind) != "Face") or name is None:
            continue  # pets, focus points, bar codes and unnamed faces name nobody
        area = item.get("Area")
        unit = area.get("Unit") if isinstance(area, dict) else None
        box = normalised(item)
        why = "no readable area" if box is None else _valid(box)
        if unit not in (None, "normalized"):
            why = f"an area in unit {str(unit)[:20]!r}, not normalized"
        if why or box is None:
            warnings.append(f"{source} MWG region {name!r} has {why}: skipped")
            continue
        out.append(NamedRegion(name, to_upright(_clip(box), upright, frame), f"{source} mwg"))
    return out


def _mp(
    info: Any, upright: tuple[int, int], o: int, source: str, warnings: list[str]
) -> list[NamedRegion]:
    out = []
    for item in _items(info, "Regions", warnings, f"{source} Microsoft regions"):
        name = clean_name(item.get("PersonDisplayName")) if isinstance(item, dict) else None
        if name is None:
            continue
        box = mp_box(item)
        why = "no readable rectangle" if box is None else _valid(box)
        if why or box is None:
            warnings.append(f"{source} Microsoft region {name!r} has {why}: skipped")
            continue
        out.append(NamedRegion(name, to_upright(_clip(box), upright, o), f"{source} mp"))
    return out


def _clip(box: Box) -> Box:
    return max(0.0, box[0]), max(0.0, box[1]), min(1.0, box[2]), min(1.0, box[3])
