"""The spool's journal file, written through a shared memory map: no system call per record.

A record copied into a ``MAP_SHARED`` mapping is in the page cache the moment the copy ends, as
if ``write`` had been called: the kernel writes it to the file even if the process is killed
(SIGKILL, the OOM killer) right after. So the spool's guarantee holds while the file is grown,
reserved and mapped in batches of at least `GROWTH_BYTES`, not written once per record.

The blocks are reserved before they are mapped (``posix_fallocate``): a full disk is then an
``OSError`` the spool reports, never a SIGBUS on a page the file system cannot back. What lies
past the written end is zeros, which the journal's reader takes as its end.

The zeros are written too, with ``pwrite``, before the pages are mapped. A first write through the
map to a page that is not in the page cache takes a page fault (on ext4's reserved, unwritten
blocks, about 6 us), paid by the logging call that crosses into the page: one call in thirty. Once
written as zeros the pages are in the page cache, and the kernel maps sixteen of them per fault:
a fresh journal took 650 faults for 20,000 frames, now 45, and a frame costs 130 ns less
(640 against 776 ns, the zeros included; 580 in a journal whose pages are mapped already).
"""

from __future__ import annotations

import contextlib
import mmap
import os
from typing import Final

GROWTH_BYTES: Final = 1 << 20
"""The file grows by at least this much (or doubles, whichever is more, up to `MAX_STEP_BYTES`)."""
MAX_STEP_BYTES: Final = 2 * GROWTH_BYTES
"""The most the file grows by at once. The logging call that grows it writes the zeros (about
0.6 ms for this much, with the GIL let go), so an outage's journal grows in steps of this size
rather than by doubling, which would make one call write tens of MiB of zeros."""
REWIND_UP_TO_BYTES: Final = 4 * GROWTH_BYTES
"""An emptied file up to this size is zeroed and kept (`MappedJournal.empty`); a larger one (an
outage's backlog) is truncated, to give its disk space back."""
_ZEROS: Final = bytes(64 * 1024)
"""Written over an emptied journal, and into the new part of a growing one, a piece at a time."""


def _reserve(fd: int, offset: int, length: int) -> None:
    """Allocate ``length`` bytes of disk from ``offset`` and write zeros there, or raise OSError
    (ENOSPC)."""
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is not None:  # macOS has none: writing the zeros allocates the blocks
        fallocate(fd, offset, length)
    zeros = memoryview(_ZEROS)
    end = offset + length
    while offset < end:  # bounded: each write moves the offset on, or raises
        written = os.pwrite(fd, zeros[: end - offset], offset)
        if written <= 0:
            raise OSError(f"could not write the journal's zeros at offset {offset}")
        offset += written


class MappedJournal:
    """An append-only file of ``fd``, written through a memory map grown in large steps."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        # `map`, `capacity` and `size` are public for `Spool.append_one`, which writes `append`
        # out on the logging call's path (the call it saves is about 0.1 us of its 2).
        self.map: mmap.mmap | None = None
        """The file mapped, from offset 0 to `capacity` (None until the first append)."""
        self.capacity = 0
        """Bytes mapped, reserved on disk and zeroed: an append up to here needs no `grow`."""
        self.size = 0
        """Bytes written so far."""

    def append(self, data: bytes) -> None:
        """Add ``data`` at the end; it is in the page cache when this returns."""
        end = self.size + len(data)
        if end > self.capacity:
            self.grow(end)
        assert self.map is not None  # made by grow
        self.map[self.size : end] = data
        self.size = end

    def grow(self, needed: int) -> None:
        """Reserve, zero and map the file up to at least ``needed`` bytes (OSError: no room)."""
        step = min(max(self.capacity, GROWTH_BYTES), MAX_STEP_BYTES)
        capacity = max(needed, self.capacity + step)
        capacity += -capacity % mmap.PAGESIZE
        _reserve(self._fd, self.capacity, capacity - self.capacity)
        # Mapped before the old mapping goes: if this fails, the journal is as it was.
        mapped = mmap.mmap(self._fd, capacity, flags=mmap.MAP_SHARED)
        self._unmap()
        self.map, self.capacity = mapped, capacity

    def read(self, start: int) -> bytes:
        """A copy of what was written from offset ``start`` to the end."""
        return b"" if self.map is None else self.map[start : self.size]

    def empty(self) -> None:
        """Empty the file (everything in it is settled).

        Up to `REWIND_UP_TO_BYTES`, what was written is zeroed in place and the file and its
        mapping are kept: a few microseconds, and the next records find their pages mapped,
        where truncating and unmapping held the sender's lock for 0.2 to 0.5 ms and made the
        next logging call grow and map the file again. Zeros read as the journal's end, so a
        crash during or after the zeroing replays nothing settled.
        """
        if self.map is not None and self.capacity <= REWIND_UP_TO_BYTES:
            for start in range(0, self.size, len(_ZEROS)):
                end = min(start + len(_ZEROS), self.size)
                self.map[start:end] = _ZEROS[: end - start]
            self.size = 0
            return
        self._unmap()  # a mapping past the file's end would fault: unmap before truncating
        os.ftruncate(self._fd, 0)
        self.capacity = self.size = 0

    def forget(self) -> None:
        """Drop the mapping without touching the file (a forked child's copy of its parent's)."""
        self._unmap()
        self.capacity = self.size = 0

    def _unmap(self) -> None:
        if self.map is not None:
            with contextlib.suppress(BufferError, ValueError):
                self.map.close()
            self.map = None
