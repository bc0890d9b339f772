"""Counting the PutLogEvents calls a handler makes, through botocore's own event hooks.

Hooks see every API call a client makes without wrapping or patching the handler under test, so
the same counter works for every contender that talks to AWS. The hooks run on the contender's own
sending thread, inside the measured window, so they only count: no body is parsed, and none is
kept. A kept body (a megabyte a call) would stay allocated, so that the contender's next body
could not reuse its memory: every call would then write its body into fresh pages, a page fault
per 4 KiB (about half a millisecond a call here, holding the GIL) that no real process pays.
What the calls carried is read from the endpoint after the window (`bench.worker`).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

from bench.limits import EVENT_OVERHEAD_BYTES, MAX_BATCH_BYTES, MAX_BATCH_EVENTS

_SERVICE = "cloudwatch-logs"
_OPERATION = "PutLogEvents"


@dataclass
class PutLogEventsCounter:
    """PutLogEvents calls made, and how many of them succeeded.

    Hooks run on whichever thread calls AWS (a handler's sender), so updates take a lock.
    """

    calls: int = 0
    succeeded: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def register(self, events: Any) -> None:
        """Attach to a session's event emitter (before it builds clients) or a client's."""
        events.register_last(f"before-call.{_SERVICE}.{_OPERATION}", self._on_request)
        events.register(f"after-call.{_SERVICE}.{_OPERATION}", self._on_after_call)

    def reset(self) -> None:
        """Forget what was counted so far (the warm-up), so the measured window starts at zero."""
        with self._lock:
            self.calls = self.succeeded = 0

    def _on_request(self, **_: Any) -> None:
        with self._lock:
            self.calls += 1

    def _on_after_call(self, http_response: Any, **_: Any) -> None:
        # after-call also fires for error replies; only a 200 means the events were taken.
        if http_response is None or http_response.status_code != 200:
            return
        with self._lock:
            self.succeeded += 1


def sent_size(messages: list[str]) -> int:
    """Bytes of ``messages`` as AWS counts them: UTF-8 plus 26 per event."""
    return sum(len(message.encode("utf-8")) + EVENT_OVERHEAD_BYTES for message in messages)


def minimum_calls(message_sizes: list[int]) -> int:
    """Return the fewest PutLogEvents calls the limits allow for messages of these UTF-8 sizes.

    No batch may hold more than 10,000 events or 1,048,576 bytes (counting 26 per event), so the
    larger of the two ceilings is a floor no sender can beat.
    """
    total = sum(message_sizes) + EVENT_OVERHEAD_BYTES * len(message_sizes)
    return max(math.ceil(len(message_sizes) / MAX_BATCH_EVENTS), math.ceil(total / MAX_BATCH_BYTES))
