"""Messages become events AWS accepts: repaired, never empty, split into parts that join back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aws_cloudwatch_logs_handler import join_parts
from aws_cloudwatch_logs_handler._events import EMPTY_MESSAGE, make_events, repair_text
from aws_cloudwatch_logs_handler._limits import EVENT_OVERHEAD_BYTES, MAX_EVENT_BYTES

SMALL_LIMIT = 1024


def test_a_message_within_the_limit_is_one_event_with_its_aws_size() -> None:
    """A normal message is one event whose size is its UTF-8 bytes plus 26."""
    [event] = make_events(5, "héllo", max_event_bytes=MAX_EVENT_BYTES)
    assert event == (5, "héllo", len("héllo".encode()) + EVENT_OVERHEAD_BYTES)


def test_empty_message_is_replaced_by_a_visible_marker() -> None:
    """PutLogEvents refuses empty messages, so an empty record arrives as a marker."""
    [event] = make_events(1, "", max_event_bytes=MAX_EVENT_BYTES)
    assert event.message == EMPTY_MESSAGE


def test_lone_surrogates_are_replaced_not_fatal() -> None:
    """Text UTF-8 cannot encode is repaired with U+FFFD."""
    assert repair_text("a\ud800b") == "a\ufffdb"
    [event] = make_events(1, "x\udfff", max_event_bytes=MAX_EVENT_BYTES)
    event.message.encode("utf-8")


@given(st.text(min_size=1, max_size=5000), st.integers(min_value=SMALL_LIMIT, max_value=3000))
def test_split_parts_fit_the_limit_and_join_back(text: str, limit: int) -> None:
    """Every part fits max_event_bytes and the parts join back to the repaired message."""
    events = make_events(7, text, max_event_bytes=limit)
    for event in events:
        assert len(event.message.encode("utf-8")) <= limit
        assert event.size == len(event.message.encode("utf-8")) + EVENT_OVERHEAD_BYTES
        assert event.timestamp_ms == 7
    assert join_parts([e.message for e in events]) == [repair_text(text)]


def test_multi_megabyte_multibyte_message_splits_on_character_boundaries() -> None:
    """3 MB of 4-byte characters splits into valid UTF-8 parts under the 1 MB limit."""
    text = "😀" * 800_000
    events = make_events(1, text, max_event_bytes=MAX_EVENT_BYTES)
    assert len(events) == 4
    assert all(len(e.message.encode()) <= MAX_EVENT_BYTES for e in events)
    assert join_parts([e.message for e in events]) == [text]


def test_truncate_keeps_the_head_and_says_how_much_was_cut() -> None:
    """With oversize='truncate' one event remains, ending with the number of bytes cut."""
    [event] = make_events(1, "é" * 2000, max_event_bytes=SMALL_LIMIT, oversize="truncate")
    assert len(event.message.encode()) <= SMALL_LIMIT
    assert event.message.startswith("é" * 100)
    assert event.message.endswith("bytes]") and "[truncated " in event.message


def test_join_parts_passes_other_messages_through() -> None:
    """Messages without a part marker are returned unchanged, in order."""
    assert join_parts(["a", "b"]) == ["a", "b"]
