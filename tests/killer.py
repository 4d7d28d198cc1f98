"""Run a facecluster command and kill -9 it at its K-th SQL statement (fault suite).

    python tests/killer.py K COUNT_FILE facecluster-args...

K = 0 runs the command to the end and writes how many SQL statements it ran into
COUNT_FILE; K > 0 sends SIGKILL to the process just before statement K runs, so every
point of every transaction can be hit, not only the ones a timer happens to land on.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys

_kill_at = int(sys.argv[1])
_count_file = sys.argv[2]
_count = 0
_connect = sqlite3.connect


def _traced(*args, **kwargs):  # type: ignore[no-untyped-def]
    con = _connect(*args, **kwargs)

    def trace(statement: str) -> None:
        global _count
        _count += 1
        if _kill_at and _count >= _kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    con.set_trace_callback(trace)
    return con


sqlite3.connect = _traced  # type: ignore[assignment]

if __name__ == "__main__":
    from facecluster.cli import app

    sys.argv = ["facecluster", *sys.argv[3:]]
    try:
        app()
    finally:
        with open(_count_file, "w") as f:
            f.write(str(_count))
