"""File names that are not valid UTF-8, stored losslessly and shown escaped.

On POSIX a file name is bytes; Python decodes the bytes that are not UTF-8 into lone
surrogates (U+DC80-U+DCFF, PEP 383), which SQLite's UTF-8 text cannot hold. The database
stores each such surrogate as a code point of the last private-use block (U+10FF80 +
byte), and escapes real characters of U+10FF00-U+10FFFF with U+10FF00, so the mapping is
one-to-one and keeps prefixes: a folder's paths still sort together (``path_range``).
Valid UTF-8 names, that is nearly all of them, are stored as they are.
"""

from __future__ import annotations

import os
import re

_ESC = 0x10FF00
_NEEDS_ENCODING = re.compile("[\udc80-\udcff\U0010ff00-\U0010ffff]")
_NEEDS_DECODING = re.compile("[\U0010ff00-\U0010ffff]")
_SURROGATES = re.compile("[\ud800-\udfff]")


def to_db(path: str | os.PathLike[str]) -> str:
    """The text the database stores for ``path`` (a str or a Path)."""
    text = os.fspath(path)
    if not _NEEDS_ENCODING.search(text):
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(chr(_ESC + code - 0xDC00))  # U+10FF80..U+10FFFF
        elif code >= _ESC:
            out.append(chr(_ESC) + chr(code - 0x100))  # U+10FF00 + U+10FE00..U+10FEFF
        else:
            out.append(ch)
    return "".join(out)


def from_db(text: str) -> str:
    """The path (as Python's os functions take it) for stored ``text``."""
    if not _NEEDS_DECODING.search(text):
        return text
    out = []
    chars = iter(text)
    for ch in chars:
        code = ord(ch)
        if code == _ESC:
            out.append(chr(ord(next(chars, chr(0x10FE00))) + 0x100))
        elif code > _ESC + 0x7F:
            out.append(chr(code - _ESC + 0xDC00))
        else:
            out.append(ch)
    return "".join(out)


def shown(path: str | os.PathLike[str]) -> str:
    """``path`` for a terminal or a text file: bytes that are not UTF-8 as ``\\xNN``."""
    text = os.fspath(path)
    if _SURROGATES.search(text):
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text
