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
from contextlib import suppress
from pathlib import Path
from types import FrameType

import pytest
from fault_proxy import fault_proxy
from handler_factory import HandlerFactory, unique_group
from interrupts import interrupted_at

from aws_cloudwatch_logs_handler._limits import MAX_BATCH_BYTES
from aws_cloudwatch_logs_handler._sender import SENDER
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
