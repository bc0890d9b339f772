"""Where a queue's arrays live in memory: the same address before and after appends means they
never moved (no fresh memory, no copy) while the events went in."""

from __future__ import annotations

from array import array


def addresses(*arrays: array[int]) -> tuple[int, ...]:
    """The address of each array's memory."""
    return tuple(values.buffer_info()[0] for values in arrays)
