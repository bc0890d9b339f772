"""Lambda integration: deliver each invocation's records before the environment is frozen.

Lambda freezes the execution environment once the invocation ends: the sender thread stops
mid-flight and what it holds is lost if the environment is never thawed. The invocation ends
when the runtime has posted the response *and* every extension has called ``next``; the caller
gets the response as soon as it is posted. So `flush_after_invocation` registers an internal
extension during Init (`_extension`) and hands each invocation's delivery to it: the function
returns at once, and the records are delivered after the response, still before the freeze,
bounded by the invocation's deadline. Where that is impossible (no Extensions API, registration
refused, the decorator applied after Init or to another function than Lambda's handler, or
``delivery="before_return"``), the decorator delivers before the function returns, bounded by
the remaining time.
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Final, Literal, TypeVar, overload

from ._errors import ConfigurationError
from ._extension import (
    EXTENSION,
    ExtensionsApi,
    ExtensionsApiError,
    Job,
    function_name_of,
    lambda_handler_name,
)
from ._handler import CloudWatchLogsHandler, live_handlers
from ._invocation import INVOCATIONS, Invocation

DEFAULT_TIMEOUT_MARGIN_MS: Final = 500
"""Time kept back from the invocation's remaining time, so the function still returns in time."""
_NO_DEADLINE_FLUSH_S: Final = 10.0

Delivery = Literal["after_response", "before_return"]
"""When the decorator delivers: after the response is sent (through the extension, where Lambda
allows it) or before the function returns (the caller waits for it)."""
_DELIVERIES: Final = ("after_response", "before_return")

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
    and re-raised. The block is entered during an invocation, after Init, when an extension
    can no longer register: it always delivers before leaving (`flush_after_invocation` on
    the function Lambda calls delivers after the response instead).

    Args:
        context: the Lambda context object.
        handlers: the handlers to flush; default: every `CloudWatchLogsHandler` of the process.
        timeout_margin_ms: time kept back from the invocation's remaining time.
    """
    with _scope(context, handlers, timeout_margin_ms, after_response=False) as invocation:
        yield invocation


@contextmanager
def _scope(
    context: Any,
    handlers: Iterable[CloudWatchLogsHandler] | None,
    timeout_margin_ms: int,
    *,
    after_response: bool,
) -> Iterator[Invocation]:
    """Bind ``context``; on leaving, hand the delivery to the extension or deliver now."""
    invocation = INVOCATIONS.bind(context)
    try:
        yield invocation
    except BaseException:
        _log_unhandled(_targets(handlers), sys.exc_info())
        raise
    finally:
        targets = _targets(handlers)
        job = _post_response_job(targets, invocation.request_id)
        if not (after_response and EXTENSION.hand_over(invocation.request_id, job)):
            _say_fallback_once(targets)
            _flush_all(targets, _flush_timeout_s(context, timeout_margin_ms))


def _flush_all(targets: list[CloudWatchLogsHandler], budget_s: float) -> bool:
    """Flush every handler within ``budget_s`` in all; True if everything was settled."""
    deadline = time.monotonic() + budget_s
    settled = True
    for handler in targets:
        settled = handler.flush(max(0.0, deadline - time.monotonic())) and settled
    return settled


def _post_response_job(targets: list[CloudWatchLogsHandler], request_id: str) -> Job:
    """The delivery the extension runs after the response, within the time it is given.

    Records the invocation logs after the response (its threads go on until the freeze) are
    delivered too: while records keep arriving during a flush, flush again. What the deadline
    leaves queued stays queued for the next invocation, and is said on the side channel.
    """

    def deliver(budget_s: float) -> int:
        deadline = time.monotonic() + budget_s
        while True:
            accepted = [handler.stats().records_accepted for handler in targets]
            if not _flush_all(targets, max(0.0, deadline - time.monotonic())):
                break
            if accepted == [handler.stats().records_accepted for handler in targets]:
                return 0
        left = 0
        for handler in targets:
            queued = handler.stats().events_queued
            left += queued
            if queued:
                handler._reporter.report(
                    "deadline",
                    f"{queued} event(s) for {handler.log_group_name!r} were not delivered "
                    f"before the deadline of invocation {request_id} (less timeout_margin_ms); "
                    "they stay queued and are delivered during the next invocation",
                    always=True,
                )
        return left

    return deliver


def _say_fallback_once(targets: list[CloudWatchLogsHandler]) -> None:
    """Say on the handlers' side channel, once, why delivery happens before the return."""
    reason = EXTENSION.take_fallback_reason()
    if reason is not None:
        for handler in targets:
            handler._reporter.report("lambda_extension", reason, always=True)


def _prepare_extension(function: Callable[..., Any], timeout_margin_ms: int) -> bool:
    """Register the extension for ``function`` if it is Lambda's handler; True if it runs.

    Only the function Lambda calls may hand its delivery over: the extension waits for one
    delivery per invocation, and a decorated helper would hand over too early, or never.
    """
    handler_name = lambda_handler_name()
    address = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if handler_name is None or not address:
        return False  # not a Lambda runtime: nothing to register with, nothing to say
    name = function_name_of(function)
    if INVOCATIONS.first is not None:
        EXTENSION.refuse(
            f"{name} was decorated during an invocation, and an extension registers only "
            "during Init: decorate the function Lambda calls at import"
        )
        return False
    if name != handler_name:
        if not EXTENSION.running:
            EXTENSION.refuse(
                f"flush_after_invocation decorates {name}, but Lambda calls {handler_name} "
                "(_HANDLER): decorate the function Lambda calls"
            )
        return False
    try:
        client = ExtensionsApi(address)
    except ExtensionsApiError as error:
        EXTENSION.refuse(str(error))
        return False
    return EXTENSION.start(client, timeout_margin_ms=timeout_margin_ms)


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
    delivery: Delivery = "after_response",
) -> Callable[[F], F]: ...


def flush_after_invocation(
    function: F | None = None,
    /,
    *,
    handlers: Iterable[CloudWatchLogsHandler] | None = None,
    timeout_margin_ms: int = DEFAULT_TIMEOUT_MARGIN_MS,
    delivery: Delivery = "after_response",
) -> F | Callable[[F], F]:
    """Deliver every record of an invocation before Lambda freezes the environment.

    Use it bare (``@flush_after_invocation``: every `CloudWatchLogsHandler` of the process) or
    with arguments (``@flush_after_invocation(handlers=[h], timeout_margin_ms=300)``). The
    decorated function takes ``(event, context)``; the context names the invocation's stream.
    An unhandled exception is logged, then re-raised, and delivered like the other records.

    Applied at import to the function Lambda calls, it registers an internal extension during
    Init and returns as soon as the function does: the records are delivered after the response
    is sent, before the freeze, within the invocation's deadline less ``timeout_margin_ms``.
    Where Lambda does not allow that, or with ``delivery="before_return"``, it delivers before
    returning, within the remaining time less ``timeout_margin_ms``, and says once why.

    Raises:
        ConfigurationError: ``delivery`` or ``timeout_margin_ms`` is invalid.
    """
    if delivery not in _DELIVERIES:
        raise ConfigurationError(
            f"delivery={delivery!r} must be 'after_response' (default: the caller does not "
            "wait) or 'before_return' (deliver before the function returns)"
        )
    if isinstance(timeout_margin_ms, bool) or not isinstance(timeout_margin_ms, int):
        raise ConfigurationError(f"timeout_margin_ms={timeout_margin_ms!r} must be an int (ms)")
    if timeout_margin_ms < 0:
        raise ConfigurationError(f"timeout_margin_ms={timeout_margin_ms!r} must be at least 0")
    chosen = None if handlers is None else list(handlers)

    def decorate(func: F) -> F:
        after_response = delivery == "after_response" and _prepare_extension(
            func, timeout_margin_ms
        )

        @functools.wraps(func)
        def wrapper(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            with _scope(context, chosen, timeout_margin_ms, after_response=after_response):
                return func(event, context, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    if function is not None:
        return decorate(function)
    return decorate
