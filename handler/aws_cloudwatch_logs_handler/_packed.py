"""Queued events kept compactly: parallel arrays instead of one tuple per event.

An `Event` tuple costs 64 bytes and its timestamp another 32, on top of the message; during an
outage a process holds hundreds of thousands of them. Here a waiting event costs its message, a
list slot, and 12 bytes of arrays: about half the memory of a deque of tuples. Events leave as
`Event` tuples again, built in C-level passes when a batch is taken (pure state, no I/O).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from functools import partial
from itertools import islice
from typing import Final

from ._events import Event

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

    def popleft(self) -> Event:
        """Remove and return the oldest event."""
        return self.pop_first(1)[0]

    def pop_first(self, count: int) -> list[Event]:
        """Remove and return the ``count`` oldest events (all of them if fewer wait)."""
        head = self._head
        end = min(head + count, len(self._messages))
        taken = list(
            map(
                _as_event,
                zip(
                    self._times[head:end],
                    self._messages[head:end],
                    self._sizes[head:end],
                    strict=True,
                ),
            )
        )
        if end == len(self._messages):
            self.clear()
        else:
            self._head = end
            if end >= _COMPACT_AFTER and 2 * end >= len(self._messages):
                del self._times[:end], self._messages[:end], self._sizes[:end]
                self._head = 0
        return taken

    def clear(self) -> None:
        """Forget every event, and the memory the arrays held."""
        self._times = array("q")
        self._messages = []
        self._sizes = array("i")
        self._head = 0
