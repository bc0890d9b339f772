"""Lambda integration without a runtime: stream naming, the decorator's forms, the options."""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import boto3
import pytest
from handler_factory import HandlerFactory
from interrupts import interrupted_at_check
from moto import mock_aws

from aws_cloudwatch_logs_handler import flush_after_invocation, invocation_scope
from aws_cloudwatch_logs_handler._invocation import (
    INVOCATIONS,
    environment_stream_name,
    stream_name_for,
)
from aws_cloudwatch_logs_handler._packed import PackedEvents
from aws_cloudwatch_logs_handler._queues import HandlerQueues
from aws_cloudwatch_logs_handler._sender import Sender
from aws_cloudwatch_logs_handler._streams import _INVOCATION_NAMERS


@dataclass
class FakeContext:
    """The attributes of Lambda's context object that the handler reads."""

    aws_request_id: str
    function_name: str = "orders"
    function_version: str = "$LATEST"
    remaining_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def in_lambda(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment Lambda's runtime sets, in-process moto, and no invocation bound yet."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "orders")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
    monkeypatch.setenv("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/24/[$LATEST]0123456789abcdef")
    INVOCATIONS.forget()
    with mock_aws():
        yield
    INVOCATIONS.forget()


def messages(group: str, stream: str) -> list[str]:
    client = boto3.session.Session(region_name="us-east-1").client("logs")
    response = client.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    return [event["message"] for event in response["events"]]


def test_stream_is_named_from_the_request_context() -> None:
    """The name is YYYY/MM/DD/<function>/[<version>]<request id>, in UTC."""
    context = FakeContext("8f5c-11", function_version="7")
    moment = datetime(2026, 3, 4, 23, 59, tzinfo=timezone.utc)
    assert stream_name_for(context, now=moment) == "2026/03/04/orders/[7]8f5c-11"


def test_forbidden_characters_never_reach_a_stream_name() -> None:
    """':' and '*' (never valid in stream names) are replaced, and the name stays within 512."""
    name = stream_name_for(FakeContext("a:b*c" + "x" * 600))
    assert ":" not in name and "*" not in name and len(name) <= 512


def test_environment_stream_reuses_lambdas_own_stream_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """Records no invocation claimed go to a stream named after the environment's own."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "orders")
    monkeypatch.setenv("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/24/[$LATEST]0123456789abcdef")
    assert re.fullmatch(
        r"\d{4}/\d{2}/\d{2}/orders/\[\$LATEST\]0123456789abcdef", environment_stream_name()
    )


@pytest.mark.usefixtures("in_lambda")
def test_init_records_go_to_the_first_invocations_stream(make_handler: HandlerFactory) -> None:
    """Records logged before any invocation join the first invocation's stream, before its own."""
    handler = make_handler("/lambda/unit")
    logger = make_handler.logger(handler)
    logger.info("init")

    @flush_after_invocation
    def function(event: dict[str, Any], context: FakeContext) -> str:
        logger.info("handling %s", event["n"])
        return handler.log_stream_name

    first = function({"n": 1}, FakeContext("req-1"))
    second = function({"n": 2}, FakeContext("req-2"))
    assert first.endswith("/orders/[$LATEST]req-1") and second.endswith("]req-2")
    assert messages("/lambda/unit", first) == ["init", "handling 1"]
    assert messages("/lambda/unit", second) == ["handling 2"]


@pytest.mark.usefixtures("in_lambda")
def test_init_records_reach_a_stream_once_wherever_a_signal_cuts_the_binding(
    make_handler: HandlerFactory,
) -> None:
    """Binding the first invocation moves the records of the init phase to its stream. What a
    signal handler raises (a SIGTERM handler's SystemExit, Ctrl-C) can cut that move short:
    here it comes at every place in turn where CPython may run a signal handler
    (`interrupts.interrupted_at_check`). The next invocation still gets every init record,
    each once, and nothing stays counted as queued. Before, a cut in the middle of the move
    left the records in both queues or counted in neither: a batch the sender could not read
    (its delivery failed for good), or records sent twice."""
    codes = [
        function.__code__
        for function in (
            Sender.move_pending,
            HandlerQueues.move_pending,
            PackedEvents.joined,
            PackedEvents._seal_full_chunks,
        )
    ]
    client = boto3.session.Session(region_name="us-east-1").client("logs")

    def delivered(group: str) -> Counter[str]:
        """Every message of every stream of ``group``."""
        got: Counter[str] = Counter()
        for stream in client.describe_log_streams(logGroupName=group)["logStreams"]:
            events = client.get_log_events(
                logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
            )["events"]
            got.update(event["message"] for event in events)
        return got

    wrong: dict[int, Counter[str]] = {}
    for index in range(1_000):  # more than the places in the move's path
        # A new execution environment: its first invocation is to come, and the handlers of
        # the last one (closed, kept by the factory) no longer hear of bindings.
        INVOCATIONS.forget()
        _INVOCATION_NAMERS.clear()
        group = f"/lambda/cut-{index}"
        handler = make_handler(group)
        logger = make_handler.logger(handler)
        for number in range(20):  # more than a chunk of messages (16)
            logger.info("init %d", number)

        @flush_after_invocation
        def function(
            event: dict[str, Any], context: FakeContext, logger: logging.Logger = logger
        ) -> None:
            logger.info("handling %s", event["n"])

        with interrupted_at_check(codes, index) as fired, suppress(KeyboardInterrupt):
            function({"n": 1}, FakeContext(f"req-{index}-1"))
        function({"n": 2}, FakeContext(f"req-{index}-2"))
        assert handler.flush(timeout_s=30)
        got = delivered(group)
        expected = Counter([f"init {n}" for n in range(20)] + ["handling 1", "handling 2"])
        if fired[0] and got["handling 1"] == 0:
            del expected["handling 1"]  # the cut came before the function ran
        stats = handler.stats()
        if got != expected or (stats.events_queued, stats.dropped_total) != (0, 0):
            wrong[index] = got
        handler.close()
        if not fired[0]:
            break
    else:
        pytest.fail("the move's path never ran to its end")
    print(f"measured: {index} places where a signal can land in the move")
    assert wrong == {}
    assert index > 10  # the trace reached into the move


@pytest.mark.usefixtures("in_lambda")
def test_per_environment_stream_keeps_one_stream(make_handler: HandlerFactory) -> None:
    """per_environment_stream=True names one stream from the first invocation and keeps it."""
    handler = make_handler("/lambda/env", per_environment_stream=True)
    logger = make_handler.logger(handler)

    @flush_after_invocation()
    def function(event: dict[str, Any], context: FakeContext) -> None:
        logger.info("call %s", context.aws_request_id)

    function({}, FakeContext("first"))
    function({}, FakeContext("second"))
    stream = handler.log_stream_name
    assert stream.endswith("]first")
    assert messages("/lambda/env", stream) == ["call first", "call second"]


@pytest.mark.usefixtures("in_lambda")
def test_explicit_stream_always_wins(make_handler: HandlerFactory) -> None:
    """log_stream= is used as given, even in Lambda."""
    handler = make_handler("/lambda/explicit", log_stream="mine")

    @flush_after_invocation(handlers=[handler])
    def function(event: dict[str, Any], context: FakeContext) -> None:
        make_handler.logger(handler).info("here")

    function({}, FakeContext("r"))
    assert messages("/lambda/explicit", "mine") == ["here"]


@pytest.mark.usefixtures("in_lambda")
def test_unhandled_exception_is_logged_delivered_and_reraised(
    make_handler: HandlerFactory,
) -> None:
    """An exception escaping the function arrives with its traceback, then propagates."""
    handler = make_handler("/lambda/raises")

    @flush_after_invocation
    def function(event: dict[str, Any], context: FakeContext) -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError):
        function({}, FakeContext("boom"))
    [message] = messages("/lambda/raises", handler.log_stream_name)
    assert "Unhandled exception" in message and "KeyError: 'missing'" in message


@pytest.mark.usefixtures("in_lambda")
def test_context_manager_form_binds_and_flushes(make_handler: HandlerFactory) -> None:
    """invocation_scope(context) names the stream and delivers on leaving the block."""
    handler = make_handler("/lambda/scope")
    logger = make_handler.logger(handler)
    with invocation_scope(FakeContext("ctx-1")) as invocation:
        logger.warning("inside")
    assert invocation.request_id == "ctx-1"
    assert messages("/lambda/scope", invocation.stream_name) == ["inside"]


@pytest.mark.usefixtures("in_lambda")
def test_flush_is_bounded_by_the_remaining_time(make_handler: HandlerFactory) -> None:
    """With 1.5 s left and a 0.5 s margin, the decorator waits for a dead endpoint about 1 s and
    then returns, far below the 10 s it waits when the context gives no deadline."""
    handler = make_handler("/lambda/late", endpoint_url="http://127.0.0.1:9", shutdown_timeout_s=0)

    @flush_after_invocation(timeout_margin_ms=500)
    def function(event: dict[str, Any], context: FakeContext) -> str:
        make_handler.logger(handler).info("late")
        return "done"

    started = time.monotonic()
    assert function({}, FakeContext("late", remaining_ms=1_500)) == "done"
    took = time.monotonic() - started
    assert 0.9 <= took < 5.0, took  # waited its budget, and not the no-deadline 10 s
    assert handler.stats().events_queued == 1  # undelivered, still counted

    started = time.monotonic()
    assert function({}, FakeContext("later", remaining_ms=400)) == "done"
    assert time.monotonic() - started < 0.9  # less time left than the margin: no wait at all


@pytest.mark.usefixtures("in_lambda")
def test_without_the_decorator_records_go_to_the_environment_stream(
    make_handler: HandlerFactory,
) -> None:
    """No invocation bound: a flush sends the records to the execution environment's stream."""
    handler = make_handler("/lambda/plain")
    make_handler.logger(handler).info("no decorator")
    assert handler.flush(timeout_s=30)
    [stream] = [
        s["logStreamName"]
        for s in boto3.session.Session(region_name="us-east-1")
        .client("logs")
        .describe_log_streams(logGroupName="/lambda/plain")["logStreams"]
    ]
    assert stream.endswith("/orders/[$LATEST]0123456789abcdef")
    assert messages("/lambda/plain", stream) == ["no decorator"]


def test_outside_lambda_nothing_changes(make_handler: HandlerFactory) -> None:
    """Without Lambda's environment the article's dated-UUID stream is used."""
    assert make_handler("/not/lambda").log_stream_name.startswith("stream/")


def test_decorated_function_keeps_its_name() -> None:
    """The decorator preserves the wrapped function's metadata."""

    @flush_after_invocation
    def lambda_handler(event: Any, context: Any) -> None:
        """Doc."""

    assert lambda_handler.__name__ == "lambda_handler" and lambda_handler.__doc__ == "Doc."
    logging.getLogger(__name__).debug("no handlers needed for this test")
