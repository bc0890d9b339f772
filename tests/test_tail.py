"""The `tail` command: what a user sees of a log group, against a moto server over HTTP."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from handler_factory import HandlerFactory, unique_group

from aws_cloudwatch_logs_handler._cli import main, parse_time
from aws_cloudwatch_logs_handler._errors import ConfigurationError
from aws_cloudwatch_logs_handler._events import split
from aws_cloudwatch_logs_handler._invocation import stream_name_for
from aws_cloudwatch_logs_handler._tail import (
    MIN_CALL_INTERVAL_S,
    Backoff,
    Follower,
    LogReader,
    Selection,
)
from local_aws.moto_endpoint import MotoEndpoint, fake_aws_environment

ROOT = Path(__file__).resolve().parent.parent
ESCAPE = "\x1b["
SECOND_MS = 1000
MINUTE_MS = 60 * SECOND_MS


class TtyBuffer(io.StringIO):
    """A captured stdout that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def now_ms() -> int:
    return int(time.time() * 1000)


def put(endpoint: MotoEndpoint, group: str, stream: str, events: list[tuple[int, str]]) -> None:
    """Create ``group``/``stream`` if needed and store ``events`` (timestamp, message) in it."""
    client = endpoint.logs_client()
    with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
        client.create_log_group(logGroupName=group)
    with contextlib.suppress(client.exceptions.ResourceAlreadyExistsException):
        client.create_log_stream(logGroupName=group, logStreamName=stream)
    client.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": ts, "message": message} for ts, message in events],
    )


def tail(endpoint: MotoEndpoint, *argv: str, **seams: Any) -> tuple[int, str, str]:
    """Run `tail` in-process against ``endpoint``; return status, stdout and stderr."""
    out, err = seams.pop("stdout", io.StringIO()), io.StringIO()
    status = main(["tail", *argv, "--endpoint-url", endpoint.url], stdout=out, stderr=err, **seams)
    return status, out.getvalue(), err.getvalue()


def test_events_of_several_streams_print_oldest_first(moto_server: MotoEndpoint) -> None:
    """Events from different streams come out in time order, each once."""
    group, start = unique_group(), now_ms() - 60 * SECOND_MS
    put(moto_server, group, "a", [(start + 1, "one"), (start + 3, "three"), (start + 5, "five")])
    put(moto_server, group, "b", [(start + 2, "two"), (start + 4, "four")])
    status, out, _ = tail(moto_server, group, "--format", "raw")
    assert status == 0
    assert out.splitlines() == ["one", "two", "three", "four", "five"]


def test_since_and_until_bound_the_window(moto_server: MotoEndpoint) -> None:
    """The default window is the last 10 minutes; --since and --until move its edges."""
    group, now = unique_group(), now_ms()
    put(
        moto_server,
        group,
        "s",
        [(now - 3 * 60 * MINUTE_MS, "3h ago"), (now - 20 * MINUTE_MS, "20m ago"), (now - 2, "now")],
    )
    assert tail(moto_server, group, "--format", "raw")[1].splitlines() == ["now"]
    wide = tail(moto_server, group, "--format", "raw", "--since", "1h")[1]
    assert wide.splitlines() == ["20m ago", "now"]
    status, out, _ = tail(moto_server, group, "--format", "raw", "--since", "4h", "--until", "15m")
    assert (status, out.splitlines()) == (0, ["3h ago", "20m ago"])


def test_an_empty_window_says_so_on_stderr(moto_server: MotoEndpoint) -> None:
    """Nothing in the window prints no events, and stderr says where it looked."""
    group = unique_group()
    put(moto_server, group, "s", [(now_ms() - 30 * MINUTE_MS, "too old")])
    status, out, err = tail(moto_server, group)
    assert (status, out) == (0, "")
    assert f"no events in {group} between" in err and "--since" in err


def test_request_id_shows_only_that_invocations_stream(moto_server: MotoEndpoint) -> None:
    """--request-id finds the stream the handler named after the Lambda request, and only it."""
    group, now = unique_group(), now_ms()
    wanted, other = str(uuid.uuid4()), str(uuid.uuid4())
    for request_id in (wanted, other):
        context = SimpleNamespace(
            aws_request_id=request_id, function_name="fn", function_version="$LATEST"
        )
        put(moto_server, group, stream_name_for(context), [(now - 5, f"line of {request_id}")])
    status, out, _ = tail(moto_server, group, "--request-id", wanted, "--format", "raw")
    assert (status, out.splitlines()) == (0, [f"line of {wanted}"])


def test_unknown_request_id_names_the_fix(moto_server: MotoEndpoint) -> None:
    """A request id with no stream fails with status 1 and says how else to search for it."""
    group = unique_group()
    put(moto_server, group, "s", [(now_ms() - 5, "something")])
    status, out, err = tail(moto_server, group, "--request-id", "abc-123")
    assert (status, out) == (1, "")
    assert "--since" in err and "--filter '\"abc-123\"'" in err


def test_a_split_3mb_multibyte_message_prints_once_and_exactly(
    moto_server: MotoEndpoint, make_handler: HandlerFactory
) -> None:
    """A message the handler split into parts prints once, byte for byte as it was logged."""
    group = unique_group()
    handler = make_handler(group, endpoint_url=moto_server.url)
    message = "".join(f"{i:07d} é✓😀 " for i in range(180_000))  # 18 bytes each
    assert len(message.encode()) > 3 * 1024 * 1024
    make_handler.logger(handler).info("%s", message)
    assert handler.flush(timeout_s=60)
    assert len(moto_server.messages(group, moto_server.streams(group)[0])) >= 3
    status, out, _ = tail(moto_server, group, "--format", "raw")
    assert status == 0
    assert out == message + "\n"


def test_missing_parts_are_marked_not_dropped(moto_server: MotoEndpoint) -> None:
    """Parts absent from the window show as a marker in place, and the format says incomplete."""
    group, now = unique_group(), now_ms()
    text = "".join(f"<{i}>" for i in range(1000))
    parts = split(now - 5, text, max_event_bytes=1000)
    assert len(parts) >= 3
    put(
        moto_server,
        group,
        "s",
        [(p.timestamp_ms, p.message) for i, p in enumerate(parts) if i != 1],
    )
    _, raw, _ = tail(moto_server, group, "--format", "raw")
    part_id = re.search(r"id=([0-9a-f]{12})", parts[0].message)[1]  # type: ignore[index]
    first, second = parts[0].message.split("] ", 1)[1], parts[1].message.split("] ", 1)[1]
    assert raw.startswith(first + f"[part 2/{len(parts)} id={part_id} missing]")
    assert second not in raw and raw.count("\n") == 1
    _, short, _ = tail(moto_server, group)
    assert f"[incomplete: part(s) 2 of {len(parts)} not found]" in short
    _, as_json, _ = tail(moto_server, group, "--format", "json")
    assert json.loads(as_json)["missing_parts"] == [2]


def test_json_events_show_level_logger_and_message(moto_server: MotoEndpoint) -> None:
    """short shows a JSON event's time, level, logger and message (and its trace); json keeps it."""
    group, now = unique_group(), now_ms()
    event = {
        "level": "ERROR",
        "logger": "app.payments",
        "message": "card declined",
        "stackTrace": ["Traceback...\n", "ValueError: no\n"],
    }
    put(moto_server, group, "s", [(now - 5, json.dumps(event))])
    _, out, _ = tail(moto_server, group)
    first, trace = out.splitlines()[0], out.splitlines()[1:]
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ERROR    app\.payments card declined", first
    )
    assert trace == ["Traceback...", "ValueError: no"]
    _, as_json, _ = tail(moto_server, group, "--format", "json")
    assert json.loads(as_json)["message"] == event


@pytest.mark.parametrize(
    ("stdout", "env", "coloured"),
    [(TtyBuffer(), {}, True), (TtyBuffer(), {"NO_COLOR": "1"}, False), (io.StringIO(), {}, False)],
    ids=["terminal", "NO_COLOR", "piped"],
)
def test_level_is_coloured_only_on_a_terminal_without_no_color(
    moto_server: MotoEndpoint, stdout: io.StringIO, env: dict[str, str], coloured: bool
) -> None:
    """The level is coloured on a terminal, never when piped or when NO_COLOR is set."""
    group = unique_group()
    put(moto_server, group, "s", [(now_ms() - 5, "2026-01-01 | WARNING | disk almost full")])
    _, out, _ = tail(moto_server, group, stdout=stdout, environ=env)
    assert "disk almost full" in out
    assert ("\x1b[33mWARNING\x1b[0m" in out) is coloured
    assert (ESCAPE in out) is coloured


def test_filter_selects_events(moto_server: MotoEndpoint) -> None:
    """--filter with a term passes the pattern to CloudWatch Logs and shows only matches."""
    group, now = unique_group(), now_ms()
    put(moto_server, group, "s", [(now - 9, "payment ok"), (now - 5, "payment failed")])
    assert (
        tail(moto_server, group, "--filter", "failed", "--format", "raw")[1] == "payment failed\n"
    )


def test_stream_prefix_selects_streams(moto_server: MotoEndpoint) -> None:
    """--stream shows only the streams whose names start with the prefix."""
    group, now = unique_group(), now_ms()
    put(moto_server, group, "web/1", [(now - 9, "from web")])
    put(moto_server, group, "worker/1", [(now - 5, "from worker")])
    assert tail(moto_server, group, "--stream", "web/", "--format", "raw")[1] == "from web\n"


@pytest.mark.parametrize(
    ("option", "value", "refused"),
    [
        ("--filter", '{ $.level = "ERROR" }', "--filter"),
        ("--query", "fields @message | filter @message like /x/", "`filter`"),
    ],
)
def test_what_the_local_endpoint_would_answer_wrongly_is_refused(
    moto_server: MotoEndpoint, option: str, value: str, refused: str
) -> None:
    """A pattern or query that moto would silently ignore fails with status 1, naming why."""
    group = unique_group()
    put(moto_server, group, "s", [(now_ms() - 5, "x")])
    status, out, err = tail(moto_server, group, option, value)
    assert (status, out) == (1, "")
    assert "is not AWS" in err and refused in err and "drop --endpoint-url" in err


def test_query_prints_the_logs_insights_table(moto_server: MotoEndpoint) -> None:
    """--query runs over the window and prints a table, times in UTC, rows in the query's order."""
    group, now = unique_group(), now_ms()
    put(moto_server, group, "s", [(now - 9, "first"), (now - 5, "second")])
    status, out, _ = tail(
        moto_server, group, "--query", "fields @timestamp, @message | sort @timestamp asc"
    )
    lines = out.splitlines()
    assert status == 0
    assert re.fullmatch(r"@timestamp +\| @message", lines[0])
    assert [line.split(" | ")[1] for line in lines[2:]] == ["first", "second"]
    assert lines[2].split(" | ")[0].rstrip().endswith("Z")


class ThrottlingClient:
    """A logs client whose first ``failures`` FilterLogEvents calls are throttled."""

    def __init__(self, client: Any, failures: int) -> None:
        self._client = client
        self.failures = failures

    def filter_log_events(self, **kwargs: Any) -> Any:
        if self.failures:
            self.failures -= 1
            error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
            raise ClientError(error, "FilterLogEvents")  # type: ignore[arg-type]
        return self._client.filter_log_events(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_throttled_reads_wait_and_retry_without_loss(moto_server: MotoEndpoint) -> None:
    """Throttled calls back off and are made again: every event prints once, status 0."""
    group, now = unique_group(), now_ms()
    put(moto_server, group, "s", [(now - 9, "a"), (now - 5, "b")])
    waits: list[float] = []
    client = ThrottlingClient(moto_server.logs_client(), failures=3)
    status, out, err = tail(
        moto_server, group, "--format", "raw", client=client, sleep=waits.append
    )
    assert (status, out) == (0, "a\nb\n")
    assert err.count("ThrottlingException, retrying") == 3 and len(waits) >= 3


def test_endless_throttling_ends_with_the_fix(moto_server: MotoEndpoint) -> None:
    """A read throttled past its retries fails with status 1 and says to wait or narrow --since."""
    group = unique_group()
    put(moto_server, group, "s", [(now_ms() - 5, "a")])
    client = ThrottlingClient(moto_server.logs_client(), failures=100)
    status, _, err = tail(moto_server, group, client=client, sleep=lambda _s: None)
    assert status == 1 and "kept throttling" in err and "--since" in err


def test_calls_are_paced_below_the_quota() -> None:
    """No second holds more than 4 calls: FilterLogEvents allows 5 a second per account."""
    clock = [0.0]
    calls: list[float] = []

    class Client:
        def filter_log_events(self, **_kwargs: Any) -> dict[str, Any]:
            calls.append(clock[0])
            return {"events": [], "nextToken": f"t{len(calls)}"} if len(calls) < 20 else {}

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    reader = LogReader(Client(), sleep=sleep, clock=lambda: clock[0])
    assert list(reader.events(Selection("/g"), start_ms=0, end_ms=1)) == []
    assert len(calls) == 20
    assert min(b - a for a, b in itertools.pairwise(calls)) >= MIN_CALL_INTERVAL_S
    assert all(len([c for c in calls if t <= c < t + 1]) <= 4 for t in calls)


def test_follow_shows_late_events_and_never_repeats_one(moto_server: MotoEndpoint) -> None:
    """Each poll shows only new events, including one that arrived late from another stream."""
    group, now = unique_group(), now_ms()
    put(moto_server, group, "a", [(now - 2000, "first")])
    client = ThrottlingClient(moto_server.logs_client(), failures=10)  # more than one-shot allows
    reader = LogReader(client, backoff=Backoff(max_retries=None), sleep=lambda _s: None)
    follower = Follower(reader, Selection(group), now - MINUTE_MS)
    assert [m.text for m in follower.poll()] == ["first"]
    put(moto_server, group, "b", [(now - 4000, "late, older")])
    put(moto_server, group, "a", [(now - 1000, "second")])
    assert [m.text for m in follower.poll()] == ["late, older", "second"]
    assert follower.poll() == []


def _read_lines(stream: Any, lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def _next_line(lines: queue.Queue[str]) -> str:
    return lines.get(timeout=60)


@pytest.fixture
def child_env(moto_server: MotoEndpoint) -> dict[str, str]:
    """The environment of a child `python -m aws_cloudwatch_logs_handler` on this worktree."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "NO_COLOR"}
    env.update(fake_aws_environment(moto_server.url))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "handler"), str(ROOT)])
    return env


@pytest.mark.slow
def test_follow_prints_new_events_and_ends_on_sigint_with_status_0(
    moto_server: MotoEndpoint,
    make_handler: HandlerFactory,
    child_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """`tail --follow` (a real process) prints what is logged after it starts; Ctrl-C ends it, 0."""
    group = unique_group()
    handler = make_handler(group, endpoint_url=moto_server.url)
    logger = make_handler.logger(handler)
    logger.info("before start")
    assert handler.flush(timeout_s=30)
    command = [sys.executable, "-m", "aws_cloudwatch_logs_handler", "tail", group, "--follow"]
    stderr = tmp_path / "stderr"
    lines: queue.Queue[str] = queue.Queue()
    with (
        stderr.open("w") as stderr_file,
        subprocess.Popen(
            [*command, "--format", "raw"],
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            text=True,
        ) as child,
    ):
        reader = threading.Thread(target=_read_lines, args=(child.stdout, lines), daemon=True)
        reader.start()
        try:
            assert _next_line(lines) == "before start\n"  # it is polling now
            logger.info("after start 1")
            logger.info("after start 2")
            assert handler.flush(timeout_s=30)
            assert [_next_line(lines), _next_line(lines)] == ["after start 1\n", "after start 2\n"]
            child.send_signal(signal.SIGINT)
            assert child.wait(timeout=30) == 0
        finally:
            if child.poll() is None:
                child.kill()
            reader.join(timeout=30)
    assert lines.empty()  # nothing printed twice
    assert "Traceback" not in stderr.read_text()


@pytest.mark.slow
def test_piped_output_of_the_module_has_no_colour(
    moto_server: MotoEndpoint, child_env: dict[str, str]
) -> None:
    """`python -m aws_cloudwatch_logs_handler tail` into a pipe writes no colour codes."""
    group = unique_group()
    put(moto_server, group, "s", [(now_ms() - 5, json.dumps({"level": "ERROR", "message": "m"}))])
    command = [sys.executable, "-m", "aws_cloudwatch_logs_handler", "tail", group]
    done = subprocess.run(
        command, env=child_env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "ERROR" in done.stdout and ESCAPE not in done.stdout


@pytest.fixture
def tmux() -> Iterator[list[str]]:
    """A tmux server of this test's own (its own socket), killed afterwards."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux): the terminal check needs it")
    command = ["tmux", "-L", f"tail-test-{uuid.uuid4().hex[:8]}", "-f", os.devnull]
    yield command
    subprocess.run([*command, "kill-server"], capture_output=True, check=False, timeout=30)


@pytest.mark.slow
def test_in_a_terminal_a_person_sees_coloured_levels_and_readable_lines(
    moto_server: MotoEndpoint, child_env: dict[str, str], tmux: list[str]
) -> None:
    """Run under tmux as a person would: one readable line per event, the levels coloured."""
    group, now = unique_group(), now_ms()
    powertools = {"level": "ERROR", "service": "payments", "message": "card declined"}
    put(
        moto_server,
        group,
        "s",
        [(now - 9, "plain text INFO line"), (now - 5, json.dumps(powertools))],
    )
    session, done = "tail", f"done-{uuid.uuid4().hex[:8]}"
    exports = " ".join(
        f"{k}={shlex.quote(v)}" for k, v in child_env.items() if k.startswith(("AWS_", "PYTHON"))
    )
    python = shlex.quote(sys.executable)
    command = f"env -u NO_COLOR {exports} {python} -m aws_cloudwatch_logs_handler tail {group}"
    shell = f"{command}; echo exit=$?; {shlex.join([*tmux, 'wait-for', '-S', done])}; read _"
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", session, "-x", "150", "-y", "20", shell],
        check=True,
        timeout=30,
    )
    subprocess.run([*tmux, "wait-for", done], check=True, timeout=60)
    seen = subprocess.run(
        [*tmux, "capture-pane", "-p", "-t", session],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    styled = subprocess.run(
        [*tmux, "capture-pane", "-p", "-e", "-t", session],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    lines = [line for line in seen.splitlines() if line.strip()]
    assert lines[-1] == "exit=0"
    assert re.fullmatch(r"\S+Z plain text INFO line", lines[-3])
    assert re.fullmatch(r"\S+Z ERROR +payments card declined", lines[-2])
    assert re.search(r"\x1b\[[0-9;]*31m\s*ERROR", styled)  # red, as the terminal draws it
    assert re.search(r"\x1b\[[0-9;]*32mINFO", styled)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("argv", "env", "fix"),
    [
        (["/no/such/group"], {}, "does not exist"),
        (
            ["/g", "--endpoint-url", "http://127.0.0.1:PORT"],
            {},
            "cannot reach http://127.0.0.1:PORT",
        ),
        (["/g"], {"AWS_DEFAULT_REGION": None, "AWS_REGION": None}, "pass --region REGION"),
        (["/g"], {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}, "no AWS credentials"),
        (["/g", "--profile", "nope"], {}, "check --profile"),
        (["/g", "--since", "yesterday"], {}, "give a duration ago"),
    ],
    ids=["missing-group", "unreachable", "no-region", "no-credentials", "no-profile", "bad-time"],
)
def test_errors_name_the_fix(
    moto_server: MotoEndpoint,
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    env: dict[str, str | None],
    fix: str,
) -> None:
    """Each setup mistake ends with status 1 and one line on stderr naming the fix, no traceback."""
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    port = str(_closed_port())
    argv = [arg.replace("PORT", port) for arg in argv]
    if "--endpoint-url" not in argv:
        argv += ["--endpoint-url", moto_server.url]
    err = io.StringIO()
    status = main(["tail", *argv], stdout=io.StringIO(), stderr=err)
    assert status == 1
    assert fix.replace("PORT", port) in err.getvalue()
    assert err.getvalue().count("\n") == 1


@pytest.mark.parametrize(
    ("text", "ago_ms"),
    [
        ("30s", 30_000),
        ("10m", 600_000),
        ("2h", 7_200_000),
        ("3d", 259_200_000),
        ("1w", 604_800_000),
    ],
)
def test_durations_count_back_from_now(text: str, ago_ms: int) -> None:
    """A duration is that long before now."""
    assert parse_time(text, now_ms=10**12) == 10**12 - ago_ms


@pytest.mark.parametrize(
    "text",
    [
        "2026-05-09T14:30:00Z",
        "2026-05-09T14:30:00+00:00",
        "2026-05-09T16:30:00+02:00",
        "2026-05-09T14:30:00",
    ],
)
def test_iso_times_are_read_with_their_offset_or_as_utc(text: str) -> None:
    """An ISO time keeps its offset; without one it is UTC, as the printed times are."""
    assert parse_time(text, now_ms=0) == 1_778_337_000_000


def test_an_unreadable_time_is_a_configuration_error() -> None:
    """A time in neither form raises ConfigurationError listing both forms."""
    with pytest.raises(ConfigurationError, match=r"10m.*ISO"):
        parse_time("last tuesday", now_ms=0)


def test_the_console_script_runs_main() -> None:
    """pyproject installs `aws-cloudwatch-logs-handler`, which runs the same `main`."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert (
        project["scripts"]["aws-cloudwatch-logs-handler"] == "aws_cloudwatch_logs_handler._cli:main"
    )
