"""memory.keep_freed_buffers: a scan's large buffers reuse the same pages photo after photo."""

from __future__ import annotations

import subprocess
import sys

import pytest

CODE = """
import resource, sys
import numpy as np
from facecluster.memory import keep_freed_buffers
tuned = keep_freed_buffers() if sys.argv[1] == "1" else False
np.ones((3000, 4000, 3), np.uint8)  # the first photo's pages are faulted in either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):  # ten more 12 MP photos, each array freed before the next
    np.ones((3000, 4000, 3), np.uint8)
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_photo_buffers_are_reused_without_new_page_faults():
    def faults(tune: str) -> tuple[str, int]:
        out = subprocess.run(
            [sys.executable, "-c", CODE, tune], capture_output=True, text=True, check=True
        )
        tuned, n = out.stdout.split()
        return tuned, int(n)

    tuned, kept = faults("1")
    _, default = faults("0")
    assert tuned == "True"
    # by default each freed 36 MB array goes back to the kernel (munmap) and the next one
    # is faulted in again (here ~600 faults a photo, numpy asking for huge pages); kept: none
    assert default > 10 * 300 and kept < 100


def test_tuning_is_done_once_and_says_so():
    from facecluster import memory

    first = memory.keep_freed_buffers()
    assert memory.keep_freed_buffers() is first
    assert first is sys.platform.startswith("linux")  # glibc here; elsewhere nothing changes
