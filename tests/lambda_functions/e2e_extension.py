"""A Lambda function for the post-response delivery: modes, fallbacks and latency.

Copied as ``handler.py``; the library comes from the unzipped layer only. ``E2E_DECORATE``
says how the decorator is applied: ``handler`` (at import, to the function Lambda calls),
``helper`` (at import, to another function), ``late`` (during the first invocation, after
Init). ``E2E_DELIVERY`` is the decorator's ``delivery``. Each event logs ``event["records"]``
records ``"<tag> <n>"`` to CloudWatch, or, with ``"sink": "format_only"``, to a handler that
only formats them (the baseline a caller's latency is compared with).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from typing import Any

from aws_cloudwatch_logs_handler import CloudWatchLogsHandler, flush_after_invocation

DECORATE = os.environ.get("E2E_DECORATE", "handler")
DELIVERY: Any = os.environ.get("E2E_DELIVERY", "after_response")


class FormatOnly(logging.Handler):
    """Formats every record and keeps nothing: what logging costs without any delivery."""

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)


def logger_to(name: str, handler: logging.Handler) -> logging.Logger:
    """An INFO logger writing only to ``handler``, with the bare message."""
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    logger.propagate = False
    return logger


cloudwatch = CloudWatchLogsHandler(os.environ["E2E_LOG_GROUP"])
to_cloudwatch = logger_to("e2e.cloudwatch", cloudwatch)
to_nowhere = logger_to("e2e.format_only", FormatOnly())


class E2EFailureError(RuntimeError):
    """Raised on request: an unhandled exception is delivered like the other records."""


def body(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Log the records the event asks for; raise if asked."""
    logger = to_nowhere if event.get("sink") == "format_only" else to_cloudwatch
    tag = event.get("tag", "untagged")
    for number in range(event.get("records", 0)):
        logger.info("%s %d", tag, number)
    if event.get("raise"):
        raise E2EFailureError(f"{tag} failed on purpose")
    return {"request_id": context.aws_request_id, "body_end_ns": time.time_ns()}


if DECORATE == "handler":

    @flush_after_invocation(delivery=DELIVERY)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The function Lambda calls, decorated at import."""
        return body(event, context)

elif DECORATE == "helper":
    handler = flush_after_invocation(delivery=DELIVERY)(body)

else:
    decorated: list[Any] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        """Decorates itself on the first call, after Init, as a lazily configured function would."""
        if not decorated:

            def itself(event: dict[str, Any], context: Any) -> dict[str, Any]:
                return body(event, context)

            functools.update_wrapper(itself, handler)  # it is the function Lambda calls
            decorated.append(flush_after_invocation(delivery=DELIVERY)(itself))
        return decorated[0](event, context)  # type: ignore[no-any-return]
