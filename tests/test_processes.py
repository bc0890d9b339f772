"""Records logged in child processes arrive whole, once, without anyone calling close().

Each scenario runs as its own Python process (the start method and the exit path are the point,
and pytest's own process must not fork with the test's threads running): a parent logs records
it leaves queued (a long flush interval keeps them unsent), starts children by one of the ways
Python offers, the children log, and every process simply ends. Then the endpoint must hold
every record exactly once: the children's (delivered by the handler's `os._exit` or by
atexit) and the parent's (never resent by a child that inherited its queue).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from local_aws.moto_endpoint import MotoEndpoint

SCRIPT = '''
    """One process scenario: parent logs, children log, nobody calls close() or flush()."""

    import logging
    import multiprocessing
    import os
    import sys
    import time

    from aws_cloudwatch_logs_handler import CloudWatchLogsHandler

    LOGGER = "scenario"
    PARENT_RECORDS = 300
    TASKS, PER_TASK = 12, 150
    CHILDREN, PER_CHILD = 3, 400


    def setup(url: str, group: str) -> None:
        """Attach a handler that sends nothing before exit unless a batch fills up."""
        handler = CloudWatchLogsHandler(
            group, endpoint_url=url, region="us-east-1", flush_interval_s=60.0
        )
        log = logging.getLogger(LOGGER)
        log.propagate = False
        log.setLevel(logging.INFO)
        log.addHandler(handler)


    def task(number: int) -> int:
        log = logging.getLogger(LOGGER)
        for i in range(PER_TASK):
            log.info("task-%d-%d", number, i)
        time.sleep(0.2)  # long enough that every worker gets tasks, even slow-starting spawns
        return os.getpid()


    def child(url: str, group: str, name: str, fresh_interpreter: bool) -> None:
        if fresh_interpreter:
            setup(url, group)  # a spawned child imports this module anew: no handler yet
        log = logging.getLogger(LOGGER)
        for i in range(PER_CHILD):
            log.info("%s-%d", name, i)


    def main() -> None:
        scenario, url, group = sys.argv[1:4]
        method = "spawn" if scenario.endswith("spawn") else "fork"
        setup(url, group)
        log = logging.getLogger(LOGGER)
        for i in range(PARENT_RECORDS):
            log.info("parent-before-%d", i)  # still queued when the children are made
        context = multiprocessing.get_context(method)
        if scenario.startswith("pool"):
            initializer = setup if method == "spawn" else None
            pool = context.Pool(3, initializer=initializer, initargs=(url, group))
            pids = pool.map(task, range(TASKS), chunksize=1)
            pool.close()
            pool.join()
            print("workers", len(set(pids)))
        elif scenario.startswith("process"):
            children = [
                context.Process(target=child, args=(url, group, f"child{n}", method == "spawn"))
                for n in range(CHILDREN)
            ]
            for process in children:
                process.start()
            for process in children:
                process.join(60)
                assert process.exitcode == 0, process.exitcode
        elif scenario == "os-fork":
            pid = os.fork()
            if pid == 0:
                child(url, group, "forked", False)
                sys.exit(0)  # a normal exit of the child: its atexit hooks run
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0, status
        else:
            raise SystemExit(f"unknown scenario {scenario}")
        for i in range(PARENT_RECORDS):
            log.info("parent-after-%d", i)


    if __name__ == "__main__":
        main()
'''

PARENT_RECORDS = 300
TASKS, PER_TASK = 12, 150
CHILDREN, PER_CHILD = 3, 400


def expected_messages(scenario: str) -> list[str]:
    """Return every message the scenario's processes log."""
    parent = [f"parent-{when}-{i}" for when in ("before", "after") for i in range(PARENT_RECORDS)]
    if scenario.startswith("pool"):
        children = [f"task-{t}-{i}" for t in range(TASKS) for i in range(PER_TASK)]
    elif scenario.startswith("process"):
        children = [f"child{n}-{i}" for n in range(CHILDREN) for i in range(PER_CHILD)]
    else:
        children = [f"forked-{i}" for i in range(PER_CHILD)]
    return parent + children


def delivered(moto: MotoEndpoint, group: str) -> list[str]:
    """Return every message of every stream in ``group``."""
    return [m for stream in moto.streams(group) for m in moto.messages(group, stream)]


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["pool-fork", "pool-spawn", "process-fork", "process-spawn"])
def test_multiprocessing_children_deliver_everything_once(
    scenario: str, moto_server: MotoEndpoint, tmp_path: Path
) -> None:
    """Pool workers and Process children, forked or spawned, deliver every record exactly once."""
    run_scenario(scenario, moto_server, tmp_path)


@pytest.mark.slow
def test_os_fork_child_delivers_everything_once(moto_server: MotoEndpoint, tmp_path: Path) -> None:
    """A plain os.fork() child delivers its records and never resends what its parent queued."""
    run_scenario("os-fork", moto_server, tmp_path)


def run_scenario(scenario: str, moto: MotoEndpoint, tmp_path: Path) -> None:
    """Run one scenario script to its end and check the endpoint holds each record once."""
    script = tmp_path / "scenario.py"
    script.write_text(textwrap.dedent(SCRIPT))
    group = f"/processes/{scenario}/{uuid.uuid4().hex}"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script), scenario, moto.url, group],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    took = time.monotonic() - started
    want = expected_messages(scenario)
    got = Counter(delivered(moto, group))
    lost = sum((Counter(want) - got).values())
    duplicated = sum(n - 1 for n in got.values() if n > 1)
    unexpected = sum((got - Counter(want)).values()) - duplicated
    parent_resent = sum(n - 1 for m, n in got.items() if m.startswith("parent-before") and n > 1)
    figures = (
        f"{scenario}: sent={len(want)} received={sum(got.values())} lost={lost} "
        f"duplicated={duplicated} (parent's queued records resent: {parent_resent}) "
        f"unexpected={unexpected} streams={len(moto.streams(group))} run={took:.1f} s "
        f"rc={done.returncode} stdout={done.stdout[-200:]!r} stderr={done.stderr[-800:]!r}"
    )
    print(f"measured: {figures}")
    assert done.returncode == 0, figures
    assert lost == duplicated == unexpected == 0, figures
    if scenario.startswith("pool"):
        assert "workers 3" in done.stdout, f"not every worker logged: {figures}"
