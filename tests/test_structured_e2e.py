"""Structured logs end to end on a moto server: our JSON, big JSON, and other libraries' JSON.

Every test reads back what the endpoint holds and parses it with `json.loads`: that is what Logs
Insights needs to discover fields.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from handler_factory import HandlerFactory

from aws_cloudwatch_logs_handler import JsonFormatter, bound, join_parts
from aws_cloudwatch_logs_handler._limits import MAX_EVENT_BYTES
from local_aws.moto_endpoint import MotoEndpoint

MULTIBYTE = "é€😀ж"  # 2, 3, 4 and 2 UTF-8 bytes
BIG_MESSAGE_BYTES = 3 * 1024 * 1024


def delivered_json(moto: MotoEndpoint, handler: Any, stream: str) -> list[dict[str, Any]]:
    """Flush, then every event of the stream (split parts joined) parsed as JSON."""
    assert handler.flush(timeout_s=30)
    return [json.loads(m) for m in join_parts(moto.messages(handler.log_group_name, stream))]


def test_extra_exceptions_and_bound_context_arrive_as_json_with_lambdas_keys(
    moto_server: MotoEndpoint, make_handler: HandlerFactory
) -> None:
    """A record with extra=, one with an exception and bound fields all parse with their keys."""
    handler = make_handler(endpoint_url=moto_server.url, log_stream="json")
    handler.setFormatter(JsonFormatter(static_fields={"service": "shop"}))
    logger = make_handler.logger(handler)
    with bound(request_id="r-1", user="u-7"):
        logger.info("paid %d cents", 120, extra={"order": {"id": 17, "items": 2}})
        try:
            {"present": 1}["missing"]
        except KeyError:
            logger.exception("lookup failed")
    logger.warning({"event": "cache_miss", "key": "k"})
    paid, failed, miss = delivered_json(moto_server, handler, "json")
    assert paid["message"] == "paid 120 cents"
    assert paid["order"] == {"id": 17, "items": 2}
    assert (paid["level"], paid["logger"], paid["service"]) == ("INFO", logger.name, "shop")
    assert (paid["request_id"], paid["user"]) == ("r-1", "u-7")
    assert failed["errorType"] == "KeyError"
    assert failed["errorMessage"] == "'missing'"
    assert '{"present": 1}["missing"]' in failed["stackTrace"][-1]
    assert failed["location"].startswith(f"{__file__}:test_extra_exceptions_and_bound_context")
    assert failed["request_id"] == "r-1"
    assert miss["message"] == {"event": "cache_miss", "key": "k"}
    assert "request_id" not in miss  # the block ended: its fields went with it


def test_a_3_mb_multibyte_json_event_is_split_and_joins_back_exactly(
    moto_server: MotoEndpoint, make_handler: HandlerFactory
) -> None:
    """Over the event limit, JSON is split into parts within the limit; join_parts gives it back."""
    handler = make_handler(endpoint_url=moto_server.url, log_stream="big")
    handler.setFormatter(JsonFormatter())
    logger = make_handler.logger(handler)
    text = MULTIBYTE * (BIG_MESSAGE_BYTES // len(MULTIBYTE.encode()))
    logger.info(text, extra={"tag": "big"})
    logger.info("small after")
    assert handler.flush(timeout_s=60)
    raw = moto_server.messages(handler.log_group_name, "big")
    assert len(raw) == 5  # four parts of the 3 MB event, then the small one
    assert all(len(m.encode()) <= MAX_EVENT_BYTES for m in raw)
    big, small = (json.loads(m) for m in join_parts(raw))
    assert big["message"] == text and big["tag"] == "big"
    assert small["message"] == "small after"
    assert handler.stats().dropped_total == 0


def test_python_json_logger_arrives_as_json_with_its_keys(
    moto_server: MotoEndpoint, make_handler: HandlerFactory
) -> None:
    """python-json-logger's formatter through this handler: its keys and extra fields parse."""
    from pythonjsonlogger.json import JsonFormatter as PythonJsonFormatter

    handler = make_handler(endpoint_url=moto_server.url, log_stream="pjl")
    handler.setFormatter(PythonJsonFormatter("{asctime}{levelname}{name}{message}", style="{"))
    logger = make_handler.logger(handler)
    logger.info("hello", extra={"order": 17})
    [event] = delivered_json(moto_server, handler, "pjl")
    assert event["message"] == "hello" and event["levelname"] == "INFO"
    assert event["name"] == logger.name and event["order"] == 17 and event["asctime"]


def test_structlog_processor_formatter_arrives_as_json_for_both_kinds_of_record(
    moto_server: MotoEndpoint, make_handler: HandlerFactory
) -> None:
    """structlog's ProcessorFormatter renders structlog events and stdlib records as JSON."""
    import structlog

    handler = make_handler(endpoint_url=moto_server.url, log_stream="structlog")
    shared: list[Any] = [structlog.stdlib.add_log_level, structlog.processors.TimeStamper("iso")]
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=shared,
        )
    )
    stdlib_logger = make_handler.logger(handler)
    log = structlog.wrap_logger(
        stdlib_logger,
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    log.bind(order=17).info("paid", cents=120)
    stdlib_logger.warning("from the standard library")
    paid, foreign = delivered_json(moto_server, handler, "structlog")
    assert paid["event"] == "paid" and (paid["order"], paid["cents"]) == (17, 120)
    assert paid["level"] == "info" and paid["timestamp"]
    assert foreign["event"] == "from the standard library" and foreign["level"] == "warning"


def test_powertools_logger_arrives_as_json_with_its_keys(
    moto_server: MotoEndpoint, make_handler: HandlerFactory
) -> None:
    """Powertools' Logger(logger_handler=ours) ships its JSON: service, appended keys, location."""
    from aws_lambda_powertools import Logger

    handler = make_handler(endpoint_url=moto_server.url, log_stream="powertools")
    service = f"svc-{uuid.uuid4().hex[:8]}"
    logger = Logger(service=service, logger_handler=handler, level="INFO")
    try:
        logger.append_keys(order=17)
        logger.info("paid", extra={"cents": 120})
        [event] = delivered_json(moto_server, handler, "powertools")
    finally:
        logging.getLogger(service).removeHandler(handler)
    assert event["message"] == "paid" and event["level"] == "INFO"
    assert (event["service"], event["order"], event["cents"]) == (service, 17, 120)
    assert event["location"] and event["timestamp"]


def test_the_readmes_dictconfig_ships_json(moto_server: MotoEndpoint) -> None:
    """The README's LOGGING dictionary builds the handler and formatter and ships parseable JSON."""
    import logging.config

    group = f"/test/{uuid.uuid4().hex[:12]}"
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "json": {
                    "()": "aws_cloudwatch_logs_handler.JsonFormatter",
                    "static_fields": {"service": "checkout"},
                    "default": "ext://builtins.str",
                }
            },
            "handlers": {
                "cloudwatch": {
                    "class": "aws_cloudwatch_logs_handler.CloudWatchLogsHandler",
                    "log_group": group,
                    "log_stream": "dictconfig",
                    "endpoint_url": moto_server.url,  # the README's, pointed at the stand-in
                    "formatter": "json",
                }
            },
            "root": {"handlers": ["cloudwatch"], "level": "INFO"},
        }
    )
    [handler] = root.handlers
    try:
        logging.getLogger("django.request").info("GET /", extra={"when": {1}})
        [event] = delivered_json(moto_server, handler, "dictconfig")
    finally:
        handler.close()
        root.handlers = saved[1]
        root.setLevel(saved[0])
    assert (event["message"], event["service"], event["when"]) == ("GET /", "checkout", "{1}")
