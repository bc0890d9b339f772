"""The level Lambda's advanced logging controls set for a function (``AWS_LAMBDA_LOG_LEVEL``).

A leaf module (standard library only), so that the handler can read the level when it is
constructed without importing what imports the handler.
https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Final

LOG_LEVEL_VARIABLE: Final = "AWS_LAMBDA_LOG_LEVEL"
# Lambda's level names (its configuration offers TRACE and FATAL), as the runtime maps them.
_LEVELS: Final = {
    "TRACE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "CRITICAL": logging.CRITICAL,
}


def lambda_log_level(environ: Mapping[str, str] | None = None) -> int:
    """Return the level Lambda's logging controls set (``AWS_LAMBDA_LOG_LEVEL``), or NOTSET.

    ``TRACE`` maps to DEBUG and ``FATAL`` to CRITICAL, as Lambda's runtime maps them; an unset
    or unknown value gives ``logging.NOTSET`` (ship everything the loggers let through).
    Pass it as a handler's level so that records below the function's configured level are
    not shipped: ``CloudWatchLogsHandler(group, level=lambda_log_level())``.
    """
    value = (os.environ if environ is None else environ).get(LOG_LEVEL_VARIABLE, "")
    return _LEVELS.get(value.strip().upper(), logging.NOTSET)
