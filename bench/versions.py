"""Two versions of this handler in one process: `python -m bench.versions OLD NEW [--spool]`.

OLD and NEW are directories that hold an ``aws_cloudwatch_logs_handler`` package: a checkout's
``handler/``, or a commit's (``git archive COMMIT handler | tar -x -C DIR``, then ``DIR/handler``).
Each is loaded under a name of its own, so that both run in this one process against one moto
server, and windows of the format-only floor, of OLD and of NEW alternate. A change of tens of
nanoseconds a logging call shows here, where `bench.run`'s process per contender sees the host's
slow stretches (seconds long, a microsecond a call) land on one side or the other.

Each window times 9,000 logging calls a side, fewer than a batch, so that no version sends while its
calls are timed (the flush() that follows is not timed): what the logging call itself costs, by the
calling thread's CPU clock and by the latency of each call. Within a window the sides take turns in
blocks of 500 calls, each block starting with the next side, so that a slow stretch of the host
(on this VM the CPU clock itself runs up to twice as slow for a second or more) falls on every side
of the window alike instead of on one. Printed: every side's medians over the windows, then NEW
against OLD window by window (the median difference, and the middle half of the differences).
``--spool`` gives both versions a spool (each its own directory). A diagnostic for a change, not a
contest: `bench.run` gives the figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from bench.caller_tail import HELD_CALLS
from bench.endpoint import fake_aws_environment, moto_server
from bench.phases import logger_for
from bench.worker import _percentile, _timed_calls

_PACKAGE = "aws_cloudwatch_logs_handler"
FIGURES: tuple[str, ...] = ("cpu_us", "p50_us", "p99_us")


def load_version(directory: Path, alias: str) -> ModuleType:
    """Import the package in ``directory`` as ``alias`` (its own relative imports follow it)."""
    package = directory / _PACKAGE
    spec = importlib.util.spec_from_file_location(
        alias, package / "__init__.py", submodule_search_locations=[str(package)]
    )
    if spec is None or spec.loader is None:
        raise SystemExit(f"no {_PACKAGE} package in {directory}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)
    return module


BLOCK_CALLS = 500  # a side's turn within a window; HELD_CALLS is a whole number of them


def _window(loggers: dict[str, logging.Logger]) -> dict[str, dict[str, float]]:
    """Time `HELD_CALLS` logging calls a side, the sides taking turns in blocks: per side, the
    thread CPU per call and the calls' p50 and p99 (µs)."""
    sides = list(loggers)
    cpu_s = dict.fromkeys(sides, 0.0)
    samples: dict[str, list[int]] = {side: [] for side in sides}
    for block in range(HELD_CALLS // BLOCK_CALLS):
        first = block * BLOCK_CALLS
        for side in sides[block % len(sides) :] + sides[: block % len(sides)]:
            started = time.thread_time()
            timed, _ = _timed_calls(loggers[side].info, BLOCK_CALLS, math.inf, first)
            cpu_s[side] += time.thread_time() - started
            samples[side].extend(timed)
    figures = {}
    for side in sides:
        ordered = sorted(samples[side])
        figures[side] = {
            "cpu_us": cpu_s[side] / len(ordered) * 1e6,
            "p50_us": _percentile(ordered, 0.5),
            "p99_us": _percentile(ordered, 0.99),
        }
    return figures


def main(argv: list[str] | None = None) -> int:
    """Alternate windows of the floor, OLD and NEW; print the medians and NEW against OLD."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("old", type=Path, help="directory holding the old package")
    parser.add_argument("new", type=Path, help="directory holding the new package")
    parser.add_argument("--windows", type=int, default=40, help="windows per side (default 40)")
    parser.add_argument("--spool", action="store_true", help="give both versions a spool")
    args = parser.parse_args(argv)
    from bench.peers import FormatOnlyHandler

    with moto_server() as url, tempfile.TemporaryDirectory(prefix="bench-versions-") as spools:
        os.environ.update(fake_aws_environment(url))
        handlers = {
            side: load_version(directory, f"bench_version_{side}").CloudWatchLogsHandler(
                f"/bench/versions/{side}",
                endpoint_url=url,
                flush_interval_s=600,
                spool_dir=os.path.join(spools, side) if args.spool else None,
            )
            for side, directory in (("old", args.old), ("new", args.new))
        }
        loggers = {"floor": logger_for(FormatOnlyHandler())}
        delivered = True
        for side, handler in handlers.items():
            loggers[side] = logger_for(handler)
            loggers[side].info("warm-up")
            delivered &= handler.flush(timeout_s=30)  # the client and the stream exist
        rows: dict[str, list[dict[str, float]]] = {side: [] for side in loggers}
        for _ in range(args.windows):
            for side, figures in _window(loggers).items():
                rows[side].append(figures)
            for handler in handlers.values():
                delivered &= handler.flush(timeout_s=60)  # outside the window
        for handler in handlers.values():
            handler.close()
    print(f"Medians over {args.windows} windows of {HELD_CALLS:,} logging calls a side (µs):")
    for side, windows in rows.items():
        cells = " ".join(
            f"{figure} {statistics.median(w[figure] for w in windows):.3f}" for figure in FIGURES
        )
        print(f"{side:6s} {cells}")
    print("NEW minus OLD, window by window: median (middle half)")
    for figure in FIGURES:
        differences = sorted(
            new[figure] - old[figure] for old, new in zip(rows["old"], rows["new"], strict=True)
        )
        quarter = len(differences) // 4
        print(
            f"{figure:7s} {statistics.median(differences):+.3f} "
            f"({differences[quarter]:+.3f} to {differences[-1 - quarter]:+.3f})"
        )
    print("every record delivered" if delivered else "NOT every record delivered")
    return 0 if delivered else 1


if __name__ == "__main__":
    raise SystemExit(main())
