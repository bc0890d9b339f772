"""End to end in a local Lambda: delivery after the response, through the library's extension.

The function (``lambda_functions/e2e_extension.py``) runs under awslambdaric with the layer; the
harness serves the Extensions API with Lambda's semantics and freezes the runtime only when the
response is posted and every extension called ``next`` again. So what CloudWatch holds at the
freeze is what real Lambda would keep, and ``caller_ms`` is what the caller waited.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_lambda_e2e import (
    INVOKE_TIMEOUT_S,
    Deployment,
    deploy,
    invoke_frozen,
    layer_python_dir,
    tagged,
)

from local_aws.lambda_runtime import ExtensionsMode
from local_aws.moto_endpoint import MotoEndpoint

pytestmark = pytest.mark.slow

FUNCTION = Path(__file__).resolve().parent / "lambda_functions" / "e2e_extension.py"
EXTENSION_NAME = "aws-cloudwatch-logs-handler"
RECORDS = 10
FALLBACK_NOTE = "aws_cloudwatch_logs_handler: delivering before the function returns: "

__all__ = ["layer_python_dir"]  # the shared fixture, imported for pytest to find


def start(
    root: Path,
    layer: Path,
    moto: MotoEndpoint,
    *,
    env: dict[str, str] | None = None,
    extensions_mode: ExtensionsMode = "available",
) -> Generator[Deployment, None, None]:
    """A runtime for the extension's sample function, after its first invocation."""
    yield from deploy(
        FUNCTION,
        root,
        layer,
        moto,
        {"tag": "first", "records": RECORDS},
        env=env,
        extensions_mode=extensions_mode,
    )


@pytest.fixture(scope="module")
def after_response(
    tmp_path_factory: pytest.TempPathFactory, layer_python_dir: Path, moto_server: MotoEndpoint
) -> Iterator[Deployment]:
    """The default: the decorator on the function Lambda calls, applied at import."""
    yield from start(tmp_path_factory.mktemp("after"), layer_python_dir, moto_server)


@pytest.fixture
def fresh(tmp_path: Path, layer_python_dir: Path, moto_server: MotoEndpoint) -> Iterator[Any]:
    """Start a runtime of one's own (for fallbacks and endings); each is stopped after the test."""
    running: list[Generator[Deployment, None, None]] = []

    def make(env: dict[str, str] | None = None, mode: ExtensionsMode = "available") -> Deployment:
        generator = start(
            tmp_path / str(len(running)),
            layer_python_dir,
            moto_server,
            env=env,
            extensions_mode=mode,
        )
        running.append(generator)
        return next(generator)

    yield make
    for generator in running:
        generator.close()


def test_records_arrive_after_the_response_and_before_the_freeze(
    after_response: Deployment,
) -> None:
    """The extension registers at Init; each invocation's records are all there at the freeze."""
    tag = f"after-{uuid.uuid4().hex[:8]}"

    delivered = after_response.invoke({"tag": tag, "records": RECORDS})

    assert after_response.runtime.extension_registrations() == [(EXTENSION_NAME, 200)]
    assert delivered.messages == tagged(tag, RECORDS)
    result = delivered.result
    assert result.posted_ns <= result.ended_ns  # delivered in the post-runtime phase
    assert FALLBACK_NOTE not in after_response.runtime.log_text()


def test_init_records_join_the_first_invocation(after_response: Deployment) -> None:
    """Records of the init phase go with the first invocation's, delivered after its response."""
    assert after_response.first.messages == tagged("first", RECORDS)


def test_raising_function_posts_its_error_first_then_delivers(after_response: Deployment) -> None:
    """The error is posted at once; the records and the traceback are delivered by the freeze."""
    tag = f"raise-{uuid.uuid4().hex[:8]}"

    delivered = after_response.invoke({"tag": tag, "records": RECORDS, "raise": True})

    assert delivered.result.status == "error"
    assert delivered.result.json()["errorType"] == "E2EFailureError"
    assert delivered.messages[:RECORDS] == tagged(tag, RECORDS)
    [traceback] = delivered.messages[RECORDS:]
    assert f"E2EFailureError: {tag} failed on purpose" in traceback


def test_invocation_that_logs_nothing_ends_without_a_stream(after_response: Deployment) -> None:
    """Nothing logged: the invocation still ends (the extension calls next), no stream is made."""
    result = after_response.runtime.invoke({"records": 0}, timeout_s=INVOKE_TIMEOUT_S)

    assert result.status == "response"
    streams = after_response.moto.streams(after_response.group)
    assert not any(name.endswith(result.request_id) for name in streams)


def test_a_hundred_invocations_lose_nothing_and_mix_nothing(after_response: Deployment) -> None:
    """100 invocations in a row: each stream holds exactly its own invocation's records."""
    runtime = after_response.runtime
    tags: dict[str, str] = {}
    for number in range(100):
        tag = f"row{number}-{uuid.uuid4().hex[:6]}"
        result = runtime.invoke({"tag": tag, "records": 3}, timeout_s=INVOKE_TIMEOUT_S)
        tags[result.request_id] = tag

    streams = after_response.moto.streams(after_response.group)
    for request_id, tag in tags.items():
        [stream] = [name for name in streams if name.endswith(request_id)]
        assert after_response.moto.messages(after_response.group, stream) == tagged(tag, 3)


def test_what_misses_the_deadline_is_said_and_delivered_next_time(
    after_response: Deployment,
) -> None:
    """Past its deadline, an invocation's records stay queued, are reported, and go next time."""
    runtime, moto, group = after_response.runtime, after_response.moto, after_response.group
    late_tag, next_tag = (f"deadline-{uuid.uuid4().hex[:6]}" for _ in range(2))

    # 0.2 s is within the decorator's 500 ms margin: no time is left for the post-runtime phase.
    late = runtime.invoke({"tag": late_tag, "records": RECORDS}, function_timeout_s=0.2)
    assert late.status == "response"
    assert f"before the deadline of invocation {late.request_id}" in runtime.log_text()

    following = invoke_frozen(runtime, moto, group, {"tag": next_tag, "records": RECORDS})

    assert following.messages == tagged(next_tag, RECORDS)
    [late_stream] = [name for name in moto.streams(group) if name.endswith(late.request_id)]
    assert moto.messages(group, late_stream) == tagged(late_tag, RECORDS)


def test_sigterm_delivers_what_the_deadline_left(fresh: Any) -> None:
    """Lambda's SIGTERM before ending the environment delivers what is still queued.

    awslambdaric polls for the next event from a thread (so that the main thread can run
    Python's signal handlers) only on the python3.12 and later runtimes, which it tells by
    ``AWS_EXECUTION_ENV``; on python3.10 and 3.11 the main thread waits in C and SIGTERM's
    handler cannot run while the environment is idle.
    """
    deployment: Deployment = fresh({"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"})
    runtime, moto, group = deployment.runtime, deployment.moto, deployment.group
    tag = f"sigterm-{uuid.uuid4().hex[:6]}"
    late = runtime.invoke({"tag": tag, "records": RECORDS}, function_timeout_s=0.2)

    runtime.stop()  # thaws, then SIGTERM, as Lambda ends an environment with extensions

    assert runtime.process is not None and runtime.process.returncode == -15
    [stream] = [name for name in moto.streams(group) if name.endswith(late.request_id)]
    assert moto.messages(group, stream) == tagged(tag, RECORDS)


@pytest.mark.parametrize(
    ("env", "mode", "reason"),
    [
        ({}, "absent", "Lambda's Extensions API is not available"),
        ({}, "refused", "Lambda's Extensions API refused"),
        ({"E2E_DECORATE": "helper"}, "available", "but Lambda calls handler.handler (_HANDLER)"),
        ({"E2E_DECORATE": "late"}, "available", "Extension.RegistrationClosed"),
    ],
    ids=["api-absent", "registration-refused", "not-the-handler", "after-init"],
)
def test_fallback_delivers_before_returning_and_says_why_once(
    fresh: Any, env: dict[str, str], mode: ExtensionsMode, reason: str
) -> None:
    """Without the extension, records are still all there at the freeze; the reason is said once."""
    deployment: Deployment = fresh(env, mode)
    tag = f"fallback-{uuid.uuid4().hex[:6]}"

    delivered = deployment.invoke({"tag": tag, "records": RECORDS})

    assert deployment.first.messages == tagged("first", RECORDS)
    assert delivered.messages == tagged(tag, RECORDS)
    log = deployment.runtime.log_text()
    assert log.count(FALLBACK_NOTE) == 1, log
    assert reason in log
    registered = [name for name, status in deployment.runtime.extension_registrations()]
    tried = mode != "available" or env.get("E2E_DECORATE") == "late"
    assert registered == ([EXTENSION_NAME] if tried else [])


def test_before_return_is_chosen_without_a_word(fresh: Any) -> None:
    """delivery='before_return' registers nothing, delivers by the response, and says nothing."""
    deployment: Deployment = fresh({"E2E_DELIVERY": "before_return"})
    tag = f"sync-{uuid.uuid4().hex[:6]}"

    delivered = deployment.invoke({"tag": tag, "records": RECORDS})

    assert delivered.messages == tagged(tag, RECORDS)
    assert deployment.runtime.extension_registrations() == []
    assert FALLBACK_NOTE not in deployment.runtime.log_text()


def test_caller_waits_less_with_delivery_after_the_response(
    tmp_path: Path, layer_python_dir: Path, moto_server: MotoEndpoint, capsys: Any
) -> None:
    """Side by side, delivering after the response adds less to the caller's wait than before."""
    from bench.lambda_latency import measure, table

    rows = measure(layer_python_dir, moto_server, tmp_path, records=(500,), rounds=10)

    with capsys.disabled():
        print(f"\n[e2e] what 500 records add to the caller's wait:\n{table(rows)}")
    added = {row.mode: row.added_ms for row in rows}
    assert added["after_response"] < added["before_return"]
