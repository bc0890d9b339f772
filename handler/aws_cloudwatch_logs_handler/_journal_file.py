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

Writing those zeros takes a millisecond or so for a step. The logging call that finds no room
pays it (holding the sender's lock, so other logging threads wait too), so the sender grows the
journal ahead of need after each batch (`MappedJournal.grow_ahead`), on its own thread and
without its lock: logging calls then find the room there, and only the first step, or an outage
that outruns the sender, is grown by a logging call.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import threading
from typing import Final

GROWTH_BYTES: Final = 1 << 20
"""The file grows by at least this much (or doubles, whichever is more, up to `MAX_STEP_BYTES`)."""
MAX_STEP_BYTES: Final = 2 * GROWTH_BYTES
"""The most the file grows by at once. The thread that grows it writes the zeros (about 0.6 ms
for this much, with the GIL let go), so an outage's journal grows in steps of this size rather
than by doubling, which would make one call write tens of MiB of zeros."""
AHEAD_BYTES: Final = 3 * GROWTH_BYTES
"""Room the sender leaves ahead of the written end after each batch (`MappedJournal.grow_ahead`).
What logging calls write before the sender is back: a full batch (10,000 frames of about 150
bytes), and what is logged while it is sent. With 2 MiB a thread logging flat out still ran out
of room in the first batch after a pause (measured by the calls' durations)."""
REWIND_UP_TO_BYTES: Final = 16 * GROWTH_BYTES
"""An emptied file up to this size is zeroed and kept (`MappedJournal.empty`); a larger one (an
outage's backlog) is truncated, to give its disk space back. Above what a journal holds when
the sender keeps pace, so that emptying it does not make the next logging call grow it again:
a journal moves once its settled frames outweigh the waiting ones (`Spool._acknowledge`), so
it holds up to twice what waits, and `AHEAD_BYTES` past that. Behind a thread logging flat out
(4 to 7 MiB waiting) that reached 14 MiB; at 8 MiB the files were truncated at every other move,
then grown and zeroed again."""
_ZEROS: Final = bytes(64 * 1024)
"""Written over an emptied journal, and into the new part of a growing one, a piece at a time."""
_pwritev = getattr(os, "pwritev", None)
_MAX_PIECES: Final = 256
"""Pieces of `_ZEROS` one ``pwritev`` writes at most (16 MiB), well under any system's IOV_MAX."""


def _reserve(fd: int, offset: int, length: int, *, in_one_call: bool) -> None:
    """Allocate ``length`` bytes of disk from ``offset`` and write zeros there, or raise OSError
    (ENOSPC).

    Args:
        in_one_call: write the zeros in as few system calls as can be (for the sender), rather
            than a piece at a time (for a logging call).
    """
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is not None and not in_one_call:
        # Belt and braces: writing the zeros allocates the blocks too (macOS has no fallocate).
        # Skipped for the sender, to whom each call is one more wait for the GIL.
        fallocate(fd, offset, length)
    zeros = memoryview(_ZEROS)
    end = offset + length
    while offset < end:  # bounded: each write moves the offset on, or raises
        left = end - offset
        if in_one_call and _pwritev is not None and left > len(_ZEROS):
            # The same zeros over and over, in one call: each call lets the GIL go, and the
            # sender waits up to a switch interval (5 ms) to take it back from a thread that
            # logs flat out; a piece at a time, its step took 30 ms. A logging call that grows
            # the journal is better off a piece at a time: it lets the GIL go only briefly, too
            # briefly for the sender to take it, where one long write let the sender in for a
            # whole turn (a call of 5.7 ms, against 0.4 to 1.3 ms).
            pieces = [zeros] * min(left // len(_ZEROS), _MAX_PIECES)
            written = _pwritev(fd, pieces, offset)
        else:
            written = os.pwrite(fd, zeros[:left], offset)
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
        self._growing = threading.Lock()
        """Held while the file past `capacity` is reserved, zeroed and mapped: by a logging call
        that found no room (under the sender's lock), or by the sender growing it ahead (without
        it). Two growths at once would let one's zeros land on frames the other's made room
        for."""

    def append(self, data: bytes | memoryview) -> None:
        """Add ``data`` at the end; it is in the page cache when this returns."""
        end = self.size + len(data)
        if end > self.capacity:
            self.grow(end)
        assert self.map is not None  # made by grow
        self.map[self.size : end] = data
        self.size = end

    def grow(self, needed: int) -> None:
        """Reserve, zero and map the file up to at least ``needed`` bytes (OSError: no room)."""
        with self._growing:
            if needed > self.capacity:  # else the sender grew it meanwhile
                self._grow_to(needed, in_one_call=False)

    def grow_ahead(self, room: int = AHEAD_BYTES) -> None:
        """Grow the file now if less than ``room`` bytes are left past its written end, so that
        no logging call has to (OSError: no room; a logging call then meets it, and reports it).

        Called by the sender without its lock, while logging calls append: they write below
        `capacity`, which moves only once the new mapping is in place, and the zeros go past
        it. The old mapping is let go of, not closed: a logging call may be writing through it
        (it maps the same pages), and it is unmapped once no one holds it.
        """
        if self.capacity - self.size >= room:
            return
        with self._growing:
            if self.capacity - self.size < room:
                self._grow_to(self.size + room, in_one_call=True)

    def _grow_to(self, needed: int, *, in_one_call: bool) -> None:
        """Grow to ``needed`` bytes, in one call (the sender, ahead: exactly that), or a piece at
        a time (a logging call: by a whole step at least, so that the next ones find room)."""
        step = min(max(self.capacity, GROWTH_BYTES), MAX_STEP_BYTES)
        capacity = needed if in_one_call else max(needed, self.capacity + step)
        capacity += -capacity % mmap.PAGESIZE
        _reserve(self._fd, self.capacity, capacity - self.capacity, in_one_call=in_one_call)
        # Mapped before the old mapping goes: if this fails, the journal is as it was. The new
        # mapping is in place before the capacity says there is room in it.
        self.map = mmap.mmap(self._fd, capacity, flags=mmap.MAP_SHARED)
        self.capacity = capacity

    def copy_to(self, other: MappedJournal, start: int) -> None:
        """Append what was written from offset ``start`` to the end to ``other``, straight from
        this map into the other's: a copy in between (``bytes``) cost more than the copy itself (a
        few MiB of fresh memory for the kernel to fault in and clear, 1.9 ms a move)."""
        if self.map is None:
            return
        with memoryview(self.map) as whole, whole[start : self.size] as waiting:
            other.append(waiting)

    def empty(self) -> None:
        """Empty the file (everything in it is settled).

        Up to `REWIND_UP_TO_BYTES`, what was written is zeroed in place and the file and its
        mapping are kept: a few microseconds, and the next records find their pages mapped,
        where truncating and unmapping held the sender's lock for 0.2 to 0.5 ms and made the
        next logging call grow and map the file again. Zeros read as the journal's end, so a
        crash during or after the zeroing replays nothing settled.
        """
        with self._growing:  # the sender may be growing it ahead meanwhile (on a logging call)
            self._empty()

    def _empty(self) -> None:
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
