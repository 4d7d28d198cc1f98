"""Typed errors: each carries a one-line user-facing message and an exit code.

The core raises these; only the CLI prints them and exits.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1  # partial failure under --strict, or a check that said "no"
EXIT_USAGE = 2  # usage or input error
EXIT_INTERRUPTED = 130
EXIT_PIPE = 141  # the reader of a pipe stopped reading (``| head``): 128 + SIGPIPE, no message


class FaceclusterError(Exception):
    """Base class. ``str(err)`` is the one-line message shown to the user."""

    exit_code = EXIT_USAGE


class ImageError(FaceclusterError):
    """A file could not be read or decoded as an image."""


class UnsupportedImage(ImageError):
    """The file is an image in a format we cannot decode (or not an image at all)."""


class ImageTooLarge(ImageError):
    """The image would need more pixels than the decode limit (decompression-bomb guard)."""


class NoFaceError(FaceclusterError):
    """A photo that had to contain a face has none."""


class ModelUnavailable(FaceclusterError):
    """An encoder's weights or runtime are missing; the message says how to fix it."""


class UnknownModel(FaceclusterError):
    """The user named an encoder that does not exist."""


class CacheError(FaceclusterError):
    """The face database is unusable (corrupt, newer schema, wrong file)."""


class CacheLocked(CacheError):
    """Another facecluster command (a scan, a group) is writing to the database."""


class CacheDamaged(CacheError):
    """The database file is corrupt: SQLite's check or a read found damaged pages."""


class CacheReadOnly(CacheError):
    """A command that writes was pointed at a database it may not write."""


class DiskFull(CacheError):
    """The disk holding the database (or an output) has no space left."""


class EncoderMismatch(CacheError):
    """An operation would mix embeddings of two encoders."""


class EmptyCache(FaceclusterError):
    """The database holds no faces for the requested encoder."""


class TrainingError(FaceclusterError):
    """Training cannot start or resume: too little data, a checkpoint of another run."""


class OutputError(FaceclusterError):
    """An output could not be written, or would overwrite something that is not ours."""
