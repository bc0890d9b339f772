"""A CPU-bound neighbour: one process spinning on one core for the whole run (`--neighbour`).

A loaded machine is where a handler's costs show most: the sender thread, the caller and the
endpoint then compete for fewer cores, and a GIL handed back late costs the caller more.
The neighbour ends with the block, or by itself once the bench that started it is gone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_SPIN = """\
import os, sys
parent = int(sys.argv[1])
while True:
    for _ in range(1_000_000):  # about 20 ms of pure computation between two looks
        pass
    if os.getppid() != parent:  # the bench is gone (killed outright): so is its neighbour
        break
"""


@contextmanager
def busy_neighbour(enabled: bool) -> Iterator[None]:
    """Keep one core busy with a separate process while the block runs (if ``enabled``)."""
    if not enabled:
        yield
        return
    process = subprocess.Popen([sys.executable, "-c", _SPIN, str(os.getpid())])
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)
