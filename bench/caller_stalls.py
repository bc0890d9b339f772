"""Why a logging call was slow: `python -m bench.caller_stalls [--windows N] [--calls N]
[--defer-puts]`.

A logging call that takes far longer than its work lost the CPU meanwhile, in one of three ways,
which the kernel counts for the calling thread (``getrusage(RUSAGE_THREAD)``):

- *waited*: a voluntary context switch. The thread blocked: on the GIL, which the sender held, or
  on a lock. Only this handler's work makes a logging call wait so.
- *preempted*: an involuntary switch. Another runnable task took the thread's core: on a 2-core
  host, the local endpoint parsing a 1 MB request, or any other process.
- *unseen*: neither. The thread never left its core as far as the kernel knows, yet the call took
  hundreds of microseconds: on a VM, the hypervisor ran something else on the core (stolen time,
  shown per window beside it, from ``/proc/stat``).

One process alternates windows of the format-only floor and of this handler (sending: two
batches' worth a window), so a stretch in which the host slows every call shows on both sides.
Each call's counts are read after the call, outside its timing; the reading costs about a
microsecond, which slows the loop a little. A diagnostic, not a contest: it says which of the slow
calls are this handler's to cut, and which the host's.

``--defer-puts`` has the moto server answer each PutLogEvents call at once and apply it only once
the windows are over (`local_aws.keep_alive_moto`): moto's parsing of a batch (about 100 ms of CPU)
then leaves the host alone while calls are timed, as CloudWatch Logs' does. What was delivered is
then read back from moto and counted.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.endpoint import fake_aws_environment, moto_server
from bench.phases import logger_for
from bench.worker import MESSAGE, _percentile
from local_aws.moto_endpoint import logs_client, read_events

KINDS: tuple[str, ...] = ("waited", "preempted", "unseen")
_PROC_STAT = Path("/proc/stat")


@dataclass
class Side:
    """What one side's windows measured."""

    calls: int = 0
    durations_ns: list[int] = field(default_factory=list)
    """Every call's duration."""
    slow_us: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    """The slow calls' durations, by how the thread lost the CPU."""
    stolen_s: float | None = None
    """CPU time the hypervisor took during the windows; None where the system does not say."""
    wall_s: float = 0.0


def stolen_s() -> float | None:
    """Time the hypervisor took from this VM's CPUs so far (all of them), or None off Linux."""
    try:
        fields = _PROC_STAT.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    # "cpu user nice system idle iowait irq softirq steal ...", in clock ticks.
    return int(fields[8]) / os.sysconf("SC_CLK_TCK") if len(fields) > 8 else None


def how_it_lost_the_cpu(voluntary: int, involuntary: int) -> str:
    """The kind of a slow call, from the thread's context switches during it."""
    if voluntary:
        return "waited"
    return "preempted" if involuntary else "unseen"


def _window(log: Callable[..., None], calls: int, side: Side, slow_ns: int) -> None:
    """Time ``calls`` logging calls into ``side``, classifying each slow one."""
    clock, usage, thread = time.perf_counter_ns, resource.getrusage, resource.RUSAGE_THREAD
    stolen_before, wall_before = stolen_s(), time.perf_counter()
    before = usage(thread)
    for i in range(calls):
        start = clock()
        log(MESSAGE, i)
        took = clock() - start
        after = usage(thread)
        side.durations_ns.append(took)
        if took > slow_ns:
            kind = how_it_lost_the_cpu(
                after.ru_nvcsw - before.ru_nvcsw, after.ru_nivcsw - before.ru_nivcsw
            )
            side.slow_us[kind].append(took / 1000)
        before = after
    side.calls += calls
    side.wall_s += time.perf_counter() - wall_before
    stolen_after = stolen_s()
    if stolen_before is not None and stolen_after is not None:
        side.stolen_s = (side.stolen_s or 0.0) + stolen_after - stolen_before


def report(sides: dict[str, Side], slow_us: float) -> list[str]:
    """The table: per side, the tail, then the slow calls by kind, and the time stolen."""
    lines = [
        f"| side | calls | p99 µs | p99.9 µs | max µs | over {slow_us:g} µs | over 1 ms | "
        + " | ".join(f"{kind} (n, median µs, max µs)" for kind in KINDS)
        + " | stolen, % of both CPUs |",
        "|---|---:|---:|---:|---:|---:|---:|" + "---|" * len(KINDS) + "---:|",
    ]
    cpus = os.cpu_count() or 1
    for name, side in sides.items():
        ordered = sorted(side.durations_ns)
        slow = [took for kind in KINDS for took in side.slow_us[kind]]
        cells = [
            name,
            str(side.calls),
            f"{_percentile(ordered, 0.99):.0f}",
            f"{_percentile(ordered, 0.999):.0f}",
            f"{ordered[-1] / 1000:.0f}",
            str(len(slow)),
            str(sum(took > 1000 for took in slow)),
        ]
        for kind in KINDS:
            took = side.slow_us[kind]
            cells.append(
                f"{len(took)}, {statistics.median(took):.0f}, {max(took):.0f}" if took else "0"
            )
        stolen = side.stolen_s
        cells.append("n/a" if stolen is None else f"{100 * stolen / (side.wall_s * cpus):.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def warmed_handler(url: str, log_group: str) -> tuple[Any, logging.Logger, bool]:
    """This handler for ``log_group`` on the endpoint at ``url`` (the process's environment can
    reach only it from here on), with a logger of its own, after one record logged and flushed:
    the client and the stream exist. Returns the handler, the logger, and whether it delivered."""
    os.environ.update(fake_aws_environment(url))
    from aws_cloudwatch_logs_handler import CloudWatchLogsHandler

    handler = CloudWatchLogsHandler(log_group, endpoint_url=url)
    logger = logger_for(handler)
    logger.info("warm-up")
    return handler, logger, handler.flush(timeout_s=30)


def main(argv: list[str] | None = None) -> int:
    """Alternate windows of the floor and this handler; print the slow calls by kind."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--windows", type=int, default=5, help="windows per side (default 5)")
    parser.add_argument("--calls", type=int, default=20_000, help="calls a window makes")
    parser.add_argument("--slow-us", type=float, default=100.0, help="a slow call (default 100)")
    parser.add_argument(
        "--defer-puts", action="store_true", help="moto applies each batch after the windows"
    )
    args = parser.parse_args(argv)
    from bench.peers import FormatOnlyHandler

    slow_ns = int(args.slow_us * 1000)
    with moto_server(defer_puts=args.defer_puts) as url:
        handler, ours, delivered = warmed_handler(url, "/bench/caller-stalls")
        floor = logger_for(FormatOnlyHandler())
        sides = {"floor": Side(), "sending": Side()}
        for _ in range(args.windows):
            _window(floor.info, args.calls, sides["floor"], slow_ns)
            _window(ours.info, args.calls, sides["sending"], slow_ns)
            delivered &= handler.flush(timeout_s=60)  # outside the windows
        handler.close()
        if args.defer_puts:  # moto's answers came before it applied them: count what it holds
            held = read_events(logs_client(url), handler.log_group_name, handler.log_stream_name)
            delivered &= len(held) == 1 + args.windows * args.calls
    print("\n".join(report(sides, args.slow_us)))
    print("every record delivered" if delivered else "NOT every record delivered")
    return 0 if delivered else 1


if __name__ == "__main__":
    raise SystemExit(main())
