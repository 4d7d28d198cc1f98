"""The scan's feed: read and hash files in worker threads, decide in the main thread, in
the order of the jobs, which of them need decoding, and decode only those (in the same
threads). Content the index already has (a move, a copy) is never decoded."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from . import config
from .records import DecodedPhoto, Failure, FileEntry, ReadPhoto
from .stages import decode_photo, read_photo

Loaded = DecodedPhoto | ReadPhoto | Failure  # a ReadPhoto: read and hashed, not decoded
Job = tuple[FileEntry, int | None]
Item = tuple[FileEntry, int | None, "Future[Loaded]"]


def _done(value: Loaded) -> Future[Loaded]:
    fut: Future[Loaded] = Future()
    fut.set_result(value)
    return fut


def feed(
    jobs: Sequence[Job],
    workers: int,
    window: int,
    decode: Callable[[ReadPhoto, int | None], bool],
    side: int = config.DETECT_MAX_SIDE,
) -> Generator[tuple[FileEntry, int | None, Loaded], None, None]:
    """(entry, photo id, result) for each job, in order. ``decode(photo, photo_id)`` is
    asked in the main thread, in job order, once a file is read: False leaves it undecoded.
    At most ``window`` files are in flight (memory stays flat). ``side``: the detection
    copy's long side."""
    todo = iter(jobs)
    reading: deque[tuple[FileEntry, int | None, Future[ReadPhoto | Failure]]] = deque()
    ready: deque[Item] = deque()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="decode")

    def fill() -> None:
        while len(reading) + len(ready) < window:
            job = next(todo, None)
            if job is None:
                return
            reading.append((job[0], job[1], pool.submit(read_photo, job[0])))

    def advance(block: bool) -> None:
        """Decide for the files read, in order (waits for the first one when ``block``)."""
        while reading and (block or reading[0][2].done()):
            block = False
            entry, photo_id, fut = reading.popleft()
            raw = fut.result()
            if isinstance(raw, Failure) or not decode(raw, photo_id):
                ready.append((entry, photo_id, _done(raw)))
            else:
                ready.append((entry, photo_id, pool.submit(decode_photo, raw, side)))
        fill()

    try:
        fill()
        while reading or ready:
            advance(block=not ready)
            entry, photo_id, fut = ready.popleft()
            fill()
            while not fut.done() and reading:  # keep the threads busy while waiting
                heads: list[Future[Any]] = [fut, reading[0][2]]
                wait(heads, return_when=FIRST_COMPLETED)
                advance(block=False)
            yield entry, photo_id, fut.result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
