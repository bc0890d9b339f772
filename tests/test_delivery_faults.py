"""Delivery on a bad day: cuts, lost groups, throttling, lost endpoint state, odd input, dead exits.

Everything goes over real HTTP: handler -> fault proxy -> AWS-like front -> moto server. The proxy
cuts the network, the front throttles and refuses what real AWS would refuse, and moto holds what
was delivered. Each test compares what it logged with what the endpoint holds and states the
figures it measured (lost, duplicated, refused, exit time) in its assertion messages.
"""

from __future__ import annotations

import logging
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fault_proxy import FaultProxy, fault_proxy

from aws_cloudwatch_logs_handler import CloudWatchLogsHandler, join_parts
from local_aws.aws_front import LEGACY_EVENT_BYTES_LIMIT, AwsFront
from local_aws.moto_endpoint import REGION, MotoEndpoint

pytestmark = pytest.mark.slow  # real HTTP through a fault proxy, with real backoff waits

FLUSH_TIMEOUT_S = 60.0
"""Bound on every flush here: far above what delivery needs, far below pytest's timeout."""
CUT_S = 3.0
"""How long the network stays cut: longer than botocore's own quick retries, so the handler's
own retries are what has to carry the records across."""
HOUR_S = 3600.0
PART = re.compile(r"\A\[part (\d+)/(\d+) id=([0-9a-f]+)\] ")
"""The marker on each part of a split message (`join_parts` reads it back)."""


@dataclass(frozen=True)
class Harness:
    """The fault tools in front of the session's moto server: proxy -> front -> moto."""

    proxy: FaultProxy
    front: AwsFront
    moto: MotoEndpoint

    @property
    def url(self) -> str:
        """Where handlers send: the proxy, so every fault tool sits on the path."""
        return self.proxy.url


@dataclass(frozen=True)
class Tally:
    """What came out compared with what went in."""

    sent: int
    received: int
    lost: int
    duplicated: int
    unexpected: int
    in_order: bool

    @classmethod
    def of(cls, sent: list[str], received: list[str]) -> Tally:
        """Compare ``received`` with ``sent`` as multisets, and their order."""
        want, got = Counter(sent), Counter(received)
        return cls(
            sent=len(sent),
            received=len(received),
            lost=sum((want - got).values()),
            duplicated=sum(n - 1 for n in got.values() if n > 1),
            unexpected=sum((got - want).values()) - sum(n - 1 for n in got.values() if n > 1),
            in_order=sent == received,
        )

    @property
    def perfect(self) -> bool:
        """Everything arrived once, and in the order it was logged."""
        return self.lost == self.duplicated == self.unexpected == 0 and self.in_order

    def __str__(self) -> str:
        return (
            f"sent={self.sent} received={self.received} lost={self.lost} "
            f"duplicated={self.duplicated} unexpected={self.unexpected} in_order={self.in_order}"
        )


@dataclass
class Logging:
    """A handler on its own logger, and everything the test logged through it."""

    handler: CloudWatchLogsHandler
    logger: logging.Logger
    problems: list[str]
    sent: list[str]

    @property
    def group(self) -> str:
        """The handler's log group."""
        return self.handler.log_group_name

    def log(self, count: int, tag: str) -> None:
        """Log ``count`` numbered records tagged ``tag`` and remember them."""
        for _ in range(count):
            message = f"{tag}-{len(self.sent):06d}"
            self.logger.info(message)
            self.sent.append(message)

    def log_for(self, seconds: float, tag: str, *, per_tick: int = 100) -> None:
        """Keep logging ``per_tick`` records every 50 ms for ``seconds`` (bounded by the clock)."""
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            self.log(per_tick, tag)
            time.sleep(0.05)  # pacing, not waiting: the sender should try during this time

    def flush(self) -> None:
        """Flush and fail the test if the handler could not settle everything in time."""
        started = time.monotonic()
        settled = self.handler.flush(timeout_s=FLUSH_TIMEOUT_S)
        took = time.monotonic() - started
        assert settled, f"flush gave up after {took:.1f} s; {self.handler.stats()}"


MakeLogging = Callable[..., Logging]


@pytest.fixture
def harness(moto_server: MotoEndpoint) -> Iterator[Harness]:
    """A fresh front and proxy before the session's moto server, stopped after the test."""
    with AwsFront(moto_server.url) as front, fault_proxy(front.url) as proxy:
        yield Harness(proxy=proxy, front=front, moto=moto_server)


@pytest.fixture
def make_logging() -> Iterator[MakeLogging]:
    """Make handlers on private loggers with unique groups; close and detach them all after."""
    made: list[Logging] = []

    def make(endpoint_url: str, **options: Any) -> Logging:
        problems: list[str] = []
        options.setdefault("flush_interval_s", 0.2)
        handler = CloudWatchLogsHandler(
            f"/delivery/{uuid.uuid4().hex}",
            endpoint_url=endpoint_url,
            region=REGION,
            on_problem=problems.append,
            **options,
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = logging.getLogger(f"delivery.{uuid.uuid4().hex}")
        logger.propagate = False  # only this handler sees the test's records
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        made.append(Logging(handler, logger, problems, []))
        return made[-1]

    yield make
    for item in made:
        item.logger.removeHandler(item.handler)
        item.handler.close()


def received(moto: MotoEndpoint, log: Logging) -> list[str]:
    """Return what the endpoint holds in the handler's stream, oldest first."""
    return moto.messages(log.group, log.handler.log_stream_name)


def test_nothing_lost_across_a_network_cut(harness: Harness, make_logging: MakeLogging) -> None:
    """Thousands of records logged before, during and after a 3 s cut all arrive once, in order."""
    log = make_logging(harness.url)
    log.log(1500, "before")
    log.flush()  # nothing in flight when the cut comes, so no answer can be lost mid-air
    harness.proxy.cut()
    log.log_for(CUT_S, "during")
    harness.proxy.restore()
    restored = time.monotonic()
    log.log(1500, "after")
    log.flush()
    recovery_s = time.monotonic() - restored
    tally = Tally.of(log.sent, received(harness.moto, log))
    cut = harness.proxy.counters()
    stats = log.handler.stats()
    figures = (
        f"{tally}; restore to flushed {recovery_s:.2f} s; proxy {cut}; retries={stats.retries}; "
        f"refused={harness.front.refused}"
    )
    print(f"measured: {figures}")
    assert tally.perfect, figures
    # That flush() wakes the backoff, and re-creation skips it, is asserted without wall-clock
    # bounds in test_sender_unit; here the recovery time is measured and printed.
    assert tally.sent >= 5000, figures
    assert cut.refused + cut.dropped > 0, f"the cut never met the handler: {figures}"
    assert stats.retries > 0, figures
    assert harness.front.refused == [], figures
    assert stats.dropped == {}, figures


def test_resets_mid_flight_lose_nothing(harness: Harness, make_logging: MakeLogging) -> None:
    """Connections reset while batches are in flight lose nothing and keep the order."""
    log = make_logging(harness.url, flush_interval_s=0.05)
    until = time.monotonic() + 2.0

    def resetter() -> None:
        while time.monotonic() < until:  # bounded by the clock
            time.sleep(0.1)  # the interval between faults, not a wait for work
            harness.proxy.reset()

    thread = threading.Thread(target=resetter)
    thread.start()
    while time.monotonic() < until:
        log.log(50, "reset")
        time.sleep(0.01)  # pacing, so that batches are in flight when the resets come
    thread.join()
    log.flush()
    got = received(harness.moto, log)
    tally = Tally.of(log.sent, got)
    first_seen = list(dict.fromkeys(got))
    resets = harness.proxy.counters().dropped
    figures = (
        f"{tally}; connections reset={resets}; retries={log.handler.stats().retries}; "
        f"refused={harness.front.refused}"
    )
    print(f"measured: {figures}")
    # A reset after the service took a batch but before its answer arrived makes the batch go
    # again: PutLogEvents has no idempotency key, so such duplicates are expected and counted.
    assert tally.lost == tally.unexpected == 0, figures
    assert first_seen == log.sent, figures
    assert resets > 0, figures
    assert harness.front.refused == [], figures


def test_group_deleted_during_a_cut_is_recreated(
    harness: Harness, make_logging: MakeLogging
) -> None:
    """A group deleted while the network is cut is re-created with its ttl; nothing is lost."""
    log = make_logging(harness.url, ttl=7)
    log.log(500, "before")
    log.flush()
    harness.proxy.cut()
    harness.moto.logs_client().delete_log_group(logGroupName=log.group)
    log.log_for(CUT_S, "during")
    harness.proxy.restore()
    restored = time.monotonic()
    log.log(1000, "after")
    log.flush()
    recovery_s = time.monotonic() - restored
    # The 500 "before" records went with the deleted group: deleting them was the test's doing.
    expected = [m for m in log.sent if not m.startswith("before-")]
    tally = Tally.of(expected, received(harness.moto, log))
    groups = harness.moto.logs_client().describe_log_groups(logGroupNamePrefix=log.group)
    calls = harness.front.calls
    figures = (
        f"{tally}; restore to flushed {recovery_s:.2f} s; calls={calls}; "
        f"retries={log.handler.stats().retries}; refused={harness.front.refused}"
    )
    print(f"measured: {figures}")
    assert tally.perfect, figures
    assert [g.get("retentionInDays") for g in groups["logGroups"]] == [7], groups
    assert calls.get("CreateLogGroup") == 2, figures
    assert calls.get("PutRetentionPolicy") == 2, figures
    assert harness.front.refused == [], figures
    # Re-creating a lost stream without waiting out the cut's backoff: test_sender_unit.


def test_nothing_lost_with_half_the_calls_throttled(
    harness: Harness, make_logging: MakeLogging
) -> None:
    """With half the PutLogEvents throttled every record arrives once, in order, after retries."""
    # Seed 4 throttles the first six calls in a row: more than botocore's own attempts, so the
    # handler's retries are exercised whatever its batching; then about half of the rest.
    harness.front.inject("throttling", share=0.5, seed=4)
    log = make_logging(harness.url)
    # A flush per round forces a call per round: enough calls for "half" to mean something.
    for _ in range(15):
        log.log(200, "throttled")
        log.flush()
    tally = Tally.of(log.sent, received(harness.moto, log))
    calls = harness.front.calls.get("PutLogEvents", 0)
    throttled = harness.front.faults.get("PutLogEvents", 0)
    stats = log.handler.stats()
    figures = (
        f"{tally}; PutLogEvents calls={calls} throttled={throttled} "
        f"handler retries={stats.retries} batches={stats.batches}"
    )
    print(f"measured: {figures}")
    assert tally.perfect, figures
    assert 0.3 <= throttled / calls <= 0.7, figures
    assert stats.retries > 0, figures
    assert harness.front.refused == [], figures


def test_nothing_lost_when_the_endpoint_forgets_everything(
    harness: Harness, make_logging: MakeLogging
) -> None:
    """When the endpoint loses all state mid-run, group and stream are re-created, none lost."""
    log = make_logging(harness.url, ttl=14)
    log.log(1000, "before")
    log.flush()
    # The session's moto server forgets every resource, as a restarted endpoint would. Other
    # tests' groups go too; each test makes its own and checks it before it ends.
    harness.moto.reset()
    log.log_for(1.5, "after-reset")
    log.flush()
    expected = [m for m in log.sent if not m.startswith("before-")]
    tally = Tally.of(expected, received(harness.moto, log))
    calls = harness.front.calls
    figures = f"{tally}; calls={calls}; retries={log.handler.stats().retries}"
    print(f"measured: {figures}")
    assert tally.perfect, figures
    assert calls.get("CreateLogGroup") == 2, figures
    assert harness.front.refused == [], figures


class Unprintable:
    """An object whose text form raises, as a buggy ``__str__`` in user code would."""

    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")


def log_at(log: Logging, message: str, created: float) -> None:
    """Log ``message`` as if it had been logged at ``created`` (seconds since the epoch)."""
    record = log.logger.makeRecord(log.logger.name, logging.INFO, __file__, 0, message, (), None)
    record.created, record.msecs = created, (created % 1) * 1000
    log.logger.handle(record)


def check_parts(messages: list[str]) -> dict[str, int]:
    """Check that split parts arrive in order with consecutive indexes; return parts per id."""
    parts: dict[str, list[int]] = {}
    totals: dict[str, int] = {}
    for message in messages:
        match = PART.match(message)
        if match:
            parts.setdefault(match[3], []).append(int(match[1]))
            totals[match[3]] = int(match[2])
    for part_id, indexes in parts.items():
        assert indexes == list(range(1, totals[part_id] + 1)), f"parts of {part_id}: {indexes}"
    return totals


def test_odd_input_is_delivered_or_counted(harness: Harness, make_logging: MakeLogging) -> None:
    """Huge, multibyte, broken, empty, old, future records: delivered or counted, none refused."""
    log = make_logging(harness.url)
    big = {
        "ascii": "a" * 3_000_000,
        "e-acute": "é" * 1_500_000,  # 3 MB of 2-byte characters
        "emoji": "😀" * 750_000,  # 3 MB of 4-byte characters
    }
    for text in big.values():
        log.logger.info(text)
    log.logger.info("lone \ud800 surrogate")
    log.logger.info({"key": "value"})
    log.logger.info("%(key)s from a mapping", {"key": "value"})
    log.logger.info(Unprintable())
    log.logger.info("")
    now = time.time()
    log_at(log, "twenty-five hours old", now - 25 * HOUR_S)
    log_at(log, "fifteen days old", now - 15 * 24 * HOUR_S)
    log_at(log, "three hours ahead", now + 3 * HOUR_S)
    log.logger.info("last")
    log.flush()

    raw = received(harness.moto, log)
    totals = check_parts(raw)
    whole = join_parts(raw)
    expected = [
        *big.values(),
        "lone \ufffd surrogate",
        "{'key': 'value'}",
        "value from a mapping",
        "twenty-five hours old",
        "last",
    ]
    leftover = list((Counter(whole) - Counter(expected)).elements())
    stats = log.handler.stats()
    refused = harness.front.refused
    figures = (
        f"events={len(raw)} parts={sorted(totals.values())} leftover={[m[:80] for m in leftover]} "
        f"missing={[m[:40] for m in (Counter(expected) - Counter(whole))]} dropped={stats.dropped} "
        f"unformattable={stats.records_unformattable} refused={refused}"
    )
    print(f"measured: {figures}")
    assert not Counter(expected) - Counter(whole), figures
    # What remains is the stand-in for the empty message and the one for the broken object.
    assert len(leftover) == 2, figures
    assert all(leftover), figures
    assert sum("unformattable" in m and "__str__ is broken" in m for m in leftover) == 1, figures
    assert sorted(totals.values()) == [3, 3, 3], figures
    assert max(len(m.encode()) for m in raw) <= 1_048_550, figures
    assert dict(stats.dropped) == {"too_old": 1, "too_new": 1}, figures
    assert stats.records_unformattable == 1, figures
    assert refused == [], figures


def test_legacy_256_kb_events_are_split_to_fit(
    moto_server: MotoEndpoint, make_logging: MakeLogging
) -> None:
    """With 256 KB events, a 1 MB message arrives whole, in parts that AWS would not refuse."""
    with AwsFront(moto_server.url, max_event_bytes=LEGACY_EVENT_BYTES_LIMIT) as front:
        log = make_logging(front.url, max_event_bytes=LEGACY_EVENT_BYTES_LIMIT)
        text = "ü" * 500_000 + "x" * 10  # 1,000,010 bytes: over three 256 KB events
        log.logger.info(text)
        log.flush()
        raw = received(moto_server, log)
        refused = front.refused
    figures = f"events={len(raw)} refused={refused}"
    print(f"measured: {figures}")
    assert join_parts(raw) == [text], figures
    assert len(raw) == 4, figures
    assert refused == [], figures


DEAD_ENDPOINT_SCRIPT = """
    import logging, sys, time
    from aws_cloudwatch_logs_handler import CloudWatchLogsHandler

    url, group, timeout_s, count = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    handler = CloudWatchLogsHandler(
        group, endpoint_url=url, region="us-east-1", shutdown_timeout_s=timeout_s,
        flush_interval_s=0.1,
    )
    log = logging.getLogger("dead-endpoint")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    for i in range(count):
        log.info("record %d", i)
    print(time.monotonic(), flush=True)  # main is done: from here on the exit is the handler's
"""


def run_until_exit(script: Path, url: str, timeout_s: float, count: int) -> tuple[float, str]:
    """Run the dead-endpoint script; return how long its exit took after main, and its stderr."""
    started = time.monotonic()
    group = f"/dead/{uuid.uuid4().hex}"
    done = subprocess.run(
        [sys.executable, str(script), url, group, str(timeout_s), str(count)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    ended = time.monotonic()
    assert done.returncode == 0, f"rc={done.returncode} stderr={done.stderr[-600:]!r}"
    main_done = float(done.stdout.strip())
    assert started < main_done < ended, (started, main_done, ended)
    return ended - main_done, done.stderr


@pytest.mark.parametrize("death", ["refused", "blackholed"])
def test_exit_with_a_dead_endpoint_is_bounded_and_reported(
    death: str, tmp_path: Path, moto_server: MotoEndpoint
) -> None:
    """A process whose endpoint is dead exits within shutdown_timeout_s and reports the count."""
    script = tmp_path / "dead_endpoint.py"
    script.write_text(textwrap.dedent(DEAD_ENDPOINT_SCRIPT))
    timeout_s, count = 2.0, 500
    if death == "refused":
        # A bound socket that never listens: its port refuses connections, nobody else takes it.
        with socket.socket() as placeholder:
            placeholder.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{placeholder.getsockname()[1]}"
            exit_s, stderr = run_until_exit(script, url, timeout_s, count)
    else:
        # Accepts connections and never answers: the sender sits in a read, not a quick refusal.
        with fault_proxy(moto_server.url) as proxy:
            proxy.blackhole()
            exit_s, stderr = run_until_exit(script, proxy.url, timeout_s, count)
    figures = (
        f"{death}: exit took {exit_s:.2f} s after main returned "
        f"(shutdown_timeout_s={timeout_s}), stderr={stderr[-600:]!r}"
    )
    print(f"measured: {figures}")
    # Bounded, not waiting out the blackhole's 10 s read timeout; the slack is for interpreter
    # teardown on a loaded 2-core machine.
    assert exit_s < timeout_s + 5.0, figures
    assert re.search(rf"\b{count} event", stderr), figures


def test_throttled_create_calls_are_retried(harness: Harness, make_logging: MakeLogging) -> None:
    """Throttled CreateLogGroup/CreateLogStream/PutRetentionPolicy are retried; nothing is lost."""
    harness.front.inject(
        "service_unavailable",
        runs=(4, 1),
        operations=("CreateLogStream", "CreateLogGroup", "PutRetentionPolicy"),
        limit=8,
    )
    log = make_logging(harness.url, ttl=30)
    log.log(2000, "set-up-faulted")
    log.flush()
    tally = Tally.of(log.sent, received(harness.moto, log))
    groups = harness.moto.logs_client().describe_log_groups(logGroupNamePrefix=log.group)
    figures = f"{tally}; faults={harness.front.faults}; calls={harness.front.calls}"
    print(f"measured: {figures}")
    assert tally.perfect, figures
    assert [g.get("retentionInDays") for g in groups["logGroups"]] == [30], figures
    assert sum(harness.front.faults.values()) == 8, figures


def test_retention_is_set_even_if_its_first_call_fails(
    harness: Harness, make_logging: MakeLogging
) -> None:
    """A group the handler created gets its ttl even when PutRetentionPolicy first fails."""
    # Three failures in a row outlast botocore's own attempts, so the handler has to retry.
    harness.front.inject(
        "service_unavailable", every=1, operations=("PutRetentionPolicy",), limit=3
    )
    log = make_logging(harness.url, ttl=30)
    log.log(100, "retention")
    log.flush()
    tally = Tally.of(log.sent, received(harness.moto, log))
    groups = harness.moto.logs_client().describe_log_groups(logGroupNamePrefix=log.group)
    retention = [g.get("retentionInDays") for g in groups["logGroups"]]
    figures = (
        f"{tally}; retention={retention}; faults={harness.front.faults}; "
        f"calls={harness.front.calls}; retries={log.handler.stats().retries}"
    )
    print(f"measured: {figures}")
    assert tally.perfect, figures
    assert retention == [30], f"the group was left without its ttl: {figures}"


def test_logging_threads_during_a_cut_lose_nothing(
    harness: Harness, make_logging: MakeLogging
) -> None:
    """Four threads logging through a cut lose nothing and each thread's records stay in order."""
    log = make_logging(harness.url)
    log.log(10, "warm-up")
    log.flush()
    per_thread: dict[int, list[str]] = {n: [] for n in range(4)}

    def worker(n: int) -> None:
        for i in range(1500):
            message = f"thread{n}-{i:05d}"
            log.logger.info(message)
            per_thread[n].append(message)
            if i % 100 == 0:
                time.sleep(0.05)  # spread the records over the cut

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    harness.proxy.cut()
    for thread in threads:
        thread.start()
    time.sleep(CUT_S)  # keep the cut open while the threads log
    harness.proxy.restore()
    for thread in threads:
        thread.join(FLUSH_TIMEOUT_S)
    log.flush()
    got = [m for m in received(harness.moto, log) if m.startswith("thread")]
    sent = [m for n in range(4) for m in per_thread[n]]
    tally = Tally.of(sent, got)
    order = {n: [m for m in got if m.startswith(f"thread{n}-")] == per_thread[n] for n in range(4)}
    figures = f"{tally}; per-thread order kept={order}"
    print(f"measured: {figures}")
    assert tally.lost == tally.duplicated == tally.unexpected == 0, figures
    assert all(order.values()), figures


def test_a_refused_batch_is_split_and_only_the_bad_event_dropped(
    moto_server: MotoEndpoint, make_logging: MakeLogging
) -> None:
    """An InvalidParameterException is never resent as is: the batch is halved, the rest delivered.

    The front enforces the old 256 KB event limit while the handler allows 1 MB, so one 500 KB
    event makes AWS (the front) refuse whatever batch carries it.
    """
    with AwsFront(moto_server.url, max_event_bytes=LEGACY_EVENT_BYTES_LIMIT) as front:
        log = make_logging(front.url, flush_interval_s=5.0)
        log.log(20, "before")
        log.logger.info("b" * 500_000)
        log.log(20, "after")
        log.flush()
        got = received(moto_server, log)
        refusals = front.refused
        stats = log.handler.stats()
    tally = Tally.of(log.sent, got)
    figures = f"{tally}; refusals={len(refusals)}; dropped={dict(stats.dropped)}"
    print(f"measured: {figures}")
    assert tally.perfect, figures
    assert dict(stats.dropped) == {"invalid": 1}, figures
    # Halving 41 events down to the bad one takes about log2(41) refusals, never a repeat loop.
    assert 1 <= len(refusals) <= 7, figures
    assert all(r.reason == "event_bytes" for r in refusals), figures
    assert any("refused" in p for p in log.problems), log.problems
