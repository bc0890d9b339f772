"""JSON logs under the real Lambda runtime client: requestId is the invocation's, ALC respected.

The runtime runs with Lambda's advanced logging controls on (``AWS_LAMBDA_LOG_FORMAT=JSON``,
``AWS_LAMBDA_LOG_LEVEL=INFO``), so its own JSON formatter sees each record before ours does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_lambda_e2e import FUNCTIONS, invoke_frozen, layer_python_dir  # noqa: F401 (a fixture)

from local_aws.lambda_runtime import LambdaRuntime, copy_function
from local_aws.moto_endpoint import MotoEndpoint

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class JsonFunction:
    runtime: LambdaRuntime
    moto: MotoEndpoint
    group: str


@contextmanager
def run_json_function(
    root: Path, layer: Path, moto: MotoEndpoint, *, runtime_copy: str
) -> Iterator[JsonFunction]:
    group = f"/e2e-json/{uuid.uuid4()}"
    copy_function(FUNCTIONS / "e2e_json.py", root / "task")
    with LambdaRuntime(
        root / "task",
        layer_python_dir=layer,
        endpoint_url=moto.url,
        function_name=f"e2e-json-{runtime_copy}",
        log_path=root / "runtime.log",
        extra_env={
            "E2E_LOG_GROUP": group,
            "E2E_RUNTIME_COPY": runtime_copy,
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            "AWS_LAMBDA_LOG_LEVEL": "INFO",
        },
    ) as runtime:
        yield JsonFunction(runtime, moto, group)


@pytest.fixture(scope="module")
def functions(
    tmp_path_factory: pytest.TempPathFactory,
    layer_python_dir: Path,  # noqa: F811 (the imported fixture)
    moto_server: MotoEndpoint,
) -> Iterator[dict[str, JsonFunction]]:
    """The JSON function twice: with the runtime's copy kept (the default), and switched off."""
    with ExitStack() as stack:
        yield {
            copy: stack.enter_context(
                run_json_function(
                    tmp_path_factory.mktemp(f"json-{copy}"),
                    layer_python_dir,
                    moto_server,
                    runtime_copy=copy,
                )
            )
            for copy in ("on", "off")
        }


def test_request_id_is_the_invocations_on_root_and_child_loggers(
    functions: dict[str, JsonFunction],
) -> None:
    """Both records parse, carry the invocation's requestId, the bound tag and the extra field."""
    with_copy = functions["on"]
    for tag in ("first", "second"):
        delivered = invoke_frozen(with_copy.runtime, with_copy.moto, with_copy.group, {"tag": tag})
        request_id = delivered.result.request_id
        root, child = (json.loads(m) for m in delivered.messages)
        assert (root["message"], root["n"], root["level"]) == ("via root", 1, "INFO")
        assert (child["message"], child["level"]) == ("via child", "WARNING")
        for fields in (root, child):
            assert fields["requestId"] == request_id
            assert (fields["tag"], fields["service"]) == (tag, "e2e")
            assert "_frame_type" not in fields and "aws_request_id" not in fields
    output = with_copy.runtime.log_text()
    assert '"message": "via root"' in output  # by default the runtime writes its copy too


def test_without_the_runtime_copy_only_records_we_do_not_ship_reach_the_runtime(
    functions: dict[str, JsonFunction],
) -> None:
    """Our records are not in the runtime's output; botocore's (excluded from ours) still are."""
    without_copy = functions["off"]
    tag = f"t-{uuid.uuid4().hex[:8]}"
    delivered = invoke_frozen(
        without_copy.runtime, without_copy.moto, without_copy.group, {"tag": tag}
    )
    assert [json.loads(m)["message"] for m in delivered.messages] == ["via root", "via child"]
    output = without_copy.runtime.log_text()
    assert f"{tag} not ours" in output
    assert "via root" not in output
