"""What the spool's journal costs a logging call: `python -m bench.spool_frames [--frames N]`.

Writes ``--frames`` frames (one bench line each) through `Spool.append_one`, as a spooling
handler's logging call does, first into a new journal, then into the same journal once emptied
(its pages mapped already), and reports the thread CPU per frame and the page faults each pass
took. Then it times the check the sender makes, under its lock, that a settled batch is the next
frames in order. A profiler of one module, not a contest: no handler, no sender, no endpoint.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aws_cloudwatch_logs_handler._reporting import Reporter
from aws_cloudwatch_logs_handler._spool import Spool, _Runs
from bench.worker import MESSAGE

_STREAM = "stream/2026/12/01/1200/" + "0" * 36  # a dated-UUID name's length
_BATCH = 10_000  # PutLogEvents' most events, the longest batch the sender settles
_CHECKS = 50


@dataclass(frozen=True)
class _Stream:
    """Stands for a stream's queue: the journal reads only its name."""

    name: str


def _pass(append: Callable[[_Stream, int, str], int], frames: list[str]) -> tuple[float, int]:
    """Append every frame; return the thread CPU per frame (ns) and the page faults taken."""
    stream, timestamp_ms = _Stream(_STREAM), int(time.time() * 1000)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    started = time.thread_time_ns()
    for message in frames:
        append(stream, timestamp_ms, message)
    per_frame = (time.thread_time_ns() - started) / len(frames)
    return per_frame, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


def main(argv: list[str] | None = None) -> int:
    """Measure, then print a table: a new journal, a mapped one, and the settle's check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--frames", type=int, default=20_000)
    args = parser.parse_args(argv)
    frames = [f"2026-12-01 12:00:00,000 INFO bench.ours {MESSAGE % i}" for i in range(args.frames)]
    with tempfile.TemporaryDirectory(prefix="bench-spool-frames-") as directory:
        spool = Spool(Path(directory), group="/bench/spool-frames", reporter=Reporter())
        new = _pass(spool.append_one, frames)
        journal = spool._journal
        assert journal is not None  # opened by the first frame
        journal.empty()  # as when every frame is settled: zeroed in place, pages kept mapped
        mapped = _pass(spool.append_one, frames)
        journal_bytes = journal.size

    runs, first = _Runs(), 1_000_000
    batch = array("q", range(first, first + _BATCH))
    check_us = []
    for _ in range(_CHECKS):
        started = time.perf_counter_ns()
        runs.match(batch, first)
        check_us.append((time.perf_counter_ns() - started) / 1000)

    print(f"{args.frames:,} frames of {journal_bytes / args.frames:.0f} bytes, `Spool.append_one`")
    print("| journal | CPU per frame (ns) | page faults |")
    print("|---|---:|---:|")
    print(f"| new file | {new[0]:.0f} | {new[1]:,} |")
    print(f"| emptied, pages mapped | {mapped[0]:.0f} | {mapped[1]:,} |")
    print(
        f"settle's check that {_BATCH:,} numbers run in order: "
        f"{statistics.median(check_us):.0f} us (median of {_CHECKS})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
