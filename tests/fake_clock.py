"""A clock for tests: it reads what the test set, and moves only when the test says so."""

from __future__ import annotations


class FakeClock:
    """A clock that moves only when the test says so (pass it where a clock function goes)."""

    def __init__(self, now_s: float = 1000.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s
