"""The endpoints the contenders talk to: one moto server on loopback, and a dead port for outages.

moto runs in its own process so that its CPU is never counted against a contender (each worker
measures its own process only) and so that it does not share a GIL with anything measured.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.imports import REPO_ROOT
from local_aws.moto_endpoint import read_events, reset_endpoint

REGION = "us-east-1"
LOOPBACK = "127.0.0.1"
_START_TIMEOUT_S = 30.0


def fake_aws_environment(endpoint_url: str) -> dict[str, str]:
    """Return an environment in which boto3 can only reach ``endpoint_url``, with fake credentials.

    ``AWS_ENDPOINT_URL`` is how the article's handler (which builds its own default client) is
    pointed at the endpoint without changing its code.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") and name != "BOTO_CONFIG"
    }
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": endpoint_url,
            # No shared config or credentials file can redirect a worker to a real account.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def _wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:  # bounded: gives up after _START_TIMEOUT_S
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited early with code {process.returncode}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"moto_server not listening on {LOOPBACK}:{port} after {_START_TIMEOUT_S} s")


@contextmanager
def moto_server(defer_puts: bool = False) -> Iterator[str]:
    """Run moto on 127.0.0.1 (never its 0.0.0.0 default) and yield its URL.

    Served with keep-alive (`local_aws.keep_alive_moto`), as CloudWatch Logs serves: moto's own
    server closes the connection after every call, a connect and a close no AWS user pays.
    ``defer_puts``: PutLogEvents is answered at once and applied before the next other call, so
    that moto's parsing of each batch is not done on the host while calls are timed.
    """
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local_aws.keep_alive_moto",
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            *(["--defer-puts"] if defer_puts else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO_ROOT,
    )
    try:
        _wait_until_listening(port, process)
        yield f"http://{LOOPBACK}:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def dead_endpoint() -> Iterator[str]:
    """Yield the URL of a loopback port that refuses connections, as an endpoint in an outage.

    The socket is bound but never listens, so the port stays ours (nothing else can take it) and
    every connection attempt is refused at once.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as reserved:
        reserved.bind((LOOPBACK, 0))
        yield f"http://{LOOPBACK}:{reserved.getsockname()[1]}"


def reset(endpoint_url: str) -> None:
    """Make moto forget every resource, so each repetition starts from an empty endpoint."""
    reset_endpoint(endpoint_url)


def visible_messages(client: Any, group: str, stream: str) -> list[str]:
    """Return the messages a reader sees in one stream right now, oldest first."""
    try:
        return [event["message"] for event in read_events(client, group, stream)]
    except client.exceptions.ResourceNotFoundException:
        return []  # the stream does not exist yet: nothing is visible
