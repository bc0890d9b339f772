"""Spool files as tests see them: the ones this process holds open, and a journal left behind by
a process killed outright."""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

from aws_cloudwatch_logs_handler._spool import group_key


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


def dead_journal(directory: Path, group: str, data: bytes, name: str = "deadbeef") -> Path:
    """Leave ``data`` (frames) as the journal ``name`` of a dead process for ``group`` in
    ``directory``, as a process killed outright leaves it: written, private, nobody holding it."""
    journal = directory / f"{group_key(group)}.99999.{name}.journal"
    journal.write_bytes(data)
    journal.chmod(0o600)
    return journal
