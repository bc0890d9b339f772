"""What sets the logging call's tail: `python -m bench.caller_tail [--windows N] [--calls N]`.

`bench.run` measures each contender in a process of its own, one after the other, so a stretch in
which the host slows every call (this machine has them: 5 to 10% of calls at 10 to 12 µs for
seconds at a time) lands on one side of a ratio. Here one process alternates short windows of the
format-only floor and of this handler, so such a stretch shows as a bad window on both sides, and
the handler's own tail can be read in the windows the host left alone. This handler is timed two
ways:

- *held*: fewer calls a window than make a batch, and flush() between windows, so the sender
  sends nothing while calls are timed: what the logging call itself costs, seals included;
- *sending*: two batches' worth a window, so the sender works meanwhile.

A diagnostic, not a contest: the table of every window is printed, then the medians.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import statistics

from bench.endpoint import fake_aws_environment, moto_server
from bench.phases import logger_for
from bench.worker import _percentile, _timed_calls

PERCENTILES: tuple[float, ...] = (50, 90, 95, 98, 99, 99.5, 99.9)
HELD_CALLS = 9_000
"""Calls a held window makes: fewer than a batch (10,000), so nothing is sent during it."""


def _window(logger: logging.Logger, calls: int) -> list[float]:
    """Time ``calls`` logging calls as `bench.run` does; their latency percentiles in µs."""
    samples, _ = _timed_calls(logger.info, calls, deadline=math.inf)
    ordered = sorted(samples)
    return [_percentile(ordered, p / 100) for p in PERCENTILES]


def main(argv: list[str] | None = None) -> int:
    """Alternate windows of the floor and this handler; print each window and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--windows", type=int, default=9, help="windows per side (default 9)")
    parser.add_argument("--calls", type=int, default=20_000, help="calls a sending window makes")
    args = parser.parse_args(argv)
    from bench.peers import FormatOnlyHandler

    with moto_server() as url:
        os.environ.update(fake_aws_environment(url))
        from aws_cloudwatch_logs_handler import CloudWatchLogsHandler

        # A long flush interval: a held window's events wait for the flush() that follows it.
        handler = CloudWatchLogsHandler(
            "/bench/caller-tail", endpoint_url=url, flush_interval_s=600
        )
        ours, floor = logger_for(handler), logger_for(FormatOnlyHandler())
        ours.info("warm-up")
        delivered = handler.flush(timeout_s=30)  # the client and the stream exist from here on
        rows: dict[str, list[list[float]]] = {"floor": [], "held": [], "sending": []}
        for _ in range(args.windows):
            rows["floor"].append(_window(floor, HELD_CALLS))
            rows["held"].append(_window(ours, HELD_CALLS))
            delivered &= handler.flush(timeout_s=60)  # outside the windows
            rows["sending"].append(_window(ours, args.calls))
            delivered &= handler.flush(timeout_s=60)
        handler.close()
    header = " | ".join(f"p{p:g}" for p in PERCENTILES)
    print(f"| window | side | {header} |")
    print("|---|---|" + "---:|" * len(PERCENTILES))
    for index in range(args.windows):
        for side, windows in rows.items():
            cells = " | ".join(f"{value:.2f}" for value in windows[index])
            print(f"| {index + 1} | {side} | {cells} |")
    print()
    print(f"Medians over {args.windows} windows (µs), and p99 against the floor's:")
    medians = {
        side: [statistics.median(column) for column in zip(*windows, strict=True)]
        for side, windows in rows.items()
    }
    p99 = PERCENTILES.index(99)
    for side, values in medians.items():
        cells = " ".join(
            f"p{p:g} {value:.2f}" for p, value in zip(PERCENTILES, values, strict=True)
        )
        print(f"{side:8s} {cells}  p99 {values[p99] / medians['floor'][p99]:.2f}x floor")
    print("every record delivered" if delivered else "NOT every record delivered")
    return 0 if delivered else 1


if __name__ == "__main__":
    raise SystemExit(main())
