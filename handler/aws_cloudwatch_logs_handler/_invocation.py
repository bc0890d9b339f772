"""The Lambda invocation being served, and the stream names made from it.

A leaf module: the stream namers, the JSON formatter and the Lambda decorator read the state kept
here; nothing here imports them back. Lambda runs one invocation at a time per execution
environment, so one `InvocationState` per process is the whole truth.
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from ._limits import MAX_LOG_STREAM_NAME_CHARS
from ._names import stream_name_part


@dataclass(frozen=True)
class Invocation:
    """What the handler keeps of one invocation's context."""

    request_id: str
    stream_name: str


class InvocationState:
    """The invocation bound last, the environment's first one, and who hears of a new one."""

    def __init__(self) -> None:
        self.current: Invocation | None = None
        """The invocation bound last (records logged after it returns still belong to it)."""
        self.first: Invocation | None = None
        """The first invocation of this execution environment (for per-environment streams)."""
        self._listeners: list[Callable[[], None]] = []

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each invocation is bound."""
        self._listeners.append(listener)

    def bind(self, context: Any) -> Invocation:
        """Make ``context`` the current invocation: records from now on go to its stream."""
        invocation = Invocation(
            request_id=str(getattr(context, "aws_request_id", "")),
            stream_name=stream_name_for(context),
        )
        self.current = invocation
        if self.first is None:
            self.first = invocation
        for listener in self._listeners:
            listener()
        return invocation

    def forget(self) -> None:
        """Forget every invocation, as a new execution environment starts (tests use it)."""
        self.current = self.first = None


INVOCATIONS: Final = InvocationState()
"""This process's invocation state."""


def stream_name_for(context: Any, *, now: datetime | None = None) -> str:
    """Name a stream from a Lambda context: ``YYYY/MM/DD/<function>/[<version>]<request id>``.

    A request id then leads straight to its logs; the date (UTC) keeps the console's listing in
    order, as Lambda's own stream names do.
    """
    request_id = getattr(context, "aws_request_id", None) or os.urandom(16).hex()
    return _lambda_stream_name(
        request_id,
        function=getattr(context, "function_name", None),
        version=getattr(context, "function_version", None),
        now=now,
    )


def environment_stream_name(*, now: datetime | None = None) -> str:
    """Name a stream for the whole execution environment, from Lambda's own stream id.

    Used for records that no invocation claimed: a function without `flush_after_invocation`,
    or an environment that ends during its init phase.
    """
    lambda_stream = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
    environment_id = lambda_stream.rpartition("]")[2] or os.urandom(16).hex()
    return _lambda_stream_name(environment_id, function=None, version=None, now=now)


def _lambda_stream_name(
    suffix: str, *, function: str | None, version: str | None, now: datetime | None
) -> str:
    """``YYYY/MM/DD/<function>/[<version>]<suffix>``, made valid: no ':' or '*', at most 512.

    Function and version default to the runtime's environment; a long name loses its head, so
    the request or environment id at its end survives.
    """
    moment = now if now is not None else datetime.now(timezone.utc)
    function = function or os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function")
    version = version or os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    name = f"{moment:%Y/%m/%d}/{function}/[{version}]{suffix}"
    return stream_name_part(name)[-MAX_LOG_STREAM_NAME_CHARS:]
