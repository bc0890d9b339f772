"""Lambda integration without a runtime: stream naming, the decorator's forms, the options."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import boto3
import pytest
from handler_factory import HandlerFactory
from moto import mock_aws

from aws_cloudwatch_logs_handler import flush_after_invocation, invocation_scope
from aws_cloudwatch_logs_handler._invocation import (
    INVOCATIONS,
    environment_stream_name,
    stream_name_for,
)


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
