"""Which of the sender's stretches a slow logging call waited for:
`python -m bench.sender_stretches [--calls N] [--slow-us N]`.

A logging call waits for the GIL while the sender holds it, from the moment the sender takes it
back (after a sleep of `_slices`, a socket call, botocore's hashing) until it lets it go again.
`bench.caller_stalls` counts such waits; this says which work they were. One thread logs flat out
against the local endpoint (deferring its parsing, as `bench.caller_stalls --defer-puts` does),
while the sender marks, by both clocks, each of its checkpoints (`_slices`), each of its sleeps,
each socket send and read (``http.client``), and the start of botocore's hashing of the body.
For every call slower than ``--slow-us``, the sender's longest stretch of CPU inside it is named
by the marks at its two ends; the table counts the slow calls by that stretch. A stretch from
``hashes`` holds the hash itself, on the CPU without the GIL: only its end holds the GIL.

A diagnostic: the marks cost the sender a few microseconds each, and the monkeypatches it needs
(of `_slices.Turns`, ``socket.SocketIO.readinto``, ``http.client.HTTPConnection.send`` and the
lean transport's `send_request` and `read_reply`) stay in this process.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from types import FrameType
from typing import Any

from bench.caller_stalls import warmed_handler
from bench.endpoint import moto_server
from bench.worker import MESSAGE

Mark = tuple[int, int, str]
"""(wall ns, sender CPU ns, what): one moment of the sender's."""

_SKIPPED_FRAMES = frozenset({"pause", "took_gil_back", "_check", "_mark_checkpoint"})


@dataclass
class Marks:
    """The sender's marks, in order; only threads other than the logging one mark."""

    logging_thread: int
    marks: list[Mark]

    def add(self, what: str) -> None:
        if threading.get_ident() != self.logging_thread:
            self.marks.append((time.perf_counter_ns(), time.thread_time_ns(), what))


def _caller_name() -> str:
    """Where a checkpoint was called from: the first frame outside `_slices`."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None and frame.f_code.co_name in _SKIPPED_FRAMES:
        frame = frame.f_back
    if frame is None:
        return "?"
    return f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_code.co_name}"


def _wrap(owner: Any, name: str, before: str, after: str, marks: Marks) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def marked(*args: Any, **kwargs: Any) -> Any:
        marks.add(before)
        try:
            return original(*args, **kwargs)
        finally:
            marks.add(after)

    setattr(owner, name, marked)


def instrument(marks: Marks) -> None:
    """Have the sender mark its checkpoints, sleeps and socket calls into ``marks``."""
    from aws_cloudwatch_logs_handler import _logs_api, _slices, _transport

    check = _slices.Turns._check

    def _mark_checkpoint(self: Any, *args: Any) -> float:
        marks.add("checkpoint " + _caller_name())
        return check(self, *args)

    def marked_sleep(seconds: float) -> None:
        marks.add("sleeps")
        time.sleep(seconds)
        marks.add("woke")

    init = _slices.Turns.__init__

    def init_with_marked_sleep(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, sleep=marked_sleep)

    _slices.Turns._check = _mark_checkpoint  # type: ignore[method-assign,assignment]
    _slices.Turns.__init__ = init_with_marked_sleep  # type: ignore[method-assign]
    install = _logs_api.install_encoded_body_hooks

    def install_and_mark_the_hash(client: Any) -> bool:
        # botocore's signer hashes the body right after ``before-sign``, without the GIL but on
        # the CPU: a mark there keeps that hash out of the stretch that follows.
        client.meta.events.register("before-sign.cloudwatch-logs", lambda **_: marks.add("hashes"))
        return install(client)

    _logs_api.install_encoded_body_hooks = install_and_mark_the_hash
    _wrap(socket.SocketIO, "readinto", "reads the socket", "read the socket", marks)
    _wrap(http.client.HTTPConnection, "send", "sends", "sent", marks)
    _wrap(_transport, "send_request", "sends", "sent", marks)
    _wrap(_transport, "read_reply", "reads the socket", "read the socket", marks)


def longest_stretch(marks: list[Mark], start_ns: int, end_ns: int) -> tuple[str, float] | None:
    """The longest stretch of sender CPU between two marks inside [start, end]: its two ends'
    names and its CPU time in µs; None if the sender marked nothing twice meanwhile."""
    inside = [mark for mark in marks if start_ns <= mark[0] <= end_ns]
    best: tuple[str, float] | None = None
    for (_, cpu_a, what_a), (_, cpu_b, what_b) in pairwise(inside):
        cpu_us = (cpu_b - cpu_a) / 1000
        if best is None or cpu_us > best[1]:
            best = (f"{what_a} -> {what_b}", cpu_us)
    return best


def main(argv: list[str] | None = None) -> int:
    """Log flat out, then print the slow calls by the sender's stretch they waited for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=100_000, help="logging calls (100,000)")
    parser.add_argument("--slow-us", type=float, default=900.0, help="a slow call (900 µs)")
    args = parser.parse_args(argv)
    marks = Marks(threading.get_ident(), [])
    instrument(marks)
    slow: list[tuple[int, int]] = []
    slow_ns = int(args.slow_us * 1000)
    with moto_server(defer_puts=True) as url:
        handler, logger, delivered = warmed_handler(url, "/bench/sender-stretches")
        log = logger.info
        clock = time.perf_counter_ns
        for i in range(args.calls):
            start = clock()
            log(MESSAGE, i)
            end = clock()
            if end - start > slow_ns:
                slow.append((start, end))
        delivered &= handler.flush(timeout_s=60)
        handler.close()
    by_stretch: dict[str, list[float]] = defaultdict(list)
    for start, end in slow:
        found = longest_stretch(marks.marks, start, end)
        name, cpu_us = found if found is not None else ("(no two sender marks inside)", 0.0)
        by_stretch[name].append(cpu_us)
    print(f"{len(slow)} of {args.calls} calls over {args.slow_us:g} µs; each by its longest")
    print("stretch of sender CPU, named by the marks at its ends\n")
    print("| stretch | slow calls | its CPU, median µs | max µs |")
    print("|---|---:|---:|---:|")
    for name, cpus in sorted(by_stretch.items(), key=lambda item: -len(item[1])):
        print(f"| {name} | {len(cpus)} | {statistics.median(cpus):.0f} | {max(cpus):.0f} |")
    print("every record delivered" if delivered else "NOT every record delivered")
    return 0 if delivered else 1


if __name__ == "__main__":
    raise SystemExit(main())
