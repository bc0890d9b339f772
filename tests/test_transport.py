"""The sender's own requests, written on the client's connections (`_transport.LeanSession`).

What users rely on: their records land over HTTP and HTTPS; TLS is checked as their client says
(``verify``: a CA bundle, the default bundle, or off); a proxy they configure carries the traffic;
their own calls on a client they share with the handler go through botocore as before; and a
failing network fails each request as botocore's own session would, so retries are botocore's.
"""

from __future__ import annotations

import socket
import ssl
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import botocore.httpsession
import pytest
import trustme
import urllib3.exceptions
from botocore.config import Config
from fault_proxy import FaultProxy
from handler_factory import HandlerFactory, unique_group

from aws_cloudwatch_logs_handler._logs_api import install_encoded_body_hooks
from aws_cloudwatch_logs_handler._transport import (
    LeanSession,
    install_lean_session,
    read_reply,
    request_head,
)
from bench.endpoint import moto_server
from local_aws.moto_endpoint import FAKE_CREDENTIALS, REGION, read_events

PUT = b"Logs_20140328.PutLogEvents"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto served with keep-alive, as CloudWatch Logs serves: connections are kept."""
    with moto_server() as url:
        yield url


def messages(url: str, group: str) -> list[str]:
    return [event["message"] for event in read_events(logs_client(url), group, "s")]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_bundle(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def https_front(endpoint: str, ca: trustme.CA) -> Iterator[FaultProxy]:
    """moto behind TLS, with a certificate for 127.0.0.1 that only ``ca`` vouches for."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    host, _, port = endpoint.removeprefix("http://").partition(":")
    with FaultProxy(host, int(port), tls=context) as front:
        yield front


class BotocoreSends:
    """The X-Amz-Target of every request botocore's own HTTP session sends, by the URL it goes to.

    Read by URL: a handler another test left retrying (its records are kept until the process
    exits) sends through the same class, to an endpoint of its own.
    """

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    def to(self, url: str) -> list[bytes]:
        return [target for sent_to, target in self.sent if sent_to.startswith(url)]


@pytest.fixture
def botocore_sends(monkeypatch: pytest.MonkeyPatch) -> BotocoreSends:
    sends = BotocoreSends()
    send = botocore.httpsession.URLLib3Session.send

    def counted(self: Any, request: Any) -> Any:
        target = request.headers.get("X-Amz-Target", b"")
        sends.sent.append((request.url, target if isinstance(target, bytes) else target.encode()))
        return send(self, request)

    monkeypatch.setattr(botocore.httpsession.URLLib3Session, "send", counted)
    return sends


def logs_client(url: str, **options: Any) -> Any:
    session = boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=FAKE_CREDENTIALS["aws_secret_access_key"],
    )
    return session.client("logs", endpoint_url=url, **options)


def deliver(make_handler: HandlerFactory, client: Any, count: int, flushes: int = 1) -> str:
    """Log ``count`` records in ``flushes`` rounds through a handler on ``client``; its group."""
    group = unique_group()
    handler = make_handler(group, log_stream="s", client=client)
    logger = make_handler.logger(handler)
    per_round = count // flushes
    for round_ in range(flushes):
        for i in range(per_round):
            logger.info("record %d", round_ * per_round + i)
        assert handler.flush(timeout_s=30)
    return group


def test_the_senders_puts_are_written_on_the_clients_connection_and_land(
    endpoint: str, make_handler: HandlerFactory, botocore_sends: BotocoreSends
) -> None:
    client = logs_client(endpoint)
    group = deliver(make_handler, client, 3000, flushes=3)

    assert messages(endpoint, group) == [f"record {i}" for i in range(3000)]
    lean = client._endpoint.http_session
    assert isinstance(lean, LeanSession)
    assert lean.sent >= 3 and lean.declined is None
    assert PUT not in botocore_sends.to(endpoint)  # every put went the lean way
    # The handler's other calls did not.
    assert b"Logs_20140328.CreateLogStream" in botocore_sends.to(endpoint)
    # The user's own calls on the client they share with the handler are botocore's, as before.
    botocore_sends.sent.clear()
    client.put_log_events(
        logGroupName=group, logStreamName="s", logEvents=[{"timestamp": 1, "message": "theirs"}]
    )
    assert botocore_sends.to(endpoint) == [PUT]


def test_https_is_verified_with_the_clients_ca_bundle_on_one_kept_connection(
    https_front: FaultProxy,
    ca_bundle: str,
    endpoint: str,
    make_handler: HandlerFactory,
    botocore_sends: BotocoreSends,
) -> None:
    client = logs_client(https_front.url, verify=ca_bundle)
    group = deliver(make_handler, client, 3000, flushes=3)

    assert messages(endpoint, group) == [f"record {i}" for i in range(3000)]
    assert client._endpoint.http_session.sent >= 3
    assert PUT not in botocore_sends.to(https_front.url)
    # botocore's calls and ours took turns on one connection: one handshake in all.
    assert https_front.counters().accepted == 1


def test_https_with_verification_off_is_delivered(
    https_front: FaultProxy, endpoint: str, make_handler: HandlerFactory
) -> None:
    client = logs_client(https_front.url, verify=False)
    with pytest.warns(Warning, match="Unverified HTTPS request"):  # urllib3's own warning
        group = deliver(make_handler, client, 500)
    assert messages(endpoint, group) == [f"record {i}" for i in range(500)]
    assert client._endpoint.http_session.sent >= 1


def test_a_proxy_the_client_is_given_carries_the_puts(
    https_front: FaultProxy,
    ca_bundle: str,
    endpoint: str,
    make_handler: HandlerFactory,
    botocore_sends: BotocoreSends,
) -> None:
    with FaultProxy("127.0.0.1", https_front.port, http_connect=True) as proxy:
        client = logs_client(
            https_front.url, verify=ca_bundle, config=Config(proxies={"https": proxy.url})
        )
        group = deliver(make_handler, client, 500)
        assert proxy.counters().tunnels == (f"127.0.0.1:{https_front.port}",)
    assert messages(endpoint, group) == [f"record {i}" for i in range(500)]
    assert PUT in botocore_sends.to(https_front.url) and client._endpoint.http_session.sent == 0


def _every_call_lean(client: Any) -> LeanSession:
    """Have ``client`` send every request the lean way, as if each were the sender's."""
    assert install_encoded_body_hooks(client)
    lean = install_lean_session(client, "before-send", lambda: True)
    assert lean is not None
    return lean


@pytest.fixture
def silent_server() -> Iterator[Callable[[bool], str]]:
    """A server that reads a request, then either closes without a word or never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()
    held: list[socket.socket] = []
    mode = {"close": True}

    def serve() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():  # bounded by the fixture's end
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.recv(65_536)
            if mode["close"]:
                conn.close()
            else:
                held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def url(close: bool) -> str:
        mode["close"] = close
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    yield url
    stop.set()
    thread.join(5)
    listener.close()
    for conn in held:
        conn.close()


def _closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize("lean", [False, True], ids=["botocore", "lean"])
@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("closed port", botocore.exceptions.EndpointConnectionError),
        ("closes unanswered", botocore.exceptions.ConnectionClosedError),
        ("never answers", botocore.exceptions.ReadTimeoutError),
        ("untrusted certificate", botocore.exceptions.SSLError),
    ],
)
def test_a_failing_network_fails_a_request_as_botocores_session_does(
    lean: bool,
    where: str,
    expected: type[Exception],
    silent_server: Callable[[bool], str],
    https_front: FaultProxy,
) -> None:
    urls: dict[str, Callable[[], str]] = {
        "closed port": _closed_port,
        "closes unanswered": lambda: silent_server(True),
        "never answers": lambda: silent_server(False),
        "untrusted certificate": lambda: https_front.url,  # the default bundle: not our CA
    }
    url = urls[where]()
    client = logs_client(
        url, config=Config(read_timeout=0.3, connect_timeout=2, retries={"max_attempts": 1})
    )
    session = _every_call_lean(client) if lean else None
    with pytest.raises(expected):
        client.put_log_events(
            logGroupName="g", logStreamName="s", logEvents=[{"timestamp": 1, "message": "m"}]
        )
    if session is not None:
        assert session.sent == 0 and session.declined is None


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@pytest.mark.parametrize("where", ["http", "https, the client's CA bundle", "https, unverified"])
def test_every_call_of_the_api_reads_its_reply_the_lean_way(
    where: str, endpoint: str, https_front: FaultProxy, ca_bundle: str
) -> None:
    # Every call lean, the first one too: the pool is set up as the client says by us alone.
    client = {
        "http": lambda: logs_client(endpoint),
        "https, the client's CA bundle": lambda: logs_client(https_front.url, verify=ca_bundle),
        "https, unverified": lambda: logs_client(https_front.url, verify=False),
    }[where]()
    lean = _every_call_lean(client)
    group = unique_group()
    client.create_log_group(logGroupName=group)
    with pytest.raises(client.exceptions.ResourceAlreadyExistsException):  # an error reply
        client.create_log_group(logGroupName=group)
    client.create_log_stream(logGroupName=group, logStreamName="s")
    client.put_log_events(
        logGroupName=group, logStreamName="s", logEvents=[{"timestamp": 1, "message": "m"}]
    )
    assert client.describe_log_streams(logGroupName=group)["logStreams"][0]["logStreamName"] == "s"
    assert lean.sent == 5


class _PoolWithoutPrivates:
    """A connection pool as a later urllib3 might have it: ``urlopen`` only."""

    _pool: Any

    def __init__(self, pool: Any) -> None:
        object.__setattr__(self, "_pool", pool)

    def urlopen(self, *args: Any, **kwargs: Any) -> Any:
        return self._pool.urlopen(*args, **kwargs)

    @property
    def timeout(self) -> Any:
        return self._pool.timeout

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._pool, name, value)


def test_a_pool_without_the_parts_it_needs_sends_the_plain_way_and_says_so(
    endpoint: str, make_handler: HandlerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = logs_client(endpoint)
    manager = client._endpoint.http_session._manager
    pools = manager.connection_from_url
    monkeypatch.setattr(
        manager, "connection_from_url", lambda url: _PoolWithoutPrivates(pools(url))
    )
    problems: list[str] = []
    group = unique_group()
    handler = make_handler(group, log_stream="s", client=client, on_problem=problems.append)
    logger = make_handler.logger(handler)
    for i in range(3):
        logger.info("record %d", i)
        assert handler.flush(timeout_s=30)

    assert messages(endpoint, group) == ["record 0", "record 1", "record 2"]
    lean = client._endpoint.http_session
    assert lean.sent == 0 and lean.declined is not None and "_get_conn" in lean.declined
    transport = [p for p in problems if "botocore's HTTP session" in p]
    assert len(transport) == 1, problems


def _reply_to(wire: bytes) -> tuple[int, list[tuple[str, str]], bytes, bool]:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(wire)
        theirs.shutdown(socket.SHUT_WR)
        return read_reply(ours)


@pytest.mark.parametrize(
    ("wire", "body", "reusable"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", b"{}", True),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", b"", True),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'3;name=value\r\n{"a\r\n4\r\n": 1\r\n1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n',
            b'{"a": 1}',
            True,
        ),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
            b"{}",
            True,
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}", b"{}", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", b"{}", False),
        (b"HTTP/1.1 200 OK\r\n\r\n{} to the close", b"{} to the close", False),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra", b"{}", False),
    ],
    ids=["length", "empty", "chunked", "continue", "close", "http/1.0", "to-close", "left-over"],
)
def test_a_reply_is_read_in_each_framing_http_allows(
    wire: bytes, body: bytes, reusable: bool
) -> None:
    status, headers, got, can_reuse = _reply_to(wire)
    assert (status, got, can_reuse) == (200, body, reusable)
    if b"Content-Length: 2" in wire:
        assert ("Content-Length", "2") in headers


@pytest.mark.parametrize(
    "wire",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Le",
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"",
    ],
    ids=["short body", "cut head", "not http", "bad header", "nothing"],
)
def test_a_broken_reply_is_an_error_not_a_reply(wire: bytes) -> None:
    from aws_cloudwatch_logs_handler._transport import _BadReplyError

    with pytest.raises(_BadReplyError):
        _reply_to(wire)


def _prepared(url: str, headers: dict[str, Any]) -> Any:
    from botocore.awsrequest import AWSRequest

    return AWSRequest(method="POST", url=url, headers=headers, data=b"{}").prepare()


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://logs.eu-west-1.amazonaws.com/", "logs.eu-west-1.amazonaws.com"),
        ("https://logs.eu-west-1.amazonaws.com:443/", "logs.eu-west-1.amazonaws.com"),
        ("http://127.0.0.1:4566/", "127.0.0.1:4566"),
        ("https://[::1]:8443/", "[::1]:8443"),
        ("http://[::1]/", "[::1]"),
    ],
)
def test_the_host_header_is_the_one_botocores_signer_signs(url: str, host: str) -> None:
    from botocore.auth import (  # type: ignore[attr-defined]  # what SigV4 signs
        _host_from_url,
    )

    head = request_head(_prepared(url, {"X-Amz-Target": b"t"}))
    assert head is not None and head.startswith(b"POST / HTTP/1.1\r\nHost: %s\r\n" % host.encode())
    assert _host_from_url(url) == host
    assert head.endswith(b"X-Amz-Target: t\r\nContent-Length: 2\r\n\r\n")


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Evil": b"a\r\nX-Smuggled: 1"},
        {"X-Evil": "a\nb"},
        {"Expect": b"100-continue"},
        {"transfer-encoding": b"chunked"},
        {"HOST": b"elsewhere"},
    ],
    ids=["crlf in a value", "lf in a value", "expect", "chunked", "own host"],
)
def test_a_head_that_needs_http_clients_care_is_left_to_botocore(headers: dict[str, Any]) -> None:
    assert request_head(_prepared("https://logs.eu-west-1.amazonaws.com/", headers)) is None


def test_a_client_shared_by_two_handlers_is_wrapped_once(
    endpoint: str, make_handler: HandlerFactory
) -> None:
    client = logs_client(endpoint)
    first = deliver(make_handler, client, 200)
    second = deliver(make_handler, client, 300)

    assert messages(endpoint, first) == [f"record {i}" for i in range(200)]
    assert messages(endpoint, second) == [f"record {i}" for i in range(300)]
    lean = client._endpoint.http_session
    assert type(lean._session) is botocore.httpsession.URLLib3Session
    assert lean.sent >= 2


@pytest.mark.parametrize("verify", ["the CA bundle", False])
def test_a_given_client_rebuilt_for_a_forked_child_keeps_its_tls_verification(
    verify: str | bool, https_front: FaultProxy, ca_bundle: str
) -> None:
    from aws_cloudwatch_logs_handler._client import ClientSource

    given = logs_client(https_front.url, verify=ca_bundle if verify else False)
    child = ClientSource(client=given).build_after_fork()

    assert child is not given
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        assert child.describe_log_groups(limit=1)["ResponseMetadata"]["HTTPStatusCode"] == 200
