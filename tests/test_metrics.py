"""Delivery metrics as Embedded Metric Format events: valid per the spec, deltas, and delivered."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from handler_factory import HandlerFactory, unique_group
from test_end_to_end import run_python

from aws_cloudwatch_logs_handler import (
    CloudWatchLogsHandler,
    ConfigurationError,
    DeliveryMetrics,
    DeliveryStats,
)
from aws_cloudwatch_logs_handler._metrics import METRIC_NAMES, emf_event
from local_aws.moto_endpoint import MotoEndpoint

UNITS = {"Count", "Bytes", "Seconds", "Milliseconds", "None"}  # the subset a checker needs here


def check_emf(event: dict[str, Any]) -> None:
    """Assert that ``event`` follows the EMF specification, with its limits.

    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
    """
    meta = event["_aws"]
    assert isinstance(meta["Timestamp"], int) and meta["Timestamp"] > 0
    directives = meta["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    for directive in directives:
        assert isinstance(directive["Namespace"], str) and 0 < len(directive["Namespace"]) <= 255
        assert not directive["Namespace"].startswith("AWS/")
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= 30
            for name in dimension_set:
                assert isinstance(event[name], str) and 0 < len(event[name]) <= 1024
        metrics = directive["Metrics"]
        assert 0 < len(metrics) <= 100
        for metric in metrics:
            assert 0 < len(metric["Name"]) <= 255 and metric.get("Unit", "None") in UNITS
            value = event[metric["Name"]]
            values = value if isinstance(value, list) else [value]
            assert len(values) <= 100
            assert all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


@pytest.fixture
def metrics_for() -> Iterator[Any]:
    """Build DeliveryMetrics without a schedule; every one is closed afterwards."""
    made: list[DeliveryMetrics] = []

    def build(handlers: list[CloudWatchLogsHandler], **options: Any) -> DeliveryMetrics:
        metrics = DeliveryMetrics(handlers, start=False, **options)
        made.append(metrics)
        return metrics

    yield build
    for metrics in made:
        metrics.close(timeout_s=10)


def test_an_event_carries_every_counter_within_the_specs_limits() -> None:
    """One directive, every metric valued, dimensions as top-level strings; it parses as EMF."""
    stats = DeliveryStats(records_accepted=5, events_delivered=4, dropped={"queue_full": 1})
    event = json.loads(
        json.dumps(
            emf_event(
                stats,
                None,
                namespace="App",
                dimensions={"LogGroup": "/g", "Service": "shop"},
                timestamp_ms=1_700_000_000_000,
            )
        )
    )
    check_emf(event)
    assert set(METRIC_NAMES) <= set(event)
    assert (event["RecordsAccepted"], event["Dropped"], event["DroppedQueueFull"]) == (5, 1, 1)
    assert event["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["LogGroup", "Service"]]


def test_running_totals_are_sent_as_changes_and_the_queue_as_it_is() -> None:
    """Against a previous snapshot, counters are deltas; the queue's size is a gauge."""
    before = DeliveryStats(records_accepted=5, events_queued=3, dropped={"too_old": 2})
    after = DeliveryStats(records_accepted=9, events_queued=1, dropped={"too_old": 3})
    event = emf_event(after, before, namespace="A", dimensions={}, timestamp_ms=1)
    assert (event["RecordsAccepted"], event["DroppedTooOld"], event["EventsQueued"]) == (4, 1, 1)


def test_published_events_arrive_and_count_what_the_handler_dropped(
    moto_server: MotoEndpoint, make_handler: HandlerFactory, metrics_for: Any
) -> None:
    """Records, then a record too old to send: the metrics group holds EMF events saying so."""
    measured = make_handler(endpoint_url=moto_server.url, log_stream="app")
    logger = make_handler.logger(measured)
    metrics_group = unique_group()
    metrics = metrics_for(
        [measured],
        log_group=metrics_group,
        dimensions={"Service": "shop"},
        handler_options={"endpoint_url": moto_server.url, "log_stream": "metrics"},
    )
    for i in range(3):
        logger.info("record %d", i)
    assert measured.flush(timeout_s=30)
    assert metrics.publish() == 1
    stale = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "stale", (), None)
    stale.created -= 15 * 24 * 3600  # CloudWatch refuses events over 14 days old
    logger.handle(stale)
    assert measured.flush(timeout_s=30)
    assert metrics.publish() == 1
    assert metrics.handler.flush(timeout_s=30)
    first, second = (json.loads(m) for m in moto_server.messages(metrics_group, "metrics"))
    for event in (first, second):
        check_emf(event)
        assert (event["LogGroup"], event["Service"]) == (measured.log_group_name, "shop")
    assert (first["RecordsAccepted"], first["EventsDelivered"], first["Dropped"]) == (3, 3, 0)
    assert (second["RecordsAccepted"], second["Dropped"], second["DroppedTooOld"]) == (1, 1, 1)


def test_the_last_figures_are_published_at_exit(moto_server: MotoEndpoint) -> None:
    """A script that starts the schedule and just ends has one event delivered at exit, at once."""
    app_group, metrics_group = unique_group(), unique_group()
    done = run_python(
        f"""
        import logging
        from aws_cloudwatch_logs_handler import CloudWatchLogsHandler, DeliveryMetrics
        handler = CloudWatchLogsHandler({app_group!r}, log_stream="app")
        DeliveryMetrics([handler], log_group={metrics_group!r},
                        handler_options={{"log_stream": "metrics"}})
        logging.getLogger("app").addHandler(handler)
        logging.getLogger("app").warning("one")
        """,
        moto_server.url,
        timeout_s=50,  # far below the 60 s interval: only the exit hook can have published
    )
    assert done.returncode == 0, done.stderr
    [event] = [json.loads(m) for m in moto_server.messages(metrics_group, "metrics")]
    check_emf(event)
    assert event["RecordsAccepted"] == 1 and event["LogGroup"] == app_group


@pytest.mark.parametrize(
    ("options", "fix"),
    [
        ({"interval_s": 10}, "at least 60"),
        ({"namespace": "AWS/Logs"}, "'AWS/'"),
        ({"dimensions": {f"D{i}": "v" for i in range(30)}}, "at most 29"),
        ({"dimensions": {"LogGroup": "x"}}, "reuses a name"),
        ({"dimensions": {"Service": ""}}, "string values"),
        ({"log_group": "MEASURED"}, "measured handler's group"),
    ],
)
def test_bad_options_are_refused_at_construction(
    make_handler: HandlerFactory, options: dict[str, Any], fix: str
) -> None:
    """Each invalid option raises ConfigurationError naming the fix, before any thread starts."""
    measured = make_handler(endpoint_url="http://127.0.0.1:9")
    settings: dict[str, Any] = {"log_group": unique_group(), **options}
    if settings["log_group"] == "MEASURED":
        settings["log_group"] = measured.log_group_name
    with pytest.raises(ConfigurationError, match=re.escape(fix)):
        DeliveryMetrics([measured], start=False, **settings)


def test_handlers_must_be_ours() -> None:
    """A plain logging.Handler has no delivery counters: refused."""
    with pytest.raises(ConfigurationError, match="CloudWatchLogsHandler"):
        DeliveryMetrics([logging.NullHandler()], log_group="/m", start=False)  # type: ignore[list-item]
