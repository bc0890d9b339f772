"""One process of the fleet: log numbered records to its own stream at a fixed rate, then drain.

`python -m bench.fleet_worker --group G --stream S --seconds T --rate N` (the environment points
boto3 at the front, as `bench.endpoint.fake_aws_environment` makes it). `bench.fleet` starts many
at once: each builds its handler, prints `READY_LINE`, and starts logging when a line arrives on
its standard input (so the whole fleet starts within a few milliseconds, as a deploy does). A
sampler thread reads ``stats().events_queued`` every 100 ms. After the last logging call the
worker flushes, and prints one result line: how many records it logged, its delivery stats, the
samples, and its drain time (last logging call to delivery complete).

Times are `time.monotonic()` seconds, which on Linux is one clock for every process of the
machine, so the parent can put the workers' times and the front's call log on one axis.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from typing import Any, Final

RESULT_PREFIX: Final = "FLEET-RESULT "
READY_LINE: Final = "ready"
SAMPLE_INTERVAL_S: Final = 0.1
DRAIN_TIMEOUT_S: Final = 300.0
"""The longest a worker waits for its records to be delivered after its last logging call."""


def message(stream: str, number: int) -> str:
    """The text of record ``number`` of ``stream``: distinct across the whole fleet."""
    return f"{stream} record {number}"


class QueueSampler:
    """Read a handler's queued events every 100 ms on a thread of its own, until stopped."""

    def __init__(self, read: Any, *, max_samples: int) -> None:
        self._read = read
        self._max_samples = max_samples
        self._stop = threading.Event()
        self.samples: list[tuple[float, int]] = []
        self._thread = threading.Thread(target=self._run, name="fleet-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        # Bounded twice: by stop(), and by max_samples should the worker never call it.
        for _ in range(self._max_samples):
            self.samples.append((time.monotonic(), self._read()))
            if self._stop.wait(SAMPLE_INTERVAL_S):
                break
        self.samples.append((time.monotonic(), self._read()))


def run(group: str, stream: str, *, seconds: float, rate_per_s: float) -> dict[str, Any]:
    """Log ``seconds * rate_per_s`` records at ``rate_per_s`` to ``stream``, drain, and report."""
    # Imported before READY_LINE: what a real process has done long before its first record, and
    # not the fleet's start-up storm to measure.
    import boto3  # noqa: F401

    from aws_cloudwatch_logs_handler import CloudWatchLogsHandler
    from bench.peers import plain_data

    handler = CloudWatchLogsHandler(group, log_stream=stream)
    logger = logging.getLogger("fleet")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    total = round(seconds * rate_per_s)
    sampler = QueueSampler(
        lambda: handler.stats().events_queued,
        max_samples=int((seconds + DRAIN_TIMEOUT_S) / SAMPLE_INTERVAL_S) + 10,
    )

    print(READY_LINE, flush=True)
    sys.stdin.readline()  # the go signal (or EOF if the parent went away: start anyway)
    started = time.monotonic()
    sampler.start()
    for number in range(total):
        # Paced against the start, not the previous call, so the rate holds whatever a call costs.
        pause = started + number / rate_per_s - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        logger.info(message(stream, number))
    last_call = time.monotonic()
    delivered = handler.flush(timeout_s=DRAIN_TIMEOUT_S)
    drained = time.monotonic()
    sampler.stop()
    stats = handler.stats()
    handler.close()
    return {
        "stream": stream,
        "logged": total,
        "started": started,
        "last_call": last_call,
        "drained": drained,
        "drain_s": drained - last_call,
        "flush_settled": delivered,
        "stats": plain_data(stats),
        "samples": sampler.samples,
    }


def main(argv: list[str] | None = None) -> int:
    """Run one worker and print its result as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--group", required=True)
    parser.add_argument("--stream", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--rate", type=float, required=True, help="records per second")
    args = parser.parse_args(argv)
    result = run(args.group, args.stream, seconds=args.seconds, rate_per_s=args.rate)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
