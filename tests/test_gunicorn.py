"""Under real gunicorn (sync and gthread workers), every request's record arrives, however workers
come and go.

gunicorn forks its workers (after loading the application in the master with ``--preload``),
recycles them after ``--max-requests``, replaces them all on HUP, aborts one whose request outlives
``--timeout``, and stops them with TERM; each worker ends through its own signal handler and a
normal exit. The tests drive it over HTTP on 127.0.0.1, send the signals a deployment sends, and
count what the endpoint holds.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from local_aws.moto_endpoint import MotoEndpoint

pytestmark = pytest.mark.slow

APPS = Path(__file__).resolve().parent / "apps"
ROOT = Path(__file__).resolve().parent.parent
REQUESTS = 300
HUP_AFTER = 100
START_LIMIT_S = 60.0
EXIT_LIMIT_S = 60.0
LOADING_RECORDS = 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(port: int, request_id: str) -> bool:
    """Send one request; True if gunicorn answered it (the worker then logged its record)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", f"/?{request_id}")
        response = connection.getresponse()
        return response.status == 200 and response.read().decode() == request_id
    except OSError:
        return False
    finally:
        connection.close()


def wait_until_serving(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_LIMIT_S
    while time.monotonic() < deadline and server.poll() is None:
        with socket.socket() as probe:
            probe.settimeout(1.0)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # polling a port gunicorn is still opening, not waiting for our work
    server.kill()
    pytest.fail(f"gunicorn did not start: {server.communicate()[1].decode()[-2000:]}")


def start_gunicorn(
    env: dict[str, str],
    port: int,
    options: list[str],
    *,
    workers: int = 2,
    own_session: bool = False,
) -> subprocess.Popen[bytes]:
    """Start gunicorn on `apps/wsgi_app.py` at ``port``: ``workers`` workers, ``options``, a 30 s
    graceful timeout; with ``own_session``, in a process group of its own (signalled as a whole)."""
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    return subprocess.Popen(
        [*command, *options, "--graceful-timeout", "30", "wsgi_app:application"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=own_session,
    )


def app_environment(moto: MotoEndpoint, group: str) -> dict[str, str]:
    """The environment `apps/wsgi_app.py` reads: where to log, and this checkout's library."""
    env = dict(os.environ)
    env.update(
        TEST_LOG_GROUP=group,
        TEST_ENDPOINT_URL=moto.url,
        TEST_LOADING_RECORDS=str(LOADING_RECORDS),
        PYTHONPATH=os.pathsep.join([str(ROOT / "handler"), str(APPS)]),
    )
    return env


def _matching(moto: MotoEndpoint, group: str, pattern: str) -> Iterator[re.Match[str]]:
    """The messages of every stream of ``group`` that match ``pattern`` whole."""
    compiled = re.compile(pattern)
    for stream in moto.streams(group):
        for message in moto.messages(group, stream):
            if match := compiled.fullmatch(message):
                yield match


def delivered_ids(moto: MotoEndpoint, group: str) -> Counter[str]:
    return Counter(match.group(1) for match in _matching(moto, group, r"request-(\S+) pid=\d+"))


def not_exactly_once(delivered: Counter[str], request_ids: list[str]) -> dict[str, int]:
    """The requests of ``request_ids`` not delivered exactly once, with how often they were
    (0: lost, 2 or more: sent again), so that a failure tells a loss from a resend."""
    return {
        request_id: delivered[request_id]
        for request_id in request_ids
        if delivered[request_id] != 1
    }


def loading_records(moto: MotoEndpoint, group: str) -> dict[int, Counter[int]]:
    """For each process that loaded `apps/wsgi_app.py`, how often each of its loading records
    arrived (a worker forked with them queued must not send them again)."""
    loaded: dict[int, Counter[int]] = {}
    for match in _matching(moto, group, r"loading-(\d+) pid=(\d+)"):
        loaded.setdefault(int(match.group(2)), Counter())[int(match.group(1))] += 1
    return loaded


def assert_loading_records_arrived_once(loaded: dict[int, Counter[int]]) -> None:
    every_record_once = Counter(range(LOADING_RECORDS))
    assert loaded, "no process's loading records arrived"
    assert {pid: records for pid, records in loaded.items() if records != every_record_once} == {}


@pytest.mark.parametrize(
    "options",
    [
        pytest.param([], id="sync"),
        pytest.param(["--preload"], id="sync-preload"),
        pytest.param(["--max-requests", "25"], id="max-requests"),
        pytest.param(["--preload", "--max-requests", "25"], id="preload-max-requests"),
        pytest.param(["--threads", "4"], id="gthread"),
        pytest.param(["--preload", "--threads", "4", "--max-requests", "25"], id="gthread-preload"),
    ],
)
def test_every_request_record_arrives(moto_server: MotoEndpoint, options: list[str]) -> None:
    """300 requests, a HUP reload after 100, TERM at the end: every answered request's record
    arrives exactly once, every process's records logged while loading the application too (the
    master's, with ``--preload``), and gunicorn exits cleanly."""
    group = f"/gunicorn/{uuid.uuid4().hex[:12]}"
    port = free_port()
    server = start_gunicorn(app_environment(moto_server, group), port, options)
    try:
        wait_until_serving(port, server)
        answered = []
        for number in range(REQUESTS):
            if number == HUP_AFTER:
                server.send_signal(signal.SIGHUP)
            request_id = f"{number}-{uuid.uuid4().hex[:6]}"
            if get(port, request_id):
                answered.append(request_id)
        server.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, errors = server.communicate(timeout=EXIT_LIMIT_S)
        took = time.monotonic() - started
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    got = delivered_ids(moto_server, group)
    lost = [request_id for request_id in answered if got[request_id] == 0]
    twice = [request_id for request_id, n in got.items() if n > 1]
    print(
        f"measured: gunicorn {' '.join(options) or 'sync'}: answered={len(answered)}/{REQUESTS} "
        f"delivered={len(got)} lost={len(lost)} duplicated={len(twice)} exit {took:.2f}s"
    )
    assert server.returncode == 0, errors.decode()[-2000:]
    assert len(answered) >= REQUESTS - 5, "gunicorn refused requests: the test proves nothing"
    assert lost == [], errors.decode()[-2000:]
    assert twice == []
    assert_loading_records_arrived_once(loading_records(moto_server, group))


@pytest.mark.parametrize(
    "options", [pytest.param([], id="sync"), pytest.param(["--preload"], id="sync-preload")]
)
def test_a_server_whose_every_process_gets_sigterm_delivers_every_request(
    moto_server: MotoEndpoint, options: list[str]
) -> None:
    """gunicorn stopped as systemd stops a unit by default (``KillMode=control-group``): SIGTERM
    to every process at once, so each worker gets it from the kernel and again from its master.
    Every request's record arrives exactly once, and the loading records too."""
    group = f"/gunicorn/{uuid.uuid4().hex[:12]}"
    port = free_port()
    server = start_gunicorn(app_environment(moto_server, group), port, options, own_session=True)
    try:
        wait_until_serving(port, server)
        answered = [f"{n}-{uuid.uuid4().hex[:6]}" for n in range(HUP_AFTER)]
        answered = [request_id for request_id in answered if get(port, request_id)]
        os.killpg(server.pid, signal.SIGTERM)
        _, errors = server.communicate(timeout=EXIT_LIMIT_S)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.communicate()
    got = delivered_ids(moto_server, group)
    print(f"measured: gunicorn {options} group stopped: answered={len(answered)} got={len(got)}")
    assert server.returncode == 0, errors.decode()[-2000:]
    assert len(answered) == HUP_AFTER
    assert not_exactly_once(got, answered) == {}
    assert_loading_records_arrived_once(loading_records(moto_server, group))


def _around(
    env: dict[str, str], options: list[str], between: Callable[[int, int], None]
) -> tuple[list[str], list[str], str]:
    """Run gunicorn with one worker and ``options``: 20 requests, then ``between(port, master
    pid)``, then 20 more requests, then TERM. The requests answered before and after ``between``,
    and gunicorn's standard error."""
    port = free_port()
    server = start_gunicorn(env, port, options, workers=1)
    try:
        wait_until_serving(port, server)
        before = [f"before-{n}-{uuid.uuid4().hex[:6]}" for n in range(20)]
        before = [request_id for request_id in before if get(port, request_id)]
        between(port, server.pid)
        after = [f"after-{n}-{uuid.uuid4().hex[:6]}" for n in range(20)]
        after = [request_id for request_id in after if get(port, request_id)]
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=EXIT_LIMIT_S)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    return before, after, errors.decode()


def test_a_worker_killed_for_its_timeout_delivers_what_it_logged(
    moto_server: MotoEndpoint,
) -> None:
    """A request outlives ``--timeout``: the master aborts its worker (SIGABRT, which gunicorn
    turns into ``sys.exit(1)`` in the request) and SIGKILLs it at its next check if it is still
    there. The worker held the records of every request it served (a 60 s flush interval keeps
    them queued): they arrive exactly once, the timed-out request's own record too, and the new
    worker serves on."""
    group = f"/gunicorn/{uuid.uuid4().hex[:12]}"
    env = app_environment(moto_server, group)
    env.update(TEST_FLUSH_INTERVAL_S="60", TEST_SLOW_REQUEST_S="60")
    slow = f"slow-{uuid.uuid4().hex[:6]}"

    def time_out(port: int, master: int) -> None:
        assert not get(port, slow), "the slow request was answered: no worker timed out"

    before, after, report = _around(env, ["--timeout", "2"], time_out)
    got = delivered_ids(moto_server, group)
    print(f"measured: gunicorn worker timeout: {len(before)} + 1 + {len(after)}, got {len(got)}")
    assert "WORKER TIMEOUT" in report, report[-2000:]
    # Delivered on the way out, before the master's next check would have killed the worker.
    assert "SIGKILL" not in report, report[-2000:]
    assert len(before) == len(after) == 20, report[-2000:]
    assert not_exactly_once(got, [*before, slow, *after]) == {}, report[-2000:]


def test_a_worker_killed_outright_leaves_its_records_to_the_next_worker_with_a_spool(
    moto_server: MotoEndpoint, tmp_path: Path
) -> None:
    """The kernel's OOM killer (or gunicorn's SIGKILL after a timed-out worker's abort) ends a
    worker with no hook run: what it queued is only in its journal. With ``--preload`` and a
    spool, the worker the master forks in its place (it answers the 20 requests after the kill)
    replays that journal: every record arrives exactly once without waiting for the whole
    server's next start."""
    group = f"/gunicorn/{uuid.uuid4().hex[:12]}"
    env = app_environment(moto_server, group)
    env.update(TEST_FLUSH_INTERVAL_S="60", TEST_SPOOL_DIR=str(tmp_path / "spool"))

    def kill_the_worker(port: int, master: int) -> None:
        [worker] = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        os.kill(int(worker), signal.SIGKILL)

    before, after, report = _around(env, ["--preload"], kill_the_worker)
    got = delivered_ids(moto_server, group)
    print(f"measured: gunicorn worker killed: {len(before)} + {len(after)}, got {len(got)}")
    assert "SIGKILL" in report, report[-2000:]  # gunicorn saw its worker killed
    assert len(before) == len(after) == 20, report[-2000:]
    assert not_exactly_once(got, [*before, *after]) == {}, report[-2000:]
    assert_loading_records_arrived_once(loading_records(moto_server, group))
