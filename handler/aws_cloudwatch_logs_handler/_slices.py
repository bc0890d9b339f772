"""Letting logging threads run while the sender works through a batch of 10,000 events.

CPython hands the GIL to a waiting thread only when the holder releases it or after the switch
interval (5 ms by default). The sender's work on one batch (cutting it, encoding it, botocore's
signing) is a few milliseconds of pure computation, so done in one stretch it would stall a
logging call for up to the switch interval. Instead the sender works in slices of `SLICE_EVENTS`
events and calls `pause` between them.

A pause is a checkpoint, not always a sleep: the sender sleeps (releasing the GIL) only once it
has run `TURN_S` of CPU time since its last sleep. The sleep is what costs: when a logging thread
is busy, the sender waits a whole switch interval to get the GIL back, so sleeping after every
slice (a tenth of a millisecond of work) made a batch take over 80 ms under load, longer than the
logging thread took to fill the next one. Turns of `TURN_S` keep each stall of a logging call
under a millisecond while the sender keeps pace. Only the sender pauses, never a logging call,
and never while it holds its lock.

When the sender falls behind all the same (a thread logging flat out for many seconds gets about
ten times the sender's share of the GIL), its turns grow to `BEHIND_TURN_S` until it has caught
up: a logging call then waits a turn's length (under a millisecond) at times, rather than the
queue growing until its bound drops records.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Final, Protocol

SLICE_EVENTS: Final = 512
"""Events handled between two checkpoints: about a tenth of a millisecond of work."""
TURN_S: Final = 0.0005
"""CPU time the sender runs between two sleeps. A logging call that comes in meanwhile waits at
most this plus one slice (or one stretch of botocore's work between two of its hooks)."""
BEHIND_TURN_S: Final = 0.0008
"""The sender's turn while a full batch already waits behind the one it sends. Against a thread
logging flat out, which keeps the GIL a switch interval (5 ms) after each of the sender's sleeps,
that is a seventh of the GIL: twice what the sender needs (its 0.45 us an event against the
logging call's 6.5 us, measured by `bench.phases`), and short enough that the logging call that
waits for a turn still waits under a millisecond (2 ms turns made the bench's caller max exceed
1 ms in some repetitions)."""
PAUSE_S: Final = 0.00002
"""A sleep, not ``sleep(0)``: a thread waiting for the GIL must have time to wake and take it."""


class Pause(Protocol):
    """What the encoder and the batch cutter call between slices (`pause` by default); tests
    pass a recorder."""

    def __call__(self, ahead_s: float = ...) -> None: ...


OFF_CPU_S: Final = 0.0002
"""Time off the CPU between two checkpoints that shows the thread let go of the GIL there: a
thread that waits for the GIL back, while a logging thread holds it, waits whole milliseconds."""


class Turns(threading.local):
    """When the thread that calls `pause` last let the GIL go, by its own CPU clock.

    Thread CPU time, not wall time: the time a thread spends blocked (on the network, on its
    lock, waiting for the GIL) holds nobody up, so it does not use up a turn. A thread also lets
    the GIL go without a sleep of ours: botocore hashing the body, a socket call. A checkpoint
    that finds the thread was off the CPU since the one before (waiting to take the GIL back)
    counts its turn from that checkpoint at the earliest, so that it does not sleep for a turn
    that a logging thread never waited for: each sleep costs a logging call one more wait.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.thread_time,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self.turn_s = TURN_S
        """The length of this thread's turns (`TURN_S`, or `BEHIND_TURN_S` while behind)."""
        self._checked_cpu_s = clock()
        self._checked_wall_s = wall_clock()
        """The last checkpoint, by both clocks: wall time beyond CPU time since is time off."""
        self._turn_ends = self._checked_cpu_s + self.turn_s

    def pause(self, ahead_s: float = 0.0) -> None:
        """Release the GIL for a moment if this thread has held it a whole turn.

        Args:
            ahead_s: how long the work up to the next checkpoint runs without one: the thread
                sleeps now unless that work too fits in what is left of its turn.
        """
        cpu_s = self._check(self._checked_cpu_s)
        if cpu_s + ahead_s < self._turn_ends:
            return
        self._sleep(PAUSE_S)
        self._checked_cpu_s, self._checked_wall_s = self._clock(), self._wall_clock()
        self._turn_ends = self._checked_cpu_s + self.turn_s

    def took_gil_back(self, held_s: float = 0.0) -> None:
        """A checkpoint just after a call that lets the GIL go (botocore hashing the body,
        waiting for a reply): if the thread had to wait to take it back, a turn starts then.

        Args:
            held_s: CPU time the thread has run since it took the GIL back, where the first
                checkpoint after it comes later (reading a reply is urllib3's work, and the
                first hook after it is botocore's ``before-parse``): the turn started that long
                before this checkpoint.
        """
        self._check(None, held_s)

    def _check(self, held_since_cpu_s: float | None, held_s: float = 0.0) -> float:
        """Mark a checkpoint; if the thread was off the CPU since the last one, its turn starts
        no earlier than ``held_since_cpu_s`` (None: ``held_s`` before now). Returns the CPU
        clock."""
        cpu_s, wall_s = self._clock(), self._wall_clock()
        off_s = (wall_s - self._checked_wall_s) - (cpu_s - self._checked_cpu_s)
        if off_s >= OFF_CPU_S:
            start_s = cpu_s - held_s if held_since_cpu_s is None else held_since_cpu_s
            self._turn_ends = max(self._turn_ends, start_s + self.turn_s)
        self._checked_cpu_s, self._checked_wall_s = cpu_s, wall_s
        return cpu_s


_TURNS: Final = Turns()


def take_turns(*, behind: bool) -> None:
    """Set the calling thread's turns: longer while it is behind (`BEHIND_TURN_S`)."""
    _TURNS.turn_s = BEHIND_TURN_S if behind else TURN_S


def took_gil_back(held_s: float = 0.0) -> None:
    """A checkpoint right after a call that lets the GIL go (`Turns.took_gil_back`)."""
    _TURNS.took_gil_back(held_s)


def pause(ahead_s: float = 0.0) -> None:
    """Let a thread waiting for the GIL run, if the calling thread has had its turn (`Turns`)."""
    _TURNS.pause(ahead_s)
