"""End to end over HTTP against a moto server: the article's app, exit without close, spool."""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from handler_factory import HandlerFactory, unique_group
from spool_files import dead_journal, open_files_under

from aws_cloudwatch_logs_handler import CloudWatchLogsHandler
from local_aws.moto_endpoint import MotoEndpoint, empty_while_missing, fake_aws_environment

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "app.py"
DATED_UUID = re.compile(r"stream/\d{4}/\d{2}/\d{2}/\d{4}/[0-9a-f-]{36}")
DEAD_ENDPOINT = "http://127.0.0.1:9"


def run_python(
    code: str, endpoint_url: str, *, timeout_s: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter whose boto3 points at ``endpoint_url``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(fake_aws_environment(endpoint_url), **env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def test_the_articles_app_runs_unchanged_and_its_six_records_arrive(
    moto_server: MotoEndpoint,
) -> None:
    """examples/app.py, verbatim from the article, delivers its six records with ttl=1."""
    group = "/custom/application-logs"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(fake_aws_environment(moto_server.url))
    done = subprocess.run(
        [sys.executable, str(APP)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [stream] = [s for s in moto_server.streams(group) if DATED_UUID.fullmatch(s)]
    messages = moto_server.messages(group, stream)
    levels = [m.split("|")[3].strip() for m in messages]
    assert levels == ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "ERROR"]
    assert messages[0].endswith("| Debug message.")
    assert messages[5].startswith(messages[5].split("|")[0]) and "Exception message." in messages[5]
    client = moto_server.logs_client()
    [info] = client.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert info["retentionInDays"] == 1
    assert done.stderr == ""


def test_exit_without_close_delivers_everything(moto_server: MotoEndpoint) -> None:
    """A script that logs 5,000 records and just ends has them all delivered at exit."""
    group = unique_group()
    done = run_python(
        f"""
        import logging
        from aws_cloudwatch_logs_handler import CloudWatchLogsHandler
        handler = CloudWatchLogsHandler({group!r}, log_stream="exit")
        logger = logging.getLogger("app")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        for i in range(5000):
            logger.info("record %d", i)
        """,
        moto_server.url,
    )
    assert done.returncode == 0, done.stderr
    assert moto_server.messages(group, "exit") == [f"record {i}" for i in range(5000)]


def test_root_logger_at_debug_neither_recurses_nor_hangs(moto_server: MotoEndpoint) -> None:
    """With the handler on the root logger at DEBUG, botocore's own records stay out."""
    group = unique_group()
    done = run_python(
        f"""
        import logging
        from aws_cloudwatch_logs_handler import CloudWatchLogsHandler
        logging.basicConfig(level=logging.DEBUG)
        handler = CloudWatchLogsHandler({group!r}, log_stream="root")
        logging.getLogger().addHandler(handler)
        for i in range(100):
            logging.getLogger("app").debug("app %d", i)
        assert handler.flush(timeout_s=20)
        logging.getLogger("app").debug("after flush")
        handler.close()
        print(handler.stats().records_excluded)
        """,
        moto_server.url,
        timeout_s=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert moto_server.messages(group, "root") == [f"app {i}" for i in range(100)] + ["after flush"]
    assert "botocore" in done.stderr  # the SDK did log, to basicConfig's stderr handler only


def test_endpoint_from_the_service_specific_variable(moto_server: MotoEndpoint) -> None:
    """AWS_ENDPOINT_URL_CLOUDWATCH_LOGS from boto3's default chain is honoured."""
    group = unique_group()
    done = run_python(
        f"""
        import logging
        from aws_cloudwatch_logs_handler import CloudWatchLogsHandler
        handler = CloudWatchLogsHandler({group!r}, log_stream="env")
        logging.getLogger("x").addHandler(handler)
        logging.getLogger("x").warning("via env")
        """,
        DEAD_ENDPOINT,  # the generic variable points nowhere; the specific one wins
        AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=moto_server.url,
    )
    assert done.returncode == 0, done.stderr
    assert moto_server.messages(group, "env") == ["via env"]


def test_a_sigkilled_process_loses_nothing_it_spooled(
    moto_server: MotoEndpoint, make_handler: HandlerFactory, tmp_path: Path
) -> None:
    """Records spooled by a process killed with SIGKILL are delivered by the next handler."""
    group = unique_group()
    spool = tmp_path / "spool"
    code = f"""
        import logging, sys
        from aws_cloudwatch_logs_handler import CloudWatchLogsHandler
        handler = CloudWatchLogsHandler({group!r}, log_stream="spooled", spool_dir={str(spool)!r})
        logger = logging.getLogger("app")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        for i in range(3000):
            logger.info("spooled %d", i)
        print("logged", flush=True)
        sys.stdin.read()
        """
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(fake_aws_environment(DEAD_ENDPOINT))
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "logged"
        finally:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    assert (
        moto_server.logs_client().describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
    )
    handler = make_handler(group, endpoint_url=moto_server.url, spool_dir=spool)
    assert handler.flush(timeout_s=30)
    assert moto_server.messages(group, "spooled") == [f"spooled {i}" for i in range(3000)]
    assert handler.stats().dropped_total == 0
    from aws_cloudwatch_logs_handler._spool import read_frames

    journals = list(spool.glob("*.journal"))
    assert [read_frames(p.read_bytes()) for p in journals] == [([], 0)]  # only ours, emptied


def frames_of(stream: str, count: int) -> list[bytes]:
    """``count`` journal frames for ``stream``: messages "frame 0", "frame 1", ..., timed now."""
    from aws_cloudwatch_logs_handler._events import Event
    from aws_cloudwatch_logs_handler._spool import encode_frame

    now = int(time.time() * 1000)
    return [encode_frame(stream, Event(now + i, f"frame {i}", 33)) for i in range(count)]


@pytest.mark.parametrize("moment", ["before", "after"])
def test_handlers_starting_together_replay_a_dead_process_journal_once(
    moto_server: MotoEndpoint,
    make_handler: HandlerFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    moment: str,
) -> None:
    """Two processes opening one spool at once (a server's workers, started after one of them
    was killed) find the same dead process's journal. Here the second handler starts while the
    first reads that journal, just ``before`` or ``after`` (journals are locked per open file,
    so two handlers in one process exclude each other as two processes do): each record is
    delivered once, and neither constructor raises. Before the first held the journal locked
    until it had deleted it, the second replayed it too (``after``: every record twice), or
    raised from its constructor when the journal vanished as it read it (``before``)."""
    from aws_cloudwatch_logs_handler._spool import Frame, Spool

    group = unique_group()
    dead_journal(tmp_path, group, b"".join(frames_of("orphan", 3)))
    read_orphan = Spool._read_orphan
    others: list[CloudWatchLogsHandler] = []
    started = False  # set before the other's own replay, which comes back here without the fix

    def start_another_once(now: str) -> None:
        nonlocal started
        if now == moment and not started:
            started = True
            others.append(make_handler(group, endpoint_url=moto_server.url, spool_dir=tmp_path))

    def another_starts_meanwhile(spool: Spool, journal: Path) -> tuple[list[Frame], int]:
        start_another_once("before")
        read = read_orphan(spool, journal)
        start_another_once("after")
        return read

    monkeypatch.setattr(Spool, "_read_orphan", another_starts_meanwhile)
    first = make_handler(group, endpoint_url=moto_server.url, spool_dir=tmp_path)
    assert len(others) == 1
    assert first.flush(timeout_s=30) and others[0].flush(timeout_s=30)
    assert moto_server.messages(group, "orphan") == ["frame 0", "frame 1", "frame 2"]
    assert first.stats().dropped_total == others[0].stats().dropped_total == 0


def test_a_journal_that_cannot_be_read_is_kept_and_reported_not_raised(
    moto_server: MotoEndpoint,
    make_handler: HandlerFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A dead process's journal that fails to read (an I/O error) does not stop the handler from
    being made: the failure is reported on the side channel, the journal stays for the next
    start, which replays it, and the handler's own records are delivered meanwhile."""
    from aws_cloudwatch_logs_handler import _spool

    group = unique_group()
    journal = dead_journal(tmp_path, group, b"".join(frames_of("orphan", 1)))
    read_file = _spool._read_file

    def failing_for_journals(path: Path) -> bytes:
        if path.suffix == ".journal":
            raise OSError(errno.EIO, "Input/output error", str(path))
        return read_file(path)

    monkeypatch.setattr(_spool, "_read_file", failing_for_journals)
    problems: list[str] = []
    handler = make_handler(
        group,
        log_stream="own",
        endpoint_url=moto_server.url,
        spool_dir=tmp_path,
        on_problem=problems.append,
    )
    make_handler.logger(handler).info("own record")
    assert handler.flush(timeout_s=30)
    assert moto_server.messages(group, "own") == ["own record"]
    assert journal.exists()
    assert len(problems) == 1 and "Input/output error" in problems[0], problems
    monkeypatch.setattr(_spool, "_read_file", read_file)
    assert make_handler(group, endpoint_url=moto_server.url, spool_dir=tmp_path).flush(timeout_s=30)
    assert moto_server.messages(group, "orphan") == ["frame 0"]


def test_a_dead_process_journal_is_sent_at_once_not_a_flush_interval_later(
    moto_server: MotoEndpoint, make_handler: HandlerFactory, tmp_path: Path
) -> None:
    """What a restarted process replays has waited already: it goes out at once, without a
    flush, though the flush interval is 10 minutes; the process's own new records still wait
    for theirs. Before, a process stopped soon after its start (a deploy, a crash loop) spent
    its time at exit on the replay, or, out of time, carried it on to the next start."""
    group = unique_group()
    dead_journal(tmp_path, group, b"".join(frames_of("orphan", 3)))
    handler = make_handler(
        group,
        log_stream="own",
        endpoint_url=moto_server.url,
        spool_dir=tmp_path,
        flush_interval_s=600,
    )
    make_handler.logger(handler).info("own record")
    started = time.monotonic()
    none_yet: list[str] = []
    while len(empty_while_missing(lambda: moto_server.messages(group, "orphan"), none_yet)) < 3:
        assert time.monotonic() - started < 30, "the replayed records were not sent at once"
        time.sleep(0.05)  # polling the endpoint: what is tested is that no flush is needed
    assert moto_server.messages(group, "orphan") == ["frame 0", "frame 1", "frame 2"]
    assert handler.stats().events_queued == 1  # "own record", waiting for its interval
    assert handler.flush(timeout_s=30)
    assert moto_server.messages(group, "own") == ["own record"]


def test_a_torn_journal_tail_is_skipped_and_counted(
    moto_server: MotoEndpoint, make_handler: HandlerFactory, tmp_path: Path
) -> None:
    """A journal cut mid-frame delivers every whole frame and counts the torn one."""
    group = unique_group()
    frames = frames_of("torn", 3)
    dead_journal(tmp_path, group, b"".join(frames) + frames[0][:-3])
    handler = make_handler(group, endpoint_url=moto_server.url, spool_dir=tmp_path)
    assert handler.flush(timeout_s=30)
    assert moto_server.messages(group, "torn") == ["frame 0", "frame 1", "frame 2"]
    assert handler.stats().dropped == {"spool_corrupt": 1}


def test_a_corrupt_frame_in_the_middle_does_not_hide_the_rest(
    moto_server: MotoEndpoint, make_handler: HandlerFactory, tmp_path: Path
) -> None:
    """A frame with a bad checksum is skipped; the frames after it are still delivered."""
    group = unique_group()
    frames = frames_of("mid", 3)
    broken = bytearray(frames[1])
    broken[-1] ^= 0xFF
    dead_journal(tmp_path, group, frames[0] + bytes(broken) + frames[2])
    handler = make_handler(group, endpoint_url=moto_server.url, spool_dir=tmp_path)
    assert handler.flush(timeout_s=30)
    assert moto_server.messages(group, "mid") == ["frame 0", "frame 2"]
    assert handler.stats().dropped == {"spool_corrupt": 1}


def test_logging_configured_again_and_again_with_a_spool_leaves_no_file_behind(
    moto_server: MotoEndpoint, tmp_path: Path
) -> None:
    """A service that reloads its logging configuration (``dictConfig``) with a spooling handler,
    twenty times: each reload closes the handler before. Every record arrives, and once the last
    handler is closed no file under the spool is open, mapped or left. Before, each closed
    handler kept its journal (three descriptors, a mapping, two files reserved 3 MiB ahead)
    until the process ended: 60 open descriptors, 20 mappings and 40 files here."""
    group = unique_group()
    spool = tmp_path / "spool"
    done = run_python(
        f"""
        import logging, logging.config, os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from spool_files import open_files_under
        spool = {str(spool)!r}

        def config(i):
            return {{
                "version": 1,
                "disable_existing_loggers": False,
                "handlers": {{"cloudwatch": {{
                    "class": "aws_cloudwatch_logs_handler.CloudWatchLogsHandler",
                    "log_group": {group!r},
                    "log_stream": f"reload-{{i}}",
                    "spool_dir": spool,
                }}}},
                "root": {{"handlers": ["cloudwatch"], "level": "INFO"}},
            }}

        handlers = []
        for i in range(20):
            logging.config.dictConfig(config(i))
            handlers.append(logging.getLogger().handlers[0])
            logging.getLogger("app").info("record %d", i)
        assert all(handler.flush(timeout_s=30) for handler in handlers)
        last = handlers[-1]
        logging.getLogger().removeHandler(last)
        last.close()
        mapped = [line for line in open("/proc/self/maps") if spool in line]
        print(len(open_files_under(spool)), len(mapped), len(os.listdir(spool)))
        print(sum(handler.stats().dropped_total for handler in handlers))
        """,
        moto_server.url,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "0", "0", "0"], done.stdout
    for i in range(20):
        assert moto_server.messages(group, f"reload-{i}") == [f"record {i}"]


def test_a_record_logged_to_a_closed_spooling_handler_opens_a_new_journal_and_arrives(
    moto_server: MotoEndpoint, make_handler: HandlerFactory, tmp_path: Path
) -> None:
    """close() lets go of the spool's journal: once it returns, no file under the spool is open
    or left. A record that reaches the handler after (a logging call that raced with the close)
    is journaled in a new file and delivered, and the closed handler lets go of that one too
    once it is delivered (the sender forgets its queues again)."""
    from aws_cloudwatch_logs_handler._sender import SENDER

    group = unique_group()
    handler = make_handler(
        group, log_stream="late", endpoint_url=moto_server.url, spool_dir=tmp_path
    )
    logger = make_handler.logger(handler)
    logger.info("before close")
    handler.close()
    assert open_files_under(tmp_path) == []
    assert list(tmp_path.iterdir()) == []
    logger.info("after close")
    assert [path.suffix for path in sorted(tmp_path.iterdir())] == [".ack", ".journal"]
    assert handler.flush(timeout_s=30)
    assert moto_server.messages(group, "late") == ["before close", "after close"]
    assert handler.stats().dropped_total == 0
    SENDER.close(handler._queues, wait_s=30)  # what close() waits for, had it not returned already
    assert open_files_under(tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_forked_children_that_close_a_spooling_handler_leave_their_parents_journal(
    moto_server: MotoEndpoint, tmp_path: Path
) -> None:
    """Children forked from a spooling process (a pre-forking server's workers) close the
    handler they inherited: one that logged deletes the journal it made for itself, and one
    that logged nothing there (its sender ran for another handler) deletes nothing. Neither
    touches the parent's journal, which the parent goes on journaling into (its crash
    guarantee depends on it). Every record arrives."""
    group = unique_group()
    spool = tmp_path / "spool"
    done = run_python(
        f"""
        import logging, os
        from aws_cloudwatch_logs_handler import CloudWatchLogsHandler
        spool = {str(spool)!r}
        handler = CloudWatchLogsHandler({group!r}, log_stream="forked", spool_dir=spool)
        logger = logging.getLogger("app")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.info("parent before the forks")
        assert handler.flush(timeout_s=30)

        def child_closes(record):
            child = os.fork()
            if child == 0:
                if record:
                    logger.info(record)
                else:  # the child's sender runs for another handler only
                    other = CloudWatchLogsHandler({group!r}, log_stream="other")
                    other_logger = logging.getLogger("other")
                    other_logger.addHandler(other)
                    other_logger.warning("other")
                    assert other.flush(timeout_s=30)
                ours = [name for name in os.listdir(spool) if f".{{os.getpid()}}." in name]
                handler.close()
                left = [name for name in os.listdir(spool) if name in ours]
                os._exit(0 if len(ours) == (2 if record else 0) and not left else 1)
            _, status = os.waitpid(child, 0)
            return os.waitstatus_to_exitcode(status)

        print(child_closes(None), child_closes("child"))
        print(sorted(name.split(".")[1] == str(os.getpid()) for name in os.listdir(spool)))
        logger.info("parent after the forks")
        assert handler.flush(timeout_s=30)
        """,
        moto_server.url,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["0 0", "[True, True]"], done.stdout
    assert sorted(moto_server.messages(group, "forked")) == [
        "child",
        "parent after the forks",
        "parent before the forks",
    ]
    assert moto_server.messages(group, "other") == ["other"]


@pytest.mark.parametrize("endpoint", ["live", "dead"])
def test_a_clean_exit_leaves_no_journal_unless_records_wait_in_it(
    moto_server: MotoEndpoint, tmp_path: Path, endpoint: str
) -> None:
    """A script that logs with a spool and ends without closing its handler: once its records
    are delivered at exit, it leaves no file in the spool for the next start to delete (before:
    an emptied journal with 3 MiB reserved, and its .ack). Records it could not deliver (the
    endpoint down) stay in its journal, and the next start delivers them."""
    group = unique_group()
    spool = tmp_path / "spool"
    done = run_python(
        f"""
        import logging
        from aws_cloudwatch_logs_handler import CloudWatchLogsHandler
        handler = CloudWatchLogsHandler(
            {group!r}, log_stream="exit", spool_dir={str(spool)!r}, shutdown_timeout_s=2
        )
        logger = logging.getLogger("app")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        for i in range(500):
            logger.info("record %d", i)
        """,
        moto_server.url if endpoint == "live" else DEAD_ENDPOINT,
    )
    assert done.returncode == 0, done.stderr
    records = [f"record {i}" for i in range(500)]
    if endpoint == "live":
        assert sorted(path.name for path in spool.iterdir()) == []
        assert moto_server.messages(group, "exit") == records
        return
    assert sorted(path.suffix for path in spool.iterdir()) == [".ack", ".journal"]
    done = run_python(
        f"""
        from aws_cloudwatch_logs_handler import CloudWatchLogsHandler
        assert CloudWatchLogsHandler({group!r}, spool_dir={str(spool)!r}).flush(timeout_s=30)
        """,
        moto_server.url,
    )
    assert done.returncode == 0, done.stderr
    assert moto_server.messages(group, "exit") == records
    assert sorted(path.name for path in spool.iterdir()) == []
