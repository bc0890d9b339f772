"""Where one process's CPU goes, phase by phase: `python -m bench.phases [--calls N]`.

The table of `bench.run` says how much each contender costs; this says where this handler's cost
is, so that the next change aims at the right phase. One process logs ``--calls`` records through
the default handler to a moto server (in a process of its own), then flushes. Each phase of the
sender is timed with the thread CPU clock by wrapping the function that does it, and the calling
thread's CPU is compared with two format-only handlers' over the same calls: one formats as
`logging.Formatter` does, the other as this handler does (`PlainFormat`, the time made once a
second), so the difference from the second is what queueing a record costs the caller. On
Linux each phase's page faults are counted too (the thread's own, ``RUSAGE_THREAD``): a fault
costs microseconds holding the GIL, and a phase that takes fresh memory for every batch shows
here, where a profiler run in a process without boto3 (whose large frees make glibc keep memory
mapped) misleads. A
profiler, not a contest: the wrappers cost a little, so the figures compare phases, not handlers.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import resource
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.endpoint import fake_aws_environment, moto_server
from bench.worker import FORMAT, MESSAGE

_QUEUES = "aws_cloudwatch_logs_handler._queues"
_PHASES: tuple[tuple[str, str, str], ...] = (
    # (label, module, attribute path): the functions that do each phase of a delivery.
    ("detach (under the lock)", _QUEUES, "HandlerQueues.detach"),
    ("cut into batches", "aws_cloudwatch_logs_handler._sender", "cut_batches"),
    ("encode the body", "aws_cloudwatch_logs_handler._logs_api", "encode_put_log_events"),
    ("botocore: sign (SHA-256)", "botocore.auth", "SigV4Auth.add_auth"),
    ("botocore: HTTP send + reply", "botocore.endpoint", "Endpoint._send"),
    ("botocore: whole call", "botocore.client", "BaseClient._make_api_call"),
    (
        "settle (under the lock)",
        "aws_cloudwatch_logs_handler._queues",
        "HandlerQueues.settle_first",
    ),
)


_FAULTS_PER = 10_000
"""Page faults are given per this many events: a full batch's."""
_THREAD_USAGE: int | None = getattr(resource, "RUSAGE_THREAD", None)
"""The calling thread's own resource usage, where the system gives it (Linux)."""


def _thread_faults() -> int:
    """Page faults the calling thread has taken (0 where the system does not count them)."""
    if _THREAD_USAGE is None:
        return 0
    usage = resource.getrusage(_THREAD_USAGE)
    return usage.ru_minflt + usage.ru_majflt


@contextmanager
def _timed(totals: dict[str, float], faults: dict[str, int]) -> Iterator[None]:
    """Wrap every phase's function to add its thread CPU time to ``totals`` and its page faults
    to ``faults``; unwrap after."""
    import importlib

    undo: list[Callable[[], None]] = []
    for label, module_name, path in _PHASES:
        owner: Any = importlib.import_module(module_name)
        *parents, name = path.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        original = getattr(owner, name)

        def timed(*args: Any, _original: Any = original, _label: str = label, **kw: Any) -> Any:
            started, faulted = time.thread_time(), _thread_faults()
            try:
                return _original(*args, **kw)
            finally:
                totals[_label] += time.thread_time() - started
                faults[_label] += _thread_faults() - faulted

        setattr(owner, name, functools.wraps(original)(timed))
        undo.append(functools.partial(setattr, owner, name, original))
    try:
        yield
    finally:
        for restore in undo:
            restore()


def logger_for(handler: logging.Handler) -> logging.Logger:
    """A logger of its own for ``handler``, with the benchmarks' formatter."""
    logger = logging.getLogger(f"bench.phases.{id(handler)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    return logger


def _caller_cpu_s(logger: logging.Logger, calls: int) -> float:
    """Thread CPU of ``calls`` logging calls."""
    started = time.thread_time()
    for i in range(calls):
        logger.info(MESSAGE, i)
    return time.thread_time() - started


def main(argv: list[str] | None = None) -> int:
    """Measure, then print CPU per event for the caller and for each phase of the sender."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=100_000)
    args = parser.parse_args(argv)
    from bench.peers import FormatOnceASecondHandler, FormatOnlyHandler

    floors: dict[str, float] = {}
    for label, floor_handler in (
        ("format-only handler", FormatOnlyHandler()),
        ("format, time once a second (as this handler formats)", FormatOnceASecondHandler()),
    ):
        floor = logger_for(floor_handler)
        floor.info("warm-up")
        floors[label] = _caller_cpu_s(floor, args.calls)
    totals: dict[str, float] = defaultdict(float)
    faults: dict[str, int] = defaultdict(int)
    with moto_server() as url:
        os.environ.update(fake_aws_environment(url))
        from aws_cloudwatch_logs_handler import CloudWatchLogsHandler

        handler = CloudWatchLogsHandler("/bench/phases", endpoint_url=url)
        logger = logger_for(handler)
        logger.info("warm-up")
        handler.flush(timeout_s=30)  # the client and the stream exist before the window
        with _timed(totals, faults):
            process_started = time.process_time()
            caller_s = _caller_cpu_s(logger, args.calls)
            flushed = handler.flush(timeout_s=120)
            process_s = time.process_time() - process_started
        handler.close()
    per_event = 1e6 / args.calls
    print(f"{args.calls:,} calls, then flush() ({'delivered' if flushed else 'NOT delivered'})")
    faults_scale = _FAULTS_PER / args.calls
    print(f"| what | CPU per event (µs) | page faults per {_FAULTS_PER:,} events |")
    print("|---|---:|---:|")
    for label, floor_s in floors.items():
        print(f"| caller, {label} | {floor_s * per_event:.2f} | |")
    print(f"| caller, this handler | {caller_s * per_event:.2f} | |")
    for label, _, _ in _PHASES:
        faulted = "-" if _THREAD_USAGE is None else f"{faults[label] * faults_scale:.1f}"
        print(f"| sender: {label} | {totals[label] * per_event:.3f} | {faulted} |")
    print(f"| whole process, this handler | {process_s * per_event:.2f} | |")
    return 0 if flushed else 1


if __name__ == "__main__":
    raise SystemExit(main())
