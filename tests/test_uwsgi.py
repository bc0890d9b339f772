"""Under real uWSGI (2.0.31, built from PyPI), workers forked below Python deliver every record.

uWSGI loads the application in its master and forks workers from C; our sender notices the new
process on a worker's first logging call. The server is stopped with SIGTERM and
``--die-on-term``, as a container runtime stops it.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_gunicorn import app_environment, delivered_ids, free_port, get, wait_until_serving

from aws_cloudwatch_logs_handler._lifecycle import warn_if_threads_cannot_run
from local_aws.moto_endpoint import MotoEndpoint

APPS = Path(__file__).resolve().parent / "apps"
ROOT = Path(__file__).resolve().parent.parent
UWSGI = shutil.which("uwsgi", path=str(Path(sys.executable).parent))
REQUESTS = 200


@pytest.mark.slow
@pytest.mark.skipif(UWSGI is None, reason="uwsgi is not installed (pip install --group servers)")
@pytest.mark.parametrize("threads", [[], ["--enable-threads"]], ids=["default", "enable-threads"])
def test_uwsgi_workers_deliver_every_request(moto_server: MotoEndpoint, threads: list[str]) -> None:
    """200 requests over two pre-forked uWSGI workers, then SIGTERM: every record arrives once,
    and no warning about threads is printed where uWSGI runs them."""
    assert UWSGI is not None
    group = f"/uwsgi/{uuid.uuid4().hex[:12]}"
    port = free_port()
    env = app_environment(moto_server, group)
    options = ["--master", "--processes", "2", "--die-on-term", "--module", "wsgi_app:application"]
    venv = ["--virtualenv", str(Path(sys.executable).parent.parent)]
    server = subprocess.Popen(
        [UWSGI, "--http-socket", f"127.0.0.1:{port}", *options, *venv, *threads],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_serving(port, server)  # type: ignore[arg-type]
        answered = [f"{n}-{uuid.uuid4().hex[:6]}" for n in range(REQUESTS)]
        answered = [request_id for request_id in answered if get(port, request_id)]
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    got = delivered_ids(moto_server, group)
    print(f"measured: uwsgi {threads}: answered={len(answered)} delivered={len(got)}")
    assert len(answered) == REQUESTS
    assert [request_id for request_id in answered if got[request_id] != 1] == []
    assert "uWSGI runs without threads" not in errors


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
