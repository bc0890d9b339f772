"""End to end in a local Lambda: every record is in CloudWatch when the environment is frozen.

The real runtime client (awslambdaric) runs a sample function from a temporary task directory and
imports the library only from the unzipped layer; the function logs to a moto server on
127.0.0.1. The harness freezes the runtime (SIGSTOP) once the invocation ends (the result posted
and the library's extension back in ``next``), so what the test then finds in CloudWatch is what
real Lambda would have delivered before freezing the environment. Each invocation's records must
be in the stream named from its request id: ``YYYY/MM/DD/<function>/[<version>]<aws_request_id>``.
"""

from __future__ import annotations

import json
import re
import statistics
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_aws.lambda_runtime import (
    ExtensionsMode,
    InvocationResult,
    LambdaRuntime,
    copy_function,
    unzip_layer,
)
from local_aws.moto_endpoint import MotoEndpoint

pytestmark = pytest.mark.slow

FUNCTIONS = Path(__file__).resolve().parent / "lambda_functions"
INIT_RECORDS = 3
SMALL_RECORDS = 10
LARGE_RECORDS = 3_000
TIMING_ROUNDS = 5
# Generous on purpose: a slow CI machine must not fail the suite, the figures are printed.
INVOKE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Delivered:
    """One invocation's result and what CloudWatch held for it while the runtime was frozen."""

    result: InvocationResult
    stream: str
    messages: list[str]

    @property
    def flush_ms(self) -> float:
        """Time from the function body's end to the posted result: what the decorator adds."""
        body_end_ns = int(self.result.json()["body_end_ns"])
        return (self.result.posted_ns - body_end_ns) / 1e6


@dataclass(frozen=True)
class Deployment:
    """A runtime running one sample function, its log group, and its first invocation."""

    runtime: LambdaRuntime
    moto: MotoEndpoint
    group: str
    layer_python_dir: Path
    first: Delivered

    def invoke(self, event: dict[str, Any]) -> Delivered:
        """Invoke, then read CloudWatch while the runtime is frozen (nothing more can arrive)."""
        return invoke_frozen(self.runtime, self.moto, self.group, event)


def stream_pattern(runtime: LambdaRuntime, request_id: str) -> re.Pattern[str]:
    """The contract's stream name for one invocation of the runtime's function."""
    return re.compile(
        rf"\d{{4}}/\d{{2}}/\d{{2}}/{re.escape(runtime.function_name)}/"
        rf"\[{re.escape(runtime.function_version)}\]{re.escape(request_id)}"
    )


def invoke_frozen(
    runtime: LambdaRuntime, moto: MotoEndpoint, group: str, event: dict[str, Any]
) -> Delivered:
    """Invoke once and capture the invocation's stream before anything thaws the runtime."""
    result = runtime.invoke(event, timeout_s=INVOKE_TIMEOUT_S)
    # The harness froze the runtime before it even heard 202: no thread of the function runs now.
    assert runtime.frozen, runtime.log_tail()
    try:
        streams = moto.streams(group)
    except ClientError as error:  # the group does not exist: nothing was delivered at all
        streams = [f"<{error.response['Error']['Code']}>"]
    matching = [name for name in streams if name.endswith(result.request_id)]
    assert len(matching) == 1, f"streams of {group}: {streams}\n{runtime.log_tail()}"
    stream = matching[0]
    assert stream_pattern(runtime, result.request_id).fullmatch(stream), stream
    return Delivered(result=result, stream=stream, messages=moto.messages(group, stream))


def deploy(
    function_source: Path,
    root: Path,
    layer_python_dir: Path,
    moto: MotoEndpoint,
    first_event: dict[str, Any],
    *,
    env: dict[str, str] | None = None,
    extensions_mode: ExtensionsMode = "available",
) -> Generator[Deployment, None, None]:
    """Start a runtime for ``function_source`` with its own group, and run its first invocation.

    ``env`` adds to the function's environment; ``extensions_mode`` sets the Extensions API.
    """
    group = f"/e2e/{uuid.uuid4()}"
    task_dir = root / "task"
    copy_function(function_source, task_dir)
    with LambdaRuntime(
        task_dir,
        layer_python_dir=layer_python_dir,
        endpoint_url=moto.url,
        function_name=f"e2e-{function_source.stem.replace('_', '-')}",
        log_path=root / "runtime.log",
        extra_env={"E2E_LOG_GROUP": group, "E2E_INIT_RECORDS": str(INIT_RECORDS), **(env or {})},
        extensions_mode=extensions_mode,
    ) as runtime:
        first = invoke_frozen(runtime, moto, group, first_event)
        yield Deployment(runtime, moto, group, layer_python_dir, first)


@pytest.fixture(scope="module")
def layer_python_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layer built from the library's sources, unzipped as Lambda unzips it to /opt."""
    from lambda_layer.build import build_layer

    root = tmp_path_factory.mktemp("layer")
    return unzip_layer(build_layer(root / "lambda_layer.zip"), root / "opt")


@pytest.fixture(scope="module")
def plain(
    tmp_path_factory: pytest.TempPathFactory, layer_python_dir: Path, moto_server: MotoEndpoint
) -> Iterator[Deployment]:
    """One runtime for the `logging` sample function, shared by this module's tests."""
    yield from deploy(
        FUNCTIONS / "e2e_plain.py",
        tmp_path_factory.mktemp("plain"),
        layer_python_dir,
        moto_server,
        {"tag": "first", "records": SMALL_RECORDS},
    )


@pytest.fixture(scope="module")
def powertools(
    tmp_path_factory: pytest.TempPathFactory, layer_python_dir: Path, moto_server: MotoEndpoint
) -> Iterator[Deployment]:
    """One runtime for the Powertools sample function, shared by this module's tests."""
    yield from deploy(
        FUNCTIONS / "e2e_powertools.py",
        tmp_path_factory.mktemp("powertools"),
        layer_python_dir,
        moto_server,
        {"tag": "first", "records": SMALL_RECORDS, "order": "inject_outside"},
    )


def tagged(tag: str, count: int) -> list[str]:
    """The messages the sample functions log for one tag, in order."""
    return [f"{tag} {number}" for number in range(count)]


# -- the standard logging module --------------------------------------------------------------


def test_library_is_imported_only_from_the_layer(plain: Deployment) -> None:
    """The function imports the library from the unzipped layer, never from the project."""
    library_file = Path(plain.first.result.json()["library_file"])

    assert library_file.is_relative_to(plain.layer_python_dir), library_file


def test_init_phase_records_go_to_the_first_invocation_stream(plain: Deployment) -> None:
    """Records logged at import are delivered, before the first response, in its stream."""
    assert plain.first.result.status == "response"
    assert plain.first.messages == tagged("init", INIT_RECORDS) + tagged("first", SMALL_RECORDS)


def test_small_invocation_is_delivered_by_the_freeze(plain: Deployment) -> None:
    """Ten records are all in the invocation's own stream, in order, by the freeze."""
    tag = f"small-{uuid.uuid4().hex[:8]}"

    delivered = plain.invoke({"tag": tag, "records": SMALL_RECORDS})

    assert delivered.result.status == "response"
    assert delivered.messages == tagged(tag, SMALL_RECORDS)


def test_thousands_of_records_are_delivered_by_the_freeze(plain: Deployment) -> None:
    """All 3,000 records are in the invocation's own stream, in order, by the freeze."""
    tag = f"large-{uuid.uuid4().hex[:8]}"

    delivered = plain.invoke({"tag": tag, "records": LARGE_RECORDS})

    assert delivered.result.status == "response"
    assert len(delivered.messages) == LARGE_RECORDS
    assert delivered.messages == tagged(tag, LARGE_RECORDS)


def test_unhandled_exception_is_delivered_then_reraised(plain: Deployment) -> None:
    """A raising function's records and its traceback are delivered before the error is posted."""
    tag = f"failing-{uuid.uuid4().hex[:8]}"

    delivered = plain.invoke({"tag": tag, "records": SMALL_RECORDS, "raise": True})

    # Re-raised: the runtime posted Lambda's error document, not a response.
    assert delivered.result.status == "error"
    document = delivered.result.json()
    assert document["errorType"] == "E2EFailureError"
    assert document["errorMessage"] == f"{tag} failed on purpose"
    assert delivered.messages[:SMALL_RECORDS] == tagged(tag, SMALL_RECORDS)
    unhandled = delivered.messages[SMALL_RECORDS:]
    assert len(unhandled) == 1, unhandled
    assert "Traceback (most recent call last)" in unhandled[0]
    assert f"E2EFailureError: {tag} failed on purpose" in unhandled[0]


def test_records_of_a_warm_invocation_do_not_leak_into_another_stream(plain: Deployment) -> None:
    """Consecutive invocations each get their own stream, holding only their own records."""
    first_tag, second_tag = (f"warm-{uuid.uuid4().hex[:8]}" for _ in range(2))

    first = plain.invoke({"tag": first_tag, "records": SMALL_RECORDS})
    second = plain.invoke({"tag": second_tag, "records": SMALL_RECORDS})

    assert first.stream != second.stream
    assert second.messages == tagged(second_tag, SMALL_RECORDS)
    assert plain.moto.messages(plain.group, first.stream) == tagged(first_tag, SMALL_RECORDS)


def test_flush_time_added_to_an_invocation_is_measured(
    plain: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    """The decorator's flush of 10 and of 3,000 records fits well within a function's time."""
    timings: dict[int, list[float]] = {}
    for records in (SMALL_RECORDS, LARGE_RECORDS):
        for round_number in range(TIMING_ROUNDS):
            tag = f"timing-{records}-{round_number}"
            delivered = plain.invoke({"tag": tag, "records": records})
            # Every timed invocation is checked too: a fast flush that loses records is no flush.
            assert len(delivered.messages) == records
            timings.setdefault(records, []).append(delivered.flush_ms)
    with capsys.disabled():
        for records, values in timings.items():
            print(
                f"\n[e2e] flush added to an invocation of {records:>5} records: "
                f"median {statistics.median(values):.1f} ms, max {max(values):.1f} ms "
                f"(body end -> posted response; rounds: "
                f"{', '.join(f'{value:.1f}' for value in values)})"
            )
    assert statistics.median(timings[LARGE_RECORDS]) < 10_000


def test_every_stream_belongs_to_an_invocation(plain: Deployment) -> None:
    """No record lands in a stream other than an invocation's (no pending or fallback stream)."""
    plain.invoke({"tag": f"census-{uuid.uuid4().hex[:8]}", "records": SMALL_RECORDS})
    request_ids = {result.request_id for result in plain.runtime.results}

    streams = plain.moto.streams(plain.group)

    strays = [name for name in streams if not any(name.endswith(rid) for rid in request_ids)]
    assert strays == []


# -- Powertools Logger --------------------------------------------------------------------------


def powertools_records(delivered: Delivered, tag: str) -> list[dict[str, Any]]:
    """The delivered Powertools JSON documents whose message carries ``tag``."""
    documents = [json.loads(message) for message in delivered.messages]
    return [doc for doc in documents if str(doc.get("message", "")).startswith(f"{tag} ")]


def test_powertools_init_record_and_cold_start_reach_the_first_stream(
    powertools: Deployment,
) -> None:
    """Powertools' init-phase record and its first invocation's cold start are delivered."""
    documents = [json.loads(message) for message in powertools.first.messages]

    assert documents[0]["message"] == "init powertools"
    assert documents[0]["deployment"] == "e2e-harness"
    records = powertools_records(powertools.first, "first")
    assert [doc["message"] for doc in records] == tagged("first", SMALL_RECORDS)
    assert {doc["cold_start"] for doc in records} == {True}
    assert {doc["function_request_id"] for doc in records} == {powertools.first.result.request_id}


@pytest.mark.parametrize("order", ["inject_outside", "flush_outside"])
def test_powertools_json_is_delivered_in_either_decorator_order(
    powertools: Deployment, order: str
) -> None:
    """Powertools' JSON with its context and appended keys is delivered by the freeze."""
    tag = f"{order}-{uuid.uuid4().hex[:8]}"

    delivered = powertools.invoke({"tag": tag, "records": SMALL_RECORDS, "order": order})

    assert delivered.result.status == "response"
    records = powertools_records(delivered, tag)
    assert len(records) == len(delivered.messages) == SMALL_RECORDS
    assert [doc["message"] for doc in records] == tagged(tag, SMALL_RECORDS)
    for doc in records:
        assert doc["function_request_id"] == delivered.result.request_id
        assert doc["cold_start"] is False
        assert doc["function_name"] == powertools.runtime.function_name
        assert doc["service"] == "e2e-powertools"
        assert doc["level"] == "INFO"
        assert doc["deployment"] == "e2e-harness"
        assert doc["order"] == order
