"""Deploy the stack with the real CDK CLI (bootstrap included): locally unless told ``aws``.

    python -m infra.deploy                 # to $AWS_ENDPOINT_URL, or a moto server started here
    python -m infra.deploy --keep-endpoint # ... and leave that server running afterwards
    python -m infra.deploy --target aws    # to the account of your AWS credentials

Local deploys always run with fake credentials, so nothing reaches a real account unless the
word ``aws`` was given; ``--target aws`` drops any endpoint override for the same reason.
The CLI is given the endpoint as ``localhost``: against 127.0.0.1, CloudFormation's changeset
fails with "The specified bucket does not exist" after the assets were published.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import boto3

from lambda_layer.build import ensure_layer

from .local_endpoint import PROJECT_ROOT, start_local_endpoint

LOCAL_REGION: Final = "us-east-1"
LOCAL_ACCOUNT: Final = "123456789012"
"""The account moto answers to fake credentials with."""
FAKE_CREDENTIALS: Final = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
_CLI: Final = ("npx", "--no-install", "cdk")
SERVER_LOG: Final = PROJECT_ROOT / "build" / "local_endpoint.log"
"""Where a moto server started here writes its own messages, away from the CLI's output."""
_CLI_TIMEOUT_S: Final = 1800
# Variables that could point the CLI at a real account or a different endpoint.
_AWS_SELECTORS: Final = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


class DeployError(RuntimeError):
    """A CDK CLI step failed; the message names the step and its exit code."""


def cli_endpoint(endpoint_url: str) -> str:
    """Return ``endpoint_url`` with a loopback address spelled ``localhost`` for the CDK CLI."""
    parts = urlsplit(endpoint_url)
    if parts.hostname not in {"127.0.0.1", "::1"}:
        return endpoint_url
    netloc = "localhost" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def local_cli_env(endpoint_url: str, *, region: str = LOCAL_REGION) -> dict[str, str]:
    """Return the CLI's environment for a local endpoint: fake credentials, no profile."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _AWS_SELECTORS and not name.startswith("AWS_ENDPOINT_URL")
    }
    env.update(FAKE_CREDENTIALS)
    env.update(
        AWS_REGION=region,
        AWS_DEFAULT_REGION=region,
        AWS_ENDPOINT_URL=cli_endpoint(endpoint_url),
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
    )
    return env


def aws_cli_env() -> dict[str, str]:
    """Return the CLI's environment for the real account: the user's credentials, no override."""
    env = {
        name: value for name, value in os.environ.items() if not name.startswith("AWS_ENDPOINT_URL")
    }
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    return env


def _run_cli(step: str, args: Sequence[str], *, env: Mapping[str, str]) -> float:
    started = time.perf_counter()
    command = [*_CLI, *args, "--no-notices"]
    print(f"$ {' '.join(command)}", flush=True)
    result = subprocess.run(
        command, cwd=PROJECT_ROOT, env=dict(env), check=False, timeout=_CLI_TIMEOUT_S
    )
    if result.returncode != 0:
        raise DeployError(f"cdk {step} failed with exit code {result.returncode}")
    return time.perf_counter() - started


def _context_args(context: Mapping[str, str] | None) -> list[str]:
    return [arg for key, value in (context or {}).items() for arg in ("-c", f"{key}={value}")]


def _deploy(
    *,
    environment: str,
    env: Mapping[str, str],
    approval: str | None,
    context: Mapping[str, str] | None,
    output: Path | None,
) -> None:
    ensure_layer()
    extra = [*_context_args(context), *(["--output", str(output)] if output else [])]
    bootstrap_s = _run_cli("bootstrap", ["bootstrap", environment, *extra], env=env)
    deploy_args = ["deploy", "--all", "--progress", "events", *extra]
    if approval is not None:
        deploy_args += ["--require-approval", approval]
    deploy_s = _run_cli("deploy", deploy_args, env=env)
    print(f"bootstrap took {bootstrap_s:.1f} s, deploy {deploy_s:.1f} s", flush=True)


def deploy_local(
    endpoint_url: str,
    *,
    region: str = LOCAL_REGION,
    context: Mapping[str, str] | None = None,
    output: Path | None = None,
) -> None:
    """Bootstrap and deploy the stack to the local endpoint at ``endpoint_url``.

    Args:
        endpoint_url: e.g. a moto server's ``http://127.0.0.1:PORT`` (passed on as localhost).
        region: the region to deploy to on that endpoint.
        context: extra ``-c key=value`` pairs, e.g. ``{"creator_policy": "true"}``.
        output: the cloud assembly's directory (default ``cdk.out``).

    Raises:
        DeployError: if bootstrap or deploy fails.
    """
    _deploy(
        environment=f"aws://{LOCAL_ACCOUNT}/{region}",
        env=local_cli_env(endpoint_url, region=region),
        # Nothing to protect locally; the prompt would only block a script.
        approval="never",
        context=context,
        output=output,
    )


def deploy_aws(*, context: Mapping[str, str] | None = None, output: Path | None = None) -> None:
    """Bootstrap and deploy to the account and region of the caller's AWS credentials.

    The CLI asks before it adds IAM permissions (its default ``--require-approval broadening``).

    Raises:
        DeployError: if bootstrap or deploy fails.
    """
    env = aws_cli_env()
    session = boto3.session.Session()
    if not session.region_name:
        raise DeployError("no AWS region configured: set AWS_REGION or a profile's region")
    account = session.client("sts").get_caller_identity()["Account"]
    print(f"deploying to the real AWS account {account} in {session.region_name}", flush=True)
    _deploy(
        environment=f"aws://{account}/{session.region_name}",
        env=env,
        approval=None,
        context=context,
        output=output,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Deploy to the chosen target; start (and stop) a local endpoint when none is named."""
    parser = argparse.ArgumentParser(prog="python -m infra.deploy", description=__doc__)
    parser.add_argument("--target", choices=("local", "aws"), default="local")
    parser.add_argument(
        "--keep-endpoint",
        action="store_true",
        help="leave the moto server this command starts running (prints its URL and pid)",
    )
    parser.add_argument(
        "-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="CDK context"
    )
    args = parser.parse_args(argv)
    context = dict(item.split("=", 1) for item in args.context)
    try:
        if args.target == "aws":
            deploy_aws(context=context)
            return 0
        endpoint_url = os.environ.get("AWS_ENDPOINT_URL")
        if endpoint_url:
            deploy_local(endpoint_url, context=context)
            return 0
        SERVER_LOG.parent.mkdir(parents=True, exist_ok=True)
        endpoint = start_local_endpoint(log_path=SERVER_LOG)
        try:
            print(
                f"started a moto server at {endpoint.url} (pid {endpoint.process.pid}, "
                f"log {SERVER_LOG.relative_to(PROJECT_ROOT)})"
            )
            deploy_local(endpoint.url, context=context)
        finally:
            if not args.keep_endpoint:
                endpoint.stop()
        if args.keep_endpoint:
            print(
                f"moto server left running: export AWS_ENDPOINT_URL={endpoint.url}; "
                f"stop it with kill {endpoint.process.pid}"
            )
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
