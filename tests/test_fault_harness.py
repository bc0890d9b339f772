"""The fault-injection harness works: the front faults and refuses as told, the proxy cuts.

The delivery tests trust these tools to stand in for a bad day on AWS; if the tools silently
passed everything through, every delivery test would pass for the wrong reason.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import pytest
from fake_clock import FakeClock
from fault_proxy import FaultProxy, fault_proxy

from local_aws.aws_front import (
    BATCH_BYTES_LIMIT,
    EVENT_BYTES_LIMIT,
    LEGACY_EVENT_BYTES_LIMIT,
    AwsFront,
    Call,
    Refusal,
    TokenBucket,
    check_names,
    check_put_log_events,
)
from local_aws.moto_endpoint import FAKE_CREDENTIALS, REGION, MotoEndpoint

pytestmark = pytest.mark.slow  # the fault proxy itself, over real sockets and timeouts

NOW_MS = 1_800_000_000_000
HOUR_MS = 3_600_000
# Errors a client sees when the network fails under it (refused, reset, closed mid-answer).
NETWORK_ERRORS = (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)


def direct_client(url: str, *, read_timeout_s: float = 10.0) -> Any:
    """Return a logs client that makes exactly one attempt per call, so each fault shows."""
    config = botocore.config.Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=2,
        read_timeout=read_timeout_s,
    )
    session = boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=FAKE_CREDENTIALS["aws_secret_access_key"],
    )
    return session.client("logs", endpoint_url=url, config=config)


def new_stream(client: Any) -> tuple[str, str]:
    """Create a uniquely named group and stream through ``client`` and return their names."""
    group, stream = f"/harness/{uuid.uuid4().hex}", "stream-1"
    client.create_log_group(logGroupName=group)
    client.create_log_stream(logGroupName=group, logStreamName=stream)
    return group, stream


def put_events(client: Any, group: str, stream: str, *messages: str) -> None:
    """Send ``messages`` in one PutLogEvents call."""
    client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events(*messages))


def events(*messages: str, start_ms: int | None = None) -> list[dict[str, Any]]:
    """Return PutLogEvents events for ``messages``, one millisecond apart."""
    base = int(time.time() * 1000) if start_ms is None else start_ms
    return [{"timestamp": base + i, "message": m} for i, m in enumerate(messages)]


@pytest.fixture
def front(moto_server: MotoEndpoint) -> Iterator[AwsFront]:
    """A fresh front before the session's moto server, stopped after the test."""
    with AwsFront(moto_server.url) as running:
        yield running


def test_front_passes_valid_calls_through_unchanged(
    front: AwsFront, moto_server: MotoEndpoint
) -> None:
    """A valid batch sent through the front is stored by moto as sent, and counted, not refused."""
    client = direct_client(front.url)
    group, stream = new_stream(client)
    sent = ["plain", "multibyte é 😀", "x" * 10_000]
    put_events(client, group, stream, *sent)
    assert moto_server.messages(group, stream) == sent
    assert front.refused == []
    assert front.calls == {"CreateLogGroup": 1, "CreateLogStream": 1, "PutLogEvents": 1}
    assert [batch.events for batch in front.batches] == [3]


def test_front_throttles_when_told(front: AwsFront, moto_server: MotoEndpoint) -> None:
    """With throttling on, PutLogEvents fails with ThrottlingException and nothing reaches moto."""
    client = direct_client(front.url)
    group, stream = new_stream(client)
    front.inject("throttling", every=1)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        put_events(client, group, stream, "lost")
    error = caught.value.response
    assert error["Error"]["Code"] == "ThrottlingException"
    assert error["Error"]["Message"] == "Rate exceeded"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert moto_server.messages(group, stream) == []
    front.clear_faults()
    put_events(client, group, stream, "kept")
    assert moto_server.messages(group, stream) == ["kept"]
    assert front.faults == {"PutLogEvents": 1}


def test_bucket_lets_one_seconds_worth_through_then_the_rate() -> None:
    """A full bucket passes one second of calls at once, then one call per 1/rate seconds."""
    clock = FakeClock()
    bucket = TokenBucket(5.0, clock=clock)
    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    clock.now_s += 0.1  # half a token
    assert not bucket.take()
    clock.now_s += 0.1  # a whole one
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now_s += 60.0  # an idle minute refills one second's worth, no more
    assert sum(bucket.take() for _ in range(20)) == 5


def test_bucket_refills_continuously_at_its_rate() -> None:
    """Over ten seconds of calls every 10 ms, a 50/s bucket passes 50 at once plus 50 a second."""
    clock = FakeClock()
    bucket = TokenBucket(50.0, clock=clock)
    passed = 0
    for _ in range(1000):
        passed += bucket.take()
        clock.now_s += 0.01
    assert 50 + 499 <= passed <= 50 + 500


def test_bucket_below_one_call_a_second_still_passes_calls() -> None:
    """A rate under 1/s holds one call, and refills it after 1/rate seconds."""
    clock = FakeClock()
    bucket = TokenBucket(0.5, clock=clock)
    assert [bucket.take(), bucket.take()] == [True, False]
    clock.now_s += 1.9
    assert not bucket.take()
    clock.now_s += 0.1
    assert bucket.take()


def test_bucket_refuses_a_rate_that_is_not_positive() -> None:
    """A zero or negative rate is a mistake in the test, said at once."""
    with pytest.raises(ValueError, match="rate_per_s"):
        TokenBucket(0.0)


def test_front_enforces_account_wide_rates_as_aws_answers_them(moto_server: MotoEndpoint) -> None:
    """Over its rate, a call from any client gets the 400 ThrottlingException botocore parses."""
    from aws_cloudwatch_logs_handler._logs_api import classify

    clock = FakeClock()
    with AwsFront(moto_server.url, rates={"CreateLogStream": 2.0}, clock=clock) as front:
        first, second = direct_client(front.url), direct_client(front.url)
        group = f"/harness/{uuid.uuid4().hex}"
        first.create_log_group(logGroupName=group)  # not rate-limited: no bucket for it
        first.create_log_stream(logGroupName=group, logStreamName="a")
        second.create_log_stream(logGroupName=group, logStreamName="b")
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            second.create_log_stream(logGroupName=group, logStreamName="c")
        error = caught.value.response
        assert error["Error"]["Code"] == "ThrottlingException"
        assert error["Error"]["Message"] == "Rate exceeded"
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert classify(caught.value) is not None
        assert classify(caught.value)[0] == "transient"  # type: ignore[index]
        clock.now_s += 0.5  # one token back
        second.create_log_stream(logGroupName=group, logStreamName="c")
        front.inject("internal_error", every=1, operations=["PutLogEvents"])
        with pytest.raises(botocore.exceptions.ClientError):
            put_events(first, group, "a", "faulted")
        front.clear_faults()
        out_of_order = list(reversed(events("x", "y")))
        with pytest.raises(botocore.exceptions.ClientError):  # refused: out of order
            first.put_log_events(logGroupName=group, logStreamName="a", logEvents=out_of_order)
        assert moto_server.streams(group) == ["a", "b", "c"]
        assert front.throttled == {"CreateLogStream": 1}
        assert front.rates == {"CreateLogStream": 2.0}
        assert front.call_log == [
            Call(1000.0, "CreateLogGroup", "passed"),
            Call(1000.0, "CreateLogStream", "passed"),
            Call(1000.0, "CreateLogStream", "passed"),
            Call(1000.0, "CreateLogStream", "throttled"),
            Call(1000.5, "CreateLogStream", "passed"),
            Call(1000.5, "PutLogEvents", "fault"),
            Call(1000.5, "PutLogEvents", "refused"),
        ]


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("internal_error", 500, "InternalFailure"),
        ("service_unavailable", 503, "ServiceUnavailableException"),
    ],
)
def test_front_answers_server_errors(front: AwsFront, kind: Any, status: int, code: str) -> None:
    """The 5xx faults reach the client with the status and error code real AWS uses."""
    client = direct_client(front.url)
    group, stream = new_stream(client)
    front.inject(kind, every=1)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        put_events(client, group, stream, "m")
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_front_faults_a_seeded_share(front: AwsFront) -> None:
    """A share of 0.5 faults about half the calls, and the same seed faults the same calls."""
    client = direct_client(front.url)
    group, stream = new_stream(client)
    outcomes: list[list[bool]] = []
    for _ in range(2):
        front.clear_faults()
        front.inject("throttling", share=0.5, seed=42)
        run = []
        for i in range(60):
            try:
                put_events(client, group, stream, f"m{i}")
                run.append(False)
            except botocore.exceptions.ClientError:
                run.append(True)
        outcomes.append(run)
    assert outcomes[0] == outcomes[1]
    assert 15 <= sum(outcomes[0]) <= 45, f"{sum(outcomes[0])} of 60 throttled"


def test_front_runs_outlast_quick_retries(front: AwsFront) -> None:
    """``runs=(3, 3)`` faults calls 1-3, passes 4-6, faults 7-9: bursts outlasting quick retries."""
    client = direct_client(front.url)
    group, stream = new_stream(client)
    front.inject("throttling", runs=(3, 3), operations=("PutLogEvents",))
    faulted = []
    for i in range(9):
        try:
            put_events(client, group, stream, f"{i}")
            faulted.append(False)
        except botocore.exceptions.ClientError:
            faulted.append(True)
    assert faulted == [True] * 3 + [False] * 3 + [True] * 3


def test_front_refuses_a_batch_too_big(front: AwsFront, moto_server: MotoEndpoint) -> None:
    """A batch over 1,048,576 bytes (26 per event counted) is refused, though moto would take it."""
    client = direct_client(front.url)
    group, stream = new_stream(client)
    # 2 x 524,263 bytes + 2 x 26 = 1,048,578: two bytes too many, only because of the overhead.
    half = "a" * 524_263
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        put_events(client, group, stream, half, half)
    assert caught.value.response["Error"]["Code"] == "InvalidParameterException"
    assert [r.reason for r in front.refused] == ["batch_bytes"]
    assert moto_server.messages(group, stream) == []


def test_front_ignores_a_request_cut_off_mid_body(front: AwsFront) -> None:
    """A request whose body never fully arrives is neither refused nor passed on nor answered."""
    raw = socket.create_connection(("127.0.0.1", int(front.url.rsplit(":", 1)[1])), timeout=5)
    raw.sendall(
        b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: Logs_20140328.PutLogEvents\r\n"
        b'Content-Length: 100\r\n\r\n{"logGroupName"'
    )
    raw.shutdown(socket.SHUT_WR)  # the rest of the body never comes
    assert raw.recv(1024) == b""
    raw.close()
    assert front.refused == []
    assert front.calls == {}


def test_front_refuses_bad_names(front: AwsFront) -> None:
    """CreateLogGroup and CreateLogStream with names AWS refuses are refused, not passed to moto."""
    client = direct_client(front.url)
    for bad_group in ("aws/reserved", "has space", "x" * 513):
        with pytest.raises(botocore.exceptions.ClientError):
            client.create_log_group(logGroupName=bad_group)
    group = f"/harness/{uuid.uuid4().hex}"
    client.create_log_group(logGroupName=group)
    for bad_stream in ("a:b", "a*b", "s" * 513):
        with pytest.raises(botocore.exceptions.ClientError):
            client.create_log_stream(logGroupName=group, logStreamName=bad_stream)
    reasons = [r.reason for r in front.refused]
    assert reasons == ["group_name"] * 3 + ["stream_name"] * 3


def test_front_refuses_bad_retention(front: AwsFront) -> None:
    """PutRetentionPolicy with a value outside the 22 allowed ones is refused."""
    client = direct_client(front.url)
    group, _ = new_stream(client)
    with pytest.raises(botocore.exceptions.ClientError):
        client.put_retention_policy(logGroupName=group, retentionInDays=2)
    client.put_retention_policy(logGroupName=group, retentionInDays=3)
    assert [r.reason for r in front.refused] == ["retention"]


def reasons(body: dict[str, Any], **kwargs: Any) -> list[str]:
    """Return the reasons the front's PutLogEvents check gives for ``body``."""
    return [refusal.reason for refusal in check_put_log_events(body, now_ms=NOW_MS, **kwargs)]


def put(*batch: dict[str, Any], group: str = "/g", stream: str = "s") -> dict[str, Any]:
    """Return a PutLogEvents request body."""
    return {"logGroupName": group, "logStreamName": stream, "logEvents": list(batch)}


def ev(message: str, offset_ms: int = 0) -> dict[str, Any]:
    """Return one event ``offset_ms`` after the fixed test time."""
    return {"timestamp": NOW_MS + offset_ms, "message": message}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (put(ev("a" * EVENT_BYTES_LIMIT)), []),
        (put(ev("a" * (EVENT_BYTES_LIMIT + 1))), ["event_bytes", "batch_bytes"]),
        (put(ev("é" * (EVENT_BYTES_LIMIT // 2 + 1))), ["event_bytes", "batch_bytes"]),
        (put(*[ev("") for _ in range(1)]), ["empty_message"]),
        (put(*[ev("m") for _ in range(10_000)]), []),
        (put(*[ev("m") for _ in range(10_001)]), ["event_count"]),
        (put(), ["event_count"]),
        (put(ev("late", 5), ev("early", 0)), ["order"]),
        (put(ev("old", -25 * HOUR_MS), ev("now")), ["span"]),
        (put(ev("old", -24 * HOUR_MS), ev("now")), []),
        # Events the service drops as too old (over 14 days) do not count towards the 24 h span.
        (put(ev("ancient", -15 * 24 * HOUR_MS), ev("now")), []),
        (put(ev("m"), group="aws/lambda/x"), ["group_name"]),
        (put(ev("m"), stream="a:b"), ["stream_name"]),
    ],
    ids=[
        "largest-event",
        "event-one-byte-over",
        "multibyte-event-over",
        "empty-message",
        "10000-events",
        "10001-events",
        "no-events",
        "out-of-order",
        "span-25h",
        "span-24h",
        "too-old-outside-span",
        "aws-prefix",
        "colon-in-stream",
    ],
)
def test_put_log_events_check(body: dict[str, Any], expected: list[str]) -> None:
    """The front's PutLogEvents check refuses exactly what AWS documents as refused."""
    assert reasons(body) == expected


def test_batch_bytes_count_the_overhead() -> None:
    """A batch of exactly 1,048,576 bytes with the overhead passes; one byte more is refused."""
    first = "a" * (BATCH_BYTES_LIMIT - 2 * 26 - 1000)
    assert reasons(put(ev(first), ev("b" * 1000))) == []
    assert reasons(put(ev(first), ev("b" * 1001))) == ["batch_bytes"]


def test_legacy_event_limit() -> None:
    """In 256 KB mode an event over 262,118 bytes is refused and one at the limit passes."""
    limit = LEGACY_EVENT_BYTES_LIMIT
    assert reasons(put(ev("a" * limit)), max_event_bytes=limit) == []
    assert reasons(put(ev("a" * (limit + 1))), max_event_bytes=limit) == ["event_bytes"]


def test_name_check_allows_the_documented_characters() -> None:
    """Group names of 512 allowed characters pass; names of 513 or with other characters do not."""
    assert check_names("CreateLogGroup", {"logGroupName": "/a.b-c_d#E/9" + "x" * 500}) == []
    assert check_names("CreateLogGroup", {"logGroupName": "x" * 513}) == [
        Refusal("CreateLogGroup", "group_name", f"invalid log group name {'x' * 513!r:.80}")
    ]
    assert check_names("CreateLogStream", {"logStreamName": "any thing/é" * 10}) == []


def test_proxy_forwards_then_cut_gives_connection_errors(moto_server: MotoEndpoint) -> None:
    """Calls through the proxy succeed, fail with network errors after cut(), heal on restore()."""
    with fault_proxy(moto_server.url) as proxy:
        client = direct_client(proxy.url)
        group, stream = new_stream(client)
        # moto's server closes after each answer, so hold a connection open to see cut() drop it,
        # once the proxy has seen the set-up calls' connections close (else cut() drops those too).
        assert proxy.wait_idle()
        held = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        assert proxy.wait_open(1)
        proxy.cut()
        with pytest.raises(ConnectionResetError):
            held.recv(1)
        held.close()
        for _ in range(3):
            with pytest.raises(NETWORK_ERRORS):
                put_events(client, group, stream, "x")
        proxy.restore()
        put_events(client, group, stream, "back")
        counters = proxy.counters()
    assert moto_server.messages(group, stream) == ["back"]
    assert counters.refused >= 3, counters
    assert counters.dropped == 1, counters


def test_proxy_reset_sends_rst_to_open_connections(moto_server: MotoEndpoint) -> None:
    """reset() makes an open connection fail with ECONNRESET while new connections still work."""
    with fault_proxy(moto_server.url) as proxy:
        raw = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        raw.sendall(b"GET /moto-api/ HTTP/1.1\r\nHost: x\r\n")  # an unfinished request
        assert proxy.wait_open(1)
        proxy.reset()
        with pytest.raises(ConnectionResetError):
            raw.sendall(b"\r\n")
            raw.recv(1024)
        raw.close()
        client = direct_client(proxy.url)
        new_stream(client)
    assert proxy.counters().dropped == 1


def test_proxy_blackhole_times_the_client_out(moto_server: MotoEndpoint) -> None:
    """In a blackhole a call hangs until the client's read timeout; after restore() it succeeds."""
    with fault_proxy(moto_server.url) as proxy:
        client = direct_client(proxy.url, read_timeout_s=1.0)
        group, stream = new_stream(client)
        proxy.blackhole()
        started = time.monotonic()
        with pytest.raises(botocore.exceptions.ReadTimeoutError):
            put_events(client, group, stream, "x")
        waited = time.monotonic() - started
        proxy.restore()
        put_events(client, group, stream, "y")
    assert 0.9 <= waited < 5, f"waited {waited:.2f} s"
    assert moto_server.messages(group, stream) == ["y"]


def test_proxy_stop_closes_everything(moto_server: MotoEndpoint) -> None:
    """After stop() the port refuses connections and no proxy thread is left running."""
    proxy = FaultProxy("127.0.0.1", int(moto_server.url.rsplit(":", 1)[1])).start()
    client = direct_client(proxy.url)
    new_stream(client)  # leaves a keep-alive connection open in the proxy
    open_connection = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    proxy.stop()
    try:
        ended = open_connection.recv(1) == b""  # closed with a FIN...
    except ConnectionResetError:
        ended = True  # ...or with a RST: either way the proxy let go of it
    open_connection.close()
    assert ended
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=5).close()
    leftovers = [t.name for t in threading.enumerate() if t.name.startswith("fault-proxy")]
    assert leftovers == []


def test_front_stop_closes_keep_alive_connections(moto_server: MotoEndpoint) -> None:
    """After stop() the front's port refuses and an idle keep-alive connection is closed."""
    front = AwsFront(moto_server.url).start()
    raw = socket.create_connection(("127.0.0.1", int(front.url.rsplit(":", 1)[1])), timeout=5)
    raw.sendall(b"GET /moto-api/ HTTP/1.1\r\nHost: x\r\n\r\n")
    first = raw.recv(65_536)
    assert first.startswith(b"HTTP/1.1 200")
    front.stop()
    # Drain what is left of the answer; the connection must then end instead of idling.
    deadline = time.monotonic() + 5
    while raw.recv(65_536) and time.monotonic() < deadline:
        continue
    raw.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(front.url.rsplit(":", 1)[1])), timeout=5)
