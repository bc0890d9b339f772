"""Batching properties: every event in exactly one batch, order kept, every AWS limit held."""

from __future__ import annotations

import itertools
import random
from array import array
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aws_cloudwatch_logs_handler._batching import (
    AWS_LIMITS,
    BatchLimits,
    cut_batches,
    events_per_batch,
    in_order_within,
    take_prefix,
    timestamp_runs,
)
from aws_cloudwatch_logs_handler._events import Event, make_events
from aws_cloudwatch_logs_handler._limits import (
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_BATCH_SPAN_MS,
    MAX_EVENT_BYTES,
)
from aws_cloudwatch_logs_handler._packed import PackedEvents
from aws_cloudwatch_logs_handler._slices import SLICE_EVENTS

HOUR_MS = 3_600_000
NOW_MS = 1_800_000_000_000


def batch_bytes(events: list[Event]) -> int:
    """A batch's size as AWS counts it, from the sizes its events carry."""
    return sum(event.size for event in events)


# Small limits so that Hypothesis reaches every edge with small inputs.
SMALL = BatchLimits(max_events=7, max_bytes=400, max_span_ms=10 * HOUR_MS)


@st.composite
def event_streams(draw: st.DrawFn) -> list[Event]:
    """Messages of random Unicode and sizes, with timestamps that wander over days."""
    events: list[Event] = []
    timestamp = NOW_MS
    for text in draw(st.lists(st.text(min_size=0, max_size=300), max_size=60)):
        timestamp += draw(st.integers(min_value=-30 * HOUR_MS, max_value=30 * HOUR_MS))
        events.extend(make_events(timestamp, text, max_event_bytes=SMALL.max_bytes - 26))
    return events


def drain(events: list[Event], limits: BatchLimits) -> tuple[list[list[Event]], list[Event]]:
    """Take and cut calls until the queue is empty, as the sender does: (batches, aged out).

    "Now" is the newest event's time: nothing is too new, the oldest may be too old.
    """
    now_ms = max((event.timestamp_ms for event in events), default=NOW_MS)
    queue = PackedEvents(events)
    batches: list[list[Event]] = []
    aged: list[Event] = []
    while queue:  # bounded: every call takes at least one event
        queued_size = queue.total_size()
        taken, size = take_prefix(queue, queued_size, limits)
        assert size == sum(event.size for event in taken) == queued_size - queue.total_size()
        assert taken.total_size() == size
        cut = cut_batches(taken, now_ms=now_ms, limits=limits)
        batches += [list(batch) for batch in cut.batches]
        aged += [event for _, part in cut.aged_out for event in part]
    return batches, aged


@settings(max_examples=300)
@given(event_streams())
def test_every_event_lands_in_exactly_one_batch(events: list[Event]) -> None:
    """No event is lost or duplicated by batching: each is sent once or set aside as too old."""
    batches, aged = drain(events, SMALL)
    assert Counter([e for b in batches for e in b] + aged) == Counter(events)


@settings(max_examples=300)
@given(event_streams())
def test_every_batch_holds_every_limit(events: list[Event]) -> None:
    """Each batch is chronological and within count, bytes (+26 each) and span."""
    for batch in drain(events, SMALL)[0]:
        assert 1 <= len(batch) <= SMALL.max_events
        assert batch_bytes(batch) <= SMALL.max_bytes
        assert sum(len(e.message.encode()) + 26 for e in batch) == batch_bytes(batch)
        stamps = [e.timestamp_ms for e in batch]
        assert stamps == sorted(stamps)
        assert stamps[-1] - stamps[0] <= SMALL.max_span_ms


@settings(max_examples=200)
@given(event_streams())
def test_order_is_kept_for_events_logged_in_time_order(events: list[Event]) -> None:
    """Events whose timestamps never go back come out in the order they went in."""
    ordered = sorted(events, key=lambda e: e.timestamp_ms)  # stable: equal stamps keep order
    batches, aged = drain(ordered, SMALL)
    assert [e for b in batches for e in b] == [e for e in ordered if e not in aged]


@given(st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=40))
def test_equal_timestamps_keep_their_order_inside_a_batch(offsets: list[int]) -> None:
    """The sort is stable: split parts with one timestamp stay in sequence."""
    events = [Event(NOW_MS + o, f"m{i}", 28) for i, o in enumerate(offsets)]
    [batch] = drain(events, AWS_LIMITS)[0]
    for a, b in itertools.pairwise(batch):
        if a.timestamp_ms == b.timestamp_ms:
            assert int(a.message[1:]) < int(b.message[1:])


def test_aws_limits_are_the_documented_ones() -> None:
    """The default limits are AWS's: 10,000 events, 1,048,576 bytes, 24 hours."""
    assert (AWS_LIMITS.max_events, AWS_LIMITS.max_bytes, AWS_LIMITS.max_span_ms) == (
        MAX_BATCH_EVENTS,
        MAX_BATCH_BYTES,
        MAX_BATCH_SPAN_MS,
    )
    assert MAX_EVENT_BYTES == 1_048_576 - 26


def test_a_full_batch_of_events_like_these_is_counted_by_its_first_limit() -> None:
    """The events a full batch holds, for events of the given average size: the count limit for
    short ones, the byte limit for long ones (the sender sizes a queue's room by it), and a cut
    of the byte limit for events as long as one can be."""
    assert events_per_batch(1_024, 1_024 * 76) == MAX_BATCH_EVENTS
    assert events_per_batch(1_024, 1_024 * 1_026) == MAX_BATCH_BYTES // 1_026
    assert events_per_batch(1, MAX_BATCH_BYTES) == 1


def test_ten_thousand_and_one_small_events_make_two_batches() -> None:
    """The event count limit cuts at exactly 10,000."""
    events = [Event(NOW_MS, "x", 27)] * 10_001
    assert [len(b) for b in drain(events, AWS_LIMITS)[0]] == [10_000, 1]


def test_a_full_size_event_stands_alone() -> None:
    """Two maximal events never share a batch: each fills 1,048,576 bytes."""
    big = make_events(NOW_MS, "a" * MAX_EVENT_BYTES, max_event_bytes=MAX_EVENT_BYTES)
    assert [len(b) for b in drain(big * 2, AWS_LIMITS)[0]] == [1, 1]
    assert batch_bytes(big) == MAX_BATCH_BYTES


def test_events_spanning_more_than_a_day_are_cut_apart() -> None:
    """Events 25 hours apart go in separate calls."""
    events = [Event(NOW_MS - 25 * HOUR_MS, "old", 29), Event(NOW_MS, "new", 29)]
    batches, _ = drain(events, AWS_LIMITS)
    assert [[e.message for e in b] for b in batches] == [["old"], ["new"]]


def test_age_split_sets_aside_what_the_service_would_drop() -> None:
    """Over 14 days old or over 2 hours ahead is set aside; the edges are kept."""
    day = 24 * HOUR_MS
    events = [
        Event(NOW_MS - 14 * day - 1, "too old", 0),
        Event(NOW_MS - 14 * day, "oldest kept", 0),
        Event(NOW_MS + 2 * HOUR_MS, "newest kept", 0),
        Event(NOW_MS + 2 * HOUR_MS + 1, "too new", 0),
    ]
    cut = cut_batches(PackedEvents(events), now_ms=NOW_MS)
    # Kept, and more than a day apart: two calls.
    assert [[e.message for e in batch] for batch in cut.batches] == [
        ["oldest kept"],
        ["newest kept"],
    ]
    assert [(reason, [e.message for e in part]) for reason, part in cut.aged_out] == [
        ("too_old", ["too old"]),
        ("too_new", ["too new"]),
    ]


def test_events_in_order_are_sent_as_packed_without_a_tuple() -> None:
    """The usual call (in order, within a day, none aged out) goes as it was packed."""
    taken = PackedEvents([Event(NOW_MS + i, f"m{i}", 28) for i in range(5)])
    cut = cut_batches(taken, now_ms=NOW_MS)
    assert cut.batches == [taken]
    assert cut.aged_out == []


def test_events_out_of_order_are_sorted_and_aged_ones_set_aside_keeping_journal_numbers() -> None:
    """Out of order, spanning days, some too old: sorted, cut at 24 hours, the too-old set aside,
    and every event keeps its journal number (so the spool settles exactly those)."""
    day_ms = 24 * 60 * 60 * 1000
    events = [Event(NOW_MS - (i % 3) * day_ms + i, f"m{i}", 28) for i in range(50)]
    too_old = Event(NOW_MS - 15 * day_ms, "old", 29)
    taken = PackedEvents()
    taken.extend([too_old, *events], first_number=100)
    number_of = {event: 100 + i for i, event in enumerate([too_old, *events])}
    cut = cut_batches(taken, now_ms=NOW_MS)
    [(reason, aged)] = cut.aged_out
    assert (reason, list(aged), list(aged.journal_numbers() or [])) == ("too_old", [too_old], [100])
    sent = [list(batch) for batch in cut.batches]
    assert sorted(event for batch in sent for event in batch) == sorted(events)
    for batch, part in zip(sent, cut.batches, strict=True):
        times = [event.timestamp_ms for event in batch]
        assert times == sorted(times)
        assert times[-1] - times[0] <= day_ms
        assert list(part.journal_numbers() or []) == [number_of[event] for event in batch]


def test_timestamps_are_read_as_rising_runs_or_not_at_all() -> None:
    """A busy logger's timestamps are a few runs of one millisecond each; out of order, or
    more runs than asked for, gives None."""
    assert timestamp_runs(array("q", [5, 5, 6, 6, 6, 9]), limit=8) == [(5, 2), (6, 3), (9, 1)]
    assert timestamp_runs(array("q", [7] * 600), limit=1) == [(7, 600)]
    assert timestamp_runs(array("q"), limit=1) == []
    assert timestamp_runs(array("q", [5, 6, 5, 6]), limit=8) is None
    assert timestamp_runs(array("q", [5, 5, 4, 6]), limit=8) is None
    assert timestamp_runs(array("q", [6, 5, 5, 5]), limit=8) is None
    assert timestamp_runs(array("q", range(8)), limit=8) is not None
    assert timestamp_runs(array("q", range(9)), limit=8) is None
    assert timestamp_runs(array("q", [1, 9]), limit=8) is None  # may be many runs: not tried
    assert timestamp_runs(array("q", [3, 1, 2, 5, 9, 4]), limit=8) is None


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.one_of(st.just(0), st.just(0), st.just(0), st.integers(-3, 3), st.integers(0, 50)),
        max_size=400,
    )
)
def test_the_order_check_agrees_with_comparing_every_pair(steps: list[int]) -> None:
    """Runs of equal timestamps, rises and the odd step back: the check by runs says "in
    order" exactly when no timestamp is below the one before it."""
    times = array("q", itertools.accumulate(steps, initial=NOW_MS))
    expected = all(a <= b for a, b in itertools.pairwise(times))
    assert in_order_within(times, now_ms=NOW_MS + 20_000, limits=AWS_LIMITS) == expected
    runs = timestamp_runs(times, limit=max(times, default=0) - min(times, default=0) + 1)
    assert (runs is not None) == expected
    if runs is not None:
        assert array("q", [t for t, count in runs for _ in range(count)]) == times


@settings(max_examples=200, deadline=None)
@given(
    length=st.integers(SLICE_EVENTS, 3 * SLICE_EVENTS),
    seed=st.integers(0, 2**32),
    back_at=st.integers(0, 3 * SLICE_EVENTS),
    back_by=st.integers(1, 5),
)
def test_the_order_check_of_a_spread_batch_sees_one_step_back_anywhere(
    length: int, seed: int, back_at: int, back_by: int
) -> None:
    """Timestamps too spread to read as runs (a slow logger's batch) are checked slice by slice:
    one step back is seen wherever it falls, at a slice's edge too."""
    rises = random.Random(seed).choices(range(41), k=length)  # runs of equal ones, and rises
    steps = [*rises, 1000]  # a wide span, so that the check cannot take the runs
    expected = back_at >= len(steps)
    if not expected:
        steps[back_at] = -back_by
    times = array("q", itertools.accumulate(steps, initial=NOW_MS))
    assert in_order_within(times, now_ms=NOW_MS + 300_000) == expected


def test_a_step_back_between_two_slices_is_seen() -> None:
    """Each slice is read as it is: the check must compare across the edge between two."""
    times = array("q", range(NOW_MS, NOW_MS + 2 * SLICE_EVENTS * 10, 10))
    assert in_order_within(times, now_ms=NOW_MS + 300_000)
    times[SLICE_EVENTS] = times[SLICE_EVENTS - 1] - 1
    assert not in_order_within(times, now_ms=NOW_MS + 300_000)


def test_cutting_a_spread_batch_lets_other_threads_in_between_slices() -> None:
    """10,000 events over seconds: the order check is a millisecond of work, so the sender's
    checkpoint is called before each slice, not once for the whole batch."""
    calls: list[None] = []
    count = MAX_BATCH_EVENTS
    taken = PackedEvents(Event(NOW_MS + 10 * i, f"m{i}", 28) for i in range(count))
    cut = cut_batches(taken, now_ms=NOW_MS + 300_000, pause=lambda ahead_s=0.0: calls.append(None))
    assert [len(batch) for batch in cut.batches] == [count]
    assert len(calls) == -(-count // SLICE_EVENTS)


@pytest.mark.parametrize(("events_per_ms", "checkpoints"), [(200, 1), (40, 20)])
def test_the_order_check_of_a_busy_loggers_batch_starts_with_a_checkpoint(
    events_per_ms: int, checkpoints: int
) -> None:
    """A full batch from a thread logging flat out: checked run by run when runs are long (one
    checkpoint, before the check), else slice by slice (one before each of the 20 slices); the
    sender's lock-free work never runs a millisecond without one."""
    calls: list[None] = []
    count = MAX_BATCH_EVENTS
    taken = PackedEvents(Event(NOW_MS + i // events_per_ms, f"m{i}", 28) for i in range(count))
    cut = cut_batches(taken, now_ms=NOW_MS + 300_000, pause=lambda ahead_s=0.0: calls.append(None))
    assert [len(batch) for batch in cut.batches] == [count]
    assert len(calls) == checkpoints
