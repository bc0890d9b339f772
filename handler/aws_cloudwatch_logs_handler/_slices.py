"""Letting logging threads run while the sender works through a batch of 10,000 events.

CPython hands the GIL to a waiting thread only when the holder releases it or after the switch
interval (5 ms by default). The sender's work on one batch (cutting it, encoding it) is a few
milliseconds of pure computation, so done in one stretch it would stall a logging call for up to
the switch interval. Instead the sender works in slices of `SLICE_EVENTS` events and calls
`pause` between them: a short sleep that releases the GIL, so a logging call waits at most one
slice (a fraction of a millisecond). Only the sender pauses, never a logging call, and never while
it holds its lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

SLICE_EVENTS: Final = 1_024
"""Events handled between two pauses: about half a millisecond of work holding the GIL."""
PAUSE_S: Final = 0.00002
"""A sleep, not ``sleep(0)``: a thread waiting for the GIL must have time to wake and take it."""

Pause = Callable[[], None]
"""What is called between slices; tests pass a recorder or a no-op."""


def pause() -> None:
    """Release the GIL for a moment, so a thread waiting for it runs."""
    time.sleep(PAUSE_S)
