"""The PutLogEvents request body, encoded by us, byte for byte as botocore's serializer writes it.

botocore builds a request by walking its model for every member of every event, which costs
several microseconds per event, most of the sender's work. The body of a JSON-protocol call is
only ``json.dumps`` of the parameters (`botocore.serialize.JSONSerializer`: default separators,
ASCII only), so we write the same bytes with C-level calls and no Python step per event.

The work is done in slices with a pause between them (`_slices`): each slice holds the GIL for a
fraction of a millisecond, so a thread that logs meanwhile never waits for a 1 MB body's encoding.
https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html
"""

from __future__ import annotations

from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from operator import itemgetter
from typing import Final

from ._events import Event
from ._slices import SLICE_EVENTS, Pause, pause

_EVENT: Final = '{"timestamp": %d, "message": %s}, '
_TIMESTAMPS = itemgetter(0)
_MESSAGES = itemgetter(1)


def encode_put_log_events(
    group: str,
    stream: str,
    events: Sequence[Event],
    *,
    pause: Pause = pause,
) -> bytes:
    """Return the body botocore would send for ``put_log_events(logGroupName=group,
    logStreamName=stream, logEvents=[{"timestamp": ..., "message": ...}, ...])``.

    Args:
        group: the log group's name.
        stream: the log stream's name.
        events: the batch, in the order it is sent.
        pause: called between slices of `SLICE_EVENTS` events, to let other threads run.
    """
    head = (
        f'{{"logGroupName": {encode_basestring_ascii(group)}, '
        f'"logStreamName": {encode_basestring_ascii(stream)}, "logEvents": ['
    )
    parts = [head]
    for start in range(0, len(events), SLICE_EVENTS):
        if start:
            pause()
        parts.append(_encode_slice(events[start : start + SLICE_EVENTS]))
    if events:
        parts[-1] = parts[-1][:-2]  # the last event's ", "
    parts.append("]}")
    return "".join(parts).encode("ascii")  # two copies of the body, not four


def _encode_slice(events: Sequence[Event]) -> str:
    """Encode ``events`` as ``{"timestamp": t, "message": "m"}, `` each, in C-level calls only."""
    fields: list[object] = [None] * (2 * len(events))
    fields[0::2] = map(_TIMESTAMPS, events)
    fields[1::2] = map(encode_basestring_ascii, map(_MESSAGES, events))
    return (_EVENT * len(events)) % tuple(fields)
