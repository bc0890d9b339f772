"""The bench's endpoint: moto's application over HTTP/1.1 keep-alive, as CloudWatch Logs serves."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast
from urllib.parse import urlsplit

import pytest

from bench.endpoint import moto_server
from local_aws.http_base import LocalHTTPServer
from local_aws.keep_alive_moto import KeepAliveWSGIHandler, serve
from local_aws.moto_endpoint import logs_client


@pytest.fixture
def group() -> str:
    """A log group no other test made (the in-process moto keeps its state between tests)."""
    return f"/keep-alive/{uuid.uuid4()}"


@pytest.fixture
def accepted() -> list[object]:
    """The connections the server accepted, one entry each."""
    return []


@contextmanager
def serving(server: LocalHTTPServer) -> Iterator[str]:
    """Serve on a thread of this process while the block runs; yield the server's URL."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def keep_alive_url(accepted: list[object]) -> Iterator[str]:
    server = serve("127.0.0.1", 0)
    accept = server.get_request

    def counted_accept() -> tuple[socket.socket, object]:
        connection = accept()
        accepted.append(connection[1])
        return connection

    server.get_request = counted_accept  # type: ignore[method-assign]
    with serving(server) as url:
        yield url


def _request(target: str, body: dict[str, object]) -> bytes:
    payload = json.dumps(body).encode()
    return (
        b"POST / HTTP/1.1\r\nHost: logs.us-east-1.amazonaws.com\r\n"
        b"Content-Type: application/x-amz-json-1.1\r\n"
        b"X-Amz-Target: Logs_20140328." + target.encode() + b"\r\n"
        b"Authorization: AWS4-HMAC-SHA256 Credential=testing/20261201/us-east-1/logs/aws4_request, "
        b"SignedHeaders=host, Signature=0\r\n"
        b"Content-Length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload
    )


def _read_reply(reader: io.BufferedReader) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP reply by its Content-Length from a buffered socket file."""
    status_line = reader.readline()
    status = int(status_line.split()[1])
    headers = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers["content-length"]))
    return status, headers, body


def _put(client: Any, group: str, timestamp_ms: int, messages: list[str]) -> None:
    """One PutLogEvents call to stream "s" of ``group``: ``messages``, all at ``timestamp_ms``."""
    client.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": timestamp_ms, "message": message} for message in messages],
    )


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return str(parts.hostname), int(parts.port or 80)


def test_one_connection_carries_every_call_of_a_client(keep_alive_url: str, group: str) -> None:
    """A group, a stream, three PutLogEvents and a read, one after another on one socket."""
    now = int(time.time() * 1000)
    stream: dict[str, object] = {"logGroupName": group, "logStreamName": "s"}
    calls: list[tuple[str, dict[str, object]]] = [
        ("CreateLogGroup", {"logGroupName": group}),
        ("CreateLogStream", stream),
    ]
    for i in range(3):
        event = {"timestamp": now + i, "message": f"m{i}"}
        calls.append(("PutLogEvents", {**stream, "logEvents": [event]}))
    calls.append(("GetLogEvents", {**stream, "startFromHead": True}))
    with socket.create_connection(_host_port(keep_alive_url), timeout=10) as raw:
        reader = raw.makefile("rb")
        replies = []
        for target, body in calls:
            raw.sendall(_request(target, body))
            replies.append(_read_reply(reader))
    assert [status for status, _, _ in replies] == [200] * len(calls)
    assert all(headers.get("connection") != "close" for _, headers, _ in replies)
    read = json.loads(replies[-1][2])
    assert [event["message"] for event in read["events"]] == ["m0", "m1", "m2"]


def test_moto_errors_come_back_on_the_same_connection(keep_alive_url: str) -> None:
    """An error reply (a missing group) is relayed as moto gives it, and the socket stays open."""
    with socket.create_connection(_host_port(keep_alive_url), timeout=10) as raw:
        reader = raw.makefile("rb")
        raw.sendall(_request("GetLogEvents", {"logGroupName": "none", "logStreamName": "s"}))
        status, _, body = _read_reply(reader)
        raw.sendall(_request("DescribeLogGroups", {}))
        second, _, _ = _read_reply(reader)
    assert status == 400 and b"ResourceNotFoundException" in body
    assert second == 200


def test_each_reply_goes_out_in_one_write(group: str) -> None:
    """A reply written in two parts would wait for the client's delayed acknowledgement of the
    first (Nagle's algorithm): up to 40 ms a call on a kept connection."""
    writes: list[int] = []
    server = serve("127.0.0.1", 0)
    handler = cast("type[KeepAliveWSGIHandler]", server.RequestHandlerClass)

    class CountingWrites(handler):  # type: ignore[valid-type,misc]
        def setup(self) -> None:
            super().setup()
            write = self.wfile.write

            def counted(data: bytes) -> int:
                writes.append(len(data))
                return int(write(data))

            self.wfile.write = counted

    server.RequestHandlerClass = CountingWrites
    with serving(server) as url:
        client = logs_client(url)
        client.create_log_group(logGroupName=group)
        client.describe_log_groups(logGroupNamePrefix=group)
    assert len(writes) == 2  # two calls, one write each
    assert CountingWrites.disable_nagle_algorithm


def test_a_chunked_body_is_refused_with_411(keep_alive_url: str) -> None:
    """Without a Content-Length, the end of a body (and so the next request) is unknown."""
    with socket.create_connection(_host_port(keep_alive_url), timeout=10) as raw:
        raw.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
        )
        status, _, _ = _read_reply(raw.makefile("rb"))
    assert status == 411


def test_a_boto3_client_makes_all_its_calls_on_one_connection(
    keep_alive_url: str, accepted: list[object], group: str
) -> None:
    """botocore's pool keeps the socket: seven calls, one connection accepted by the server."""
    client = logs_client(keep_alive_url)
    client.create_log_group(logGroupName=group)
    client.create_log_stream(logGroupName=group, logStreamName="s")
    now = int(time.time() * 1000)
    for i in range(4):
        _put(client, group, now + i, [f"m{i}"])
    events = client.get_log_events(logGroupName=group, logStreamName="s")["events"]
    assert [event["message"] for event in events] == [f"m{i}" for i in range(4)]
    assert len(accepted) == 1


def test_the_bench_endpoint_is_this_server() -> None:
    """`bench.endpoint.moto_server` (a process of its own) answers two calls on one socket."""
    with moto_server() as url, socket.create_connection(_host_port(url), timeout=10) as raw:
        reader = raw.makefile("rb")
        raw.sendall(_request("CreateLogGroup", {"logGroupName": "bench"}))
        created, _, _ = _read_reply(reader)
        raw.sendall(_request("DescribeLogGroups", {}))
        listed, _, body = _read_reply(reader)
    assert (created, listed) == (200, 200)
    assert [group["logGroupName"] for group in json.loads(body)["logGroups"]] == ["bench"]


def test_a_burst_of_connections_waits_in_the_backlog_until_accepted() -> None:
    """Forty clients connecting at once (a fleet flushing at exit) are all queued by the kernel
    before the server accepts any: a backlog of 5 dropped the rest, and each then waited a
    second for its connection attempt to be sent again."""
    server = serve("127.0.0.1", 0)  # not serving yet: nothing accepts
    address = ("127.0.0.1", server.server_address[1])
    connected: list[socket.socket] = []
    try:
        for _ in range(40):
            # A dropped attempt would be resent only after a second: 0.5 s tells it apart.
            connected.append(socket.create_connection(address, timeout=0.5))
    finally:
        for connection in connected:
            connection.close()
        server.server_close()
    assert len(connected) == 40


def test_deferred_puts_are_answered_at_once_and_applied_in_order_before_any_other_call(
    group: str,
) -> None:
    """With ``defer_puts`` a PutLogEvents call to a stream made through the server is answered
    before moto applies it, and every kept call reaches moto, in the order it came, before the
    next other call is served: a reader sees every event. A call to a stream the server did not
    make goes to moto at once, so a client that creates its stream when told it is missing (as
    watchtower does) is told."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.logs.models import logs_backends

    with serving(serve("127.0.0.1", 0, defer_puts=True)) as url:
        client = logs_client(url)
        client.create_log_group(logGroupName=group)
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.put_log_events(
                logGroupName=group,
                logStreamName="s",
                logEvents=[{"timestamp": int(time.time() * 1000), "message": "no stream yet"}],
            )
        client.create_log_stream(logGroupName=group, logStreamName="s")
        base_ms = int(time.time() * 1000)
        for batch in range(3):
            _put(client, group, base_ms + batch, [f"{batch}-{i}" for i in range(100)])
        stream = logs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].groups[group].streams["s"]
        assert list(stream.events) == []  # answered, not yet applied
        held = client.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True)
    assert [event["message"] for event in held["events"]] == [
        f"{batch}-{i}" for batch in range(3) for i in range(100)
    ]
