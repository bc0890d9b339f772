"""The records a uWSGI master queues, handed over to its workers: exactly one of them sends each.

uWSGI loads the application in its master (unless ``--lazy-apps``) and forks its workers from C.
Unless it runs Python's fork hooks, it forks without taking the GIL, and a worker forked while
another thread of the master holds the GIL waits for it for good (uWSGI's issues 1149 and 1369;
seen here in 4 starts out of 40 when the master's sender was starting). So no sender thread runs
in a uWSGI master, and nothing of ours holds the GIL there once the application is loaded.

The master's records (those it logs while loading the application, before it forks) are in every
worker's memory, inherited. Each worker, once it knows it is one, claims in a file that the master
made, and that all of them share, the records it inherited beyond those that earlier workers
claimed, and sends only those: every record once, whichever worker comes first. A worker forked
later (recycled by ``--max-requests``, say) sends only what the master logged since; that is also
the only way records the master logs after its first forks leave it, as it runs no exit hook.
With a spool, the worker journals what it claimed anew and marks it settled in the master's journal
before it lets go of the claim file (`_spool.Spool.take_over_claimed`).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping


class Handover:
    """A claim file a parent makes before it forks, shared by all its children.

    It maps each queue's key to how many of the parent's records children have claimed there in
    all. Counts only grow, so a claim is a read and a write under an exclusive ``lockf`` lock,
    which each child takes for itself (unlike ``flock``, which a fork's child shares).
    """

    def __init__(self) -> None:
        # Open for the life of the process and its children; unlinked at once, so nothing is
        # left behind, whichever of them ends last.
        self._file = tempfile.TemporaryFile(prefix="cloudwatch-logs-handover-")  # noqa: SIM115

    def claim(
        self,
        inherited: Mapping[str, int],
        while_locked: Callable[[dict[str, int]], None] | None = None,
    ) -> dict[str, int]:
        """Claim the parent's records no other child claimed.

        Args:
            inherited: for each queue's key, how many records the parent had put there in all
                when it forked this child.
            while_locked: called with the claim once it is written, before the lock is let go:
                no other child's claim comes between (the spool journals the records it
                claimed anew, and only then marks them settled in the parent's journal).

        Returns:
            For each key, how many of the queue's latest records are this child's to send.

        Raises:
            OSError: the claim file cannot be read or written (then nobody may send them).
        """
        import fcntl  # uWSGI runs on POSIX only; nothing else makes a Handover

        descriptor = self._file.fileno()
        fcntl.lockf(descriptor, fcntl.LOCK_EX)
        try:
            stored = os.pread(descriptor, os.fstat(descriptor).st_size, 0)
            claimed: dict[str, int] = json.loads(stored) if stored else {}
            ours = {key: max(0, count - claimed.get(key, 0)) for key, count in inherited.items()}
            for key, count in inherited.items():
                claimed[key] = max(count, claimed.get(key, 0))
            written = json.dumps(claimed).encode()
            os.pwrite(descriptor, written, 0)
            os.ftruncate(descriptor, len(written))
            if while_locked is not None:
                while_locked(ours)
            return ours
        finally:
            fcntl.lockf(descriptor, fcntl.LOCK_UN)
