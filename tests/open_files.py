"""The files under a directory that this process holds open: what a test of file handling
checks, rather than a count of every descriptor of the process."""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path


def open_files_under(directory: Path) -> list[str]:
    """The files under ``directory`` that this process holds open (file descriptors, the maps'
    own included). Only those: a count of every descriptor would also see another test's
    handler let go of its journal, whenever the sender forgets that handler's queues."""
    held = []
    for fd in os.listdir("/proc/self/fd"):
        with suppress(OSError):  # closed meanwhile (listdir's own descriptor, say)
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(f"{directory}/"):
                held.append(target)
    return held
