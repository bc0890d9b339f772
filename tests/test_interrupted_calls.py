"""A logging call cut short by an exception a signal handler raises leaves the handler whole.

Ctrl-C's KeyboardInterrupt (or a SystemExit an application's SIGTERM handler raises) comes out of
whichever call the main thread was in when CPython ran the handler (once a call returns, at a
loop's turn, at a function's start). Here a real timer signal, whose handler raises
KeyboardInterrupt, lands at a random moment of each of thousands of logging calls.
"""

from __future__ import annotations

import faulthandler
import logging
import random
import shutil
import signal
import statistics
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress
from itertools import count
from pathlib import Path
from types import CodeType, FrameType

import pytest
from fault_proxy import fault_proxy
from handler_factory import HandlerFactory, unique_group
from interrupts import interrupted_at, interrupted_at_check

from aws_cloudwatch_logs_handler import CloudWatchLogsHandler, _packed
from aws_cloudwatch_logs_handler._limits import (
    EVENT_OVERHEAD_BYTES,
    MAX_BATCH_BYTES,
    MAX_EVENT_BYTES,
)
from aws_cloudwatch_logs_handler._packed import CHUNK_MESSAGES, PackedEvents
from aws_cloudwatch_logs_handler._queues import MEMORY_OVERHEAD_PER_EVENT, HandlerQueues
from aws_cloudwatch_logs_handler._sender import SENDER, Sender
from aws_cloudwatch_logs_handler._spool import Spool, group_key
from local_aws.moto_endpoint import MotoEndpoint

CALLS = 20_000


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("spool", [False, True], ids=["memory", "spool"])
def test_logging_calls_interrupted_at_random_moments_leave_the_handler_whole(
    moto_server: MotoEndpoint, make_handler: HandlerFactory, tmp_path: Path, spool: bool
) -> None:
    """Every record whose logging call returned arrives once, an interrupted one at most once,
    nothing is counted as dropped, and once all is sent no byte is left counted as queued.
    Before, an interrupt right after the sender's lock was taken left it held (the next call
    waited for good: this test hung), and one after a timestamp's append left its message out:
    the stream could never be sent again (1 Ctrl-C in 88 while logging flat out lost 4,826
    records). With a spool, once all is sent a crash would replay nothing: before, a call cut
    between its journal and its queue left a frame that never settled, and the journal's
    acknowledged offset stopped there (a crash, or the next start after a clean exit,
    replayed every record after it twice). A hang ends the test process after 120 s, with
    every thread's traceback."""
    group = unique_group()
    spool_dir = tmp_path / "spool"
    options = {"spool_dir": str(spool_dir)} if spool else {}
    handler = make_handler(group, log_stream="s", endpoint_url=moto_server.url, **options)
    log = make_handler.logger(handler)
    log.info("warm")
    assert handler.flush(timeout_s=30)
    # The timer spans a few of this interpreter's logging calls (set and started included),
    # so its signal lands anywhere in one: some calls return, most are cut short somewhere.
    latest = 3 * _median_call_s(log)
    returned = _log_interrupted(log, latest, seed=7)
    interrupted = CALLS - len(returned)
    assert SENDER._lock.acquire(timeout=10), "the sender's lock was left held"
    SENDER._lock.release()
    assert handler.flush(timeout_s=60)
    got = Counter(m for m in moto_server.messages(group, "s") if m.startswith("m-"))
    print(
        f"measured: {CALLS} calls, timer up to {latest * 1e6:.0f} us, {interrupted} interrupted, "
        f"{sum(got.values())} delivered"
    )
    assert [m for m, n in got.items() if n > 1] == []
    assert [n for n in returned if got[f"m-{n}"] != 1] == []
    assert handler.stats().dropped_total == 0
    assert handler._queues.bytes_queued == 0
    if spool:
        assert _replayed_after_a_crash_now(spool_dir, group, make_handler, moto_server) == {}


def _log_interrupted(
    log: logging.Logger, latest: float, *, seed: int, padding: str = ""
) -> list[int]:
    """Log records "m-0" to "m-<CALLS - 1>" (then ``padding``), each call with a timer of 1 us
    to ``latest`` whose signal raises KeyboardInterrupt; return the numbers whose call returned.
    A hang (a lock left held waits for good) ends the process after 120 s, with every thread's
    traceback."""
    rng = random.Random(seed)
    returned: list[int] = []
    faulthandler.dump_traceback_later(120, exit=True)
    previous = signal.signal(signal.SIGALRM, _interrupt)
    try:
        for number in range(CALLS):
            with suppress(KeyboardInterrupt):
                try:
                    signal.setitimer(signal.ITIMER_REAL, rng.uniform(1e-6, latest))
                    log.info("m-%d%s", number, padding)
                    returned.append(number)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()
    return returned


def _median_call_s(log: logging.Logger, padding: str = "") -> float:
    """How long a logging call takes here, with the timer set and cleared around it."""
    took = []
    for _ in range(500):
        started = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, 0)
        log.info("timing %s", padding)
        signal.setitimer(signal.ITIMER_REAL, 0)
        took.append(time.perf_counter() - started)
    return statistics.median(took)


def _replayed_after_a_crash_now(
    spool_dir: Path, group: str, make_handler: HandlerFactory, moto_server: MotoEndpoint
) -> Counter[str]:
    """What a restart would deliver if this process died now: its journals copied as a dead
    process leaves them (unlocked), named for a new group, and replayed there by a new handler
    (so the live handler and the replay do not write into one stream)."""
    replay_group = unique_group()
    crashed = spool_dir.parent / f"crashed-{group_key(replay_group)}"
    crashed.mkdir(mode=0o700)
    for file in spool_dir.iterdir():
        name = file.name.replace(group_key(group), group_key(replay_group), 1)
        shutil.copyfile(file, crashed / name)
    replaying = make_handler(
        replay_group, log_stream="s", endpoint_url=moto_server.url, spool_dir=str(crashed)
    )
    make_handler.logger(replaying).info("replayed")  # after the replay, which the start queued
    assert replaying.flush(timeout_s=60)
    assert replaying.stats().dropped_total == 0  # no stretch of the journal read as corrupt
    replayed = moto_server.messages(replay_group, "s")
    assert replayed[-1:] == ["replayed"]
    return Counter(replayed[:-1])


@pytest.mark.parametrize(
    ("journal_write", "message"),
    [("append_one", "one line"), ("append", "split " + "x" * 3000)],
    ids=["one-event", "split-record"],
)
def test_a_call_cut_at_each_line_of_its_journal_write_leaves_nothing_to_replay(
    moto_server: MotoEndpoint,
    make_handler: HandlerFactory,
    tmp_path: Path,
    journal_write: str,
    message: str,
) -> None:
    """The timer above lands where it happens to; here the interrupt comes at every line of
    the spool's journal write in turn (a trace function raising at a line's start, in the
    logging thread only), through a real logging call: a one-line record, or one split in
    parts (written with `append`). Every record logged after each cut arrives once, and once
    all is sent a crash would replay nothing (before, a cut after the frame was written and
    before it was queued stopped the acknowledged offset there)."""
    group = unique_group()
    spool_dir = tmp_path / "spool"
    handler = make_handler(
        group,
        log_stream="s",
        endpoint_url=moto_server.url,
        spool_dir=str(spool_dir),
        max_event_bytes=1024,
        flush_interval_s=60,  # kept queued, and journaled, until the flush below
    )
    log = make_handler.logger(handler)
    log.info("warm")
    assert handler.flush(timeout_s=30)
    code = getattr(Spool, journal_write).__code__
    lines = sorted({line for _, _, line in code.co_lines() if line and line > code.co_firstlineno})
    cut = 0
    for line in lines:
        with interrupted_at(code, line) as fired, suppress(KeyboardInterrupt):
            log.info(message)
        cut += fired[0]
        log.info("after %d", line)
    print(f"measured: {cut} calls cut, of {len(lines)} lines of Spool.{journal_write}")
    assert cut >= len(lines) - 2  # every line the call runs (a branch or two it skips)
    # A crash now replays each record logged after a cut once, and nothing the journal holds
    # reads as corrupt (a cut between a frame's write and its numbering left the acknowledged
    # offset off by that frame: past it, the replay began inside a frame).
    waiting = _replayed_after_a_crash_now(spool_dir, group, make_handler, moto_server)
    assert [line for line in lines if waiting[f"after {line}"] != 1] == []
    assert handler.flush(timeout_s=60)
    got = Counter(moto_server.messages(group, "s"))
    assert [line for line in lines if got[f"after {line}"] != 1] == []
    assert [m for m, n in got.items() if n > 1 and not m.startswith(message[:6])] == []
    assert handler.stats().dropped_total == 0
    assert _replayed_after_a_crash_now(spool_dir, group, make_handler, moto_server) == {}


@pytest.mark.parametrize("spool", [False, True], ids=["memory", "spool"])
def test_calls_interrupted_while_dropping_the_oldest_leave_the_counts_whole(
    moto_server: MotoEndpoint, make_handler: HandlerFactory, tmp_path: Path, spool: bool
) -> None:
    """With ``overflow="drop_oldest"`` and the endpoint unreachable, the queue is full and
    every logging call drops the oldest records to make room; here they are interrupted at
    random moments too. Every record is then either delivered once or counted as dropped, no
    byte stays counted as queued, and the handler goes on: records logged afterwards all
    arrive. Before, a cut in the middle of the drop left events gone from the queue and never
    settled: the flush waited for them until its timeout (3 runs of 3), the counts off."""
    group = unique_group()
    with fault_proxy(moto_server.url) as proxy:
        handler = make_handler(
            group,
            log_stream="s",
            endpoint_url=proxy.url,
            overflow="drop_oldest",
            # Room for records queued beside the 1 MB batch stuck in flight (never dropped).
            max_queue_bytes=4 * MAX_BATCH_BYTES,
            **({"spool_dir": str(tmp_path / "spool")} if spool else {}),
        )
        log = make_handler.logger(handler)
        log.info("warm")
        assert handler.flush(timeout_s=30)
        proxy.cut()
        padding = " " + "x" * 500
        for number in range(10_000):  # 5 MB: the queue is full, the oldest dropped from here on
            log.info("fill-%d%s", number, padding)
        dropped_before = handler.stats().dropped_total
        latest = 3 * _median_call_s(log, padding)
        interrupted = CALLS - len(_log_interrupted(log, latest, seed=11, padding=padding))
        dropped_meanwhile = handler.stats().dropped_total - dropped_before
        proxy.restore()
        assert handler.flush(timeout_s=60)
        for number in range(100):
            log.info("after-%d", number)
        assert handler.flush(timeout_s=60)
    stats = handler.stats()
    got = Counter(moto_server.messages(group, "s"))
    print(
        f"measured: {CALLS} calls, timer up to {latest * 1e6:.0f} us, {interrupted} interrupted, "
        f"{stats.records_accepted} accepted, {dropped_meanwhile} dropped meanwhile, "
        f"{stats.dropped_total} dropped, {sum(got.values())} delivered"
    )
    assert dropped_before > 0 and dropped_meanwhile > 0  # full: the oldest were dropped
    assert [m for m, n in got.items() if n > 1 and not m.startswith("timing")] == []
    assert [n for n in range(100) if got[f"after-{n}"] != 1] == []
    assert sum(got.values()) == stats.events_delivered
    assert stats.records_accepted == stats.events_delivered + stats.dropped_total
    assert (stats.events_queued, stats.bytes_queued) == (0, 0)
    if spool:  # the dropped records' frames are settled too: a crash now replays nothing
        assert (
            _replayed_after_a_crash_now(tmp_path / "spool", group, make_handler, moto_server) == {}
        )


def _codes(*functions: Callable[..., object]) -> list[CodeType]:
    return [function.__code__ for function in functions]


def _spooled(functions: list[Callable[..., object]], spool: bool) -> list[Callable[..., object]]:
    """``functions`` if the handler spools, else none."""
    return functions if spool else []


def _cut_at_each_check(
    log: logging.Logger,
    queues: HandlerQueues,
    codes: list[CodeType],
    prepare: Callable[[], tuple[int, str]],
) -> tuple[int, list[str]]:
    """Make a logging call cut short at each place in turn where CPython may run a signal
    handler in ``codes`` (`interrupts.interrupted_at_check`), until one runs to its end.

    ``prepare`` sets the queue up before each call, and gives the record's number and padding.
    Returns how many places there were, and what `_faults` found after each cut.
    """
    faults: list[str] = []
    for index in range(10_000):  # more than the places in any call's path
        latest, padding = prepare()
        newest = _numbers_queued(queues)[-1:]
        with interrupted_at_check(codes, index) as fired, suppress(KeyboardInterrupt):
            log.info("c-%07d%s", latest, padding)
        faults += [f"cut at place {index}: {f}" for f in _faults(queues, [latest, *newest])]
        if not fired[0]:
            return index, faults
    pytest.fail("the call's path never ran to its end")


def _all_settled_in_the_end(
    handler: CloudWatchLogsHandler,
    log: logging.Logger,
    moto_server: MotoEndpoint,
    spool_dir: Path | None,
    make_handler: HandlerFactory,
) -> None:
    """Records logged after the cuts arrive, the flush returns, every record is delivered
    once or counted as dropped, nothing stays counted as queued and, with a spool, a crash
    now would replay nothing."""
    for number in range(3):
        log.info("after-%d", number)
    assert handler.flush(timeout_s=60)
    stats = handler.stats()
    group = handler._queues.settings.log_group
    got = Counter(moto_server.messages(group, "s"))
    assert [m[:9] for m, n in got.items() if n > 1] == []
    assert [n for n in range(3) if got[f"after-{n}"] != 1] == []
    assert sum(got.values()) == stats.events_delivered
    assert stats.records_accepted == stats.events_delivered + stats.dropped_total
    assert (stats.events_queued, stats.bytes_queued) == (0, 0)
    if spool_dir is not None:
        assert _replayed_after_a_crash_now(spool_dir, group, make_handler, moto_server) == {}


@pytest.mark.parametrize("sealing", [False, True], ids=["appending", "sealing-a-chunk"])
@pytest.mark.parametrize("spool", [False, True], ids=["memory", "spool"])
def test_a_logging_call_cut_wherever_a_signal_can_land_leaves_the_queue_whole(
    moto_server: MotoEndpoint,
    make_handler: HandlerFactory,
    tmp_path: Path,
    spool: bool,
    sealing: bool,
) -> None:
    """The random timer above lands where it happens to; here the interrupt comes at every
    place in turn where CPython may run a signal handler, in the usual logging call's path
    (`Sender.enqueue_one`): an append, or the one that seals the queue's chunk of messages.
    After each cut the queue holds whole events, in order, once, each as counted; at the end
    every record is delivered once, and the flush returns."""
    spool_dir = tmp_path / "spool" if spool else None
    handler = make_handler(
        unique_group(),
        log_stream="s",
        endpoint_url=moto_server.url,
        flush_interval_s=3600,  # all stays queued until the flush at the end
        **({"spool_dir": str(spool_dir)} if spool_dir else {}),
    )
    log = make_handler.logger(handler)
    queues = handler._queues
    numbered = count()
    log.info("f-%07d", next(numbered))  # the stream made: from here on, the usual call's path
    codes = _codes(
        CloudWatchLogsHandler.emit,
        Sender.enqueue_one,
        PackedEvents.append,
        PackedEvents._seal_full_chunks,
        _packed._seal,
        *_spooled([Spool.append_one], spool),
    )

    def prepare() -> tuple[int, str]:
        tail = queues.streams["s"].queue._tail
        while sealing and len(tail) != CHUNK_MESSAGES - 1:
            log.info("f-%07d", next(numbered))
        return next(numbered), ""

    places, faults = _cut_at_each_check(log, queues, codes, prepare)
    print(f"measured: {places} places where a signal can land, in a call {sealing=}")
    assert faults == []
    assert places > 20  # the trace reached into the call
    _all_settled_in_the_end(handler, log, moto_server, spool_dir, make_handler)


# What the interrupted call's record drops, from a queue full of records of FILL_BYTES: the
# first few (the queue's arrays keep the gap), three in five (the arrays are cut), every sealed
# chunk's and one more (the chunks go, and the tail is cut), and every one.
DROPS = ["a-few", "most", "tail", "all"]
FILL_BYTES = 5_000


@pytest.mark.parametrize("drops", DROPS)
@pytest.mark.parametrize("spool", [False, True], ids=["memory", "spool"])
def test_a_call_cut_wherever_a_signal_can_land_in_its_drop_leaves_the_counts_whole(
    moto_server: MotoEndpoint,
    make_handler: HandlerFactory,
    *,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    spool: bool,
    drops: str,
) -> None:
    """The random timer above lands where it happens to; here the interrupt comes at every
    place in turn where CPython may run a signal handler (`interrupts.interrupted_at_check`)
    while a logging call drops the oldest records of a full queue to make room for its own.
    After each cut the queue holds whole events, in order, each as counted; at the end every
    record is delivered once or counted as dropped, and the flush returns. Before, on 3.10
    (which runs signal handlers at every ``if`` whose jump is taken), a cut in the drop left
    the arrays cut but not their start, or their start moved but not the chunks of messages:
    the counts went off, and the flush waited for good (1 run of 4 sessions in CI)."""
    # The arrays are cut once the gap is this long, as they are at 4,096 events (their usual
    # threshold), in a queue of 1 MB that holds about 200 of these records.
    monkeypatch.setattr(_packed, "_COMPACT_AFTER", 64)
    spool_dir = tmp_path / "spool" if spool else None
    handler = make_handler(
        unique_group(),
        log_stream="s",
        endpoint_url=moto_server.url,
        overflow="drop_oldest",
        max_queue_bytes=MAX_BATCH_BYTES + MEMORY_OVERHEAD_PER_EVENT,  # the least: 1 MB
        max_event_bytes=MAX_EVENT_BYTES,
        flush_interval_s=3600,  # all stays queued until the flush at the end
        **({"spool_dir": str(spool_dir)} if spool_dir else {}),
    )
    log = make_handler.logger(handler)
    queues = handler._queues
    numbered = count()
    codes = _codes(
        Sender.enqueue,
        HandlerQueues._drop_first,
        HandlerQueues._count_dropped_first,
        HandlerQueues.add,
        HandlerQueues._added,
        PackedEvents.detach,
        PackedEvents._forget_first,
        PackedEvents.clear,
        PackedEvents.extend,
        PackedEvents._seal_full_chunks,
        *_spooled([Spool.append, Spool.settle, Spool._settle_numbers, Spool._acknowledge], spool),
    )

    def prepare() -> tuple[int, str]:
        # The queue afresh: one record that drops every queued one, then FILL_BYTES records
        # until one more would drop the oldest (the first drops the big one, the arrays empty).
        log.info("r%s", "r" * (MAX_EVENT_BYTES - 3_600))
        log.info("f-%07d%s", next(numbered), "x" * (FILL_BYTES - 9))
        fill_cost = queues.bytes_queued
        while queues.fits(fill_cost):
            log.info("f-%07d%s", next(numbered), "x" * (FILL_BYTES - 9))
        queue = queues.streams["s"].queue
        queued, sealed = len(queue), CHUNK_MESSAGES * len(queue._chunks)
        assert queue._head == 0  # the arrays afresh, with no gap yet
        to_drop = {"a-few": 8, "most": queued * 3 // 5, "tail": sealed + 1}.get(drops, queued)
        assert to_drop < queued or drops == "all"
        # A record that fits once exactly ``to_drop`` are dropped (a fill record is more than
        # 1,000 bytes: one fewer would not do).
        room = queues.max_queue_bytes - queues.bytes_queued + to_drop * fill_cost
        return next(numbered), "c" * (room - 1_000 - fill_cost + FILL_BYTES - 9)

    places, faults = _cut_at_each_check(log, queues, codes, prepare)
    print(f"measured: {places} places where a signal can land, on the drop of {drops}")
    assert faults == []
    assert places > 20  # the trace reached into the drop
    _all_settled_in_the_end(handler, log, moto_server, spool_dir, make_handler)


def _number(message: str) -> int:
    """The number a record logged here carries ("f-0000012...", "c-0000013...")."""
    return int(message[2:9])


def _numbers_queued(queues: HandlerQueues) -> list[int]:
    """The numbers of the records queued in ``queues``' stream "s", oldest first."""
    queue = queues.streams["s"].queue
    with SENDER._lock:
        return [_number(message) for message in queue.messages(0, len(queue))]


def _faults(queues: HandlerQueues, newest: list[int]) -> list[str]:
    """What is off in the queued events of ``queues``' stream "s", and in their counts: they
    must be whole, in order, once, each as counted, and the newest one of ``newest`` (the
    interrupted call's record may be in or not, the older records dropped or not)."""
    stream = queues.streams["s"]
    queue = stream.queue
    with SENDER._lock:  # as the sender reads it (it may be giving the queue room)
        try:
            events = list(queue)  # each field of every event, read together
        except ValueError as error:  # the fields' arrays of unequal lengths
            return [f"the queue's fields differ in length: {error}"]
        held = CHUNK_MESSAGES * len(queue._chunks) - queue._skip + len(queue._tail)
        counts = (stream.queued_size, queues.bytes_queued, stream.enqueued, stream.settled)
    queued_size, bytes_queued, enqueued, settled = counts
    faults = []
    if held != len(events):
        faults.append(f"{held} messages held for {len(events)} events")
    if any(e.size != len(e.message.encode()) + EVENT_OVERHEAD_BYTES for e in events):
        faults.append("an event's size is another's")
    order = [_number(e.message) for e in events]
    if order != sorted(set(order)) or (order and order[-1] not in newest):
        faults.append(f"not in order, once, up to the newest of {newest}: {order}")
    size = sum(e.size for e in events)
    if queued_size != size:
        faults.append(f"queued_size {queued_size}, the events {size}")
    if bytes_queued != size + len(events) * queues.overhead_per_event:
        faults.append(f"bytes_queued {bytes_queued} for {len(events)} events of {size}")
    if enqueued - settled != len(events):
        faults.append(f"{enqueued} enqueued, {settled} settled, {len(events)} wait")
    return faults
