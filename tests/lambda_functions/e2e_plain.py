"""A Lambda function that logs through the library with the standard `logging` module.

Copied as ``handler.py`` into a task directory; the library comes from the unzipped layer only.
The log group is named by the test in ``E2E_LOG_GROUP``. Every message is ``"<tag> <n>"`` so the
test knows exactly which records each invocation must have delivered.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import aws_cloudwatch_logs_handler
from aws_cloudwatch_logs_handler import CloudWatchLogsHandler, flush_after_invocation

INIT_RECORDS = int(os.environ.get("E2E_INIT_RECORDS", "3"))

# Created at import, as a function would: no invocation context exists yet (the init phase).
cloudwatch = CloudWatchLogsHandler(os.environ["E2E_LOG_GROUP"])
# The bare message makes the delivered text predictable for the test's exact comparison.
cloudwatch.setFormatter(logging.Formatter("%(message)s"))

logger = logging.getLogger("e2e")
logger.setLevel(logging.INFO)
logger.addHandler(cloudwatch)
# Keep thousands of records out of the runtime's own stdout (the harness's debugging log).
logger.propagate = False

for number in range(INIT_RECORDS):
    logger.info("init %d", number)


class E2EFailureError(RuntimeError):
    """Raised on request, to test that an unhandled exception is delivered then re-raised."""


@flush_after_invocation
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Log ``event["records"]`` records tagged ``event["tag"]``; raise if ``event["raise"]``."""
    tag = event["tag"]
    for number in range(event.get("records", 0)):
        logger.info("%s %d", tag, number)
    if event.get("raise"):
        raise E2EFailureError(f"{tag} failed on purpose")
    return {
        "request_id": context.aws_request_id,
        "library_file": aws_cloudwatch_logs_handler.__file__,
        # Wall clock when the body is done: the decorator's flush runs after this moment.
        "body_end_ns": time.time_ns(),
    }
