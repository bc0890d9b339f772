"""Post-response delivery without a runtime: the hand-over, the extension thread, the fallbacks."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from handler_factory import HandlerFactory

from aws_cloudwatch_logs_handler import ConfigurationError, flush_after_invocation
from aws_cloudwatch_logs_handler._extension import (
    EXTENSION,
    EXTENSION_NAME,
    ExtensionsApi,
    ExtensionsApiError,
    Handoff,
    InvokeEvent,
    PostResponseDelivery,
    function_name_of,
)
from aws_cloudwatch_logs_handler._invocation import INVOCATIONS
from aws_cloudwatch_logs_handler._lambda import _post_response_job
from aws_cloudwatch_logs_handler.testing import FakeLogsClient

WAIT_S = 10.0


@dataclass
class FakeContext:
    """The attributes of Lambda's context object that the decorator reads."""

    aws_request_id: str
    function_name: str = "orders"
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


class FakeExtensionsApi:
    """Lambda's side of the Extensions API: the test hands out events and sees each next call."""

    def __init__(self, *, refuse: str | None = None) -> None:
        self.refuse = refuse
        self.registered: list[str] = []
        self.events: queue.Queue[InvokeEvent | None] = queue.Queue()
        self.next_calls: queue.Queue[float] = queue.Queue()

    def register(self, name: str) -> str:
        if self.refuse is not None:
            raise ExtensionsApiError(self.refuse, refused=True)
        self.registered.append(name)
        return "extension-id"

    def next_event(self, identifier: str) -> InvokeEvent:
        assert identifier == "extension-id"
        self.next_calls.put(time.monotonic())
        event = self.events.get(timeout=WAIT_S)
        if event is None:
            raise ExtensionsApiError("the environment ends", refused=True)
        return event

    def invoke(self, request_id: str, *, in_s: float = 30.0) -> None:
        """Start an invocation whose deadline is ``in_s`` seconds away."""
        self.events.put(InvokeEvent(request_id, time.time_ns() // 1_000_000 + int(in_s * 1000)))

    def wait_next(self) -> float:
        """Wait until the extension calls next (its Init, or an invocation's end)."""
        return self.next_calls.get(timeout=WAIT_S)


@pytest.fixture
def extension() -> Iterator[tuple[PostResponseDelivery, FakeExtensionsApi]]:
    """A registered extension of its own, driven by a fake API; ended after the test."""
    api = FakeExtensionsApi()
    delivery = PostResponseDelivery()
    assert delivery.start(api, timeout_margin_ms=500)
    api.wait_next()  # the first next: the extension's Init is done
    yield delivery, api
    api.events.put(None)


@pytest.fixture
def lambda_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Lambda's variables, with the Runtime API on a closed port; say which function it calls."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "orders")
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
    INVOCATIONS.forget()
    EXTENSION.forget()
    yield lambda name: monkeypatch.setenv("_HANDLER", name)
    EXTENSION.forget()
    INVOCATIONS.forget()


def recorder() -> tuple[list[float], Callable[[float], int]]:
    """A delivery job that records the budget it was given and leaves nothing behind."""
    budgets: list[float] = []

    def job(budget_s: float) -> int:
        budgets.append(budget_s)
        return 0

    return budgets, job


def test_handoff_keeps_a_delivery_until_the_extension_asks() -> None:
    """A delivery handed over before the INVOKE event is read is still taken by it."""
    handoff = Handoff()
    handoff.open = True
    _, job = recorder()

    assert handoff.hand_over("r1", job)
    assert handoff.take("r1", timeout_s=0) is job
    assert handoff.take("r1", timeout_s=0) is None


def test_handoff_refuses_when_no_extension_runs() -> None:
    """With no extension thread, the decorator is told to deliver itself."""
    handoff = Handoff()
    _, job = recorder()

    assert not handoff.hand_over("r1", job)
    handoff.open = True
    handoff.hand_over("r1", job)
    assert handoff.close() == [job]
    assert not handoff.hand_over("r2", job)


def test_extension_runs_the_delivery_before_calling_next(
    extension: tuple[PostResponseDelivery, FakeExtensionsApi],
) -> None:
    """The delivery runs within the deadline less the margin, and only then is next called."""
    delivery, api = extension
    finished = threading.Event()
    budgets: list[float] = []

    def job(budget_s: float) -> int:
        budgets.append(budget_s)
        finished.set()
        return 0

    api.invoke("req-1", in_s=30)
    assert delivery.hand_over("req-1", job)
    api.wait_next()

    assert finished.is_set()
    assert api.registered == [EXTENSION_NAME]
    [budget] = budgets
    assert 28.0 < budget <= 29.5  # 30 s less the 500 ms margin, less the time taken here


def test_what_a_delivery_leaves_is_counted(
    extension: tuple[PostResponseDelivery, FakeExtensionsApi],
) -> None:
    """Events a delivery could not send by the deadline are added to carried_events."""
    delivery, api = extension
    api.invoke("req-late", in_s=0.1)
    delivery.hand_over("req-late", lambda budget_s: 7 if budget_s == 0 else 0)
    api.wait_next()

    assert delivery.carried_events == 7


def test_an_invocation_that_hands_nothing_over_ends_at_its_deadline(
    extension: tuple[PostResponseDelivery, FakeExtensionsApi],
) -> None:
    """No hand-over (the handler was never called): next is called once the deadline passes."""
    _, api = extension
    api.invoke("req-none", in_s=0.2)
    started = time.monotonic()

    ended = api.wait_next()

    assert 0.1 <= ended - started < WAIT_S


def test_when_the_api_goes_away_the_decorator_delivers_again(
    extension: tuple[PostResponseDelivery, FakeExtensionsApi],
) -> None:
    """The extension stops on an API error; hand-overs are refused from then on."""
    delivery, api = extension
    api.events.put(None)
    thread = delivery._thread
    assert thread is not None
    thread.join(WAIT_S)
    _, job = recorder()

    assert not delivery.hand_over("req-after", job)


def test_refused_registration_is_kept_to_be_said_once() -> None:
    """A refused registration leaves the reason, handed out once."""
    delivery = PostResponseDelivery()

    assert not delivery.start(FakeExtensionsApi(refuse="403 no"), timeout_margin_ms=500)

    reason = delivery.take_fallback_reason()
    assert reason is not None and "refused (403 no)" in reason
    assert delivery.take_fallback_reason() is None


def test_api_address_must_be_host_and_port() -> None:
    """A malformed AWS_LAMBDA_RUNTIME_API is an unavailable API, not a crash."""
    with pytest.raises(ExtensionsApiError, match="not host:port"):
        ExtensionsApi("no-port")


def test_unreachable_api_is_reported_as_not_available() -> None:
    """No server at the address: registration fails as 'not available', never raises out."""
    with pytest.raises(ExtensionsApiError) as caught:
        ExtensionsApi("127.0.0.1:9").register(EXTENSION_NAME)
    assert not caught.value.refused


def test_delivery_option_is_checked_at_decoration() -> None:
    """A wrong delivery= is a ConfigurationError naming both choices."""
    with pytest.raises(ConfigurationError, match=r"'after_response'.*'before_return'"):
        flush_after_invocation(delivery="later")  # type: ignore[call-overload]
    with pytest.raises(ConfigurationError, match="timeout_margin_ms"):
        flush_after_invocation(timeout_margin_ms=-1)


def test_fallback_reason_goes_to_the_side_channel_once(
    lambda_runtime: Callable[[str], None], make_handler: HandlerFactory
) -> None:
    """Without an Extensions API the decorator delivers itself and says why, once."""
    problems: list[str] = []
    handler = make_handler(client=FakeLogsClient(), on_problem=problems.append)
    logger = make_handler.logger(handler)

    def function(event: dict[str, Any], context: FakeContext) -> None:
        logger.info("call %s", context.aws_request_id)

    lambda_runtime(function_name_of(function))
    decorated = flush_after_invocation(function)
    decorated({}, FakeContext("r1"))
    decorated({}, FakeContext("r2"))

    assert handler.stats().events_delivered == 2
    [said] = [problem for problem in problems if "before the function returns" in problem]
    assert "Extensions API is not available" in said


def test_a_decorated_helper_is_named_in_the_reason(
    lambda_runtime: Callable[[str], None], make_handler: HandlerFactory
) -> None:
    """Decorating another function than Lambda's handler says which one Lambda calls."""
    problems: list[str] = []
    handler = make_handler(client=FakeLogsClient(), on_problem=problems.append)
    lambda_runtime("app.handler")

    @flush_after_invocation
    def helper(event: dict[str, Any], context: FakeContext) -> None:
        make_handler.logger(handler).info("helped")

    helper({}, FakeContext("r1"))

    assert handler.stats().events_delivered == 1
    assert any("Lambda calls app.handler (_HANDLER)" in problem for problem in problems)


def test_before_return_tries_nothing_and_says_nothing(
    lambda_runtime: Callable[[str], None], make_handler: HandlerFactory
) -> None:
    """delivery='before_return' never registers, delivers before returning, reports nothing."""
    problems: list[str] = []
    handler = make_handler(client=FakeLogsClient(), on_problem=problems.append)

    def function(event: dict[str, Any], context: FakeContext) -> None:
        make_handler.logger(handler).info("sync")

    lambda_runtime(function_name_of(function))
    flush_after_invocation(delivery="before_return")(function)({}, FakeContext("r1"))

    assert handler.stats().events_delivered == 1
    assert problems == []


class LogsDuringDelivery(FakeLogsClient):
    """Holds the first PutLogEvents until another thread of the function has logged once more."""

    def __init__(self, log_more: Callable[[], None]) -> None:
        super().__init__()
        self._log_more = log_more
        self._held = False

    def put_log_events(self, **kwargs: Any) -> dict[str, Any]:
        if not self._held:
            self._held = True
            other = threading.Thread(target=self._log_more)
            other.start()
            other.join(WAIT_S)
        return super().put_log_events(**kwargs)


def test_records_logged_during_delivery_are_delivered_too(make_handler: HandlerFactory) -> None:
    """A record the invocation logs while its delivery runs is delivered in the same phase."""
    logger_box: list[Any] = []
    client = LogsDuringDelivery(lambda: logger_box[0].info("after the response"))
    handler = make_handler("/ext/late", log_stream="s", client=client)
    logger = make_handler.logger(handler)
    logger_box.append(logger)
    logger.info("during the function")

    left = _post_response_job([handler], "req")(WAIT_S)

    assert left == 0
    assert client.messages("/ext/late", "s") == ["during the function", "after the response"]
