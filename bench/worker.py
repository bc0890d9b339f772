"""Run one contender in this process, measure it, and print one JSON line.

`python -m bench.worker --contender NAME --mode deliver|outage --endpoint URL --group G --calls N`

Each contender gets a fresh process so that no import, thread or allocation of one can tax
another, and so that process CPU and peak RSS belong to one handler only.

deliver: one warm-up record and a flush() first (one-off set-up, threads, clients, group and
stream, are then out of the window for every contender alike), then N timed `logger.info` calls,
a flush(), and a reader polling the endpoint until it sees every event.
latency: N records and no flush(); a reader polls until it sees them all (or a deadline passes).
outage: the endpoint refuses connections; after a warm-up record (and, for a handler that builds
its client lazily, its first failed attempt), N records are logged, the rise of peak memory is
read, and the process exits at once without waiting for delivery.
"""

from __future__ import annotations

import argparse
import array
import gc
import json
import logging
import posix
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.calls import PutLogEventsCounter, minimum_calls, sent_size
from bench.endpoint import REGION, visible_messages
from bench.peers import CONTENDERS, Contender, UnavailableError, set_up

RESULT_PREFIX = "BENCH-RESULT "
"""Marks the worker's one result line, whatever else a library prints to stdout."""

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
"""One formatter for every contender: a typical line, so the floor is what a real user pays."""

MESSAGE = "message %d"
PERCENTILES: tuple[float, ...] = (50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100)
"""Caller latency percentiles each worker reports, for the distribution plot."""
_VISIBLE_TIMEOUT_S = 120.0
_VISIBLE_POLL_S = 0.01
_DEADLINE_CHECK_EVERY = 256


def _percentile(sorted_ns: list[int], fraction: float) -> float:
    """Nearest-rank percentile of sorted nanoseconds, in microseconds."""
    index = min(len(sorted_ns) - 1, max(0, round(fraction * (len(sorted_ns) - 1))))
    return sorted_ns[index] / 1000


def _caller_figures(samples: array.array[int], prefix: str) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        f"{prefix}_p50_us": _percentile(ordered, 0.50),
        f"{prefix}_p99_us": _percentile(ordered, 0.99),
        f"{prefix}_p999_us": _percentile(ordered, 0.999),
        f"{prefix}_max_us": ordered[-1] / 1000,
        f"{prefix}_mean_us": sum(ordered) / len(ordered) / 1000,
        f"{prefix}_percentiles_us": [_percentile(ordered, q / 100) for q in PERCENTILES],
    }


def _timed_calls(
    log: Callable[..., None], calls: int, deadline: float, first: int = 0
) -> tuple[array.array[int], int]:
    """Make up to ``calls`` logging calls, timing each; stop early only past ``deadline``.

    Messages are numbered from ``first``, so that a run split in parts still logs distinct ones.

    Samples go into a preallocated array of machine ints, so recording them allocates nothing
    that would show in the memory figures.
    """
    samples = array.array("q", bytes(8 * calls))
    clock = time.perf_counter_ns
    made = 0
    for i in range(calls):
        if i % _DEADLINE_CHECK_EVERY == 0 and time.perf_counter() > deadline:
            break
        start = clock()
        log(MESSAGE, first + i)
        samples[i] = clock() - start
        made = i + 1
    return samples[:made], made


def _memory_kib() -> dict[str, int]:
    """Return this process's resident set now and at its high-water mark, in KiB."""
    figures: dict[str, int] = {}
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures[key] = int(value.split()[0])
    return figures


@dataclass(frozen=True)
class Job:
    """What one worker process runs: one contender, against one endpoint, into one group."""

    contender: str
    endpoint_url: str
    group: str
    calls: int
    spool_dir: str
    deadline_s: float
    """A bound on the logging loop: a handler that blocks its callers must not stall the run."""


def _wait_visible(
    reader: Any, target: tuple[str, str], expected: int, deadline: float
) -> tuple[list[str], float]:
    """Poll the endpoint until a reader sees ``expected`` events or ``deadline`` passes.

    Returns the messages it saw last and when (perf_counter seconds).
    """
    group, stream = target
    visible: list[str] = []
    while time.perf_counter() < deadline:  # bounded by the deadline
        visible = visible_messages(reader, group, stream)
        if len(visible) >= expected:
            break
        time.sleep(_VISIBLE_POLL_S)
    return visible, time.perf_counter()


def _logger(name: str, contender: Contender) -> logging.Logger:
    contender.handler.setFormatter(logging.Formatter(FORMAT))
    logger = logging.getLogger(f"bench.{name}")
    logger.propagate = False  # only the contender handles these records
    logger.setLevel(logging.INFO)
    logger.addHandler(contender.handler)
    return logger


def _start(job: Job, *, outage: bool) -> tuple[PutLogEventsCounter, Contender, logging.Logger]:
    """Set up ``job``'s contender with a PutLogEvents counter, and a logger that feeds only it."""
    counter = PutLogEventsCounter()
    contender = set_up(
        job.contender,
        endpoint_url=job.endpoint_url,
        group=job.group,
        counter=counter,
        spool_dir=job.spool_dir,
        outage=outage,
    )
    return counter, contender, _logger(job.contender, contender)


def deliver(job: Job, *, count_minimum_calls: bool = True) -> dict[str, Any]:
    """Measure caller cost, CPU per event, PutLogEvents calls and time to visibility.

    Args:
        count_minimum_calls: work out the fewest PutLogEvents calls the events allow (it formats
            every record again: seconds for a long run that does not report it).
    """
    import boto3

    counter, contender, logger = _start(job, outage=False)
    reader = boto3.session.Session(region_name=REGION).client("logs", endpoint_url=job.endpoint_url)

    start = time.perf_counter_ns()
    logger.info("warm-up")
    first_call_us = (time.perf_counter_ns() - start) / 1000
    contender.flush()
    counter.reset()
    gc.collect()  # garbage from set-up is not the contenders' to pay for in the window

    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    samples, made = _timed_calls(logger.info, job.calls, deadline=wall_start + job.deadline_s)
    last_call = time.perf_counter()
    flushed = contender.flush()
    flush_end = time.perf_counter()
    cpu_end = time.process_time()

    result: dict[str, Any] = {
        "calls": made,
        "first_call_us": first_call_us,
        **_caller_figures(samples, "caller"),
        "loop_s": last_call - wall_start,
        "flush_s": flush_end - last_call,
        "flush_returned": flushed if isinstance(flushed, bool) else None,
        "cpu_s": cpu_end - cpu_start,
        "cpu_per_event_us": (cpu_end - cpu_start) / made * 1e6,
        # Logged as fast as one thread can, then flushed: events delivered per second of wall time.
        "throughput_eps": made / (flush_end - wall_start),
    }
    if contender.target is not None:
        expected = made + 1  # the warm-up record is delivered too
        visible, seen = _wait_visible(
            reader, contender.target, expected, deadline=last_call + _VISIBLE_TIMEOUT_S
        )
        result.update(
            {
                "events_expected": expected,
                "events_visible": len(visible),
                "visible_s": seen - last_call if len(visible) >= expected else None,
                "put_calls": counter.calls,
                "put_calls_ok": counter.succeeded,
            }
        )
        # What the window's calls carried, as the endpoint holds it (the counter keeps no body).
        window = [message for message in visible if not message.endswith(" warm-up")]
        result.update({"put_events_sent": len(window), "put_bytes_sent": sent_size(window)})
        if count_minimum_calls:
            result["put_calls_min"] = minimum_calls(_formatted_sizes(logger, made))
    result["details"] = contender.details()
    contender.close()
    return result


def outage(job: Job) -> dict[str, Any]:
    """Measure the memory that ``job.calls`` records take while the endpoint refuses connections."""
    counter, contender, logger = _start(job, outage=True)
    logger.info("warm-up")  # starts whatever threads the handler runs
    contender.prime()
    gc.collect()
    before = _memory_kib()
    started = time.perf_counter()
    deadline = started + job.deadline_s
    # Two halves, with memory read between: a handler whose memory is bounded stops growing once
    # it holds its bound, one bounded by the number of records grows as much again.
    half = job.calls // 2
    first, made_first = _timed_calls(logger.info, half, deadline)
    middle = _memory_kib()
    second, made_second = _timed_calls(logger.info, job.calls - half, deadline, first=half)
    elapsed = time.perf_counter() - started
    after = _memory_kib()
    made = made_first + made_second
    result: dict[str, Any] = {
        "outage_records": made,
        "outage_s": elapsed,
        **_caller_figures(first + second, "outage"),
        "put_calls_attempted": counter.calls,
        "details": contender.details(),
    }
    if before and middle and after:
        result["outage_rss_before_mib"] = before["VmRSS"] / 1024
        # The high-water mark only rises: its rise is the peak the waiting records cost.
        result["outage_peak_delta_mib"] = (after["VmHWM"] - before["VmHWM"]) / 1024
        result["outage_second_half_mib"] = (after["VmHWM"] - middle["VmHWM"]) / 1024
        result["outage_rss_delta_mib"] = (after["VmRSS"] - before["VmRSS"]) / 1024
    return result


def latency(job: Job) -> dict[str, Any]:
    """Measure how long records take to become visible when nobody calls flush().

    This is what a user waiting for a log line sees with default settings: the handler's own
    schedule (this handler's flush_interval_s, watchtower's send_interval) decides.
    """
    import boto3

    contender = set_up(
        job.contender,
        endpoint_url=job.endpoint_url,
        group=job.group,
        counter=PutLogEventsCounter(),
        spool_dir=job.spool_dir,
        outage=False,
    )
    if contender.target is None:
        raise UnavailableError("n/a: the floors deliver nowhere")
    logger = _logger(job.contender, contender)
    reader = boto3.session.Session(region_name=REGION).client("logs", endpoint_url=job.endpoint_url)
    logger.info("warm-up")
    contender.flush()  # group and stream exist, as in a process that has logged before
    for i in range(job.calls):
        logger.info(MESSAGE, i)
    last_call = time.perf_counter()
    expected = job.calls + 1
    visible, seen = _wait_visible(
        reader, contender.target, expected, deadline=last_call + job.deadline_s
    )
    return {
        "latency_records": job.calls,
        "latency_visible": len(visible),
        "visible_unflushed_s": seen - last_call if len(visible) >= expected else None,
        "latency_deadline_s": job.deadline_s,
    }


def _formatted_sizes(logger: logging.Logger, made: int) -> list[int]:
    """The UTF-8 size of each of the ``made`` timed records, formatted as the contenders did."""
    formatter = logging.Formatter(FORMAT)
    return [
        len(
            formatter.format(
                logger.makeRecord(logger.name, logging.INFO, __file__, 0, MESSAGE, (i,), None)
            ).encode("utf-8")
        )
        for i in range(made)
    ]


def sustain(job: Job) -> dict[str, Any]:
    """Measure sustained throughput: many records as fast as one thread can, then flush().

    Events delivered per second of wall time, from the first call until flush() returns, counted
    only if the endpoint then holds every event. A run of 20 batches or more, so that the last
    batch's send (the flush) is a small part of it, and a sender that falls behind shows.
    """
    figures = deliver(job, count_minimum_calls=False)
    expected = figures.get("events_expected")
    complete = expected is None or figures.get("events_visible") == expected
    return {
        "calls": figures["calls"],
        "sustained_eps": figures["throughput_eps"] if complete else None,
        "sustained_flush_s": figures["flush_s"],
        "sustained_cpu_per_event_us": figures["cpu_per_event_us"],
        "details": figures["details"],
    }


_MODES: dict[str, Callable[[Job], dict[str, Any]]] = {
    "deliver": deliver,
    "sustain": sustain,
    "outage": outage,
    "latency": latency,
}


def main(argv: list[str] | None = None) -> int:
    """Run one contender in one mode and print its figures as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--contender", required=True, choices=CONTENDERS)
    parser.add_argument("--mode", required=True, choices=tuple(_MODES))
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--deadline-s", type=float, default=120.0)
    args = parser.parse_args(argv)

    run = _MODES[args.mode]
    result: dict[str, Any] = {"contender": args.contender, "mode": args.mode}
    spool_dir = tempfile.mkdtemp(prefix="bench-spool-")
    try:
        job = Job(
            contender=args.contender,
            endpoint_url=args.endpoint,
            group=args.group,
            calls=args.calls,
            spool_dir=spool_dir,
            deadline_s=args.deadline_s,
        )
        result.update(run(job))
        result["available"] = True
    except UnavailableError as error:
        result.update({"available": False, "reason": str(error)})
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    if args.mode in ("outage", "latency"):
        # Exit without waiting: what is still queued would only wait for a dead endpoint (or,
        # past the latency deadline, for a send interval longer than the bench cares to wait).
        shutil.rmtree(spool_dir, ignore_errors=True)
        sys.stderr.flush()
        posix._exit(0)  # the plain one: our handler's `os._exit` would deliver first
    shutil.rmtree(spool_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
