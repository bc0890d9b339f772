"""A Lambda function that logs through Powertools' Logger with the library as its handler.

Copied as ``handler.py`` into a task directory; the library comes from the unzipped layer only.
``event["order"]`` picks one of two functions that stack `logger.inject_lambda_context` and
`flush_after_invocation` in opposite orders, so one runtime covers both.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from aws_cloudwatch_logs_handler import CloudWatchLogsHandler, flush_after_invocation

SERVICE = "e2e-powertools"

cloudwatch = CloudWatchLogsHandler(os.environ["E2E_LOG_GROUP"])
# logger_handler= makes the library Powertools' only handler, with Powertools' JSON formatter.
logger = Logger(service=SERVICE, logger_handler=cloudwatch)
logger.append_keys(deployment="e2e-harness")
logger.info("init powertools")


def _body(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.append_keys(order=event["order"])
    tag = event["tag"]
    for number in range(event.get("records", 0)):
        logger.info("%s %d", tag, number)
    return {"request_id": context.aws_request_id, "body_end_ns": time.time_ns()}


@logger.inject_lambda_context
@flush_after_invocation
def inject_outside(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Powertools' decorator outermost: the flush runs inside its context."""
    return _body(event, context)


@flush_after_invocation
@logger.inject_lambda_context
def flush_outside(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The flush outermost: it runs after Powertools' decorator has returned."""
    return _body(event, context)


ORDERS: dict[str, Callable[[dict[str, Any], Any], dict[str, Any]]] = {
    "inject_outside": inject_outside,
    "flush_outside": flush_outside,
}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Dispatch to the stacking order the test asks for."""
    return ORDERS[event["order"]](event, context)
