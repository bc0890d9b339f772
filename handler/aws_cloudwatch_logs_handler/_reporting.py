"""The side channel: how the handler tells about its own problems without logging them.

Reporting through `logging` could come back into this very handler (it may sit on the root
logger) and loop; so problems go to a callback the user passes, or to standard error, rate-limited
so that an outage does not flood it. Nothing here ever raises.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Final

ProblemCallback = Callable[[str], None]
"""Receives one line of text per problem; it must not log through the handler it watches."""

PREFIX: Final = "aws_cloudwatch_logs_handler: "
_WINDOW_S: Final = 60.0
_MAX_PER_WINDOW: Final = 10


def write_to_stderr(message: str) -> None:
    """Write one line to the real standard error, even if ``sys.stderr`` was replaced or closed."""
    stream = sys.stderr if sys.stderr is not None else sys.__stderr__
    try:
        if stream is not None:
            stream.write(PREFIX + message + "\n")
            stream.flush()
    except (OSError, ValueError):  # closed at interpreter exit: nowhere left to say it
        pass


class Reporter:
    """Hands problem reports to a callback, at most ``_MAX_PER_WINDOW`` a minute per kind."""

    def __init__(self, callback: ProblemCallback | None = None) -> None:
        self._callback = callback if callback is not None else write_to_stderr
        self._lock = threading.Lock()
        self._window: dict[str, tuple[float, int]] = {}

    def after_fork(self) -> None:
        """Give a forked child its own lock: the parent's sender may have held this one."""
        self._lock = threading.Lock()

    def report(self, kind: str, message: str, *, always: bool = False) -> None:
        """Report ``message``, unless ``kind`` was reported too often lately (unless ``always``)."""
        now = time.monotonic()
        with self._lock:
            start, count = self._window.get(kind, (now, 0))
            if now - start > _WINDOW_S:
                start, count = now, 0
            self._window[kind] = (start, count + 1)
        if not always and count >= _MAX_PER_WINDOW:
            if count == _MAX_PER_WINDOW:
                message = f"{message} (further '{kind}' reports muted for a minute)"
            else:
                return
        try:
            self._callback(message)
        except Exception:
            write_to_stderr(f"problem callback raised; the report was: {message}")
