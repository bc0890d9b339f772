"""Lambda's logging controls: the configured level, and the runtime's copy of shipped records."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from handler_factory import HandlerFactory

from aws_cloudwatch_logs_handler import lambda_log_level, lambda_runtime_copy
from local_aws.moto_endpoint import MotoEndpoint


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("TRACE", logging.DEBUG),
        ("debug", logging.DEBUG),
        ("INFO", logging.INFO),
        ("WARN", logging.WARNING),
        (" error ", logging.ERROR),
        ("FATAL", logging.CRITICAL),
        ("", logging.NOTSET),
        ("LOUD", logging.NOTSET),
    ],
)
def test_lambda_log_level_reads_lambdas_level_names(value: str, level: int) -> None:
    """Lambda's names map as its runtime maps them; unset or unknown means NOTSET."""
    assert lambda_log_level({"AWS_LAMBDA_LOG_LEVEL": value}) == level


def test_lambda_log_level_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an argument it reads os.environ, and gives NOTSET outside Lambda."""
    monkeypatch.delenv("AWS_LAMBDA_LOG_LEVEL", raising=False)
    assert lambda_log_level() == logging.NOTSET
    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", "WARN")
    assert lambda_log_level() == logging.WARNING


class Sink:
    """Stands in for the runtime's log sink (the function's own log group)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, msg: str, frame_type: Any = None) -> None:
        self.lines.append(msg)


def ours(sink: Sink) -> list[str]:
    """The sink's lines from this module's records (the sender's SDK may log there too)."""
    return [
        line
        for line in sink.lines
        if line.startswith(("app", "other", "botocore.test_lambda_controls"))
    ]


@pytest.fixture
def lambda_root() -> Iterator[Sink]:
    """The root logger as awslambdaric leaves it: its handler (with its filter) on root, INFO."""
    from awslambdaric.bootstrap import LambdaLoggerFilter, LambdaLoggerHandler

    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    sink = Sink()
    runtime_handler = LambdaLoggerHandler(sink)
    runtime_handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    runtime_handler.addFilter(LambdaLoggerFilter())
    root.handlers = [runtime_handler]
    root.setLevel(logging.INFO)
    try:
        yield sink
    finally:
        lambda_runtime_copy(enabled=True)
        root.handlers = saved[1]
        root.setLevel(saved[0])


def test_records_below_the_configured_level_are_not_shipped(
    moto_server: MotoEndpoint,
    make_handler: HandlerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With AWS_LAMBDA_LOG_LEVEL=WARN, a handler at lambda_log_level() ships WARNING only."""
    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", "WARN")
    handler = make_handler(endpoint_url=moto_server.url, log_stream="alc", level=lambda_log_level())
    logger = make_handler.logger(handler)  # the logger itself lets DEBUG through
    logger.info("below")
    logger.warning("at")
    assert handler.flush(timeout_s=30)
    assert moto_server.messages(handler.log_group_name, "alc") == ["at"]


def test_by_default_the_runtime_keeps_its_copy(
    lambda_root: Sink, moto_server: MotoEndpoint, make_handler: HandlerFactory
) -> None:
    """Without a call, a shipped record also reaches the function's own group (nothing vanishes)."""
    handler = make_handler(endpoint_url=moto_server.url, log_stream="both")
    logging.getLogger().addHandler(handler)
    try:
        logging.getLogger("app").info("twice")
        assert handler.flush(timeout_s=30)
    finally:
        logging.getLogger().removeHandler(handler)
    assert ours(lambda_root) == ["app twice"]
    assert moto_server.messages(handler.log_group_name, "both") == ["twice"]


def test_without_the_runtime_copy_each_record_is_ingested_once(
    lambda_root: Sink, moto_server: MotoEndpoint, make_handler: HandlerFactory
) -> None:
    """enabled=False: what we ship skips the runtime; what we do not ship still goes there."""
    handler = make_handler(endpoint_url=moto_server.url, log_stream="once", level=logging.INFO)
    app = logging.getLogger("app.orders")
    app.setLevel(logging.DEBUG)
    app.addHandler(handler)  # on a child logger: ours runs before the root's
    logging.getLogger().addHandler(handler)
    try:
        assert lambda_runtime_copy(enabled=False) == 1
        assert lambda_runtime_copy(enabled=False) == 1  # idempotent: one filter, not two
        app.info("ours only")
        logging.getLogger("other").warning("ours only too")
        app.debug("below our level")
        logging.getLogger("botocore.test_lambda_controls").warning("excluded from ours")
        assert handler.flush(timeout_s=30)
        assert lambda_runtime_copy(enabled=True) == 1
        app.info("back to both")
        assert handler.flush(timeout_s=30)
    finally:
        app.removeHandler(handler)
        app.setLevel(logging.NOTSET)
        logging.getLogger().removeHandler(handler)
    assert ours(lambda_root) == [
        "app.orders below our level",
        "botocore.test_lambda_controls excluded from ours",
        "app.orders back to both",
    ]
    assert moto_server.messages(handler.log_group_name, "once") == [
        "ours only",
        "ours only",  # the child logger's handler and the root's are the same handler
        "ours only too",
        "back to both",
        "back to both",
    ]


def test_outside_lambda_the_runtime_copy_changes_nothing() -> None:
    """With no runtime handler on root, the call is a no-op that says so."""
    assert lambda_runtime_copy(enabled=False) == 0
    assert lambda_runtime_copy(enabled=True) == 0
