"""Fields bound per request: added to every record of the thread or task, never to another's."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from aws_cloudwatch_logs_handler import (
    JsonFormatter,
    bind,
    bound,
    bound_fields,
    clear_bound,
    unbind,
)

CONCURRENT = 1_000


class Collect(logging.Handler):
    """Keeps every formatted record (list.append is atomic under the GIL)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def parsed(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def collected() -> Any:
    logger = logging.getLogger("test.context")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = Collect()
    logger.addHandler(handler)
    try:
        yield logger, handler
    finally:
        logger.removeHandler(handler)


def test_bind_unbind_and_bound_restore_the_previous_fields() -> None:
    """bind adds, unbind removes, and a bound block restores exactly what was there before."""
    clear_bound()
    bind(user="u1", tenant="t1")
    with bound(user="u2", trace="x") as inside:
        assert dict(inside) == {"user": "u2", "tenant": "t1", "trace": "x"}
    assert dict(bound_fields()) == {"user": "u1", "tenant": "t1"}
    unbind("tenant", "absent")
    assert dict(bound_fields()) == {"user": "u1"}
    clear_bound()
    assert dict(bound_fields()) == {}


def test_a_new_thread_starts_with_no_bound_fields() -> None:
    """Fields bound in one thread are not in a thread it starts."""
    bind(user="main")
    seen: list[dict[str, Any]] = []
    thread = threading.Thread(target=lambda: seen.append(dict(bound_fields())))
    thread.start()
    thread.join()
    clear_bound()
    assert seen == [{}]


def test_a_thousand_concurrent_tasks_and_threads_never_see_anothers_fields(
    collected: Any,
) -> None:
    """1,000 asyncio tasks (bind) and 1,000 pool jobs (bound) log interleaved; zero records leak."""
    logger, handler = collected
    start = asyncio.Event()

    async def request(number: int) -> None:
        bind(request_id=f"task-{number}", kind="task")
        await start.wait()  # every task has bound before any logs: maximal interleaving
        for step in range(3):
            logger.info("step", extra={"expected": f"task-{number}", "step": step})
            await asyncio.sleep(0)

    def job(number: int, barrier: threading.Barrier) -> None:
        with bound(request_id=f"thread-{number}", kind="thread"):
            if number < barrier.parties:
                barrier.wait(timeout=30)  # the first jobs run all at once
            for step in range(3):
                logger.info("step", extra={"expected": f"thread-{number}", "step": step})
        logger.info("after", extra={"expected": None})  # the reused pool thread carries nothing

    async def main() -> None:
        tasks = [asyncio.create_task(request(n)) for n in range(CONCURRENT)]
        await asyncio.sleep(0)
        start.set()
        await asyncio.gather(*tasks)

    workers = 16
    barrier = threading.Barrier(workers)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(job, n, barrier) for n in range(CONCURRENT)]
        asyncio.run(main())
        for future in futures:
            future.result(timeout=60)

    records = handler.parsed()
    assert len(records) == CONCURRENT * 3 + CONCURRENT * 4
    leaked = [r for r in records if r.get("request_id") != r.get("expected")]
    assert leaked == []
    assert {r.get("kind") for r in records} == {"task", "thread", None}
