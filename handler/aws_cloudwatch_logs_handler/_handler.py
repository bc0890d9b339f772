"""The `logging.Handler`: format the record, cut it into events, enqueue. No I/O on the caller.

Everything that talks to AWS lives in `_sender`; this module only decides what to send and where.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import Any, Final

from ._client import ClientSource
from ._errors import ConfigurationError
from ._events import OversizePolicy, make_events
from ._lambda_level import lambda_log_level
from ._limits import (
    EVENT_OVERHEAD_BYTES,
    LEGACY_MAX_EVENT_BYTES,
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
)
from ._names import dated_uuid_stream_name, validate_log_group_name, validate_log_stream_name
from ._plain_format import PlainFormat, fastest_format
from ._queues import MEMORY_OVERHEAD_PER_EVENT, DeliverySettings, HandlerQueues, OverflowPolicy
from ._reporting import ProblemCallback, Reporter
from ._retention import RetentionDays, validate_retention_days
from ._sender import LIFECYCLE, SENDER
from ._stats import DeliveryStats
from ._streams import FixedStream, StreamNamer, default_stream_namer

DEFAULT_FLUSH_INTERVAL_S: Final = 2.0
DEFAULT_MAX_QUEUE_BYTES: Final = 64 * 1024 * 1024
DEFAULT_SHUTDOWN_TIMEOUT_S: Final = 5.0
DEFAULT_BLOCK_TIMEOUT_S: Final = 1.0
SDK_LOGGERS: Final = ("botocore", "boto3", "urllib3", "s3transfer")
"""Loggers whose records are not shipped by default: the SDK logs about its own calls, and our
sender makes such calls, so shipping them could feed the handler its own traffic."""

_OVERFLOW_POLICIES: Final = ("block", "drop_newest", "drop_oldest")
_OVERSIZE_POLICIES: Final = ("split", "truncate")
_MIN_EVENT_BYTES: Final = 1024  # room for a split part's marker and some text

_SIGTERM: Final = LIFECYCLE.sigterm
_get_ident: Final = threading.get_ident  # one lookup less on every logging call
_LIVE_HANDLERS: Final[weakref.WeakSet[CloudWatchLogsHandler]] = weakref.WeakSet()


def _closed_when_collected(queues: HandlerQueues) -> None:
    """Mark a collected handler's queues closed, without the sender's lock: a collection may run
    on any thread at any allocation, the sender's own while it holds that lock (which does not
    nest), or a child forked below Python that inherited it held. The sender reads the flag on
    its next round, delivers what waits and then forgets the queues."""
    queues.closed = True


def live_handlers() -> list[CloudWatchLogsHandler]:
    """Every handler of this process that is not closed (for `flush_after_invocation`)."""
    return [handler for handler in list(_LIVE_HANDLERS) if not handler._closed]


class CloudWatchLogsHandler(logging.Handler):
    """Ship log records to a CloudWatch Logs group, batched on a background sender.

    ``emit`` only formats and enqueues: no network call, no exception into the caller. One sender
    thread per process creates the group and stream when first needed, batches to AWS's limits,
    retries what may pass, and counts what it cannot deliver (see `stats`).

    See `__init__` for every option.
    """

    def __init__(
        self,
        log_group: str,
        *,
        log_stream: str | None = None,
        ttl: RetentionDays | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        session: Any = None,
        client: Any = None,
        endpoint_url: str | None = None,
        create_log_group: bool = True,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        overflow: OverflowPolicy = "drop_newest",
        block_timeout_s: float = DEFAULT_BLOCK_TIMEOUT_S,
        max_event_bytes: int = MAX_EVENT_BYTES,
        oversize: OversizePolicy = "split",
        shutdown_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S,
        spool_dir: str | os.PathLike[str] | None = None,
        on_problem: ProblemCallback | None = None,
        exclude_loggers: tuple[str, ...] = SDK_LOGGERS,
        per_environment_stream: bool = False,
        handle_sigterm: bool = True,
        level: int | str | None = None,
    ) -> None:
        """Check every option and register with the process's sender; no network call.

        Args:
            log_group: the log group's name.
            log_stream: the stream's name. Default: ``stream/YYYY/MM/DD/HHMM/<uuid4>`` (UTC,
                once per handler); in Lambda, named from each invocation's request context.
            ttl: retention applied when this handler creates the group; ``None`` never expires.
            access_key: with ``secret_key``, explicit credentials (as in the article).
            secret_key: see ``access_key``.
            region: the AWS Region; default: boto3's (``AWS_REGION``, config files).
            profile: a named profile of the shared config files.
            session: a ``boto3.session.Session`` to build the client from.
            client: a ready ``logs`` client; then no other credential argument may be given.
            endpoint_url: send to this endpoint instead of AWS's (a local stand-in, a VPC endpoint).
            create_log_group: create the group if it is missing; with ``False`` a missing group is
                retried until it appears.
            flush_interval_s: the longest a record waits before its batch is sent.
            max_queue_bytes: the memory that waiting records may hold (text plus
                `MEMORY_OVERHEAD_PER_EVENT` each); past it, ``overflow`` decides.
            overflow: ``"drop_newest"`` (default: the caller never waits), ``"drop_oldest"``, or
                ``"block"`` (wait up to ``block_timeout_s`` for room, then drop the new record).
            block_timeout_s: the longest a logging call waits under ``overflow="block"``.
            max_event_bytes: the largest message in one event (UTF-8 bytes); bigger ones are split
                into marked parts, or cut with ``oversize="truncate"``. Default: AWS's 1 MB limit.
            oversize: ``"split"`` (default, nothing lost) or ``"truncate"``.
            shutdown_timeout_s: how long the process may spend delivering at exit (or at SIGTERM),
                and the bound of ``flush()`` called without one.
            handle_sigterm: deliver what is queued when SIGTERM ends the process, then let the
                signal end it (status 143 / -15). Installed only where SIGTERM still has Python's
                default disposition, never over the application's own handler; ``False`` keeps the
                default untouched.
            spool_dir: keep an on-disk journal of undelivered records there (survives a crash).
            on_problem: receives one line per delivery problem; default: standard error,
                rate-limited. It must not log through this handler.
            exclude_loggers: loggers (and their children) whose records are not shipped.
            per_environment_stream: in Lambda, one stream per execution environment instead of one
                per invocation (for functions invoked faster than CreateLogStream's quota allows).
            level: the handler's level. Default: in Lambda, the level of its logging controls
                (``AWS_LAMBDA_LOG_LEVEL``), elsewhere ``NOTSET``; pass any level to choose it.

        Raises:
            ConfigurationError: an argument is invalid; the message names it and the fix.
        """
        if log_group is None:
            raise ConfigurationError("Log Group name is required: pass log_group, e.g. '/my/app'")
        group = validate_log_group_name(log_group)
        if log_stream is not None:
            validate_log_stream_name(log_stream)
        retention = validate_retention_days(ttl)
        _check_positive("flush_interval_s", flush_interval_s)
        _check_positive("block_timeout_s", block_timeout_s)
        _check_positive("shutdown_timeout_s", shutdown_timeout_s, allow_zero=True)
        _check_choice("overflow", overflow, _OVERFLOW_POLICIES)
        _check_choice("oversize", oversize, _OVERSIZE_POLICIES)
        if not (
            type(max_event_bytes) is int and _MIN_EVENT_BYTES <= max_event_bytes <= MAX_EVENT_BYTES
        ):
            raise ConfigurationError(
                f"max_event_bytes={max_event_bytes!r} must be an int from {_MIN_EVENT_BYTES} to "
                f"{MAX_EVENT_BYTES} (AWS's limit); {LEGACY_MAX_EVENT_BYTES} keeps the old 256 KB "
                "events"
            )
        smallest_queue = MAX_BATCH_BYTES + MEMORY_OVERHEAD_PER_EVENT
        if not (type(max_queue_bytes) is int and max_queue_bytes >= smallest_queue):
            raise ConfigurationError(
                f"max_queue_bytes={max_queue_bytes!r} must be an int of at least {smallest_queue} "
                "(one full batch), so that the largest event always fits"
            )
        if isinstance(exclude_loggers, str) or not all(isinstance(n, str) for n in exclude_loggers):
            raise ConfigurationError("exclude_loggers must be a tuple of logger names")
        source = ClientSource(
            access_key=access_key,
            secret_key=secret_key,
            region=region,
            profile=profile,
            session=session,
            client=client,
            endpoint_url=endpoint_url,
        )
        # In Lambda, the level its logging controls set (AWS_LAMBDA_LOG_LEVEL) unless one is given.
        super().__init__(lambda_log_level() if level is None else level)
        # `handle` asks `filter` only when it could say no: filters were added, or a subclass
        # filters its own way.
        self._plain_filter = type(self).filter is logging.Filterer.filter
        self._max_event_bytes = max_event_bytes
        self._oversize: OversizePolicy = oversize
        self._shutdown_timeout_s = shutdown_timeout_s
        # A logger is excluded with its children: "botocore" and "botocore.x", not "botocorex".
        self._excluded_exact = frozenset(exclude_loggers)
        self._excluded_children = tuple(f"{name}." for name in exclude_loggers)
        self._excluded_cache: dict[str, bool] = {}  # logger names are few; decide each once
        self._streams: StreamNamer = default_stream_namer(
            log_stream, per_environment=per_environment_stream, fallback=dated_uuid_stream_name
        )
        # Outside Lambda the stream never changes: read it without a call on every record.
        self._fixed_stream = (
            self._streams.current() if isinstance(self._streams, FixedStream) else ""
        )
        self._reporter = Reporter(on_problem)
        self._queues = HandlerQueues(
            DeliverySettings(
                log_group=group,
                retention_days=retention,
                create_log_group=create_log_group,
                flush_interval_s=flush_interval_s,
                max_queue_bytes=max_queue_bytes,
                overflow=overflow,
                block_timeout_s=block_timeout_s,
                shutdown_timeout_s=shutdown_timeout_s,
                client_source=source,
                reporter=self._reporter,
            )
        )
        self._closed = False
        self._gave_up_with_enqueued: int | None = None
        """Records accepted when a flush last ran out of time; close() does not wait twice."""
        self._spool = None
        if spool_dir is not None:
            from pathlib import Path  # only with a spool: pathlib is a cold-start cost

            from ._spool import Spool

            self._spool = Spool.open(Path(spool_dir), group=group, reporter=self._reporter)
            self._spool.attach(self._queues)
        SENDER.register(self._queues)
        self._streams.attach(self._queues)
        _LIVE_HANDLERS.add(self)
        # A handler dropped without close() (one made per job, say) would leave its queues and
        # client with the sender for good: collected, it marks them closed, so what it queued is
        # still delivered and then forgotten. At exit the sender's own shutdown delivers instead.
        weakref.finalize(self, _closed_when_collected, self._queues).atexit = False
        if self._spool is not None:
            self._spool.replay_orphans()
        if handle_sigterm:
            LIFECYCLE.sigterm.want()

    @property
    def log_group_name(self) -> str:
        """The log group this handler writes to."""
        return self._queues.settings.log_group

    @property
    def log_stream_name(self) -> str:
        """The stream the next record goes to (in Lambda, the current invocation's)."""
        return self._streams.current()

    # `logging.Handler.format` looks the formatter up and calls it: a Python call more on every
    # logging call. Setting the formatter (``setFormatter``, or the attribute, as logging's own
    # __init__ does) keeps it where `emit` calls it directly, unless a subclass formats its way;
    # a plain `logging.Formatter` is called through `PlainFormat`, which writes the same text
    # with the time made once a second.
    @property
    def formatter(self) -> logging.Formatter | None:
        """The handler's formatter (None: logging's default), as in `logging.Handler`."""
        return self._formatter

    @formatter.setter
    def formatter(self, formatter: logging.Formatter | None) -> None:
        self._formatter = formatter
        direct: PlainFormat | logging.Formatter | None = None
        if formatter is not None and type(self).format is logging.Handler.format:
            direct = fastest_format(formatter)
        self._direct_formatter = direct

    def emit(self, record: logging.LogRecord) -> None:
        """Format ``record`` and queue it for the sender; never raises, never does I/O."""
        try:
            excluded = self._excluded_cache.get(record.name)
            if excluded is None:
                excluded = self._excluded_cache[record.name] = self._is_excluded(record.name)
            ident = _get_ident()
            if excluded or ident == SENDER.thread_ident:
                SENDER.count(self._queues, "records_excluded")
                return
            if _SIGTERM.install_pending and ident == threading.main_thread().ident:
                _SIGTERM.install_from_main_thread()  # the handler was made on another thread
            try:
                formatter = self._direct_formatter
                message = self.format(record) if formatter is None else formatter.format(record)
            except Exception as error:  # a record must not be lost to its format
                message = _unformattable(record, error)
                SENDER.count(self._queues, "records_unformattable")
            timestamp_ms = int(record.created * 1000)
            stream = self._fixed_stream or self._streams.current()
            if message.isascii() and 0 < (length := len(message)) <= self._max_event_bytes:
                # The usual case, without the general path's calls: ASCII bytes are characters.
                size = length + EVENT_OVERHEAD_BYTES
                SENDER.enqueue_one(self._queues, stream, timestamp_ms, message, size)
                return
            events = make_events(
                timestamp_ms,
                message,
                max_event_bytes=self._max_event_bytes,
                oversize=self._oversize,
            )
            SENDER.enqueue(self._queues, stream, events)
        except Exception as error:  # logging must never break the caller
            self._reporter.report("emit", f"could not queue a record: {_describe(error)}")

    def handle(self, record: logging.LogRecord) -> bool:
        """Filter ``record`` and emit it, without taking the handler's lock.

        ``emit`` is thread-safe on its own (the queue has its own lock), so the handler-wide lock
        that `logging.Handler.handle` takes would only serialise threads that log at once.
        """
        if not self.filters and self._plain_filter:
            # What `filter` returns with no filter to ask, without the call: most handlers have
            # none, and this runs on every logging call.
            self.emit(record)
            return True
        verdict = self.filter(record)
        if verdict:
            self.emit(verdict if isinstance(verdict, logging.LogRecord) else record)
        return bool(verdict)

    def _is_excluded(self, name: str) -> bool:
        return name in self._excluded_exact or name.startswith(self._excluded_children)

    # logging.Handler.flush() takes no argument and returns None; ours accepts a bound and says
    # whether everything was delivered, and is still callable as logging.shutdown() calls it.
    def flush(self, timeout_s: float | None = None) -> bool:  # type: ignore[override]
        """Block until every record handled before the call is delivered, or ``timeout_s`` passes.

        Without ``timeout_s`` (as `logging.shutdown` and ``dictConfig`` call it) the wait is
        bounded by ``shutdown_timeout_s``. Does not hold the handler's lock while it waits, so
        other threads keep logging. Called while logging is being reconfigured (under logging's
        own lock, which the sender needs), it does not wait: the sender delivers as soon as the
        reconfiguration is done.

        Returns:
            True if everything was settled: delivered, or dropped and counted in `stats`; False
            if records still wait (they stay queued, and are counted if never delivered).
        """
        if timeout_s is not None and (
            isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or timeout_s < 0
        ):
            raise ConfigurationError(f"timeout_s={timeout_s!r} must be None or a number >= 0")
        self._streams.before_flush()
        bound = self._shutdown_timeout_s if timeout_s is None else timeout_s
        settled = SENDER.flush(self._queues, bound)
        self._gave_up_with_enqueued = None if settled else self._queues.counters.records_accepted
        return settled

    def close(self) -> None:
        """Deliver what is queued (within ``shutdown_timeout_s``) and stop accepting records.

        Idempotent. What could not be delivered in time is still sent in the background and at
        exit. `logging.shutdown` calls ``flush()`` and then ``close()``: when that flush ran out
        of time and nothing was logged since, close does not wait a second time. With a spool,
        once everything is delivered, close returns when its journal files are closed and
        deleted (later, in the background, when logging is being reconfigured or records wait).
        """
        if not self._closed:
            self._closed = True
            if self._gave_up_with_enqueued != self._queues.counters.records_accepted:
                self.flush(self._shutdown_timeout_s)
            SENDER.close(self._queues, wait_s=self._shutdown_timeout_s)
        super().close()

    def stats(self) -> DeliveryStats:
        """Return a consistent snapshot of this handler's delivery counters."""
        return SENDER.stats(self._queues)

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"<{type(self).__name__} {self.log_group_name} ({level})>"


def _check_positive(name: str, value: object, *, allow_zero: bool = False) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        floor = "at least 0" if allow_zero else "greater than 0"
        raise ConfigurationError(f"{name}={value!r} must be a number {floor} (seconds)")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigurationError(f"{name}={value!r} must be one of {', '.join(map(repr, choices))}")


def _describe(error: BaseException) -> str:
    try:
        return f"{type(error).__name__}: {error}"
    except Exception:
        return type(error).__name__


def _unformattable(record: logging.LogRecord, error: BaseException) -> str:
    """A stand-in text for a record whose formatting raised, so that it still arrives."""
    try:
        msg = repr(record.msg)
    except Exception:
        msg = f"<{type(record.msg).__name__} object>"
    return (
        f"{record.levelname} {record.name} {record.pathname}:{record.lineno} "
        f"[unformattable record: {_describe(error)}] msg={msg[:1000]}"
    )
