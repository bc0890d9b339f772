"""The compact event queue: first in, first out, whatever mix of appends and takes."""

from __future__ import annotations

import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st
from packed_memory import addresses

from aws_cloudwatch_logs_handler._events import Event
from aws_cloudwatch_logs_handler._packed import (
    CHUNK_MESSAGES,
    ROOM_FROM,
    SEPARATOR,
    PackedEvents,
    room_for,
)
from aws_cloudwatch_logs_handler._queues import MEMORY_OVERHEAD_PER_EVENT


def take(queue: PackedEvents, count: int) -> list[Event]:
    """Detach the ``count`` oldest events and read them back, as the sender's batches are read."""
    return list(queue.detach(count))


_EVENTS = st.builds(
    Event, st.integers(0, 2**62), st.text(min_size=1, max_size=8), st.integers(27, 99)
)


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.lists(_EVENTS, max_size=20).map(lambda events: ("add", events)),
            st.integers(0, 9_000).map(lambda count: ("take", count)),
        ),
        max_size=30,
    )
)
def test_events_leave_in_the_order_they_came(steps: list[tuple[str, object]]) -> None:
    """Taken events come out whole and in order, across the queue's compaction of its front."""
    queue = PackedEvents()
    added: list[Event] = []
    taken: list[Event] = []
    for kind, argument in steps:
        if kind == "add":
            assert isinstance(argument, list)
            queue.extend(argument)
            added.extend(argument)
        else:
            assert isinstance(argument, int)
            taken.extend(take(queue, argument))
        assert len(queue) == len(added) - len(taken)
        assert list(queue) == added[len(taken) :]
    assert taken == added[: len(taken)]


def test_a_long_queue_is_compacted_without_losing_events() -> None:
    """Taking past the compaction point keeps every later event, oldest first."""
    events = [Event(i, f"m{i}", 28) for i in range(10_000)]
    queue = PackedEvents(events)
    assert take(queue, 6_000) == events[:6_000]
    assert take(queue, 1) == [events[6_000]]
    assert list(queue) == events[6_001:]
    assert list(queue.sizes(3)) == [28, 28, 28]
    queue.clear()
    assert not queue


def test_detach_moves_the_oldest_events_into_a_queue_of_their_own() -> None:
    """`detach` leaves the rest in place, in order; the detached part holds exactly the first."""
    events = [Event(i, f"m{i}", 28 + i) for i in range(10)]
    queue = PackedEvents(events)
    part = queue.detach(4)
    assert list(part) == events[:4]
    assert part.size_of(0, 4) == sum(event.size for event in events[:4])
    assert list(queue) == events[4:]
    assert take(queue, 1) == [events[4]]
    assert list(queue) == events[5:]


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.integers(1, 2 * CHUNK_MESSAGES + 50).map(lambda count: ("ascii", count)),
            st.tuples(st.integers(1, 2 * CHUNK_MESSAGES + 50), st.integers(-1, 600)).map(
                lambda c: ("append", c)
            ),
            st.lists(_EVENTS, max_size=20).map(lambda events: ("add", events)),
            st.integers(0, 700).map(lambda count: ("take", count)),
            st.tuples(st.integers(0, 700), st.integers(1, 300)).map(lambda c: ("detach", c)),
            st.just(("one", 0)),
        ),
        max_size=25,
    )
)
def test_chunked_messages_leave_whole_and_in_order(steps: list[tuple[str, object]]) -> None:
    """Joined ASCII chunks, list chunks and the open tail give back every message exactly,
    whether taken at once, detached and then taken in pieces, or one at a time; appended one by
    one (the logging call's way), a message holding the separator keeps its chunk unjoined."""
    queue = PackedEvents()
    added: list[Event] = []
    taken: list[Event] = []
    for kind, argument in steps:
        if kind == "append":
            assert isinstance(argument, tuple)
            count, holding_separator = argument
            for i in range(count):
                message = "x\x1ey" if i == holding_separator else f"p{len(added)}"
                assert queue.append(len(added), message, 28) == len(added) + 1 - len(taken)
                added.append(Event(len(added), message, 28))
        elif kind in ("add", "ascii"):
            if isinstance(argument, int):  # enough ASCII messages in a row to seal joined chunks
                events = [Event(i, f"a{len(added) + i}", 28) for i in range(argument)]
            else:
                assert isinstance(argument, list)
                events = argument
            queue.extend(events)
            added.extend(events)
        elif kind == "take":
            assert isinstance(argument, int)
            taken.extend(take(queue, argument))
        elif kind == "detach":
            assert isinstance(argument, tuple)
            count, piece = argument
            part = queue.detach(count)
            assert list(part) == added[len(taken) : len(taken) + len(part)]
            while part:
                taken.extend(take(part, piece))
        elif queue:
            taken += take(queue, 1)
        assert taken == added[: len(taken)]
        assert list(queue) == added[len(taken) :]
        assert_ranges_read_as_queued(queue)


def assert_ranges_read_as_queued(queue: PackedEvents) -> None:
    """Every way the encoder reads a range (timestamps, messages, joined text) gives the queue's
    events: the whole queue, and ranges that start and end inside chunks."""
    events = list(queue)
    size = len(events)
    ranges = [(0, size), (size // 3, 2 * size // 3), (1, max(1, size - 1))]
    # One and two chunks' worth from every start in the first chunks: some of these ranges are
    # whole sealed chunks, which `text` joins as they are.
    for start in range(min(size, 2 * CHUNK_MESSAGES) + 1):
        ranges += [(start, start + CHUNK_MESSAGES), (start, start + 2 * CHUNK_MESSAGES)]
    for start, end in ranges:
        if start > end or end > size:
            continue
        wanted = events[start:end]
        assert list(queue.timestamps(start, end)) == [event.timestamp_ms for event in wanted]
        assert queue.messages(start, end) == [event.message for event in wanted]
        assert queue.text(start, end) == SEPARATOR.join(event.message for event in wanted)


def test_a_noted_total_size_holds_only_until_the_queue_changes() -> None:
    """The size a taker noted spares summing it again, and no change outlives it: an append,
    a detach, a take from the front (with or without compacting the arrays), a join."""
    events = [Event(i, f"m{i}", 28 + i % 7) for i in range(5_000)]

    def noted(queue: PackedEvents) -> PackedEvents:
        queue.note_total_size(-1)  # a size no real queue has: seen if it is ever returned
        assert queue.total_size() == -1
        return queue

    def true_size(queue: PackedEvents) -> int:
        return sum(event.size for event in queue)

    queue = noted(PackedEvents(events))
    queue.append(5_000, "appended", 30)
    assert queue.total_size() == true_size(queue)
    part = noted(queue).detach(100)  # takes the front, arrays as they were: other events
    assert part.total_size() == true_size(part) and queue.total_size() == true_size(queue)
    queue = noted(PackedEvents(events))
    for i in range(5_000):
        queue.append(5_000 + i, "x", 28)
    queue.detach(5_000)  # compacts its arrays, back to the noted length: other events
    assert queue.total_size() == true_size(queue)
    queue = noted(queue).joined(PackedEvents(events[:3]))
    assert queue.total_size() == true_size(queue)
    noted(queue).extend(events[:2])
    assert queue.total_size() == true_size(queue)
    whole = noted(queue).detach(len(queue))  # the same events, moved whole: the note goes along
    assert whole.total_size() == -1 and queue.total_size() == 0


def test_a_chunk_whose_message_holds_the_separator_comes_back_exactly() -> None:
    """A message may hold any character, the joining separator too: its chunk is kept unjoined."""
    events = [Event(i, f"m{i}", 28) for i in range(CHUNK_MESSAGES * 2)]
    events[3] = Event(3, "a\x1eb", 29)
    events[CHUNK_MESSAGES + 5] = Event(CHUNK_MESSAGES + 5, "é and \U0001f600", 40)
    queue = PackedEvents(events)
    # Read as the encoder reads whole chunks, then taken.
    assert queue.text(0, len(events)) == SEPARATOR.join(event.message for event in events)
    assert queue.text(CHUNK_MESSAGES, 2 * CHUNK_MESSAGES) == SEPARATOR.join(
        event.message for event in events[CHUNK_MESSAGES:]
    )
    assert take(queue, len(events)) == events


def test_a_queue_holds_no_more_memory_than_the_bound_counts_for_it() -> None:
    """The memory bound counts each waiting event as its size (its UTF-8 bytes plus 26) plus
    `MEMORY_OVERHEAD_PER_EVENT`. That holds for the worst case, messages that are not ASCII (each
    keeps its own string); ASCII messages, sealed into chunks, hold little more than their text."""
    tracemalloc.start()
    try:
        for character, most_over_text in (("\u00e9", MEMORY_OVERHEAD_PER_EVENT + 26), ("e", 20)):
            before = tracemalloc.get_traced_memory()[0]
            queue, text, count = PackedEvents(), 0, 20_000
            for i in range(count):  # a new string each time, as a logging call formats one
                message = f"2026-12-01 12:00:00,000 INFO app {character}vent {i:08d}"
                size = len(message.encode()) + 26
                queue.append(1_700_000_000_000 + i, message, size)
                text += size - 26
            held = tracemalloc.get_traced_memory()[0] - before
            assert held <= text + most_over_text * count, (character, (held - text) / count)
            assert queue.messages(count - 1, count) == [message]
            del queue
    finally:
        tracemalloc.stop()


def test_a_queue_moved_into_room_for_a_batch_fills_it_without_moving() -> None:
    """The waiting events move into arrays with memory for a batch (`room_for`, emptied with
    their memory kept): appends up to that batch then never move them (a move is fresh memory
    and a copy, on a logging call), and every event comes out as it went in, journal numbers
    too, though the first ones were taken from the front before the move."""
    queue = PackedEvents()
    queue.extend([Event(i, f"first {i}", 34) for i in range(3_000)], first_number=0)
    take(queue, len(queue))  # taken whole: the batch has the queue's arrays
    queue.extend([Event(i, f"second {i}", 35) for i in range(1_500)], first_number=3_000)
    take(queue, 500)  # the waiting events start behind a gap at the arrays' front
    waiting = list(queue)
    assert not queue.has_room

    room = room_for(3_000, numbered=True)
    times, sizes, numbers_room = room
    assert numbers_room is not None
    kept = addresses(times, sizes, numbers_room)
    assert queue.move_into(room)
    assert queue.has_room
    assert list(queue) == waiting
    numbers = queue.journal_numbers()
    assert numbers is not None and list(numbers) == list(range(3_500, 4_500))

    more = [Event(i, f"third {i}", 34) for i in range(2_000)]
    for number, event in enumerate(more, start=4_500):
        queue.append(*event, number=number)
        assert queue._numbers is not None
        assert addresses(queue._times, queue._sizes, queue._numbers) == kept
    assert list(queue) == waiting + more
    numbers = queue.journal_numbers()
    assert numbers is not None and list(numbers) == list(range(3_500, 6_500))


def test_room_is_made_once_and_only_where_the_waiting_events_fit() -> None:
    """A queue with room keeps it; one with more events waiting than half the room offered
    stays as it is (the copy under the sender's lock would be long, and the room soon outgrown);
    a queue taken whole gives its arrays to the batch and starts again without room."""
    crowded = [Event(i, "m", 27) for i in range(600)]
    queue = PackedEvents(crowded)
    assert not queue.move_into(room_for(1_000))
    assert not queue.has_room and list(queue) == crowded

    few = [Event(i, "f", 27) for i in range(100)]
    queue = PackedEvents(few)
    assert queue.move_into(room_for(1_000))
    assert not queue.move_into(room_for(1_000))
    assert queue.has_room and list(queue) == few
    assert list(queue.detach(len(queue))) == few
    assert not queue.has_room


def test_room_numbers_the_waiting_events_that_had_none() -> None:
    """Room with journal numbers, given to a queue whose waiting events have none yet (a
    spooling handler's queue right after a take), numbers them -1 (not journaled), as a later
    numbered append would have: the journal is told exactly which events it holds."""
    queue = PackedEvents([Event(i, "plain", 32) for i in range(3)])
    assert queue.move_into(room_for(100, numbered=True))
    queue.append(3, "journaled", 36, number=7)
    numbers = queue.journal_numbers()
    assert numbers is not None and list(numbers) == [-1, -1, -1, 7]
    assert [event.message for event in queue] == ["plain"] * 3 + ["journaled"]


def test_a_batch_that_takes_a_queue_with_room_shares_no_memory_with_it() -> None:
    """Taking every waiting event hands the batch the arrays with room: the queue's next events
    go into arrays of their own, and whatever is done with the batch afterwards (emptied,
    filled again) leaves them whole."""
    queue = PackedEvents()
    assert queue.move_into(room_for(ROOM_FROM))
    queue.extend([Event(i, f"old {i}", 31) for i in range(ROOM_FROM)])
    batch = queue.detach(len(queue))
    new = [Event(i, f"new {i}", 31) for i in range(10)]
    queue.extend(new)
    batch.clear()
    batch.extend([Event(0, "the batch's own", 41)])
    assert list(queue) == new
    assert list(batch) == [Event(0, "the batch's own", 41)]
