"""The issue's targets, judged on one run's figures.

Ratios come from `summary` (same-repetition pairs, median over repetitions); a target with nothing
to judge (a contender n/a, an outage bound never reached) is reported as such, never as met.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from bench.peers import FLOOR_FORMAT, LABELS, OURS, OURS_SMALL_QUEUE, OURS_SPOOL
from bench.summary import by_rep

_MIB = 1024 * 1024


@dataclass(frozen=True)
class Verdict:
    """One target, what was measured against it, and whether it holds."""

    target: str
    contender: str
    measured: float | None
    limit: float
    met: bool | None
    """None when there was nothing to judge (see ``how``)."""
    how: str

    def as_json(self) -> dict[str, Any]:
        """Return the verdict as plain JSON data."""
        return asdict(self)


def _ratio(summary: dict[str, Any], contender: str, name: str) -> float | None:
    value = summary[contender]["ratios"][name]["median"]
    return float(value) if value is not None else None


def _at_most(
    target: str, contender: str, measured: float | None, limit: float, how: str
) -> Verdict:
    met = None if measured is None else measured <= limit
    return Verdict(target, LABELS[contender], measured, limit, met, how)


def _outage_runs(runs: list[dict[str, Any]], contender: str) -> list[dict[str, Any]]:
    return [
        run
        for run in runs
        if run["contender"] == contender and run["mode"] == "outage" and run.get("available")
    ]


def _memory_bound(runs: list[dict[str, Any]]) -> Verdict:
    """Judge the small-bound variant: flat once full, and its peak within its bound.

    Two conditions, both needed: memory stops growing once the bound is reached (the rise in the
    second half of the records is under a quarter of the bound), and the peak rise, less what the
    floor's records cost any handler in transit, is at most ``max_queue_bytes``.
    """
    target = "outage memory bounded by max_queue_bytes"
    label = LABELS[OURS_SMALL_QUEUE]
    ours = by_rep(runs, OURS_SMALL_QUEUE, "outage_peak_delta_mib")
    second_half = by_rep(runs, OURS_SMALL_QUEUE, "outage_second_half_mib")
    floor = by_rep(runs, FLOOR_FORMAT, "outage_peak_delta_mib")
    details = [run["details"] for run in _outage_runs(runs, OURS_SMALL_QUEUE)]
    bounds = [d.get("max_queue_bytes") for d in details if d.get("max_queue_bytes")]
    dropped = sum(sum(d.get("stats", {}).get("dropped", {}).values()) for d in details)
    if not ours or not bounds:
        return Verdict(target, label, None, 1.0, None, "n/a: not measured")
    bound_mib = bounds[0] / _MIB
    measured = statistics.median((ours[rep] - floor.get(rep, 0.0)) / bound_mib for rep in ours)
    growth = statistics.median(second_half.values()) if second_half else None
    flat = growth is not None and growth <= bound_mib / 4
    how = (
        f"(peak RSS rise - floor's) / max_queue_bytes of {bound_mib:.0f} MiB; "
        f"rise in the second half {growth if growth is not None else float('nan'):.1f} MiB "
        f"({'flat' if flat else 'still growing'}); "
        f"{dropped} records dropped as queue_full over all repetitions"
    )
    if dropped == 0:
        return Verdict(target, label, measured, 1.0, None, how + ": bound never reached")
    return Verdict(target, label, measured, 1.0, flat and measured <= 1.0, how)


def _median(runs: list[dict[str, Any]], contender: str, metric: str) -> float | None:
    values = by_rep(runs, contender, metric)
    return statistics.median(values.values()) if values else None


def judge(summary: dict[str, Any], runs: list[dict[str, Any]]) -> list[Verdict]:
    """Return a verdict for every performance target (and the earlier ones still held)."""
    same_run = "median of same-run ratios"
    verdicts = [
        _at_most(
            "process CPU per delivered event <= 1.2x format-only floor",
            OURS,
            _ratio(summary, OURS, "cpu_x_floor"),
            1.2,
            f"{same_run}; process CPU from first call to completed flush()",
        ),
        _at_most(
            "caller p99 <= 1.2x floor's p99",
            OURS,
            _ratio(summary, OURS, "p99_x_floor"),
            1.2,
            same_run,
        ),
        _at_most(
            "caller p99.9 <= 1.5x floor's p99.9",
            OURS,
            _ratio(summary, OURS, "p999_x_floor"),
            1.5,
            same_run,
        ),
        _at_most(
            "caller max <= 1 ms while 10,000-event batches are sent",
            OURS,
            _median(runs, OURS, "caller_max_us"),
            1000.0,
            "us, median over repetitions; 20,000 calls send one full batch during the loop",
        ),
    ]
    throughput = _ratio(summary, OURS, "sustained_x_watchtower")
    verdicts.append(
        Verdict(
            "sustained delivered events per second, one process >= 2x watchtower",
            LABELS[OURS],
            throughput,
            2.0,
            None if throughput is None else throughput >= 2.0,
            f"{same_run}; records as fast as one thread can (200,000 in a full run), then"
            " flush(), over wall time; n/a unless all were delivered",
        )
    )
    verdicts += [
        _at_most(
            "spool: caller p50 <= 1.25x floor",
            OURS_SPOOL,
            _ratio(summary, OURS_SPOOL, "p50_x_floor"),
            1.25,
            same_run,
        ),
        _at_most(
            "spool: CPU per event <= 1.15x the default handler's",
            OURS_SPOOL,
            _ratio(summary, OURS_SPOOL, "cpu_x_ours"),
            1.15,
            same_run,
        ),
        _at_most(
            "outage memory, 100,000 short records at the default bound <= 12 MiB",
            OURS,
            _median(runs, OURS, "outage_peak_delta_mib"),
            12.0,
            "peak RSS rise, MiB, median over repetitions",
        ),
    ]
    for contender in (OURS, OURS_SPOOL):
        calls = by_rep(runs, contender, "put_calls")
        minimum = by_rep(runs, contender, "put_calls_min")
        excess = [calls[rep] - minimum[rep] for rep in calls if rep in minimum]
        verdicts.append(
            _at_most(
                "PutLogEvents calls within one of the minimum",
                contender,
                max(excess) if excess else None,
                1.0,
                "worst repetition: calls made - ceil(max(events/10,000, bytes/1 MiB))",
            )
        )
    verdicts += [  # the earlier targets, still held
        _at_most(
            "caller p50 <= 1.2x format-only floor",
            OURS,
            _ratio(summary, OURS, "p50_x_floor"),
            1.2,
            same_run,
        ),
        _at_most(
            "CPU per delivered event <= 0.7x watchtower",
            OURS,
            _ratio(summary, OURS, "cpu_x_watchtower"),
            0.7,
            same_run,
        ),
        _memory_bound(runs),
    ]
    return verdicts


def memory_accounting(runs: list[dict[str, Any]]) -> list[str]:
    """Say how real memory per queued record compares with what this handler accounts for it.

    The default 64 MiB bound is never reached by 100,000 short records, so this factor is what
    tells how much memory the default bound really lets waiting records take.
    """
    notes = []
    floor = by_rep(runs, FLOOR_FORMAT, "outage_peak_delta_mib")
    for contender in (OURS, OURS_SPOOL):
        peaks = by_rep(runs, contender, "outage_peak_delta_mib")
        factors: list[float] = []
        bound = None
        for details in _outage_runs(runs, contender):
            queued = details["details"].get("stats", {}).get("bytes_queued")
            bound = details["details"].get("max_queue_bytes") or bound
            rep = details["rep"]
            if queued and rep in peaks:
                factors.append((peaks[rep] - floor.get(rep, 0.0)) * _MIB / queued)
        if not factors:
            continue
        factor = statistics.median(factors)
        note = (
            f"{LABELS[contender]}: peak RSS rise beyond the floor's = {factor:.2f}x the "
            "bytes_queued it accounts (median over repetitions)"
        )
        if bound:
            bound_mib = bound / _MIB
            note += f"; at max_queue_bytes={bound_mib:.0f} MiB, ~{factor * bound_mib:.0f} MiB"
        notes.append(note)
    return notes
