"""A fixture-friendly factory that closes every handler a test creates."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

from aws_cloudwatch_logs_handler import CloudWatchLogsHandler


class HandlerFactory:
    """Creates handlers (and loggers that use them) and closes them all at the end."""

    def __init__(self) -> None:
        self._handlers: list[CloudWatchLogsHandler] = []
        self._loggers: list[tuple[logging.Logger, CloudWatchLogsHandler]] = []

    def __call__(self, log_group: str | None = None, **options: Any) -> CloudWatchLogsHandler:
        handler = CloudWatchLogsHandler(log_group or unique_group(), **options)
        self._handlers.append(handler)
        return handler

    def logger(self, handler: CloudWatchLogsHandler, name: str | None = None) -> logging.Logger:
        """Return a DEBUG logger that sends only to ``handler``."""
        logger = logging.getLogger(name or f"test.{uuid.uuid4().hex[:8]}")
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logger.addHandler(handler)
        self._loggers.append((logger, handler))
        return logger

    def close_all(self) -> None:
        for logger, handler in self._loggers:
            logger.removeHandler(handler)
        for handler in self._handlers:
            handler.close()


def unique_group() -> str:
    """A log group name no other test uses."""
    return f"/test/{uuid.uuid4().hex[:12]}"


def handler_factory() -> Iterator[HandlerFactory]:
    factory = HandlerFactory()
    try:
        yield factory
    finally:
        factory.close_all()
