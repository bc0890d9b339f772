"""Batching properties: every event in exactly one batch, order kept, every AWS limit held."""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from aws_cloudwatch_logs_handler._batching import (
    AWS_LIMITS,
    BatchLimits,
    batch_bytes,
    cut_batches,
    split_by_age,
    take_batches,
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


def drain(events: list[Event], limits: BatchLimits) -> list[list[Event]]:
    queue = PackedEvents(events)
    batches: list[list[Event]] = []
    while queue:  # bounded: every call takes at least one event
        batches.extend(take_batches(queue, limits))
    return batches


@settings(max_examples=300)
@given(event_streams())
def test_every_event_lands_in_exactly_one_batch(events: list[Event]) -> None:
    """No event is lost or duplicated by batching."""
    batches = drain(events, SMALL)
    assert Counter(e for b in batches for e in b) == Counter(events)


@settings(max_examples=300)
@given(event_streams())
def test_every_batch_holds_every_limit(events: list[Event]) -> None:
    """Each batch is chronological and within count, bytes (+26 each) and span."""
    for batch in drain(events, SMALL):
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
    assert [e for b in drain(ordered, SMALL) for e in b] == ordered


@given(st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=40))
def test_equal_timestamps_keep_their_order_inside_a_batch(offsets: list[int]) -> None:
    """The sort is stable: split parts with one timestamp stay in sequence."""
    events = [Event(NOW_MS + o, f"m{i}", 28) for i, o in enumerate(offsets)]
    [batch] = drain(events, AWS_LIMITS)
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


def test_ten_thousand_and_one_small_events_make_two_batches() -> None:
    """The event count limit cuts at exactly 10,000."""
    events = [Event(NOW_MS, "x", 27)] * 10_001
    assert [len(b) for b in drain(events, AWS_LIMITS)] == [10_000, 1]


def test_a_full_size_event_stands_alone() -> None:
    """Two maximal events never share a batch: each fills 1,048,576 bytes."""
    big = make_events(NOW_MS, "a" * MAX_EVENT_BYTES, max_event_bytes=MAX_EVENT_BYTES)
    assert [len(b) for b in drain(big * 2, AWS_LIMITS)] == [1, 1]
    assert batch_bytes(big) == MAX_BATCH_BYTES


def test_events_spanning_more_than_a_day_are_cut_apart() -> None:
    """Events 25 hours apart go in separate calls."""
    events = [Event(NOW_MS - 25 * HOUR_MS, "old", 29), Event(NOW_MS, "new", 29)]
    assert [[e.message for e in b] for b in drain(events, AWS_LIMITS)] == [["old"], ["new"]]


def test_age_split_sets_aside_what_the_service_would_drop() -> None:
    """Over 14 days old or over 2 hours ahead is set aside; the edges are kept."""
    day = 24 * HOUR_MS
    events = [
        Event(NOW_MS - 14 * day - 1, "too old", 0),
        Event(NOW_MS - 14 * day, "oldest kept", 0),
        Event(NOW_MS + 2 * HOUR_MS, "newest kept", 0),
        Event(NOW_MS + 2 * HOUR_MS + 1, "too new", 0),
    ]
    split = split_by_age(events, now_ms=NOW_MS)
    assert [e.message for e in split.sendable] == ["oldest kept", "newest kept"]
    assert [e.message for e in split.too_old] == ["too old"]
    assert [e.message for e in split.too_new] == ["too new"]


def test_events_in_order_are_sent_as_packed_without_a_tuple() -> None:
    """The usual call (in order, within a day, none aged out) goes as it was packed."""
    taken = PackedEvents([Event(NOW_MS + i, f"m{i}", 28) for i in range(5)])
    cut = cut_batches(taken, now_ms=NOW_MS)
    assert cut.batches == [taken]
    assert cut.aged_out == []


def test_events_out_of_order_are_sorted_and_aged_ones_set_aside_pausing_between_slices() -> None:
    """Out of order, spanning days, some too old: sorted, cut at 24 hours, the too-old set aside,
    with pauses while the tuples are built."""
    day_ms = 24 * 60 * 60 * 1000
    events = [Event(NOW_MS - (i % 3) * day_ms + i, f"m{i}", 28) for i in range(2 * SLICE_EVENTS)]
    too_old = Event(NOW_MS - 15 * day_ms, "old", 29)
    pauses: list[None] = []
    cut = cut_batches(
        PackedEvents([too_old, *events]), now_ms=NOW_MS, pause=lambda: pauses.append(None)
    )
    assert cut.aged_out == [("too_old", [too_old])]
    sent = [list(batch) for batch in cut.batches]
    assert sorted(event for batch in sent for event in batch) == sorted(events)
    for batch in sent:
        times = [event.timestamp_ms for event in batch]
        assert times == sorted(times)
        assert times[-1] - times[0] <= day_ms
    assert len(pauses) >= 2
