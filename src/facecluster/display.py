"""Showing names and paths on a terminal: what the user typed or the disk holds, with the
characters that could drive the terminal escaped.

A person's name is stored as typed and a path as it is on disk; only their display
changes. Escaped: control characters (ESC, newline, tab, DEL, the C1 range), bidirectional
overrides and isolates (they reorder the rest of the line), line and paragraph separators,
and lone surrogates (undecodable bytes of a file name). Everything else, emoji and their
zero-width joiners included, is shown as is.
"""

from __future__ import annotations

import unicodedata

# Bidi embeddings/overrides (U+202A-U+202E), isolates (U+2066-U+2069), marks (LRM, RLM, ALM).
_BIDI = {*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C}
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _unsafe(ch: str) -> bool:
    return ord(ch) in _BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs")


def safe(text: object) -> str:
    """``text`` for a terminal: one line, nothing that moves the cursor or recolours.
    A backslash is doubled only when something else was escaped, so ordinary Windows-like
    names stay readable and an escaped name cannot be mistaken for a plain one."""
    s = str(text)
    if not any(_unsafe(ch) for ch in s):
        return s
    return "".join(_escape(ch) if ch == "\\" or _unsafe(ch) else ch for ch in s)
