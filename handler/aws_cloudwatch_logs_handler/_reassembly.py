"""Turning the events a reader gets back into the messages that were logged (pure, no I/O).

The handler splits a message bigger than one event into parts marked ``[part i/n id=...]``
(`_events.split`). A reader joins them back with `join_parts`; here we also keep where and when
the message was logged, and when a part never shows up we say which one, instead of printing a
message that silently lacks a piece.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ._events import PART_MARKER, join_parts


@dataclass(frozen=True)
class LogMessage:
    """One logged message as a reader sees it: a plain event, or split parts joined back."""

    timestamp_ms: int
    stream: str
    text: str
    event_ids: tuple[str, ...]
    total_parts: int = 1
    missing_parts: tuple[int, ...] = ()
    """The 1-based indexes of the parts that were not found (empty when the message is whole)."""


@dataclass
class _Pending:
    first: dict[str, Any]
    total: int
    first_seen_s: float
    parts: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Each part's event by its 1-based index."""


def missing_part_marker(index: int, total: int, part_id: str) -> str:
    """The text shown in place of a part that was not found."""
    return f"[part {index}/{total} id={part_id} missing]"


class PartJoiner:
    """Joins split parts as they arrive; every other event passes straight through.

    Parts are matched by their id, whatever stream or order they come in. A part seen twice
    (the handler delivers at least once) counts once.
    """

    def __init__(self) -> None:
        self._pending: dict[str, _Pending] = {}

    def add(self, event: dict[str, Any], *, now_s: float = 0.0) -> LogMessage | None:
        """Take one FilterLogEvents event; return the message it completes, if any.

        Args:
            event: an event as FilterLogEvents returns it (``timestamp``, ``message``,
                ``logStreamName``, ``eventId``).
            now_s: when the event was read (any clock), for `expire`.
        """
        match = PART_MARKER.match(event["message"])
        if match is None:
            return _message(event, event["message"], [event])
        index, total, part_id = int(match[1]), int(match[2]), match[3]
        pending = self._pending.setdefault(part_id, _Pending(event, total, now_s))
        pending.parts.setdefault(index, event)
        if len(pending.parts) < pending.total:
            return None
        del self._pending[part_id]
        parts = [pending.parts[i] for i in sorted(pending.parts)]
        (text,) = join_parts([part["message"] for part in parts])
        return _message(pending.first, text, parts, total=pending.total)

    def expire(self, *, seen_before_s: float | None = None) -> list[LogMessage]:
        """Give up on incomplete messages (all, or those first seen before ``seen_before_s``).

        Returns them with what was found, a marker in place of each missing part, oldest first.
        """
        expired: list[LogMessage] = []
        for part_id, pending in list(self._pending.items()):
            if seen_before_s is not None and pending.first_seen_s >= seen_before_s:
                continue
            del self._pending[part_id]
            expired.append(_incomplete(part_id, pending))
        expired.sort(key=lambda message: message.timestamp_ms)
        return expired


def _message(
    first: dict[str, Any], text: str, events: Iterable[dict[str, Any]], *, total: int = 1
) -> LogMessage:
    return LogMessage(
        timestamp_ms=int(first["timestamp"]),
        stream=str(first.get("logStreamName", "")),
        text=text,
        event_ids=tuple(str(event.get("eventId", "")) for event in events),
        total_parts=total,
    )


def _incomplete(part_id: str, pending: _Pending) -> LogMessage:
    """What was found of a split message, a marker standing in for each missing part."""
    pieces: list[str] = []
    for index in range(1, pending.total + 1):
        part = pending.parts.get(index)
        if part is None:
            pieces.append(missing_part_marker(index, pending.total, part_id))
        else:
            pieces.append(PART_MARKER.sub("", part["message"], count=1))
    found = [pending.parts[i] for i in sorted(pending.parts)]
    message = _message(pending.first, "".join(pieces), found, total=pending.total)
    missing = tuple(i for i in range(1, pending.total + 1) if i not in pending.parts)
    return replace(message, missing_parts=missing)
