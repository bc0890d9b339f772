"""Which stream a record goes to: a fixed name, or (in Lambda) one named from the invocation.

In Lambda the stream is known only once an invocation's context is bound (by
`flush_after_invocation`). Records logged before that, in the init phase, wait under
`PENDING_STREAM` and move to the first invocation's stream when it is bound.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Final, Protocol

from ._invocation import INVOCATIONS, environment_stream_name
from ._queues import PENDING_STREAM, HandlerQueues
from ._sender import SENDER


class StreamNamer(Protocol):
    """Names the stream of the next record."""

    def current(self) -> str:
        """Return the stream the next record goes to (`PENDING_STREAM` if not known yet)."""

    def attach(self, queues: HandlerQueues) -> None:
        """Start naming streams for ``queues``."""

    def before_flush(self) -> None:
        """Give waiting records a stream before a flush, so that the flush can deliver them."""


class FixedStream:
    """One stream for the handler's whole life: an explicit name, or the dated default."""

    def __init__(self, name: str) -> None:
        self._name = name

    def current(self) -> str:
        return self._name

    def attach(self, queues: HandlerQueues) -> None:
        pass

    def before_flush(self) -> None:
        pass


_INVOCATION_NAMERS: Final[weakref.WeakSet[InvocationStream]] = weakref.WeakSet()


class InvocationStream:
    """In Lambda: a stream per invocation (or per execution environment), named from its context."""

    def __init__(self, *, per_environment: bool) -> None:
        self._per_environment = per_environment
        self._queues: HandlerQueues | None = None

    def current(self) -> str:
        invocation = INVOCATIONS.first if self._per_environment else INVOCATIONS.current
        return PENDING_STREAM if invocation is None else invocation.stream_name

    def attach(self, queues: HandlerQueues) -> None:
        self._queues = queues
        queues.pending_fallback = self._fallback
        _INVOCATION_NAMERS.add(self)
        self.bound()

    def bound(self) -> None:
        """An invocation was bound: records of the init phase move to its stream."""
        stream = self.current()
        if self._queues is not None and stream != PENDING_STREAM:
            SENDER.move_pending(self._queues, stream)

    def before_flush(self) -> None:
        if self._queues is not None:
            SENDER.move_pending(self._queues, self._fallback())

    def _fallback(self) -> str:
        """The stream for records that no invocation claimed (no decorator, or exit in init)."""
        stream = self.current()
        return stream if stream != PENDING_STREAM else environment_stream_name()


def _invocation_bound() -> None:
    """Tell every Lambda stream namer that an invocation's context was bound."""
    for namer in list(_INVOCATION_NAMERS):
        namer.bound()


INVOCATIONS.add_listener(_invocation_bound)


def in_lambda() -> bool:
    """Tell whether this process runs in AWS Lambda (its runtime sets these variables)."""
    return "AWS_LAMBDA_FUNCTION_NAME" in os.environ and "AWS_LAMBDA_RUNTIME_API" in os.environ


def default_stream_namer(
    log_stream: str | None, *, per_environment: bool, fallback: Callable[[], str]
) -> StreamNamer:
    """Return the namer for a handler: the explicit name always wins, then Lambda's, then ours."""
    if log_stream is not None:
        return FixedStream(log_stream)
    if in_lambda():
        return InvocationStream(per_environment=per_environment)
    return FixedStream(fallback())
