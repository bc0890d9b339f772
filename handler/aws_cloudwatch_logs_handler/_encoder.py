"""The PutLogEvents request body, encoded by us, byte for byte as botocore's serializer writes it.

botocore builds a request by walking its model for every member of every event, which costs
several microseconds per event, most of the sender's work. The body of a JSON-protocol call is
only ``json.dumps`` of the parameters (`botocore.serialize.JSONSerializer`: default separators,
ASCII only), so we write the same bytes with C-level calls and no Python step per event.

Most log lines need no escaping at all: printable ASCII without quotes or backslashes. For a slice
of those the messages are read as one text (`PackedEvents.text`, whole chunks as they are queued),
checked in one pass, and the text becomes the body's slice with two replacements and one
formatting of the timestamps: about a third of the cost of escaping message by message, which is
still the way for a slice with anything to escape.

The work is done in slices with a checkpoint between them (`_slices`): the sender lets logging
threads in there once it has had its turn, so a thread that logs meanwhile never waits for a 1 MB
body's encoding.
https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Sequence
from itertools import repeat
from json.encoder import encode_basestring_ascii
from typing import Final

from . import _slices
from ._batching import timestamp_runs
from ._packed import SEPARATOR, PackedEvents
from ._slices import SLICE_EVENTS, Pause

_EVENT: Final = '{"timestamp": %d, "message": %s}, '
_OPEN: Final = b'{"timestamp": %d, "message": "'
_CLOSE: Final = b'"}, '
_BETWEEN: Final = _CLOSE + _OPEN
_PLAIN: Final = bytes(range(0x20, 0x7F)).replace(b'"', b"").replace(b"\\", b"")
"""The bytes JSON writes as they are (``json.dumps`` with ``ensure_ascii`` escapes the others)."""
_SEPARATOR_BYTES: Final = SEPARATOR.encode("ascii")
_MAX_RUNS: Final = 8
"""Runs of one timestamp a slice may have for `_encode_plain_slice` to write each run's timestamp
into the separators, one pass over the slice a run; past it, that costs more than formatting."""
_MAX_NAMED_RUNS: Final = 16
"""Runs of one timestamp a slice may have for `_encode_plain_slice` to format each run's timestamp
once and place it by ``%s``, where ``%d`` formats every event's: for 512 events of the benchmark's
lines at 9 runs (a logger at 60 events a millisecond), 61 us plus 5 to check the runs, against 77;
about even at 20 runs (timed on a quiet host)."""
_OPEN_NAMED: Final = _OPEN.replace(b"%d", b"%s")
_BETWEEN_NAMED: Final = _BETWEEN.replace(b"%d", b"%s")
COLD_JOIN_NS_PER_BYTE: Final = 0.6
"""The body's join, per byte, into memory the process has not used before: the allocator maps a
fresh block for it and each of its pages faults in, holding the GIL. Measured 0.5 to 0.65 ms for a
1 MB body in a process's first two batches (the sender's marks, as `bench.sender_stretches` sets
them, on the bench's first batch); once the allocator reuses freed memory, 0.03 to 0.05 ms."""
_TIMED_FROM_BYTES: Final = 65_536
"""A join at least this long sets the estimate; a shorter one is too short to time well."""


class JoinCost:
    """What the body's final join costs, per byte, by the last long join timed.

    The checkpoint before the join looks ahead by it (`_slices.Turns.pause`): without that, a
    process's first 1 MB join ran on at the end of a used-up turn, and a logging call waited for
    both (0.9 to 1.0 ms, the bench's caller max). It starts at the cold cost: the first join of
    a process is always into fresh memory.
    """

    def __init__(self) -> None:
        self.ns_per_byte = COLD_JOIN_NS_PER_BYTE

    def estimate_s(self, size: int) -> float:
        """How long joining ``size`` bytes will take, by the last join timed."""
        return size * self.ns_per_byte * 1e-9

    def record(self, size: int, cpu_ns: int) -> None:
        """A join of ``size`` bytes took ``cpu_ns`` of the thread's CPU."""
        if size >= _TIMED_FROM_BYTES:
            self.ns_per_byte = cpu_ns / size


JOIN_COST: Final = JoinCost()


def encode_put_log_events(
    group: str,
    stream: str,
    events: PackedEvents,
    *,
    pause: Pause | None = None,
    join_cost: JoinCost = JOIN_COST,
) -> bytes:
    """Return the body botocore would send for ``put_log_events(logGroupName=group,
    logStreamName=stream, logEvents=[{"timestamp": ..., "message": ...}, ...])``.

    Args:
        group: the log group's name.
        stream: the log stream's name.
        events: the batch, in the order it is sent, read by columns (no tuple per event).
        pause: called before each slice of `SLICE_EVENTS` events and before the body's final
            join, where other threads may run (`_slices.pause` by default).
        join_cost: what the final join costs (the process's own estimate by default).
    """
    pause = pause or _slices.pause
    head = (
        f'{{"logGroupName": {encode_basestring_ascii(group)}, '
        f'"logStreamName": {encode_basestring_ascii(stream)}, "logEvents": ['
    )
    # Each slice becomes bytes at once, and only the body's final join makes a large block.
    # Joining text and then encoding it made two 1 MB blocks live at once: the allocator took
    # fresh pages for one of them every time, 0.6 ms of page faults holding the GIL.
    parts = [head.encode("ascii")]
    for start in range(0, len(events), SLICE_EVENTS):
        pause()  # before each slice, the first too: what came before it may have run since one
        end = min(start + SLICE_EVENTS, len(events))
        times, text = events.timestamps(start, end), events.text(start, end)
        part = _encode_plain_slice(times, text)
        if part is None:
            part = _encode_slice(times, events.messages(start, end)).encode("ascii")
        parts.append(part)
    if events:
        parts[-1] = parts[-1][:-2]  # the last event's ", "
    parts.append(b"]}")
    # The join of a 1 MB body is a stretch of its own (a fresh block of memory, and its page
    # faults): a checkpoint before it that looks ahead by its cost, so that it does not run on at
    # the end of a used-up turn.
    size = sum(map(len, parts))
    pause(join_cost.estimate_s(size))
    started_ns = time.thread_time_ns()
    body = b"".join(parts)
    join_cost.record(size, time.thread_time_ns() - started_ns)
    return body


def _encode_slice(times: Sequence[int], messages: Sequence[str]) -> str:
    """Encode ``{"timestamp": t, "message": "m"}, `` for each event, in C-level calls only."""
    fields: list[object] = [None] * (2 * len(times))
    fields[0::2] = times
    fields[1::2] = map(encode_basestring_ascii, messages)
    return (_EVENT * len(times)) % tuple(fields)


def _encode_plain_slice(times: array[int], text: str) -> bytes | None:
    """`_encode_slice` for messages joined in ``text`` that hold nothing JSON escapes (nor the
    separator); None if one does."""
    if not text.isascii():
        return None
    data = text.encode("ascii")
    # What is left once the plain bytes are deleted: the separators, and anything to escape.
    if len(data.translate(None, _PLAIN)) != len(times) - 1:
        return None
    runs = timestamp_runs(times, limit=_MAX_NAMED_RUNS)
    if runs is None:
        events = data.replace(b"%", b"%%").replace(_SEPARATOR_BYTES, _BETWEEN)
        return (_OPEN + events + _CLOSE) % tuple(times)
    if len(runs) > _MAX_RUNS:
        # Each run's timestamp is formatted once, and ``%s`` copies it in for each event.
        stamps: list[bytes] = []
        for timestamp_ms, count in runs:
            stamps += repeat(b"%d" % timestamp_ms, count)
        events = data.replace(b"%", b"%%").replace(_SEPARATOR_BYTES, _BETWEEN_NAMED)
        return (_OPEN_NAMED + events + _CLOSE) % tuple(stamps)
    # A busy logger's slice holds a few milliseconds: each run's timestamp is written into the
    # separators before its events, one run at a time (replace counts from the front, and the
    # runs before are replaced already), instead of formatting an int for every event.
    (first, count), *rest = runs
    body = data.replace(_SEPARATOR_BYTES, _BETWEEN % first, count - 1)
    for timestamp_ms, count in rest:
        body = body.replace(_SEPARATOR_BYTES, _BETWEEN % timestamp_ms, count)
    return _OPEN % first + body + _CLOSE
