"""A stand-in for the CloudWatch Logs client, for tests that must run without a network.

Pass it as the handler's ``client=``: the handler's sender calls it exactly as it calls boto3's
client, and it keeps what it was sent, enforces the PutLogEvents limits that matter to a sender,
and fails on demand, so that retries, splits and re-created streams can be tested in milliseconds::

    import logging
    from aws_cloudwatch_logs_handler import CloudWatchLogsHandler
    from aws_cloudwatch_logs_handler.testing import FakeLogsClient

    client = FakeLogsClient()
    handler = CloudWatchLogsHandler("/my/app", client=client, log_stream="main")
    logging.getLogger("my.app").addHandler(handler)
    logging.getLogger("my.app").warning("hello")
    assert handler.flush(5)
    assert client.messages("/my/app", "main") == ["hello"]

Errors are botocore's own ``ClientError`` with AWS's error codes, as the real client raises them.
Everything is guarded by one lock: the sender thread writes while the test thread reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Final

from botocore.exceptions import ClientError

from ._limits import EVENT_OVERHEAD_BYTES, MAX_BATCH_BYTES, MAX_BATCH_EVENTS

__all__ = ["FakeLogsClient", "StoredEvent"]

_DAY_MS: Final = 24 * 3600 * 1000
_ERROR_CODES: Final = (
    "ResourceAlreadyExistsException",
    "ResourceNotFoundException",
    "InvalidParameterException",
    "ThrottlingException",
    "ServiceUnavailableException",
)


def _error_classes() -> SimpleNamespace:
    """``client.exceptions``: one ClientError subclass per code, as botocore models them."""
    return SimpleNamespace(**{code: type(code, (ClientError,), {}) for code in _ERROR_CODES})


@dataclass(frozen=True)
class StoredEvent:
    """One event the fake accepted."""

    timestamp: int
    message: str


@dataclass
class _Failure:
    operation: str
    code: str
    times: int


@dataclass
class FakeLogsClient:
    """The calls of a ``logs`` client that the handler makes, kept in memory.

    Attributes:
        calls: the name of every operation called, in order.
        retention: retention days set per group by PutRetentionPolicy.
    """

    calls: list[str] = field(default_factory=list)
    retention: dict[str, int] = field(default_factory=dict)
    exceptions: SimpleNamespace = field(default_factory=_error_classes, repr=False)
    _groups: dict[str, dict[str, list[StoredEvent]]] = field(default_factory=dict, repr=False)
    _failures: list[_Failure] = field(default_factory=list, repr=False)
    _refuse: Callable[[str], bool] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # ----------------------------------------------------------------------------------------
    # What the test scripts.

    def fail(self, operation: str, code: str = "ThrottlingException", *, times: int = 1) -> None:
        """Make the next ``times`` calls of ``operation`` (e.g. ``"put_log_events"``) raise
        ``code``; ``times=-1`` fails until `heal` is called."""
        with self._lock:
            self._failures.append(_Failure(operation, code, times))

    def heal(self) -> None:
        """Stop every failure `fail` scripted."""
        with self._lock:
            self._failures.clear()

    def refuse(self, predicate: Callable[[str], bool] | None) -> None:
        """Refuse (InvalidParameterException) any batch holding a message ``predicate`` accepts."""
        with self._lock:
            self._refuse = predicate

    def create_group(self, name: str) -> None:
        """Make group ``name`` exist, as another writer or a deployment would."""
        with self._lock:
            self._groups.setdefault(name, {})

    def delete_log_group(self, logGroupName: str) -> None:  # noqa: N803 (boto3's names)
        """Delete a group and its streams, as someone with the console would."""
        with self._lock:
            self._groups.pop(logGroupName, None)
            self.retention.pop(logGroupName, None)

    # ----------------------------------------------------------------------------------------
    # What the test reads.

    def groups(self) -> list[str]:
        with self._lock:
            return sorted(self._groups)

    def streams(self, group: str) -> list[str]:
        with self._lock:
            return sorted(self._groups.get(group, {}))

    def events(self, group: str, stream: str) -> list[StoredEvent]:
        """The events stored in one stream, in the order they were accepted."""
        with self._lock:
            return list(self._groups.get(group, {}).get(stream, []))

    def messages(self, group: str, stream: str) -> list[str]:
        return [event.message for event in self.events(group, stream)]

    # ----------------------------------------------------------------------------------------
    # The client's operations, as the handler calls them.

    def create_log_group(self, *, logGroupName: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        with self._lock:
            self._called("create_log_group")
            if logGroupName in self._groups:
                raise self._error("ResourceAlreadyExistsException", "CreateLogGroup")
            self._groups[logGroupName] = {}
        return {}

    def create_log_stream(
        self,
        *,
        logGroupName: str,  # noqa: N803
        logStreamName: str,  # noqa: N803
    ) -> dict[str, Any]:
        with self._lock:
            self._called("create_log_stream")
            streams = self._group(logGroupName, "CreateLogStream")
            if logStreamName in streams:
                raise self._error("ResourceAlreadyExistsException", "CreateLogStream")
            streams[logStreamName] = []
        return {}

    def put_retention_policy(
        self,
        *,
        logGroupName: str,  # noqa: N803
        retentionInDays: int,  # noqa: N803
    ) -> dict[str, Any]:
        with self._lock:
            self._called("put_retention_policy")
            self._group(logGroupName, "PutRetentionPolicy")
            self.retention[logGroupName] = retentionInDays
        return {}

    def put_log_events(
        self,
        *,
        logGroupName: str,  # noqa: N803
        logStreamName: str,  # noqa: N803
        logEvents: list[dict[str, Any]],  # noqa: N803
    ) -> dict[str, Any]:
        with self._lock:
            self._called("put_log_events")
            stream = self._group(logGroupName, "PutLogEvents").get(logStreamName)
            if stream is None:
                raise self._error("ResourceNotFoundException", "PutLogEvents")
            problem = self._batch_problem(logEvents)
            if problem:
                raise self._error("InvalidParameterException", "PutLogEvents", problem)
            stream.extend(StoredEvent(e["timestamp"], e["message"]) for e in logEvents)
        return {}

    # ----------------------------------------------------------------------------------------

    def _called(self, operation: str) -> None:
        """Record the call, and raise the failure scripted for it, if any (lock held)."""
        self.calls.append(operation)
        for failure in self._failures:
            if failure.operation == operation and failure.times != 0:
                failure.times -= 1 if failure.times > 0 else 0
                raise self._error(failure.code, operation)

    def _group(self, name: str, operation: str) -> dict[str, list[StoredEvent]]:
        group = self._groups.get(name)
        if group is None:
            raise self._error("ResourceNotFoundException", operation)
        return group

    def _batch_problem(self, events: list[dict[str, Any]]) -> str:
        """Why CloudWatch would refuse this batch as a whole, or ''."""
        if not events or len(events) > MAX_BATCH_EVENTS:
            return f"a batch holds 1 to {MAX_BATCH_EVENTS} events, not {len(events)}"
        size = sum(len(e["message"].encode("utf-8")) + EVENT_OVERHEAD_BYTES for e in events)
        stamps = [e["timestamp"] for e in events]
        refused = self._refuse
        problems = (
            (size > MAX_BATCH_BYTES, f"the batch is {size} bytes, over {MAX_BATCH_BYTES}"),
            (stamps != sorted(stamps), "log events in a batch must be in chronological order"),
            (stamps[-1] - stamps[0] > _DAY_MS, "a batch must not span more than 24 hours"),
            (any(not e["message"] for e in events), "a log event's message must not be empty"),
            (
                refused is not None and any(refused(e["message"]) for e in events),
                "the batch holds an event this fake was told to refuse",
            ),
        )
        return next((problem for found, problem in problems if found), "")

    def _error(self, code: str, operation: str, message: str = "") -> ClientError:
        error_class: type[ClientError] = getattr(self.exceptions, code, ClientError)
        return error_class({"Error": {"Code": code, "Message": message or code}}, operation)
