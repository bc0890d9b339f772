"""Under a real Celery worker (the prefork pool, Celery's default), every task's records arrive,
however the pool's processes end.

Celery's pool (billiard) ends a pool process with ``os._exit``: after its ``max_tasks_per_child``
tasks, when ``--autoscale`` shrinks the pool, and at the worker's shutdown. That skips
``atexit`` and multiprocessing's finalizers, so the handler delivers from ``os._exit`` itself
(`_lifecycle.hook_os_exit`). The tests send
tasks through kombu's filesystem transport (no broker server), stop the worker with SIGTERM (a
warm shutdown, as ``docker stop`` sends it), and count what the endpoint holds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from bench.lifecycle import arrived
from local_aws.moto_endpoint import MotoEndpoint

pytestmark = pytest.mark.slow

APPS = Path(__file__).resolve().parent / "apps"
ROOT = Path(__file__).resolve().parent.parent
TASKS = 8
RECORDS_PER_TASK = 250  # as apps/celery_app.py logs them
TASKS_LIMIT_S = 60.0
EXIT_LIMIT_S = 60.0


def app_environment(folder: Path, moto: MotoEndpoint | None, group: str) -> dict[str, str]:
    """The environment `apps/celery_app.py` reads; without ``moto``, it logs nowhere."""
    env = dict(os.environ)
    env.update(
        TEST_CELERY_DIR=str(folder),
        TEST_LOG_GROUP=group,
        TEST_ENDPOINT_URL=moto.url if moto is not None else "",
        PYTHONPATH=os.pathsep.join([str(ROOT / "handler"), str(APPS)]),
    )
    return env


def delivered(moto: MotoEndpoint, group: str) -> Counter[str]:
    """How often each message arrived, over every stream of ``group`` (none: no group)."""
    return arrived(moto.logs_client(), group)


def run_worker(moto: MotoEndpoint, folder: Path, options: list[str]) -> tuple[str, set[str]]:
    """Start a Celery worker (2 pool processes, ``options``), have it run TASKS tasks, then stop it
    with SIGTERM; return the group it logged to and the pool processes that ran the tasks."""
    group = f"/test/celery-{uuid.uuid4().hex[:12]}"
    for sub in ("messages", "done"):
        (folder / sub).mkdir(parents=True)
    command = [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--pool=prefork"]
    worker = subprocess.Popen(
        [*command, "--concurrency=2", "--loglevel=WARNING", *options],
        env=app_environment(folder, moto, group),
        cwd=APPS,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        send = f"from celery_app import work\nfor n in range({TASKS}): work.delay(n)"
        subprocess.run(
            [sys.executable, "-c", send],
            env=app_environment(folder, None, group),
            cwd=APPS,
            check=True,
            timeout=60,
        )
        deadline = time.monotonic() + TASKS_LIMIT_S
        # Polling the folder the tasks mark as they end: Celery's progress, not the handler's.
        while len(list((folder / "done").iterdir())) < TASKS and worker.poll() is None:
            if time.monotonic() > deadline:
                pytest.fail(f"the worker ran {len(list((folder / 'done').iterdir()))} tasks")
            time.sleep(0.05)
        worker.send_signal(signal.SIGTERM)
        _, errors = worker.communicate(timeout=EXIT_LIMIT_S)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, errors.decode()[-2000:]
    return group, {name.split(".")[1] for name in os.listdir(folder / "done")}


def expected() -> Counter[str]:
    return Counter(f"task{n}-{step}" for n in range(TASKS) for step in range(RECORDS_PER_TASK))


def test_pool_processes_that_end_after_each_task_deliver_every_record(
    moto_server: MotoEndpoint, tmp_path: Path
) -> None:
    """``--max-tasks-per-child=1``: each pool process ends by ``os._exit`` after one task, and
    the pool starts another; every record of every one arrives, once."""
    started = time.monotonic()
    group, processes = run_worker(moto_server, tmp_path, ["--max-tasks-per-child=1"])
    got = delivered(moto_server, group)
    print(
        f"measured: {sum(got.values())} of {sum(expected().values())} records from "
        f"{len(processes)} pool processes in {time.monotonic() - started:.1f}s"
    )
    assert len(processes) == TASKS  # a process per task: each ended on its own
    assert got == expected()


def test_a_warm_shutdown_delivers_what_the_pool_processes_logged(
    moto_server: MotoEndpoint, tmp_path: Path
) -> None:
    """Pool processes that live until the worker's SIGTERM (its warm shutdown) deliver too."""
    group, processes = run_worker(moto_server, tmp_path, [])
    assert len(processes) <= 2
    assert delivered(moto_server, group) == expected()
