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
from itertools import accumulate, islice
from operator import le

from ._limits import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_BATCH_SPAN_MS,
    MAX_EVENT_AGE_MS,
    MAX_EVENT_FUTURE_MS,
)
from ._packed import PackedEvents
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


def take_prefix(queue: PackedEvents, limits: BatchLimits = AWS_LIMITS) -> PackedEvents:
    """Detach the longest prefix of ``queue`` that fits one batch by count and bytes.

    Runs under the sender's lock, so the usual case (the first 10,000 events within 1 MiB) is
    one sum in C; only a prefix over the byte limit is searched for its cut. A single event is
    always taken, even alone: `_events.make_events` guarantees each fits.
    """
    if queue.size_of_first(limits.max_events) <= limits.max_bytes:
        return queue.detach(limits.max_events)
    ends = list(accumulate(queue.sizes(limits.max_events)))
    return queue.detach(max(1, bisect_right(ends, limits.max_bytes)))


@dataclass(frozen=True, slots=True)
class Cut:
    """What `cut_batches` made of the events of one call: batches to send, and what aged out."""

    batches: list[PackedEvents]
    aged_out: list[tuple[DropReason, PackedEvents]]


def in_order_within(times: array[int], *, now_ms: int, limits: BatchLimits = AWS_LIMITS) -> bool:
    """Whether events at ``times`` make one batch as they are: in order, within 24 hours, and
    none the service would drop for its age. Three passes in C, no tuple."""
    if not times:
        return True
    oldest, newest = now_ms - MAX_EVENT_AGE_MS, now_ms + MAX_EVENT_FUTURE_MS
    return (
        oldest <= times[0]
        and times[-1] <= newest
        and times[-1] - times[0] <= limits.max_span_ms
        and all(map(le, times, islice(times, 1, None)))
    )


def cut_batches(taken: PackedEvents, *, now_ms: int, limits: BatchLimits = AWS_LIMITS) -> Cut:
    """Turn events `take_prefix` detached into batches AWS accepts, setting aside what aged out.

    The usual events (in order, within a day, none too old or too new) are sent as they are
    packed. Any other case is sorted by time (stably: the parts of a split message stay in
    order), cut where a batch would span more than 24 hours, and rebuilt row by row, with each
    event's journal number. The sender calls this without its lock.
    """
    times = taken.timestamps()
    if in_order_within(times, now_ms=now_ms, limits=limits):
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
