"""Programs as users write them, each ended the way real processes end.

Run by `bench.lifecycle` (beside watchtower) and tests/test_lifecycle.py as
``python lifecycle_scenarios.py SCENARIO ENDPOINT_URL LOG_GROUP``; with
``SCENARIO_HANDLER=watchtower`` in the environment it uses watchtower's handler instead of ours.
Each scenario logs numbered records whose messages say who logged them, prints ``ready`` when
the test may act (send a signal), and ends however the scenario says. The test then counts what
the endpoint holds.
Nothing here calls ``flush()`` or ``close()`` unless the scenario is about them.
"""

from __future__ import annotations

import faulthandler
import logging
import logging.config
import multiprocessing
import os
import posix
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import Pool, Process, SimpleQueue
from typing import Any

from aws_cloudwatch_logs_handler import CloudWatchLogsHandler

LOGGER = "scenario"
RECORDS = 3000
TASKS, PER_TASK = 8, 250
WAIT_LIMIT_S = 60.0
"""No scenario waits longer than this for a signal: a broken test must not leave a process."""
DUMP_STACKS = signal.SIGUSR2
"""Asks a scenario's process for its threads' stacks (on standard error), before a hung run
is killed."""


def make_handler(url: str, group: str, **options: object) -> Any:
    """A handler that sends nothing on its own before exit (a long flush interval)."""
    if os.environ.get("SCENARIO_HANDLER") == "watchtower":
        return _watchtower(url, group)
    options.setdefault("flush_interval_s", 60.0)
    return CloudWatchLogsHandler(group, endpoint_url=url, region="us-east-1", **options)  # type: ignore[arg-type]


def _watchtower(url: str, group: str) -> Any:
    import boto3
    import watchtower

    client = boto3.client("logs", endpoint_url=url, region_name="us-east-1")
    return watchtower.CloudWatchLogHandler(
        log_group_name=group, boto3_client=client, send_interval=60
    )


def setup(url: str, group: str, **options: object) -> Any:
    handler = make_handler(url, group, **options)
    log = logging.getLogger(LOGGER)
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    return handler


def log_records(name: str, count: int) -> None:
    log = logging.getLogger(LOGGER)
    for i in range(count):
        log.info("%s-%d", name, i)


def ready() -> None:
    print("ready", flush=True)


def wait_for_signal() -> None:
    """Idle as a service does between requests: a bounded sleep loop on the main thread."""
    deadline = time.monotonic() + WAIT_LIMIT_S
    while time.monotonic() < deadline:
        time.sleep(0.05)
    raise SystemExit("no signal came")


# ------------------------------------------------------------------------------------------
# Ctrl-C in a script that is logging: the KeyboardInterrupt lands wherever the main thread is,
# most likely inside a logging call.


def ctrl_c(url: str, group: str, logged_before: int) -> None:
    """Log ``logged_before`` records, say ``ready``, then log flat out until Ctrl-C; say how
    many logging calls returned."""
    setup(url, group)
    log = logging.getLogger(LOGGER)
    log_records("main", logged_before)
    logged = logged_before
    try:
        ready()
        deadline = time.monotonic() + WAIT_LIMIT_S
        while time.monotonic() < deadline:
            log.info("main-%d", logged)
            logged += 1
    finally:  # the interrupt may come after a call returned and before this count: one more
        print(f"logged={logged}", flush=True)


def _first_call_interrupted_in_start(url: str, group: str, *, spawned: bool) -> Any:
    """Set up, then log one record whose call Ctrl-C interrupts inside `Thread.start` as it
    starts the sender thread: just after the thread was ``spawned``, or just before. The
    program catches the KeyboardInterrupt (said as "interrupted"); returns the handler."""
    start = threading.Thread.start

    def start_interrupted(thread: threading.Thread) -> None:
        threading.Thread.start = start  # type: ignore[method-assign]  # once
        if spawned:
            start(thread)
        raise KeyboardInterrupt

    threading.Thread.start = start_interrupted  # type: ignore[method-assign,assignment]
    handler = setup(url, group)
    try:
        log_records("main", 1)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    return handler


def interrupted_start(url: str, group: str) -> None:
    """The first logging call is interrupted just after it spawned the sender thread; the
    program logs on, then exits."""
    _first_call_interrupted_in_start(url, group, spawned=True)
    log_records("after", 3 * 10_000)  # three batches: two senders would take them at once


def interrupted_before_start(url: str, group: str) -> None:
    """The first logging call is interrupted before the sender thread was spawned; the program,
    logging nothing more, flushes: the flush starts the sender."""
    handler = _first_call_interrupted_in_start(url, group, spawned=False)
    print(f"flushed={handler.flush(timeout_s=20.0)}", flush=True)
    posix._exit(0)  # the flush alone delivers: not the exit hook, nor our `os._exit`


# ------------------------------------------------------------------------------------------
# os._exit, which skips atexit: a process forked for one job ends by it (RQ's work horse).


def fork_then_os_exit(url: str, group: str) -> None:
    """A parent forks a child per job, as RQ's worker does; each child logs its job's records
    and ends by ``os._exit(0)``, and so, at last, does the parent."""
    setup(url, group)
    log_records("parent", PER_TASK)
    for number in range(2):
        pid = os.fork()
        if pid == 0:
            log_records(f"child{number}", PER_TASK)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
    os._exit(0)


def os_exit_in_a_signal_handler(url: str, group: str) -> None:
    """A signal handler ends the process by ``os._exit(3)`` while its thread holds the sender's
    lock: the handler ran between two bytecodes of a logging call, modelled here by taking the
    lock (a logging call holds it for microseconds, too short to aim a signal at)."""
    from aws_cloudwatch_logs_handler._sender import SENDER

    setup(url, group, shutdown_timeout_s=1.0)
    log_records("main", 10)
    signal.signal(signal.SIGALRM, lambda signum, frame: os._exit(3))
    SENDER._lock_of_this_process().acquire()  # the model above
    signal.raise_signal(signal.SIGALRM)


# ------------------------------------------------------------------------------------------
# SIGTERM to a single process.


def sigterm(url: str, group: str) -> None:
    setup(url, group)
    log_records("main", RECORDS)
    ready()
    wait_for_signal()


def sigterm_handler_made_in_thread(url: str, group: str) -> None:
    """The handler is made, and every record logged, on a thread other than the main one."""

    def set_up_and_log() -> None:
        setup(url, group)
        log_records("thread", RECORDS)

    worker = threading.Thread(target=set_up_and_log)
    worker.start()
    worker.join()
    deadline = time.monotonic() + WAIT_LIMIT_S
    while signal.getsignal(signal.SIGTERM) == signal.SIG_DFL and time.monotonic() < deadline:
        time.sleep(0.01)  # the main thread runs again: the hook's pending install happens now
    ready()
    wait_for_signal()


def sigterm_during_flush(url: str, group: str) -> None:
    """The signal arrives while the main thread waits in flush() on a slow endpoint."""
    handler = setup(url, group, shutdown_timeout_s=30.0)
    log_records("main", RECORDS)
    ready()
    deadline = time.monotonic() + WAIT_LIMIT_S
    while time.monotonic() < deadline:
        log_records("during", 10)
        handler.flush(5.0)
    raise SystemExit("no signal came")


def sigterm_at_exit(url: str, group: str) -> None:
    """The signal arrives while the interpreter exits and delivers through a slow endpoint."""
    setup(url, group, shutdown_timeout_s=30.0)
    log_records("main", RECORDS)
    ready()
    # Falls off the end: the exit hook delivers while the test's SIGTERM arrives.


def sigterm_main_thread_joins(url: str, group: str, *, first_wake_up_lost: bool = False) -> None:
    """A service whose main thread starts a worker thread, which logs, and waits in ``join()``:
    the main thread sleeps in C (a lock's wait) when the signal comes."""
    if first_wake_up_lost:
        _lose_the_first_wake_up()
    _main_thread_joins_a_worker(url, group, then=lambda: None)


def sigterm_to_another_thread(url: str, group: str) -> None:
    """SIGTERM lands on another thread while the main thread waits in ``join()``: CPython's C
    handler runs there and marks the Python handler, but nothing cuts the main thread's wait
    short. The same state as a signal that lands just before the main thread blocks (a
    ``with Pool()`` worker going back to wait for a task as ``terminate()`` signals it)."""
    _main_thread_joins_a_worker(
        url, group, then=lambda: signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
    )


def _main_thread_joins_a_worker(url: str, group: str, *, then: Callable[[], None]) -> None:
    """Set up; a worker thread logs, says ``ready``, calls ``then`` and idles (boundedly),
    while the main thread waits for it in ``join()``."""
    setup(url, group)
    stop = threading.Event()

    def serve() -> None:
        log_records("worker", RECORDS)
        ready()
        then()
        stop.wait(WAIT_LIMIT_S)

    worker = threading.Thread(target=serve, daemon=True)
    worker.start()
    worker.join()
    raise SystemExit("no signal came")


def _lose_the_first_wake_up() -> None:
    """Model the race `_lifecycle.SigtermDelivery._wake_main_thread_to_end` closes: the delivery
    thread's signal reaches the main thread after its last check for signals and before it
    blocks again, so it wakes nothing. Here the first such signal is simply never sent."""
    send = signal.pthread_kill
    lost: list[int] = []

    def pthread_kill(thread_id: int, signalnum: int) -> None:
        if signalnum == signal.SIGTERM and not lost:
            lost.append(thread_id)
            return
        send(thread_id, signalnum)

    signal.pthread_kill = pthread_kill


def sigterm_zero_timeout(url: str, group: str) -> None:
    setup(url, group, shutdown_timeout_s=0)
    log_records("main", RECORDS)
    ready()
    wait_for_signal()


def sigterm_opted_out(url: str, group: str) -> None:
    setup(url, group, handle_sigterm=False)
    log_records("main", RECORDS)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    ready()
    wait_for_signal()


def _graceful_exit(signum: int, frame: object) -> None:
    log_records("graceful", 10)
    sys.exit(0)


def sigterm_app_handler_before(url: str, group: str) -> None:
    signal.signal(signal.SIGTERM, _graceful_exit)
    setup(url, group)
    assert signal.getsignal(signal.SIGTERM) is _graceful_exit
    log_records("main", RECORDS)
    ready()
    wait_for_signal()


def sigterm_app_handler_after(url: str, group: str) -> None:
    setup(url, group)
    signal.signal(signal.SIGTERM, _graceful_exit)
    make_handler(url, group)  # a handler made later must not take the signal back
    assert signal.getsignal(signal.SIGTERM) is _graceful_exit
    log_records("main", RECORDS)
    ready()
    wait_for_signal()


# ------------------------------------------------------------------------------------------
# multiprocessing: the idioms of Python's documentation, verbatim.


def task(number: int) -> int:
    log_records(f"task{number}", PER_TASK)
    return os.getpid()


def child_main(url: str, group: str, spawned: bool) -> None:
    if spawned:
        setup(url, group)
    log_records("child", RECORDS)
    print("child-ready", flush=True)
    wait_for_signal()


# The start method is chosen once, in main(), with multiprocessing.set_start_method, as Python's
# documentation shows; the idioms below are then written exactly as users write them.


def pool_with(url: str, group: str, method: str) -> None:
    """``with Pool() as pool: pool.map(...)``: leaving the block terminates the workers."""
    setup(url, group)
    initializer = setup if method != "fork" else None
    with Pool(initializer=initializer, initargs=(url, group)) as pool:
        pool.map(task, range(TASKS))
    log_records("parent", 10)


def pool_max_tasks(url: str, group: str, method: str) -> None:
    """``Pool(maxtasksperchild=1)``: each worker ends (by its own exit, not a signal) after
    one task, and the pool starts another; the records of every worker that ended must land."""
    setup(url, group)
    initializer = setup if method != "fork" else None
    with Pool(2, initializer=initializer, initargs=(url, group), maxtasksperchild=1) as pool:
        pids = pool.map(task, range(TASKS), chunksize=1)
    print("worker-processes", len(set(pids)), flush=True)
    log_records("parent", 10)


def executor_max_tasks(url: str, group: str, method: str) -> None:
    """``ProcessPoolExecutor(max_tasks_per_child=1)`` (Python 3.11 and later): each worker
    exits after one task, and the executor starts another. Without a context of the user's,
    its workers are spawned, whatever the start method."""
    setup(url, group)
    with ProcessPoolExecutor(
        2, initializer=setup, initargs=(url, group), max_tasks_per_child=1
    ) as executor:
        pids = list(executor.map(task, range(TASKS)))
    print("worker-processes", len(set(pids)), flush=True)
    log_records("parent", 10)


def process_terminate(url: str, group: str, method: str) -> None:
    """``Process.terminate()`` on a worker that logged and went idle."""
    setup(url, group)
    ready_queue: SimpleQueue[str] = SimpleQueue()
    process = Process(target=_child_then_report, args=(url, group, method, ready_queue))
    process.start()
    ready_queue.get()
    process.terminate()
    process.join(WAIT_LIMIT_S)
    print("child-exitcode", process.exitcode, flush=True)
    log_records("parent", 10)


def _child_then_report(url: str, group: str, method: str, ready_queue: SimpleQueue[str]) -> None:
    if method != "fork":
        setup(url, group)
    log_records("child", RECORDS)
    ready_queue.put("ready")
    wait_for_signal()


def executor_with(url: str, group: str, method: str) -> None:
    """``with ProcessPoolExecutor() as executor: executor.map(...)``."""
    setup(url, group)
    initializer: Any = setup if method != "fork" else None
    with ProcessPoolExecutor(initializer=initializer, initargs=(url, group)) as executor:
        list(executor.map(task, range(TASKS)))
    log_records("parent", 10)


def executor_shutdown(url: str, group: str, method: str) -> None:
    """``executor.shutdown()`` called explicitly."""
    setup(url, group)
    initializer: Any = setup if method != "fork" else None
    executor = ProcessPoolExecutor(initializer=initializer, initargs=(url, group))
    list(executor.map(task, range(TASKS)))
    executor.shutdown()
    log_records("parent", 10)


# ------------------------------------------------------------------------------------------
# A fork below Python's hooks (uWSGI's workers do this).


def libc_fork() -> int:
    """fork() called from C, as uWSGI forks its workers: no Python fork hook runs."""
    import ctypes

    return int(ctypes.PyDLL(None).fork())  # PyDLL keeps the GIL, as a C server's fork does


def c_fork(url: str, group: str) -> None:
    setup(url, group)
    log_records("parent-before", 500)  # queued, unsent, when the child is made
    pid = libc_fork()
    if pid == 0:
        log_records("child", 500)
        sys.exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    log_records("parent-after", 500)


def c_fork_quiet_child(url: str, group: str, lock: str) -> None:
    """A child made below Python that logs nothing, flushes, and exits: a uWSGI worker that
    served no request. It has nothing of its own to wait for: its parent's records are its
    parent's. With ``lock`` "held", a thread of the parent held the sender's lock at the fork,
    as the sender thread does while it takes a batch."""
    from aws_cloudwatch_logs_handler._sender import SENDER

    handler = setup(url, group, shutdown_timeout_s=30.0)
    log_records("parent", 500)  # queued, unsent, when the child is made
    held = SENDER._lock if lock == "held" else None  # the state a fork copies
    if held is not None:
        held.acquire()
    started = time.monotonic()
    pid = libc_fork()
    if pid == 0:
        flushed = handler.flush(timeout_s=30.0)
        print(f"child flushed={flushed} queued={handler.stats().events_queued}", flush=True)
        sys.exit(0)  # a normal exit: the exit hook runs
    if held is not None:
        held.release()
    _, status = os.waitpid(pid, 0)
    took = time.monotonic() - started
    print(f"child exit={os.waitstatus_to_exitcode(status)} took={took:.2f}", flush=True)


def uwsgi_master(url: str, group: str) -> None:
    """A uWSGI master as its workers meet it: it loads the application (which logs), then forks
    its workers from C, and runs no Python, and no exit hook, itself. A first worker; then, once
    the master logged some more, two forked back to back, one of which logs nothing (it served
    no request); then, after a few more, one that logs nothing. Each worker ends by a normal
    exit, as uWSGI's do."""
    import types

    master = os.getpid()
    # What uWSGI's embedded module tells the handler in the master (and, inherited, in workers).
    uwsgi = types.ModuleType("uwsgi")
    uwsgi.masterpid = lambda: master  # type: ignore[attr-defined]
    uwsgi.has_threads = 1  # type: ignore[attr-defined]
    sys.modules["uwsgi"] = uwsgi
    handler = setup(url, group, flush_interval_s=0.2)
    log_records("master-loading", 300)
    senders = [t for t in threading.enumerate() if t.name == "cloudwatch-logs-sender"]
    started = time.monotonic()
    flushed = handler.flush(timeout_s=30.0)
    took = time.monotonic() - started
    print(f"master senders={len(senders)} flushed={flushed} took={took:.3f}", flush=True)
    _reap(_uwsgi_worker("first", 100))
    log_records("master-later", 50)
    _reap(_uwsgi_worker("second", 100), _uwsgi_worker("quiet", 0))
    log_records("master-last", 20)
    _reap(_uwsgi_worker("last", 0))  # claims them at its exit, where Python 3.12 starts no thread


def _uwsgi_worker(name: str, records: int) -> int:
    pid = libc_fork()
    if pid == 0:
        log_records(name, records)
        sys.exit(0)  # a normal exit: the exit hook delivers
    return pid


def _reap(*pids: int) -> None:
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        print(f"worker exit={os.waitstatus_to_exitcode(status)}", flush=True)


def fork_during_client_build(url: str, group: str) -> None:
    """``os.fork()`` just as the sender starts building its first client (importing boto3, in
    its own thread), as a program that logs a line and then starts its workers may: the child
    delivers its own records, and the parent its own."""
    setup(url, group, flush_interval_s=0.05)  # the sender starts building its client at once
    log_records("parent-before", 10)
    deadline = time.monotonic() + WAIT_LIMIT_S
    while "boto3" not in sys.modules and time.monotonic() < deadline:
        time.sleep(0.0005)  # until the sender's import of boto3 has begun
    assert "boto3" in sys.modules, "the sender never began to import boto3"
    pid = os.fork()
    if pid == 0:
        log_records("child", 200)
        sys.exit(0)  # a normal exit: the exit hook delivers
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    log_records("parent-after", 10)


# ------------------------------------------------------------------------------------------
# Logging reconfigured right after logging.


def file_config(url: str, group: str) -> str:
    """Write the INI file `logging.config.fileConfig` reads; return its path."""
    import tempfile

    ini = f"""
[loggers]
keys=root

[handlers]
keys=cloudwatch

[formatters]
keys=

[logger_root]
level=INFO
handlers=cloudwatch

[handler_cloudwatch]
class=aws_cloudwatch_logs_handler.CloudWatchLogsHandler
args=({group!r},)
kwargs={{"endpoint_url": {url!r}, "region": "us-east-1", "flush_interval_s": 60.0,
    "shutdown_timeout_s": 2.0}}
"""
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as file:
        file.write(ini)
    return file.name


def reconfigure(url: str, group: str, kind: str, rounds: int, threads: int) -> None:
    """Reconfigure ``rounds`` times while ``threads`` threads log; print each handler's figures."""
    made: list[CloudWatchLogsHandler] = []

    def config() -> dict[str, object]:
        return {
            "version": 1,
            "disable_existing_loggers": False,
            "handlers": {
                "cloudwatch": {
                    "()": make_handler,
                    "url": url,
                    "group": group,
                    "shutdown_timeout_s": 2.0,
                }
            },
            "root": {"level": "INFO", "handlers": ["cloudwatch"]},
        }

    stop = threading.Event()
    counts = [0] * threads

    def keep_logging(number: int) -> None:
        log = logging.getLogger(f"worker{number}")
        while not stop.is_set():
            log.info("worker%d-%d", number, counts[number])
            counts[number] += 1

    def configure() -> float:
        began = time.monotonic()
        if kind == "dictConfig":
            logging.config.dictConfig(config())
        elif kind == "fileConfig":  # keeping the loggers, as the dictConfig above does
            logging.config.fileConfig(file_config(url, group), disable_existing_loggers=False)
        else:
            handler = make_handler(url, group)
            logging.basicConfig(
                force=True, level=logging.INFO, handlers=[handler], format="%(message)s"
            )
        made.append(logging.getLogger().handlers[0])  # type: ignore[arg-type]
        return time.monotonic() - began

    configure()
    workers = [threading.Thread(target=keep_logging, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    started = time.monotonic()
    longest = 0.0
    for round_number in range(rounds):
        logging.getLogger("main").warning("main-%d", round_number)  # then reconfigure at once
        longest = max(longest, configure())
    stop.set()
    for worker in workers:
        worker.join()
    took = time.monotonic() - started
    settled = all(handler.flush(60.0) for handler in made)
    stats = [handler.stats() for handler in made]
    accepted = sum(s.records_accepted for s in stats)
    delivered = sum(s.events_delivered for s in stats)
    dropped = sum(sum(s.dropped.values()) for s in stats)
    print(
        f"rounds={rounds} logged={sum(counts) + rounds} accepted={accepted} delivered={delivered} "
        f"dropped={dropped} settled={settled} longest_call_s={longest:.3f} total_s={took:.2f}",
        flush=True,
    )


def dictconfig_once(url: str, group: str) -> None:
    """A handler configured by dictConfig logs, and a second dictConfig replaces it at once."""
    config = {
        "version": 1,
        "handlers": {"cloudwatch": {"()": make_handler, "url": url, "group": group}},
        "root": {"level": "INFO", "handlers": ["cloudwatch"]},
    }
    logging.config.dictConfig(config)
    log_records("main", RECORDS)
    logging.config.dictConfig(config)


def reconfigure_dead_endpoint(url: str, group: str, call: str) -> None:
    """With records waiting and nobody answering, a reconfiguration returns within the bound."""
    handler = setup(url, group, shutdown_timeout_s=1.0)
    logging.getLogger().addHandler(handler)
    log_records("main", 100)
    began = time.monotonic()
    if call == "dictConfig":
        logging.config.dictConfig({"version": 1, "root": {"level": "INFO", "handlers": []}})
    elif call == "fileConfig":
        logging.config.fileConfig(file_config(url, group))
    elif call == "basicConfig":
        logging.basicConfig(force=True)
    else:
        logging.shutdown()
    took = time.monotonic() - began
    stats = handler.stats()
    print(f"call_s={took:.3f} queued={stats.events_queued}", flush=True)
    posix._exit(0)  # the figures are what counts; skip the exit delivery to the dead endpoint


SCENARIOS = {
    "interrupted-start": interrupted_start,
    "interrupted-before-start": interrupted_before_start,
    "sigterm": sigterm,
    "sigterm-handler-made-in-thread": sigterm_handler_made_in_thread,
    "sigterm-during-flush": sigterm_during_flush,
    "sigterm-at-exit": sigterm_at_exit,
    "sigterm-zero-timeout": sigterm_zero_timeout,
    "sigterm-main-thread-joins": sigterm_main_thread_joins,
    "sigterm-to-another-thread": sigterm_to_another_thread,
    "sigterm-main-thread-joins-first-wake-up-lost": lambda url, group: sigterm_main_thread_joins(
        url, group, first_wake_up_lost=True
    ),
    "sigterm-opted-out": sigterm_opted_out,
    "sigterm-app-handler-before": sigterm_app_handler_before,
    "sigterm-app-handler-after": sigterm_app_handler_after,
    "c-fork": c_fork,
    "uwsgi-master": uwsgi_master,
    "fork-during-client-build": fork_during_client_build,
    "dictconfig-once": dictconfig_once,
    "fork-then-os-exit": fork_then_os_exit,
    "os-exit-in-a-signal-handler": os_exit_in_a_signal_handler,
}
WITH_METHOD = {
    "pool-with": pool_with,
    "pool-max-tasks": pool_max_tasks,
    "executor-max-tasks": executor_max_tasks,
    "process-terminate": process_terminate,
    "executor-with": executor_with,
    "executor-shutdown": executor_shutdown,
}


def main() -> None:
    # A run that hangs asks every process of the scenario for its threads' stacks with this
    # signal before it kills them (`lifecycle.ScenarioRun.end`): what each was waiting for.
    # Forked children keep the handler (it is the C library's, not Python's).
    faulthandler.register(DUMP_STACKS, all_threads=True)
    scenario, url, group, *rest = sys.argv[1:]
    if scenario in SCENARIOS:
        SCENARIOS[scenario](url, group)
    elif scenario in WITH_METHOD:
        multiprocessing.set_start_method(rest[0])
        WITH_METHOD[scenario](url, group, rest[0])
    elif scenario == "reconfigure":
        reconfigure(url, group, rest[0], int(rest[1]), int(rest[2]))
    elif scenario == "ctrl-c":
        ctrl_c(url, group, int(rest[0]))
    elif scenario == "c-fork-quiet-child":
        c_fork_quiet_child(url, group, rest[0])
    elif scenario == "reconfigure-dead-endpoint":
        reconfigure_dead_endpoint(url, group, rest[0])
    else:
        raise SystemExit(f"unknown scenario {scenario}")


if __name__ == "__main__":
    main()
