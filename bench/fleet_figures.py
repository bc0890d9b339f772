"""The fleet run's figures, from the front's call log and the workers' samples: pure, no I/O.

Calls are counted per 100 ms bin from the moment the fleet was told to start. Whether retries come
back in synchronized waves is judged per rate-limited operation, after the start-up burst (the
first second after the operation's first call: every process makes its first attempt in it, one
flush interval after its first record): the peak and 99th percentile of attempts (passed or
throttled) per bin, against the quota per bin.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from local_aws.aws_front import Call

BIN_S: Final = 0.1
BURST_S: Final = 1.0
"""The start-up burst left out of the wave figures, from an operation's first call."""


def bin_count(origin_s: float, end_s: float) -> int:
    """How many 100 ms bins cover ``origin_s`` to ``end_s`` (at least one)."""
    return max(1, math.floor((end_s - origin_s) / BIN_S) + 1)


def _bin(at_s: float, origin_s: float) -> int:
    return math.floor((at_s - origin_s) / BIN_S)


def calls_per_bin(calls: Sequence[Call], *, origin_s: float, bins: int) -> dict[str, list[int]]:
    """Count calls per 100 ms bin, keyed ``"<operation> <outcome>"``; calls outside are left out."""
    series: dict[str, list[int]] = {}
    for call in calls:
        index = _bin(call.at_s, origin_s)
        if 0 <= index < bins:
            series.setdefault(f"{call.operation} {call.outcome}", [0] * bins)[index] += 1
    return dict(sorted(series.items()))


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))])


@dataclass(frozen=True)
class Waves:
    """How one rate-limited operation's attempts spread over time after the start-up burst."""

    operation: str
    quota_per_bin: float
    attempts: int
    throttled: int
    bins: int
    """Bins from the end of the burst to the operation's last attempt."""
    mean: float
    p99: float
    peak: int
    bins_over_quota: int


def waves(calls: Sequence[Call], operation: str, *, rate_per_s: float, origin_s: float) -> Waves:
    """Measure the attempts per 100 ms of ``operation`` after its start-up burst.

    ``origin_s`` stands for the first call when there was none.
    """
    mine = [call for call in calls if call.operation == operation]
    throttled = sum(call.outcome == "throttled" for call in mine)
    start = min((call.at_s for call in mine), default=origin_s) + BURST_S
    later = [call for call in mine if call.at_s >= start]
    quota = rate_per_s * BIN_S
    if not later:
        return Waves(operation, quota, len(mine), throttled, 0, 0.0, 0.0, 0, 0)
    counts = [0] * bin_count(start, max(call.at_s for call in later))
    for call in later:
        counts[_bin(call.at_s, start)] += 1
    return Waves(
        operation=operation,
        quota_per_bin=quota,
        attempts=len(mine),
        throttled=throttled,
        bins=len(counts),
        mean=sum(counts) / len(counts),
        p99=percentile(counts, 0.99),
        peak=max(counts),
        bins_over_quota=sum(count > quota for count in counts),
    )


def queued_per_bin(
    samples: Sequence[Sequence[tuple[float, int]]], *, origin_s: float, bins: int
) -> list[int]:
    """Sum the workers' queued events at the end of each 100 ms bin.

    Each worker counts with its latest sample at or before the bin's end; before its first sample
    and after its last it holds nothing (it had not started, or it had drained and ended).
    """
    totals = [0] * bins
    for worker in samples:
        if not worker:
            continue
        times = [at for at, _ in worker]
        for index in range(bins):
            end = origin_s + (index + 1) * BIN_S
            if end > times[-1] + BIN_S:
                break
            latest = bisect.bisect_right(times, end) - 1
            if latest >= 0:
                totals[index] += worker[latest][1]
    return totals


# Colours by operation and outcome: throttled in warm colours, so waves stand out.
_COLOURS: Final = {
    "CreateLogStream passed": "#1f77b4",
    "CreateLogStream throttled": "#ff7f0e",
    "PutLogEvents passed": "#2ca02c",
    "PutLogEvents throttled": "#d62728",
}


def plot(
    path: Path,
    *,
    series: Mapping[str, Sequence[int]],
    quotas: Mapping[str, float],
    queued: Sequence[int],
    title: str,
) -> None:
    """Draw calls per 100 ms (stacked) over queued events, sharing the time axis; write ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # no display here or on CI
    import matplotlib.pyplot as plt

    figure, (calls_axis, queued_axis) = plt.subplots(
        2, 1, sharex=True, figsize=(12, 7), layout="constrained", height_ratios=(3, 2)
    )
    bins = len(queued)
    times = [index * BIN_S for index in range(bins)]
    bottom = [0] * bins
    for name, counts in series.items():
        calls_axis.bar(
            times,
            counts,
            width=BIN_S,
            align="edge",
            bottom=bottom,
            label=name,
            color=_COLOURS.get(name, "#7f7f7f"),
            linewidth=0,
        )
        bottom = [below + count for below, count in zip(bottom, counts, strict=True)]
    for (operation, rate_per_s), style in zip(quotas.items(), ("--", ":"), strict=False):
        calls_axis.axhline(
            rate_per_s * BIN_S, color="black", linestyle=style, label=f"{operation} quota per bin"
        )
    calls_axis.set_ylabel("calls per 100 ms")
    calls_axis.set_title(title)
    calls_axis.legend(loc="upper right", fontsize="small")
    queued_axis.plot(times, queued, color="#9467bd")
    queued_axis.set_ylabel("events queued (all workers)")
    queued_axis.set_xlabel("seconds since the fleet started")
    figure.savefig(path, dpi=110)
    plt.close(figure)
