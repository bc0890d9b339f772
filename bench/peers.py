"""How each contender is set up: this handler (default, and with the spool), watchtower, the
article's handler, and the floors: formatting alone (as `logging.Formatter` writes the text, and
as our handler writes the same text, its time made once a second) and a QueueHandler.

Every contender gets the same formatter (set by the worker) so that only the handlers differ; each
that talks to AWS reports its PutLogEvents calls to one `PutLogEventsCounter`.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import logging.handlers
import queue
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_cloudwatch_logs_handler._plain_format import PlainFormat, fastest_format
from bench.calls import PutLogEventsCounter
from bench.endpoint import REGION

OURS = "ours"
OURS_SPOOL = "ours-spool"
WATCHTOWER = "watchtower"
ARTICLE = "article"
FLOOR_FORMAT = "floor-format"
FLOOR_FORMAT_ONCE = "floor-format-once"
FLOOR_QUEUE = "floor-queue"
OURS_SMALL_QUEUE = "ours-4mib"

CONTENDERS: tuple[str, ...] = (
    OURS,
    OURS_SPOOL,
    WATCHTOWER,
    ARTICLE,
    FLOOR_FORMAT,
    FLOOR_FORMAT_ONCE,
    FLOOR_QUEUE,
    OURS_SMALL_QUEUE,
)
"""Every contender, in the order the table lists them."""

OUTAGE_ONLY: frozenset[str] = frozenset({OURS_SMALL_QUEUE})
"""Variants that only answer the outage question: with the default 64 MiB bound, 100,000 short
records never reach it, so a small bound is what shows whether the bound holds."""

DELIVER_ONLY: frozenset[str] = frozenset({FLOOR_FORMAT_ONCE})
"""Variants that only answer the timed calls' question (latency and CPU beside the other floor)."""

SMALL_QUEUE_BYTES = 4 * 1024 * 1024

LABELS: dict[str, str] = {
    OURS: "ours (defaults)",
    OURS_SPOOL: "ours (spool_dir)",
    OURS_SMALL_QUEUE: "ours (max_queue 4 MiB)",
    WATCHTOWER: "watchtower 3.4.0",
    ARTICLE: "article (sync)",
    FLOOR_FORMAT: "floor: format only",
    FLOOR_FORMAT_ONCE: "floor: format, time once a second",
    FLOOR_QUEUE: "floor: QueueHandler",
}

DELIVERS: frozenset[str] = frozenset({OURS, OURS_SPOOL, WATCHTOWER, ARTICLE})
"""Contenders that send to the endpoint; the floors only format, so calls and visibility are n/a."""

_WATCHTOWER_STREAM = "bench"
_OUTAGE_SHUTDOWN_TIMEOUT_S = 0.5
_PRIME_TIMEOUT_S = 2.0
"""Long enough for the sender to build its client and see the first connection refused."""


class UnavailableError(Exception):
    """A contender that cannot run here (yet): reported as n/a with the reason, never a failure."""


@dataclass
class Contender:
    """A handler ready to be attached to a logger, and how to drive and inspect it."""

    handler: logging.Handler
    flush: Callable[[], object]
    close: Callable[[], None]
    target: tuple[str, str] | None
    """Group and stream a reader checks; None for the floors, which deliver nowhere."""
    details: Callable[[], dict[str, Any]] = field(default=dict)
    """Figures the contender reports about itself (this handler's `stats()`), taken at the end."""
    prime: Callable[[], object] = field(default=lambda: None)
    """Make the handler build what it builds lazily before an outage is measured.

    This handler builds its boto3 client on the sender's first attempt; botocore's service model
    alone takes ~10 MiB, which is set-up (watchtower's client exists before it is measured), not
    memory that waiting records hold.
    """


class FormatOnlyHandler(logging.Handler):
    """The floor: a handler that formats each record and does nothing else."""

    def emit(self, record: logging.LogRecord) -> None:
        """Format the record, as every real handler must, and drop the result."""
        self.format(record)


class FormatOnceASecondHandler(logging.Handler):
    """The floor as our handler formats: the same text as `FormatOnlyHandler`'s, written by
    `PlainFormat` (a plain formatter's time text made once a second), and nothing else.

    Our handler formats a plain `logging.Formatter`'s records that way, so against the first
    floor it gains what `PlainFormat` saves; against this one, what is left is its own cost.
    """

    def __init__(self) -> None:
        super().__init__()
        self._format: PlainFormat | logging.Formatter | None = None

    def setFormatter(self, fmt: logging.Formatter | None) -> None:  # noqa: N802  # logging's name
        """Set the formatter, and format as our handler does (`fastest_format`)."""
        super().setFormatter(fmt)
        self._format = None if fmt is None else fastest_format(fmt)

    def emit(self, record: logging.LogRecord) -> None:
        """Format the record as our handler would, and drop the result."""
        (self._format or self).format(record)


def set_up(
    name: str,
    *,
    endpoint_url: str,
    group: str,
    counter: PutLogEventsCounter,
    spool_dir: str,
    outage: bool,
) -> Contender:
    """Build contender ``name`` pointed at ``endpoint_url``, writing to ``group``.

    Raises:
        UnavailableError: the contender cannot run here; the reason goes into the report.
    """
    if name in (OURS, OURS_SPOOL, OURS_SMALL_QUEUE):
        return _ours(
            endpoint_url=endpoint_url,
            group=group,
            counter=counter,
            spool_dir=spool_dir if name == OURS_SPOOL else None,
            max_queue_bytes=SMALL_QUEUE_BYTES if name == OURS_SMALL_QUEUE else None,
            outage=outage,
        )
    if name == WATCHTOWER:
        return _watchtower(endpoint_url=endpoint_url, group=group, counter=counter, outage=outage)
    if name == ARTICLE:
        return _article(group=group, counter=counter, outage=outage)
    if name in (FLOOR_FORMAT, FLOOR_FORMAT_ONCE):
        handler = FormatOnlyHandler() if name == FLOOR_FORMAT else FormatOnceASecondHandler()
        return Contender(handler=handler, flush=handler.flush, close=handler.close, target=None)
    if name == FLOOR_QUEUE:
        return _queue_floor()
    raise ValueError(f"unknown contender {name!r}; choose from {', '.join(CONTENDERS)}")


def _session(counter: PutLogEventsCounter) -> Any:
    import boto3

    # Hooks registered on a session are copied into every client it builds later, so the count
    # sees a client the handler builds itself, with its own configuration.
    session = boto3.session.Session(region_name=REGION)
    counter.register(session.events)
    return session


def _ours(
    *,
    endpoint_url: str,
    group: str,
    counter: PutLogEventsCounter,
    spool_dir: str | None,
    max_queue_bytes: int | None,
    outage: bool,
) -> Contender:
    try:
        from aws_cloudwatch_logs_handler import CloudWatchLogsHandler
    except ImportError as error:
        raise UnavailableError(f"aws_cloudwatch_logs_handler does not import: {error}") from error

    options: dict[str, Any] = {}
    if spool_dir is not None:
        options["spool_dir"] = spool_dir
    if max_queue_bytes is not None:
        options["max_queue_bytes"] = max_queue_bytes
    if outage:
        # The worker exits without waiting; a short bound is a second line of defence.
        options["shutdown_timeout_s"] = _OUTAGE_SHUTDOWN_TIMEOUT_S
    try:
        handler = CloudWatchLogsHandler(
            group, session=_session(counter), endpoint_url=endpoint_url, **options
        )
    except (TypeError, ImportError, NotImplementedError) as error:
        # The spool may land after the rest of the library: n/a until it does. Without the
        # spool these are real failures and must fail the worker.
        if spool_dir is None:
            raise
        raise UnavailableError(f"spool_dir not supported yet: {error}") from error

    bound = options.get("max_queue_bytes", _default_max_queue_bytes(CloudWatchLogsHandler))

    def details() -> dict[str, Any]:
        figures: dict[str, Any] = {"max_queue_bytes": bound}
        figures["stats"] = plain_data(handler.stats())
        return figures

    return Contender(
        handler=handler,
        flush=handler.flush,
        close=handler.close,
        target=(handler.log_group_name, handler.log_stream_name),
        details=details,
        # A flush wakes the sender now: it builds its client and makes its first attempt.
        prime=lambda: handler.flush(timeout_s=_PRIME_TIMEOUT_S),
    )


def plain_data(value: Any) -> Any:
    """Return ``value`` as JSON-ready data: dataclasses and read-only mappings become dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): plain_data(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _default_max_queue_bytes(handler_type: type) -> int | None:
    """Return the handler's default memory bound, as its signature declares it."""
    parameter = inspect.signature(handler_type).parameters.get("max_queue_bytes")
    if parameter is not None and isinstance(parameter.default, int):
        return parameter.default
    return None


def _watchtower(
    *, endpoint_url: str, group: str, counter: PutLogEventsCounter, outage: bool
) -> Contender:
    import watchtower

    client = _session(counter).client("logs", endpoint_url=endpoint_url)
    handler = watchtower.CloudWatchLogHandler(
        log_group_name=group,
        log_stream_name=_WATCHTOWER_STREAM,
        boto3_client=client,
        # watchtower calls AWS in __init__ and lets a connection error escape: in an outage it
        # could not even be built with its default.
        create_log_group=not outage,
    )
    return Contender(
        handler=handler,
        flush=handler.flush,
        close=handler.close,
        target=(group, _WATCHTOWER_STREAM),
    )


def _article(*, group: str, counter: PutLogEventsCounter, outage: bool) -> Contender:
    if outage:
        raise UnavailableError(
            "n/a by design: its __init__ calls AWS and each record blocks the caller, "
            "so nothing waits in memory"
        )
    import boto3

    from bench.article_handler import ArticleCloudWatchLogsHandler

    # The article builds its client with boto3.client("logs"), from boto3's default session;
    # AWS_ENDPOINT_URL in the worker's environment points it at the endpoint.
    boto3.setup_default_session()
    default_session = boto3.DEFAULT_SESSION
    assert default_session is not None  # just set up
    counter.register(default_session.events)
    handler = ArticleCloudWatchLogsHandler(group)
    return Contender(
        handler=handler,
        flush=handler.flush,
        close=handler.close,
        target=(handler.log_group_name, handler.log_stream_name),
    )


def _queue_floor() -> Contender:
    # A Queue (not SimpleQueue) counts finished tasks, so join() is a flush.
    records: queue.Queue[logging.LogRecord] = queue.Queue()
    handler = logging.handlers.QueueHandler(records)
    listener = logging.handlers.QueueListener(records, FormatOnlyHandler())
    listener.start()

    def close() -> None:
        listener.stop()
        handler.close()

    return Contender(handler=handler, flush=records.join, close=close, target=None)
