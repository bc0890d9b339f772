"""A moto server on 127.0.0.1 that tests talk to over real HTTP, as boto3 talks to AWS."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import boto3
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from local_aws.atomic_logs import make_logs_writes_atomic

REGION = "us-east-1"
T = TypeVar("T")
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass(frozen=True)
class MotoEndpoint:
    """A running moto server and how to reach it."""

    url: str
    server: ThreadedMotoServer

    def logs_client(self) -> Any:
        """Return a CloudWatch Logs client pointed at this endpoint."""
        return logs_client(self.url)

    def reset(self) -> None:
        """Forget every resource, as an endpoint restarted with no state would."""
        reset_endpoint(self.url)

    def events(self, group: str, stream: str) -> list[dict[str, Any]]:
        """Return every event the endpoint holds for one stream, oldest first."""
        return read_events(self.logs_client(), group, stream)

    def messages(self, group: str, stream: str) -> list[str]:
        """Return the messages of one stream, oldest first."""
        return [event["message"] for event in self.events(group, stream)]

    def streams(self, group: str) -> list[str]:
        """Return the names of a group's streams."""
        return stream_names(self.logs_client(), group)


def empty_while_missing(read: Callable[[], T], empty: T) -> T:
    """``read()``, or ``empty`` while the group or stream it reads does not exist yet (a test
    polling for records that no flush sends)."""
    try:
        return read()
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        return empty


def logs_client(endpoint_url: str) -> Any:
    """Return a CloudWatch Logs client for ``endpoint_url``, with the fake credentials."""
    session = boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=FAKE_CREDENTIALS["aws_secret_access_key"],
    )
    return session.client("logs", endpoint_url=endpoint_url)


@contextmanager
def running_moto_server(port: int = 0) -> Iterator[MotoEndpoint]:
    """Start moto's server on loopback (never its 0.0.0.0 default), stop it on exit."""
    # werkzeug (moto's server) logs every request at INFO, to a handler of its own if it finds
    # none: the output of a test or a benchmark should show results, not requests.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    make_logs_writes_atomic()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound_port = server.get_host_and_port()
    try:
        yield MotoEndpoint(url=f"http://{host}:{bound_port}", server=server)
    finally:
        server.stop()


def fake_aws_environment(endpoint_url: str | None = None) -> dict[str, str]:
    """Return environment variables that point boto3 at a local endpoint with fake credentials."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"):
        os.environ.pop(name, None)
    return env


def reset_endpoint(endpoint_url: str) -> None:
    """Make the moto server at ``endpoint_url`` forget every resource."""
    import urllib.request

    # Only ever called with a moto server's own http://127.0.0.1 URL, never user input.
    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        response.read()


_MAX_PAGES = 10_000  # far more pages than any test or benchmark writes


def stream_names(client: Any, group: str) -> list[str]:
    """Return the names of a group's streams, every page of them."""
    paginator = client.get_paginator("describe_log_streams")
    return [
        stream["logStreamName"]
        for page in paginator.paginate(logGroupName=group)
        for stream in page["logStreams"]
    ]


def read_events(client: Any, group: str, stream: str) -> list[dict[str, Any]]:
    """Return every event a reader sees in one stream now, oldest first."""
    events: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(_MAX_PAGES):
        kwargs: dict[str, Any] = {
            "logGroupName": group,
            "logStreamName": stream,
            "startFromHead": True,
        }
        if token:
            kwargs["nextToken"] = token
        page = client.get_log_events(**kwargs)
        events.extend(page["events"])
        # moto repeats the token once the stream is exhausted.
        if not page["events"] or page.get("nextForwardToken") == token:
            break
        token = page.get("nextForwardToken")
    return events
