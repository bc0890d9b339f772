"""The opt-in durable spool: an on-disk journal of records not yet delivered.

With ``spool_dir=``, every event is appended to this process's journal before it counts as
accepted, and forgotten once settled. A process killed outright (SIGKILL, OOM) leaves its journal
behind; the next handler for the same group that opens the same ``spool_dir`` delivers what it
holds. Delivery is at least once: an event delivered just before the crash, but not yet marked as
such, is sent again. Readers can recognise such duplicates by equal timestamp and message.

Layout: ``<spool_dir>/<group key>.<pid>.<random>.journal`` holds frames; a sibling ``.ack`` file
holds the journal offset below which every frame is settled. A frame is ``MAGIC | length (u32)
| adler32 (u32) | timestamp_ms (i64) | stream length (u16) | stream | message``; a torn or
corrupt frame is skipped and counted, never fatal; zeros past the last frame are the end. The
journal's file lock tells a live owner from a dead one. Frames are copied into a shared memory
map of the file (`_journal_file`), so they are in the OS page cache once copied, with no system
call per record: they survive the process, not a power cut (that would need an fsync per record).

A journal is emptied whenever everything in it is settled. A process that never stops logging
has no such moment, so once its settled frames fill `ROTATE_AFTER_BYTES`, and outweigh the frames
still waiting, those move to a new journal and the old one is emptied for reuse: the files stay
about twice the size of what waits, not of everything ever logged.

Trust: a journal is replayed under this process's credentials, so the directory is created
``0700`` and every file in it ``0600``, and a journal is replayed only if this user owns it, it is
not a symbolic link, and the directory is not one that other users may write to (unless it has
the sticky bit, as ``/tmp`` does, so that nobody can swap our files). Anything else is left alone
and reported on the side channel.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
import struct
import sys
import zlib
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol, TypeAlias

from ._events import Event
from ._forks import ProcessMark
from ._journal_file import GROWTH_BYTES, MappedJournal
from ._limits import EVENT_OVERHEAD_BYTES
from ._packed import UNSIGNED_64, PackedEvents
from ._queues import HandlerQueues
from ._reporting import Reporter
from ._sender import SENDER

MAGIC: Final = b"\xc1\x0c"
"""Starts every frame written, whose checksum is Adler-32. It costs a third of CRC-32's on the
logging call's path (55 against 145 ns for a usual frame), and still catches what the spool guards
against: a process killed mid-copy leaves bytes of its last frame as zeros, and zeroing up to 256
bytes always changes Adler-32's sum of bytes (it cannot reach 65,521), a longer tear all but
surely. It is weaker than CRC-32 only against scattered bit flips in long frames."""
CRC32_MAGIC: Final = b"\xc1\x0b"
"""Started the frames of earlier builds, whose checksum was CRC-32: still read, so that the
journals an older build left behind are delivered after an upgrade."""
_CHECKSUMS: Final = {MAGIC: zlib.adler32, CRC32_MAGIC: zlib.crc32}
SPOOL_OVERHEAD_PER_EVENT: Final = 150
"""Memory the spool holds per waiting event beside the queue's: its frame's header and stream
name in the journal's mapped pages, its frame's length and its number in the queue (8 bytes
each), and room for the pages the map grows by."""
ROTATE_AFTER_BYTES: Final = GROWTH_BYTES
"""Settled frames a journal holds before the waiting ones move to a new file (`Spool._rotate`),
once they are at least as many bytes as the waiting ones: a move copies what waits, so each
settled byte then pays for one copied byte at most. A thread logging flat out keeps 3 to 5 MiB
waiting; moved after every MiB settled, each frame was copied four times or so on its way, and
the copies, with the zeroing and page faults of the files they filled, were about half of the
spool's cost on the sender's thread (0.6 us a record, measured per function)."""
_HEADER: Final = struct.Struct(">2sII")
_BODY: Final = struct.Struct(">qH")
_NAME_LENGTH: Final = struct.Struct(">H")
_ACK: Final = struct.Struct(">Q")
_COMPACT_LENGTHS_AFTER: Final = 4_096
"""Settled frames' lengths are dropped from ``_lengths`` once this many, and half, have gathered."""
_CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)


class NamedStream(Protocol):
    """What the journal needs of a stream's queue: its name."""

    @property
    def name(self) -> str: ...


def encode_frame(stream: str, event: Event) -> bytes:
    """Return the journal frame that records ``event`` for ``stream``."""
    return _frame(_body_start(stream), event.timestamp_ms, event.message)


def _close_quietly(*fds: int) -> None:
    """Close the file descriptors that are open (-1: none); a failure leaves nothing to do."""
    for fd in fds:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


def _delete_journal(path: Path) -> None:
    """Delete a journal and its ``.ack``, whichever still exist."""
    for file in (path, path.with_suffix(".ack")):
        with contextlib.suppress(FileNotFoundError):
            file.unlink()


def _stream_part(stream: str) -> bytes:
    """The part of a frame's body that names its stream: the name's length, then the name."""
    name = stream.encode("utf-8")
    return _NAME_LENGTH.pack(len(name)) + name


_BodyStart: TypeAlias = "tuple[Callable[[int, bytes], bytes], bytes]"


def _body_start(stream: str) -> _BodyStart:
    """How a frame's body starts for ``stream``: a packer that writes the timestamp and the
    stream's part in one call (one bytes object, where packing the timestamp and adding the part
    made two: 35 ns of a frame's 250), and that part. Made once per stream by the spool."""
    part = _stream_part(stream)
    return struct.Struct(f">q{len(part)}s").pack, part


def _frame(start: _BodyStart, timestamp_ms: int, message: str) -> bytes:
    # Inlined in `Spool.append_one` (the logging call's path): change both or neither. The
    # parts are joined by ``+``: a tuple for ``b"".join`` cost a fifth of a frame's time.
    pack_start, part = start
    body = pack_start(timestamp_ms, part) + message.encode("utf-8")
    return _HEADER.pack(MAGIC, len(body), zlib.adler32(body)) + body


@dataclass(frozen=True)
class Frame:
    """One journal entry read back."""

    stream: str
    event: Event


def read_frames(data: bytes) -> tuple[list[Frame], int]:
    """Parse ``data`` into frames, skipping torn or corrupt ones.

    Returns:
        The frames read, and how many corrupt stretches were skipped.
    """
    frames: list[Frame] = []
    corrupt = 0
    offset = 0
    while offset < len(data):
        frame, end = _read_one(data, offset)
        if frame is not None:
            frames.append(frame)
            offset = end
            continue
        if data.count(0, offset) == len(data) - offset:
            break  # the zeros past the written end of a mapped journal
        corrupt += 1
        # Resynchronise on the next frame's magic; a torn tail has none and ends the read.
        found = [at for at in (data.find(magic, offset + 1) for magic in _CHECKSUMS) if at >= 0]
        if not found:
            break
        offset = min(found)
    return frames, corrupt


def _read_one(data: bytes, offset: int) -> tuple[Frame | None, int]:
    if len(data) - offset < _HEADER.size:
        return None, offset
    magic, length, checksum = _HEADER.unpack_from(data, offset)
    start = offset + _HEADER.size
    body = data[start : start + length]
    of = _CHECKSUMS.get(magic)
    if of is None or len(body) != length or of(body) != checksum or length < _BODY.size:
        return None, offset
    try:
        timestamp_ms, stream_length = _BODY.unpack_from(body)
        stream = body[_BODY.size : _BODY.size + stream_length].decode("utf-8")
        message = body[_BODY.size + stream_length :].decode("utf-8")
    except (struct.error, UnicodeDecodeError):
        return None, offset
    size = len(body) - _BODY.size - stream_length + EVENT_OVERHEAD_BYTES
    return Frame(stream, Event(timestamp_ms, message, size)), start + length


class _Runs:
    """Tells whether journal numbers are ``first``, ``first + 1``, ... in order, in a few C calls.

    An array's items, read as the digits (base 2**64) of one integer, make ``first * ones + iota``
    exactly when they are such a run, ``ones`` having every digit 1 and ``iota`` the digits 0, 1,
    2, ...: no digit of that sum reaches 2**64, so no carry can make two different arrays equal,
    and -1 (an event not journaled) reads as 2**64 - 1. Building the run as an array of Python
    ints to compare took 0.53 ms a batch of 10,000, on the sender under its lock; this takes
    0.06 ms, or 0.15 ms for a batch of another length than the last one.
    """

    def __init__(self) -> None:
        self._iota = array("q")
        """0, 1, 2, ... for the longest batch yet (10,000 events at most), made once."""
        self._count = -1
        self._ones_digits = self._iota_digits = 0
        """``ones`` and ``iota`` as integers, for batches of ``_count`` numbers."""

    def match(self, numbers: array[int], first: int) -> bool:
        count = len(numbers)
        if count != self._count:
            if count > len(self._iota):
                self._iota = array("q", range(count))
            self._ones_digits = int.from_bytes(array("q", [1]) * count, sys.byteorder)
            self._iota_digits = int.from_bytes(self._iota[:count], sys.byteorder)
            self._count = count
        expected = first * self._ones_digits + self._iota_digits
        return int.from_bytes(numbers, sys.byteorder) == expected


def group_key(group: str) -> str:
    """A file-name-safe key for a log group (names may contain '/' and '#')."""
    return hashlib.sha256(group.encode("utf-8")).hexdigest()[:16]


@dataclass(eq=False)
class _OwnJournal:
    """A journal file of this process besides the one in use, with its map and its file
    descriptors (journal, .ack): the spare made ahead of a move (`Spool._make_spare`), or the
    journal whose waiting frames moved to a new one (`Spool._rotate`)."""

    path: Path
    journal: MappedJournal
    fd: int
    ack_fd: int
    gone: bool = False

    def say_settled(self) -> None:
        """Say in its .ack that it is all settled: a crash before it is deleted replays
        nothing of it (what waits is in the new journal)."""
        with contextlib.suppress(OSError):
            os.pwrite(self.ack_fd, _ACK.pack(self.journal.size), 0)

    def let_go(self) -> None:
        """Unmap, close and delete it, once (a cut in `Spool._rotate` may list it twice: its
        file descriptors' numbers may be another file's by the second time)."""
        if self.gone:
            return
        self.gone = True
        self.forget()
        _delete_journal(self.path)

    def forget(self) -> None:
        """Unmap and close it, leaving the file as it is (also a forked child's copy)."""
        self.journal.forget()
        _close_quietly(self.fd, self.ack_fd)


class Spool:
    """This process's journal for one handler, and the replay of journals that dead ones left."""

    def __init__(self, directory: Path, *, group: str, reporter: Reporter) -> None:
        self._directory = directory
        self._key = group_key(group)
        self._reporter = reporter
        self._opened_here = ProcessMark()
        """Set once this process opened its journal: a fork's child opens a journal of its own."""
        self._replayed_here = ProcessMark()
        """Set once this process looked for orphans: a fork's child looks again
        (`replay_orphans_in_a_child`)."""
        self._queues: HandlerQueues | None = None
        """The queues `attach` journals, which replayed orphans join."""
        self._fd = -1
        self._ack_fd = -1
        self._path = directory
        self._journal: MappedJournal | None = None
        self._acked = 0
        # Frames are numbered in journal order, and the queue keeps each event's number beside
        # it (`_packed.PackedEvents`), so a settled batch names exactly its frames. ``_lengths``
        # holds the length of every frame from number ``_first`` on, from index
        # ``_lengths_head``: plain ints in an array, nothing for the garbage collector to walk.
        # Lengths, not offsets: a journal's waiting frames move to a new file unchanged.
        self._first = 0
        self._next = 0
        self._lengths = array(UNSIGNED_64)
        self._lengths_head = 0
        self._settled: set[int] = set()  # numbers settled out of order, above ``_first``
        self._runs = _Runs()
        self._body_starts: dict[str, _BodyStart] = {}  # each stream's `_body_start`, made once
        self._moved_away: list[_OwnJournal] = []
        """Journals of this process replaced by a new one, for `tidy` to let go of."""
        self._spare: _OwnJournal | None = None
        """A journal made and grown by the sender ahead of the move to a new one (`tidy`), so
        that `_rotate`, under the sender's lock, only copies the waiting frames into it."""
        self._problems: list[str] = []
        """What went wrong under the sender's lock, for `tidy` to report."""

    @classmethod
    def open(cls, directory: Path, *, group: str, reporter: Reporter) -> Spool:
        """Create ``directory`` if needed and return a spool writing there."""
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            from ._errors import ConfigurationError

            raise ConfigurationError(
                f"spool_dir={str(directory)!r} cannot be created ({error}); "
                "pass a writable directory"
            ) from error
        return cls(directory, group=group, reporter=reporter)

    def attach(self, queues: HandlerQueues) -> None:
        """Journal ``queues``' events as they are queued, and forget them once settled."""
        self._queues = queues
        queues.on_enqueued = self.append
        queues.on_enqueued_one = self.append_one
        queues.on_settled = self.settle
        queues.on_claimed = self.take_over_claimed
        queues.before_sending = self.replay_orphans_in_a_child
        queues.after_settled = self.tidy
        queues.on_cut_short = self.forget_unqueued
        queues.on_forgotten = self.stop_journaling
        queues.overhead_per_event += SPOOL_OVERHEAD_PER_EVENT

    def _ensure_open(self) -> None:
        """Open this process's journal (again after a fork: the parent's is not ours)."""
        if self._opened_here.byte[0]:
            return
        for file in self._take_files():  # a forked child's files are its parent's
            file.forget()
        self._path, self._fd, self._ack_fd = self._new_files()  # an OSError: tried again next time
        self._opened_here.set()
        self._journal = MappedJournal(self._fd)
        self._acked = self._first = self._next = self._lengths_head = 0
        self._lengths = array(UNSIGNED_64)
        self._settled.clear()
        self._problems.clear()

    def _take_files(self) -> list[_OwnJournal]:
        """Take every journal file of this spool out of use (the one in use, the spare, those
        moved away from) and return them, to forget (a fork's child: its parent's) or let go of
        (`stop_journaling`)."""
        files = self._moved_away
        if self._journal is not None:
            files.append(_OwnJournal(self._path, self._journal, self._fd, self._ack_fd))
        else:
            _close_quietly(self._fd, self._ack_fd)  # files made, not mapped yet: a cut between
        if self._spare is not None:
            files.append(self._spare)
        self._journal, self._fd, self._ack_fd, self._spare = None, -1, -1, None
        self._moved_away = []
        return files

    def _new_files(self) -> tuple[Path, int, int]:
        """Create and lock a new journal of this process, and its ``.ack``: path and both fds."""
        name = f"{self._key}.{os.getpid()}.{os.urandom(4).hex()}"
        path = self._directory / f"{name}.journal"
        # O_EXCL and O_NOFOLLOW: a file or link someone planted under our new name is refused.
        new_file = os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
        fd = os.open(path, os.O_RDWR | new_file, 0o600)  # mapped: read and write
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            ack_fd = os.open(path.with_suffix(".ack"), os.O_RDWR | new_file, 0o600)
        except BaseException:  # an OSError, or a cut (Ctrl-C, in a logging call: `_rotate`)
            os.close(fd)
            path.unlink()
            raise
        return path, fd, ack_fd

    def _new_journal(self) -> _OwnJournal:
        """`_new_files`, and the journal that writes into them."""
        path, fd, ack_fd = self._new_files()
        return _OwnJournal(path, MappedJournal(fd), fd, ack_fd)

    def _make_spare(self) -> None:
        """Make the journal `_rotate` moves into, with room for what will wait then (on the
        sender's thread, without its lock: files made, disk reserved, zeros written)."""
        spare = self._new_journal()
        try:
            spare.journal.grow_ahead()
        except BaseException:
            spare.let_go()
            raise
        self._spare = spare

    def _reuse(self, retired: _OwnJournal) -> bool:
        """Make a journal moved away from the spare, emptied in place; True if it could be.

        A busy service moves to a new journal every `ROTATE_AFTER_BYTES`. A new file costs its
        creation, the disk reserved and zeroed, its pages faulted into a new mapping, and the
        old file's deletion: about a third of a microsecond per record, in the kernel. The old
        file, its pages in the page cache and mapped, only needs zeros over what was written.
        The zeros go first: until the .ack says 0, it says everything up to its end is
        settled, and after the zeros there is nothing there. So a crash at any moment replays
        nothing of it.
        """
        if retired.gone:
            return False
        try:
            retired.journal.empty()
            os.pwrite(retired.ack_fd, _ACK.pack(0), 0)
            retired.journal.grow_ahead()
        except OSError:  # made afresh by `_make_spare` instead, which reports a full disk
            return False
        self._spare = retired
        return True

    def append(self, stream: NamedStream, events: list[Event]) -> int:
        """Write ``events`` to the journal (called under the sender's lock, before queueing);
        return the number of the first one's frame (the others follow it)."""
        if len(events) == 1:
            return self.append_one(stream, events[0].timestamp_ms, events[0].message)
        start, journal = self._opened_body_start(stream), self._journal
        assert journal is not None  # opened by _opened_body_start
        first = self._next
        frames = [_frame(start, event.timestamp_ms, event.message) for event in events]
        journal.append(b"".join(frames))
        self._lengths.extend(map(len, frames))
        self._next = first + len(events)
        return first

    def append_one(self, stream: NamedStream, timestamp_ms: int, message: str) -> int:
        """`append` for one event given by its fields (the usual logging call); its number.

        Runs on every logging call: the checks, `_frame` and `MappedJournal.append` are written
        out here, each call saved is a tenth of a microsecond on the caller's path.
        """
        start = self._body_starts.get(stream.name)
        if start is None or not self._opened_here.byte[0]:
            start = self._opened_body_start(stream)
        journal = self._journal
        assert journal is not None  # opened by _opened_body_start
        pack_start, part = start
        body = pack_start(timestamp_ms, part) + message.encode("utf-8")
        frame = _HEADER.pack(MAGIC, len(body), zlib.adler32(body)) + body
        size = journal.size
        end = size + len(frame)
        if end > journal.capacity:
            journal.grow(end)  # an OSError (a full disk, no memory) leaves it as it was
        mapped = journal.map
        assert mapped is not None  # made by grow
        mapped[size:end] = frame
        journal.size = end
        self._lengths.append(end - size)
        number = self._next
        self._next = number + 1
        return number

    def take_over_claimed(self, queues: HandlerQueues) -> None:
        """In a uWSGI worker, make the master's events it claimed (`_handover`) its own: journal
        them in its own journal, then mark every frame the master had written when it forked
        this worker settled in the master's journal.

        Called while the claim file is locked, so no other worker's claim comes between: every
        frame below that offset is claimed by now, by this worker or an earlier one, and each
        has journaled its share before it let go. So a crash at any moment replays each event
        from one journal or another, and an event never claimed (logged by the master after
        its last fork) stays in the master's journal, for the replay once the master has ended.
        """
        if self._opened_here.byte[0]:
            return  # not a child: the journal is ours already
        master_end = self._journal.size if self._journal is not None else 0
        # The master's .ack, kept open past `_ensure_open`, which closes what the child inherited.
        master_ack = os.dup(self._ack_fd) if self._ack_fd >= 0 else -1
        try:
            for stream in queues.streams.values():
                if stream.queue:
                    # Numbered in the master's journal: numbered anew below, or not at all.
                    claimed = list(stream.queue)
                    stream.queue = PackedEvents(claimed)
                    renumbered = PackedEvents()
                    renumbered.extend(claimed, self.append(stream, claimed))
                    stream.queue = renumbered
            if master_ack >= 0 and master_end:
                acked = os.pread(master_ack, _ACK.size, 0)
                if len(acked) < _ACK.size or _ACK.unpack(acked)[0] < master_end:
                    os.pwrite(master_ack, _ACK.pack(master_end), 0)
        except OSError as error:  # they stay queued, and in the master's journal (sent twice
            # if the master's journal is replayed after a restart, rather than lost)
            self._reporter.report(
                "spool", f"could not journal the uWSGI master's records anew: {error}"
            )
        finally:
            _close_quietly(master_ack)

    def _opened_body_start(self, stream: NamedStream) -> _BodyStart:
        """Open this process's journal if need be; ``stream``'s `_body_start`, made once."""
        self._ensure_open()
        start = self._body_starts.get(stream.name)
        if start is None:
            start = self._body_starts[stream.name] = _body_start(stream.name)
        return start

    def settle(self, stream: NamedStream, batch: PackedEvents) -> None:
        """Mark the frames of ``batch`` settled; advance the acknowledged offset (sender's lock
        held). The usual batch is the next frames in order: settled in a few C calls."""
        numbers = batch.journal_numbers()
        if numbers:
            self._settle_numbers(numbers)

    def forget_unqueued(self, queues: HandlerQueues) -> None:
        """Settle the frames journaled for events that never got into a queue (sender's lock
        held): an exception cut a logging call short between its journal and its queue.

        Such a frame would never settle: the acknowledged offset would stop at it for good, the
        journal grow without end, and a crash (or the next start, after a clean exit) replay
        everything after it a second time. The cut may also have come inside `append_one`,
        after the frame was written and before it was numbered: it is numbered first. Or in
        `_settle_numbers`, in a logging call that dropped the oldest records: after the journal
        was emptied, and before the state followed (caught up here), or before the offset was
        written (written here again).
        """
        journal = self._journal
        if journal is None or not self._opened_here.byte[0]:
            return
        lengths, head = self._lengths, self._lengths_head
        if head == len(lengths) and journal.size < self._acked:  # emptied, the state behind
            self._acked, self._lengths_head, self._lengths = 0, 0, array(UNSIGNED_64)
            lengths, head = self._lengths, 0
        unnumbered = journal.size - self._acked - sum(lengths[head:])
        if unnumbered > 0:
            lengths.append(unnumbered)  # one frame, or the several of a cut `append`
        self._next = self._first + len(lengths) - head
        held = queues.journal_numbers_held()
        unqueued = [
            number
            for number in range(self._first, self._next)
            if number not in held and number not in self._settled
        ]
        try:
            if unqueued:
                self._settle_numbers(array("q", unqueued))
            else:
                os.pwrite(self._ack_fd, _ACK.pack(self._acked), 0)
        except OSError as error:  # the .ack not written: a crash replays them, no more
            self._problems.append(f"could not acknowledge: {error}")

    def _settle_numbers(self, numbers: array[int]) -> None:
        """Mark the frames ``numbers`` settled, and acknowledge the settled prefix.

        This runs in a logging call too (``overflow="drop_oldest"`` settles what it drops),
        where what a signal handler raises (Ctrl-C) can cut it short after any call. So every
        value is computed first and the state set in one line, with no call between: a cut
        leaves it as it was, and the mend settles those frames again (`forget_unqueued`), or
        as it should be. Before, a cut between the settled number and the offset left the
        offset behind for good, and the frames' numbers off from then on.
        """
        first = self._first
        settled = self._settled
        if numbers[0] == first and self._runs.match(numbers, first):
            new_first = walked_from = first + len(numbers)
        else:  # out of order (several streams, a journal that failed): one frame at a time
            settled.update(numbers)
            settled.discard(-1)  # an event queued without a frame (its journal write failed)
            new_first = walked_from = first
        while new_first in settled:  # and frames settled ahead of these
            new_first += 1
        if new_first == first:
            return
        if self._journal is None:
            self._first = new_first
        else:
            lengths, head = self._lengths, self._lengths_head
            acked = self._acked + sum(lengths[head : head + new_first - first])
            head += new_first - first
            self._first, self._lengths_head, self._acked = new_first, head, acked
            self._acknowledge(lengths, head, acked)
        if new_first > walked_from:  # a cut before this leaves numbers below `_first`: unread
            settled.difference_update(range(walked_from, new_first))

    def _acknowledge(self, lengths: array[int], head: int, acked: int) -> None:
        """Write the acknowledged offset; empty, move or compact the journal as it allows."""
        journal = self._journal
        assert journal is not None  # checked by the caller
        if head == len(lengths):
            # Everything is settled: start the journal afresh rather than let it grow forever.
            # Said in the .ack first: a crash while it is emptied then replays nothing twice.
            os.pwrite(self._ack_fd, _ACK.pack(acked), 0)
            fresh = array(UNSIGNED_64)
            journal.empty()  # a cut right after: `forget_unqueued` sees it, and catches up
            self._acked, self._lengths_head, self._lengths = 0, 0, fresh
        elif acked >= ROTATE_AFTER_BYTES and 2 * acked >= journal.size:  # settled outweigh waiting
            self._rotate()
        elif head >= _COMPACT_LENGTHS_AFTER and 2 * head >= len(lengths):
            self._lengths, self._lengths_head = lengths[head:], 0
        os.pwrite(self._ack_fd, _ACK.pack(self._acked), 0)

    def _rotate(self) -> None:
        """Move the frames still waiting into a new journal, and delete the old one.

        The new file holds them before the old one goes, so a crash in between leaves them in
        both: replayed twice, never lost. If no new file can be made (a full disk), the old
        journal stays in use and `tidy` reports the failure (the report's callback is the
        user's: never called under the sender's lock). A cut (Ctrl-C, in a logging call that
        dropped the oldest records) before the switch leaves the old journal in use and the new
        one gone; after it, the old one is still let go of (never the one in use).
        """
        old_journal = self._journal
        assert old_journal is not None  # settle checked
        new: _OwnJournal | None = None
        journal: MappedJournal | None = None
        try:
            # The spare the sender made ahead (`tidy`), if any: then the only work here, under
            # the sender's lock, is the copy of the waiting frames (0.5 to 1 ms less).
            new, self._spare = self._spare or self._new_journal(), None
            path, journal, fd, ack_fd = new.path, new.journal, new.fd, new.ack_fd
            old_journal.copy_to(journal, self._acked)
            waiting = self._lengths[self._lengths_head :]
            retired = _OwnJournal(self._path, old_journal, self._fd, self._ack_fd)
            # What waits is in the new journal: the old one is all settled. Said before the
            # switch, while its file descriptors are surely still open.
            retired.say_settled()
            # The switch: one line with no call in it, so a cut comes before it (the new files
            # go) or after it (the old one still goes).
            self._path, self._fd, self._ack_fd, self._journal, self._lengths, self._lengths_head, self._acked = path, fd, ack_fd, journal, waiting, 0, 0  # noqa: E501  # fmt: skip
            self._moved_away.append(retired)  # for `tidy`, after the sender let go of its lock
        except BaseException as error:  # no file, or no room for the waiting frames; or a cut
            if self._journal is journal:  # a cut after the switch (`tidy` may run meanwhile)
                if retired not in self._moved_away:
                    self._moved_away.append(retired)
                raise
            # The old journal stays in use: its .ack says again what is settled, then the new
            # files go (a crash in between replays the waiting frames twice, never none).
            with contextlib.suppress(OSError):
                os.pwrite(self._ack_fd, _ACK.pack(self._acked), 0)
            if new is not None:
                with contextlib.suppress(OSError):
                    new.let_go()
            if not isinstance(error, OSError):
                raise
            self._problems.append(f"could not start a new journal: {error}")
            return

    def stop_journaling(self) -> Callable[[], None] | None:
        """Stop using this process's journal files, every frame in them settled; return the work
        that unmaps, closes and deletes them (None: they stay).

        Called by the sender, under its lock, as it forgets a closed handler's queues, nothing
        pending, or at exit once it has stopped; the work is the sender's too, without its lock,
        on the thread that runs `tidy` or once that thread has ended (`tidy` must not grow a
        journal whose descriptor is closed: its number may be another file's by then).

        A handler made and closed again and again (a job each, a logging reconfiguration) would
        otherwise keep three descriptors, a mapping and two files (reserved 3 MiB ahead) each,
        until the process ends, and a clean exit would leave its emptied journal for the next
        start to delete. A record that comes after (a logging call that raced with the close)
        opens a new journal.
        """
        journal = self._journal
        if journal is None or not self._opened_here.byte[0]:
            return None  # none opened, or a fork's child, whose files are its parent's
        if self._first != self._next or journal.size:
            return None  # a frame not settled (a call cut short): replayed after a crash
        files, problems = self._take_files(), self._problems
        self._problems = []
        self._opened_here.clear()  # the next record opens a new journal (`_ensure_open`)

        def let_go() -> None:
            for problem in problems:
                self._reporter.report("spool", problem)
            for file in files:
                try:
                    file.let_go()
                except OSError as error:  # left on disk, all settled: the next start deletes it
                    self._reporter.report("spool", f"could not delete {file.path.name}: {error}")

        return let_go

    def replay_orphans_in_a_child(self) -> None:
        """In a process forked after this spool was made, replay the journals of dead processes
        once, before its first batch (on the sender's thread, without its lock).

        A server's worker killed outright (the OOM killer, or gunicorn's SIGKILL of a worker
        that outlived its timeout and its abort) leaves its journal; the master forks the next
        worker, which would otherwise leave that journal to the whole server's next start, days
        later maybe, or never on another host.
        """
        if self._replayed_here.byte[0]:
            return
        try:
            self.replay_orphans()
        except OSError as error:  # an orphan not deleted: the next start replays it
            self._reporter.report("spool", f"could not replay orphans: {error}")

    def tidy(self) -> None:
        """Delete the journals this process moved away from, report what went wrong, and grow
        the journal ahead of the next records (called by the sender after its work on a stream,
        without its lock: no logging call waits for the file system or the report's callback).
        """
        while self._problems:
            self._reporter.report("spool", self._problems.pop(0))
        while self._moved_away:
            retired = self._moved_away.pop()
            if retired is self._spare:
                continue  # listed twice (a cut in `_rotate`), and made the spare already
            if self._spare is None and self._opened_here.byte[0] and self._reuse(retired):
                continue
            retired.let_go()
        journal = self._journal
        if journal is not None and self._opened_here.byte[0]:  # a fork's child: not its own yet
            # A full disk is left to the call that needs the room (a logging call, `_rotate`):
            # it meets the same error, and the spool reports it there.
            with contextlib.suppress(OSError):
                journal.grow_ahead()
                # Once the journal holds half the settled bytes that make it move (the move
                # comes when those and the ones waiting now are settled), if not at once.
                if self._spare is None and journal.size >= ROTATE_AFTER_BYTES // 2:
                    self._make_spare()

    def replay_orphans(self) -> int:
        """Queue what journals of dead processes hold for this group, in the queues `attach`
        was given; return how many events.

        The events are journaled again here before the orphan is removed, so a crash during the
        replay loses nothing either (it may duplicate). They are sent at once, not a flush
        interval from now: they waited already, and a process stopped soon after its start (a
        deploy, a crash loop) would otherwise spend its time at exit on them, or carry them on.
        """
        queues = self._queues
        assert queues is not None, "attach() comes first"
        self._replayed_here.set()
        replayed = 0
        streams: set[str] = set()
        for journal in self._orphans():
            try:
                frames, corrupt = self._read_orphan(journal)
            except OSError as error:  # kept for a later start; the handler works on meanwhile
                self._reporter.report("spool", f"not replaying {journal.name}: {error}")
                continue
            if corrupt:
                SENDER.count_dropped(queues, "spool_corrupt", corrupt)
                self._reporter.report(
                    "spool", f"skipped {corrupt} corrupt stretch(es) in {journal.name}"
                )
            for frame in frames:
                SENDER.enqueue(queues, frame.stream, [frame.event])
                streams.add(frame.stream)
            replayed += len(frames)
            _delete_journal(journal)
        if streams:
            SENDER.send_soon(queues, streams)
        return replayed

    def _orphans(self) -> Iterator[Path]:
        if not self._directory_is_private():
            return
        for journal in sorted(self._directory.glob(f"{self._key}.*.journal")):
            if journal == self._path:
                continue
            try:
                fd = os.open(journal, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
            except FileNotFoundError:
                continue
            except OSError as error:  # a symbolic link (ELOOP), or not readable
                self._reporter.report("spool", f"not replaying {journal.name}: {error}")
                continue
            try:
                if os.fstat(fd).st_uid != os.geteuid():
                    self._reporter.report(
                        "spool", f"not replaying {journal.name}: another user owns it"
                    )
                    continue
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # Locked until the caller has replayed and deleted it: processes that start
                # together (a server's workers) would otherwise each replay it, or read it as
                # another deletes it. One that got the lock after that deletion finds no link.
                if os.fstat(fd).st_nlink:
                    yield journal
            except OSError:
                continue  # its owner is alive (or another process is replaying it)
            finally:
                os.close(fd)

    def _directory_is_private(self) -> bool:
        """Tell whether only this user can put files in the spool directory (or it is sticky)."""
        try:
            info = os.stat(self._directory)
        except OSError:
            return False
        writable_by_others = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        if info.st_uid == os.geteuid() and not writable_by_others:
            return True
        if info.st_mode & stat.S_ISVTX and info.st_uid in (0, os.geteuid()):
            return True  # like /tmp: others may add files, never replace or remove ours
        self._reporter.report(
            "spool",
            f"not replaying journals in {str(self._directory)!r}: other users may write there; "
            "use a spool_dir that only this user can write to (mode 0700)",
            always=True,
        )
        return False

    def _read_orphan(self, journal: Path) -> tuple[list[Frame], int]:
        data = _read_file(journal)
        acked = 0
        with contextlib.suppress(OSError, struct.error):
            ack = _read_file(journal.with_suffix(".ack"))
            acked = _ACK.unpack_from(ack)[0] if len(ack) >= _ACK.size else 0
        return read_frames(data[acked:] if acked <= len(data) else data)


def _read_file(path: Path) -> bytes:
    """Read ``path`` whole, refusing a symbolic link (one could point at any file of ours)."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    with os.fdopen(fd, "rb") as file:
        return file.read()
