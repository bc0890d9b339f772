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
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate, islice
from operator import itemgetter, le

from ._events import Event
from ._limits import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_BATCH_SPAN_MS,
    MAX_EVENT_AGE_MS,
    MAX_EVENT_FUTURE_MS,
)
from ._packed import PackedEvents
from ._slices import Pause, no_pause
from ._stats import DropReason

# Field getters for C-level passes over a batch: these run under the sender's lock, on up to
# 10,000 events, so no Python step per event (a logging call waits for that lock).
_BY_TIME = itemgetter(0)
_SIZE = itemgetter(2)


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


def split_by_span(events: Iterable[Event], limits: BatchLimits = AWS_LIMITS) -> list[list[Event]]:
    """Sort ``events`` by time (stably) and cut them where a batch would span more than 24 hours."""
    ordered = list(events)
    times = list(map(_BY_TIME, ordered))
    if times and all(map(le, times, islice(times, 1, None))):
        if times[-1] - times[0] <= limits.max_span_ms:
            return [ordered]  # the usual batch: in order, within a day
    else:
        ordered.sort(key=_BY_TIME)
    batches: list[list[Event]] = []
    for event in ordered:
        if batches and event.timestamp_ms - batches[-1][0].timestamp_ms <= limits.max_span_ms:
            batches[-1].append(event)
        else:
            batches.append([event])
    return batches


def take_batches(queue: PackedEvents, limits: BatchLimits = AWS_LIMITS) -> list[list[Event]]:
    """Pop the next events that fit one call and return them as batches AWS accepts, in order."""
    return split_by_span(take_prefix(queue, limits).pop_first(limits.max_events), limits)


@dataclass(frozen=True, slots=True)
class AgeSplit:
    """Events sorted by what the service would do with them, judged by their age."""

    sendable: list[Event]
    too_old: list[Event]
    too_new: list[Event]


def split_by_age(events: Iterable[Event], *, now_ms: int) -> AgeSplit:
    """Set aside events the service would drop: older than 14 days or over 2 hours ahead.

    Sending them would only spend bytes; they are counted by the caller instead.
    """
    batch = list(events)
    oldest, newest = now_ms - MAX_EVENT_AGE_MS, now_ms + MAX_EVENT_FUTURE_MS
    times = list(map(_BY_TIME, batch))
    if not times or (oldest <= min(times) and max(times) <= newest):
        return AgeSplit(batch, [], [])  # the usual batch: nothing to set aside
    sendable: list[Event] = []
    too_old: list[Event] = []
    too_new: list[Event] = []
    for event in batch:
        if event.timestamp_ms < oldest:
            too_old.append(event)
        elif event.timestamp_ms > newest:
            too_new.append(event)
        else:
            sendable.append(event)
    return AgeSplit(sendable, too_old, too_new)


def batch_bytes(events: Iterable[Event] | PackedEvents) -> int:
    """Return a batch's size as AWS counts it."""
    if isinstance(events, PackedEvents):
        return events.total_size()
    return sum(map(_SIZE, events))


@dataclass(frozen=True, slots=True)
class Cut:
    """What `cut_batches` made of the events of one call: batches to send, and what aged out."""

    batches: list[PackedEvents]
    aged_out: list[tuple[DropReason, list[Event]]]


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


def cut_batches(
    taken: PackedEvents,
    *,
    now_ms: int,
    pause: Pause = no_pause,
    limits: BatchLimits = AWS_LIMITS,
) -> Cut:
    """Turn events `take_prefix` detached into batches AWS accepts, setting aside what aged out.

    The usual events (in order, within a day, none too old or too new) are sent as they are
    packed, with no tuple built. Any other case is sorted and split event by event, in slices
    with ``pause`` between them. The sender calls this without its lock.
    """
    if in_order_within(taken.timestamps(), now_ms=now_ms, limits=limits):
        return Cut([taken] if taken else [], [])
    events = taken.pop_first(len(taken), pause=pause)
    pause()
    batches: list[PackedEvents] = []
    aged_out: list[tuple[DropReason, list[Event]]] = []
    for batch in split_by_span(events, limits):
        ages = split_by_age(batch, now_ms=now_ms)
        if ages.sendable:
            batches.append(PackedEvents(ages.sendable))
        aged: tuple[tuple[DropReason, list[Event]], ...] = (
            ("too_old", ages.too_old),
            ("too_new", ages.too_new),
        )
        aged_out += [(reason, events) for reason, events in aged if events]
    return Cut(batches, aged_out)
