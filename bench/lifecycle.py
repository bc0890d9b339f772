"""How processes end, side by side with watchtower: ``python -m bench.lifecycle``.

Runs the programs of `bench.lifecycle_scenarios` (services stopped by SIGTERM, ``with Pool()``,
``Process.terminate()``, a fork below Python, logging reconfigured right after logging) once with
this handler and once with watchtower, against one moto server on 127.0.0.1, and prints what each
delivered, how the process ended and how long it took to end. `ScenarioRun` is also what
tests/test_lifecycle.py drives.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_aws.moto_endpoint import (
    fake_aws_environment,
    read_events,
    running_moto_server,
    stream_names,
)

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = Path(__file__).with_name("lifecycle_scenarios.py")
DUMP_STACKS = signal.SIGUSR2  # as `lifecycle_scenarios.DUMP_STACKS` (run as a script, apart)
EXIT_LIMIT_S = 60.0
"""A process that has not ended this long after its signal is hung."""


class ScenarioError(Exception):
    """The scenario process did not do what the run needed (print a line, end in time)."""


class ScenarioRun:
    """One scenario process, its output, and how it ended."""

    def __init__(self, name: str, url: str, *args: str, handler: str = "ours") -> None:
        self.group = f"/lifecycle/{name}/{uuid.uuid4().hex[:12]}"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "handler"), env.get("PYTHONPATH", "")])
        env["SCENARIO_HANDLER"] = handler
        self.process = subprocess.Popen(
            [sys.executable, str(SCENARIOS), name, url, self.group, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,  # its own process group: a hung child it forked dies with it
        )
        self.lines: list[str] = []
        self.errors = ""
        self.signalled_at: float | None = None

    def wait_for(self, text: str, timeout_s: float = 60.0) -> None:
        """Read the output until a line equal to ``text``; raise if the process ends first."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if not selector.select(deadline - time.monotonic()):
                    continue
                line = self.process.stdout.readline()
                if not line:
                    break
                self.lines.append(line.strip())
                if line.strip() == text:
                    return
        self.kill()
        raise ScenarioError(f"no {text!r} line; output: {self.lines}, stderr: {self.stderr()}")

    def kill(self) -> None:
        """Kill the process and every process it started, and collect what they wrote."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        _, self.errors = self.process.communicate()

    def _dump_stacks(self) -> None:
        """Have every process of the scenario write its threads' stacks to standard error
        (`lifecycle_scenarios.DUMP_STACKS`), and give them a moment to."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, DUMP_STACKS)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.communicate(timeout=2.0)  # reads what they write, in the meantime

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.signalled_at = time.monotonic()
        self.process.send_signal(signum)

    def end(self, timeout_s: float = EXIT_LIMIT_S) -> tuple[int, float]:
        """Wait for the process to end; return its return code and the seconds since the signal.

        Raises:
            ScenarioError: it had not ended after ``timeout_s`` (it is killed then).
        """
        started = self.signalled_at or time.monotonic()
        try:
            out, self.errors = self.process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._dump_stacks()
            self.kill()
            raise ScenarioError(
                f"the process hung: output {self.lines}; every process's threads, then "
                f"killed: {self.errors[-20_000:]}"
            ) from None
        self.lines.extend(line.strip() for line in out.splitlines())
        return self.process.returncode, time.monotonic() - started

    def stderr(self) -> str:
        """The process's standard error (once it has ended), where the handler reports."""
        return self.errors[-3000:]


def arrived(client: Any, group: str) -> Counter[str]:
    """Count every message the endpoint holds for ``group``, across its streams."""
    if not client.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        return Counter()
    return Counter(
        event["message"]
        for stream in stream_names(client, group)
        for event in read_events(client, group, stream)
    )


def numbered(prefix: str, count: int) -> Counter[str]:
    """The messages ``prefix-0`` ... ``prefix-(count-1)``, as the scenarios log them."""
    return Counter(f"{prefix}-{i}" for i in range(count))


@dataclass(frozen=True)
class Row:
    scenario: str
    handler: str
    logged: int
    delivered: int
    exit_status: str
    seconds: float | None


# (scenario, extra arguments, whether the test signals it, the messages it logs)
def _cases() -> list[tuple[str, tuple[str, ...], bool, Counter[str]]]:
    from bench.lifecycle_scenarios import PER_TASK, RECORDS, TASKS

    tasks = sum((numbered(f"task{n}", PER_TASK) for n in range(TASKS)), Counter[str]())
    child_and_parent = numbered("child", RECORDS) + numbered("parent", 10)
    return [
        ("sigterm", (), True, numbered("main", RECORDS)),
        ("pool-with", ("fork",), False, tasks + numbered("parent", 10)),
        ("pool-with", ("spawn",), False, tasks + numbered("parent", 10)),
        ("pool-max-tasks", ("fork",), False, tasks + numbered("parent", 10)),
        ("process-terminate", ("fork",), False, child_and_parent),
        (
            "fork-then-os-exit",
            (),
            False,
            numbered("parent", PER_TASK)
            + numbered("child0", PER_TASK)
            + numbered("child1", PER_TASK),
        ),
        ("executor-with", ("forkserver",), False, tasks + numbered("parent", 10)),
        (
            "c-fork",
            (),
            False,
            numbered("parent-before", 500) + numbered("child", 500) + numbered("parent-after", 500),
        ),
        ("dictconfig-once", (), False, numbered("main", RECORDS)),
    ]


def measure(url: str, client: Any, handler: str) -> list[Row]:
    rows = []
    for name, args, signalled, want in _cases():
        run = ScenarioRun(name, url, *args, handler=handler)
        status, seconds = "hung (killed)", None
        try:
            if signalled:
                run.wait_for("ready")
                run.signal()
            code, took = run.end(timeout_s=30.0)
            status = f"{code}" + (" (by SIGTERM)" if code == -signal.SIGTERM else "")
            seconds = took if signalled else None
        except ScenarioError:
            pass
        got = arrived(client, run.group)
        delivered = sum(min(got[m], n) for m, n in want.items())
        label = " ".join((name, *args))
        rows.append(Row(label, handler, sum(want.values()), delivered, status, seconds))
    return rows


def main() -> None:
    os.environ.update(fake_aws_environment())  # the scenarios can reach only the local endpoint
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's access log
    with running_moto_server() as endpoint:
        client = endpoint.logs_client()
        rows = measure(endpoint.url, client, "ours") + measure(endpoint.url, client, "watchtower")
    print("| scenario | handler | logged | delivered | exit status | seconds to exit |")
    print("|---|---|---|---|---|---|")
    for row in sorted(rows, key=lambda r: r.scenario):
        seconds = "" if row.seconds is None else f"{row.seconds:.2f}"
        print(
            f"| {row.scenario} | {row.handler} | {row.logged} | {row.delivered} | "
            f"{row.exit_status} | {seconds} |"
        )


if __name__ == "__main__":
    main()
