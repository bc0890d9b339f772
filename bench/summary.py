"""From the workers' raw figures to medians, ranges and same-run ratios.

The machine is noisy, so a ratio is only taken between two contenders of the same repetition (run
side by side, minutes apart at most); the median of those per-repetition ratios is what counts.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from bench.peers import FLOOR_FORMAT, FLOOR_FORMAT_ONCE, OURS, WATCHTOWER

DELIVER_METRICS: tuple[str, ...] = (
    "caller_p50_us",
    "caller_p99_us",
    "caller_p999_us",
    "caller_max_us",
    "cpu_per_event_us",
    "throughput_eps",
    "sustained_eps",
    "put_calls",
    "put_calls_min",
    "flush_s",
    "visible_s",
    "visible_unflushed_s",
)
OUTAGE_METRICS: tuple[str, ...] = (
    "outage_peak_delta_mib",
    "outage_second_half_mib",
    "outage_records",
)
METRICS: tuple[str, ...] = DELIVER_METRICS + OUTAGE_METRICS
"""Every metric the summary reports for every contender (None where it does not apply)."""

RATIOS: tuple[tuple[str, str, str], ...] = (
    ("caller_p50_us", FLOOR_FORMAT, "p50_x_floor"),
    ("caller_p99_us", FLOOR_FORMAT, "p99_x_floor"),
    ("caller_p999_us", FLOOR_FORMAT, "p999_x_floor"),
    ("cpu_per_event_us", FLOOR_FORMAT, "cpu_x_floor"),
    ("caller_p50_us", FLOOR_FORMAT_ONCE, "p50_x_floor_once"),
    ("caller_p99_us", FLOOR_FORMAT_ONCE, "p99_x_floor_once"),
    ("cpu_per_event_us", FLOOR_FORMAT_ONCE, "cpu_x_floor_once"),
    ("cpu_per_event_us", OURS, "cpu_x_ours"),
    ("throughput_eps", WATCHTOWER, "throughput_x_watchtower"),
    ("sustained_eps", WATCHTOWER, "sustained_x_watchtower"),
    ("caller_p50_us", WATCHTOWER, "p50_x_watchtower"),
    ("caller_p99_us", WATCHTOWER, "p99_x_watchtower"),
    ("cpu_per_event_us", WATCHTOWER, "cpu_x_watchtower"),
    ("outage_peak_delta_mib", WATCHTOWER, "outage_mem_x_watchtower"),
)
"""(metric, reference contender, name): each contender's figure over the reference's."""


@dataclass(frozen=True)
class Spread:
    """Median and range of one figure over the repetitions that produced it."""

    median: float | None
    low: float | None
    high: float | None
    values: tuple[float | None, ...]

    @classmethod
    def of(cls, values: list[float | None]) -> Spread:
        """Summarize ``values``; None entries (n/a in a repetition) are kept but not counted."""
        present = [value for value in values if value is not None]
        if not present:
            return cls(None, None, None, tuple(values))
        return cls(statistics.median(present), min(present), max(present), tuple(values))

    def as_json(self) -> dict[str, Any]:
        """Return the spread as plain JSON data."""
        return {"median": self.median, "min": self.low, "max": self.high, "values": self.values}


def by_rep(runs: list[dict[str, Any]], contender: str, metric: str) -> dict[int, float]:
    """Return ``metric`` of ``contender`` keyed by repetition, where the worker measured it."""
    figures: dict[int, float] = {}
    for run in runs:
        if run["contender"] == contender and run.get("available"):
            value = run.get(metric)
            if isinstance(value, int | float) and not isinstance(value, bool):
                figures[run["rep"]] = float(value)
    return figures


def summarize(runs: list[dict[str, Any]], contenders: tuple[str, ...]) -> dict[str, Any]:
    """Return per contender: every metric's spread, the same-run ratios, and why anything is n/a."""
    reps = sorted({run["rep"] for run in runs})
    summary: dict[str, Any] = {}
    for contender in contenders:
        metrics = {}
        for metric in METRICS:
            figures = by_rep(runs, contender, metric)
            metrics[metric] = Spread.of([figures.get(rep) for rep in reps]).as_json()
        ratios = {}
        for metric, reference, name in RATIOS:
            mine, theirs = by_rep(runs, contender, metric), by_rep(runs, reference, metric)
            per_rep = [mine[r] / theirs[r] if r in mine and theirs.get(r) else None for r in reps]
            ratios[name] = Spread.of(per_rep).as_json()
        reasons = sorted(
            {
                f"{run['mode']}: {run['reason']}"
                for run in runs
                if run["contender"] == contender and not run.get("available")
            }
        )
        summary[contender] = {"metrics": metrics, "ratios": ratios, "not_available": reasons}
    return summary
