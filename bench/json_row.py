"""The JSON row: caller p50/p99 of this handler with `JsonFormatter` and with python-json-logger.

`python -m bench.json_row [--calls N] [--reps R]`

Both formatters run in one process against one local moto server, their repetitions interleaved
(ours, theirs, ours, theirs...) so that the machine's noise falls on both alike. Each call logs
one record with an ``extra`` field, as structured logging does; both formatters write the same
four fields (time, level, logger, message) plus the extra one. The target: ours no slower.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
import uuid
from collections.abc import Callable

from bench.endpoint import fake_aws_environment, moto_server
from bench.worker import _percentile

Factory = Callable[[], logging.Formatter]
_FLUSH_TIMEOUT_S = 60.0


def _ours() -> logging.Formatter:
    from aws_cloudwatch_logs_handler import JsonFormatter

    return JsonFormatter()


def _python_json_logger() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    formatter: logging.Formatter = JsonFormatter("{asctime}{levelname}{name}{message}", style="{")
    return formatter


FORMATTERS: dict[str, Factory] = {
    "JsonFormatter (ours)": _ours,
    "python-json-logger 4.2.0": _python_json_logger,
}


def measure(factory: Factory, endpoint_url: str, calls: int) -> tuple[float, float]:
    """Log ``calls`` records through a fresh handler with ``factory``'s formatter.

    Returns:
        The caller's p50 and p99, in microseconds.
    """
    from aws_cloudwatch_logs_handler import CloudWatchLogsHandler

    handler = CloudWatchLogsHandler(
        f"/bench/json/{uuid.uuid4().hex[:12]}", endpoint_url=endpoint_url
    )
    handler.setFormatter(factory())
    logger = logging.getLogger(f"bench.json.{uuid.uuid4().hex[:8]}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        logger.info("warm-up", extra={"order_id": 0})
        handler.flush(timeout_s=_FLUSH_TIMEOUT_S)  # client, group and stream out of the window
        samples = []
        clock = time.perf_counter_ns
        for i in range(calls):
            start = clock()
            logger.info("order %d paid", i, extra={"order_id": i})
            samples.append(clock() - start)
        handler.flush(timeout_s=_FLUSH_TIMEOUT_S)
    finally:
        logger.removeHandler(handler)
        handler.close()
    samples.sort()
    return _percentile(samples, 0.50), _percentile(samples, 0.99)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    with moto_server() as endpoint_url:
        os.environ.update(fake_aws_environment(endpoint_url))
        figures: dict[str, list[tuple[float, float]]] = {name: [] for name in FORMATTERS}
        for _ in range(args.reps):
            for name, factory in FORMATTERS.items():
                figures[name].append(measure(factory, endpoint_url, args.calls))
    print(f"JSON row: caller latency through this handler, median of {args.reps} x {args.calls}")
    print(f"{'formatter':<28}{'p50 (µs)':>10}{'p99 (µs)':>10}")
    for name, runs in figures.items():
        p50 = statistics.median(run[0] for run in runs)
        p99 = statistics.median(run[1] for run in runs)
        print(f"{name:<28}{p50:>10.2f}{p99:>10.2f}")
    ours, theirs = (statistics.median(r[0] for r in runs) for runs in figures.values())
    verdict = "met" if ours <= theirs else "missed"
    print(f"target (ours no slower than python-json-logger at p50): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
