"""`make demo`: the whole toolkit on a local AWS endpoint, with no AWS account.

1. starts moto's server on 127.0.0.1 (a free port, stopped at the end);
2. deploys the CDK stack to it with the pinned CDK CLI (log groups, IAM policies, the layer);
3. runs the article's ``examples/app.py``, unchanged, with boto3 pointed at that endpoint;
4. invokes the sample Lambda function once through the real runtime client (awslambdaric),
   importing the library only from the built layer;
5. shows, per log group, its retention and what arrived, through the package's own viewer
   (``python -m aws_cloudwatch_logs_handler tail``), and the sample invocation by its request id.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import boto3

from infra.app import cdk_json_context
from infra.config import infra_config_from_context
from infra.deploy import SERVER_LOG, deploy_local
from infra.local_endpoint import running_local_endpoint
from infra.sample import HANDLER as SAMPLE_HANDLER
from infra.sample import LOG_GROUP_ENV
from infra.sample import SOURCE_DIR as SAMPLE_DIR
from lambda_layer.build import ensure_layer
from local_aws.lambda_runtime import LambdaRuntime, copy_function, unzip_layer

HERE = Path(__file__).resolve().parent
APP = HERE / "app.py"
APP_GROUP = "/custom/application-logs"
REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "demo", "AWS_SECRET_ACCESS_KEY": "demo"}


def local_environment(endpoint_url: str) -> dict[str, str]:
    """The environment that points boto3, and so the handler, at the local endpoint."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_CREDENTIALS)
    env.update(AWS_DEFAULT_REGION=REGION, AWS_REGION=REGION, AWS_ENDPOINT_URL=endpoint_url)
    return env


def run_app(endpoint_url: str) -> None:
    """Run the article's app.py unchanged, as its own process, against ``endpoint_url``."""
    print(f"\n== python {APP.relative_to(HERE.parent)}   (AWS_ENDPOINT_URL={endpoint_url})")
    subprocess.run([sys.executable, str(APP)], env=local_environment(endpoint_url), check=True)


def invoke_sample(endpoint_url: str, log_group: str, workdir: Path) -> str:
    """Invoke the sample function once under awslambdaric, with the library from the layer.

    Returns the invocation's request id.
    """
    print(f"\n== the sample function ({SAMPLE_HANDLER}) under awslambdaric, from the layer")
    layer_python = unzip_layer(ensure_layer(), workdir / "opt")
    task_dir = workdir / "task"
    module = SAMPLE_HANDLER.partition(".")[0]
    copy_function(SAMPLE_DIR / f"{module}.py", task_dir, module_name=module)
    with LambdaRuntime(
        task_dir,
        handler=SAMPLE_HANDLER,
        layer_python_dir=layer_python,
        endpoint_url=endpoint_url,
        function_name="sample",
        log_path=workdir / "runtime.log",
        extra_env={LOG_GROUP_ENV: log_group},
    ) as runtime:
        result = runtime.invoke({"messages": ["hello from Lambda", "delivered before return"]})
        print(f"   request {result.request_id}: {result.json()}")
    return result.request_id


def tail(endpoint_url: str, group: str, *options: str) -> None:
    """Show what arrived in ``group`` as a user would: the package's ``tail`` command."""
    command = ["python", "-m", "aws_cloudwatch_logs_handler", "tail", group, "--since", "1h"]
    print(f"\n$ {' '.join([*command, *options])}", flush=True)
    subprocess.run(
        [sys.executable, *command[1:], *options], env=local_environment(endpoint_url), check=True
    )


def show_groups(client: Any, endpoint_url: str, groups: Iterable[str]) -> None:
    """Print each group's retention, then what arrived in it, oldest first."""
    for group in groups:
        found = [
            g
            for g in client.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
            if g["logGroupName"] == group
        ]
        if not found:
            print(f"\nlog group {group}: missing")
            continue
        retention = found[0].get("retentionInDays")
        days = f"{retention} days" if retention else "never expires"
        print(f"\nlog group {group}  (retention: {days})")
        tail(endpoint_url, group)


def main(argv: list[str] | None = None) -> None:
    """Start the endpoint, deploy, run the app and the function, show what arrived, stop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-deploy", action="store_true", help="skip the CDK deploy (faster)")
    args = parser.parse_args(argv)
    # The sample function is opt-in; the demo deploys it and runs its code.
    config = infra_config_from_context({**cdk_json_context(), "sample": True})
    assert config.sample_log_group is not None
    SERVER_LOG.parent.mkdir(parents=True, exist_ok=True)
    with running_local_endpoint(log_path=SERVER_LOG) as endpoint:
        print(f"local AWS endpoint (moto) at {endpoint.url}")
        client = boto3.session.Session(
            aws_access_key_id="demo", aws_secret_access_key="demo", region_name=REGION
        ).client("logs", endpoint_url=endpoint.url)
        if not args.no_deploy:
            print("\n== cdk deploy (bootstrap included) to the local endpoint")
            deploy_local(endpoint.url, context={"sample": "true"})
        else:
            client.create_log_group(logGroupName=config.sample_log_group)
        run_app(endpoint.url)
        with tempfile.TemporaryDirectory(prefix="demo-lambda-") as workdir:
            request_id = invoke_sample(endpoint.url, config.sample_log_group, Path(workdir))
        show_groups(client, endpoint.url, [APP_GROUP, *(group.name for group in config.log_groups)])
        print("\n== the sample invocation alone, found by its request id")
        tail(endpoint.url, config.sample_log_group, "--request-id", request_id)


if __name__ == "__main__":
    main()
