"""The queues waiting for the sender: what is queued, in flight, settled, and what memory it holds.

Pure state and arithmetic, no threads and no I/O, so that every rule here can be tested on its own:
`HandlerQueues` holds one handler's queues (one `StreamQueue` per log stream) with its counters and
its memory bound. The sender (`_sender`) owns the lock that guards all of it: every method here is
called with that lock held, which is why none of them blocks or calls back into user code, except
the spool's acknowledgement hook (``on_settled``), which only writes to a local file.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import accumulate, islice
from typing import Any, Final, Literal

from ._batching import Cut, is_full, take_prefix
from ._client import ClientSource
from ._events import Event
from ._limits import MAX_BATCH_BYTES, MAX_BATCH_EVENTS
from ._packed import PackedEvents
from ._reporting import Reporter
from ._stats import Counters, DropReason

OverflowPolicy = Literal["block", "drop_newest", "drop_oldest"]
"""What a logging call does when ``max_queue_bytes`` is reached: wait (at most ``block_timeout_s``)
for room, then drop the new record; drop the new record at once; or drop the oldest waiting ones."""

PENDING_STREAM: Final = ""
"""Stands for a stream not known yet (Lambda's init phase); never sent to under this name."""

MEMORY_OVERHEAD_PER_EVENT: Final = 80
"""Bytes counted per queued event beside its text, so that real memory stays within
``max_queue_bytes`` whatever the messages are. In `_packed.PackedEvents` an ASCII message joined
into a chunk costs about 17 bytes beside its text; a message in a chunk that is not all ASCII
keeps its own string (a header of 73 bytes and a terminator, less the 26 already counted in its
size), a list slot and the same 12 bytes of arrays: 67 to 71 bytes, 96 in all over its UTF-8
text, measured with tracemalloc (`tests/test_packed.py`). The rest is room for the arrays' growth
and the allocator's fragmentation. So the bound holds for the worst case, and ASCII logs, the
usual case, take about half of what they are counted for."""


@dataclass(frozen=True)
class DeliverySettings:
    """What the sender needs to know about one handler's destination and policies."""

    log_group: str
    retention_days: int | None
    create_log_group: bool
    flush_interval_s: float
    max_queue_bytes: int
    overflow: OverflowPolicy
    block_timeout_s: float
    shutdown_timeout_s: float
    client_source: ClientSource
    reporter: Reporter = field(repr=False)


class StreamQueue:
    """One log stream of one handler: its queued events, its batches in flight, its retry state."""

    __slots__ = (
        "attempts",
        "enqueued",
        "first_waiting_at",
        "in_flight",
        "name",
        "owner",
        "queue",
        "queued_size",
        "ready",
        "recreations",
        "retry_at",
        "settled",
        "taking",
    )

    def __init__(self, owner: HandlerQueues, name: str) -> None:
        self.owner = owner
        self.name = name
        self.queue = PackedEvents()
        self.in_flight: list[PackedEvents] = []
        """Batches taken off the queue and not yet settled, oldest first (packed, as queued)."""
        self.taking: PackedEvents | None = None
        """Events detached from ``queue`` that the sender is cutting into batches (unlocked)."""
        self.queued_size = 0
        """Bytes of the events in ``queue`` as AWS counts them (to know when a batch is full)."""
        self.enqueued = 0
        self.settled = 0
        """Events delivered or dropped; a flush waits until it reaches ``enqueued``."""
        self.ready = False
        """The stream is known to exist."""
        self.first_waiting_at: float | None = None
        self.attempts = 0
        """Failed attempts in a row, for the backoff."""
        self.recreations = 0
        """Times in a row the stream had to be created again (the group or stream vanished)."""
        self.retry_at = 0.0

    @property
    def holds_full_batch(self) -> bool:
        """Whether the queued events (not those in flight) fill at least one batch."""
        return is_full(len(self.queue), self.queued_size)

    @property
    def pending(self) -> bool:
        """Whether events wait here (queued or in flight)."""
        return bool(self.queue or self.in_flight or self.taking is not None)

    def keep_latest(self, count: int) -> None:
        """Keep the ``count`` latest queued events as this queue's only ones, and forget the rest:
        a forked child must not resend its parent's, but for those `_handover` gives it."""
        older = len(self.queue) - count
        if older > 0:
            self.queue.detach(older)
        self.in_flight = []
        self.taking = None
        self.enqueued = len(self.queue)
        self.queued_size = self.queue.total_size() if self.queue else 0
        self.settled = self.attempts = self.recreations = 0
        # The kept events have waited since the parent queued them (a uWSGI master's, logged as
        # it loaded the application, or replayed from a journal): no new interval starts here.
        if not self.queue:
            self.first_waiting_at = None
        elif self.first_waiting_at is None:
            self.first_waiting_at = time.monotonic()
        self.retry_at = 0.0


@dataclass(frozen=True)
class Released:
    """What settling a batch means for the side channel: a stream that works again."""

    recovered_after: int = 0
    """Failed attempts in a row before this success (0: nothing to report)."""


class HandlerQueues:
    """Everything the sender keeps for one handler: its settings, streams, counters and bound."""

    def __init__(self, settings: DeliverySettings) -> None:
        self.settings = settings
        self.max_queue_bytes = settings.max_queue_bytes  # read on every logging call
        self.overhead_per_event = MEMORY_OVERHEAD_PER_EVENT
        """Memory an event holds beside its text; the spool adds its own bookkeeping."""
        self.counters = Counters()
        self.streams: dict[str, StreamQueue] = {}
        self.bytes_queued = 0
        self.flush_waiters = 0
        self.closed = False
        self.api: Any = None
        """The `_logs_api.LogsApi` the sender talks to for this handler (made by the sender)."""
        self.last_stream = PENDING_STREAM
        """The stream written last: kept when idle, since the next record likely goes there too."""
        self.pending_fallback: Callable[[], str] | None = None
        """Names a stream for `PENDING_STREAM` events that nothing claimed (set in Lambda)."""
        self.on_enqueued: Callable[[StreamQueue, list[Event]], int] | None = None
        """Called (by the sender, before `add`) with the events about to be queued: the spool's
        journal, which returns the journal number of the first (the others follow it)."""
        self.on_enqueued_one: Callable[[StreamQueue, int, str], int] | None = None
        """`on_enqueued` for one event given by its timestamp and message (the usual call)."""
        self.on_settled: Callable[[StreamQueue, PackedEvents], None] | None = None
        """Called with each settled batch, which carries its journal numbers: the spool's
        acknowledgement."""
        self.on_claimed: Callable[[HandlerQueues], None] | None = None
        """Called in a uWSGI worker once it has kept the master's events it claimed
        (`_handover`): the spool journals them anew."""
        self.before_sending: Callable[[], None] | None = None
        """Called by the sender before it delivers a stream's batches, without its lock: the
        spool's replay of dead processes' journals in a fork's child. Before, not after: what it
        queues is then pending while the batch is in flight, so an exit's delivery, which waits
        while anything is pending, sends it too."""
        self.after_settled: Callable[[], None] | None = None
        """Called by the sender after its work on each stream (where batches settle), without
        its lock: the spool's file work that no logging call should wait for."""
        self.on_forgotten: Callable[[], Callable[[], None] | None] | None = None
        """Called by the sender, under its lock, as it forgets these queues (closed, nothing
        pending; or all of them at exit, once it has stopped): the spool stops using its journal
        files, and returns the work that lets go of them, which the sender does without its lock
        (None: nothing to do)."""
        self.on_cut_short: Callable[[HandlerQueues], None] | None = None
        """Called once the queues are whole again after an exception cut a logging call short
        (`mend_cut_short`, `_drop_first`): the spool settles the frames no queue holds (events
        that never got in, or left without being settled)."""

    # ----------------------------------------------------------------------------------------
    # Queueing (the logging call's side).

    def stream(self, name: str) -> StreamQueue:
        """Return the queue of stream ``name``, made on first use."""
        queue = self.streams.get(name)
        if queue is None:
            queue = self.streams[name] = StreamQueue(self, name)
        return queue

    def add(
        self,
        stream: StreamQueue,
        events: list[Event],
        size: int,
        cost: int,
        first_number: int | None = None,
    ) -> bool:
        """Queue ``events`` (of ``size`` bytes as AWS counts them); True if a batch is due now.

        Args:
            first_number: the first event's number in the spool's journal, if it was journaled.
        """
        stream.queue.extend(events, first_number)
        return self._added(stream, len(events), len(stream.queue), size, cost)

    def _added(self, stream: StreamQueue, count: int, queued: int, size: int, cost: int) -> bool:
        """Count ``count`` events just queued on ``stream`` (which now holds ``queued``); True if
        a batch is due now. (`_sender.Sender.enqueue_one`, a logging call's usual way, counts
        its one event the same way inline.)"""
        self.last_stream = stream.name
        stream.enqueued += count
        stream.queued_size += size
        self.bytes_queued += cost
        self.counters.records_accepted += 1
        if stream.first_waiting_at is None:
            stream.first_waiting_at = time.monotonic()
            return True
        # `is_full`, inlined: this line runs on every logging call.
        return queued >= MAX_BATCH_EVENTS or stream.queued_size >= MAX_BATCH_BYTES

    def mend_cut_short(self, stream: StreamQueue, sizes: list[int]) -> bool:
        """Make ``stream`` and the counts whole after an exception cut short the queueing of
        events of ``sizes`` (the sender's lock held); True if some got in and were counted now.

        What a signal handler raises (Ctrl-C's KeyboardInterrupt, a SystemExit) comes out of
        whichever call the main thread was in, in the middle of a logging call too: before,
        one such cut left a timestamp without its message, the stream could never be sent
        again, and everything queued after it was lost (1 Ctrl-C in 88 while logging flat out).
        An event cut short is dropped (its caller got the exception); the whole ones stay, and
        are counted if the exception came before their counting (the events' sizes tell).
        """
        stream.queue.drop_partial()
        waiting = stream.queue.total_size()
        uncounted = waiting - stream.queued_size
        counted = False
        if uncounted > 0:
            count = next(
                (n for n, total in enumerate(accumulate(sizes), 1) if total == uncounted),
                len(sizes),
            )
            self._added(
                stream,
                count,
                len(stream.queue),
                uncounted,
                uncounted + count * self.overhead_per_event,
            )
            counted = True
        if stream.queue and stream.first_waiting_at is None:
            stream.first_waiting_at = time.monotonic()
            counted = True
        if self.on_cut_short is not None:
            self.on_cut_short(self)
        return counted

    def journal_numbers_held(self) -> set[int]:
        """The journal numbers of every event queued, being cut, or in flight, in any stream."""
        held: set[int] = set()
        for stream in self.streams.values():
            for events in (stream.queue, stream.taking, *stream.in_flight):
                numbers = None if events is None else events.journal_numbers()
                if numbers is not None:
                    held.update(numbers)
        return held

    def make_due(self, names: Iterable[str]) -> None:
        """Make what the streams ``names`` queue due at once, as if their flush interval had
        passed: events replayed from a dead process's journal waited long enough already."""
        for name in names:
            stream = self.streams.get(name)
            if stream is not None and stream.queue:
                stream.first_waiting_at = -math.inf

    def fits(self, cost: int) -> bool:
        return self.bytes_queued + cost <= self.max_queue_bytes

    def drop_oldest(self, cost: int) -> bool:
        """Drop the oldest queued events until ``cost`` more bytes fit; True if they now fit.

        Only queued events go: batches in flight are the sender's, and may be delivered already.
        """
        limit = self.max_queue_bytes
        for stream in self.streams.values():
            count = size = 0
            for event_size in stream.queue.sizes(len(stream.queue)):
                if self.bytes_queued - size - self.overhead_per_event * count + cost <= limit:
                    break
                count += 1
                size += event_size
            if count:
                self._drop_first(stream, count, size)
        return self.fits(cost)

    def _drop_first(self, stream: StreamQueue, count: int, size: int) -> None:
        """Drop the ``count`` oldest queued events of ``stream`` (``size`` bytes) as queue_full.

        This runs inside a logging call, where what a signal handler raises (Ctrl-C) can cut it
        short: before, events could leave the queue without being counted as settled (a flush
        then waited for them for good, the counts stayed off). The events leave in one step
        (`PackedEvents.detach`, whose fields change together), and the counts follow them: if
        the cut came after they left, the counts are set here, and the spool settles the
        frames no queue holds any more.
        """
        before = len(stream.queue)
        counts = (
            stream.queued_size - size,
            stream.settled + count,
            self.bytes_queued - size - self.overhead_per_event * count,
            self.counters.dropped["queue_full"] + count,
        )
        try:
            dropped = stream.queue.detach(count)
            self._count_dropped_first(stream, counts)
            if self.on_settled is not None:
                self.on_settled(stream, dropped)
        except BaseException:
            if len(stream.queue) != before:  # they left: the counts follow, once
                self._count_dropped_first(stream, counts)
                if self.on_cut_short is not None:
                    self.on_cut_short(self)
            raise

    def _count_dropped_first(self, stream: StreamQueue, counts: tuple[int, int, int, int]) -> None:
        """Set the counts `_drop_first` made (plain assignments: setting them twice is once)."""
        queued_size, settled, bytes_queued, dropped = counts
        stream.queued_size = queued_size
        stream.settled = settled
        self.bytes_queued = bytes_queued
        self.counters.dropped["queue_full"] = dropped

    def move_pending(self, stream_name: str) -> bool:
        """Send the events waiting under `PENDING_STREAM` to ``stream_name``; True if any moved.

        This runs as a Lambda invocation is bound, and at exit, where what a signal handler
        raises (a SIGTERM handler's SystemExit) can cut it short. So every value is worked out
        first, and the two streams change with neither a call nor a branch between (see
        `PackedEvents.clear`). Before, a cut in the middle left the events in both queues, or
        queued and counted in neither: sent twice, or a batch the sender could not read.
        """
        pending = self.streams.get(PENDING_STREAM)
        if pending is None or not pending.queue or stream_name == PENDING_STREAM:
            return False
        target = self.stream(stream_name)
        moved = len(pending.queue)
        joined, emptied = target.queue.joined(pending.queue), PackedEvents()
        queued_size = target.queued_size + pending.queued_size
        enqueued, settled = target.enqueued + moved, pending.settled + moved
        waiting_since = target.first_waiting_at
        if waiting_since is None:
            waiting_since = pending.first_waiting_at
        # The moved events are now accounted for by ``target``; flushes that waited for them
        # under the pending name wait for ``target`` too (they move pending events first).
        target.queue, target.queued_size, target.enqueued = joined, queued_size, enqueued
        target.first_waiting_at = waiting_since
        pending.queue, pending.settled, pending.queued_size = emptied, settled, 0
        pending.first_waiting_at = None
        return True

    def events_queued(self) -> int:
        """Events waiting or in flight."""
        return sum(s.enqueued - s.settled for s in self.streams.values())

    def any_pending(self) -> bool:
        """Whether events wait in any stream (queued or in flight)."""
        return any(stream.pending for stream in self.streams.values())

    # ----------------------------------------------------------------------------------------
    # Sending (the sender's side).

    def due(self, now: float, *, stopping: bool) -> tuple[list[StreamQueue], float | None]:
        """The streams whose batch should go now, and when the next one will be due."""
        urgent = stopping or self.flush_waiters > 0 or self.closed
        interval = self.settings.flush_interval_s
        due: list[StreamQueue] = []
        next_at: float | None = None
        for stream in self.streams.values():
            if not stream.pending or stream.name == PENDING_STREAM:
                continue
            if stream.retry_at > now:
                wake_at = stream.retry_at
            elif (
                urgent
                or stream.in_flight
                or stream.taking is not None
                or stream.holds_full_batch
                or stream.first_waiting_at is None
                or now - stream.first_waiting_at >= interval
            ):
                due.append(stream)
                continue
            else:
                wake_at = stream.first_waiting_at + interval
            next_at = wake_at if next_at is None else min(next_at, wake_at)
        return due, next_at

    def detach(self, stream: StreamQueue) -> None:
        """Detach the events of ``stream``'s next call into ``stream.taking``, if any wait.

        The cheap half of taking a batch, done under the sender's lock: the sender then cuts
        them with `_batching.cut_batches` without the lock, and hands them back to `admit`.
        """
        if stream.taking is None and stream.queue:
            taken, size = take_prefix(stream.queue, stream.queued_size)
            stream.queued_size -= size
            stream.first_waiting_at = time.monotonic() if stream.queue else None
            stream.taking = taken

    def admit(self, stream: StreamQueue, cut: Cut) -> list[tuple[DropReason, int]]:
        """Put the batches `detach` led to in flight; return what aged out, by reason.

        Events CloudWatch would refuse for their age are settled here, once, as dropped, rather
        than sent (and counted again at every retry).
        """
        stream.taking = None
        stream.in_flight += cut.batches
        for reason, events in cut.aged_out:
            self.counters.dropped[reason] += len(events)
            self.release(stream, events, counts_as_success=False)
        return [(reason, len(events)) for reason, events in cut.aged_out]

    def release(
        self,
        stream: StreamQueue,
        batch: PackedEvents,
        *,
        counts_as_success: bool = True,
        size: int | None = None,
    ) -> Released:
        """Mark ``batch`` settled (delivered, or dropped and counted) and free its memory.

        Args:
            size: the batch's `total_size`, if the caller summed it before taking the lock.
        """
        stream.settled += len(batch)
        recovered_after = 0
        if counts_as_success:
            stream.recreations = 0
            recovered_after, stream.attempts = stream.attempts, 0
        if size is None:
            size = batch.total_size()
        self.bytes_queued -= size + self.overhead_per_event * len(batch)
        if self.on_settled is not None:
            self.on_settled(stream, batch)
        return Released(recovered_after)

    def settle_first(
        self,
        stream: StreamQueue,
        delivered: tuple[int, int],
        rejected: dict[DropReason, int],
        *,
        size: int | None = None,
    ) -> Released:
        """Count the first in-flight batch as sent: ``delivered`` is the accepted slice.

        Args:
            size: the batch's `total_size`, if the caller summed it before taking the lock.
        """
        batch = stream.in_flight.pop(0)
        if size is None:
            size = batch.total_size()
        start, end = delivered
        counters = self.counters
        if batch:
            counters.batches += 1
        counters.events_delivered += end - start
        whole = start == 0 and end == len(batch)
        counters.bytes_delivered += size if whole else sum(islice(batch.sizes(end), start, None))
        for reason, number in rejected.items():
            counters.dropped[reason] += number
        return self.release(stream, batch, size=size)

    def split_refused(self, stream: StreamQueue) -> bool:
        """Halve the first in-flight batch, which CloudWatch refused; True if one event was dropped.

        A refused batch is never resent unchanged: halving it until the bad event stands alone
        drops that event only.
        """
        batch = stream.in_flight.pop(0)
        if len(batch) > 1:
            stream.in_flight[0:0] = [batch.detach(len(batch) // 2), batch]
            return False
        self.counters.dropped["invalid"] += 1
        self.release(stream, batch)
        return True

    def prune_idle(self) -> None:
        """Forget streams that are idle and no longer written (each Lambda invocation has one)."""
        idle = [
            name
            for name, stream in self.streams.items()
            if not stream.pending and name != self.last_stream and not stream.attempts
        ]
        for name in idle:
            del self.streams[name]

    def keep_after_fork(self, latest: Mapping[str, int]) -> None:
        """Start a forked child's queues empty (its parent's events are its parent's to send),
        but for, in each stream named in ``latest``, that many of its parent's latest events
        (those `_handover` gave it to send)."""
        self.counters = Counters()
        self.flush_waiters = 0
        for name, stream in self.streams.items():
            stream.keep_latest(latest.get(name, 0))
        kept = sum(len(stream.queue) for stream in self.streams.values())
        self.bytes_queued = kept * self.overhead_per_event + sum(
            stream.queued_size for stream in self.streams.values()
        )
        self.counters.records_accepted = kept
