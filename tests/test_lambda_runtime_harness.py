"""The local Lambda harness: real awslambdaric, our own Runtime API, the freeze after a result."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_aws.lambda_runtime import (
    ExtensionsMode,
    LambdaRuntime,
    RuntimeHarnessError,
    copy_function,
    sdk_site_packages,
)

pytestmark = pytest.mark.slow

FUNCTIONS = Path(__file__).resolve().parent / "lambda_functions"
PROJECT_HANDLER_DIR = Path(__file__).resolve().parent.parent / "handler"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LambdaRuntime]:
    """One runtime for the module (awslambdaric start-up is the slow part)."""
    root = tmp_path_factory.mktemp("harness")
    task_dir = root / "task"
    copy_function(FUNCTIONS / "trivial.py", task_dir)
    with LambdaRuntime(task_dir, function_name="harness-trivial", memory_size_mb=256) as running:
        yield running


def test_response_is_returned_with_the_lambda_context(runtime: LambdaRuntime) -> None:
    """An invocation returns the function's response, and the context carries what Lambda sets."""
    result = runtime.invoke({"echo": "hello"}, request_id="req-harness-1", timeout_s=30)

    assert result.status == "response"
    body = result.json()
    assert body["echo"] == "hello"
    assert body["request_id"] == "req-harness-1"
    assert body["function_name"] == "harness-trivial"
    assert body["function_version"] == "$LATEST"
    assert body["memory_limit_in_mb"] == "256"
    assert body["invoked_function_arn"] == runtime.invoked_function_arn
    assert 0 < body["remaining_ms"] <= 30_000
    assert runtime.unexpected_requests() == []


def test_error_is_posted_to_the_error_endpoint(runtime: LambdaRuntime) -> None:
    """An exception leaving the function reaches /error as Lambda's error document."""
    result = runtime.invoke({"raise": "boom on purpose"})

    assert result.status == "error"
    document = result.json()
    assert document["errorType"] == "ValueError"
    assert document["errorMessage"] == "boom on purpose"
    assert result.error_type == "ValueError"


def test_runtime_is_frozen_after_a_result_and_thawed_for_the_next(runtime: LambdaRuntime) -> None:
    """Every thread of the runtime is stopped once a result is posted; thaw resumes them all."""
    result = runtime.invoke({"echo": "freeze"})
    assert result.json()["pid"] == runtime.process.pid  # type: ignore[union-attr]

    assert runtime.frozen
    states = runtime.thread_states()
    assert states
    assert set(states.values()) == {"T"}

    runtime.thaw()
    assert "T" not in runtime.thread_states().values()
    # The thawed runtime goes on serving: the environment is reused, as a warm Lambda is.
    assert runtime.invoke({"echo": "again"}).json()["echo"] == "again"


def test_project_package_is_not_importable_without_a_layer(runtime: LambdaRuntime) -> None:
    """The venv's editable install stays out of the runtime: only a layer provides the library."""
    body = runtime.invoke({"echo": "path"}).json()

    assert body["library_origin"] is None
    assert str(PROJECT_HANDLER_DIR) not in body["sys_path"]
    # The task directory comes first, as /var/task does in Lambda.
    assert body["sys_path"][0] == str(runtime.task_dir)


def test_runtime_overhead_without_flush_is_small(
    runtime: LambdaRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the library, the handler's return reaches the server within milliseconds."""
    delays_ms = []
    for _ in range(5):
        result = runtime.invoke({"echo": "timing"})
        delays_ms.append((result.posted_ns - result.json()["body_end_ns"]) / 1e6)
    median = sorted(delays_ms)[len(delays_ms) // 2]
    with capsys.disabled():
        print(f"\n[harness] handler return -> posted response, no library: {median:.2f} ms")
    assert median < 1000


def test_init_error_is_reported_and_the_runtime_exits(tmp_path: Path) -> None:
    """A module that fails at import is posted to /runtime/init/error and invoke says so."""
    task_dir = tmp_path / "task"
    copy_function(FUNCTIONS / "broken_init.py", task_dir)
    with LambdaRuntime(task_dir) as runtime:
        init_error = runtime.wait_for_init_error(timeout_s=30)
        document = init_error.json()
        assert document["errorType"] == "RuntimeError"
        assert "broken at init on purpose" in document["errorMessage"]
        assert runtime.wait_for_exit() == 1
        with pytest.raises(RuntimeHarnessError, match="failed to initialize"):
            runtime.invoke({"echo": "never"}, timeout_s=10)


def test_runtime_output_is_captured(runtime: LambdaRuntime) -> None:
    """The runtime's stdout and stderr land in the log file, for debugging failures."""
    runtime.invoke({"raise": "logged by the runtime"})

    # awslambdaric logs the unhandled error before posting it, so it is there by the freeze.
    assert "logged by the runtime" in runtime.log_text()


def test_environment_is_lambdas_and_no_more(runtime: LambdaRuntime) -> None:
    """The runtime gets Lambda's variables and fake credentials, never the test's own AWS setup."""
    env = runtime.environment()

    assert env["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    assert "://" not in env["AWS_LAMBDA_RUNTIME_API"]
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert "AWS_PROFILE" not in env
    assert env["PYTHONPATH"].split(os.pathsep) == [str(p) for p in sdk_site_packages()]
    assert str(PROJECT_HANDLER_DIR) not in env["PYTHONPATH"]


# -- the Extensions API ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LambdaRuntime]:
    """One runtime whose function carries a bare internal extension (no library)."""
    task_dir = tmp_path_factory.mktemp("probe") / "task"
    copy_function(FUNCTIONS / "extension_probe.py", task_dir)
    with LambdaRuntime(task_dir, function_name="harness-probe") as running:
        yield running


def test_internal_extension_registers_for_invoke_only_during_init(probe: LambdaRuntime) -> None:
    """Registration for INVOKE succeeds at import; SHUTDOWN and a late one are refused (403)."""
    body = probe.invoke({"register_late": True}).json()

    status, document = body["registered"]
    assert status == 200
    assert document == {
        "functionName": "harness-probe",
        "functionVersion": "$LATEST",
        "handler": "handler.handler",
    }
    status, error = body["shutdown"]
    assert status == 403 and error["errorType"] == "Extension.InvalidEventType"
    assert body["late"] == 403
    assert probe.extension_registrations() == [
        ("probe", 200),
        ("probe-shutdown", 403),
        ("late", 403),
    ]


def test_extension_gets_each_invoke_with_the_runtimes_deadline(probe: LambdaRuntime) -> None:
    """Every INVOKE reaches the extension with the request id and deadline the runtime got."""
    first = probe.invoke({}, function_timeout_s=42)
    second = probe.invoke({})

    seen = {event["requestId"]: event for event in second.json()["seen"]}
    event = seen[first.request_id]
    assert event["eventType"] == "INVOKE"
    assert event["deadlineMs"] == first.deadline_ms
    assert event["invokedFunctionArn"] == probe.invoked_function_arn
    assert event["tracing"]["type"] == "X-Amzn-Trace-Id"


def test_response_is_posted_before_a_slow_extension_ends_the_invocation(
    probe: LambdaRuntime,
) -> None:
    """The caller has the response at once; the freeze waits for the extension's next call."""
    result = probe.invoke({"hold_ms": 300})

    assert result.status == "response"
    assert result.post_runtime_ms >= 300
    assert result.caller_ms < result.post_runtime_ms
    assert probe.frozen
    assert set(probe.thread_states().values()) == {"T"}


@pytest.mark.parametrize(
    ("mode", "status", "error_type"),
    [("absent", 404, "NotFound"), ("refused", 403, "Extension.InvalidEventType")],
)
def test_extensions_api_can_be_absent_or_refusing(
    tmp_path: Path, mode: ExtensionsMode, status: int, error_type: str
) -> None:
    """A runtime without the API answers 404; one refusing internal extensions answers 403."""
    task_dir = tmp_path / "task"
    copy_function(FUNCTIONS / "extension_probe.py", task_dir)
    with LambdaRuntime(task_dir, extensions_mode=mode) as runtime:
        # The probe's thread calls next with no identifier; the invocation must not wait for it.
        result = runtime.invoke({}, timeout_s=30)
    answered_status, error = result.json()["registered"]
    assert (answered_status, error["errorType"]) == (status, error_type)
