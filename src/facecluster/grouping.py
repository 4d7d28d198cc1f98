"""What the outputs are made from: the :class:`Grouping` a clustering run hands over, and
the safe, unique folder name each person gets (shared by the folders, report and page)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from .suggest import Suggestion

UNKNOWN_FOLDER = "unknown"
MAX_NAME_CHARS = 100
_MAX_NAME_BYTES = 200  # file systems allow 255 bytes a name; keep room for " (12)"
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{p}{i}" for p in ("COM", "LPT") for i in range(10)]
)
_ILLEGAL = re.compile(r'[/\\:*?"<>|]')  # separators, and what Windows/SMB shares refuse
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class ReportFace:
    """One face, with its box in the coordinates of the upright original photo."""

    face_id: int
    photo: str
    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    prob: float
    distance: float | None  # squared L2 to the person's centroid; None when not assigned


@dataclass(frozen=True)
class ReportPerson:
    id: int
    name: str | None
    faces: tuple[ReportFace, ...]

    @property
    def folder_name(self) -> str:
        return self.name or f"person_{self.id:04d}"


@dataclass(frozen=True)
class Grouping:
    """What a clustering run produced, in display order."""

    persons: tuple[ReportPerson, ...]
    unknown: tuple[ReportFace, ...]
    model: str
    params: dict[str, object] = field(default_factory=dict)  # method, threshold, linkage...
    suggestions: tuple[Suggestion, ...] = ()  # persons that may be one (suggest.py)

    def photos(self) -> set[str]:
        """Every photo with a face in this grouping."""
        return {f.photo for p in self.persons for f in p.faces} | {f.photo for f in self.unknown}


def sanitize_name(name: str) -> str:
    """A safe single path component for ``name`` (a person's name or a file name).

    NFC-normalised; no separators or characters Windows refuses, no control or bidi
    characters, no ``..``, no leading dots or trailing dots/spaces, not a Windows device
    name, at most 100 characters (the extension is kept), never empty ("person")."""
    text = unicodedata.normalize("NFC", str(name))
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in _BIDI:
            continue
        if cat == "Cc" or cat == "Cs" or cat == "Zl" or cat == "Zp":
            out.append(" " if ch in "\t\n\r\x0b\x0c\u2028\u2029" else "_")
        else:
            out.append(ch)
    text = _ILLEGAL.sub("_", "".join(out))
    text = re.sub(r"\.{2,}", ".", text)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"_{2,}", "_", text)
    text = text.lstrip(" ._").rstrip(" .")
    stem, dot, ext = text.partition(".")
    if stem.upper().rstrip(" ") in _WINDOWS_RESERVED:
        text = f"{stem}_{dot}{ext}"
    return _fit(text) or "person"


def _fit(name: str, suffix: str = "") -> str:
    """``name`` with ``suffix`` inserted before its extension, cut to the length limits."""
    stem, ext = _split_ext(name)
    if len(ext) > 16:
        stem, ext = name, ""
    while stem and (
        len(stem) + len(suffix) + len(ext) > MAX_NAME_CHARS
        or len((stem + suffix + ext).encode("utf-8", "surrogatepass")) > _MAX_NAME_BYTES
    ):
        stem = stem[:-1]
    stem = unicodedata.normalize("NFC", stem).rstrip(" .")
    if not stem and not suffix:
        return ""
    return f"{stem}{suffix}{ext}"


def _split_ext(name: str) -> tuple[str, str]:
    i = name.rfind(".")
    return (name[:i], name[i:]) if i > 0 else (name, "")


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name (2)``, ``name (3)``...: the first not in ``taken`` (compared
    case-insensitively, as on macOS and Windows file systems). Adds it to ``taken``."""
    candidate, n = name, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = _fit(name, f" ({n})")
    taken.add(candidate.casefold())
    return candidate


def folder_names(grouping: Grouping) -> list[str]:
    """The folder of each person, in order: sanitised and unique, never ``unknown``."""
    taken = {UNKNOWN_FOLDER}
    return [unique_name(sanitize_name(p.folder_name), taken) for p in grouping.persons]


def distinct_photos(faces: Iterable[ReportFace]) -> list[str]:
    """The photos of ``faces`` in order, each once."""
    return list(dict.fromkeys(f.photo for f in faces))
