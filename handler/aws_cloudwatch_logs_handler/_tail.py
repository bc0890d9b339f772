"""Reading a log group back: a time window, or following it as events arrive.

Everything goes through FilterLogEvents, which CloudWatch Logs allows 5 times a second per account
and Region (a hard quota shared with every other reader of the account):
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/cloudwatch_limits_cwl.html
So calls are paced below that rate, and a throttled call waits (with backoff and jitter) and is
made again with the same page token: nothing is skipped and nothing is read twice.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from ._errors import CloudWatchLogsHandlerError
from ._names import stream_name_part
from ._reassembly import LogMessage, PartJoiner

MIN_CALL_INTERVAL_S: Final = 0.25
"""At most 4 calls a second: below FilterLogEvents' 5 per second, with room for one other reader."""
MAX_FILTER_STREAM_NAMES: Final = 100
"""FilterLogEvents takes at most 100 ``logStreamNames``.
https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_FilterLogEvents.html"""
FOLLOW_MIN_INTERVAL_S: Final = 1.0
FOLLOW_MAX_INTERVAL_S: Final = 10.0
"""A quiet group is polled less and less often, down to once every 10 seconds."""
LATE_ARRIVAL_MS: Final = 15_000
"""How late (after its own timestamp) an event may become readable and still be shown by
``follow``: writers batch for seconds (this handler: ``flush_interval_s``, 2 s by default) and
retry, so an event can land after newer ones from another stream."""
PART_GRACE_S: Final = 30.0
"""How long ``follow`` waits for the other parts of a split message before showing what it has:
the handler sends the parts of one message in consecutive batches, seconds apart at most."""
MAX_PAGES: Final = 1_000_000
"""A bound on pages per read, far above any real window, so no loop can run for ever."""
MAX_LAMBDA_DAY_PREFIXES: Final = 31
"""Past a month of days, one listing of every stream costs fewer calls than one per day."""
RETRYABLE_CODES: Final = frozenset(
    {"ThrottlingException", "ServiceUnavailableException", "InternalFailure", "RequestTimeout"}
)


class TailError(CloudWatchLogsHandlerError):
    """Reading the logs failed in a way the user can fix; the message says how."""


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter, separate from the reader that waits.

    https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
    """

    base_s: float = 0.5
    cap_s: float = 20.0
    max_retries: int | None = 8
    """Retries of one call before giving up; ``None`` never gives up (``follow``)."""

    def delay_s(self, retry: int, rng: random.Random) -> float:
        """Return how long to wait before retry number ``retry`` (0 for the first)."""
        return rng.uniform(0.0, min(self.cap_s, self.base_s * 2.0**retry))

    def gives_up(self, retry: int) -> bool:
        """Tell whether retry number ``retry`` is one too many."""
        return self.max_retries is not None and retry >= self.max_retries


@dataclass(frozen=True)
class Selection:
    """Which events of a group to read: a stream prefix or names, and a filter pattern."""

    log_group: str
    stream_prefix: str | None = None
    stream_names: tuple[str, ...] | None = None
    filter_pattern: str | None = None

    def matches_stream(self, stream: str) -> bool:
        """Tell whether an event of ``stream`` is wanted (checked again here: moto's
        FilterLogEvents ignores ``logStreamNamePrefix``)."""
        if self.stream_names is not None:
            return stream in self.stream_names
        return self.stream_prefix is None or stream.startswith(self.stream_prefix)


def error_code(error: BaseException) -> str:
    """Return the AWS error code of a botocore ``ClientError`` (or ``""``)."""
    response = getattr(error, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


@dataclass
class LogReader:
    """Makes paced, retried calls to the CloudWatch Logs API through ``client``.

    ``client`` is a boto3 ``logs`` client or anything with the same methods (the tests' seam);
    ``sleep`` and ``clock`` are injectable so that tests need not wait.
    """

    client: Any
    backoff: Backoff = field(default_factory=Backoff)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    on_retry: Callable[[str], None] = lambda _note: None
    rng: random.Random = field(default_factory=random.Random)
    _last_call_s: float | None = field(default=None, init=False, repr=False)

    def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """Call ``operation`` on the client, paced, retrying throttling and 5xx errors."""
        from botocore.exceptions import ClientError

        method = getattr(self.client, operation)
        retry = 0
        while True:
            self._pace()
            try:
                response: dict[str, Any] = method(**kwargs)
            except ClientError as error:
                code = error_code(error)
                if code not in RETRYABLE_CODES or self.backoff.gives_up(retry):
                    raise
                delay = self.backoff.delay_s(retry, self.rng)
                self.on_retry(f"{operation}: {code}, retrying in {delay:.1f} s")
                self.sleep(delay)
                retry += 1
            else:
                return response

    def _pace(self) -> None:
        now = self.clock()
        if self._last_call_s is not None:
            wait = self._last_call_s + MIN_CALL_INTERVAL_S - now
            if wait > 0:
                self.sleep(wait)
                now += wait
        self._last_call_s = now

    def events(
        self, selection: Selection, *, start_ms: int, end_ms: int | None
    ) -> Iterator[dict[str, Any]]:
        """Yield the events of ``selection`` from ``start_ms`` to ``end_ms`` (inclusive)."""
        names = selection.stream_names
        name_chunks: list[list[str] | None] = [None]
        if names is not None:
            name_chunks = [
                list(names[i : i + MAX_FILTER_STREAM_NAMES])
                for i in range(0, len(names), MAX_FILTER_STREAM_NAMES)
            ]
        for chunk in name_chunks:
            kwargs: dict[str, Any] = {"logGroupName": selection.log_group, "startTime": start_ms}
            if end_ms is not None:
                kwargs["endTime"] = end_ms
            if chunk is not None:
                kwargs["logStreamNames"] = chunk
            elif selection.stream_prefix:
                kwargs["logStreamNamePrefix"] = selection.stream_prefix
            if selection.filter_pattern:
                kwargs["filterPattern"] = selection.filter_pattern
            for _ in range(MAX_PAGES):
                page = self.call("filter_log_events", **kwargs)
                for event in page.get("events", []):
                    if selection.matches_stream(event.get("logStreamName", "")):
                        yield event
                token = page.get("nextToken")
                if not token or token == kwargs.get("nextToken"):
                    break
                kwargs["nextToken"] = token

    def stream_names(self, log_group: str, *, prefix: str | None) -> Iterator[str]:
        """Yield the names of the group's streams that start with ``prefix``."""
        kwargs: dict[str, Any] = {"logGroupName": log_group}
        if prefix:
            kwargs["logStreamNamePrefix"] = prefix
        for _ in range(MAX_PAGES):
            page = self.call("describe_log_streams", **kwargs)
            for stream in page.get("logStreams", []):
                yield stream["logStreamName"]
            token = page.get("nextToken")
            if not token or token == kwargs.get("nextToken"):
                return
            kwargs["nextToken"] = token


def request_streams(
    reader: LogReader, log_group: str, request_id: str, *, start_ms: int, end_ms: int
) -> list[str]:
    """Return the streams this handler named for Lambda request ``request_id`` in the window.

    In Lambda the handler names a stream ``YYYY/MM/DD/<function>/[<version>]<request id>``
    (`_invocation.stream_name_for`), dated when the invocation started (UTC, at most 15 minutes
    before its last event), so only the days of the window are listed.
    """
    suffix = "]" + stream_name_part(request_id)
    first = datetime.fromtimestamp(start_ms / 1000, timezone.utc) - timedelta(minutes=15)
    last = datetime.fromtimestamp(end_ms / 1000, timezone.utc)
    days = (last.date() - first.date()).days + 1
    prefixes: list[str | None] = [None]
    if days <= MAX_LAMBDA_DAY_PREFIXES:
        prefixes = [f"{first + timedelta(days=n):%Y/%m/%d}/" for n in range(days)]
    return [
        name
        for prefix in prefixes
        for name in reader.stream_names(log_group, prefix=prefix)
        if name.endswith(suffix)
    ]


def read_window(
    reader: LogReader, selection: Selection, *, start_ms: int, end_ms: int
) -> list[LogMessage]:
    """Return the messages of the window, split parts joined, oldest first across streams.

    FilterLogEvents does not promise one order across streams and pages (moto returns stream
    after stream), so the whole window is read, then sorted; the sort is stable, so messages with
    the same timestamp keep the order the service gave.
    """
    joiner = PartJoiner()
    added = (
        joiner.add(event) for event in reader.events(selection, start_ms=start_ms, end_ms=end_ms)
    )
    messages = [message for message in added if message is not None]
    messages.extend(joiner.expire())
    messages.sort(key=lambda message: message.timestamp_ms)
    return messages


@dataclass
class Follower:
    """Polls a group for new events and hands each message over once, oldest first per poll.

    Each poll reads again from ``LATE_ARRIVAL_MS`` before now (or from the newest event shown, if
    older), so an event that becomes readable late is still shown; the ids already shown in that
    span are remembered, so none is shown twice.
    """

    reader: LogReader
    selection: Selection
    start_ms: int
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000)
    joiner: PartJoiner = field(default_factory=PartJoiner)
    _seen: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _newest_ms: int | None = field(default=None, init=False, repr=False)

    def poll(self) -> list[LogMessage]:
        """Read what arrived since the last poll; return the messages it completes."""
        now = self.now_ms()
        start = now - LATE_ARRIVAL_MS
        if self._newest_ms is not None:
            start = min(start, self._newest_ms)
        start = max(start, self.start_ms)
        # Ids older than the read window can never come back: forget them.
        self._seen = {event_id: ts for event_id, ts in self._seen.items() if ts >= start}
        fresh: list[dict[str, Any]] = []
        for event in self.reader.events(self.selection, start_ms=start, end_ms=None):
            event_id = f"{event.get('logStreamName', '')}/{event.get('eventId', '')}"
            if event_id not in self._seen:
                self._seen[event_id] = event["timestamp"]
                fresh.append(event)
        fresh.sort(key=lambda event: event["timestamp"])
        if fresh:
            newest = fresh[-1]["timestamp"]
            self._newest_ms = newest if self._newest_ms is None else max(self._newest_ms, newest)
        clock_s = self.reader.clock()
        messages = [
            m for event in fresh if (m := self.joiner.add(event, now_s=clock_s)) is not None
        ]
        return messages + self.joiner.expire(seen_before_s=clock_s - PART_GRACE_S)

    def run(self, show: Callable[[LogMessage], None], *, max_polls: int | None = None) -> None:
        """Poll until interrupted (or ``max_polls``), waiting longer while nothing arrives."""
        interval = FOLLOW_MIN_INTERVAL_S
        polls = 0
        while max_polls is None or polls < max_polls:
            polls += 1
            messages = self.poll()
            for message in messages:
                show(message)
            if messages:
                interval = FOLLOW_MIN_INTERVAL_S
            else:
                interval = min(interval * 2, FOLLOW_MAX_INTERVAL_S)
            if max_polls is None or polls < max_polls:
                self.reader.sleep(interval)

    def finish(self) -> list[LogMessage]:
        """Return the split messages still incomplete, marked so (when following stops)."""
        return self.joiner.expire()
