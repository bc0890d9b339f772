"""When a batch that is not full goes: after a share of flush_interval_s drawn for every batch."""

from __future__ import annotations

import pytest

from aws_cloudwatch_logs_handler._client import ClientSource
from aws_cloudwatch_logs_handler._queues import (
    PATIENCE_JITTER,
    DeliverySettings,
    HandlerQueues,
    StreamQueue,
)
from aws_cloudwatch_logs_handler._reporting import Reporter

INTERVAL_S = 10.0


def _queues() -> HandlerQueues:
    return HandlerQueues(
        DeliverySettings(
            log_group="/g",
            retention_days=None,
            create_log_group=True,
            flush_interval_s=INTERVAL_S,
            max_queue_bytes=1 << 20,
            overflow="drop_newest",
            block_timeout_s=1.0,
            shutdown_timeout_s=1.0,
            client_source=ClientSource(region="us-east-1"),
            reporter=Reporter(),
        )
    )


def _queue_one(queues: HandlerQueues, stream: StreamQueue) -> float:
    """Queue one event on an idle stream; return when its wait began."""
    queues.add_one(stream, 1_000, "m", 27, 27 + queues.overhead_per_event)
    assert stream.first_waiting_at is not None
    return stream.first_waiting_at


def test_a_batch_goes_once_its_drawn_share_of_the_interval_has_passed() -> None:
    """Not a moment before ``patience x flush_interval_s``, and at once from then on; the sender
    is told to wake exactly then."""
    queues = _queues()
    stream = queues.stream("s")
    started = _queue_one(queues, stream)
    wait_s = INTERVAL_S * stream.patience
    assert INTERVAL_S * (1 - PATIENCE_JITTER) <= wait_s <= INTERVAL_S
    due, wake_at = queues.due(started + wait_s - 0.001, stopping=False)
    assert due == []
    assert wake_at == pytest.approx(started + wait_s)
    due, _ = queues.due(started + wait_s, stopping=False)
    assert due == [stream]


def test_every_batch_draws_its_own_share_so_processes_started_together_drift_apart() -> None:
    """Taking a batch draws the next one's patience: 200 draws all lie within the jitter's range
    and are not one value (a fleet logging in step would otherwise send in step)."""
    queues = _queues()
    stream = queues.stream("s")
    drawn = []
    for _ in range(200):
        _queue_one(queues, stream)
        queues.detach(stream)
        drawn.append(stream.patience)
        stream.taking = None  # as if sent and settled: the stream is idle again
    assert all(1 - PATIENCE_JITTER <= share <= 1.0 for share in drawn)
    assert max(drawn) - min(drawn) > PATIENCE_JITTER / 2
