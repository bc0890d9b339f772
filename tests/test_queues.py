"""The queues' own arithmetic: what the sender takes off a stream, and the sizes it keeps."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from aws_cloudwatch_logs_handler._batching import Cut
from aws_cloudwatch_logs_handler._client import ClientSource
from aws_cloudwatch_logs_handler._events import Event
from aws_cloudwatch_logs_handler._limits import MAX_BATCH_BYTES, MAX_BATCH_EVENTS
from aws_cloudwatch_logs_handler._queues import DeliverySettings, HandlerQueues, StreamQueue
from aws_cloudwatch_logs_handler._reporting import Reporter


def handler_queues() -> HandlerQueues:
    return HandlerQueues(
        DeliverySettings(
            log_group="/test/queues",
            retention_days=None,
            create_log_group=True,
            flush_interval_s=1.0,
            max_queue_bytes=2**40,
            overflow="drop_newest",
            block_timeout_s=1.0,
            shutdown_timeout_s=1.0,
            client_source=ClientSource(region="us-east-1"),
            reporter=Reporter(lambda line: None),
        )
    )


def take_batch(queues: HandlerQueues, stream: StreamQueue) -> list[tuple[int, str]] | None:
    """Detach the stream's next batch as the sender does, check its limits, and put it in flight
    (empty: nothing to send); its events, or None if nothing waited."""
    queues.detach(stream)
    batch = stream.taking
    if batch is None:
        return None
    assert 1 <= len(batch) <= MAX_BATCH_EVENTS
    assert len(batch) == 1 or batch.total_size() <= MAX_BATCH_BYTES
    events = list(zip(batch.timestamps(), batch.messages(0, len(batch)), strict=True))
    queues.admit(stream, Cut([], []))
    return events


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            # (events, message length): short lines, or a few near AWS's 1 MB event limit
            st.tuples(st.integers(1, 12_000), st.integers(1, 200)),
            st.tuples(st.integers(1, 3), st.integers(200_000, 1_000_000)),
            st.just((0, 0)),  # the sender takes a batch
        ),
        max_size=8,
    )
)
@example(steps=[(10_000, 10), (1, 10), (0, 0)])  # one over the count, within the bytes
@example(steps=[(4_003, 236), (0, 0)])  # within the count, 210 bytes over the batch bytes
def test_the_sender_takes_whole_batches_and_the_queued_size_stays_exact(
    steps: list[tuple[int, int]],
) -> None:
    """Each batch the sender detaches is within AWS's limits, events leave in order, and the
    stream's running byte count (which says when a batch is full) always equals what waits, both
    when all that waits is one batch (taken without summing sizes) and when it is more."""
    queues = handler_queues()
    stream = queues.stream("s")
    added: list[tuple[int, str]] = []
    taken: list[tuple[int, str]] = []
    for count, length in steps:
        if count:
            for _ in range(count):
                message = f"{len(added)}:".ljust(length, "x")
                size = len(message) + 26
                queues.add(stream, [Event(len(added), message, size)], size, size + 80)
                added.append((len(added), message))
        else:
            taken += take_batch(queues, stream) or []
        assert stream.queued_size == stream.queue.total_size()
        assert taken == added[: len(taken)]
    while (batch := take_batch(queues, stream)) is not None:
        taken += batch
        assert stream.queued_size == stream.queue.total_size()
    assert taken == added
    assert stream.queued_size == 0
