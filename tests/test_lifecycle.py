"""Nothing is lost when a process is stopped the way real processes are, and nothing hangs.

Each scenario of `lifecycle_scenarios` runs as its own Python process against the moto server:
SIGTERM as ``docker stop`` and Kubernetes send it, ``with Pool()``, ``Process.terminate()``,
``ProcessPoolExecutor``, a fork made below Python, and logging reconfigured right after logging.
The tests assert what arrived, how the process ended (by the signal where one was sent), and how
long it took to end.
"""

from __future__ import annotations

import signal
import sys
from collections import Counter
from collections.abc import Iterator

import pytest
from fault_proxy import FaultProxy, fault_proxy

from bench.lifecycle import ScenarioRun, numbered
from bench.lifecycle import arrived as arrived_with
from local_aws.moto_endpoint import MotoEndpoint

pytestmark = pytest.mark.slow

RECORDS = 3000
TASKS, PER_TASK = 8, 250


class Scenario(ScenarioRun):
    """A scenario process whose failures (no line, a hang) fail the test."""

    def wait_for(self, text: str, timeout_s: float = 60.0) -> None:
        try:
            super().wait_for(text, timeout_s)
        except Exception as error:
            pytest.fail(str(error))

    def end(self, timeout_s: float = 60.0) -> tuple[int, float]:
        try:
            return super().end(timeout_s)
        except Exception as error:
            pytest.fail(str(error))


def signalled(name: str, url: str, *, times: int = 1) -> tuple[Scenario, int, float]:
    """Run scenario ``name`` until it is ready, send SIGTERM ``times`` times, wait for its end."""
    run = Scenario(name, url)
    run.wait_for("ready")
    for _ in range(times):
        run.signal()
    code, took = run.end()
    return run, code, took


def named_figures(line: str) -> dict[str, str]:
    """The ``name=value`` items of a line a scenario printed (other words are skipped)."""
    return dict(item.split("=", 1) for item in line.split() if "=" in item)


def arrived(moto: MotoEndpoint, group: str) -> Counter[str]:
    """Count every message the endpoint holds for ``group``, across its streams."""
    return arrived_with(moto.logs_client(), group)


expect = numbered


def missing(want: Counter[str], got: Counter[str]) -> int:
    return sum((want - got).values())


def duplicated(got: Counter[str]) -> int:
    return sum(n - 1 for n in got.values() if n > 1)


@pytest.fixture
def proxy(moto_server: MotoEndpoint) -> Iterator[FaultProxy]:
    """A fault proxy in front of the moto server, for endpoints that stop answering."""
    with fault_proxy(moto_server.url) as running:
        yield running


def test_sigterm_delivers_then_ends_the_process_by_the_signal(moto_server: MotoEndpoint) -> None:
    """Records logged before SIGTERM arrive, and the process still ends by SIGTERM (-15)."""
    run, code, took = signalled("sigterm", moto_server.url)
    got = arrived(moto_server, run.group)
    print(f"measured: sigterm logged={RECORDS} delivered={sum(got.values())} rc={code} {took:.2f}s")
    assert code == -signal.SIGTERM, run.stderr()
    assert missing(expect("main", RECORDS), got) == 0
    assert duplicated(got) == 0


@pytest.mark.parametrize(
    "logged_before",
    [
        # Ctrl-C most likely lands in the first logging call, which starts the sender thread.
        pytest.param(0, id="first-call"),
        pytest.param(RECORDS, id="flat-out"),
    ],
)
def test_ctrl_c_while_logging_delivers_and_still_ends_by_sigint(
    moto_server: MotoEndpoint, logged_before: int
) -> None:
    """Ctrl-C (SIGINT) in a script that logs flat out: the KeyboardInterrupt lands wherever the
    main thread is, often inside a logging call. Every record whose call returned arrives once
    (the interrupted one may too), and the process still ends by SIGINT (-2; 130 in a shell), as
    Python ends a program left by an uncaught Ctrl-C, so a shell loop stops. Before, the exit's
    first request imported modules that make namedtuples, which cleared CPython's note of the
    interrupt (gh-128130): status 1, in every run; and an interrupt in the call that started the
    sender thread left that thread running unknown, so the exit sent beside it: the record twice
    (3 runs in 5)."""
    run = Scenario("ctrl-c", moto_server.url, str(logged_before))
    run.wait_for("ready")
    run.signal(signal.SIGINT)
    code, took = run.end()
    [logged] = [int(named_figures(line)["logged"]) for line in run.lines if "logged=" in line]
    got = arrived(moto_server, run.group)
    print(f"measured: ctrl-c logged={logged} delivered={sum(got.values())} rc={code} {took:.2f}s")
    assert code == -signal.SIGINT, run.stderr()
    assert missing(expect("main", logged), got) == 0
    assert duplicated(got) == 0, run.stderr()
    assert set(got) - set(expect("main", logged)) <= {f"main-{logged}"}  # the interrupted call


def test_a_logging_call_interrupted_as_it_starts_the_sender_loses_and_repeats_nothing(
    moto_server: MotoEndpoint,
) -> None:
    """The first logging call raises KeyboardInterrupt just after spawning the sender thread (as
    Ctrl-C can); the program catches it and logs on. Every record arrives once, and the handler
    reports nothing: one thread sends. Before, the spawned thread ran unknown to the handler,
    the next call started a second one, and both took the same batches ("pop from empty list")."""
    run = Scenario("interrupted-start", moto_server.url)
    code, _ = run.end()
    got = arrived(moto_server, run.group)
    assert code == 0, run.stderr()
    assert "interrupted" in run.lines
    assert got == expect("main", 1) + expect("after", 3 * 10_000), run.stderr()
    assert run.stderr() == ""


def test_a_flush_after_a_logging_call_interrupted_before_the_sender_started_delivers(
    moto_server: MotoEndpoint,
) -> None:
    """Ctrl-C inside the first logging call, before the sender thread was spawned, left the
    record queued and no sender: a program that caught the interrupt and called flush() (and
    logged nothing more) waited out the flush's whole timeout, and got False. The flush starts
    the sender now; the process then ends by the plain `posix._exit` (not the handler's
    `os._exit`, which delivers first), so only the flush can have sent it."""
    run = Scenario("interrupted-before-start", moto_server.url)
    code, _ = run.end()
    assert code == 0, run.stderr()
    assert run.lines[-2:] == ["interrupted", "flushed=True"], run.stderr()
    assert arrived(moto_server, run.group) == expect("main", 1)


def test_children_forked_for_one_job_that_end_by_os_exit_deliver_their_records(
    moto_server: MotoEndpoint,
) -> None:
    """``pid = os.fork()``; the child does its job and ends by ``os._exit(0)``, as RQ's work horse
    does (`tests/test_rq.py`), which skips ``atexit``: the child's records arrive, once, and so
    do the parent's, which ends by ``os._exit(0)`` too."""
    run = Scenario("fork-then-os-exit", moto_server.url)
    code, _ = run.end()
    assert code == 0, run.stderr()
    got = arrived(moto_server, run.group)
    assert got == expect("parent", PER_TASK) + expect("child0", PER_TASK) + expect(
        "child1", PER_TASK
    )


def test_os_exit_from_a_signal_handler_that_interrupted_a_logging_call_still_ends_the_process(
    moto_server: MotoEndpoint,
) -> None:
    """The delivery ``os._exit`` starts cannot begin while the calling thread holds the sender's
    lock: the process still ends, with the status asked for, within ``shutdown_timeout_s`` (1 s)
    and the second ``os._exit`` allows beyond it."""
    run = Scenario("os-exit-in-a-signal-handler", moto_server.url)
    code, took = run.end()
    print(f"measured: ended in {took:.2f}s")
    assert code == 3, run.stderr()
    assert took < 10.0  # 2 s of bounds, and the start of a Python process on a loaded host


@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param("sigterm-main-thread-joins", id="as-it-comes"),
        pytest.param("sigterm-main-thread-joins-first-wake-up-lost", id="first-wake-up-lost"),
    ],
)
def test_sigterm_ends_a_service_whose_main_thread_waits_in_join(
    moto_server: MotoEndpoint, scenario: str
) -> None:
    """A main thread asleep in ``worker.join()`` still ends by SIGTERM once the worker's records
    are delivered, also when the delivery thread's first signal back to it wakes nothing (it
    landed just before the thread went back to sleep: a ``with Pool()`` worker hung so)."""
    run, code, took = signalled(scenario, moto_server.url)
    got = arrived(moto_server, run.group)
    print(f"measured: {scenario} rc={code} {took:.2f}s")
    assert code == -signal.SIGTERM, run.stderr()
    assert missing(expect("worker", RECORDS), got) == 0
    assert duplicated(got) == 0


def test_sigterm_on_another_thread_still_ends_a_main_thread_waiting_in_join(
    moto_server: MotoEndpoint,
) -> None:
    """A SIGTERM whose Python handler is marked while the main thread sleeps in an untimed wait
    (here it landed on another thread) is still handled: records delivered, the process ended
    by the signal, within seconds rather than never."""
    run = Scenario("sigterm-to-another-thread", moto_server.url)
    run.wait_for("ready")
    code, took = run.end(timeout_s=20.0)
    got = arrived(moto_server, run.group)
    print(f"measured: sigterm on another thread rc={code} {took:.2f}s")
    assert code == -signal.SIGTERM, run.stderr()
    assert missing(expect("worker", RECORDS), got) == 0
    assert duplicated(got) == 0


def test_sigterm_twice_ends_once_with_everything_delivered(moto_server: MotoEndpoint) -> None:
    """A second SIGTERM while delivering neither cuts the delivery short nor raises."""
    run, code, _ = signalled("sigterm", moto_server.url, times=2)
    got = arrived(moto_server, run.group)
    assert code == -signal.SIGTERM, run.stderr()
    assert missing(expect("main", RECORDS), got) == 0
    assert "Traceback" not in run.stderr()


def test_sigterm_with_a_handler_made_on_another_thread(moto_server: MotoEndpoint) -> None:
    """A handler made off the main thread still gets the hook, installed by the main thread."""
    run, code, _ = signalled("sigterm-handler-made-in-thread", moto_server.url)
    assert code == -signal.SIGTERM, run.stderr()
    assert missing(expect("thread", RECORDS), arrived(moto_server, run.group)) == 0


def test_sigterm_during_a_flush_on_a_stalled_endpoint(
    moto_server: MotoEndpoint, proxy: FaultProxy
) -> None:
    """SIGTERM while the main thread waits in flush(): delivered once the endpoint answers."""
    run = Scenario("sigterm-during-flush", proxy.url)
    run.wait_for("ready")
    proxy.blackhole()
    assert proxy.wait_open(1), "the sender never reached the blackholed endpoint"
    run.signal()
    proxy.restore()
    code, took = run.end()
    got = arrived(moto_server, run.group)
    print(f"measured: sigterm during flush rc={code} {took:.2f}s")
    assert code == -signal.SIGTERM, run.stderr()
    assert missing(expect("main", RECORDS), got) == 0


def test_sigterm_while_the_interpreter_exits(moto_server: MotoEndpoint, proxy: FaultProxy) -> None:
    """SIGTERM during the exit's own delivery: it completes, then the signal ends the process."""
    proxy.blackhole()
    run = Scenario("sigterm-at-exit", proxy.url)
    run.wait_for("ready")
    assert proxy.wait_open(1), "the exit's delivery never reached the blackholed endpoint"
    run.signal()
    proxy.restore()
    code, _ = run.end()
    assert code == -signal.SIGTERM, run.stderr()
    assert missing(expect("main", RECORDS), arrived(moto_server, run.group)) == 0


def test_sigterm_with_zero_shutdown_timeout_ends_at_once(moto_server: MotoEndpoint) -> None:
    """With shutdown_timeout_s=0 the signal ends the process at once; what waited is reported."""
    run, code, took = signalled("sigterm-zero-timeout", moto_server.url)
    assert code == -signal.SIGTERM
    assert took < 10.0, took  # no delivery to wait for; far below any shutdown timeout here
    assert "could not be delivered within shutdown_timeout_s=0" in run.stderr()


def test_sigterm_opt_out_keeps_the_default(moto_server: MotoEndpoint) -> None:
    """handle_sigterm=False leaves SIGTERM's default: the process ends at once, nothing sent."""
    run, code, _ = signalled("sigterm-opted-out", moto_server.url)
    assert code == -signal.SIGTERM
    assert sum(arrived(moto_server, run.group).values()) == 0


@pytest.mark.parametrize("when", ["before", "after"])
def test_sigterm_handler_of_the_application_is_never_replaced(
    moto_server: MotoEndpoint, when: str
) -> None:
    """The application's SIGTERM handler (set before or after ours) runs; its exit delivers."""
    run, code, _ = signalled(f"sigterm-app-handler-{when}", moto_server.url)
    got = arrived(moto_server, run.group)
    assert code == 0, run.stderr()  # the application's handler exits normally
    assert missing(expect("main", RECORDS) + expect("graceful", 10), got) == 0


METHODS = ["fork", "spawn", "forkserver"]


def task_records() -> Counter[str]:
    return sum((expect(f"task{n}", PER_TASK) for n in range(TASKS)), Counter())


def pool_run(moto: MotoEndpoint, scenario: str, method: str) -> Scenario:
    """Run a pool scenario to its end; assert it ended well and delivered every task's record and
    the parent's, once each."""
    run = Scenario(scenario, moto.url, method)
    code, took = run.end()
    got = arrived(moto, run.group)
    want = task_records() + expect("parent", 10)
    print(f"measured: {scenario} {method}: missing={missing(want, got)} {took:.2f}s")
    assert code == 0, run.stderr()
    assert missing(want, got) == 0
    assert duplicated(got) == 0
    return run


@pytest.mark.parametrize("method", METHODS)
def test_with_pool_delivers_the_workers_records(moto_server: MotoEndpoint, method: str) -> None:
    """``with Pool() as pool: pool.map(...)`` (its exit terminates the workers) loses nothing."""
    pool_run(moto_server, "pool-with", method)


@pytest.mark.parametrize("method", METHODS)
def test_a_pool_whose_workers_end_after_each_task_delivers_every_workers_records(
    moto_server: MotoEndpoint, method: str
) -> None:
    """``Pool(2, maxtasksperchild=1)``: each worker exits on its own after one task, while the
    program runs on, and the pool starts the next; nothing any of them logged is lost."""
    run = pool_run(moto_server, "pool-max-tasks", method)
    assert f"worker-processes {TASKS}" in run.lines, run.lines  # a process per task


@pytest.mark.skipif(sys.version_info < (3, 11), reason="max_tasks_per_child came in Python 3.11")
def test_an_executor_whose_workers_end_after_each_task_delivers_every_workers_records(
    moto_server: MotoEndpoint,
) -> None:
    """``ProcessPoolExecutor(2, max_tasks_per_child=1)``: the same, its workers spawned."""
    run = pool_run(moto_server, "executor-max-tasks", "spawn")
    assert f"worker-processes {TASKS}" in run.lines, run.lines


@pytest.mark.parametrize("method", METHODS)
def test_process_terminate_delivers_the_idle_workers_records(
    moto_server: MotoEndpoint, method: str
) -> None:
    """``Process.terminate()`` on a worker that logged and went idle loses nothing."""
    run = Scenario("process-terminate", moto_server.url, method)
    code, _ = run.end()
    got = arrived(moto_server, run.group)
    assert code == 0, run.stderr()
    assert f"child-exitcode {-signal.SIGTERM}" in run.lines, run.lines
    assert missing(expect("child", RECORDS) + expect("parent", 10), got) == 0
    assert duplicated(got) == 0


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("idiom", ["executor-with", "executor-shutdown"])
def test_process_pool_executor_delivers_the_workers_records(
    moto_server: MotoEndpoint, idiom: str, method: str
) -> None:
    """ProcessPoolExecutor, left by ``with`` or by ``shutdown()``, loses nothing."""
    pool_run(moto_server, idiom, method)


def test_fork_below_python_starts_its_own_sender(moto_server: MotoEndpoint) -> None:
    """A child made by libc's fork() delivers its records and never resends its parent's."""
    run = Scenario("c-fork", moto_server.url)
    code, _ = run.end()
    got = arrived(moto_server, run.group)
    want = expect("parent-before", 500) + expect("child", 500) + expect("parent-after", 500)
    assert code == 0, run.stderr()
    assert missing(want, got) == 0
    assert duplicated(got) == 0, "the child resent what its parent had queued"


def test_a_fork_while_the_sender_imports_boto3_leaves_the_child_a_whole_boto3(
    moto_server: MotoEndpoint,
) -> None:
    """os.fork() while the sender imports boto3 for its first client: the fork waits for the
    client, so the child does not inherit a half-imported boto3 (``partially initialized
    module``, every delivery failing) and delivers its records, once."""
    run = Scenario("fork-during-client-build", moto_server.url)
    code, _ = run.end()
    assert code == 0, run.stderr()
    assert "partially initialized" not in run.stderr()
    got = arrived(moto_server, run.group)
    want = expect("parent-before", 10) + expect("child", 200) + expect("parent-after", 10)
    assert missing(want, got) == 0, run.stderr()
    assert duplicated(got) == 0


@pytest.mark.parametrize("lock", ["free", "held"])
def test_a_child_forked_below_python_that_never_logs_leaves_at_once(
    moto_server: MotoEndpoint, lock: str
) -> None:
    """A child made by libc's fork() that logs nothing (a uWSGI worker that served no request),
    even one forked while a parent's thread held the sender's lock: its flush() and its exit
    return at once, it reports no loss of its parent's records, and the parent delivers them."""
    run = Scenario("c-fork-quiet-child", moto_server.url, lock)
    code, _ = run.end()
    assert code == 0, run.stderr()
    assert "child flushed=True queued=0" in run.lines, run.lines
    [child] = [line for line in run.lines if line.startswith("child exit=")]
    figures = named_figures(child)
    print(f"measured: quiet child ({lock} lock) {child}")
    assert figures["exit"] == "0"
    # Waiting for the parent's sender, the child would take shutdown_timeout_s (30 s) twice.
    assert float(figures["took"]) < 30.0
    assert "could not be delivered" not in run.stderr()
    got = arrived(moto_server, run.group)
    assert missing(expect("parent", 500), got) == 0
    assert duplicated(got) == 0


def test_the_records_of_a_uwsgi_master_arrive_once_through_its_workers(
    moto_server: MotoEndpoint,
) -> None:
    """In a uWSGI master (a stand-in `uwsgi` module; workers made by libc's fork()) no sender
    thread runs, so none can hold the GIL when a worker is forked, and flush() returns at once.
    Its records arrive exactly once, though four workers inherit them: the first sends those it
    logged before the first fork, and of the two forked later, back to back, exactly one sends
    those it logged since; the records logged before the last worker, which logs nothing, arrive
    from its exit (where Python 3.12 starts no thread: it sends them on its exiting thread).
    Every worker's own records arrive, and every worker exits 0."""
    run = Scenario("uwsgi-master", moto_server.url)
    code, took = run.end()
    assert code == 0, run.stderr()
    [master] = [line for line in run.lines if line.startswith("master ")]
    figures = named_figures(master)
    print(f"measured: uwsgi master {master}; whole run {took:.1f}s")
    assert figures["senders"] == "0"
    assert figures["flushed"] == "False"
    assert float(figures["took"]) < 1.0
    assert [line for line in run.lines if line.startswith("worker ")] == ["worker exit=0"] * 4
    assert "aws_cloudwatch_logs_handler" not in run.stderr()
    got = arrived(moto_server, run.group)
    want = expect("master-loading", 300) + expect("master-later", 50) + expect("master-last", 20)
    want += expect("first", 100) + expect("second", 100)
    assert got == want


@pytest.mark.parametrize("kind", ["dictConfig", "fileConfig", "basicConfig"])
def test_reconfiguring_while_logging_never_deadlocks(moto_server: MotoEndpoint, kind: str) -> None:
    """100 reconfigurations in a row while 4 threads log: each returns at once, and every record
    any of the 100 handlers accepted arrives (logging itself routes a record to no handler while
    it swaps them, which no handler can see)."""
    run = Scenario("reconfigure", moto_server.url, kind, "100", "4")
    code, took = run.end()
    assert code == 0, run.stderr()
    figures = named_figures(run.lines[-1])
    print(f"measured: {kind} x100 {run.lines[-1]} process {took:.1f}s")
    assert figures["settled"] == "True"
    assert int(figures["dropped"]) == 0
    assert int(figures["delivered"]) == int(figures["accepted"])
    assert float(figures["longest_call_s"]) < 1.0  # no wait for the sender under logging's lock
    got = arrived(moto_server, run.group)
    assert sum(got.values()) == int(figures["accepted"])
    assert missing(expect("main", 100), got) == 0  # logged between reconfigurations
    assert duplicated(got) == 0


@pytest.mark.parametrize("call", ["dictConfig", "fileConfig", "basicConfig", "shutdown"])
@pytest.mark.parametrize("fault", ["refused", "blackhole"])
def test_reconfiguring_with_a_dead_endpoint_returns_within_the_bound(
    proxy: FaultProxy, call: str, fault: str
) -> None:
    """With nobody answering, dictConfig, fileConfig, basicConfig(force=True) and
    logging.shutdown() return within shutdown_timeout_s (1 s here), and the waiting records are
    still counted as queued."""
    if fault == "refused":
        proxy.cut()
    else:
        proxy.blackhole()
    run = Scenario("reconfigure-dead-endpoint", proxy.url, call)
    code, _ = run.end()
    assert code == 0, run.stderr()
    figures = named_figures(run.lines[-1])
    assert float(figures["call_s"]) < 1.0 + 1.0  # the 1 s bound, and scheduling on 2 cores
    assert int(figures["queued"]) == 100
