"""Lambda's advanced logging controls: the copy of each record that Lambda's runtime writes to
the function's own log group (the configured level is read in `_lambda_level`).

Lambda's runtime (awslambdaric) adds its own handler to the root logger, writing to
``/aws/lambda/<function>``, and sets the root logger's level from ``AWS_LAMBDA_LOG_LEVEL``. A
record that our handler ships also reaches that handler: it is ingested twice, in two groups.
https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html
"""

from __future__ import annotations

import logging
from typing import Final

from ._handler import CloudWatchLogsHandler

_RUNTIME_MODULE_PREFIX: Final = "awslambdaric"


class _SkipShippedRecords(logging.Filter):
    """On the runtime's handler: refuse records that one of our handlers ships anyway."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            return not _shipped_by_us(record)
        except Exception:  # never lose a record from the function's own group to a bug here
            return True


_SKIP_SHIPPED: Final = _SkipShippedRecords()


def _shipped_by_us(record: logging.LogRecord) -> bool:
    """Whether a `CloudWatchLogsHandler` on the record's way up the logger tree takes it."""
    logger = logging.root.manager.loggerDict.get(record.name)
    node: logging.Logger | None = logger if isinstance(logger, logging.Logger) else logging.root
    while node is not None:
        for handler in node.handlers:
            if (
                isinstance(handler, CloudWatchLogsHandler)
                and not handler._closed
                and record.levelno >= handler.level
                and not handler._is_excluded(record.name)
                and handler.filter(record)
            ):
                return True
        node = node.parent if node.propagate else None
    return False


def _runtime_handlers() -> list[logging.Handler]:
    return [
        handler
        for handler in logging.root.handlers
        if type(handler).__module__.startswith(_RUNTIME_MODULE_PREFIX)
    ]


def lambda_runtime_copy(*, enabled: bool) -> int:
    """Choose whether records our handlers ship also go to the function's own log group.

    Default (without a call): they do, as they did before our handler was added. Lambda's own
    group is where its console, ``sam logs`` and the runtime's START/END/REPORT lines are, and
    it keeps a copy when a delivery of ours fails; the price is that every such record is
    ingested twice. ``enabled=False`` keeps those records out of the runtime's handler (records
    our handlers do not take, such as botocore's or those below their level, still go there).
    Call it at import time, after adding the handlers; it can be called again to switch back.

    Returns:
        How many runtime handlers were changed: 0 outside Lambda.
    """
    runtime_handlers = _runtime_handlers()
    for handler in runtime_handlers:
        if enabled:
            handler.removeFilter(_SKIP_SHIPPED)
        else:
            handler.addFilter(_SKIP_SHIPPED)  # addFilter ignores a filter it already has
    return len(runtime_handlers)
