"""A CPU-bound neighbour: one process spinning on one core for the whole run (`--neighbour`).

A loaded machine is where a handler's costs show most: the sender thread, the caller and the
endpoint then compete for fewer cores, and a GIL handed back late costs the caller more.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_SPIN = "while True:\n    pass\n"


@contextmanager
def busy_neighbour(enabled: bool) -> Iterator[None]:
    """Keep one core busy with a separate process while the block runs (if ``enabled``)."""
    if not enabled:
        yield
        return
    process = subprocess.Popen([sys.executable, "-c", _SPIN])
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)
