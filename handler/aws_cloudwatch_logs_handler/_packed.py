"""Queued events kept compactly: parallel arrays, and messages joined into chunks.

An `Event` tuple costs 64 bytes and its timestamp another 32, and a string 49 bytes beside its
text; during an outage a process holds hundreds of thousands of them. Here timestamps and sizes
live in two arrays (12 bytes an event), and every `CHUNK_MESSAGES` ASCII messages are joined into
one string, separated by a character none of them holds (1 byte an event), and split again in C
when taken: a waiting event costs little more than its text. A chunk that is not all ASCII stays
a list of strings, because joined it would take the width of its widest character for every
message in it (pure state, no I/O).

For a spooling handler a fourth array holds each event's number in the journal, so that a settled
batch tells the journal exactly which frames it settles.

Taking a batch costs the sender's lock only a few slice copies: `detach` moves the oldest events
into a queue of their own, and that queue is the batch from then on, read with the lock released:
the encoder reads its `columns` and the journal its `journal_numbers`, with no tuple per event.

A queue that fills batches gets arrays with room for a whole batch from the sender (`room_for`,
`move_into`), so that the logging calls filling it never pay for growing them.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from functools import partial
from itertools import islice
from typing import Final, TypeAlias

from ._events import Event

UNSIGNED_64: Final = "L" if array("L").itemsize == 8 else "Q"
"""An array type of unsigned 64-bit ints, for what the logging call appends to. An unsigned
type's append converts the int in one C call, where a signed one's parses it as an argument
first: "q", the signed one, took 138 ns an append of a timestamp on CPython 3.11, "L" 39 (and
alike on 3.10, 3.12 and 3.13)."""
TIMES: Final = UNSIGNED_64
"""The timestamps' array type (`UNSIGNED_64`). A timestamp before 1970 is none AWS takes: it is
queued as 0 (`_held`), which the sender drops as too old. The logging call's `append` is never
given one (`Sender.enqueue_one` leaves it to `extend`)."""
_LATEST: Final = 2**63 - 1
"""The latest timestamp kept as it is; AWS takes none after 2 hours from now anyway."""
SIZES: Final = "I"
"""The sizes' array type (at most 1 MB each: a C unsigned int holds it), unsigned for the same
reason as `UNSIGNED_64`."""

_COMPACT_AFTER: Final = 4_096
"""Taken events leave a gap at the front; it is closed once it is this long and half the queue."""

CHUNK_MESSAGES: Final = 16
"""Messages joined into one string. The logging call that fills a chunk pays for the join and for
freeing the messages joined: 0.38 us more than another at 16, 0.59 us at 32 (median appends into
a queue taken in 10,000-event batches), 0.9 us at 64, 3.5 us at 256.
Those calls set the caller's p98 to p99, so smaller chunks give a lower p99 at the same CPU per
event: against 32, `python -m bench.versions` measured p99 -0.09 to -0.19 us (three runs of 30
to 40 windows) and CPU within +0.03 us; at 8, CPU rose by 0.06 us and p99 was no better than at
16. A chunk's own cost, about 3 bytes an event, stays small beside the text. Sealing only once
many messages wait, instead, keeps them alive until the sender frees them all at once: the
allocator then gives their memory back to the system, and the next batch's messages take it
again by page faults (a worse p99, measured in the bench)."""

ROOM_FROM: Final = 1_024
"""Events from which a queue's arrays are given memory for a whole batch (`move_into`). An array
that outgrows its memory moves: CPython grows it by a sixteenth, and the allocator copies it into
fresh memory, page faults and all, on the logging call that outgrew it. Below 2,048 events a move
costs that call about nothing more; past it, 11 to 65 us (medians by length, a queue filled to
10,000 events twice in the bench's window), and a fresh queue's arrays move about 50 times a
batch."""
ROOM_S_PER_ITEM: Final = 1e-8
"""The sender's CPU time to make room for a batch (`room_for`), per item of each array, with a
margin: 0.09 to 0.15 ms for the two arrays of 10,000 events on CPython 3.10 to 3.13 (timed
alone)."""
_CUT_KEEPING_MEMORY: Final = 15
"""Items cut from an array at a time to empty it and keep its memory: CPython's array gives
memory back on a cut of 16 or more (``array_resize``), and keeps it on a shorter one."""

_NUMBERS: Final = "q"
"""The journal numbers' array type (-1: not journaled)."""

SEPARATOR: Final = "\x1e"
"""ASCII's record separator: messages are joined with it when none of them holds it."""

_Chunk: TypeAlias = "str | list[str]"
"""Messages joined with `SEPARATOR`, or a list of them when they cannot be joined."""
Room: TypeAlias = "tuple[array[int], array[int], array[int] | None]"
"""Empty timestamps, sizes and (for a spooling handler's queue) journal numbers arrays, with
memory for a batch (`room_for`)."""


def _held(timestamp_ms: int) -> int:
    """A timestamp that `TIMES` cannot hold, as the nearest one it can (the sender drops
    both ends: too old, or too far ahead)."""
    return 0 if timestamp_ms < 0 else _LATEST


# Builds an Event without NamedTuple's Python-level __new__, so a batch is rebuilt in C.
_as_event = partial(tuple.__new__, Event)


def _seal(messages: list[str], checked: bool) -> _Chunk:
    """Join ``messages`` if they can be; ``checked``: none of them is known to hold the separator
    (counting them in the joined text is most of the cost of a seal, paid on a logging call)."""
    text = SEPARATOR.join(messages)
    if text.isascii() and (checked or text.count(SEPARATOR) == len(messages) - 1):
        return text
    return messages  # not ASCII, or a message holds the separator: kept as they are


def _emptied(values: array[int]) -> array[int]:
    """``values`` with every item cut and its memory kept (`_CUT_KEEPING_MEMORY` at a time)."""
    for _ in range(len(values) // _CUT_KEEPING_MEMORY):
        del values[-_CUT_KEEPING_MEMORY:]
    del values[:]
    return values


_ARRAY_HEADER_BYTES: Final = array("B").__sizeof__()


def _capacity(values: array[int]) -> int:
    """Items ``values`` has memory for (``__sizeof__`` counts what it allocated)."""
    return (values.__sizeof__() - _ARRAY_HEADER_BYTES) // values.itemsize


def room_for(events: int, *, numbered: bool = False) -> Room:
    """Empty arrays with memory for ``events`` (`PackedEvents.move_into`), journal numbers too
    if ``numbered``, faulted in and emptied here (on the sender, off its lock), not by logging
    calls: about 0.1 ms for 10,000 events (CPython 3.10 to 3.13), half as much again numbered."""
    numbers = _empty_with_room(_NUMBERS, events) if numbered else None
    return _empty_with_room(TIMES, events), _empty_with_room(SIZES, events), numbers


def _empty_with_room(typecode: str, items: int) -> array[int]:
    """An empty array of ``typecode`` with memory for ``items``, every page of it written."""
    return _emptied(array(typecode, bytes(array(typecode).itemsize * items)))


def _or_unnumbered(numbers: array[int] | None, count: int) -> array[int]:
    """``numbers``, or -1 (not journaled) for each of ``count`` events that have none."""
    return array(_NUMBERS, [-1]) * count if numbers is None else numbers


def _chunk_messages(chunk: _Chunk, start: int, end: int) -> list[str]:
    """Messages ``start`` to ``end`` of one chunk, split from its text in C."""
    if isinstance(chunk, list):
        return chunk[start:end]
    messages = chunk.split(SEPARATOR)
    return messages if start == 0 and end == len(messages) else messages[start:end]


class PackedEvents:
    """A first-in, first-out queue of events: two arrays, and messages in chunks."""

    __slots__ = (
        "_chunks",
        "_head",
        "_noted_size",
        "_numbers",
        "_roomy",
        "_sizes",
        "_skip",
        "_tail",
        "_tail_checked",
        "_times",
    )

    def __init__(self, events: Iterable[Event] = ()) -> None:
        self._times = array(TIMES)
        self._sizes = array(SIZES)
        self._head = 0
        """Index in the arrays of the first event not taken yet."""
        self._chunks: list[_Chunk] = []
        """Sealed chunks of exactly `CHUNK_MESSAGES` messages, oldest first."""
        self._skip = 0
        """Messages of the first chunk already taken."""
        self._tail: list[str] = []
        """The newest messages, not sealed into a chunk yet."""
        self._tail_checked = True
        """No message in the tail holds the separator: `append` looks as it goes (a memchr),
        so that the seal need not count separators in the joined text; other ways in do not."""
        self._noted_size: tuple[int, int] | None = None
        """(length of the arrays, `total_size`) as the caller that took the events summed them
        (`note_total_size`); any change but an append forgets it, and an append changes the
        length, so it never outlives the events it sums."""
        self._numbers: array[int] | None = None
        """Each event's number in the spool's journal (-1: not journaled), kept only once a
        spooling handler gives one: the journal is told exactly which events are settled."""
        self._roomy = False
        """The arrays have memory for a batch (`move_into`): the logging calls that fill them
        up to a batch never move them."""
        self.extend(events)

    def __len__(self) -> int:
        return len(self._times) - self._head

    def __bool__(self) -> bool:
        return len(self._times) > self._head

    def __iter__(self) -> Iterator[Event]:
        head = self._head
        rows = zip(self._times[head:], self.messages(0, len(self)), self._sizes[head:], strict=True)
        return map(_as_event, rows)

    def extend(self, events: Iterable[Event], first_number: int | None = None) -> None:
        """Append ``events`` at the back (the logging call's path: a few C calls per event).

        Args:
            first_number: the journal number of the first event; the others follow it.
        """
        self._noted_size = None
        self._tail_checked = False
        times, sizes, tail = self._times, self._sizes, self._tail
        if first_number is None and self._numbers is None:
            for timestamp_ms, message, size in events:
                times.append(timestamp_ms if 0 <= timestamp_ms <= _LATEST else _held(timestamp_ms))
                sizes.append(size)
                tail.append(message)  # last: an event is in once its message is (`drop_partial`)
        else:
            numbers = self._numbered()
            step = 0 if first_number is None else 1
            number = -1 if first_number is None else first_number
            for timestamp_ms, message, size in events:
                times.append(timestamp_ms if 0 <= timestamp_ms <= _LATEST else _held(timestamp_ms))
                sizes.append(size)
                numbers.append(number)
                number += step
                tail.append(message)
        self._seal_full_chunks()

    def joined(self, other: PackedEvents) -> PackedEvents:
        """A new queue of this one's waiting events then ``other``'s, journal numbers
        included. Neither changes: a caller that must move events from one queue to another
        in one step (`HandlerQueues.move_pending`) builds the result first, then swaps."""
        part = PackedEvents()
        part._times = self.timestamps() + other.timestamps()
        part._sizes = self._sizes[self._head :] + other._sizes[other._head :]
        part._tail = self.messages(0, len(self)) + other.messages(0, len(other))
        part._tail_checked = False
        mine, theirs = self.journal_numbers(), other.journal_numbers()
        if mine is not None or theirs is not None:
            part._numbers = _or_unnumbered(mine, len(self)) + _or_unnumbered(theirs, len(other))
        part._seal_full_chunks()
        return part

    def _seal_full_chunks(self) -> None:
        # Messages leave the tail and join the chunks with no call between (CPython runs signal
        # handlers only once a call returns, and at a loop's turn): an exception one raises never
        # finds a message in both places, or in neither.
        tail, checked = self._tail, self._tail_checked
        if len(tail) == CHUNK_MESSAGES:  # a logging call's seal: the tail list, without a copy
            sealed = _seal(tail, checked)
            self._tail = []
            self._tail_checked = True
            self._chunks.append(sealed)
            return
        while len(tail) >= CHUNK_MESSAGES:
            sealed = _seal(tail[:CHUNK_MESSAGES], checked)
            del tail[:CHUNK_MESSAGES]
            self._chunks.append(sealed)
        if not tail:
            self._tail_checked = True

    def append(self, timestamp_ms: int, message: str, size: int, number: int = -1) -> int:
        """Append one event (the usual logging call: no tuple, no loop); return the length.

        Args:
            number: its journal number (-1: not journaled).
        """
        times, tail = self._times, self._tail
        times.append(timestamp_ms)
        self._sizes.append(size)
        numbers = self._numbers
        if numbers is not None:
            numbers.append(number)
        elif number >= 0:
            self._numbered(len(times) - 1).append(number)
        if SEPARATOR in message:
            self._tail_checked = False
        # The message last: an event is in once its message is. An exception a signal handler
        # raises (Ctrl-C's KeyboardInterrupt) may cut this short after any call: the caller
        # then drops what was staged in the arrays (`drop_partial`).
        tail.append(message)
        if len(tail) >= CHUNK_MESSAGES:
            self._seal_full_chunks()
        return len(times) - self._head

    def _numbered(self, before: int | None = None) -> array[int]:
        """The journal numbers' array, made at the first numbered event: the ``before`` events
        before it (all, if None) had none."""
        numbers = self._numbers
        if numbers is None:
            count = len(self._times) if before is None else before
            numbers = self._numbers = array(_NUMBERS, [-1]) * count
        return numbers

    def drop_partial(self) -> None:
        """Drop an event whose append an exception cut short, and what it left in the arrays.

        The message goes in last, so an event is whole once its message is in; an append cut
        short left at most some of its fields in the arrays (or in a tail, from `extend`):
        everything is cut back to the events whole in every field.
        """
        head, tail = self._head, self._tail
        counts = [len(self._times) - head, len(self._sizes) - head]
        if self._numbers is not None:
            counts.append(len(self._numbers) - head)
        messages = CHUNK_MESSAGES * len(self._chunks) - self._skip + len(tail)
        whole = min(*counts, messages)
        del self._times[head + whole :]
        del self._sizes[head + whole :]
        if self._numbers is not None:
            del self._numbers[head + whole :]
        if messages > whole:
            del tail[len(tail) - (messages - whole) :]
        self._noted_size = None
        self._tail_checked = False  # what is left in the tail is checked again at its seal

    def journal_numbers(self) -> array[int] | None:
        """The waiting events' journal numbers (-1: not journaled); None if none has one."""
        numbers = self._numbers
        return None if numbers is None else numbers[self._head :]

    def select(self, rows: list[int]) -> PackedEvents:
        """A new queue of the waiting events at ``rows`` (0 is the oldest), in that order."""
        head, times, sizes = self._head, self._times, self._sizes
        messages = self.messages(0, len(self))
        part = PackedEvents()
        part._times = array(TIMES, [times[head + row] for row in rows])
        part._sizes = array(SIZES, [sizes[head + row] for row in rows])
        part._tail = [messages[row] for row in rows]  # a part's tail may exceed one chunk
        part._tail_checked = False
        if self._numbers is not None:
            numbers = self._numbers
            part._numbers = array(_NUMBERS, [numbers[head + row] for row in rows])
        return part

    def sizes(self, limit: int) -> Iterator[int]:
        """The sizes of the first ``limit`` events, as AWS counts them."""
        head = self._head
        return islice(self._sizes, head, head + limit)

    def size_of(self, start: int, end: int) -> int:
        """The total size of waiting events ``start`` to ``end`` (0 is the oldest), summed in C."""
        head = self._head
        return sum(self._sizes[head + start : head + end])

    def total_size(self) -> int:
        """The size of every waiting event, as AWS counts it: as noted, or summed in C (which
        makes an int of each size: 0.1 to 0.2 ms for a batch of 10,000, traced in the sender's
        work after a reply)."""
        noted = self._noted_size
        if noted is not None and noted[0] == len(self._times):
            return noted[1]
        return sum(self._sizes[self._head :])

    def note_total_size(self, size: int) -> None:
        """Remember ``size`` as the waiting events' `total_size`, which the caller summed (the
        sender, taking a batch), until the queue changes."""
        self._noted_size = (len(self._times), size)

    def timestamps(self, start: int = 0, end: int | None = None) -> array[int]:
        """The timestamps of waiting events ``start`` to ``end`` (all: oldest first), a copy."""
        head = self._head
        return self._times[head + start : len(self._times) if end is None else head + end]

    def detach(self, count: int) -> PackedEvents:
        """Move the ``count`` oldest events (all if fewer wait) into a new queue and return it.

        Slice copies of the arrays and of a few chunk references, no Python step per event: this
        runs under the sender's lock.
        """
        count = min(count, len(self))
        part = PackedEvents()
        if count == len(self):
            # Everything waiting goes (as from a queue the sender keeps up with): the part takes
            # every field as it is, and this queue starts afresh. No copy, and no memory freed
            # under the lock.
            for name in self.__slots__:
                setattr(part, name, getattr(self, name))
            self.clear()
            return part
        head = self._head
        part._times = self._times[head : head + count]
        part._sizes = self._sizes[head : head + count]
        if self._numbers is not None:
            part._numbers = self._numbers[head : head + count]
        begin, end = self._skip, self._skip + count
        sealed = CHUNK_MESSAGES * len(self._chunks)
        if begin < sealed:
            last = min(end, sealed)
            part._chunks = self._chunks[begin // CHUNK_MESSAGES : -(-last // CHUNK_MESSAGES)]
            part._skip = begin % CHUNK_MESSAGES
        # A part's chunks may run past its end: `_messages` reads only the first len(part).
        part._tail = self._tail[max(0, begin - sealed) : max(0, end - sealed)]
        part._tail_checked = self._tail_checked
        self._forget_first(count)
        return part

    def clear(self) -> None:
        """Forget every event, and start the next ones in new arrays."""
        times, sizes = array(TIMES), array(SIZES)
        # Neither a call nor a branch from here on: what a signal handler raises (Ctrl-C) runs
        # only once a call returns, at a loop's turn, at a function's start and, on 3.10, at
        # an `if` whose jump is taken. So it finds every field as it was, or every one changed
        # (`_forget_first`, `HandlerQueues._drop_first`); `tests/test_interrupted_calls.py`
        # interrupts the drop at each of those places in turn.
        self._roomy = False
        self._times = times
        self._sizes = sizes
        self._head = 0
        self._chunks = []
        self._skip = 0
        self._tail = []
        self._tail_checked = True
        self._noted_size = None
        self._numbers = None

    @property
    def has_room(self) -> bool:
        """The arrays have memory for a batch (`move_into`): appends up to it never move them."""
        return self._roomy

    @property
    def numbered(self) -> bool:
        """Some waiting event has a journal number (`journal_numbers` is not None)."""
        return self._numbers is not None

    def move_into(self, room: Room) -> bool:
        """Move the waiting events into ``room``, empty arrays with memory for a batch
        (`room_for`): the logging calls that fill this queue then append without moving them.
        The sender does it, under its lock: a copy of the events waiting, which are fewer than
        half of what ``room`` holds.

        Returns:
            False, and ``room`` unused, if this queue has room already, or if more events
            wait than half of ``room`` (a queue that grew past a batch while the sender could
            not send: moving it would cost the lock a long copy for little).
        """
        times, sizes, numbers_room = room
        head, count = self._head, len(self)
        if self._roomy or 2 * count > _capacity(times):
            return False
        times += self._times[head:]
        sizes += self._sizes[head:]
        numbers = self._numbers
        if numbers_room is not None:
            # The events waiting without a number (none, in a spooling handler's queue) get -1.
            numbers_room += _or_unnumbered(self.journal_numbers(), count)
            numbers = numbers_room
        elif numbers is not None and head:
            numbers = numbers[head:]
        # The sender's thread: no signal handler runs here (Python runs them on the main thread).
        self._times, self._sizes, self._numbers, self._head = times, sizes, numbers, 0
        self._noted_size = None
        self._roomy = True
        return True

    def text(self, start: int, end: int) -> str:
        """The messages of waiting events ``start`` to ``end``, joined with `SEPARATOR`, as the
        encoder reads them: a sealed chunk read whole is taken as it is, never split and joined
        again. Only a sealed chunk is known to be free of the separator: a message elsewhere may
        hold one, which a reader must check for."""
        first, last = self._skip + start, self._skip + end  # counted from the first chunk
        sealed = CHUNK_MESSAGES * len(self._chunks)
        if first % CHUNK_MESSAGES == last % CHUNK_MESSAGES == 0 and last <= sealed:
            # Whole sealed chunks, as the encoder's slices of a batch taken whole are: one join
            # of the chunks in C (2 us for a slice of 512 events, where walking the spans took
            # 36 us), unless one of them was kept as a list.
            chunks = self._chunks[first // CHUNK_MESSAGES : last // CHUNK_MESSAGES]
            try:
                return SEPARATOR.join(chunks)  # type: ignore[arg-type]  # a list: TypeError
            except TypeError:  # a chunk kept as a list: not ASCII, or it holds the separator
                pass
        return SEPARATOR.join(
            chunk
            if isinstance(chunk, str) and stop - offset == CHUNK_MESSAGES
            else SEPARATOR.join(_chunk_messages(chunk, offset, stop))
            for chunk, offset, stop in self._spans(start, end)
        )

    def messages(self, start: int, end: int) -> list[str]:
        """The messages of waiting events ``start`` to ``end`` (0 is the oldest waiting)."""
        messages: list[str] = []
        for chunk, offset, stop in self._spans(start, end):
            messages += _chunk_messages(chunk, offset, stop)
        return messages

    def _spans(self, start: int, end: int) -> Iterator[tuple[_Chunk, int, int]]:
        """The chunks that hold waiting events ``start`` to ``end`` (the unsealed tail last,
        as a list), each with the range of its messages that those events are."""
        position, end = self._skip + start, self._skip + end
        sealed = CHUNK_MESSAGES * len(self._chunks)
        while position < min(end, sealed):
            index, offset = divmod(position, CHUNK_MESSAGES)
            stop = min(end - index * CHUNK_MESSAGES, CHUNK_MESSAGES)
            yield self._chunks[index], offset, stop
            position = index * CHUNK_MESSAGES + stop
        if position < end:
            yield self._tail, position - sealed, end - sealed

    def _forget_first(self, count: int) -> None:
        """Drop the ``count`` oldest events, closing the gap they leave in the arrays once long."""
        end = self._head + count
        if end == len(self._times):
            self.clear()
            return
        compact = end >= _COMPACT_AFTER and 2 * end >= len(self._times)
        cut, head = (end, 0) if compact else (0, end)  # the arrays cut, or a gap left
        # Without journal numbers, an empty array stands in: its cut below does nothing.
        numbers = array(_NUMBERS) if self._numbers is None else self._numbers
        position = self._skip + count
        sealed = CHUNK_MESSAGES * len(self._chunks)
        # Every chunk goes once the cut reaches the tail; its messages go from the tail then.
        tail_cut = max(0, position - sealed)
        skip = 0 if position >= sealed else position % CHUNK_MESSAGES
        roomy = self._roomy and not compact  # a cut gives the arrays' memory back
        times, sizes, chunks, tail = self._times, self._sizes, self._chunks, self._tail
        # Neither a call nor a branch from here on (see `clear`): every value is worked out
        # above, and the fields change together or not at all. 3.10 runs a signal handler at
        # each `if` whose jump is taken too: before, a Ctrl-C at an `if` between the arrays'
        # change and the chunks' left them apart, and the stream's counts off for good.
        del times[:cut], sizes[:cut], numbers[:cut], chunks[: position // CHUNK_MESSAGES]
        del tail[:tail_cut]
        self._head, self._skip, self._roomy, self._noted_size = head, skip, roomy, None
