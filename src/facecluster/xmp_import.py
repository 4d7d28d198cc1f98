"""scan's side of "names that travel": the face names other tools (digiKam, Lightroom,
ExifToolGui, immich, facecluster's own export-xmp) wrote into the photos' XMP.

For each photo the scan reads, the first of these that holds named face regions is used:
the sidecar ``photo.jpg.xmp``, the sidecar ``photo.xmp``, the XMP inside the photo. In it,
MWG regions are read first and Microsoft's as the fallback (as digiKam and ExifToolGui
do). A named region that overlaps a detected face (IoU >= 0.5, after orientation) names
that face; one that overlaps none is kept as a named region of the photo. ``group`` then
names persons from their named faces (xmp_names.py).

Nothing here fails a scan: a malformed packet, absurd coordinates, a huge sidecar or a
missing ExifTool become warnings of the photo (ScanStats.xmp_warnings).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from . import exiftool, imageio
from .cache_writes import XmpRegions, match_boxes
from .records import DecodedPhoto, Failure, NamedRegion, PhotoSize, ScanStats
from .xmp_regions import MP_TAG, MWG_TAG, read_regions

SIDECAR_MAX_BYTES = 8 * 2**20  # a sidecar larger than this is not face metadata: skipped
TAGS = (f"-{MWG_TAG}", f"-{MP_TAG}", "-File:FileType", "-ExifTool:Warning", "-ExifTool:Error")
# The namespaces of MWG and Microsoft regions: a photo whose bytes name neither has no
# embedded regions, and ExifTool need not read it (XMP is stored uncompressed).
NAMESPACES = (b"metadataworkinggroup.com/schemas/regions", b"ns.microsoft.com/photo/1.2/t/Region")


def mentions_regions(data: bytes) -> bool:
    return any(ns in data for ns in NAMESPACES)


def sidecars(photo: Path) -> list[Path]:
    """The sidecars a photo may have, in the order they are read: photo.jpg.xmp (digiKam,
    darktable, immich), then photo.xmp (Lightroom)."""
    out = [photo.with_name(photo.name + ".xmp")]
    if photo.suffix and photo.suffix.lower() != ".xmp":
        out.append(photo.with_suffix(".xmp"))
    return out


class XmpReader:
    """Reads the named regions of a batch of photos with one ExifTool run."""

    def __init__(self) -> None:
        self.available = exiftool.find() is not None
        self._said_missing = False

    def read(
        self,
        photos: Sequence[tuple[DecodedPhoto | PhotoSize, Sequence[Sequence[float]]]],
        stats: ScanStats,
    ) -> list[XmpRegions]:
        """One op per photo whose XMP could be read (its regions replace the stored ones);
        ``photos`` come with the boxes of their faces; counts and warnings go to ``stats``."""
        files: list[Path] = []
        owners: list[tuple[int, str]] = []
        for i, (photo, _) in enumerate(photos):
            for side in sidecars(photo.entry.path):
                if _usable(side, stats):
                    files.append(side)
                    owners.append((i, "sidecar"))
            if photo.xmp_regions:
                files.append(photo.entry.path)
                owners.append((i, "embedded"))
        if not files:
            return [XmpRegions(str(p.entry.path), []) for p, _ in photos]
        if not self.available:
            if not self._said_missing:
                self._said_missing = True
                note = f"face names in XMP were not read: exiftool is missing; {exiftool.INSTALL}"
                stats.xmp_warnings.append(Failure(str(files[0]), note))
            return []
        try:
            metas = exiftool.read(files, TAGS)
        except (exiftool.ExiftoolMissing, exiftool.ExiftoolFailed, OSError) as exc:
            where = str(photos[0][0].entry.path) if photos else ""
            note = f"the XMP of {len(photos)} photo(s) from here on was not read: {exc}"
            stats.xmp_warnings.append(Failure(where, note))
            return []
        found: dict[int, list[NamedRegion]] = {}
        unread = {i for i, kind in owners if kind == "embedded"}  # for now
        for path, (i, kind), meta in zip(files, owners, metas, strict=True):
            if kind == "embedded" and meta is not None:
                unread.discard(i)
            if i in found or meta is None:
                continue
            regions = self._regions(path, kind, meta, photos[i][0], stats)
            if regions:
                found[i] = regions
        ops = []
        for i, (photo, boxes) in enumerate(photos):
            if i in unread and i not in found:
                continue  # unreadable: what is stored stays
            regions = found.get(i, [])
            matched = match_boxes([r.box for r in regions], boxes)  # as the write will
            stats.xmp_faces_named += len(matched)
            stats.xmp_regions_alone += len(regions) - len(matched)
            ops.append(XmpRegions(str(photo.entry.path), regions))
        return ops

    def _regions(
        self, path: Path, kind: str, meta: dict, photo: DecodedPhoto | PhotoSize, stats: ScanStats
    ) -> list[NamedRegion]:
        error = str(meta.get("ExifTool:Error") or "")
        warning = str(meta.get("ExifTool:Warning") or "")
        if kind == "sidecar" and (error or meta.get("File:FileType") != "XMP"):
            what = error or f"a {meta.get('File:FileType') or 'file'} file, not XMP"
            stats.xmp_warnings.append(Failure(str(path), f"sidecar ignored: {what[:160]}"))
            return []
        if "XMP" in warning:
            stats.xmp_warnings.append(Failure(str(path), f"XMP: {warning[:160]}"))
        if MWG_TAG not in meta and MP_TAG not in meta:
            return []
        orientation = imageio.exif_orientation(photo.entry.path)
        regions, notes = read_regions(meta, (photo.width, photo.height), orientation, kind)
        stats.xmp_warnings += [Failure(str(path), note) for note in notes]
        return regions


def _usable(side: Path, stats: ScanStats) -> bool:
    """Does the sidecar exist, as a regular file of a sane size?"""
    try:
        st = os.stat(side)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    if st.st_size > SIDECAR_MAX_BYTES:
        note = f"sidecar of {st.st_size / 2**20:.0f} MB ignored (larger than "
        stats.xmp_warnings.append(Failure(str(side), note + f"{SIDECAR_MAX_BYTES // 2**20} MB)"))
        return False
    return True
