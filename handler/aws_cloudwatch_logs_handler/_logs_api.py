"""The seam to the CloudWatch Logs API: create the group and stream, put a batch, classify errors.

Everything that calls AWS for a handler is here, so that the sender reads as plain control flow
and tests can stand a double (`aws_cloudwatch_logs_handler.testing.FakeLogsClient`) in for the
client. Called only from the sender thread, never under the sender's lock.
https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html
"""

from __future__ import annotations

import contextlib
import gc
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from . import _slices
from ._encoder import encode_put_log_events
from ._forks import CLIENT_BUILDS
from ._packed import PackedEvents
from ._queues import DeliverySettings
from ._stats import DropReason

if TYPE_CHECKING:
    from ._transport import LeanSession

# Error codes, as botocore reports them in ClientError.response["Error"]["Code"].
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/CommonErrors.html
NOT_FOUND: Final = "ResourceNotFoundException"
INVALID: Final = frozenset({"InvalidParameterException", "ValidationException"})

_SERVICE: Final = "cloudwatch-logs"
_OPERATION: Final = f"{_SERVICE}.PutLogEvents"
_CONTEXT_KEY: Final = "aws_cloudwatch_logs_handler_body"
_HOOK_ID: Final = "aws-cloudwatch-logs-handler-encoded-body"
_UNTIL_ENDPOINT_S: Final = 0.0002
"""botocore's work from the call to ``before-endpoint-resolution`` (validating the parameters),
with no checkpoint in it: 0.2 to 0.44 ms, traced under a busy logger."""
_UNTIL_OUR_HOOK_S: Final = 0.0003
"""botocore's work from ``before-endpoint-resolution`` to our ``before-call`` hook (resolving the
endpoint, serializing the stand-in): 0.32 to 0.92 ms, traced under a busy logger. Before the
checkpoint there, the whole way from the call to ``before-call`` ran without one, and a logging
call waited up to 1.8 ms for it."""
_UNTIL_SIGNING_LETS_GO_S: Final = 0.00015
"""botocore's work from our ``before-call`` hook until its signer hashes the body, which lets the
GIL go: 0.12 to 0.14 ms under a busy logger."""
_SINCE_HASH_S: Final = 0.00015
"""botocore's work from the end of its hashing of the body (which gives the sender the GIL back)
to ``request-created``'s last hook, ours: the signature itself, 0.15 to 0.45 ms traced under a
busy logger (what the logging call that waited for it saw, less the sender's wake-up)."""
_UNTIL_SOCKET_SEND_S: Final = 0.00025
"""The work from ``before-send`` until the request's first socket send, which lets the GIL go:
botocore's, then `_transport.LeanSession`'s (a connection from the pool, the head prepared
before the checkpoint): 0.09 to 0.27 ms traced under a busy logger. Through urllib3 it was 0.47
to 0.94 ms. Without a look-ahead a checkpoint late in a turn lets the turn run on through the
stretch: a traced logging call waited 0.9 ms for one."""
_SINCE_REPLY_S: Final = 0.0002
"""The work from the reply's arrival (which gives the sender the GIL back) to ``before-parse``,
the first hook after it: `_transport.read_reply`, then botocore's: 0.17 to 0.28 ms, traced under
a busy logger (through urllib3, 0.45 to 0.77 ms)."""
_AFTER_REPLY_S: Final = 0.0003
"""The work from ``before-parse`` to the sender's next checkpoint (parsing the reply, botocore's
retry checks, settling the batch): 0.36 to 0.63 ms, traced under a busy logger. With the stretch
before it, a logging call waited up to 1.7 ms before ``before-parse`` became a checkpoint."""


class _EncodedEvents(list[dict[str, Any]]):
    """What `LogsApi.put` passes as ``logEvents`` when it encoded the body itself.

    botocore serializes only this one stand-in event; our ``before-call`` hook then puts the
    encoded body in its place. The stand-in is dated 1970: were it ever sent (a botocore that no
    longer calls our hook), CloudWatch would drop it as too old and store nothing, and `put`
    would notice and resend the batch the plain way.
    """

    def __init__(self, body: bytes) -> None:
        super().__init__([{"timestamp": 0, "message": "-"}])
        self.body = body
        self.swapped = False


def _stash_body(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """``provide-client-params``: carry our body to ``before-call`` in the request context."""
    events = params.get("logEvents")
    if type(events) is _EncodedEvents:
        context[_CONTEXT_KEY] = events


_OURS_ON_THIS_THREAD = threading.local()
"""Set between our ``before-call`` and ``before-send``: the request being sent is the sender's."""


def _sending_ours() -> bool:
    """The request botocore is making on this thread is the sender's (from our ``before-call``
    to our ``before-send``): `_transport.LeanSession` writes it itself."""
    return getattr(_OURS_ON_THIS_THREAD, "sending", False)


def _pause_before_endpoint(context: dict[str, Any] | None = None, **_: Any) -> None:
    """``before-endpoint-resolution``: a checkpoint in botocore's longest stretch of work before
    our ``before-call``, for a call of ours only (our body is in its context). Emitted for every
    call of the service, the user's own on a shared client too: it never raises, whatever a
    future botocore passes."""
    if isinstance(context, dict) and type(context.get(_CONTEXT_KEY)) is _EncodedEvents:
        _slices.pause(ahead_s=_UNTIL_OUR_HOOK_S)


def _swap_body(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """``before-call``: replace the serialized stand-in with our body, before signing.

    botocore's own work on a request (resolving the endpoint, serializing, signing, sending) is a
    few milliseconds holding the GIL; a pause here and one before the send cut it in three, so a
    logging call waits for none of it whole (`_slices`).
    """
    encoded = context.pop(_CONTEXT_KEY, None)
    if type(encoded) is _EncodedEvents and isinstance(params.get("body"), bytes):
        params["body"] = encoded.body
        encoded.swapped = True
        _OURS_ON_THIS_THREAD.sending = True
        _slices.pause(ahead_s=_UNTIL_SIGNING_LETS_GO_S)


def _after_signing(**_: Any) -> None:
    """``request-created`` (after botocore's signer): hashing the body let the GIL go, and
    taking it back may have waited for a logging thread (`_slices.took_gil_back`); the signature
    has held it since."""
    if getattr(_OURS_ON_THIS_THREAD, "sending", False):
        _slices.took_gil_back(held_s=_SINCE_HASH_S)


def _pause_before_send(**_: Any) -> None:
    """``before-send``: signed, about to be sent: let logging threads run first."""
    if getattr(_OURS_ON_THIS_THREAD, "sending", False):
        _OURS_ON_THIS_THREAD.sending = False
        _OURS_ON_THIS_THREAD.awaiting_reply = True
        _slices.pause(ahead_s=_UNTIL_SOCKET_SEND_S)


def _after_reply(**_: Any) -> None:
    """``before-parse``: the reply is in; the wait for it let the GIL go, and reading it has
    held the GIL since. Logging threads run first if that and what follows overrun the turn."""
    if getattr(_OURS_ON_THIS_THREAD, "awaiting_reply", False):
        _OURS_ON_THIS_THREAD.awaiting_reply = False
        _slices.took_gil_back(held_s=_SINCE_REPLY_S)
        _slices.pause(ahead_s=_AFTER_REPLY_S)


def install_encoded_body_hooks(client: Any) -> bool:
    """Register the hooks that let `LogsApi.put` send a body it encoded; False if it cannot.

    Through botocore's event system only (``provide-client-params`` and ``before-call``), so that
    endpoint, credentials, signing, user agent and retries all stay the client's own. Registered
    once per client (a client shared by several handlers), and inert for calls that are not ours.
    """
    events = getattr(getattr(client, "meta", None), "events", None)
    if events is None or not hasattr(events, "register"):
        return False  # not botocore's client (a test double): call it the plain way
    try:
        events.register(
            f"provide-client-params.{_OPERATION}", _stash_body, unique_id=f"{_HOOK_ID}-stash"
        )
        events.register(
            f"before-endpoint-resolution.{_SERVICE}",
            _pause_before_endpoint,
            unique_id=f"{_HOOK_ID}-endpoint",
        )
        events.register(f"before-call.{_OPERATION}", _swap_body, unique_id=f"{_HOOK_ID}-swap")
        # Where botocore's signer is registered (for the service, not the operation), and
        # last: handlers of an operation's own event run before the service's.
        events.register_last(
            f"request-created.{_SERVICE}", _after_signing, unique_id=f"{_HOOK_ID}-signed"
        )
        events.register(
            f"before-send.{_OPERATION}", _pause_before_send, unique_id=f"{_HOOK_ID}-pause"
        )
        events.register(f"before-parse.{_OPERATION}", _after_reply, unique_id=f"{_HOOK_ID}-reply")
    except Exception:
        return False
    return True


Failure = Literal["lost", "refused", "transient"]
"""How a failed call is handled: ``lost``, the group or stream is gone (create it again and
resend); ``refused``, CloudWatch will never take this batch as it is (split it); ``transient``,
it may pass (throttling, 5xx, the network, credentials): retry after a backoff."""


def classify(error: Exception) -> tuple[Failure, str] | None:
    """Say how to handle ``error`` from a Logs API call, with a one-line reason; None if it is
    not an error of the API or of botocore (a bug of ours)."""
    import botocore.exceptions

    if isinstance(error, botocore.exceptions.ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        if code == NOT_FOUND:
            return "lost", f"{code}: creating the stream again"
        if code in INVALID:
            return "refused", f"{code}: {error}"
        return "transient", f"{code or 'error'}: {error}"
    if isinstance(error, botocore.exceptions.ParamValidationError):
        return "refused", f"ParamValidationError: {error}"
    if isinstance(error, botocore.exceptions.BotoCoreError):
        # Connection refused or reset, timeouts, missing credentials: all may pass.
        return "transient", f"{type(error).__name__}: {error}"
    return None


@dataclass(frozen=True)
class PutResult:
    """What CloudWatch did with one batch."""

    delivered: tuple[int, int]
    """The slice of the batch it accepted: sorted batches put refused events at either end."""
    rejected: dict[DropReason, int]
    """Events it accepted the call for but dropped, by reason (``rejectedLogEventsInfo``)."""


class LogsApi:
    """One handler's calls to CloudWatch Logs, with the client built on first use."""

    def __init__(self, settings: DeliverySettings) -> None:
        self._settings = settings
        self._client: Any = None
        self._encodes = False
        """The client takes a body we encoded (botocore's, with our hooks installed)."""
        self._lean: LeanSession | None = None
        """The client's session, sending our requests itself (`_transport`); None: botocore's."""
        self._lean_declined_said = False
        self._after_fork = False
        self._retention_pending = False
        """This handler created the group and has not set its retention yet."""

    @property
    def client(self) -> Any:
        if self._client is None:
            source = self._settings.client_source
            with CLIENT_BUILDS.inside():  # the first build imports boto3: no fork in the middle
                client = source.build_after_fork() if self._after_fork else source.build()
                self._encodes = install_encoded_body_hooks(client)
                if self._encodes:
                    # Imported here, on the sender, after boto3: its ``ssl`` and ``socket``
                    # would cost the application's import of this package 10 to 30 ms.
                    from ._transport import install_lean_session

                    self._lean = install_lean_session(
                        client, f"before-send.{_OPERATION}", _sending_ours
                    )
                # The client's first request imports this codec (the host name's encoding): done
                # here, inside the fence, so no fork catches that import half done either.
                import encodings.idna  # noqa: F401
            self._client = client
            # Building a client leaves tens of thousands of young objects (its service model).
            # The interpreter's next young collection would walk them all, in whichever thread
            # allocates next: a logging call stalled for a millisecond or two. Collect them
            # here, on the sender, as part of the set-up they come from.
            gc.collect(1)
        return self._client

    def forget_client_after_fork(self) -> None:
        """A forked child must not use its parent's connections: build a new client."""
        self._client = None
        self._lean = None
        self._after_fork = True

    def create_stream(self, stream: str) -> None:
        """Create ``stream``, and the group first if it is missing and we may create it.

        CreateLogStream comes first so that a writer allowed only to write never makes a
        CreateLogGroup call that would be denied.
        """
        client, group = self.client, self._settings.log_group
        exists = client.exceptions.ResourceAlreadyExistsException  # idempotent: that is success
        try:
            with contextlib.suppress(exists):
                client.create_log_stream(logGroupName=group, logStreamName=stream)
        except client.exceptions.ResourceNotFoundException:
            if not self._settings.create_log_group:
                raise
            self._create_group()
            with contextlib.suppress(exists):
                client.create_log_stream(logGroupName=group, logStreamName=stream)
        if self._retention_pending:
            # Retried until it succeeds: a group we created must not keep its events forever
            # because one PutRetentionPolicy call failed.
            client.put_retention_policy(
                logGroupName=group, retentionInDays=self._settings.retention_days
            )
            self._retention_pending = False

    def _create_group(self) -> None:
        """Create the group; its retention is then due (`create_stream` applies it)."""
        client = self.client
        try:
            client.create_log_group(logGroupName=self._settings.log_group)
        except client.exceptions.ResourceAlreadyExistsException:
            return  # someone else created it: its retention is theirs to set
        self._retention_pending = self._settings.retention_days is not None

    def put(self, stream: str, batch: PackedEvents) -> PutResult:
        """Send one batch to ``stream``: a body we encoded if the client takes one, else plainly."""
        client, group = self.client, self._settings.log_group
        response = None
        if self._encodes:
            encoded = _EncodedEvents(encode_put_log_events(group, stream, batch))
            _slices.pause(ahead_s=_UNTIL_ENDPOINT_S)
            response = client.put_log_events(
                logGroupName=group, logStreamName=stream, logEvents=encoded
            )
            if not encoded.swapped:
                # botocore did not call our hooks: only the 1970 stand-in went (and was dropped).
                self._encodes = False
                self._settings.reporter.report(
                    "encoder", "botocore did not take the encoded body; sending the plain way"
                )
                response = None
            lean = self._lean
            if lean is not None and lean.declined is not None and not self._lean_declined_said:
                self._lean_declined_said = True
                self._settings.reporter.report(
                    "transport", f"sending through botocore's HTTP session: {lean.declined}"
                )
        if response is None:
            response = client.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[{"timestamp": e.timestamp_ms, "message": e.message} for e in batch],
            )
        rejected, start, end = count_rejected(
            response.get("rejectedLogEventsInfo") or {}, len(batch)
        )
        return PutResult(delivered=(start, end), rejected=rejected)


def count_rejected(info: dict[str, int], sent: int) -> tuple[dict[DropReason, int], int, int]:
    """Turn ``rejectedLogEventsInfo`` indexes into counts per reason, and the accepted slice.

    AWS describes these indexes inconsistently; we read each as inclusive (as moto does), sorted
    batches put too-old and expired events first and too-new ones last, and we never count more
    events than were sent.
    """
    counts: dict[DropReason, int] = {}
    too_old = info.get("tooOldLogEventEndIndex")
    expired = info.get("expiredLogEventEndIndex")
    too_new = info.get("tooNewLogEventStartIndex")
    head = 0
    if too_old is not None:
        counts["too_old"] = head = min(sent, too_old + 1)
    if expired is not None and expired + 1 > head:
        counts["expired"] = min(sent, expired + 1) - head
        head = min(sent, expired + 1)
    tail = sent
    if too_new is not None and too_new < sent:
        tail = max(too_new, head)
        counts["too_new"] = sent - tail
    return {reason: n for reason, n in counts.items() if n > 0}, head, tail
