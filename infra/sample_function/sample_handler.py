"""The sample function: log through CloudWatchLogsHandler, delivered before each return.

The module is not called ``aws_cloudwatch_logs_handler`` (nor ``handler``-like the library):
Lambda puts /var/task before /opt/python on sys.path, so such a name would shadow the layer.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from aws_cloudwatch_logs_handler import CloudWatchLogsHandler, flush_after_invocation

_LOGGER = logging.getLogger("sample")
_LOGGER.setLevel(logging.INFO)
# The stack creates the group and the writer policy cannot create one, so never try.
_LOGGER.addHandler(CloudWatchLogsHandler(os.environ["SAMPLE_LOG_GROUP"], create_log_group=False))
_LOGGER.info("sample function initialised")


@flush_after_invocation
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Log one line per item of ``event["messages"]`` (or a greeting) and say how many."""
    messages = event.get("messages") or ["hello from the sample function"]
    for message in messages:
        _LOGGER.info("%s", message)
    return {"logged": len(messages), "request_id": getattr(context, "aws_request_id", None)}
