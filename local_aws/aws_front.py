"""An HTTP front for a moto server that behaves more like real CloudWatch Logs.

moto accepts what AWS refuses (oversized batches, too many events, a 24-hour span, bad names) and
never throttles. This front sits between the client and moto, speaks the CloudWatch Logs JSON
protocol (``X-Amz-Target: Logs_20140328.<Operation>``, a JSON body), and:

- refuses, with ``InvalidParameterException`` as AWS does, every request that breaks a documented
  limit, recording each refusal so a test can assert ``front.refused == []``;
- answers a configurable share of calls with ``ThrottlingException``, HTTP 500 or
  ``ServiceUnavailableException``, counting each injected fault;
- enforces account-wide rates if told (``rates={"CreateLogStream": 5.0}``): one token bucket per
  operation, shared by every client of the front, answering a call over the rate with
  ``ThrottlingException`` "Rate exceeded" as AWS does (a fleet of processes sharing one account);
- logs every call it screens (when, which operation, what became of it) for per-interval counts;
- passes everything else to moto unchanged and relays moto's answer.

The limits are written out here on purpose instead of imported from the library: a check that
reused the library's constants would agree with the library's mistakes.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from local_aws.http_base import AnyMethodHandler, LocalHTTPServer
from local_aws.lifecycle import StartStop

# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html
BATCH_BYTES_LIMIT: Final = 1_048_576
EVENT_OVERHEAD_BYTES: Final = 26
BATCH_EVENTS_LIMIT: Final = 10_000
EVENT_BYTES_LIMIT: Final = BATCH_BYTES_LIMIT - EVENT_OVERHEAD_BYTES
"""The 1 MB event of April 2025: alone in a batch, 1,048,550 UTF-8 bytes of message."""
LEGACY_EVENT_BYTES_LIMIT: Final = 262_144 - EVENT_OVERHEAD_BYTES
"""The 256 KB event limit that applied before April 2025 (`AwsFront(max_event_bytes=...)`)."""
BATCH_SPAN_MS: Final = 24 * 60 * 60 * 1000
TOO_OLD_MS: Final = 14 * 24 * 60 * 60 * 1000
TOO_NEW_MS: Final = 2 * 60 * 60 * 1000
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html
GROUP_NAME: Final = re.compile(r"[.\-_/#A-Za-z0-9]{1,512}")
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogStream.html
STREAM_NAME_CHARS: Final = 512
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
RETENTION_DAYS: Final = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922}
    | {3288, 3653}
)

_TARGET_PREFIX: Final = "Logs_20140328."
_JSON_CONTENT_TYPE: Final = "application/x-amz-json-1.1"
# Headers that describe one hop, not the message (RFC 9110 section 7.6.1): never relayed.
_HOP_BY_HOP: Final = frozenset(
    (
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "expect",
    )
)
_UPSTREAM_TIMEOUT_S: Final = 60.0
_IDLE_TIMEOUT_S: Final = 30.0
"""An idle keep-alive connection is closed after this long, so no handler thread waits forever."""

FaultKind = Literal["throttling", "internal_error", "service_unavailable"]
Outcome = Literal["passed", "throttled", "refused", "fault"]
"""What became of a call: passed to moto, over the account's rate, refused as AWS would, or faulted
on purpose (`AwsFront.inject`)."""
_FAULTS: Final[dict[str, tuple[int, str, str]]] = {
    # The status codes and __type names real CloudWatch Logs answers with.
    "throttling": (400, "ThrottlingException", "Rate exceeded"),
    "internal_error": (500, "InternalFailure", "An internal error occurred"),
    "service_unavailable": (503, "ServiceUnavailableException", "The service is unavailable"),
}


@dataclass(frozen=True)
class Refusal:
    """One limit a request broke, as AWS would have refused it."""

    operation: str
    reason: str
    """Short name of the rule: batch_bytes, event_count, event_bytes, empty_message, order, span,
    group_name, stream_name, retention, bad_request."""
    detail: str


@dataclass(frozen=True)
class Batch:
    """What one accepted PutLogEvents carried, for reporting the sizes a test produced."""

    events: int
    bytes: int
    """UTF-8 bytes of the messages plus 26 per event, as AWS counts them."""
    span_ms: int


@dataclass(frozen=True)
class Call:
    """One call the front screened, for counting calls per interval."""

    at_s: float
    """When it arrived, on the front's clock (`time.monotonic` unless one was injected)."""
    operation: str
    outcome: Outcome


class TokenBucket:
    """Allow ``rate_per_s`` calls a second on average, and bursts of one second's worth.

    AWS does not publish its algorithm; a bucket holding one second of calls, refilled
    continuously, is the usual reading of "N transactions per second" and lets a whole second's
    quota through at once after an idle spell, as the service does.
    https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/logs/cloudwatch_limits_cwl.html

    Not thread-safe: the front calls it under its lock.
    """

    def __init__(self, rate_per_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate_per_s > 0:
            raise ValueError(f"rate_per_s must be positive, not {rate_per_s!r}")
        self.rate_per_s = rate_per_s
        self.capacity = max(1.0, rate_per_s)
        """One second's worth of calls, at least one (a rate under 1/s still lets calls pass)."""
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock()

    def take(self) -> bool:
        """Spend one call's token and return True, or return False if the rate is used up."""
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate_per_s)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


def _utf8_bytes(message: str) -> int:
    # surrogatepass: a lone surrogate that reached the wire is counted, not a crash of the front.
    return len(message.encode("utf-8", "surrogatepass"))


def check_names(operation: str, body: dict[str, Any]) -> list[Refusal]:
    """Return the refusals AWS would give for the group and stream names in ``body``."""
    refusals = []
    group = body.get("logGroupName")
    if group is not None and (
        not isinstance(group, str) or not GROUP_NAME.fullmatch(group) or group.startswith("aws/")
    ):
        refusals.append(Refusal(operation, "group_name", f"invalid log group name {group!r:.80}"))
    stream = body.get("logStreamName")
    if stream is not None and (
        not isinstance(stream, str)
        or not 1 <= len(stream) <= STREAM_NAME_CHARS
        or ":" in stream
        or "*" in stream
    ):
        refusals.append(Refusal(operation, "stream_name", f"invalid log stream {stream!r:.80}"))
    return refusals


def check_put_log_events(
    body: dict[str, Any], *, max_event_bytes: int = EVENT_BYTES_LIMIT, now_ms: int | None = None
) -> list[Refusal]:
    """Return the refusals AWS would give for one PutLogEvents request (empty: it is valid)."""
    operation = "PutLogEvents"
    refusals = check_names(operation, body)
    events = body.get("logEvents")
    if not isinstance(events, list) or not events:
        return [*refusals, Refusal(operation, "event_count", "logEvents is missing or empty")]
    if len(events) > BATCH_EVENTS_LIMIT:
        refusals.append(Refusal(operation, "event_count", f"{len(events)} events in one batch"))
    total = 0
    previous: int | None = None
    now = int(time.time() * 1000) if now_ms is None else now_ms
    valid_times: list[int] = []
    for index, event in enumerate(events):
        message, timestamp = event.get("message"), event.get("timestamp")
        if not isinstance(message, str) or not isinstance(timestamp, int):
            refusals.append(Refusal(operation, "bad_request", f"event {index} is malformed"))
            continue
        size = _utf8_bytes(message)
        total += size + EVENT_OVERHEAD_BYTES
        if not message:
            refusals.append(Refusal(operation, "empty_message", f"event {index} is empty"))
        if size > max_event_bytes:
            refusals.append(
                Refusal(operation, "event_bytes", f"event {index} has {size} bytes of message")
            )
        if previous is not None and timestamp < previous:
            refusals.append(
                Refusal(operation, "order", f"event {index} at {timestamp} after {previous}")
            )
        previous = timestamp
        # Events the service drops as too old or too new do not count towards the span.
        if now - TOO_OLD_MS <= timestamp <= now + TOO_NEW_MS:
            valid_times.append(timestamp)
    if total > BATCH_BYTES_LIMIT:
        refusals.append(Refusal(operation, "batch_bytes", f"batch of {total} bytes"))
    if valid_times and max(valid_times) - min(valid_times) > BATCH_SPAN_MS:
        span_h = (max(valid_times) - min(valid_times)) / 3_600_000
        refusals.append(Refusal(operation, "span", f"batch spans {span_h:.1f} hours"))
    return refusals


class _FaultPlan:
    """Decides which calls of the targeted operations get a fault instead of an answer."""

    def __init__(
        self,
        kind: FaultKind,
        *,
        operations: Iterable[str],
        share: float | None,
        every: int | None,
        runs: tuple[int, int] | None,
        seed: int,
        limit: int | None,
    ) -> None:
        if sum(option is not None for option in (share, every, runs)) != 1:
            raise ValueError("pass exactly one of share=, every= or runs=")
        self.kind = kind
        self.operations = frozenset(operations)
        self.share, self.every, self.runs, self.limit = share, every, runs, limit
        self.random = random.Random(seed)  # seeded: a failing run can be replayed exactly
        self.seen = 0
        self.injected = 0

    def decide(self, operation: str) -> bool:
        """Return whether this call gets the fault (called under the front's lock)."""
        if operation not in self.operations:
            return False
        if self.limit is not None and self.injected >= self.limit:
            return False
        self.seen += 1
        if self.share is not None:
            hit = self.random.random() < self.share
        elif self.every is not None:
            hit = self.seen % self.every == 0
        else:
            assert self.runs is not None
            faulted, passed = self.runs
            hit = (self.seen - 1) % (faulted + passed) < faulted
        self.injected += hit
        return hit


class _Server(LocalHTTPServer):
    front: AwsFront

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet when a client went away mid-exchange: fault tests do that on purpose."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(AnyMethodHandler):
    timeout = _IDLE_TIMEOUT_S
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.front._opened(self.request)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.front._closed(self.request)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            # The client went away mid-upload (a reset in the proxy): AWS would never see this
            # request, so neither judge nor forward it.
            self.close_connection = True
            return
        target = self.headers.get("X-Amz-Target", "")
        if target.startswith(_TARGET_PREFIX):
            operation = target.removeprefix(_TARGET_PREFIX)
            answer = self.server.front._screen(operation, body)
            if answer is not None:
                self._reply(*answer)
                return
        self._forward(body)

    def _reply(self, status: int, error_type: str, message: str) -> None:
        payload = json.dumps({"__type": error_type, "message": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", _JSON_CONTENT_TYPE)
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _forward(self, body: bytes) -> None:
        host, port = self.server.front.upstream
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        connection = http.client.HTTPConnection(host, port, timeout=_UPSTREAM_TIMEOUT_S)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            status, reason = response.status, response.reason
            upstream_headers = response.getheaders()
        except OSError as error:
            # Upstream gone (the test stopped it): a gateway error, which clients retry.
            self._reply(502, "BadGateway", f"upstream unreachable: {error}")
            return
        finally:
            connection.close()
        self.send_response(status, reason)
        for name, value in upstream_headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() not in ("server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class AwsFront(StartStop):
    """Serve CloudWatch Logs on a free 127.0.0.1 port, refusing and faulting as configured.

    Args:
        upstream_url: the moto server's ``http://host:port``.
        max_event_bytes: the largest message AWS accepts; `LEGACY_EVENT_BYTES_LIMIT` for 256 KB.
        rates: calls per second allowed per operation, across every client of the front, as an
            account's quotas are (``{"PutLogEvents": 50.0}``); operations not named are unlimited.
        clock: the clock of the rate buckets and the call log (tests inject a fake one).
    """

    def __init__(
        self,
        upstream_url: str,
        *,
        max_event_bytes: int = EVENT_BYTES_LIMIT,
        rates: Mapping[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        host, _, port = upstream_url.removeprefix("http://").rstrip("/").partition(":")
        self.upstream = (host, int(port))
        self.max_event_bytes = max_event_bytes
        self._clock = clock
        self._buckets = {
            operation: TokenBucket(rate, clock=clock) for operation, rate in (rates or {}).items()
        }
        self._lock = threading.Lock()
        self._refused: list[Refusal] = []
        self._call_log: list[Call] = []
        """Every call screened: the per-operation counts below are read from it."""
        self._batches: list[Batch] = []
        self._plans: list[_FaultPlan] = []
        self._sockets: set[socket.socket] = set()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.front = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """The endpoint URL clients should use."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> AwsFront:
        """Start serving; returns self for chaining."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open client connection."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            # Wakes the handler thread blocked reading the next request on a keep-alive socket.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                continue
        self._server.server_close()

    def inject(
        self,
        kind: FaultKind,
        *,
        share: float | None = None,
        every: int | None = None,
        runs: tuple[int, int] | None = None,
        seed: int = 0,
        operations: Iterable[str] = ("PutLogEvents",),
        limit: int | None = None,
    ) -> None:
        """Answer some calls with a fault instead of passing them on.

        Args:
            kind: throttling (HTTP 400), internal_error (500) or service_unavailable (503).
            share: fault each call with this probability (seeded, so runs repeat).
            every: fault every Nth call.
            runs: ``(faulted, passed)``: alternate runs of faulted and passed calls, long enough
                to outlast a client's own quick retries.
            seed: the seed for ``share``.
            operations: which operations to fault (PutLogEvents by default).
            limit: stop faulting after this many faults.
        """
        plan = _FaultPlan(
            kind,
            operations=operations,
            share=share,
            every=every,
            runs=runs,
            seed=seed,
            limit=limit,
        )
        with self._lock:
            self._plans.append(plan)

    def clear_faults(self) -> None:
        """Stop injecting faults (the counts of faults already injected are kept)."""
        with self._lock:
            self._plans.clear()

    @property
    def refused(self) -> list[Refusal]:
        """Every refusal so far, oldest first (a copy)."""
        with self._lock:
            return list(self._refused)

    @property
    def calls(self) -> dict[str, int]:
        """How many requests arrived per operation, whatever their fate."""
        return self._count()

    @property
    def faults(self) -> dict[str, int]:
        """How many faults were injected per operation."""
        return self._count("fault")

    @property
    def throttled(self) -> dict[str, int]:
        """How many calls were over their operation's rate, per operation."""
        return self._count("throttled")

    @property
    def rates(self) -> dict[str, float]:
        """The calls per second allowed per operation (empty: no limit)."""
        return {operation: bucket.rate_per_s for operation, bucket in self._buckets.items()}

    @property
    def call_log(self) -> list[Call]:
        """Every call screened so far, in arrival order, with what became of it (a copy)."""
        with self._lock:
            return list(self._call_log)

    @property
    def batches(self) -> list[Batch]:
        """Every PutLogEvents passed to moto, oldest first (a copy)."""
        with self._lock:
            return list(self._batches)

    def _screen(self, operation: str, raw: bytes) -> tuple[int, str, str] | None:
        """Return the error to answer with, or None to pass the request on."""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            refusals = [Refusal(operation, "bad_request", "body is not a JSON object")]
        elif operation == "PutLogEvents":
            refusals = check_put_log_events(body, max_event_bytes=self.max_event_bytes)
        else:
            refusals = check_names(operation, body)
            retention = body.get("retentionInDays")
            if operation == "PutRetentionPolicy" and retention not in RETENTION_DAYS:
                refusals.append(Refusal(operation, "retention", f"retentionInDays={retention!r}"))
        with self._lock:
            outcome, answer = self._locked_judge(operation, body, refusals)
            self._call_log.append(Call(self._clock(), operation, outcome))
        return answer

    def _locked_judge(
        self, operation: str, body: object, refusals: list[Refusal]
    ) -> tuple[Outcome, tuple[int, str, str] | None]:
        """Decide a call's fate (under the lock, the buckets and plans being shared)."""
        bucket = self._buckets.get(operation)
        # The rate is checked first: the service's front door throttles before it reads the
        # request, and a throttled call costs no token (it is not served).
        if bucket is not None and not bucket.take():
            return "throttled", _FAULTS["throttling"]
        if refusals:
            self._refused.extend(refusals)
            return "refused", (400, "InvalidParameterException", refusals[0].detail)
        for plan in self._plans:
            if plan.decide(operation):
                return "fault", _FAULTS[plan.kind]
        if operation == "PutLogEvents":
            assert isinstance(body, dict)
            self._batches.append(_batch(body["logEvents"]))
        return "passed", None

    def _count(self, outcome: Outcome | None = None) -> dict[str, int]:
        """Calls per operation in the log, of one ``outcome`` or all."""
        calls = self.call_log
        return dict(Counter(c.operation for c in calls if outcome in (None, c.outcome)))

    def _opened(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)


def _batch(events: list[dict[str, Any]]) -> Batch:
    times = [event["timestamp"] for event in events]
    size = sum(_utf8_bytes(event["message"]) + EVENT_OVERHEAD_BYTES for event in events)
    return Batch(events=len(events), bytes=size, span_ms=max(times) - min(times))
