"""Forks: knowing, on every logging call, whether this process is a fork's child, without a
system call; and keeping a fork out of the work it must not split.

Python's fork hooks (`os.register_at_fork`) do not run for a fork made from C (uWSGI's workers, a
C extension's ``fork()``), so state that must not cross a fork is checked where it is used. The
plain check, ``os.getpid()`` against a saved id, is a system call: about 150 ns on every logging
call, the largest single cost of queueing a record.

`ProcessMark` checks a byte instead. On Linux the byte lives in a page mapped with
``MADV_WIPEONFORK``: the kernel gives a fork's child that page zero-filled, so a set byte means
"still the process that set it", read in a few nanoseconds. Where that is not available (another
system, an older kernel, a sandbox that refuses it) the mark falls back to comparing process ids.
https://man7.org/linux/man-pages/man2/madvise.2.html

`ForkFence` is the other half: a fork made in the middle of an import leaves the child that module
half-initialised for good (``partially initialized module 'boto3'``), so every delivery there would
fail. The sender imports boto3 when it builds its first client, while the application may fork.
"""

from __future__ import annotations

import mmap
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, Protocol

_MADV_WIPEONFORK: Final = getattr(mmap, "MADV_WIPEONFORK", 18)
"""Linux 4.14's value in the generic headers; older Pythons do not name it."""
_GENERIC_HEADERS: Final = frozenset({"x86_64", "amd64", "aarch64", "arm64"})
"""Machines whose Linux uses the generic ``madvise`` numbers (a few old ones differ)."""
FORK_WAIT_S: Final = 10.0
"""The longest a fork waits for work it must not split. A client's build imports boto3 (under a
second) and may ask the credential chain (one-second timeouts); past this the fork goes ahead."""


class _Byte(Protocol):
    def __getitem__(self, index: int, /) -> int: ...
    def __setitem__(self, index: int, value: int, /) -> None: ...


class _PidByte:
    """The fallback: byte 0 reads 1 while the process id is the one that set it."""

    __slots__ = ("_pid",)

    def __init__(self) -> None:
        self._pid = -1

    def __getitem__(self, index: int, /) -> int:
        return 1 if self._pid == os.getpid() else 0

    def __setitem__(self, index: int, value: int, /) -> None:
        self._pid = os.getpid() if value else -1


def _wiped_on_fork() -> _Byte:
    # os.uname, not the platform module: importing that costs a Lambda cold start over 1 ms.
    if sys.platform != "linux" or os.uname().machine.lower() not in _GENERIC_HEADERS:
        return _PidByte()
    try:
        page = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        page.madvise(_MADV_WIPEONFORK)
    except (OSError, ValueError, AttributeError):  # an older kernel, or a sandbox: EINVAL
        return _PidByte()
    return page


class ProcessMark:
    """A mark set in one process that no fork's child inherits, however the fork was made.

    The usual check, on the logging call's path, reads ``mark.byte[0]``: 1 in the process that
    called `set` since, 0 in a child forked after it (until the child calls `set` itself) and
    before the first `set`.
    """

    __slots__ = ("byte",)

    def __init__(self) -> None:
        self.byte: _Byte = _wiped_on_fork()

    def set(self) -> None:
        """Mark this process."""
        self.byte[0] = 1

    def clear(self) -> None:
        """Unmark this process, as if it were a fork's child."""
        self.byte[0] = 0

    def here(self) -> bool:
        """True if this process set the mark (and no fork came between)."""
        return self.byte[0] == 1

    @property
    def wiped_by_the_kernel(self) -> bool:
        """True if a fork's child gets the mark cleared by the kernel, not by a process id check."""
        return isinstance(self.byte, mmap.mmap)


class ForkFence:
    """Work that no fork may split: a fork made through Python's hooks waits for it to end.

    The sender builds its clients inside (the first build imports boto3 and botocore); the
    sender's ``before_fork`` hook waits here, boundedly, so a child made by ``os.fork``,
    multiprocessing, gunicorn or uWSGI with ``--py-call-uwsgi-fork-hooks`` never inherits an
    import half done. A fork made below Python's hooks cannot be held back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held_for_fork = False

    @contextmanager
    def inside(self) -> Iterator[None]:
        """Do the work in the ``with`` block with no fork in the middle."""
        with self._lock:
            yield

    def before_fork(self) -> None:
        self._held_for_fork = self._lock.acquire(timeout=FORK_WAIT_S)

    def after_fork_in_parent(self) -> None:
        if self._held_for_fork:
            self._held_for_fork = False
            self._lock.release()

    def after_fork_in_child(self) -> None:
        """A fresh lock: the parent's may have been held by a thread the child does not have."""
        self._lock = threading.Lock()
        self._held_for_fork = False


CLIENT_BUILDS: Final = ForkFence()
"""Fences the building of clients (`_logs_api.LogsApi.client`) from forks."""
