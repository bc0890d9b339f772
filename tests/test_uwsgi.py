"""Under real uWSGI (2.0.31, built from PyPI), workers forked below Python deliver every record.

uWSGI loads the application in its master (unless ``--lazy-apps``) and forks workers from C; our
sender notices the new process on a worker's first logging call (or flush, stats, exit). The
application logs while it loads, so the workers start with the master's records queued (again for
each worker recycled by ``--max-requests``): no sender runs in the master, and exactly one worker
sends them (`_handover`). The server is stopped with SIGTERM and ``--die-on-term``, as a container
runtime stops it.

Without ``--master`` the process that loads the application becomes worker 1 and forks worker 2
holding the GIL (uWSGI lets it go before a fork only in a master), so its sender runs from the
start and worker 2 forgets what it inherited; both stop on their own SIGTERM, as systemd signals
every process of a unit.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trustme
from fault_proxy import FaultProxy
from moto.logs import models
from test_gunicorn import (
    LOADING_RECORDS,
    START_LIMIT_S,
    app_environment,
    assert_loading_records_arrived_once,
    delivered_ids,
    free_port,
    get,
    loading_records,
    not_exactly_once,
    wait_until_serving,
)

from aws_cloudwatch_logs_handler._lifecycle import warn_if_threads_cannot_run
from aws_cloudwatch_logs_handler._reporting import PREFIX
from local_aws.moto_endpoint import MotoEndpoint, empty_while_missing

APPS = Path(__file__).resolve().parent / "apps"
ROOT = Path(__file__).resolve().parent.parent
UWSGI = shutil.which("uwsgi", path=str(Path(sys.executable).parent))
REQUESTS = 200
needs_uwsgi = pytest.mark.skipif(
    UWSGI is None, reason="uwsgi is not installed (pip install --group servers)"
)


@pytest.mark.slow
@needs_uwsgi
@pytest.mark.parametrize(
    "options",
    [
        pytest.param(["--master"], id="default"),
        pytest.param(["--master", "--enable-threads"], id="enable-threads"),
        # A worker forked anew every 3 requests: about 130 forks of the master in one run.
        pytest.param(["--master", "--enable-threads", "--max-requests", "3"], id="max-requests"),
        # uWSGI taking the GIL and running Python's fork hooks around each fork.
        pytest.param(
            ["--master", "--py-call-uwsgi-fork-hooks", "--max-requests", "3"], id="fork-hooks"
        ),
        # The application loaded in each worker.
        pytest.param(["--master", "--lazy-apps", "--max-requests", "3"], id="lazy-apps"),
        # No master: the process that loads the application becomes worker 1 and forks worker 2.
        pytest.param(["--enable-threads"], id="no-master"),
    ],
)
def test_uwsgi_workers_deliver_every_request(
    moto_server: MotoEndpoint, options: list[str], puts_received: list[tuple[str, str]]
) -> None:
    """200 requests over two pre-forked uWSGI workers, then SIGTERM: the server stops (no worker
    hangs), every request's record arrives once, and the handler reports nothing (no warning
    about threads, which uWSGI runs here). With the application in the master, the records the
    master logged while loading it arrive exactly once, though every worker inherits them
    (about 130 workers with --max-requests 3); with --lazy-apps, every worker's records logged
    while loading arrive exactly once."""
    group = f"/uwsgi/{uuid.uuid4().hex[:12]}"
    answered, errors, _ = _serve(app_environment(moto_server, group), options)
    loaded = _assert_every_record_arrived_once(
        moto_server, group, answered, errors, options, puts_received=puts_received
    )
    if "--lazy-apps" not in options:
        assert len(loaded) == 1, f"records logged while loading came from {len(loaded)} processes"
    assert _reports(errors) == []


@pytest.mark.slow
@needs_uwsgi
def test_workers_creating_their_shared_stream_at_once_lose_nothing(
    moto_server: MotoEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both workers send to the stream their master named, and both create it (and the group)
    with their first batch, 2 s after their first requests. Here moto's thread is held in the
    middle of each creation (0.2 s, and 0.5 s more for a second creation of one name), as a
    preempted thread would be: every record still arrives once. One CI run lost one worker's 99
    records without a word: moto, unguarded, stored the second worker's stream over the first,
    with the first worker's batch in it. Without `local_aws.atomic_logs` this test fails in every
    run tried (5 of 5: 55 to 116 of the 200 records delivered)."""
    builds: Counter[tuple[type, str]] = Counter()

    def held(build: Callable[..., None]) -> Callable[..., None]:
        def held_build(self: object, *args: Any, **kwargs: Any) -> None:
            # LogGroup(account_id, region, name, ...), LogStream(log_group=..., name=...)
            name = kwargs["name"] if "name" in kwargs else args[2]
            builds[(type(self), name)] += 1
            time.sleep(0.2 if builds[(type(self), name)] == 1 else 0.7)  # preempted, not waiting
            build(self, *args, **kwargs)

        return held_build

    for resource in (models.LogGroup, models.LogStream):
        monkeypatch.setattr(resource, "__init__", held(resource.__init__))
    group = f"/uwsgi/{uuid.uuid4().hex[:12]}"
    answered, errors, _ = _serve(app_environment(moto_server, group), ["--master"])
    _assert_every_record_arrived_once(moto_server, group, answered, errors, ["--master"])
    assert _reports(errors) == []


@pytest.mark.slow
@needs_uwsgi
def test_a_spooling_handler_in_a_uwsgi_master_delivers_its_records_once_across_restarts(
    moto_server: MotoEndpoint, tmp_path: Path
) -> None:
    """A handler with ``spool_dir`` in a uWSGI master (workers recycled every 3 requests), the
    server started twice on the same spool: each master's loading records arrive exactly once,
    as every request's. The worker that claims them journals them anew and marks them settled
    in the master's journal, which the second master finds and replays: were they not marked,
    the first master's records would arrive twice; were they not claimed, never."""
    group = f"/uwsgi/{uuid.uuid4().hex[:12]}"
    env = app_environment(moto_server, group)
    spool = tmp_path / "spool"
    env["TEST_SPOOL_DIR"] = str(spool)
    options = ["--master", "--enable-threads", "--max-requests", "3"]
    answered: list[str] = []
    standard_errors: list[str] = []
    for _ in range(2):
        requests, errors, _ = _serve(env, options)
        answered += requests
        standard_errors.append(errors[-3000:])
        assert _reports(errors) == []
    got = delivered_ids(moto_server, group)
    loaded = loading_records(moto_server, group)
    print(f"measured: uwsgi with a spool, twice: answered={len(answered)} delivered={len(got)}")
    assert len(answered) == 2 * REQUESTS
    assert not_exactly_once(got, answered) == {}, standard_errors  # where a lost record went
    assert_loading_records_arrived_once(loaded)
    assert len(loaded) == 2, f"records logged while loading came from {len(loaded)} processes"


@pytest.mark.slow
@needs_uwsgi
def test_a_worker_stopped_in_a_request_leaves_its_records_to_the_next_start_with_a_spool(
    moto_server: MotoEndpoint, tmp_path: Path, puts_received: list[tuple[str, str]]
) -> None:
    """uWSGI runs no Python exit hook in a worker stopped in the middle of a request (its
    ``uwsgi_python_atexit`` returns at once for a busy worker), and our own exit hook in libc
    delivers nothing from a worker stopped in the application's Python code (here, a slow
    request): what it queued is never sent. With ``spool_dir`` it is in the journal, and the
    next start delivers every record once.

    One worker: a sibling that sends its first batch after the busy worker died would replay
    that worker's journal at the stop (`Spool.replay_orphans_in_a_child`), which is better for
    users but would hide what this test shows, the hook skipped."""
    group = f"/uwsgi/{uuid.uuid4().hex[:12]}"
    env = app_environment(moto_server, group)
    env["TEST_SPOOL_DIR"] = str(tmp_path / "spool")
    started = tmp_path / "started"
    started.mkdir()
    env["TEST_SLOW_STARTED_DIR"] = str(started)
    port = free_port()
    server = _start(env, port, ["--master", "--enable-threads"], processes=1)
    slow = threading.Thread(target=get, args=(port, "slow-1"))
    try:
        wait_until_serving(port, server)  # type: ignore[arg-type]
        answered = _answered(port, 40)
        slow.start()  # its worker logs it, then is in the request until the server stops
        # In the application's code, not still reading the request (busy too, in C, where the
        # hook in libc delivers): stopped there, the worker runs no exit hook of ours.
        _wait_until_the_slow_request_runs(started, server)
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=60)
    finally:
        _reap(server)
        slow.join()
    errors = _without_request_lines(errors)
    sent = {message.split()[0] for _, message in puts_received}
    unsent = [request_id for request_id in answered if f"request-{request_id}" not in sent]
    print(f"measured: uwsgi worker stopped in a request: {len(unsent)} of {len(answered)} unsent")
    assert "request-slow-1" not in sent and unsent, (
        f"uWSGI ran the busy worker's exit hook\n{errors}"
    )

    from aws_cloudwatch_logs_handler import CloudWatchLogsHandler

    next_start = CloudWatchLogsHandler(
        group, endpoint_url=moto_server.url, region="us-east-1", spool_dir=env["TEST_SPOOL_DIR"]
    )
    try:
        assert next_start.flush(timeout_s=30)
    finally:
        next_start.close()
    got = delivered_ids(moto_server, group)
    assert not_exactly_once(got, [*answered, "slow-1"]) == {}, errors[-4000:]


@pytest.mark.slow
@needs_uwsgi
def test_a_worker_stopped_while_it_reads_a_request_delivers_what_it_queued(
    moto_server: MotoEndpoint,
) -> None:
    """uWSGI stopped as Docker stops it (SIGTERM to the master, ``--die-on-term``) while a client
    has sent only part of its request: the worker reading it is busy, so uWSGI runs no Python
    exit hook in it, and before `_lifecycle.hook_uwsgi_worker_exit` its 40 answered requests'
    records were all lost (0 of 40 in each run tried). Its main thread is in uWSGI's C code
    there, and the hook libc runs at the worker's exit delivers them: each arrives once, with
    no spool, and the handler reports nothing."""
    group = f"/uwsgi/{uuid.uuid4().hex[:12]}"
    port, stats_port = free_port(), free_port()
    options = ["--master", "--enable-threads", "--stats", f"127.0.0.1:{stats_port}"]
    server = _start(app_environment(moto_server, group), port, options, processes=1)
    try:
        wait_until_serving(port, server)  # type: ignore[arg-type]
        answered = _answered(port, 40)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow_client:
            slow_client.sendall(b"GET /?partial HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no end
            _wait_until_workers(stats_port, server, _is_busy, "busy", every=False)
            server.send_signal(signal.SIGTERM)
            _, errors = server.communicate(timeout=60)
    finally:
        _reap(server)
    errors = _without_request_lines(errors)
    got = _delivered_so_far(moto_server, group)
    print(f"measured: uwsgi worker stopped reading a request: {len(got)} of {len(answered)}")
    assert len(answered) == 40
    assert not_exactly_once(got, answered) == {}, errors[-4000:]
    assert _reports(errors) == []


@pytest.fixture
def https_endpoint(moto_server: MotoEndpoint, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """moto behind TLS, as every real endpoint is: its URL, and the CA bundle that vouches for
    its certificate (for ``AWS_CA_BUNDLE``)."""
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    host, _, port = moto_server.url.removeprefix("http://").partition(":")
    with FaultProxy(host, int(port), tls=context) as front:
        yield front.url, str(bundle)


GRACEFUL_STOP = ["--hook-master-start", "unix_signal:15 gracefully_kill_them_all"]
"""uWSGI's way to make SIGTERM a graceful stop: each worker ends its request, then exits."""


@pytest.mark.slow
@needs_uwsgi
@pytest.mark.parametrize(
    "graceful",
    [
        pytest.param(False, id="stopped-idle"),
        pytest.param(True, id="graceful-stop-in-a-request"),
    ],
)
def test_a_worker_that_has_sent_delivers_at_its_exit_over_https(
    moto_server: MotoEndpoint,
    https_endpoint: tuple[str, str],
    tmp_path: Path,
    graceful: bool,
) -> None:
    """A worker sends its first batch over HTTPS (its client starts OpenSSL then), serves 20
    more requests, and uWSGI is stopped: through its master, idle, or gracefully while a request
    is in the application's code, which then ends. Every record arrives once, the later 20 (and
    the slow request's) delivered at the worker's exit.

    Before, OpenSSL had ended by then: it registers its clean-up with libc when it starts, after
    uWSGI's hook that runs the Python exit hooks, and libc runs the later ones first. The exit's
    delivery failed on every attempt (``SSLError``), and the worker lost all it had queued since
    its last batch, at every stop: 0 of 20 here, 0 of 21 stopped gracefully. Over plain HTTP,
    which the other tests use, it went unseen."""
    url, ca_bundle = https_endpoint
    group = f"/uwsgi/{uuid.uuid4().hex[:12]}"
    env = app_environment(moto_server, group)
    env.update(TEST_ENDPOINT_URL=url, AWS_CA_BUNDLE=ca_bundle, TEST_SLOW_REQUEST_S="1")
    started = tmp_path / "started"
    started.mkdir()
    env["TEST_SLOW_STARTED_DIR"] = str(started)
    port, stats_port = free_port(), free_port()
    options = ["--master", "--enable-threads", "--stats", f"127.0.0.1:{stats_port}"]
    server = _start(env, port, [*options, *(GRACEFUL_STOP if graceful else [])], processes=1)
    slow = threading.Thread(target=get, args=(port, "slow-1"))
    try:
        wait_until_serving(port, server)  # type: ignore[arg-type]
        first = _answered(port, 20, "a")
        deadline = time.monotonic() + START_LIMIT_S
        while not all(map(_delivered_so_far(moto_server, group).__getitem__, first)):
            assert time.monotonic() < deadline, "the worker sent no batch"
            time.sleep(0.1)  # polling the endpoint for the batch its flush interval sends
        later = _answered(port, 20, "b")
        if graceful:
            slow.start()
            _wait_until_the_slow_request_runs(started, server)
            later.append("slow-1")
        else:
            _wait_until_workers(stats_port, server, _is_idle, "idle")
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=60)
    finally:
        _reap(server)
        if graceful:
            slow.join()
    errors = _without_request_lines(errors)
    got = delivered_ids(moto_server, group)
    print(f"measured: uwsgi over https, at exit: {sum(got[r] for r in later)} of {len(later)}")
    assert len(first) == 20 and len(later) == (21 if graceful else 20)
    assert not_exactly_once(got, [*first, *later]) == {}, errors[-4000:]
    assert _reports(errors) == []


@pytest.mark.slow
@needs_uwsgi
def test_a_spool_keeps_what_uwsgi_workers_signalled_with_their_master_could_not_send(
    moto_server: MotoEndpoint, tmp_path: Path
) -> None:
    """uWSGI stopped as systemd stops a unit by default (SIGTERM to every process at once):
    each worker, already exiting on its own signal, gets its master's SIGINT, and uWSGI's
    handler ends it on the spot, in the middle of the delivery at exit. With a spool, what it
    could not send waits in its journal, and the next start delivers it: across the two starts
    every request's record arrives, and each master's loading records too. The first start's
    end is a crash, for which the spool promises at least once: a batch that reached the
    endpoint just before its worker was ended, unacknowledged, is sent again (most likely what a
    busy host showed once: 68 records not exactly once under the earlier, exactly-once
    assertion). The second start, stopped through its master, delivers its own exactly once.

    The second start sends the first's records at once, not a flush interval later (600 s
    here): they arrive while it still serves. Before, they waited for the exit with its own.
    One CI run lost 97 of the first start's records and 129 of the second's, all the worker's
    that claimed them: the pattern of a worker out of its 5 s at exit with both (reproduced
    with every PutLogEvents held 3 s)."""
    group = f"/uwsgi/{uuid.uuid4().hex[:12]}"
    env = app_environment(moto_server, group)
    env["TEST_SPOOL_DIR"] = str(tmp_path / "spool")
    first, first_errors, first_master = _serve(
        env, ["--master", "--enable-threads"], stop_every_process=True
    )
    after_first = len(_delivered_so_far(moto_server, group))  # the signals' race: usually 0

    def first_start_delivered_meanwhile() -> None:
        started = time.monotonic()
        # One read of the endpoint per check, not one per record: reads took 0.3 s each on a
        # slower host, and 200 of them made each check a minute long.
        while not all(map(_delivered_so_far(moto_server, group).__getitem__, first)):
            assert time.monotonic() - started < START_LIMIT_S, "not sent at once after a restart"
            time.sleep(0.1)  # polling the endpoint: what is tested is that no flush is needed
        print(f"measured: the first start's records in {time.monotonic() - started:.2f} s")

    env["TEST_FLUSH_INTERVAL_S"] = "600"
    second, errors, second_master = _serve(
        env, ["--master", "--enable-threads"], before_stop=first_start_delivered_meanwhile
    )
    got = delivered_ids(moto_server, group)
    loaded = loading_records(moto_server, group)
    twice = [request_id for request_id in first if got[request_id] > 1]
    print(
        f"measured: uwsgi group stopped: {after_first} delivered; restarted: {len(got)}, "
        f"{len(twice)} of the first start's sent twice"
    )
    assert len(first) == len(second) == REQUESTS
    # uWSGI's standard error of both starts in the message: a lost record must say where it went.
    said = f"first start:\n{first_errors[-4000:]}\nsecond start:\n{errors[-4000:]}"
    assert [request_id for request_id in first if got[request_id] == 0] == [], said
    assert not_exactly_once(got, second) == {}, said
    assert sorted(loaded) == sorted([first_master, second_master])
    assert set(loaded[first_master]) == set(range(LOADING_RECORDS))
    assert loaded[second_master] == Counter(range(LOADING_RECORDS))
    assert _reports(errors) == []


@pytest.mark.slow
@needs_uwsgi
@pytest.mark.parametrize(
    ("mercy_s", "spool"),
    [
        # Well over the handler's flush interval (2 s), as uWSGI's default of 60 s is.
        pytest.param(10, False, id="mercy-10s"),
        # Killed long before its first batch is due (a 30 s flush interval here): only a spool
        # keeps the records, for the next start.
        pytest.param(1, True, id="mercy-1s-spool"),
    ],
)
def test_a_lazy_apps_worker_stopped_in_its_import_keeps_what_it_logged(
    moto_server: MotoEndpoint, tmp_path: Path, mercy_s: int, spool: bool
) -> None:
    """uWSGI ``--lazy-apps`` stopped while both workers are still in a slow import of the
    application, after it set up logging and logged its loading records: Python's SIGINT handler
    ends each import with a KeyboardInterrupt, the worker serves on without the application, and
    the master kills it when its mercy (``--worker-reload-mercy``) runs out. Given a mercy longer
    than the flush interval, the sender, still running, delivers the records meanwhile; given
    less, a spool keeps them and the next start delivers them. Each worker's loading records
    arrive once, and the handler reports nothing. Without the spool, the second case delivers
    nothing."""
    group = f"/uwsgi/{uuid.uuid4().hex[:12]}"
    env = app_environment(moto_server, group)
    held = tmp_path / "held"
    held.mkdir()
    holding_env = {**env, "TEST_IMPORT_HOLD_DIR": str(held), "TEST_IMPORT_HOLD_S": "60"}
    if spool:
        env["TEST_SPOOL_DIR"] = holding_env["TEST_SPOOL_DIR"] = str(tmp_path / "spool")
        # Nothing is sent before the kill, so the spool's replay is the only delivery: exactly
        # once. (A kill in the middle of a send would replay what reached the endpoint: at least
        # once, as a spool promises for a crash.)
        holding_env["TEST_FLUSH_INTERVAL_S"] = "30"
    options = ["--master", "--lazy-apps", "--worker-reload-mercy", str(mercy_s)]
    server = _start(holding_env, free_port(), options)
    try:
        deadline = time.monotonic() + START_LIMIT_S
        while len(list(held.iterdir())) < 2 and server.poll() is None:
            assert time.monotonic() < deadline, "the workers did not reach their slow import"
            time.sleep(0.05)  # polling the workers' imports, not waiting for our work
        holding = sorted(int(path.name) for path in held.iterdir())
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=mercy_s + 30)
    finally:
        _reap(server)
    assert errors.count("KeyboardInterrupt") == 2, errors[-4000:]  # both stopped in the import
    assert _reports(errors) == []
    if spool:
        _, errors, _ = _serve(env, ["--master", "--lazy-apps"])
        assert _reports(errors) == []
    loaded = loading_records(moto_server, group)
    delivered = {pid: sum(records.values()) for pid, records in loaded.items()}
    print(f"measured: uwsgi lazy-apps stopped in its import, mercy {mercy_s} s: {delivered}")
    assert {pid: set(loaded.get(pid, ())) for pid in holding} == {
        pid: set(range(LOADING_RECORDS)) for pid in holding
    }, errors[-4000:]
    assert_loading_records_arrived_once(loaded)


def _assert_every_record_arrived_once(
    moto: MotoEndpoint,
    group: str,
    answered: list[str],
    errors: str,
    options: list[str],
    *,
    puts_received: list[tuple[str, str]] | None = None,
) -> dict[int, Counter[int]]:
    """Every request was answered and its record arrived once, and every process's records
    logged while loading the application too; returns those, by process."""
    got = delivered_ids(moto, group)
    loaded = loading_records(moto, group)
    print(f"measured: uwsgi {options}: answered={len(answered)} delivered={len(got)}")
    assert len(answered) == REQUESTS
    # uWSGI's standard error (its workers' deaths, our reports) in the message, and whether
    # the endpoint was sent what is missing: a lost record must say where it went.
    missing = not_exactly_once(got, answered)
    said = errors[-4000:]
    if missing and puts_received is not None:
        sent = {
            message.split()[0].removeprefix("request-"): stream for stream, message in puts_received
        }
        reached = Counter(sent[request_id] for request_id in missing if request_id in sent)
        said += (
            f"\n{len(missing)} not delivered once; sent to the endpoint: {dict(reached)}; "
            f"streams now: {moto.streams(group)}"
        )
    assert missing == {}, said
    assert_loading_records_arrived_once(loaded)
    return loaded


@pytest.fixture
def puts_received(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every (stream, message) the moto server (in this process) was given to store by a
    PutLogEvents call from now on: what a worker sent, whether or not a reader finds it."""
    received: list[tuple[str, str]] = []
    put = models.LogsBackend.put_log_events

    def recording(
        self: Any, log_group_name: str, log_stream_name: str, log_events: list[dict[str, Any]]
    ) -> Any:
        received.extend((log_stream_name, event["message"]) for event in log_events)
        return put(self, log_group_name, log_stream_name, log_events)

    monkeypatch.setattr(models.LogsBackend, "put_log_events", recording)
    return received


def _delivered_so_far(moto: MotoEndpoint, group: str) -> Counter[str]:
    """`delivered_ids`, empty while the group does not exist yet."""
    return empty_while_missing(lambda: delivered_ids(moto, group), Counter())


def _reports(errors: str) -> list[str]:
    """The lines of uWSGI's standard error that are the handler's reports."""
    return [line for line in errors.splitlines() if line.startswith(PREFIX)]


def _workers(stats_port: int) -> list[dict[str, Any]]:
    """Each worker's state, from uWSGI's stats server (run by the master)."""
    with socket.create_connection(("127.0.0.1", stats_port), timeout=10) as stats:
        data = b"".join(iter(lambda: stats.recv(65536), b""))
    workers: list[dict[str, Any]] = json.loads(data)["workers"]
    return workers


def _wait_until_workers(
    stats_port: int,
    server: subprocess.Popen[str],
    state: Callable[[dict[str, Any]], bool],
    what: str,
    *,
    every: bool = True,
) -> None:
    """Poll uWSGI's stats until every worker (or, with ``every=False``, one) is in ``state``,
    or fail saying ``what`` it was not."""
    deadline = time.monotonic() + START_LIMIT_S
    ready = all if every else any
    while time.monotonic() < deadline and server.poll() is None:
        if ready(state(worker) for worker in _workers(stats_port)):
            return
        time.sleep(0.05)  # polling uWSGI's workers, not waiting for our work
    raise AssertionError(f"uWSGI's workers were not {what} within {START_LIMIT_S:g} s")


def _wait_until_the_slow_request_runs(started: Path, server: subprocess.Popen[str]) -> None:
    """Poll until the application says it runs the request ``slow-1`` (`apps/wsgi_app.py`, with
    ``TEST_SLOW_STARTED_DIR``): in its code, no longer in uWSGI's reading the request."""
    deadline = time.monotonic() + START_LIMIT_S
    while not (started / "slow-1").exists():
        assert time.monotonic() < deadline and server.poll() is None, "no slow request"
        time.sleep(0.05)  # polling the worker's progress, not waiting for our work


def _has_loaded_the_app(worker: dict[str, Any]) -> bool:
    """With ``--lazy-apps``, a worker still importing the application has none yet.

    A worker stopped while it imports the application (one recycled by ``--max-requests`` on a
    busy host) never stops: the master's SIGINT reaches Python's own handler, not uWSGI's, so it
    interrupts the import as a KeyboardInterrupt, and the worker serves on without an
    application until the master's 60 s of mercy run out. That is uWSGI's, whatever the
    application imports; the test stops the server once every worker serves.
    """
    return bool(worker["apps"])


def _is_idle(worker: dict[str, Any]) -> bool:
    """A worker neither in a request nor just closing one (uWSGI's ``uwsgi_worker_is_busy``).

    The client has its answer before the worker has closed the request. A worker stopped by
    the master's SIGINT until then is busy, and uWSGI then runs no Python exit hook in it: only
    our hook in libc delivers there
    (`test_a_worker_stopped_while_it_reads_a_request_delivers_what_it_queued`). These tests
    stop idle workers, so that they test the stop through uWSGI's own exit hooks.
    """
    return bool(worker["status"] == "idle")


def _is_busy(worker: dict[str, Any]) -> bool:
    """A worker in a request."""
    return bool(worker["status"] == "busy")


def _start(
    env: dict[str, str], port: int, options: list[str], processes: int = 2
) -> subprocess.Popen[str]:
    """Start uWSGI on `apps/wsgi_app.py`, on ``port``, with ``processes`` workers and
    ``options``."""
    assert UWSGI is not None
    server_options = ["--processes", str(processes), "--die-on-term", *options]
    server_options += ["--module", "wsgi_app:application"]
    venv = ["--virtualenv", str(Path(sys.executable).parent.parent)]
    return subprocess.Popen(
        [UWSGI, "--http-socket", f"127.0.0.1:{port}", *server_options, *venv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a worker left behind dies with the group, not holding stderr
    )


def _serve(
    env: dict[str, str],
    options: list[str],
    *,
    stop_every_process: bool = False,
    before_stop: Callable[[], None] | None = None,
) -> tuple[list[str], str, int]:
    """Start uWSGI on `apps/wsgi_app.py` with two workers and ``options``, send `REQUESTS`
    requests, call ``before_stop`` if given, and stop it with SIGTERM: to its master, or to
    every process (without a master, or with ``stop_every_process``). The requests answered,
    uWSGI's standard error, and the id of its first process (the master, if there is one)."""
    port = free_port()
    stats_port = free_port() if "--master" in options else None  # the master serves stats
    if stats_port is not None:
        options = [*options, "--stats", f"127.0.0.1:{stats_port}"]
    server = _start(env, port, options)
    try:
        wait_until_serving(port, server)  # type: ignore[arg-type]
        answered = _answered(port, REQUESTS)
        if stats_port is not None and "--lazy-apps" in options:
            _wait_until_workers(stats_port, server, _has_loaded_the_app, "serving")
        if before_stop is not None:
            before_stop()
        if stats_port is not None and not stop_every_process:  # through the master: idle
            _wait_until_workers(stats_port, server, _is_idle, "idle")
        if "--master" in options and not stop_every_process:
            server.send_signal(signal.SIGTERM)
        else:  # every worker ends on its own signal, as systemd signals the whole unit
            os.killpg(server.pid, signal.SIGTERM)
        try:
            _, errors = server.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            _, output = server.communicate()  # all of it: a retried communicate loses nothing
            # A server that does not stop is a failure in its own right; its standard error
            # (our reports, its workers' tracebacks) says which process hung, and why.
            raise AssertionError(f"uWSGI did not stop within 60 s:\n{output[-6000:]}") from None
    finally:
        _reap(server)
    return answered, _without_request_lines(errors), server.pid


def _answered(port: int, count: int, prefix: str = "") -> list[str]:
    """Send ``count`` requests, each with an id of its own; the ids of those answered."""
    request_ids = [f"{prefix}{n}-{uuid.uuid4().hex[:6]}" for n in range(count)]
    return [request_id for request_id in request_ids if get(port, request_id)]


def _reap(server: subprocess.Popen[str]) -> None:
    """End whatever is left of ``server``'s process group, and collect its output."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.communicate()


def _without_request_lines(errors: str) -> str:
    """uWSGI's standard error without its request lines: a failed assertion shows the end of
    it, which must be its workers' deaths and our reports, not the last requests."""
    return "".join(line for line in errors.splitlines(keepends=True) if "} [" not in line)


def test_a_stand_in_uwsgi_module_leaves_the_exit_to_python(moto_server: MotoEndpoint) -> None:
    """A program that puts its own ``uwsgi`` module in place (a test double, a shim) is not run
    by uWSGI: the libc exit hook, which runs after the interpreter has finalized in such a
    program, is not registered there. The program ends with status 0, its record delivered,
    where a hook registered anyway would enter the finalized interpreter at exit."""
    group = f"/uwsgi/{uuid.uuid4().hex[:12]}"
    program = (
        "import logging, sys, types\n"
        "sys.modules['uwsgi'] = types.SimpleNamespace(opt={}, has_threads=1)\n"
        "from aws_cloudwatch_logs_handler import CloudWatchLogsHandler\n"
        f"handler = CloudWatchLogsHandler({group!r}, endpoint_url={moto_server.url!r},"
        " region='us-east-1')\n"
        "logging.getLogger().addHandler(handler)\n"
        "logging.getLogger().warning('request-stand-in pid=1')\n"
    )
    env = app_environment(moto_server, group)
    ended = subprocess.run(
        [sys.executable, "-c", program],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ended.returncode == 0, ended.stderr[-4000:]
    assert delivered_ids(moto_server, group) == Counter({"stand-in": 1})


@pytest.mark.parametrize(
    ("uwsgi", "reported"),
    [
        (SimpleNamespace(has_threads=0, opt={}), True),
        (SimpleNamespace(opt={}), True),  # an older uWSGI that only has its options
        (SimpleNamespace(has_threads=1, opt={}), False),
        (SimpleNamespace(opt={"threads": b"4"}), False),
    ],
)
def test_uwsgi_without_threads_is_reported_once_with_the_fix(
    monkeypatch: pytest.MonkeyPatch, uwsgi: SimpleNamespace, reported: bool
) -> None:
    """Where uWSGI says threads are off, the side channel names --enable-threads, once; where it
    runs them (by itself, or with --threads), nothing is reported."""
    monkeypatch.setitem(sys.modules, "uwsgi", uwsgi)
    reports: list[str] = []
    warn_if_threads_cannot_run(lambda kind, message, **_: reports.append(message))
    assert len(reports) == (1 if reported else 0)
    assert all("--enable-threads" in report for report in reports)
