"""Queued events kept compactly: parallel arrays instead of one tuple per event.

An `Event` tuple costs 64 bytes and its timestamp another 32, on top of the message; during an
outage a process holds hundreds of thousands of them. Here a waiting event costs its message, a
list slot, and 12 bytes of arrays: about half the memory of a deque of tuples. Events leave as
`Event` tuples again, built in C-level passes when a batch is taken (pure state, no I/O).

Taking a batch is split in two so that the sender's lock is held only for the cheap half:
`detach` moves the oldest events into a queue of their own (a few slice copies, under the lock),
and `pop_first` on that queue builds their tuples afterwards, in slices, with the lock released.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from functools import partial
from itertools import islice
from typing import Final

from ._events import Event
from ._slices import SLICE_EVENTS, Pause, no_pause

_COMPACT_AFTER: Final = 4_096
"""Taken events leave a gap at the front; it is closed once it is this long and half the queue."""

# Builds an Event without NamedTuple's Python-level __new__, so a batch is rebuilt in C.
_as_event = partial(tuple.__new__, Event)


class PackedEvents:
    """A first-in, first-out queue of events stored as three parallel arrays."""

    __slots__ = ("_head", "_messages", "_sizes", "_times")

    def __init__(self, events: Iterable[Event] = ()) -> None:
        self._times = array("q")
        self._messages: list[str] = []
        self._sizes = array("i")  # at most 1 MB each: a C int holds it
        self._head = 0
        """Index of the first event not taken yet."""
        self.extend(events)

    def __len__(self) -> int:
        return len(self._messages) - self._head

    def __bool__(self) -> bool:
        return len(self._messages) > self._head

    def __iter__(self) -> Iterator[Event]:
        head = self._head
        rows = zip(
            islice(self._times, head, None),
            islice(self._messages, head, None),
            islice(self._sizes, head, None),
            strict=True,
        )
        return map(_as_event, rows)

    def extend(self, events: Iterable[Event]) -> None:
        """Append ``events`` at the back (the logging call's path: a few C calls per event)."""
        for timestamp_ms, message, size in events:
            self._times.append(timestamp_ms)
            self._messages.append(message)
            self._sizes.append(size)

    def sizes(self, limit: int) -> Iterator[int]:
        """The sizes of the first ``limit`` events, as AWS counts them."""
        head = self._head
        return islice(self._sizes, head, head + limit)

    def size_of_first(self, limit: int) -> int:
        """The total size of the first ``limit`` events, summed in C."""
        head = self._head
        return sum(self._sizes[head : head + limit])

    def popleft(self) -> Event:
        """Remove and return the oldest event."""
        head = self._head
        event = _as_event((self._times[head], self._messages[head], self._sizes[head]))
        self._forget_first(head + 1)
        return event

    def detach(self, count: int) -> PackedEvents:
        """Move the ``count`` oldest events (all if fewer wait) into a new queue and return it.

        Three slice copies and no Python step per event: this runs under the sender's lock.
        """
        head = self._head
        end = min(head + count, len(self._messages))
        part = PackedEvents()
        part._times = self._times[head:end]
        part._messages = self._messages[head:end]
        part._sizes = self._sizes[head:end]
        self._forget_first(end)
        return part

    def _forget_first(self, end: int) -> None:
        """Drop the events before index ``end``, closing the gap they leave once it is long."""
        if end == len(self._messages):
            self.clear()
            return
        self._head = end
        if end >= _COMPACT_AFTER and 2 * end >= len(self._messages):
            del self._times[:end], self._messages[:end], self._sizes[:end]
            self._head = 0

    def pop_first(self, count: int, *, pause: Pause = no_pause) -> list[Event]:
        """Remove and return the ``count`` oldest events (all of them if fewer wait).

        The tuples are built `SLICE_EVENTS` at a time, with ``pause`` called between slices.
        """
        part = self.detach(count)
        times, messages, sizes = part._times, part._messages, part._sizes
        taken: list[Event] = []
        for start in range(0, len(messages), SLICE_EVENTS):
            if start:
                pause()
            end = start + SLICE_EVENTS
            rows = zip(times[start:end], messages[start:end], sizes[start:end], strict=True)
            taken.extend(map(_as_event, rows))
        return taken

    def clear(self) -> None:
        """Forget every event, and the memory the arrays held."""
        self._times = array("q")
        self._messages = []
        self._sizes = array("i")
        self._head = 0
