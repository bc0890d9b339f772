"""Opt-in metrics about delivery itself: each handler's counters as Embedded Metric Format events.

An alarm on ``Dropped`` is how an operator learns that records are being lost. The counters come
from `CloudWatchLogsHandler.stats`; each publication sends, per measured handler, one EMF event
with what changed since the previous one (so CloudWatch's Sum over a period is the period's
count), through a handler of its own to the group the user names. CloudWatch Logs extracts the
metrics from such events itself; the ``x-amzn-logs-format: json/emf`` header is optional.
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Generation_PutLogEvents.html
"""

from __future__ import annotations

import atexit
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from ._errors import ConfigurationError
from ._handler import CloudWatchLogsHandler
from ._stats import DROP_REASONS, DeliveryStats

# The EMF specification's limits (see the module's first link).
MAX_METRICS_PER_DIRECTIVE: Final = 100
MAX_DIMENSIONS_PER_SET: Final = 30
MAX_NAME_CHARS: Final = 255
MAX_DIMENSION_VALUE_CHARS: Final = 1024
MIN_INTERVAL_S: Final = 60.0
"""CloudWatch's standard resolution is one minute: publishing more often only costs events."""
DEFAULT_NAMESPACE: Final = "CloudWatchLogsHandler"
GROUP_DIMENSION: Final = "LogGroup"
DROPPED_METRIC: Final = "Dropped"
"""Records the handler could not deliver, whatever the reason: the metric to alarm on."""


def _camel(reason: str) -> str:
    return "".join(part.capitalize() for part in reason.split("_"))


# (metric name, unit, how to read it from a snapshot, whether it is a running total)
_Reader = Callable[[DeliveryStats], int]
_METRICS: Final[tuple[tuple[str, str, _Reader, bool], ...]] = (
    ("RecordsAccepted", "Count", lambda s: s.records_accepted, True),
    ("EventsDelivered", "Count", lambda s: s.events_delivered, True),
    ("BytesDelivered", "Bytes", lambda s: s.bytes_delivered, True),
    ("Batches", "Count", lambda s: s.batches, True),
    ("Retries", "Count", lambda s: s.retries, True),
    (DROPPED_METRIC, "Count", lambda s: s.dropped_total, True),
    *(
        (f"Dropped{_camel(reason)}", "Count", lambda s, r=reason: s.dropped.get(r, 0), True)
        for reason in DROP_REASONS
    ),
    ("EventsQueued", "Count", lambda s: s.events_queued, False),
    ("BytesQueued", "Bytes", lambda s: s.bytes_queued, False),
)
METRIC_NAMES: Final = tuple(name for name, _, _, _ in _METRICS)
"""Every metric an EMF event carries: running totals as deltas, the queue as it is now."""


def emf_event(
    stats: DeliveryStats,
    previous: DeliveryStats | None,
    *,
    namespace: str,
    dimensions: Mapping[str, str],
    timestamp_ms: int,
) -> dict[str, Any]:
    """Return one EMF event for ``stats``: running totals as the change since ``previous``."""
    values: dict[str, Any] = dict(dimensions)
    for name, _, read, total in _METRICS:
        value = read(stats)
        if total and previous is not None:
            value -= read(previous)
        values[name] = max(0, value)
    values["_aws"] = {
        "Timestamp": timestamp_ms,
        "CloudWatchMetrics": [
            {
                "Namespace": namespace,
                "Dimensions": [list(dimensions)],
                "Metrics": [{"Name": name, "Unit": unit} for name, unit, _, _ in _METRICS],
            }
        ],
    }
    return values


class DeliveryMetrics:
    """Publish handlers' delivery counters as EMF events: at most once per interval, and at exit.

    ``DeliveryMetrics([handler], log_group="/my/app/metrics")`` starts a daemon thread that,
    every ``interval_s``, sends one event per handler to ``log_group`` through a
    `CloudWatchLogsHandler` of its own; an ``atexit`` hook sends the last figures. Each event's
    dimensions are ``LogGroup`` (the measured handler's group) and ``dimensions``.

    Args:
        handlers: the handlers to measure.
        log_group: where the EMF events go; not one of the measured groups, so that the
            metrics are not mixed with the logs.
        namespace: the CloudWatch metrics namespace.
        dimensions: more dimensions for every metric, e.g. ``{"Service": "checkout"}``.
        interval_s: seconds between publications; at least 60.
        start: start the schedule and the exit hook now (tests pass False and call `publish`).
        handler_options: keyword arguments for the metrics' own `CloudWatchLogsHandler`
            (``endpoint_url``, ``session``, ``client``, ``log_stream``, ``ttl``...).

    Raises:
        ConfigurationError: an argument is invalid; the message names it and the fix.
    """

    def __init__(
        self,
        handlers: Iterable[CloudWatchLogsHandler],
        *,
        log_group: str,
        namespace: str = DEFAULT_NAMESPACE,
        dimensions: Mapping[str, str] | None = None,
        interval_s: float = MIN_INTERVAL_S,
        start: bool = True,
        handler_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._handlers = list(handlers)
        if not self._handlers or not all(
            isinstance(h, CloudWatchLogsHandler) for h in self._handlers
        ):
            raise ConfigurationError("handlers must be a non-empty list of CloudWatchLogsHandler")
        measured = {h.log_group_name for h in self._handlers}
        if log_group in measured:
            raise ConfigurationError(
                f"log_group={log_group!r} is a measured handler's group; name another one, "
                "e.g. f'{log_group}/metrics', so that metrics and logs stay apart"
            )
        self._namespace = _check_namespace(namespace)
        self._dimensions = _check_dimensions(dimensions or {})
        if (
            isinstance(interval_s, bool)
            or not isinstance(interval_s, int | float)
            or not (interval_s >= MIN_INTERVAL_S)
        ):
            raise ConfigurationError(
                f"interval_s={interval_s!r} must be a number of seconds, at least "
                f"{MIN_INTERVAL_S:g} (CloudWatch's standard resolution)"
            )
        self._interval_s = float(interval_s)
        # Its own handler: the measured handlers' formatters and streams stay untouched.
        self._handler = CloudWatchLogsHandler(log_group, **dict(handler_options or {}))
        self._previous: dict[int, DeliveryStats] = {}
        self._lock = threading.Lock()  # one publication at a time: deltas must not overlap
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        if start:
            self._thread = threading.Thread(
                target=self._run, name="cloudwatch-logs-metrics", daemon=True
            )
            self._thread.start()
            atexit.register(self._at_exit)

    @property
    def handler(self) -> CloudWatchLogsHandler:
        """The handler the EMF events go through (its `stats` say whether they arrive)."""
        return self._handler

    def publish(self) -> int:
        """Send one EMF event per measured handler now; return how many were queued."""
        with self._lock:
            if self._closed:
                return 0
            now_ms = int(time.time() * 1000)
            sent = 0
            for measured in self._handlers:
                stats = measured.stats()
                event = emf_event(
                    stats,
                    self._previous.get(id(measured)),
                    namespace=self._namespace,
                    dimensions={GROUP_DIMENSION: measured.log_group_name, **self._dimensions},
                    timestamp_ms=now_ms,
                )
                self._previous[id(measured)] = stats
                record = logging.LogRecord(
                    __name__, logging.INFO, __file__, 0, "%s", (json.dumps(event),), None
                )
                record.created = now_ms / 1000
                self._handler.handle(record)
                sent += 1
            return sent

    def close(self, *, timeout_s: float = 5.0) -> None:
        """Publish the last figures, stop the schedule, and deliver within ``timeout_s``."""
        if self._closed:
            return
        self.publish()
        self._stop.set()
        with self._lock:
            self._closed = True
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        atexit.unregister(self._at_exit)
        self._handler.flush(timeout_s)
        self._handler.close()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.publish()
            except Exception as error:  # the schedule must survive a bad snapshot
                sys.stderr.write(f"aws_cloudwatch_logs_handler: metrics not published: {error!r}\n")

    def _at_exit(self) -> None:
        """Queue the last figures; the sender's own exit hook (registered earlier, so it runs
        later) delivers them within its ``shutdown_timeout_s``."""
        self._stop.set()
        try:
            self.publish()
        except Exception:  # nothing may raise at exit
            return


def _check_namespace(namespace: str) -> str:
    if (
        not isinstance(namespace, str)
        or not 0 < len(namespace) <= MAX_NAME_CHARS
        or namespace.startswith("AWS/")
    ):
        raise ConfigurationError(
            f"namespace={namespace!r} must be 1 to {MAX_NAME_CHARS} characters and not start "
            "with 'AWS/' (reserved for AWS services)"
        )
    return namespace


def _check_dimensions(dimensions: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(dimensions, Mapping) or not all(
        isinstance(k, str)
        and isinstance(v, str)
        and 0 < len(k) <= MAX_NAME_CHARS
        and 0 < len(v) <= MAX_DIMENSION_VALUE_CHARS
        and not k.startswith(":")
        for k, v in dimensions.items()
    ):
        raise ConfigurationError(
            f"dimensions={dimensions!r} must map names (1-{MAX_NAME_CHARS} characters) to "
            f"string values (1-{MAX_DIMENSION_VALUE_CHARS}), e.g. {{'Service': 'checkout'}}"
        )
    if GROUP_DIMENSION in dimensions or dimensions.keys() & set(METRIC_NAMES):
        raise ConfigurationError(
            f"dimensions={dimensions!r} reuses a name the metrics use ({GROUP_DIMENSION!r} or a "
            "metric's name); choose another"
        )
    if len(dimensions) + 1 > MAX_DIMENSIONS_PER_SET:
        raise ConfigurationError(
            f"dimensions has {len(dimensions)} names; EMF allows {MAX_DIMENSIONS_PER_SET} per "
            f"set, one of which is {GROUP_DIMENSION!r}: pass at most {MAX_DIMENSIONS_PER_SET - 1}"
        )
    return dict(dimensions)
