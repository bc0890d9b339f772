"""Ship Python log records to Amazon CloudWatch Logs, from anywhere and from AWS Lambda.

    import logging
    from aws_cloudwatch_logs_handler import CloudWatchLogsHandler

    logging.getLogger().addHandler(CloudWatchLogsHandler("/my/app", ttl=30))

The handler never blocks or raises into the logging call: one background sender per process
batches records to AWS's limits, retries, and counts what it could not deliver (`stats`).
In Lambda, decorate the function with `flush_after_invocation`.
"""

from __future__ import annotations

from ._context import bind, bound, bound_fields, clear_bound, unbind
from ._errors import CloudWatchLogsHandlerError, ConfigurationError
from ._events import join_parts
from ._handler import CloudWatchLogsHandler
from ._json_formatter import JsonFormatter
from ._lambda import flush_after_invocation, invocation_scope
from ._lambda_controls import lambda_runtime_copy
from ._lambda_level import lambda_log_level
from ._metrics import DeliveryMetrics
from ._retention import RETENTION_DAYS, RetentionDays, validate_retention_days
from ._stats import DROP_REASONS, DeliveryStats, DropReason
from ._version import __version__

__all__ = [
    "DROP_REASONS",
    "RETENTION_DAYS",
    "CloudWatchLogsHandler",
    "CloudWatchLogsHandlerError",
    "ConfigurationError",
    "DeliveryMetrics",
    "DeliveryStats",
    "DropReason",
    "JsonFormatter",
    "RetentionDays",
    "__version__",
    "bind",
    "bound",
    "bound_fields",
    "clear_bound",
    "flush_after_invocation",
    "invocation_scope",
    "join_parts",
    "lambda_log_level",
    "lambda_runtime_copy",
    "unbind",
    "validate_retention_days",
]
