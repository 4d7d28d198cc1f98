r"""Showing names and paths on a terminal: what the user typed or the disk holds, with the
characters that could drive the terminal escaped.

A person's name is stored as typed and a path as it is on disk; only their display
changes. Escaped: control characters (ESC, newline, tab, DEL, the C1 range), bidirectional
overrides and isolates (they reorder the rest of the line), line and paragraph separators,
and the bytes of a file name that are not UTF-8 (``\xNN``, as ``pathcodec.shown`` writes
them in reports). Everything else, emoji and their zero-width joiners included, is shown
as is. JSON output keeps the real text (json escapes control characters itself).
"""

from __future__ import annotations

import unicodedata

# Bidi embeddings/overrides (U+202A-U+202E), isolates (U+2066-U+2069), marks (LRM, RLM, ALM).
_BIDI = {*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C}
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, decoded by surrogateescape
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _unsafe(ch: str) -> bool:
    return ord(ch) in _BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs")


def safe(text: object) -> str:
    """``text`` (a name, a path, a message) for a terminal: one line, nothing that moves
    the cursor or recolours."""
    s = str(text)
    if not any(_unsafe(ch) for ch in s):
        return s
    return "".join(_escape(ch) if _unsafe(ch) else ch for ch in s)


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 face``, ``2 faces``; ``words`` for an irregular plural."""
    return f"{n} {word if n == 1 else (words or word + 's')}"
