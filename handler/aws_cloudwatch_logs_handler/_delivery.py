"""Sending one stream's batches through the Logs API, and applying what CloudWatch answered.

The sender thread calls `Delivery.deliver` for each stream with batches in flight, without the
sender's lock; the queue changes that follow each answer (settle, split, count a retry) take it
briefly. What may pass is retried on the `_retry` schedule; what never will is split or dropped
and counted; a lost group or stream is created again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ._logs_api import LogsApi, classify
from ._queues import HandlerQueues, StreamQueue
from ._retry import RetrySchedule
from ._stats import DropReason


class Delivery:
    """Delivers batches for the sender, under its lock only to change the queues."""

    def __init__(
        self,
        *,
        lock: threading.Lock,
        settled: threading.Condition,
        retry: RetrySchedule,
        stopping: Callable[[], bool],
    ) -> None:
        self._lock = lock
        self._settled = settled
        """Notified whenever events are settled: flushes and blocked producers wait on it."""
        self.retry = retry
        self._stopping = stopping
        """Whether the process is ending: backoff is then kept short."""

    def deliver(self, stream: StreamQueue) -> None:
        """Send ``stream``'s batches in flight, in order, until done or a failure says wait."""
        queues = stream.owner
        api: LogsApi = queues.api
        while stream.in_flight:
            try:
                if not stream.ready:
                    api.create_stream(stream.name)
                    stream.ready = True
                batch = stream.in_flight[0]
                result = api.put(stream.name, batch)
            except Exception as error:
                failure = classify(error)
                if failure is None:
                    raise
                kind, reason = failure
                if kind == "lost":
                    # The group or stream is gone (deleted, or the endpoint lost its state):
                    # create both again and resend; nothing is dropped.
                    stream.ready = False
                    if self.schedule_retry(stream, reason, lost=True):
                        return
                    continue
                if kind == "refused":
                    self._split_refused(stream, reason)
                    continue
                self.schedule_retry(stream, reason)
                return
            size = batch.total_size()  # summed before the lock: a logging call may wait for it
            with self._lock:
                released = queues.settle_first(stream, result.delivered, result.rejected, size=size)
                self._settled.notify_all()
            self._report_success(queues, released.recovered_after, result.rejected)

    def _report_success(
        self, queues: HandlerQueues, recovered_after: int, rejected: dict[DropReason, int]
    ) -> None:
        group = queues.settings.log_group
        if recovered_after:
            queues.settings.reporter.report(
                "recovered",
                f"delivering to {group!r} again after {recovered_after} failed attempt(s)",
            )
        if rejected:
            queues.settings.reporter.report(
                "rejected", f"CloudWatch Logs rejected events of {group!r}: {dict(rejected)}"
            )

    def _split_refused(self, stream: StreamQueue, reason: str) -> None:
        queues = stream.owner
        with self._lock:
            dropped = queues.split_refused(stream)
            if dropped:
                self._settled.notify_all()
        if dropped:
            queues.settings.reporter.report(
                "invalid",
                f"an event for {queues.settings.log_group!r} was refused and dropped: {reason}",
            )

    def schedule_retry(self, stream: StreamQueue, reason: str, *, lost: bool = False) -> float:
        """Count a failed attempt and set when to try again; return the delay in seconds.

        Args:
            lost: the group or stream was missing; the next attempt creates it again, so the
                first retries go at once (counted apart from an outage's failures, so that a
                group deleted during an outage is created again as soon as the endpoint returns).
        """
        queues = stream.owner
        with self._lock:
            queues.counters.retries += 1
            stream.attempts += 1
            if lost:
                stream.recreations += 1
                delay = self.retry.delay_after_loss_s(
                    stream.recreations, stream.attempts, stopping=self._stopping()
                )
            else:
                delay = self.retry.delay_s(stream.attempts, stopping=self._stopping())
            stream.retry_at = time.monotonic() + delay
            attempts = stream.attempts
        if self.retry.worth_reporting(attempts):
            queues.settings.reporter.report(
                "retry",
                f"delivery to {queues.settings.log_group!r} failed ({attempts} attempt(s) so "
                f"far), retrying: {reason}",
            )
        return delay
