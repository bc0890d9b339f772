"""What the spool's journal costs a logging call: `python -m bench.spool_frames [--frames N]`.

Writes ``--frames`` frames (one bench line each) through `Spool.append_one`, as a spooling
handler's logging call does, first into a new journal, then into the same journal once emptied
(its pages mapped already), and reports the thread CPU per frame and the page faults each pass
took. Then it times the check the sender makes, under its lock, that a settled batch is the next
frames in order. Last, the sender's own work for the spool behind a thread that logs flat out
(``--behind`` batches of 10,000 records waiting while one is settled): the thread CPU per record
of `Spool.settle` and `Spool.tidy`, the bytes the moves to the other journal copied per byte
settled, and the largest journal file. A profiler of one module, not a contest: no handler, no
sender, no endpoint.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aws_cloudwatch_logs_handler._events import Event
from aws_cloudwatch_logs_handler._packed import PackedEvents
from aws_cloudwatch_logs_handler._reporting import Reporter
from aws_cloudwatch_logs_handler._spool import NamedStream, Spool, _Runs, encode_frame
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


@dataclass
class Behind:
    """What `settle_behind` saw: each move's copied bytes, and what it settled."""

    waiting: PackedEvents
    moves_copied: list[int] = field(default_factory=list)
    settled_bytes: int = 0
    settled_records: int = 0
    work_ns: int = 0
    """Thread CPU of `Spool.settle` and `Spool.tidy`."""


def settle_behind(
    spool: Spool,
    stream: NamedStream,
    batches: list[list[Event]],
    behind: int,
    after_each: Callable[[int, PackedEvents], None] | None = None,
) -> Behind:
    """Journal ``batches`` one at a time, as a thread logging flat out does, and settle the oldest
    once ``behind`` more wait, tidying after each, as a sender that far behind does; call
    ``after_each(batch number, what waits)`` after each batch."""
    seen = Behind(PackedEvents())
    move = spool._rotate

    def counted_move() -> None:  # a move copies what waits past the acknowledged offset
        assert spool._journal is not None
        seen.moves_copied.append(spool._journal.size - spool._acked)
        move()

    spool._rotate = counted_move  # type: ignore[method-assign]
    sizes = [sum(len(encode_frame(stream.name, event)) for event in batch) for batch in batches]
    for number, batch in enumerate(batches):
        seen.waiting.extend(batch, spool.append(stream, batch))
        if number >= behind:
            delivered = seen.waiting.detach(len(batches[number - behind]))  # the oldest batch
            started = time.thread_time_ns()
            spool.settle(stream, delivered)
            spool.tidy()
            seen.work_ns += time.thread_time_ns() - started
            seen.settled_bytes += sizes[number - behind]
            seen.settled_records += len(delivered)
        if after_each is not None:
            after_each(number, seen.waiting)
    return seen


def _sender_behind(messages: list[str], behind: int) -> tuple[float, float, float]:
    """`settle_behind` with batches of 10,000 ``messages``: the thread CPU per record of settling
    and tidying (ns), the bytes the moves copied per byte settled, and the largest file (MiB)."""
    with tempfile.TemporaryDirectory(prefix="bench-spool-behind-") as directory:
        spool = Spool(Path(directory), group="/bench/spool-behind", reporter=Reporter())
        batches = [
            [Event(1 + i, message, len(message) + 26) for i, message in enumerate(chunk)]
            for chunk in (messages[i : i + _BATCH] for i in range(0, len(messages), _BATCH))
        ]
        largest = 0

        def measure_files(number: int, waiting: PackedEvents) -> None:
            nonlocal largest
            largest = max(largest, *(path.stat().st_size for path in Path(directory).iterdir()))

        seen = settle_behind(spool, _Stream(_STREAM), batches, behind, measure_files)
        return (
            seen.work_ns / max(1, seen.settled_records),
            sum(seen.moves_copied) / max(1, seen.settled_bytes),
            largest / (1 << 20),
        )


def main(argv: list[str] | None = None) -> int:
    """Measure, then print a table: a new journal, a mapped one, and the settle's check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--behind", type=int, default=3, help="batches waiting (default 3)")
    parser.add_argument("--behind-records", type=int, default=300_000)
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
    messages = [
        f"2026-12-01 12:00:00,000 INFO bench.ours {MESSAGE % i}" for i in range(args.behind_records)
    ]
    work_ns, copies, largest_mib = _sender_behind(messages, args.behind)
    print(
        f"behind a thread logging flat out ({args.behind_records:,} records, {args.behind} "
        f"batches of {_BATCH:,} waiting): settle and tidy {work_ns:.0f} ns a record; moves "
        f"copied {copies:.2f} bytes per byte settled; largest journal file {largest_mib:.1f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
