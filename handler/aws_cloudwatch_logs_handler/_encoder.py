"""The PutLogEvents request body, encoded by us, byte for byte as botocore's serializer writes it.

botocore builds a request by walking its model for every member of every event, which costs
several microseconds per event, most of the sender's work. The body of a JSON-protocol call is
only ``json.dumps`` of the parameters (`botocore.serialize.JSONSerializer`: default separators,
ASCII only), so we write the same bytes with C-level calls and no Python step per event.

The work is done in slices with a checkpoint between them (`_slices`): the sender lets logging
threads in there once it has had its turn, so a thread that logs meanwhile never waits for a 1 MB
body's encoding.
https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html
"""

from __future__ import annotations

from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from typing import Final

from . import _slices
from ._packed import PackedEvents
from ._slices import SLICE_EVENTS, Pause

_EVENT: Final = '{"timestamp": %d, "message": %s}, '


def encode_put_log_events(
    group: str,
    stream: str,
    events: PackedEvents,
    *,
    pause: Pause | None = None,
) -> bytes:
    """Return the body botocore would send for ``put_log_events(logGroupName=group,
    logStreamName=stream, logEvents=[{"timestamp": ..., "message": ...}, ...])``.

    Args:
        group: the log group's name.
        stream: the log stream's name.
        events: the batch, in the order it is sent, read by columns (no tuple per event).
        pause: called before each slice of `SLICE_EVENTS` events, where other threads may run
            (`_slices.pause` by default).
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
        pause()  # before each slice: the work before this one (cutting a batch) had no pause
        times, messages = events.columns(start, min(start + SLICE_EVENTS, len(events)))
        parts.append(_encode_slice(times, messages).encode("ascii"))
    if events:
        parts[-1] = parts[-1][:-2]  # the last event's ", "
    parts.append(b"]}")
    return b"".join(parts)


def _encode_slice(times: Sequence[int], messages: Sequence[str]) -> str:
    """Encode ``{"timestamp": t, "message": "m"}, `` for each event, in C-level calls only."""
    fields: list[object] = [None] * (2 * len(times))
    fields[0::2] = times
    fields[1::2] = map(encode_basestring_ascii, messages)
    return (_EVENT * len(times)) % tuple(fields)
