"""Lambda integration: the decorator and context manager that deliver before the function returns.

Lambda freezes the execution environment the moment the handler returns: the sender thread stops
mid-flight and what it holds is lost if the environment is never thawed. So the only reliable
delivery is a flush that completes before the function returns, which `flush_after_invocation`
does, bounded by the invocation's remaining time.
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Final, TypeVar, overload

from ._handler import CloudWatchLogsHandler, live_handlers
from ._invocation import INVOCATIONS, Invocation

DEFAULT_TIMEOUT_MARGIN_MS: Final = 500
"""Time kept back from the invocation's remaining time, so the function still returns in time."""
_NO_DEADLINE_FLUSH_S: Final = 10.0

F = TypeVar("F", bound=Callable[..., Any])


def _flush_timeout_s(context: Any, margin_ms: int) -> float:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if not callable(remaining):
        return _NO_DEADLINE_FLUSH_S
    try:
        return max(0.0, (int(remaining()) - margin_ms) / 1000)
    except Exception:
        return _NO_DEADLINE_FLUSH_S


def _targets(handlers: Iterable[CloudWatchLogsHandler] | None) -> list[CloudWatchLogsHandler]:
    return list(handlers) if handlers is not None else live_handlers()


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
    invocation = INVOCATIONS.bind(context)
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
