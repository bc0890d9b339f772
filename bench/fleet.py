"""A fleet sharing one account's quotas: ``python -m bench.fleet [--processes 50] [--seconds 60]``.

Starts a moto server and, before it, the strict front (`local_aws.aws_front`) enforcing
account-wide rates scaled down from AWS's (CreateLogStream 5/s and PutLogEvents 50/s by default,
a tenth of the real CreateLogStream quota and a hundredth of PutLogEvents'), then N worker
processes at once (`bench.fleet_worker`), each a fresh interpreter logging to its own stream at a
fixed rate for the duration, then draining. Afterwards it checks from what moto holds that every
record of every worker arrived exactly once, that the front refused nothing and that no worker
dropped anything, and measures from the front's call log the calls per 100 ms, the throttled
calls and whether retries come back in synchronized waves. It prints a table and writes
``fleet.json`` and ``fleet.png`` into ``--out``. See bench/FLEET.md for a run and the arithmetic
at real quotas. `run_fleet` is also what tests/test_fleet.py drives, scaled down further.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from bench.endpoint import fake_aws_environment, moto_server
from bench.fleet_figures import (
    Waves,
    bin_count,
    calls_per_bin,
    plot,
    queued_per_bin,
    waves,
)
from bench.fleet_worker import DRAIN_TIMEOUT_S, READY_LINE, RESULT_PREFIX, message
from local_aws.aws_front import AwsFront, Call, Refusal
from local_aws.moto_endpoint import logs_client, read_events

ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_RATES: Final[Mapping[str, float]] = {"CreateLogStream": 5.0, "PutLogEvents": 50.0}
"""Account-wide calls per second, scaled down from the real 50 and 5,000 (see bench/FLEET.md)."""
READY_TIMEOUT_S: Final = 180.0
"""Fifty interpreters importing boto3 at once on two cores take a while; more than this is hung."""
END_MARGIN_S: Final = 60.0
"""Beyond logging and the worker's own drain bound, the longest a worker may take to end."""


@dataclass(frozen=True)
class FleetConfig:
    """What to run: how many processes, for how long, how fast, against which rates."""

    processes: int = 50
    seconds: float = 60.0
    rate_per_process: float = 20.0
    """Records per second each process logs."""
    rates: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))


@dataclass
class FleetReport:
    """What the fleet did, what arrived, and how the calls spread over time."""

    config: FleetConfig
    logged: int
    delivered: int
    lost: int
    duplicated: int
    refused: list[Refusal]
    dropped: dict[str, int]
    retries: int
    calls: dict[str, int]
    throttled: dict[str, int]
    waves: dict[str, Waves]
    drain_median_s: float
    drain_max_s: float
    fleet_drain_s: float
    """From the fleet's last logging call to the last delivery confirmed (a worker's flush
    returning): the last PutLogEvents' arrival at the front would leave out moto's answer."""
    streams_created_s: float
    """From the start to the last stream's CreateLogStream that passed."""
    last_throttled_s: float
    queued_peak: int
    queued_peak_at_s: float
    failures: list[str]
    """Workers that did not end with a result (their exit status and the end of their stderr)."""
    workers: list[dict[str, Any]]
    """Each worker's result without its samples, times in seconds since the start."""
    series: dict[str, list[int]] = field(repr=False)
    queued: list[int] = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (fleet.json)."""
        data = asdict(self)
        data["config"]["rates"] = dict(self.config.rates)
        data["bin_s"] = 0.1
        return data


class _Worker:
    """One fleet process, started and waiting for the go signal."""

    def __init__(self, group: str, stream: str, config: FleetConfig, env: dict[str, str]) -> None:
        self.stream = stream
        # stderr to a file, never a pipe: the handler's side channel reports retries there, and a
        # full pipe nobody reads would stall the worker.
        self.errors: IO[str] = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in close())
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.fleet_worker",
                *("--group", group, "--stream", stream),
                *("--seconds", str(config.seconds), "--rate", str(config.rate_per_process)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            text=True,
            cwd=ROOT,
            env=env,
        )

    def wait_ready(self, deadline: float) -> None:
        """Read until the worker says it is ready; raise if it ends or the deadline passes."""
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0:  # bounded by the deadline
                if not selector.select(left):
                    continue
                line = self.process.stdout.readline()
                if not line:
                    break
                if line.strip() == READY_LINE:
                    return
        raise RuntimeError(f"worker {self.stream} not ready: {self.stderr_tail()}")

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()  # communicate() closes it later

    def result(self, deadline: float) -> dict[str, Any] | str:
        """The worker's result line, parsed, or why there is none."""
        try:
            out, _ = self.process.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            return f"{self.stream}: hung, killed; {self.stderr_tail()}"
        for line in out.splitlines():
            if line.startswith(RESULT_PREFIX):
                result: dict[str, Any] = json.loads(line.removeprefix(RESULT_PREFIX))
                return result
        return f"{self.stream}: status {self.process.returncode}; {self.stderr_tail()}"

    def stderr_tail(self) -> str:
        self.errors.seek(0)
        return self.errors.read()[-2000:]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()
        self.errors.close()


@contextlib.contextmanager
def _started(group: str, config: FleetConfig, env: dict[str, str]) -> Iterator[list[_Worker]]:
    workers: list[_Worker] = []
    try:
        for number in range(config.processes):
            workers.append(_Worker(group, f"fleet/process-{number:05d}", config, env))
        yield workers
    finally:
        for worker in workers:
            worker.close()


def _arrived(moto_url: str, group: str, streams: list[str]) -> dict[str, Counter[str]]:
    """Every message moto holds per stream, read from moto directly (not through the front)."""
    client = logs_client(moto_url)
    held: dict[str, Counter[str]] = {}
    for stream in streams:
        try:
            held[stream] = Counter(event["message"] for event in read_events(client, group, stream))
        except client.exceptions.ResourceNotFoundException:
            held[stream] = Counter()
    return held


def run_fleet(config: FleetConfig) -> FleetReport:
    """Run the fleet against a fresh moto server behind a rate-limited front, and measure it."""
    group = f"/fleet/{uuid.uuid4().hex[:12]}"
    with moto_server() as moto_url:
        # An existing group, as a deployed fleet has; made in moto directly, outside the quotas.
        logs_client(moto_url).create_log_group(logGroupName=group)
        with AwsFront(moto_url, rates=config.rates) as front:
            env = fake_aws_environment(front.url)
            # This checkout's library, whichever one the interpreter has installed.
            env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "handler"), env.get("PYTHONPATH", "")])
            with _started(group, config, env) as workers:
                ready_by = time.monotonic() + READY_TIMEOUT_S
                for worker in workers:
                    worker.wait_ready(ready_by)
                origin = time.monotonic()
                for worker in workers:
                    worker.go()
                end_by = origin + config.seconds + DRAIN_TIMEOUT_S + END_MARGIN_S
                outcomes = [worker.result(end_by) for worker in workers]
            calls, refused, throttled = front.call_log, front.refused, front.throttled
            counts = front.calls
        streams = [worker.stream for worker in workers]
        held = _arrived(moto_url, group, streams)
    results = [outcome for outcome in outcomes if isinstance(outcome, dict)]
    failures = [outcome for outcome in outcomes if isinstance(outcome, str)]
    return _report(
        config,
        origin=origin,
        calls=calls,
        results=results,
        held=held,
        refused=refused,
        throttled=throttled,
        counts=counts,
        failures=failures,
    )


def _report(
    config: FleetConfig,
    *,
    origin: float,
    calls: list[Call],
    results: list[dict[str, Any]],
    held: dict[str, Counter[str]],
    refused: list[Refusal],
    throttled: dict[str, int],
    counts: dict[str, int],
    failures: list[str],
) -> FleetReport:
    lost = duplicated = delivered = 0
    for result in results:
        expected = Counter(message(result["stream"], n) for n in range(result["logged"]))
        got = held[result["stream"]]
        lost += sum((expected - got).values())
        duplicated += sum((got - expected).values())
        delivered += sum((got & expected).values())
    dropped: Counter[str] = Counter()
    for result in results:
        dropped.update(result["stats"]["dropped"])
    created = [c.at_s for c in calls if c.operation == "CreateLogStream" and c.outcome == "passed"]
    throttled_at = [c.at_s for c in calls if c.outcome == "throttled"]
    last_call = max((result["last_call"] for result in results), default=origin)
    end = max([origin, *(c.at_s for c in calls), *(r["drained"] for r in results)])
    bins = bin_count(origin, end)
    queued = queued_per_bin([r["samples"] for r in results], origin_s=origin, bins=bins)
    peak_bin = max(range(bins), key=queued.__getitem__)
    drains = [result["drain_s"] for result in results] or [0.0]
    return FleetReport(
        config=config,
        logged=sum(result["logged"] for result in results),
        delivered=delivered,
        lost=lost,
        duplicated=duplicated,
        refused=refused,
        dropped=dict(dropped),
        retries=sum(result["stats"]["retries"] for result in results),
        calls=counts,
        throttled=throttled,
        waves={
            operation: waves(calls, operation, rate_per_s=rate, origin_s=origin)
            for operation, rate in config.rates.items()
        },
        drain_median_s=statistics.median(drains),
        drain_max_s=max(drains),
        fleet_drain_s=max((result["drained"] for result in results), default=last_call) - last_call,
        streams_created_s=max(created, default=origin) - origin,
        last_throttled_s=max(throttled_at, default=origin) - origin,
        queued_peak=queued[peak_bin],
        queued_peak_at_s=peak_bin * 0.1,
        failures=failures,
        workers=[
            {
                **{k: v for k, v in result.items() if k != "samples"},
                **{k: result[k] - origin for k in ("started", "last_call", "drained")},
            }
            for result in results
        ],
        series=calls_per_bin(calls, origin_s=origin, bins=bins),
        queued=queued,
    )


def _spread(workers: list[dict[str, Any]], key: str) -> str:
    times = [worker[key] for worker in workers] or [0.0]
    return f"{min(times):.2f} s / {max(times):.2f} s"


def table(report: FleetReport) -> str:
    """The report as two Markdown tables: what arrived and when, then calls per 100 ms."""
    c, r = report.config, report
    rates = ", ".join(f"{op} {rate:g}/s" for op, rate in c.rates.items())
    rows = [
        ("processes (one stream each)", f"{c.processes}"),
        ("logging", f"{c.seconds:g} s at {c.rate_per_process:g} records/s each"),
        ("account-wide rates at the front", rates),
        ("records logged", f"{report.logged:,}"),
        ("delivered exactly once", f"{report.delivered:,}"),
        ("lost / duplicated", f"{report.lost} / {report.duplicated}"),
        ("refused by the front", f"{len(report.refused)}"),
        ("dropped by the handlers", f"{sum(report.dropped.values())}"),
        ("workers without a result", f"{len(report.failures)}"),
        ("calls", ", ".join(f"{op} {n:,}" for op, n in sorted(report.calls.items()))),
        ("throttled", ", ".join(f"{op} {n:,}" for op, n in sorted(report.throttled.items()))),
        ("retries counted by the handlers", f"{report.retries:,}"),
        ("every stream created after", f"{report.streams_created_s:.1f} s"),
        ("last throttled call at", f"{r.last_throttled_s:.1f} s" if r.throttled else "none"),
        ("queued events, peak (all workers)", f"{r.queued_peak:,} at {r.queued_peak_at_s:.1f} s"),
        ("drain per worker, median / max", f"{r.drain_median_s:.2f} s / {r.drain_max_s:.2f} s"),
        ("last logging call, first / last worker", _spread(r.workers, "last_call")),
        ("fleet drain (last logging call to last delivery)", f"{report.fleet_drain_s:.2f} s"),
    ]  # fmt: skip
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    lines += [
        "",
        "Attempts per 100 ms, after the first second of each operation (passed and throttled):",
        "",
        "| operation | quota per 100 ms | attempts | throttled | mean | p99 | peak "
        "| bins over quota / bins |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {w.operation} | {w.quota_per_bin:g} | {w.attempts:,} | {w.throttled:,} | "
        f"{w.mean:.2f} | {w.p99:g} | {w.peak} | {w.bins_over_quota} / {w.bins} |"
        for w in report.waves.values()
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the fleet, print its table, write fleet.json and fleet.png; 1 if anything was lost."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--processes", type=int, default=FleetConfig.processes)
    parser.add_argument("--seconds", type=float, default=FleetConfig.seconds)
    parser.add_argument("--rate-per-process", type=float, default=FleetConfig.rate_per_process)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    config = FleetConfig(
        processes=args.processes, seconds=args.seconds, rate_per_process=args.rate_per_process
    )
    report = run_fleet(config)
    print(table(report))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fleet.json").write_text(json.dumps(report.to_json(), indent=1) + "\n")
    plot(
        args.out / "fleet.png",
        series=report.series,
        quotas=config.rates,
        queued=report.queued,
        title=f"{config.processes} processes, one stream each, against "
        + ", ".join(f"{op} {rate:g}/s" for op, rate in config.rates.items()),
    )
    print(f"wrote {args.out / 'fleet.json'} and {args.out / 'fleet.png'}")
    for failure in report.failures:
        print(f"FAILED {failure}", file=sys.stderr)
    sound = report.lost == report.duplicated == 0 and not report.refused and not report.failures
    return 0 if sound and not report.dropped else 1


if __name__ == "__main__":
    sys.exit(main())
