"""A Lambda function that ships JSON through the library, on the root logger and a child logger.

Copied as ``handler.py`` into a task directory; the library comes from the unzipped layer only.
With ``E2E_RUNTIME_COPY=off`` the records our handler ships are kept out of the runtime's own
output (the function's log group); everything else still goes there.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from aws_cloudwatch_logs_handler import (
    CloudWatchLogsHandler,
    JsonFormatter,
    bind,
    clear_bound,
    flush_after_invocation,
    lambda_log_level,
    lambda_runtime_copy,
)

cloudwatch = CloudWatchLogsHandler(os.environ["E2E_LOG_GROUP"], level=lambda_log_level())
cloudwatch.setFormatter(JsonFormatter(static_fields={"service": "e2e"}))
logging.getLogger().addHandler(cloudwatch)  # after the runtime's own handler, as users add it

# A child logger that does not propagate: no runtime filter sets the request id on its records.
isolated = logging.getLogger("e2e.isolated")
isolated.propagate = False
isolated.addHandler(cloudwatch)

if os.environ.get("E2E_RUNTIME_COPY") == "off":
    lambda_runtime_copy(enabled=False)


@flush_after_invocation
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Log through both loggers with a bound field and an extra one, and one excluded record."""
    clear_bound()
    bind(tag=event["tag"])
    logging.getLogger("e2e.root").info("via root", extra={"n": 1})
    logging.getLogger("e2e.root").debug("below the configured level")
    isolated.warning("via child")
    logging.getLogger("botocore.e2e").warning("%s not ours", event["tag"])
    return {"request_id": context.aws_request_id}
