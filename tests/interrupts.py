"""Interrupting a call at a chosen line, as Ctrl-C's KeyboardInterrupt can, deterministically.

A real signal lands where it happens to; a trace function raising at a line's start reaches
every line in turn. Only the calling thread is traced, so the sender runs as it always does.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import CodeType, FrameType
from typing import Any


@contextmanager
def interrupted_at(code: CodeType, line: int) -> Iterator[list[int]]:
    """Raise KeyboardInterrupt once, when this thread reaches ``line`` of ``code``; yields
    [1] once it did, [0] until then."""
    fired = [0]

    def in_code(frame: FrameType, event: str, arg: object) -> Any:
        if event == "line" and frame.f_lineno == line and not fired[0]:
            fired[0] = 1
            raise KeyboardInterrupt
        return in_code

    def calls(frame: FrameType, event: str, arg: object) -> Any:
        return in_code if frame.f_code is code else None

    sys.settrace(calls)
    try:
        yield fired
    finally:
        sys.settrace(None)
