"""Turning a formatted message into the events CloudWatch Logs will accept (pure, no I/O).

A message may be unencodable (lone surrogates), empty (botocore refuses it) or bigger than one event
may be. None of these is a reason to lose the record: we repair, mark or split, and say so visibly.
"""

from __future__ import annotations

import os
import re
from typing import Final, Literal, NamedTuple

from ._limits import EVENT_OVERHEAD_BYTES

OversizePolicy = Literal["split", "truncate"]
"""What to do with a message bigger than ``max_event_bytes``: split it into marked parts (the
default, nothing lost) or cut it and say how much was cut."""

EMPTY_MESSAGE: Final = "(empty log message)"
"""Sent in place of a message that formats to nothing: PutLogEvents refuses empty messages."""

_SURROGATES: Final = re.compile("[\ud800-\udfff]")
_REPLACEMENT: Final = "\ufffd"
# Room kept in every part for its marker, "[part 12345/12345 id=0123456789ab] ": a fixed reserve
# means the split never has to be redone once the number of parts is known.
_PART_MARKER_RESERVE: Final = 48
_TRUNCATION_MARKER_RESERVE: Final = 48


class Event(NamedTuple):
    """One log event as PutLogEvents takes it, with the bytes it counts against a batch."""

    timestamp_ms: int
    message: str
    size: int
    """UTF-8 bytes of ``message`` plus the 26 bytes AWS adds per event."""


def _event(timestamp_ms: int, text: str, text_bytes: int | None = None) -> Event:
    """An event for ``text``, sized as AWS counts it."""
    size = utf8_size(text) if text_bytes is None else text_bytes
    return Event(timestamp_ms, text, size + EVENT_OVERHEAD_BYTES)


def utf8_size(message: str) -> int:
    """Return how many UTF-8 bytes ``message`` takes (cheap for ASCII, the common case)."""
    return len(message) if message.isascii() else len(message.encode("utf-8"))


def repair_text(message: str) -> str:
    """Replace what UTF-8 cannot encode (lone surrogates) with U+FFFD; empty text by a marker."""
    if not message:
        return EMPTY_MESSAGE
    if message.isascii():
        return message
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES.sub(_REPLACEMENT, message)
    return message


def make_events(
    timestamp_ms: int,
    message: str,
    *,
    max_event_bytes: int,
    oversize: OversizePolicy = "split",
) -> list[Event]:
    """Return the events that carry ``message``: one, or several parts if it is too big.

    Args:
        timestamp_ms: the record's own time, in milliseconds since the epoch.
        message: the formatted record.
        max_event_bytes: the most UTF-8 bytes one event's message may take.
        oversize: split into ordered, marked parts, or truncate with a visible marker.
    """
    text = repair_text(message)
    size = utf8_size(text)
    if size <= max_event_bytes:
        return [_event(timestamp_ms, text, size)]
    if oversize == "truncate":
        return [truncate(timestamp_ms, text, max_event_bytes=max_event_bytes)]
    return split(timestamp_ms, text, max_event_bytes=max_event_bytes)


def _cut_points(data: bytes, budget: int) -> list[int]:
    """Return offsets cutting ``data`` into pieces of at most ``budget`` bytes, between chars."""
    cuts = [0]
    while len(data) - cuts[-1] > budget:
        cut = cuts[-1] + budget
        # A UTF-8 continuation byte looks like 0b10xxxxxx: back off to the character's first byte.
        while data[cut] & 0xC0 == 0x80:
            cut -= 1
        cuts.append(cut)
    cuts.append(len(data))
    return cuts


def split(timestamp_ms: int, text: str, *, max_event_bytes: int) -> list[Event]:
    """Split ``text`` into parts marked ``[part i/n id=...]`` that join back to the original.

    All parts carry the same timestamp; the sender keeps equal timestamps in their original order,
    and the marker lets a reader join them even if they are read out of order.
    """
    data = text.encode("utf-8")
    cuts = _cut_points(data, max_event_bytes - _PART_MARKER_RESERVE)
    total = len(cuts) - 1
    part_id = os.urandom(6).hex()
    events = []
    for index in range(total):
        piece = data[cuts[index] : cuts[index + 1]].decode("utf-8")
        part = f"[part {index + 1}/{total} id={part_id}] {piece}"
        events.append(_event(timestamp_ms, part))
    return events


PART_MARKER: Final = re.compile(r"\A\[part (\d+)/(\d+) id=([0-9a-f]{12})\] ")
"""Matches the marker that `split` puts in front of each part (for readers that join them)."""


def join_parts(messages: list[str]) -> list[str]:
    """Join split parts back into whole messages; other messages pass through unchanged.

    A reader's helper (and the tests'): parts are grouped by id and ordered by index.
    """
    joined: list[str] = []
    pending: dict[str, list[tuple[int, str]]] = {}
    for message in messages:
        match = PART_MARKER.match(message)
        if match is None:
            joined.append(message)
            continue
        index, total, part_id = int(match[1]), int(match[2]), match[3]
        parts = pending.setdefault(part_id, [])
        parts.append((index, message[match.end() :]))
        if len(parts) == total:
            joined.append("".join(piece for _, piece in sorted(parts)))
            del pending[part_id]
    joined.extend("".join(p for _, p in sorted(parts)) for parts in pending.values())
    return joined


def truncate(timestamp_ms: int, text: str, *, max_event_bytes: int) -> Event:
    """Cut ``text`` to fit one event, ending it with a marker that says how much was cut."""
    data = text.encode("utf-8")
    cut = _cut_points(data, max_event_bytes - _TRUNCATION_MARKER_RESERVE)[1]
    kept = data[:cut].decode("utf-8")
    message = f"{kept} [truncated {len(data) - cut} bytes]"
    return _event(timestamp_ms, message)
