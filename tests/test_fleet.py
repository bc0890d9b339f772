"""A fleet sharing one account's rates loses, refuses and drops nothing, and its figures add up."""

from __future__ import annotations

import pytest

from bench.fleet import FleetConfig, run_fleet
from bench.fleet_figures import calls_per_bin, queued_per_bin, waves
from local_aws.aws_front import Call


def test_calls_are_counted_per_bin_and_outcome() -> None:
    """Each call lands in its 100 ms bin, keyed by operation and outcome; calls outside do not."""
    calls = [
        Call(10.00, "PutLogEvents", "passed"),
        Call(10.05, "PutLogEvents", "passed"),
        Call(10.15, "PutLogEvents", "throttled"),
        Call(10.35, "CreateLogStream", "passed"),
        Call(9.99, "PutLogEvents", "passed"),  # before the origin
        Call(10.45, "PutLogEvents", "passed"),  # past the last bin
    ]
    assert calls_per_bin(calls, origin_s=10.0, bins=4) == {
        "CreateLogStream passed": [0, 0, 0, 1],
        "PutLogEvents passed": [2, 0, 0, 0],
        "PutLogEvents throttled": [0, 1, 0, 0],
    }


def test_waves_leave_out_the_burst_and_compare_with_the_quota() -> None:
    """Attempts in the first second after an operation's first call are not counted as waves."""
    burst = [Call(5.0 + i / 1000, "CreateLogStream", "throttled") for i in range(40)]
    wave = [Call(6.55 + i / 1000, "CreateLogStream", "throttled") for i in range(8)]
    later = [Call(7.05, "CreateLogStream", "passed")]
    figures = waves([*burst, *wave, *later], "CreateLogStream", rate_per_s=5.0, origin_s=0.0)
    assert (figures.attempts, figures.throttled, figures.peak) == (49, 48, 8)
    assert figures.bins == 11  # 6.0 to 7.05 s
    assert figures.bins_over_quota == 2
    assert figures.quota_per_bin == pytest.approx(0.5)


def test_queued_events_are_summed_across_workers_at_each_bins_end() -> None:
    """A worker counts with its latest sample, nothing before its first or after its last."""
    first = [(0.05, 10), (0.15, 20), (0.25, 0)]
    second = [(0.12, 5)]
    assert queued_per_bin([first, second], origin_s=0.0, bins=5) == [10, 25, 0, 0, 0]


@pytest.mark.slow
def test_a_throttled_fleet_delivers_every_record_exactly_once() -> None:
    """12 processes over tight account-wide rates are throttled, and still lose nothing."""
    report = run_fleet(
        FleetConfig(
            processes=12,
            seconds=8.0,
            rate_per_process=20.0,
            rates={"CreateLogStream": 2.0, "PutLogEvents": 10.0},
        )
    )
    assert report.failures == []  # every worker ended, with a result
    assert len(report.workers) == 12
    assert report.logged == 12 * 160
    assert (report.delivered, report.lost, report.duplicated) == (report.logged, 0, 0)
    assert report.refused == []
    assert report.dropped == {}
    assert report.throttled.get("CreateLogStream", 0) > 0  # so retries were exercised
    assert report.retries >= sum(report.throttled.values())
    assert all(worker["flush_settled"] for worker in report.workers)
