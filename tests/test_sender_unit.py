"""The sender's delivery rules, through the public Logs API double: no HTTP, milliseconds each.

Retries, splitting a refused batch, creating a lost group again, retention, the overflow
policies and the queue arithmetic, each asserted on what the fake client stored.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from handler_factory import HandlerFactory
from packed_memory import addresses
from spool_files import dead_journal

from aws_cloudwatch_logs_handler import CloudWatchLogsHandler
from aws_cloudwatch_logs_handler import _slices as slices_module
from aws_cloudwatch_logs_handler._events import Event
from aws_cloudwatch_logs_handler._limits import MAX_BATCH_EVENTS
from aws_cloudwatch_logs_handler._packed import ROOM_FROM
from aws_cloudwatch_logs_handler._queues import MEMORY_OVERHEAD_PER_EVENT
from aws_cloudwatch_logs_handler._retry import RetrySchedule
from aws_cloudwatch_logs_handler._sender import SENDER
from aws_cloudwatch_logs_handler._slices import BEHIND_TURN_S, TURN_S
from aws_cloudwatch_logs_handler._spool import encode_frame
from aws_cloudwatch_logs_handler.testing import FakeLogsClient

GROUP = "/unit/app"


def handler_with(
    make_handler: HandlerFactory, client: FakeLogsClient, **options: object
) -> tuple[CloudWatchLogsHandler, logging.Logger]:
    handler = make_handler(GROUP, client=client, log_stream="s", **options)
    return handler, make_handler.logger(handler)


def test_throttling_is_retried_until_delivered(make_handler: HandlerFactory) -> None:
    """Two throttled PutLogEvents calls are retried; every record arrives once, in order."""
    client = FakeLogsClient()
    client.fail("put_log_events", "ThrottlingException", times=2)
    handler, log = handler_with(make_handler, client)
    for i in range(5):
        log.info("m%d", i)
    assert handler.flush(10.0)
    assert client.messages(GROUP, "s") == [f"m{i}" for i in range(5)]
    assert handler.stats().retries == 2
    assert client.calls.count("put_log_events") == 3


def test_the_logging_calls_short_way_counts_as_the_general_way(
    make_handler: HandlerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short ASCII line takes `enqueue_one`, which counts its event inline (every logging call
    does): it leaves the same queue, sizes and counts behind as `enqueue`, the way every other
    event takes, and both are delivered."""
    short, general = FakeLogsClient(), FakeLogsClient()
    queues = []
    for client in (short, general):
        handler, log = handler_with(make_handler, client, flush_interval_s=3600)
        log.info("the stream exists")
        assert handler.flush(10.0)
        queues.append(handler._queues)
    now_ms = int(time.time() * 1000)
    events = [Event(now_ms + i, f"line {i}", len(f"line {i}") + 26) for i in range(3)]
    with monkeypatch.context() as patched:
        patched.setattr(SENDER, "enqueue", _never_called)
        for event in events:
            assert SENDER.enqueue_one(queues[0], "s", *event)
    for event in events:
        assert SENDER.enqueue(queues[1], "s", [event])
    with SENDER._lock:
        one, other = (q.streams["s"] for q in queues)
        assert list(one.queue) == list(other.queue) == events
        assert (one.enqueued, one.queued_size) == (other.enqueued, other.queued_size)
        assert one.first_waiting_at is not None and other.first_waiting_at is not None
        assert (
            queues[0].bytes_queued
            == queues[1].bytes_queued
            == 3 * MEMORY_OVERHEAD_PER_EVENT + sum(event.size for event in events)
        )
        assert queues[0].counters.records_accepted == queues[1].counters.records_accepted
        assert queues[0].last_stream == queues[1].last_stream == "s"
    for client, q in zip((short, general), queues, strict=True):
        assert SENDER.flush(q, 10.0)
        assert client.messages(GROUP, "s")[1:] == [event.message for event in events]


def _never_called(*args: object) -> bool:
    raise AssertionError("the general way was taken")


def test_a_refused_batch_drops_only_the_bad_event(make_handler: HandlerFactory) -> None:
    """A batch CloudWatch refuses is halved until the bad event stands alone; only it is lost."""
    client = FakeLogsClient()
    client.refuse(lambda message: message == "bad")
    handler, log = handler_with(make_handler, client)
    messages = [f"m{i}" for i in range(20)]
    messages[13] = "bad"
    for message in messages:
        log.info(message)
    assert handler.flush(10.0)
    assert client.messages(GROUP, "s") == [m for m in messages if m != "bad"]
    assert handler.stats().dropped == {"invalid": 1}


def test_a_deleted_group_is_created_again_and_nothing_is_lost(
    make_handler: HandlerFactory,
) -> None:
    """Deleting the group between two batches: it is created again, at once, and every record of
    the second batch arrives."""
    client = FakeLogsClient()
    handler, log = handler_with(make_handler, client, ttl=7)
    log.info("first")
    assert handler.flush(10.0)
    client.delete_log_group(logGroupName=GROUP)
    log.info("second")
    assert handler.flush(10.0)
    assert client.messages(GROUP, "s") == ["second"]
    assert client.retention == {GROUP: 7}  # the re-created group got its retention again
    assert handler.stats().dropped == {}


def test_retention_is_set_only_on_a_group_this_handler_created(
    make_handler: HandlerFactory,
) -> None:
    """A group that already exists keeps its own retention: the handler never sets it."""
    client = FakeLogsClient()
    client.create_group(GROUP)
    handler, log = handler_with(make_handler, client, ttl=1)
    log.info("x")
    assert handler.flush(10.0)
    assert "put_retention_policy" not in client.calls
    assert "create_log_group" not in client.calls  # the stream was created first, and worked


def test_a_writer_that_may_not_create_groups_waits_for_the_group(
    make_handler: HandlerFactory,
) -> None:
    """With create_log_group=False a missing group is never created; once it exists, delivered."""
    client = FakeLogsClient()
    handler, log = handler_with(make_handler, client, create_log_group=False)
    log.info("waiting")
    assert not handler.flush(0.3)
    assert "create_log_group" not in client.calls
    client.create_group(GROUP)
    assert handler.flush(10.0)
    assert client.messages(GROUP, "s") == ["waiting"]


def test_drop_oldest_keeps_the_newest_records(make_handler: HandlerFactory) -> None:
    """While nothing can be sent, overflow='drop_oldest' keeps exactly the newest records that
    fit, and delivers them in order once the endpoint works again."""
    client = FakeLogsClient()
    client.fail("create_log_stream", "ServiceUnavailableException", times=-1)
    one_event = 100_000 + 26 + MEMORY_OVERHEAD_PER_EVENT
    bound = 1_048_576 + MEMORY_OVERHEAD_PER_EVENT
    handler, log = handler_with(make_handler, client, overflow="drop_oldest", max_queue_bytes=bound)
    for i in range(12):
        log.info("%02d%s", i, "x" * (100_000 - 2))
    kept = bound // one_event
    assert handler.stats().dropped == {"queue_full": 12 - kept}
    client.heal()
    assert handler.flush(10.0)
    survivors = [message[:2] for message in client.messages(GROUP, "s")]
    assert survivors == [f"{i:02d}" for i in range(12 - kept, 12)]


def test_drop_newest_keeps_the_oldest_records(make_handler: HandlerFactory) -> None:
    """The default overflow policy refuses new records and keeps what waited."""
    client = FakeLogsClient()
    client.fail("create_log_stream", "ServiceUnavailableException", times=-1)
    bound = 1_048_576 + MEMORY_OVERHEAD_PER_EVENT
    handler, log = handler_with(make_handler, client, max_queue_bytes=bound)
    for i in range(12):
        log.info("%02d%s", i, "x" * (100_000 - 2))
    client.heal()
    assert handler.flush(10.0)
    kept = bound // (100_000 + 26 + MEMORY_OVERHEAD_PER_EVENT)
    assert [m[:2] for m in client.messages(GROUP, "s")] == [f"{i:02d}" for i in range(kept)]


def test_an_event_too_old_for_cloudwatch_is_counted_not_sent(make_handler: HandlerFactory) -> None:
    """A record older than 14 days is dropped as too_old before any call; the rest arrive."""
    client = FakeLogsClient()
    handler, log = handler_with(make_handler, client)
    stale = log.makeRecord(log.name, logging.INFO, __file__, 1, "stale", (), None)
    stale.created -= 15 * 24 * 3600
    log.handle(stale)
    log.info("fresh")
    assert handler.flush(10.0)
    assert client.messages(GROUP, "s") == ["fresh"]
    assert handler.stats().dropped == {"too_old": 1}


@pytest.mark.parametrize(
    "message", ["before-1970", "avant-1970-\u00e9t\u00e9"], ids=["ascii", "utf8"]
)
@pytest.mark.parametrize("spooled", [False, True], ids=["memory", "spool"])
def test_a_record_dated_before_1970_is_counted_too_old_and_the_next_one_arrives(
    make_handler: HandlerFactory, tmp_path: Path, message: str, spooled: bool
) -> None:
    """A record whose time is before the epoch (set by hand: no clock gives one) fits no
    timestamp the queue holds: it is dropped as too_old, counted, never raised into the caller,
    on the logging call's usual way (ASCII) and the general one, with and without a spool; and
    the queue takes the next record as before. With a spool, a restart replays nothing of it."""
    client = FakeLogsClient()
    spool = tmp_path / "spool" if spooled else None
    handler, log = handler_with(make_handler, client, spool_dir=spool)
    log.info("first")  # the stream's queue exists: the next record may take the usual way
    early = log.makeRecord(log.name, logging.INFO, __file__, 1, message, (), None)
    early.created = -5.0
    log.handle(early)
    log.info("fresh")
    assert handler.flush(10.0)
    assert client.messages(GROUP, "s") == ["first", "fresh"]
    assert handler.stats().dropped == {"too_old": 1}
    assert handler.stats().events_queued == 0
    if spool is not None:
        handler.close()
        restarted, _ = handler_with(make_handler, client, spool_dir=spool)
        assert restarted.flush(10.0)
        assert client.messages(GROUP, "s") == ["first", "fresh"]


def test_a_forked_process_replays_what_dead_ones_left_once_before_its_first_batch(
    make_handler: HandlerFactory, tmp_path: Path
) -> None:
    """A journal that a process killed outright leaves after the handler was made: the process
    that made the handler does not look again (it looked when it made it); a process forked
    from it delivers that journal with its first batch, once, and looks no more."""
    client = FakeLogsClient()
    spool = tmp_path / "spool"
    handler, log = handler_with(make_handler, client, spool_dir=spool)

    def leave_an_orphan(name: str, message: str) -> None:
        now_ms = int(time.time() * 1000)
        frame = encode_frame("s", Event(now_ms, message, 26 + len(message)))
        dead_journal(spool, GROUP, frame, name)

    def delivered() -> list[str]:
        # The second flush waits for what the first one's batch replayed, if it replayed.
        assert handler.flush(10.0) and handler.flush(10.0)
        return sorted(client.messages(GROUP, "s"))

    leave_an_orphan("dead0001", "left-1")
    log.info("here")
    assert delivered() == ["here"]
    handler._spool._replayed_here.byte[0] = 0  # type: ignore[union-attr]  # what a fork does
    log.info("in-the-child")
    assert delivered() == ["here", "in-the-child", "left-1"]
    leave_an_orphan("dead0002", "left-2")
    log.info("later")
    assert delivered() == ["here", "in-the-child", "later", "left-1"]


def test_the_queue_counts_the_memory_it_holds_and_frees_it(make_handler: HandlerFactory) -> None:
    """bytes_queued is the text plus the per-event overhead while waiting, and zero once sent."""
    client = FakeLogsClient()
    client.fail("create_log_stream", "ServiceUnavailableException", times=-1)
    handler, log = handler_with(make_handler, client)
    log.info("abc")
    assert handler.stats().bytes_queued == 3 + 26 + MEMORY_OVERHEAD_PER_EVENT
    client.heal()
    assert handler.flush(10.0)
    assert handler.stats().bytes_queued == 0


@pytest.mark.parametrize("attempts", [1, 2, 5, 16, 40])
def test_the_retry_delay_grows_within_its_bounds(attempts: int) -> None:
    """Each delay is between half and all of min(cap, first * 2**attempts)."""
    schedule = RetrySchedule()
    ceiling = min(schedule.max_s, schedule.first_s * 2.0 ** min(attempts, 16))
    for _ in range(50):
        assert ceiling / 2 <= schedule.delay_s(attempts) <= ceiling
        assert schedule.delay_s(attempts, stopping=True) <= schedule.max_while_stopping_s


def test_forked_children_draw_jitter_of_their_own() -> None:
    """Children forked from one parent do not draw the parent's jitter, so they retry apart."""
    schedule = RetrySchedule()
    schedule.delay_s(3)  # the parent has drawn: its generator has a state to copy
    draws = []
    for _ in range(2):
        read_end, write_end = os.pipe()
        with warnings.catch_warnings():
            # Python 3.12+ warns when a process with threads (the tests' senders) forks; the
            # child here only computes and writes, taking no lock another thread could hold.
            warnings.filterwarnings("ignore", ".*multi-threaded.*", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: report three delays and leave at once
            os.write(write_end, repr([schedule.delay_s(8) for _ in range(3)]).encode())
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            draws.append(pipe.read())
        os.waitpid(pid, 0)
    parent = repr([schedule.delay_s(8) for _ in range(3)])
    assert len({*draws, parent}) == 3


def test_a_lost_stream_is_recreated_at_once_twice_then_backs_off() -> None:
    """The first two re-creations go at once; a third in a row waits like any failure."""
    schedule = RetrySchedule()
    assert schedule.delay_after_loss_s(1, 1, stopping=False) == 0.0
    assert schedule.delay_after_loss_s(2, 2, stopping=False) == 0.0
    assert schedule.delay_after_loss_s(3, 3, stopping=False) > 0.0


@pytest.fixture
def long_backoff(monkeypatch: pytest.MonkeyPatch) -> RetrySchedule:
    """A retry schedule whose every wait is a minute or more: any wait would fail the test."""
    schedule = RetrySchedule(first_s=60.0, max_s=120.0, max_while_stopping_s=60.0)
    monkeypatch.setattr(SENDER, "retry", schedule)
    return schedule


@pytest.mark.usefixtures("long_backoff")
def test_flush_wakes_the_backoff_instead_of_waiting_it_out(make_handler: HandlerFactory) -> None:
    """After a failure scheduled the next try a minute away, a flush tries again at once."""
    client = FakeLogsClient()
    client.fail("put_log_events", "ServiceUnavailableException", times=1)
    handler, log = handler_with(make_handler, client)
    log.info("m")
    assert not handler.flush(0.3)  # the failure happened, the next try is a minute away
    assert handler.stats().retries == 1
    assert handler.flush(10.0)
    assert client.messages(GROUP, "s") == ["m"]


@pytest.mark.usefixtures("long_backoff")
def test_a_lost_group_is_created_again_without_waiting_the_backoff(
    make_handler: HandlerFactory,
) -> None:
    """A group deleted while failures had built a minute-long backoff is created again, and the
    records delivered, at the next try: re-creation is the repair, not a reason to wait."""
    client = FakeLogsClient()
    handler, log = handler_with(make_handler, client)
    log.info("first")
    assert handler.flush(10.0)
    client.fail("put_log_events", "ServiceUnavailableException", times=1)
    log.info("second")
    assert not handler.flush(0.3)
    client.delete_log_group(logGroupName=GROUP)
    assert handler.flush(10.0)
    assert client.messages(GROUP, "s") == ["second"]
    assert client.calls.count("create_log_group") == 2


class _GatedClient(FakeLogsClient):
    """Holds its first PutLogEvents call until released, and notes the sender's turn at each."""

    def __init__(self) -> None:
        super().__init__()
        self.in_first_put = threading.Event()
        self.release = threading.Event()
        self.turns: list[float] = []

    def put_log_events(self, **params: Any) -> dict[str, Any]:
        self.turns.append(slices_module._TURNS.turn_s)  # the calling thread's: the sender's
        if len(self.turns) == 1:
            self.in_first_put.set()
            assert self.release.wait(30)
        return super().put_log_events(**params)


def test_a_sender_behind_by_a_full_batch_takes_longer_turns_until_it_catches_up(
    make_handler: HandlerFactory,
) -> None:
    """While the first batch is held up, two more batches' worth queue behind it: the sender
    then sends with `BEHIND_TURN_S` turns, and with `TURN_S` again once one batch or less is left
    behind the one it takes. Everything arrives, in order."""
    client = _GatedClient()
    handler, log = handler_with(make_handler, client)
    full = MAX_BATCH_EVENTS
    for i in range(full):  # the first batch: due, taken, held in the call
        log.info("m%d", i)
    assert client.in_first_put.wait(30)
    for i in range(full, 3 * full + 10):  # two batches and a few events behind it
        log.info("m%d", i)
    client.release.set()
    assert handler.flush(30)
    assert client.messages(GROUP, "s") == [f"m{i}" for i in range(3 * full + 10)]
    assert client.turns == [TURN_S, BEHIND_TURN_S, TURN_S, TURN_S]


@pytest.mark.parametrize("spooled", [False, True], ids=["memory", "spool"])
def test_a_handler_fills_its_queues_batches_in_memory_with_room_for_them(
    make_handler: HandlerFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, spooled: bool
) -> None:
    """The sender gives a queue memory for a whole batch: once a new queue holds `ROOM_FROM`
    events, and whenever it takes a batch that long from a queue whole, before sending it. The
    logging calls that fill the batch then never move its arrays (a move is fresh memory and a
    copy, on a logging call), a spooling handler's journal numbers included, and every record
    arrives once, in order. For the first batch the test waits for the sender's step that
    makes room; after that, a flush() has waited for it."""
    client = FakeLogsClient()
    spool = {"spool_dir": tmp_path / "spool"} if spooled else {}
    handler, log = handler_with(make_handler, client, flush_interval_s=3600, **spool)
    room_made = threading.Event()

    def make_room(streams: Any, make_room: Callable[[Any], None] = SENDER._make_room) -> None:
        make_room(streams)
        room_made.set()

    monkeypatch.setattr(SENDER, "_make_room", make_room)

    def queue_addresses() -> tuple[int, ...]:
        with SENDER._lock:
            queue = handler._queues.streams["s"].queue
            numbers = [] if queue._numbers is None else [queue._numbers]
            assert len(numbers) == spooled
            return addresses(queue._times, queue._sizes, *numbers)

    for i in range(ROOM_FROM):  # a new queue: the ROOM_FROM-th call asks the sender for room
        log.info("batch 0 record %d", i)
    assert room_made.wait(10.0)
    first = ROOM_FROM
    for batch in range(4):
        start = queue_addresses()
        for i in range(first, 3_000):
            log.info("batch %d record %d", batch, i)
        assert queue_addresses() == start, f"batch {batch}: the arrays moved"
        assert handler.flush(10.0)
        first = 0
    expected = [f"batch {batch} record {i}" for batch in range(4) for i in range(3_000)]
    assert client.messages(GROUP, "s") == expected
