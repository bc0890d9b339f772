"""Under a real RQ worker, every job's records arrive, though each job's process ends by
``os._exit``.

RQ runs each job in a work horse: a process forked (or, with ``SpawnWorker``, spawned) for that
one job, which ends with ``os._exit(0)`` as soon as the job returns. That skips ``atexit``, and
RQ sends no signal before it; the handler delivers from ``os._exit`` itself (`_lifecycle`). The
tests run RQ's worker as users start it, in a burst (it ends once the queue is empty), against
a Redis server that fakeredis serves over TCP on 127.0.0.1, and count what the endpoint holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.lifecycle import arrived
from local_aws.moto_endpoint import MotoEndpoint

pytestmark = pytest.mark.slow

APPS = Path(__file__).resolve().parent / "apps"
ROOT = Path(__file__).resolve().parent.parent
JOBS = 8
RECORDS_PER_JOB = 250  # as apps/rq_jobs.py logs them
WORKER_LIMIT_S = 120.0


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A Redis server on 127.0.0.1 (`redis_stand_in`), for the module's tests."""
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "redis_stand_in.py")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.kill()
        server.communicate()


def run_jobs(moto: MotoEndpoint, url: str, folder: Path, worker: list[str]) -> tuple[str, set[str]]:
    """Queue JOBS jobs, run ``worker`` until the queue is empty; return the group the jobs logged
    to and the processes that ran them."""
    # Imported here: the sessions that run only the fast tests (noxfile) install neither.
    from redis import Redis
    from rq import Queue

    group = f"/test/rq-{uuid.uuid4().hex[:12]}"
    with Redis.from_url(url) as connection:
        connection.flushdb()
        queue = Queue("default", connection=connection)
        for number in range(JOBS):
            queue.enqueue("rq_jobs.work", number)
    env = dict(os.environ)
    env.update(
        TEST_RQ_DONE=str(folder),
        TEST_LOG_GROUP=group,
        TEST_ENDPOINT_URL=moto.url,
        PYTHONPATH=os.pathsep.join([str(ROOT / "handler"), str(APPS)]),
    )
    done = subprocess.run(
        worker,
        check=False,
        env=env,
        cwd=APPS,
        capture_output=True,
        text=True,
        timeout=WORKER_LIMIT_S,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(os.listdir(folder)) == JOBS, done.stderr[-2000:]  # every job ran
    return group, {name.split(".")[1] for name in os.listdir(folder)}


def delivered(moto: MotoEndpoint, group: str) -> Counter[str]:
    """How often each message arrived, over every stream of ``group`` (none: no group)."""
    return arrived(moto.logs_client(), group)


def expected() -> Counter[str]:
    return Counter(f"job{n}-{step}" for n in range(JOBS) for step in range(RECORDS_PER_JOB))


def rq_worker(url: str, *options: str) -> list[str]:
    """``rq worker --burst``, as a user runs it, with ``options``."""
    return [sys.executable, "-m", "rq.cli", "worker", "--burst", "--url", url, *options]


@pytest.mark.parametrize(
    "options",
    [
        pytest.param([], id="fork"),
        pytest.param(["--worker-class", "rq.worker.SpawnWorker"], id="spawn"),
    ],
)
def test_a_work_horse_that_made_the_handler_delivers_its_jobs_records(
    moto_server: MotoEndpoint, redis_url: str, tmp_path: Path, options: list[str]
) -> None:
    """``rq worker``: the work horse imports the jobs' module, so the handler is made there, and
    the horse ends by ``os._exit(0)`` when the job returns; every record arrives, once."""
    started = time.monotonic()
    group, horses = run_jobs(moto_server, redis_url, tmp_path, rq_worker(redis_url, *options))
    got = delivered(moto_server, group)
    print(
        f"measured: {sum(got.values())} of {sum(expected().values())} records from "
        f"{len(horses)} work horses in {time.monotonic() - started:.1f}s"
    )
    assert len(horses) == JOBS  # a process per job
    assert got == expected()


def test_work_horses_forked_from_a_worker_that_preloaded_the_handler_deliver_their_records(
    moto_server: MotoEndpoint, redis_url: str, tmp_path: Path
) -> None:
    """A worker script that preloads the jobs' module (RQ's advice): the handler is made before
    the horses are forked, and each horse sends its own job's records, once."""
    script = [sys.executable, str(APPS / "rq_preloading_worker.py"), redis_url]
    group, horses = run_jobs(moto_server, redis_url, tmp_path, script)
    assert len(horses) == JOBS
    assert delivered(moto_server, group) == expected()
