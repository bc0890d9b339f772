"""Cutting queued events into PutLogEvents batches that AWS accepts (pure, no I/O).

Every batch holds at most `MAX_BATCH_EVENTS` events and `MAX_BATCH_BYTES` (UTF-8 plus 26 per
event), is in chronological order, and spans at most 24 hours; each of these, broken, makes AWS
refuse the whole call. Events leave the queue in the order they came, and within a batch equal
timestamps keep that order (the sort is stable), so the parts of a split message stay in order.
https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate

from . import _slices
from ._limits import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_BATCH_SPAN_MS,
    MAX_EVENT_AGE_MS,
    MAX_EVENT_FUTURE_MS,
)
from ._packed import PackedEvents
from ._slices import SLICE_EVENTS, Pause
from ._stats import DropReason


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """The limits one batch must respect (AWS's, unless a test narrows them)."""

    max_events: int = MAX_BATCH_EVENTS
    max_bytes: int = MAX_BATCH_BYTES
    max_span_ms: int = MAX_BATCH_SPAN_MS


AWS_LIMITS = BatchLimits()


def is_full(count: int, size: int, limits: BatchLimits = AWS_LIMITS) -> bool:
    """Tell whether ``count`` events of ``size`` bytes in all fill at least one batch."""
    return count >= limits.max_events or size >= limits.max_bytes


def events_per_batch(count: int, size: int, limits: BatchLimits = AWS_LIMITS) -> int:
    """Events in a full batch of events the size, on average, of ``count`` events of ``size``
    bytes in all."""
    return min(limits.max_events, count * limits.max_bytes // max(size, 1))


def take_prefix(
    queue: PackedEvents, queued_size: int, limits: BatchLimits = AWS_LIMITS
) -> tuple[PackedEvents, int]:
    """Detach the longest prefix of ``queue`` that fits one batch by count and bytes; return it
    with its size.

    Runs under the sender's lock, so sizes are summed over as few events as can tell:
    ``queued_size``, the size of all of ``queue`` (the stream keeps it), sizes a queue that is
    one batch with no sum (a sender that keeps up takes all that waits) and a prefix by the
    fewer events behind it (a sender a little behind). Only a prefix over the byte limit is
    searched for its cut. A single event is always taken, even alone: `_events.make_events`
    guarantees each fits.
    """
    waiting = len(queue)
    count = min(waiting, limits.max_events)
    if waiting - count < count:
        size = queued_size - queue.size_of(count, waiting)
    else:
        size = queue.size_of(0, count)
    if size > limits.max_bytes:
        ends = list(accumulate(queue.sizes(count)))
        count = max(1, bisect_right(ends, limits.max_bytes))
        size = ends[count - 1]
    taken = queue.detach(count)
    taken.note_total_size(size)  # settling the batch needs it, after the reply: not summed again
    return taken, size


@dataclass(frozen=True, slots=True)
class Cut:
    """What `cut_batches` made of the events of one call: batches to send, and what aged out."""

    batches: list[PackedEvents]
    aged_out: list[tuple[DropReason, PackedEvents]]


def timestamp_runs(times: array[int], limit: int) -> list[tuple[int, int]] | None:
    """``times`` as runs of one timestamp each, rising from run to run, as (timestamp, count)
    from the first; None if they are not in order, or may make more than ``limit`` runs (they
    span ``limit`` milliseconds or more: then bisecting costs more than it saves).

    A busy logger's 10,000 events are a few dozen milliseconds: bisecting from one run's start
    to the next (each run checked whole, in C) costs a few microseconds a run, where comparing
    every pair makes two int objects an event. Bisection assumes order, so each run is checked
    to hold only its timestamp; the next run's is then higher, as bisection stops only before a
    timestamp it found higher. Out of order gives None, never wrong runs.
    """
    runs: list[tuple[int, int]] = []
    start, end = 0, len(times)
    if end and times[-1] - times[0] >= limit:
        return None
    while start < end:
        if len(runs) == limit:
            return None
        timestamp_ms = times[start]
        stop = bisect_right(times, timestamp_ms, start)
        # Arrays of one type compare in C; count() would make an int object of every element.
        if times[start:stop] != array(times.typecode, (timestamp_ms,)) * (stop - start):
            return None
        runs.append((timestamp_ms, stop - start))
        start = stop
    return runs


_EVENTS_PER_RUN_AT_LEAST = 64
"""Below this many events a run, the order is checked slice by slice instead of run by run.
Bisecting costs a few microseconds a run, with no checkpoint between runs: for 10,000 events at
40 a millisecond (a logging call of 25 us) the runs took 328 us and the slices 345 us at best,
but in the sender the stretch from the order check to the encoder's first checkpoint, the runs in
it, took 0.87 ms (median of 10 batches), which a logging call waited for. At 64 a batch has at
most 157 runs; at 160 events a millisecond the runs take 96 us against the slices' 342."""


def _in_order(times: array[int], pause: Pause | None = None) -> bool:
    """Whether ``times`` never goes down: by runs when they are few, else slice by slice.

    A slice is read as a list (its ints made in C) and compared with itself sorted: timsort on
    ordered ints compares each neighbour once, in C. That is half the cost of comparing pairs
    through `operator.le`, which makes two int objects a pair. Each slice starts at the last
    timestamp of the one before, so a step back between two slices is seen too, and ``pause``
    is called before each (`_slices.pause` by default, as the encoder's): 10,000 events spread
    over seconds took a millisecond in one stretch, and a logging call waited for all of it.
    """
    pause = pause or _slices.pause
    # A checkpoint before the runs too: they take up to a millisecond for a batch of a few
    # hundred runs, and came straight after the taking of the batch with none between.
    pause()
    if timestamp_runs(times, limit=len(times) // _EVENTS_PER_RUN_AT_LEAST + 1) is not None:
        return True
    for start in range(0, len(times), SLICE_EVENTS):
        if start:
            pause()  # the first slice's checkpoint is the one above
        part = times[max(0, start - 1) : start + SLICE_EVENTS].tolist()
        if part != sorted(part):
            return False
    return True


def in_order_within(
    times: array[int],
    *,
    now_ms: int,
    limits: BatchLimits = AWS_LIMITS,
    pause: Pause | None = None,
) -> bool:
    """Whether events at ``times`` make one batch as they are: in order, within 24 hours, and
    none the service would drop for its age. A few passes in C, no tuple; ``pause`` is called
    between slices of the order check (`_in_order`)."""
    if not times:
        return True
    oldest, newest = now_ms - MAX_EVENT_AGE_MS, now_ms + MAX_EVENT_FUTURE_MS
    return (
        oldest <= times[0]
        and times[-1] <= newest
        and times[-1] - times[0] <= limits.max_span_ms
        and _in_order(times, pause)
    )


def cut_batches(
    taken: PackedEvents,
    *,
    now_ms: int,
    limits: BatchLimits = AWS_LIMITS,
    pause: Pause | None = None,
) -> Cut:
    """Turn events `take_prefix` detached into batches AWS accepts, setting aside what aged out.

    The usual events (in order, within a day, none too old or too new) are sent as they are
    packed. Any other case is sorted by time (stably: the parts of a split message stay in
    order), cut where a batch would span more than 24 hours, and rebuilt row by row, with each
    event's journal number. The sender calls this without its lock; ``pause`` is called between
    slices of the usual case's work (`_in_order`).
    """
    times = taken.timestamps()
    if in_order_within(times, now_ms=now_ms, limits=limits, pause=pause):
        return Cut([taken] if taken else [], [])
    oldest, newest = now_ms - MAX_EVENT_AGE_MS, now_ms + MAX_EVENT_FUTURE_MS
    order = sorted(range(len(times)), key=times.__getitem__)
    too_old = [row for row in order if times[row] < oldest]
    too_new = [row for row in order if times[row] > newest]
    batches: list[list[int]] = []
    for row in order:
        if not oldest <= times[row] <= newest:
            continue
        if batches and times[row] - times[batches[-1][0]] <= limits.max_span_ms:
            batches[-1].append(row)
        else:
            batches.append([row])
    aged: tuple[tuple[DropReason, list[int]], ...] = (("too_old", too_old), ("too_new", too_new))
    return Cut(
        [taken.select(rows) for rows in batches],
        [(reason, taken.select(rows)) for reason, rows in aged if rows],
    )
