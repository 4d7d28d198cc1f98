"""The process's allocator, set for scans of camera-size photos.

A 12 MP photo is a 36 MB array, and its copies and YuNet's feature maps are as large.
glibc's malloc gives every buffer over 32 MiB its own ``mmap`` and returns it to the kernel
when freed, so each photo's buffers are new pages that the kernel must fault in and zero
again: on a 12 MP photo that was half of the decode (131 -> 58 ms) and a fifth of YuNet
(about 240 -> 200 ms), most of it kernel time (docs/performance.md, issue 14). Keeping
freed memory in the heap makes the next photo reuse the same pages. It costs nothing in
peak memory: the scan's working set is the same photo after photo.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
KEEP_BYTES = 512 << 20  # larger than any one buffer of a scan (a 4096 px photo: 50 MB)
_tuned: bool | None = None


def keep_freed_buffers() -> bool:
    """Serve buffers up to ``KEEP_BYTES`` from the heap and keep up to that much freed
    memory there (glibc only; elsewhere nothing changes). Once per process; True when set."""
    global _tuned
    if _tuned is None:
        _tuned = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):  # not glibc (musl has no mallopt)
                return False
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            _tuned = bool(mallopt(M_MMAP_THRESHOLD, KEEP_BYTES)) and bool(
                mallopt(M_TRIM_THRESHOLD, KEEP_BYTES)
            )
    return _tuned
