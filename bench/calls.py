"""Counting the PutLogEvents calls a handler makes, through botocore's own event hooks.

Hooks see every API call a client makes without wrapping or patching the handler under test, so
the same counter works for every contender that talks to AWS. The hooks run on the contender's own
sending thread, inside the measured window, so they only keep a reference to each body sent: it is
read (a JSON parse and a pass over up to 10,000 events, several milliseconds holding the GIL) when
the figures are asked for, after the window, not while a logging call may be waiting.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
from typing import Any

from bench.limits import EVENT_OVERHEAD_BYTES, MAX_BATCH_BYTES, MAX_BATCH_EVENTS

_SERVICE = "cloudwatch-logs"
_OPERATION = "PutLogEvents"
_CONTEXT_KEY = "bench_put_log_events"


@dataclass
class PutLogEventsCounter:
    """Calls made, and the events and bytes in those that succeeded.

    Hooks run on whichever thread calls AWS (a handler's sender), so updates take a lock.
    """

    calls: int = 0
    succeeded: int = 0
    _accepted: list[bytes] = field(default_factory=list, repr=False)
    """The body of every call answered 200, read only when `events_sent` or `bytes_sent` is."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def register(self, events: Any) -> None:
        """Attach to a session's event emitter (before it builds clients) or a client's."""
        # Last, so that it reads the body that is sent: this handler puts its own encoded body in
        # place in an earlier before-call hook.
        events.register_last(f"before-call.{_SERVICE}.{_OPERATION}", self._on_request)
        events.register(f"after-call.{_SERVICE}.{_OPERATION}", self._on_after_call)

    def reset(self) -> None:
        """Forget what was counted so far (the warm-up), so the measured window starts at zero."""
        with self._lock:
            self.calls = self.succeeded = 0
            self._accepted = []

    @property
    def events_sent(self) -> int:
        """Events in the calls that succeeded."""
        return sum(len(events) for events in self._accepted_events())

    @property
    def bytes_sent(self) -> int:
        """Their size as AWS counts it: UTF-8 bytes plus 26 per event."""
        return sum(
            len(event["message"].encode("utf-8")) + EVENT_OVERHEAD_BYTES
            for events in self._accepted_events()
            for event in events
        )

    def _accepted_events(self) -> list[list[dict[str, Any]]]:
        with self._lock:
            bodies = list(self._accepted)
        return [json.loads(body).get("logEvents", []) for body in bodies]

    def _on_request(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        # The request context travels from this hook to after-call: it links a reply to its body.
        context[_CONTEXT_KEY] = params["body"]
        with self._lock:
            self.calls += 1

    def _on_after_call(self, http_response: Any, context: dict[str, Any], **_: Any) -> None:
        # after-call also fires for error replies; only a 200 means the events were taken.
        if http_response is None or http_response.status_code != 200:
            return
        body = context.get(_CONTEXT_KEY)
        with self._lock:
            self.succeeded += 1
            if body is not None:
                self._accepted.append(bytes(body))


def minimum_calls(message_sizes: list[int]) -> int:
    """Return the fewest PutLogEvents calls the limits allow for messages of these UTF-8 sizes.

    No batch may hold more than 10,000 events or 1,048,576 bytes (counting 26 per event), so the
    larger of the two ceilings is a floor no sender can beat.
    """
    total = sum(message_sizes) + EVENT_OVERHEAD_BYTES * len(message_sizes)
    return max(math.ceil(len(message_sizes) / MAX_BATCH_EVENTS), math.ceil(total / MAX_BATCH_BYTES))
