"""Lambda integration: streams named from the invocation, delivery before the function returns.

Lambda freezes the execution environment the moment the handler returns: the sender thread stops
mid-flight and what it holds is lost if the environment is never thawed. So the only reliable
delivery is a flush that completes before the function returns, which `flush_after_invocation`
does, bounded by the invocation's remaining time.
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final, TypeVar, overload

from ._limits import MAX_LOG_STREAM_NAME_CHARS
from ._names import stream_name_part

if TYPE_CHECKING:
    from ._handler import CloudWatchLogsHandler

DEFAULT_TIMEOUT_MARGIN_MS: Final = 500
"""Time kept back from the invocation's remaining time, so the function still returns in time."""
_NO_DEADLINE_FLUSH_S: Final = 10.0

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Invocation:
    """What the handler keeps of one invocation's context."""

    request_id: str
    stream_name: str


_current: Invocation | None = None
_first: Invocation | None = None


def current() -> Invocation | None:
    """The invocation bound last (records logged after it returns still belong to it)."""
    return _current


def first_invocation() -> Invocation | None:
    """The first invocation of this execution environment (for per-environment streams)."""
    return _first


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


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
    moment = now if now is not None else _utc_now()
    function = function or os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "function")
    version = version or os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    name = f"{moment:%Y/%m/%d}/{function}/[{version}]{suffix}"
    return stream_name_part(name)[-MAX_LOG_STREAM_NAME_CHARS:]


def bind(context: Any) -> Invocation:
    """Make ``context`` the current invocation: records from now on go to its stream."""
    global _current, _first  # noqa: PLW0603 (one invocation at a time per execution environment)
    invocation = Invocation(
        request_id=str(getattr(context, "aws_request_id", "")),
        stream_name=stream_name_for(context),
    )
    _current = invocation
    if _first is None:
        _first = invocation
    from ._streams import invocation_bound

    invocation_bound()
    return invocation


def _reset_for_tests() -> None:
    global _current, _first  # noqa: PLW0603
    _current = _first = None


def _flush_timeout_s(context: Any, margin_ms: int) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return _NO_DEADLINE_FLUSH_S
    try:
        return max(0.0, (int(remaining()) - margin_ms) / 1000)
    except Exception:
        return _NO_DEADLINE_FLUSH_S


def _targets(handlers: Iterable[CloudWatchLogsHandler] | None) -> list[CloudWatchLogsHandler]:
    if handlers is not None:
        return list(handlers)
    from ._handler import live_handlers

    return live_handlers()


@contextmanager
def invocation_scope(
    context: Any,
    *,
    handlers: Iterable[CloudWatchLogsHandler] | None = None,
    timeout_margin_ms: int = DEFAULT_TIMEOUT_MARGIN_MS,
) -> Iterator[Invocation]:
    """Bind ``context`` for stream naming; on leaving, deliver everything logged so far.

    An exception leaving the block is logged to the handlers (with its traceback), delivered,
    and re-raised.

    Args:
        context: the Lambda context object.
        handlers: the handlers to flush; default: every `CloudWatchLogsHandler` of the process.
        timeout_margin_ms: time kept back from the invocation's remaining time.
    """
    invocation = bind(context)
    try:
        yield invocation
    except BaseException:
        _log_unhandled(_targets(handlers), sys.exc_info())
        raise
    finally:
        started = time.monotonic()
        budget = _flush_timeout_s(context, timeout_margin_ms)
        for handler in _targets(handlers):
            left = max(0.0, budget - (time.monotonic() - started))
            handler.flush(left)


def _log_unhandled(handlers: list[CloudWatchLogsHandler], exc_info: Any) -> None:
    """Hand the unhandled exception to our handlers only: the runtime reports it elsewhere."""
    record = logging.LogRecord(
        name="aws_cloudwatch_logs_handler.lambda",
        level=logging.ERROR,
        pathname=__file__,
        lineno=0,
        msg="Unhandled exception in the Lambda function",
        args=None,
        exc_info=exc_info,
    )
    for handler in handlers:
        handler.handle(record)


@overload
def flush_after_invocation(function: F, /) -> F: ...


@overload
def flush_after_invocation(
    *,
    handlers: Iterable[CloudWatchLogsHandler] | None = None,
    timeout_margin_ms: int = DEFAULT_TIMEOUT_MARGIN_MS,
) -> Callable[[F], F]: ...


def flush_after_invocation(
    function: F | None = None,
    /,
    *,
    handlers: Iterable[CloudWatchLogsHandler] | None = None,
    timeout_margin_ms: int = DEFAULT_TIMEOUT_MARGIN_MS,
) -> F | Callable[[F], F]:
    """Deliver every record of an invocation before the Lambda function returns or raises.

    Use it bare (``@flush_after_invocation``: every `CloudWatchLogsHandler` of the process) or
    with arguments (``@flush_after_invocation(handlers=[h], timeout_margin_ms=300)``). The
    decorated function takes ``(event, context)``; the context names the invocation's stream.
    An unhandled exception is logged and delivered, then re-raised. The flush is bounded by the
    context's remaining time less ``timeout_margin_ms``.
    """
    chosen = None if handlers is None else list(handlers)

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            with invocation_scope(context, handlers=chosen, timeout_margin_ms=timeout_margin_ms):
                return func(event, context, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    if function is not None:
        return decorate(function)
    return decorate
