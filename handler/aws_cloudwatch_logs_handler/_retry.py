"""When to try again after a failed delivery: exponential backoff with jitter, a small pure object.

Kept apart from the sender that follows it (as urllib3 keeps its ``Retry`` apart from its pool),
so that the schedule can be read, tested and changed on its own.
https://aws.amazon.com/builders-library/timeouts-retries-and-backoff-with-jitter/
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Final

from ._forks import ProcessMark

IMMEDIATE_RECREATIONS: Final = 2
"""A lost group or stream is created again at once this many times in a row before backing off:
the next attempt itself is the repair (a group deleted during an outage, an endpoint restarted)."""


class FreshAfterFork(random.Random):
    """A generator of our own that a forked child seeds afresh at its first draw.

    Python reseeds only the `random` module's global generator in a fork's child; any other
    `random.Random` is copied with its state, so every worker forked from one parent (a Pool,
    gunicorn, uWSGI) would draw the same jitter and retry in lockstep. A `ProcessMark` is
    checked at each draw, so a fork made below Python's hooks (``fork()`` from C) is covered too.
    """

    def __init__(self) -> None:
        super().__init__()
        self._seeded_here = ProcessMark()
        self._seeded_here.set()

    def random(self) -> float:
        """Return the next float in [0, 1), after seeding afresh if this is a new process."""
        if not self._seeded_here.here():
            self._seeded_here.set()
            self.seed()  # from os.urandom: unlike the parent's and every sibling's
        return super().random()


@dataclass(frozen=True)
class RetrySchedule:
    """Exponential backoff with "equal jitter": half the ceiling, plus up to half again at random.

    The jitter comes from a generator of our own: a library must not draw from (and so disturb)
    the application's global `random` state. A forked child draws from a fresh seed
    (`FreshAfterFork`); a generator passed in (a seeded one, for tests) is used as it is.
    """

    first_s: float = 0.2
    max_s: float = 20.0
    max_while_stopping_s: float = 0.5
    """At exit or SIGTERM the time is bounded: retry often rather than wait the outage out."""
    jitter: random.Random = field(default_factory=FreshAfterFork, compare=False, repr=False)

    def delay_s(self, attempts: int, *, stopping: bool = False) -> float:
        """Seconds to wait after the ``attempts``-th failure in a row (1 for the first)."""
        cap = self.max_while_stopping_s if stopping else self.max_s
        ceiling = min(cap, self.first_s * 2.0 ** min(attempts, 16))
        return ceiling / 2 + self.jitter.uniform(0, ceiling / 2)

    def delay_after_loss_s(self, recreations: int, attempts: int, *, stopping: bool) -> float:
        """Seconds to wait after the group or stream was found missing ``recreations`` times."""
        if recreations <= IMMEDIATE_RECREATIONS:
            return 0.0
        return self.delay_s(attempts, stopping=stopping)

    @staticmethod
    def worth_reporting(attempts: int) -> bool:
        """Say it when a stream starts failing, then ever more rarely while it goes on."""
        return attempts == 1 or (attempts >= 8 and attempts & (attempts - 1) == 0)
