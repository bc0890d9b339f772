"""The handler against in-process moto: set-up, delivery, flush, close, isolation from callers."""

from __future__ import annotations

import errno
import gc
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from handler_factory import HandlerFactory, unique_group
from moto import mock_aws

from aws_cloudwatch_logs_handler import CloudWatchLogsHandler, ConfigurationError
from aws_cloudwatch_logs_handler._queues import MEMORY_OVERHEAD_PER_EVENT, HandlerQueues


@pytest.fixture
def aws() -> Iterator[None]:
    """In-process moto for the whole test: the sender's client is mocked too."""
    with mock_aws():
        yield


def recording_client() -> tuple[Any, list[str]]:
    """A logs client that records the name of every operation it calls."""
    client = boto3.session.Session(region_name="us-east-1").client("logs")
    calls: list[str] = []
    client.meta.events.register(
        "before-call.cloudwatch-logs.*", lambda model, **_: calls.append(model.name)
    )
    return client, calls


def events_of(group: str, stream: str) -> list[str]:
    client = boto3.session.Session(region_name="us-east-1").client("logs")
    response = client.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    return [event["message"] for event in response["events"]]


@pytest.mark.usefixtures("aws")
def test_records_arrive_in_order_with_their_own_timestamps(make_handler: HandlerFactory) -> None:
    """Every record arrives once, in order, stamped with the record's creation time."""
    handler = make_handler()
    logger = make_handler.logger(handler)
    before = int(time.time() * 1000)
    for i in range(500):
        logger.info("record %d", i)
    assert handler.flush(timeout_s=30)
    client = boto3.session.Session(region_name="us-east-1").client("logs")
    events = client.get_log_events(
        logGroupName=handler.log_group_name,
        logStreamName=handler.log_stream_name,
        startFromHead=True,
    )["events"]
    assert [e["message"] for e in events] == [f"record {i}" for i in range(500)]
    assert all(before - 5 <= e["timestamp"] <= int(time.time() * 1000) for e in events)
    stats = handler.stats()
    assert (stats.records_accepted, stats.events_delivered, stats.dropped_total) == (500, 500, 0)


@pytest.mark.usefixtures("aws")
def test_group_is_created_with_its_retention(make_handler: HandlerFactory) -> None:
    """A missing group is created by the sender, then given the handler's ttl."""
    handler = make_handler(ttl=14)
    make_handler.logger(handler).warning("hello")
    assert handler.flush(timeout_s=30)
    client = boto3.session.Session(region_name="us-east-1").client("logs")
    [group] = client.describe_log_groups(logGroupNamePrefix=handler.log_group_name)["logGroups"]
    assert group["retentionInDays"] == 14


@pytest.mark.usefixtures("aws")
def test_existing_group_is_written_without_create_log_group(make_handler: HandlerFactory) -> None:
    """When the group exists, the handler calls only CreateLogStream and PutLogEvents."""
    group = unique_group()
    boto3.session.Session(region_name="us-east-1").client("logs").create_log_group(
        logGroupName=group
    )
    client, calls = recording_client()
    handler = make_handler(group, client=client, ttl=7)
    make_handler.logger(handler).info("hello")
    assert handler.flush(timeout_s=30)
    assert calls == ["CreateLogStream", "PutLogEvents"]
    assert events_of(group, handler.log_stream_name) == ["hello"]


@pytest.mark.usefixtures("aws")
def test_construction_makes_no_call(make_handler: HandlerFactory) -> None:
    """__init__ talks to nobody: the group and stream are created lazily by the sender."""
    client, calls = recording_client()
    make_handler(client=client, ttl=1)
    assert calls == []


@pytest.mark.usefixtures("aws")
def test_existing_stream_is_reused(make_handler: HandlerFactory) -> None:
    """An explicit stream that already exists is written to (ResourceAlreadyExists is success)."""
    group = unique_group()
    client = boto3.session.Session(region_name="us-east-1").client("logs")
    client.create_log_group(logGroupName=group)
    client.create_log_stream(logGroupName=group, logStreamName="mine")
    handler = make_handler(group, log_stream="mine")
    make_handler.logger(handler).info("again")
    assert handler.flush(timeout_s=30)
    assert events_of(group, "mine") == ["again"]


@pytest.mark.usefixtures("aws")
def test_a_failing_format_is_still_delivered_and_never_raises(make_handler: HandlerFactory) -> None:
    """A record whose formatting raises arrives as a fallback text; the caller sees nothing."""

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no str")

        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    handler = make_handler()
    logger = make_handler.logger(handler)
    logger.info(Unprintable())
    logger.info("%d", "not a number")
    logger.info({"a": 1})
    assert handler.flush(timeout_s=30)
    messages = events_of(handler.log_group_name, handler.log_stream_name)
    assert len(messages) == 3
    assert "unformattable record" in messages[0] and "RuntimeError" in messages[0]
    assert "unformattable record" in messages[1] and "'%d'" in messages[1]
    assert messages[2] == "{'a': 1}"
    assert handler.stats().records_unformattable == 2


@pytest.mark.usefixtures("aws")
def test_sdk_loggers_and_the_sender_never_reenter_the_handler(
    make_handler: HandlerFactory,
) -> None:
    """On the root logger at DEBUG, botocore's records are not shipped and nothing recurses."""
    root = logging.getLogger()
    handler = make_handler()
    old_level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        logging.getLogger("app").debug("mine")
        logging.getLogger("botocore.endpoint").debug("sdk chatter from a user thread")
        assert handler.flush(timeout_s=30)
        logging.getLogger("app").debug("mine again")
        assert handler.flush(timeout_s=30)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert events_of(handler.log_group_name, handler.log_stream_name) == ["mine", "mine again"]
    assert handler.stats().records_excluded >= 1


def test_flush_with_a_timeout_returns_false_when_the_endpoint_is_down(
    make_handler: HandlerFactory,
) -> None:
    """flush(timeout_s) gives up on time and says so; the caller is never stuck."""
    handler = make_handler(
        endpoint_url="http://127.0.0.1:9", region="us-east-1", shutdown_timeout_s=0.2
    )
    make_handler.logger(handler).info("nowhere to go")
    started = time.monotonic()
    assert handler.flush(timeout_s=0.5) is False
    assert time.monotonic() - started < 3
    assert handler.stats().events_queued == 1


@pytest.mark.usefixtures("aws")
def test_every_aws_call_happens_on_the_sender_thread(make_handler: HandlerFactory) -> None:
    """The caller's thread never talks to AWS: emit only queues, the sender makes every call."""
    client = boto3.session.Session(region_name="us-east-1").client("logs")
    callers: set[int] = set()
    client.meta.events.register(
        "before-call.cloudwatch-logs.*", lambda **_: callers.add(threading.get_ident())
    )
    handler = make_handler(client=client)
    logger = make_handler.logger(handler)
    for i in range(1000):
        logger.info("queued %d", i)
    assert handler.flush(timeout_s=30)
    assert callers and threading.get_ident() not in callers
    assert len(callers) == 1
    assert handler.stats().events_delivered == 1000


@pytest.mark.usefixtures("aws")
def test_close_is_idempotent_and_late_records_still_arrive(make_handler: HandlerFactory) -> None:
    """close() twice is fine; a record that reaches a closed handler (a logging call racing with
    the reconfiguration that closed it) is still delivered, not dropped."""
    handler = make_handler()
    logger = make_handler.logger(handler)
    logger.info("before")
    handler.close()
    handler.close()
    logger.info("after")
    assert handler.flush(10.0)
    assert events_of(handler.log_group_name, handler.log_stream_name) == ["before", "after"]
    assert handler.stats().dropped == {}


@pytest.mark.usefixtures("aws")
def test_filters_added_to_the_handler_decide_what_is_shipped(make_handler: HandlerFactory) -> None:
    """A filter added with addFilter (an object or a callable) drops what it refuses; a filter
    that returns a record (Python 3.12+) ships that record instead."""

    class Redacting(logging.Filter):
        # typeshed says bool before Python 3.12, which added returning a record.
        def filter(self, record: logging.LogRecord) -> bool | logging.LogRecord:  # type: ignore[override]
            if sys.version_info < (3, 12):
                return True
            copy = logging.makeLogRecord(record.__dict__)
            copy.msg = record.getMessage().replace("hunter2", "***")
            copy.args = None
            return copy

    handler = make_handler()
    logger = make_handler.logger(handler)
    logger.info("before any filter")
    handler.addFilter(lambda record: "secret" not in record.getMessage())
    handler.addFilter(Redacting())
    logger.info("a secret")
    logger.info("password %s", "hunter2")
    assert handler.flush(10.0)
    password = "password ***" if sys.version_info >= (3, 12) else "password hunter2"
    assert events_of(handler.log_group_name, handler.log_stream_name) == [
        "before any filter",
        password,
    ]


@pytest.mark.usefixtures("aws")
def test_a_subclass_that_overrides_filter_is_asked(make_handler: HandlerFactory) -> None:
    """A subclass's own ``filter`` decides, with no filter added through addFilter."""

    class OnlyErrors(CloudWatchLogsHandler):
        def filter(self, record: logging.LogRecord) -> bool:
            return record.levelno >= logging.ERROR

    group = unique_group()
    handler = OnlyErrors(group, log_stream="only-errors")
    try:
        logger = make_handler.logger(handler)
        logger.info("not shipped")
        logger.error("shipped")
        assert handler.flush(10.0)
        assert events_of(group, "only-errors") == ["shipped"]
    finally:
        handler.close()


@pytest.mark.usefixtures("aws")
def test_the_formatter_formats_however_it_is_set_and_a_subclass_format_wins(
    make_handler: HandlerFactory,
) -> None:
    """The handler calls its formatter itself (not through `logging.Handler.format`): set by
    ``setFormatter``, by assigning the attribute, or unset (logging's default), it formats each
    record as logging would; a subclass that overrides ``format`` is still asked."""

    class Shouting(CloudWatchLogsHandler):
        def format(self, record: logging.LogRecord) -> str:
            return super().format(record).upper()

    group = unique_group()
    handler = make_handler(group, log_stream="plain")
    shouting = Shouting(group, log_stream="shouting")
    try:
        for each in (handler, shouting):
            logger = make_handler.logger(each)
            logger.info("default %s", "format")
            each.setFormatter(logging.Formatter("set: %(message)s"))
            logger.info("one")
            each.formatter = logging.Formatter("assigned: %(levelname)s %(message)s")
            logger.info("two")
            each.formatter = None
            logger.info("three")
            assert each.flush(10.0)
        expected = ["default format", "set: one", "assigned: INFO two", "three"]
        assert events_of(group, "plain") == expected
        assert events_of(group, "shouting") == [message.upper() for message in expected]
        assert handler.formatter is None
    finally:
        shouting.close()


@pytest.mark.usefixtures("aws")
def test_many_threads_log_without_loss(make_handler: HandlerFactory) -> None:
    """Eight threads logging at once lose nothing; each thread's records keep their order."""
    handler = make_handler()
    logger = make_handler.logger(handler)

    def work(n: int) -> None:
        for i in range(250):
            logger.info("t%d %d", n, i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert handler.flush(timeout_s=30)
    messages = events_of(handler.log_group_name, handler.log_stream_name)
    assert len(messages) == 2000
    for n in range(8):
        mine = [int(m.split()[1]) for m in messages if m.startswith(f"t{n} ")]
        assert mine == sorted(mine) and len(mine) == 250


@pytest.mark.parametrize(
    ("options", "fix"),
    [
        ({"client": object(), "region": "eu-west-1"}, "client= is a ready client"),
        ({"session": object(), "profile": "p"}, "session= carries"),
        ({"profile": "p", "access_key": "a", "secret_key": "s"}, "either profile="),
        ({"access_key": "a"}, "go together"),
        ({"flush_interval_s": 0}, "flush_interval_s"),
        ({"overflow": "spill"}, "overflow"),
        ({"max_event_bytes": 2_000_000}, "max_event_bytes"),
        ({"max_queue_bytes": 10}, "max_queue_bytes"),
        ({"oversize": "chop"}, "oversize"),
    ],
)
def test_bad_options_fail_at_construction_naming_the_fix(options: dict[str, Any], fix: str) -> None:
    """Conflicting credentials and invalid settings raise ConfigurationError at construction."""
    with pytest.raises(ConfigurationError, match=fix):
        CloudWatchLogsHandler("/app", **options)


@pytest.mark.usefixtures("aws")
def test_on_problem_receives_reports_instead_of_logging(make_handler: HandlerFactory) -> None:
    """Delivery problems go to the on_problem callback, not through logging."""
    problems: list[str] = []
    handler = make_handler(
        max_queue_bytes=1_048_576 + MEMORY_OVERHEAD_PER_EVENT, on_problem=problems.append
    )
    logger = make_handler.logger(handler)
    logger.info("x" * 1_000_000)
    logger.info("y" * 100_000)  # does not fit while the first waits
    assert handler.stats().dropped == {"queue_full": 1}
    assert any("queue" in p and "full" in p for p in problems)


def test_region_from_aws_region_alone(
    make_handler: HandlerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With only AWS_REGION set (as in Lambda and many containers) the handler still delivers."""
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    with mock_aws():
        handler = make_handler()
        make_handler.logger(handler).info("regional")
        assert handler.flush(timeout_s=30)
        client = boto3.session.Session(region_name="eu-west-1").client("logs")
        events = client.get_log_events(
            logGroupName=handler.log_group_name, logStreamName=handler.log_stream_name
        )["events"]
        assert [e["message"] for e in events] == ["regional"]


def test_block_waits_a_bounded_time_then_drops(make_handler: HandlerFactory) -> None:
    """overflow='block' waits at most block_timeout_s for room, then drops and counts."""
    handler = make_handler(
        endpoint_url="http://127.0.0.1:9",
        region="us-east-1",
        shutdown_timeout_s=0.2,
        overflow="block",
        block_timeout_s=0.3,
        max_queue_bytes=1_048_576 + MEMORY_OVERHEAD_PER_EVENT,
    )
    logger = make_handler.logger(handler)
    logger.info("x" * 1_000_000)
    started = time.monotonic()
    logger.info("y" * 100_000)
    waited = time.monotonic() - started
    assert 0.25 <= waited < 2.0
    assert handler.stats().dropped == {"queue_full": 1}


def test_the_level_defaults_to_lambdas_logging_controls(
    make_handler: HandlerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With AWS_LAMBDA_LOG_LEVEL set, the handler's level is that level unless one is passed."""
    monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", "WARN")
    assert make_handler().level == logging.WARNING
    assert make_handler(level=logging.NOTSET).level == logging.NOTSET
    monkeypatch.delenv("AWS_LAMBDA_LOG_LEVEL")
    assert make_handler().level == logging.NOTSET


@pytest.mark.usefixtures("aws")
def test_a_handler_dropped_without_close_delivers_and_is_forgotten() -> None:
    """A handler made for one job and dropped without close(): what it queued still arrives, and
    the process's sender lets go of it (its queues and client) instead of keeping it for good."""
    from aws_cloudwatch_logs_handler._sender import SENDER

    group, stream = unique_group(), "one-job"

    def one_job() -> HandlerQueues:
        handler = CloudWatchLogsHandler(group, log_stream=stream)
        logger = logging.getLogger(f"job.{group}")
        logger.propagate = False
        logger.addHandler(handler)
        logger.warning("done")
        logger.removeHandler(handler)
        queues: HandlerQueues = handler._queues
        return queues

    queues = one_job()
    gc.collect()
    assert queues.closed  # the collected handler closed itself
    assert SENDER.flush(queues, timeout_s=30)
    assert events_of(group, stream) == ["done"]
    run_the_sender_loop_once()  # where it forgets closed handlers with nothing pending
    assert queues not in SENDER._handlers


_COLLECTED_UNDER_THE_LOCK = """
import gc
from aws_cloudwatch_logs_handler import CloudWatchLogsHandler
from aws_cloudwatch_logs_handler._sender import SENDER

handler = CloudWatchLogsHandler("/test/collected", log_stream="dropped")
queues = handler._queues
with SENDER._lock:  # as the sender holds it while it works on the queues
    del handler
    gc.collect()
print("closed" if queues.closed else "still open")
"""


def test_a_handler_collected_while_the_senders_lock_is_held_does_not_deadlock() -> None:
    """A garbage collection runs at any allocation: on the sender's thread while it holds its
    lock (which does not nest), or in a child forked below Python that inherited it held. A
    handler collected then must not wait for that lock (in a process of its own: a deadlock
    here would otherwise stop every later test)."""
    done = subprocess.run(
        [sys.executable, "-c", _COLLECTED_UNDER_THE_LOCK],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "closed"), done.stderr


def run_the_sender_loop_once() -> None:
    """Send a record through a handler of its own, and wait for it."""
    handler = CloudWatchLogsHandler(unique_group(), log_stream="wake")
    try:
        handler.handle(logging.makeLogRecord({"msg": "wake the sender"}))
        assert handler.flush(timeout_s=30)
    finally:
        handler.close()


@pytest.mark.usefixtures("aws")
def test_the_sender_tidies_the_spool_after_settling_without_its_lock(
    make_handler: HandlerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spool's file work after a delivery (deleting journals it moved away from) runs on
    the sender once it has let go of its lock, so no logging call waits for the file system."""
    from aws_cloudwatch_logs_handler._sender import SENDER
    from aws_cloudwatch_logs_handler._spool import Spool

    tidied_with_the_lock_free: list[bool] = []
    tidied = threading.Event()

    def tidy(self: Spool) -> None:
        # Called under the lock (on this same thread), this would wait the whole timeout; a
        # logging call that holds it for a moment only delays it.
        free = SENDER._lock.acquire(timeout=5)
        if free:
            SENDER._lock.release()
        tidied_with_the_lock_free.append(free)
        tidied.set()

    monkeypatch.setattr(Spool, "tidy", tidy)
    handler = make_handler(spool_dir=str(tmp_path))
    make_handler.logger(handler).info("journaled, delivered, then tidied")
    assert handler.flush(timeout_s=30)
    # The tidying comes after the settling that lets flush() return: wait for it, boundedly.
    assert tidied.wait(timeout=30)
    assert all(tidied_with_the_lock_free)


@pytest.mark.usefixtures("aws")
def test_a_journal_that_cannot_grow_costs_no_record_and_says_so(
    make_handler: HandlerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk when the journal must grow (here at once: it has no room yet), on the
    logging call's own path: no call raises, every record is still queued in memory and
    delivered, and the side channel says they could not be journaled (a crash would lose
    them)."""
    from aws_cloudwatch_logs_handler import _journal_file

    def no_space(fd: int, offset: int, length: int, *, in_one_call: bool) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_journal_file, "_reserve", no_space)
    problems: list[str] = []
    handler = make_handler(spool_dir=str(tmp_path), on_problem=problems.append)
    logger = make_handler.logger(handler)
    for number in range(3):
        logger.info("record %d", number)
    assert handler.flush(timeout_s=30)
    delivered = events_of(handler.log_group_name, handler.log_stream_name)
    assert delivered == [f"record {number}" for number in range(3)]
    assert problems and all("could not journal" in problem for problem in problems)
    assert "No space left on device" in problems[0]
    stats = handler.stats()
    assert (stats.records_accepted, stats.events_delivered, stats.dropped_total) == (3, 3, 0)
