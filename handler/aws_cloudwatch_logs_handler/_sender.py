"""The one background thread per process that talks to CloudWatch Logs.

Handlers only append events to in-memory queues (`Sender.enqueue`); this thread cuts them into
batches, creates groups and streams when needed, sends, retries and counts. One thread serves every
handler and stream of the process, so a thousand streams cost no more threads than one.

Threading: one lock guards every queue and counter. The sender never holds it during network I/O,
and never takes a handler's lock, so a logging call waits at most for another enqueue.

Processes: `_lifecycle` wires this sender into the interpreter's exit, fork and SIGTERM paths.
After a fork the child gets a fresh lock, empty queues and a new client; it never resends what
the parent had queued.

Locks: nothing here waits for the sender while holding a lock the sender may need. The sender
thread needs logging's module lock whenever botocore looks up or checks a logger, and
``dictConfig``, ``fileConfig`` and ``basicConfig(force=True)`` hold that lock while they flush and
close the old handlers; so a flush from under that lock does not wait (see `flush`).
"""

from __future__ import annotations

import concurrent.futures.thread  # noqa: F401 (see below)
import contextlib
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from ._batching import is_full, split_by_age, take_batches
from ._client import ClientSource
from ._events import Event
from ._lifecycle import (
    ProcessLifecycle,
    block_termination_signal_in_this_thread,
    hook_multiprocessing_exit,
    warn_if_threads_cannot_run,
)
from ._limits import MAX_BATCH_BYTES, MAX_BATCH_EVENTS
from ._reporting import Reporter
from ._stats import Counters, DeliveryStats, DropReason

# botocore imports concurrent.futures.thread when the sender builds its first client, and that
# module registers an exit hook, which Python refuses once the interpreter is shutting down. A
# short script logs and exits before the sender got that far; importing it now (about 1 ms on top
# of logging) lets the sender build its client during exit and still deliver.

OverflowPolicy = Literal["block", "drop_newest", "drop_oldest"]
"""What a logging call does when ``max_queue_bytes`` is reached: wait (at most ``block_timeout_s``)
for room, then drop the new record; drop the new record at once; or drop the oldest waiting ones."""

PENDING_STREAM: Final = ""
"""Stands for a stream not known yet (Lambda's init phase); never sent to under this name."""

MEMORY_OVERHEAD_PER_EVENT: Final = 170
"""Measured (bench/, tracemalloc and RSS): ~210 bytes of objects per short queued event, and the
allocator's fragmentation on top; counting this much keeps real memory within the bound."""
"""Bytes a queued event holds beside its text (tuple, str header, deque slot): the memory bound."""

_JITTER: Final = random.Random()
"""Our own generator: a library must not draw from (and so disturb) the application's."""
_BACKOFF_FIRST_S: Final = 0.2
_BACKOFF_MAX_S: Final = 20.0
_BACKOFF_MAX_WHILE_STOPPING_S: Final = 0.5

# Error codes, as botocore reports them in ClientError.response["Error"]["Code"].
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/CommonErrors.html
_NOT_FOUND: Final = "ResourceNotFoundException"
_ALREADY_EXISTS: Final = "ResourceAlreadyExistsException"
_INVALID: Final = frozenset({"InvalidParameterException", "ValidationException"})


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _holds_logging_lock() -> bool:
    """Tell whether this thread holds logging's module lock (``dictConfig`` and friends do).

    Waiting for the sender then would deadlock: the sender needs that lock as soon as botocore
    asks for a logger or checks a level.
    """
    is_owned = getattr(getattr(logging, "_lock", None), "_is_owned", None)
    try:
        return bool(is_owned()) if callable(is_owned) else False
    except Exception:
        return False


@dataclass(frozen=True)
class ChannelSettings:
    """What the sender needs to know about one handler's destination and policies."""

    log_group: str
    retention_days: int | None
    create_log_group: bool
    flush_interval_s: float
    max_queue_bytes: int
    overflow: OverflowPolicy
    block_timeout_s: float
    shutdown_timeout_s: float
    client_source: ClientSource
    reporter: Reporter


class Destination:
    """One log stream of one handler: its queue, its set-up state and its retry schedule."""

    __slots__ = (
        "attempts",
        "channel",
        "enqueued",
        "first_waiting_at",
        "in_flight",
        "queue",
        "queued_size",
        "ready",
        "recreations",
        "retry_at",
        "settled",
        "stream",
    )

    def __init__(self, channel: Channel, stream: str) -> None:
        self.channel = channel
        self.stream = stream
        self.queue: deque[Event] = deque()
        self.in_flight: list[list[Event]] = []
        """Batches taken off the queue and not yet settled, oldest first."""
        self.queued_size = 0
        """Bytes of the events in ``queue`` as AWS counts them (to know when a batch is full)."""
        self.enqueued = 0
        self.settled = 0
        """Events delivered or dropped; `flush` waits until it reaches ``enqueued``."""
        self.ready = False
        """The stream is known to exist."""
        self.first_waiting_at: float | None = None
        self.attempts = 0
        """Failed attempts in a row, for the backoff."""
        self.recreations = 0
        """Times in a row the stream had to be created again (the group or stream vanished)."""
        self.retry_at = 0.0

    @property
    def pending(self) -> bool:
        """Whether events wait here (queued or in flight)."""
        return bool(self.queue or self.in_flight)

    def reset(self) -> None:
        """Forget every event (a forked child must not resend its parent's)."""
        self.queue.clear()
        self.in_flight = []
        self.queued_size = self.enqueued = self.settled = self.attempts = self.recreations = 0
        self.first_waiting_at = None
        self.retry_at = 0.0


class Channel:
    """Everything the sender keeps for one handler: settings, client, destinations, counters."""

    def __init__(self, settings: ChannelSettings) -> None:
        self.settings = settings
        self.max_queue_bytes = settings.max_queue_bytes  # read on every logging call
        self.overhead_per_event = MEMORY_OVERHEAD_PER_EVENT
        """Memory an event holds beside its text; the spool adds its own bookkeeping."""
        self.counters = Counters()
        self.destinations: dict[str, Destination] = {}
        self.bytes_queued = 0
        self.flush_waiters = 0
        self.closed = False
        self.client: Any = None
        self.after_fork = False
        self.retention_pending = False
        """This handler created the group and has not yet set its retention."""
        self.last_stream = PENDING_STREAM
        """The stream written last: kept when idle, since the next record likely goes there too."""
        self.pending_fallback: Callable[[], str] | None = None
        """Names a stream for `PENDING_STREAM` events that nothing claimed (set in Lambda)."""
        self.on_enqueued: Callable[[Destination, list[Event]], None] | None = None
        """Called (under the sender's lock) before events are queued: the spool's journal."""
        self.on_settled: Callable[[Destination, list[Event]], None] | None = None
        """Called (under the sender's lock) with each settled batch: the spool's acknowledgement."""

    def destination(self, stream: str) -> Destination:
        """Return the destination for ``stream``, made on first use (the caller holds the lock)."""
        dest = self.destinations.get(stream)
        if dest is None:
            dest = self.destinations[stream] = Destination(self, stream)
        return dest

    def events_queued(self) -> int:
        """Events waiting or in flight (caller holds the lock)."""
        return sum(d.enqueued - d.settled for d in self.destinations.values())


def _cost(channel: Channel, events: Iterable[Event]) -> int:
    overhead = channel.overhead_per_event
    return sum(event.size + overhead for event in events)


class Sender:
    """The process's one sender thread and the queues it serves."""

    def __init__(self) -> None:
        self._init_state()

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        """Wakes the sender: new work, a flush, or shutdown."""
        self._settled = threading.Condition(self._lock)
        """Wakes `flush` callers and blocked producers: events were settled."""
        self._channels: list[Channel] = []
        self._thread: threading.Thread | None = None
        self.thread_ident: int | None = None
        self._stopping = False
        self._stopped = False
        self._pid = os.getpid()
        """The process this state belongs to: a fork below Python's hooks changes it."""

    @property
    def stopped(self) -> bool:
        """The sender has delivered what it could at exit and accepts nothing more."""
        return self._stopped

    # ----------------------------------------------------------------------------------------
    # Called from handlers, on the caller's thread.

    def register(self, channel: Channel) -> None:
        """Start serving ``channel``."""
        with self._lock:
            self._channels.append(channel)

    def enqueue(self, channel: Channel, stream: str, events: list[Event]) -> bool:
        """Queue ``events`` for ``stream``; False if they were dropped (and counted) instead.

        Never does I/O; waits only under the "block" overflow policy, and then boundedly. This is
        the logging call's hot path: it avoids generators and helper calls for the usual case of
        one event.
        """
        if self._pid != os.getpid():
            # A fork that ran no Python hook (uWSGI, fork() from C): this process's first call.
            self.after_fork_in_child()
        size = events[0].size if len(events) == 1 else sum(event.size for event in events)
        cost = size + channel.overhead_per_event * len(events)
        with self._lock:
            if self._stopped or channel.bytes_queued + cost > channel.max_queue_bytes:
                refused = self._refusal(channel, cost)
            else:
                refused = None
            if refused is None:
                if channel.closed and channel not in self._channels:
                    # A logging call that raced with the reconfiguration that closed this
                    # handler: its record is still delivered, as a file handler's would be.
                    self._channels.append(channel)
                dest = channel.destinations.get(stream) or channel.destination(stream)
                channel.last_stream = stream
                if channel.on_enqueued is not None:
                    self._journal(channel, dest, events)
                queue = dest.queue
                queue.extend(events)
                dest.enqueued += len(events)
                dest.queued_size += size
                channel.bytes_queued += cost
                channel.counters.records_accepted += 1
                if dest.first_waiting_at is None:
                    dest.first_waiting_at = time.monotonic()
                    wake = True
                else:
                    # `is_full`, inlined: this line runs on every logging call.
                    wake = len(queue) >= MAX_BATCH_EVENTS or dest.queued_size >= MAX_BATCH_BYTES
                if self._thread is None:
                    self._start(channel)
                if wake:
                    self._work.notify()
                return True
            channel.counters.dropped[refused] += len(events)
        if refused == "queue_full":  # reported outside the lock: the callback is the user's
            channel.settings.reporter.report(
                "queue_full",
                f"queue of log group {channel.settings.log_group!r} is full "
                f"(max_queue_bytes={channel.settings.max_queue_bytes}); "
                f"dropped {len(events)} event(s) by overflow={channel.settings.overflow!r}",
            )
        return False

    def _refusal(self, channel: Channel, cost: int) -> DropReason | None:
        """Why ``cost`` more bytes cannot be queued for ``channel``, if so (lock held)."""
        if self._stopped:
            return "after_close"
        if channel.bytes_queued + cost > channel.settings.max_queue_bytes and not self._make_room(
            channel, cost
        ):
            return "queue_full"
        return None

    def _journal(self, channel: Channel, dest: Destination, events: list[Event]) -> None:
        assert channel.on_enqueued is not None
        try:
            channel.on_enqueued(dest, events)
        except OSError as error:  # a full disk must not cost the in-memory delivery
            channel.settings.reporter.report("spool", f"could not journal: {error}")

    def _make_room(self, channel: Channel, cost: int) -> bool:
        """Apply the overflow policy until ``cost`` more bytes fit; caller holds the lock."""
        limit = channel.settings.max_queue_bytes
        policy = channel.settings.overflow
        if policy == "drop_oldest":
            for dest in channel.destinations.values():
                dropped: list[Event] = []
                freed = 0
                while dest.queue and channel.bytes_queued - freed + cost > limit:
                    event = dest.queue.popleft()
                    dest.queued_size -= event.size
                    freed += event.size + channel.overhead_per_event
                    dropped.append(event)
                if dropped:
                    channel.counters.dropped["queue_full"] += len(dropped)
                    self._release(dest, dropped, report_recovery=False)  # frees their bytes
            return channel.bytes_queued + cost <= limit
        if policy == "block" and threading.get_ident() != self.thread_ident:
            deadline = time.monotonic() + channel.settings.block_timeout_s
            while channel.bytes_queued + cost > limit:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopped:
                    return False
                self._settled.wait(remaining)
            return True
        return False

    def flush(self, channel: Channel, timeout_s: float | None) -> bool:
        """Wait until every event ``channel`` had queued when called is settled.

        Returns:
            True if all were settled (delivered, or dropped and counted) in time.
        """
        if threading.get_ident() == self.thread_ident:
            return False  # the sender cannot wait for itself
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._lock:
            targets = [(d, d.enqueued) for d in channel.destinations.values() if d.pending]
            if not targets:
                return True
            if _holds_logging_lock():
                # Logging is being reconfigured: wake the sender, which delivers as soon as the
                # caller lets go of logging's lock, and do not wait for it here.
                for dest, _ in targets:
                    dest.retry_at = 0.0
                self._work.notify()
                return False
            channel.flush_waiters += 1
            for dest, _ in targets:
                dest.retry_at = 0.0  # a flush wakes the backoff instead of waiting it out
            self._work.notify()
            try:
                while any(dest.settled < target for dest, target in targets):
                    if self._stopped:
                        return False
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._settled.wait(remaining)
                return True
            finally:
                channel.flush_waiters -= 1

    def move_pending(self, channel: Channel, stream: str) -> None:
        """Send the events waiting under `PENDING_STREAM` to ``stream`` instead."""
        with self._lock:
            self._move_pending(channel, stream)

    def _move_pending(self, channel: Channel, stream: str) -> None:
        pending = channel.destinations.get(PENDING_STREAM)
        if pending is None or not pending.queue or stream == PENDING_STREAM:
            return
        dest = channel.destination(stream)
        moved = len(pending.queue)
        dest.queue.extend(pending.queue)
        dest.queued_size += pending.queued_size
        dest.enqueued += moved
        if dest.first_waiting_at is None:
            dest.first_waiting_at = pending.first_waiting_at
        # The moved events are now accounted for by ``dest``; flushes that waited for them under
        # the pending name wait for ``dest`` too (they call `before_flush` first).
        pending.settled += moved
        pending.queue.clear()
        pending.queued_size = 0
        pending.first_waiting_at = None
        self._work.notify()

    def close(self, channel: Channel) -> None:
        """Deliver ``channel``'s events at once from now on, and forget it once it is idle."""
        with self._lock:
            channel.closed = True

    def stats(self, channel: Channel) -> DeliveryStats:
        """Return a consistent snapshot of ``channel``'s counters."""
        with self._lock:
            return channel.counters.snapshot(
                events_queued=channel.events_queued(), bytes_queued=channel.bytes_queued
            )

    def count_dropped(self, channel: Channel, reason: DropReason, number: int) -> None:
        """Count ``number`` events dropped for ``reason``."""
        with self._lock:
            channel.counters.dropped[reason] += number

    def count(
        self, channel: Channel, field: Literal["records_excluded", "records_unformattable"]
    ) -> None:
        """Add one to a plain counter of ``channel`` (records_excluded, records_unformattable)."""
        with self._lock:
            setattr(channel.counters, field, getattr(channel.counters, field) + 1)

    # ----------------------------------------------------------------------------------------
    # Process life: start, exit, fork.

    def _start(self, channel: Channel) -> None:
        """Start the sender thread (caller holds the lock)."""
        thread = threading.Thread(target=self._run, name="cloudwatch-logs-sender", daemon=True)
        thread.start()
        self._thread = thread
        self.thread_ident = thread.ident
        hook_multiprocessing_exit(self)
        warn_if_threads_cannot_run(channel.settings.reporter.report)

    def shutdown(self) -> None:
        """Deliver what is queued, bounded by the handlers' shutdown timeout, then stop.

        Called at interpreter exit and when a multiprocessing worker finishes. What could not be
        delivered in time is counted as ``undelivered_at_exit`` and reported on standard error.
        """
        with self._lock:
            if self._thread is None:
                return
            if self._stopping:
                # Another thread is delivering (a SIGTERM's, while the program exits): wait for
                # it, or the interpreter would end with that delivery half done.
                deadline = time.monotonic() + max(
                    (c.settings.shutdown_timeout_s for c in self._channels), default=0.0
                )
                while not self._stopped and (remaining := deadline - time.monotonic()) > 0:
                    self._settled.wait(remaining)
                return
            self._stopping = True
            waiting = [c for c in self._channels if any(d.pending for d in c.destinations.values())]
            timeout_s = max((c.settings.shutdown_timeout_s for c in waiting), default=0.0)
            deadline = time.monotonic() + timeout_s
            for channel in self._channels:
                if channel.pending_fallback is not None:
                    self._move_pending(channel, channel.pending_fallback())
                for dest in channel.destinations.values():
                    dest.retry_at = 0.0
            self._work.notify()
            while self._any_pending():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._settled.wait(remaining)
            for channel in self._channels:
                left = channel.events_queued()
                if left:
                    channel.counters.dropped["undelivered_at_exit"] += left
                    channel.settings.reporter.report(
                        "exit",
                        f"{left} event(s) for log group {channel.settings.log_group!r} could not "
                        f"be delivered within shutdown_timeout_s={timeout_s:g}",
                        always=True,
                    )
            self._stopped = True
            self._work.notify()
            self._settled.notify_all()

    def _any_pending(self) -> bool:
        return any(d.pending for c in self._channels for d in c.destinations.values())

    def before_fork(self) -> None:
        """Hold the lock across fork, so the child never sees a queue half-changed."""
        self._lock.acquire()

    def after_fork_in_parent(self) -> None:
        """Release what `before_fork` took."""
        self._lock.release()

    def after_fork_in_child(self) -> None:
        """Give the child a fresh sender: new lock, no thread, empty queues, new clients."""
        channels = self._channels
        self._init_state()
        for channel in channels:
            channel.counters = Counters()
            channel.bytes_queued = 0
            channel.flush_waiters = 0
            channel.client = None
            channel.after_fork = True
            channel.settings.reporter.after_fork()
            for dest in channel.destinations.values():
                dest.reset()
        self._channels = channels

    # ----------------------------------------------------------------------------------------
    # The sender thread.

    def _run(self) -> None:
        block_termination_signal_in_this_thread()
        while True:
            due: list[Destination] = []
            try:
                with self._lock:
                    waiting = self._wait_for_work()
                    if waiting is None:
                        return
                    for dest in waiting:
                        if not dest.in_flight:
                            self._take(dest)
                        if dest.in_flight:
                            due.append(dest)
            except Exception as error:  # the sender must outlive any bug of ours
                self._report_bug(error)
                continue
            for dest in due:
                try:
                    self._deliver(dest)
                except Exception as error:  # the sender must outlive any bug of ours
                    self._schedule_retry(dest, f"unexpected {type(error).__name__}: {error}")

    def _report_bug(self, error: Exception) -> None:
        from ._reporting import write_to_stderr

        write_to_stderr(f"sender error, continuing: {type(error).__name__}: {error}")
        with self._lock:
            self._work.wait(_BACKOFF_FIRST_S)  # never spin on a persistent bug

    def _take(self, dest: Destination) -> None:
        """Move the next batch-worth of events from the queue to in-flight (lock held).

        Events the service would drop for their age are counted and settled here, once, rather
        than sent (and counted again at every retry).
        """
        channel = dest.channel
        taken = take_batches(dest.queue)
        dest.queued_size -= sum(event.size for batch in taken for event in batch)
        dest.first_waiting_at = time.monotonic() if dest.queue else None
        now_ms = _now_ms()
        for batch in taken:
            ages = split_by_age(batch, now_ms=now_ms)
            if ages.sendable:
                dest.in_flight.append(ages.sendable)
            aged: tuple[tuple[DropReason, list[Event]], ...] = (
                ("too_old", ages.too_old),
                ("too_new", ages.too_new),
            )
            for reason, events in aged:
                if events:
                    channel.counters.dropped[reason] += len(events)
                    self._release(dest, events, report_recovery=False)
                    channel.settings.reporter.report(
                        "age",
                        f"{len(events)} event(s) for {channel.settings.log_group!r} were not sent: "
                        + ("older than 14 days" if reason == "too_old" else "over 2 hours ahead"),
                    )

    def _wait_for_work(self) -> list[Destination] | None:
        """Block until some destination is due; None when the sender should stop (lock held)."""
        while True:
            if self._stopped:
                return None
            now = time.monotonic()
            due: list[Destination] = []
            next_at: float | None = None
            self._prune()
            for channel in self._channels:
                # A closed handler's records go at once: its replacement may be logging already.
                urgent = self._stopping or channel.flush_waiters > 0 or channel.closed
                for dest in channel.destinations.values():
                    if not dest.pending or dest.stream == PENDING_STREAM:
                        continue
                    if dest.retry_at > now:
                        wake_at = dest.retry_at
                    elif (
                        urgent
                        or dest.in_flight
                        or is_full(len(dest.queue), dest.queued_size)
                        or dest.first_waiting_at is None
                        or now - dest.first_waiting_at >= channel.settings.flush_interval_s
                    ):
                        due.append(dest)
                        continue
                    else:
                        wake_at = dest.first_waiting_at + channel.settings.flush_interval_s
                    next_at = wake_at if next_at is None else min(next_at, wake_at)
            if due:
                return due
            self._work.wait(None if next_at is None else max(0.0, next_at - now))

    def _prune(self) -> None:
        """Forget closed handlers and idle streams that are no longer written (lock held).

        In Lambda every invocation has its own stream; without this they would pile up.
        """
        self._channels = [
            c
            for c in self._channels
            if not c.closed or any(d.pending for d in c.destinations.values())
        ]
        for channel in self._channels:
            idle = [
                name
                for name, dest in channel.destinations.items()
                if not dest.pending and name != channel.last_stream and not dest.attempts
            ]
            for name in idle:
                del channel.destinations[name]

    def _client(self, channel: Channel) -> Any:
        if channel.client is None:
            source = channel.settings.client_source
            channel.client = source.build_after_fork() if channel.after_fork else source.build()
        return channel.client

    def _deliver(self, dest: Destination) -> None:
        """Send ``dest``'s in-flight batches in order until done or a failure calls for a retry."""
        import botocore.exceptions

        channel = dest.channel
        while dest.in_flight:
            try:
                client = self._client(channel)
                if not dest.ready:
                    self._create_stream(channel, dest, client)
                batch = dest.in_flight[0]
                response = self._put(channel, dest, client, batch)
            except botocore.exceptions.ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code == _NOT_FOUND:
                    # The group or stream is gone (deleted, or the endpoint lost its state):
                    # create both again and resend; nothing is dropped.
                    dest.ready = False
                    if self._schedule_retry(dest, f"{code}: creating the stream again", now=True):
                        return
                    continue
                if code in _INVALID:
                    self._split_refused(dest, f"{code}: {error}")
                    continue
                self._schedule_retry(dest, f"{code or 'error'}: {error}")
                return
            except botocore.exceptions.ParamValidationError as error:
                self._split_refused(dest, f"ParamValidationError: {error}")
                continue
            except botocore.exceptions.BotoCoreError as error:
                # Connection refused or reset, timeouts, missing credentials: all may pass.
                self._schedule_retry(dest, f"{type(error).__name__}: {error}")
                return
            self._settle(dest, response)

    def _create_stream(self, channel: Channel, dest: Destination, client: Any) -> None:
        """Create ``dest``'s stream, and the group first if it is missing and we may create it.

        CreateLogStream comes first so that a writer allowed only to write never makes a
        CreateLogGroup call that would be denied.
        """
        group, stream = channel.settings.log_group, dest.stream
        exists = client.exceptions.ResourceAlreadyExistsException  # idempotent: that is success
        try:
            with contextlib.suppress(exists):
                client.create_log_stream(logGroupName=group, logStreamName=stream)
        except client.exceptions.ResourceNotFoundException:
            if not channel.settings.create_log_group:
                raise
            self._create_group(channel, client)
            with contextlib.suppress(exists):
                client.create_log_stream(logGroupName=group, logStreamName=stream)
        if channel.retention_pending:
            # Retried until it succeeds: a group we created must not keep its events forever
            # because one PutRetentionPolicy call failed.
            client.put_retention_policy(
                logGroupName=group, retentionInDays=channel.settings.retention_days
            )
            channel.retention_pending = False
        dest.ready = True

    def _create_group(self, channel: Channel, client: Any) -> None:
        """Create the group; its retention is then due (`_create_stream` applies it)."""
        settings = channel.settings
        try:
            client.create_log_group(logGroupName=settings.log_group)
        except client.exceptions.ResourceAlreadyExistsException:
            return  # someone else created it: its retention is theirs to set
        channel.retention_pending = settings.retention_days is not None

    def _put(self, channel: Channel, dest: Destination, client: Any, batch: list[Event]) -> _Sent:
        """Send one batch; return what was sent and what the service rejected."""
        response = client.put_log_events(
            logGroupName=channel.settings.log_group,
            logStreamName=dest.stream,
            logEvents=[{"timestamp": e.timestamp_ms, "message": e.message} for e in batch],
        )
        return _Sent(sent=batch, rejected=response.get("rejectedLogEventsInfo") or {})

    def _settle(self, dest: Destination, sent: _Sent) -> None:
        """Count the outcome of the first in-flight batch and release it (takes the lock)."""
        channel = dest.channel
        rejected, start, end = _count_rejected(sent.rejected, len(sent.sent))
        with self._lock:
            batch = dest.in_flight.pop(0)
            counters = channel.counters
            if sent.sent:
                counters.batches += 1
            counters.events_delivered += end - start
            counters.bytes_delivered += sum(event.size for event in sent.sent[start:end])
            for reason, number in rejected.items():
                counters.dropped[reason] += number
            self._release(dest, batch)
        if rejected:
            channel.settings.reporter.report(
                "rejected",
                f"CloudWatch Logs rejected events of {channel.settings.log_group!r}: "
                f"{dict(rejected)}",
            )

    def _release(
        self, dest: Destination, batch: list[Event], *, report_recovery: bool = True
    ) -> None:
        """Mark ``batch`` settled and wake whoever waits for it (lock held)."""
        channel = dest.channel
        dest.settled += len(batch)
        if report_recovery:
            dest.recreations = 0
            if dest.attempts >= 1:
                channel.settings.reporter.report(
                    "recovered",
                    f"delivering to {channel.settings.log_group!r} again after "
                    f"{dest.attempts} failed attempt(s)",
                )
                dest.attempts = 0
        channel.bytes_queued -= _cost(channel, batch)
        if channel.on_settled is not None:
            channel.on_settled(dest, batch)
        self._settled.notify_all()

    def _split_refused(self, dest: Destination, reason: str) -> None:
        """A refused batch is never resent unchanged: halve it until the bad events stand alone."""
        channel = dest.channel
        with self._lock:
            batch = dest.in_flight.pop(0)
            if len(batch) > 1:
                middle = len(batch) // 2
                dest.in_flight[0:0] = [batch[:middle], batch[middle:]]
                return
            channel.counters.dropped["invalid"] += 1
            self._release(dest, batch)
        channel.settings.reporter.report(
            "invalid",
            f"an event for {channel.settings.log_group!r} was refused and dropped: {reason}",
        )

    def _schedule_retry(self, dest: Destination, reason: str, *, now: bool = False) -> float:
        """Count a failed attempt and set when to try again (exponential backoff, equal jitter).

        Args:
            now: the failure is repaired by the next attempt itself (a lost stream is created
                again), so the first two retries go at once.

        Returns:
            The delay before the next attempt, in seconds.
        """
        channel = dest.channel
        with self._lock:
            channel.counters.retries += 1
            dest.attempts += 1
            if now:
                dest.recreations += 1
            if now and dest.recreations <= 2:
                # Counted apart from the outage's failures, so a group deleted during an outage
                # is created again at once when the endpoint returns, not after the backoff.
                delay = 0.0
            else:
                cap = _BACKOFF_MAX_WHILE_STOPPING_S if self._stopping else _BACKOFF_MAX_S
                ceiling = min(cap, _BACKOFF_FIRST_S * 2 ** min(dest.attempts, 16))
                delay = ceiling / 2 + _JITTER.uniform(0, ceiling / 2)
            dest.retry_at = time.monotonic() + delay
        # Say it when a stream starts failing, then ever more rarely while it goes on.
        attempts = dest.attempts
        if attempts == 1 or (attempts >= 8 and attempts & (attempts - 1) == 0):
            channel.settings.reporter.report(
                "retry",
                f"delivery to {channel.settings.log_group!r} failed ({attempts} attempt(s) so "
                f"far), retrying: {reason}",
            )
        return delay


@dataclass(frozen=True)
class _Sent:
    sent: list[Event]
    rejected: dict[str, int]


def _count_rejected(info: dict[str, int], sent: int) -> tuple[dict[DropReason, int], int, int]:
    """Turn ``rejectedLogEventsInfo`` indexes into counts per reason, and the accepted slice.

    AWS describes these indexes inconsistently; we read each as inclusive (as moto does), sorted
    batches put too-old and expired events first and too-new ones last, and we never count more
    events than were sent.
    """
    counts: dict[DropReason, int] = {}
    too_old = info.get("tooOldLogEventEndIndex")
    expired = info.get("expiredLogEventEndIndex")
    too_new = info.get("tooNewLogEventStartIndex")
    head = 0
    if too_old is not None:
        counts["too_old"] = head = min(sent, too_old + 1)
    if expired is not None and expired + 1 > head:
        counts["expired"] = min(sent, expired + 1) - head
        head = min(sent, expired + 1)
    tail = sent
    if too_new is not None and too_new < sent:
        tail = max(too_new, head)
        counts["too_new"] = sent - tail
    return {reason: n for reason, n in counts.items() if n > 0}, head, tail


SENDER: Final = Sender()
"""The process's sender: every handler enqueues here."""

LIFECYCLE: Final = ProcessLifecycle(SENDER)
"""The process's exit, fork and SIGTERM hooks for `SENDER`."""
LIFECYCLE.install()
