"""Lambda's Extensions API: an internal extension that delivers after the response is sent.

Lambda returns the function's response to the caller as soon as the runtime posts it, "even if
extensions are still running", and freezes the execution environment only once the runtime and
every registered extension have called ``next`` again. An *internal* extension is a thread of
the runtime process that registered during Init: it gets an INVOKE event per invocation (with
the invocation's ``deadlineMs``), and the time it takes before its next ``next`` is the
invocation's post-runtime phase (``PostRuntimeExtensionsDuration``), still before the freeze.
https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html
https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html

So the decorator hands each invocation's delivery over (`Handoff`) and returns at once; the
extension thread (`PostResponseDelivery`) runs it, bounded by the deadline, and only then calls
``next``. The Extensions API calls go through `ExtensionsApi`, the seam tests replace.

Registration is possible only during Init and only for INVOKE (internal extensions cannot take
SHUTDOWN; Lambda sends the runtime SIGTERM instead, which `_lifecycle` handles). Wherever it is
refused or impossible, the decorator delivers before returning, as without an extension, and the
reason is said once on the handlers' side channel.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from ._forks import ProcessMark
from ._lifecycle import block_termination_signal_in_this_thread
from ._reporting import write_to_stderr

EXTENSION_NAME: Final = "aws-cloudwatch-logs-handler"
"""The name the extension registers under (``Lambda-Extension-Name``)."""
REGISTER_PATH: Final = "/2020-01-01/extension/register"
NEXT_PATH: Final = "/2020-01-01/extension/event/next"
NAME_HEADER: Final = "Lambda-Extension-Name"
IDENTIFIER_HEADER: Final = "Lambda-Extension-Identifier"
REGISTER_TIMEOUT_S: Final = 2.0
"""Registration is a local call to Lambda's own API: answered at once, or not there at all."""
ORPHAN_DELIVERY_S: Final = 2.0
"""The bound on a delivery left behind when the extension stops (it has no deadline then)."""

Job = Callable[[float], int]
"""One invocation's delivery: takes the seconds it may spend, returns the events left queued."""


class ExtensionsApiError(Exception):
    """The Extensions API refused a call (``refused``) or could not be reached (not ``refused``)."""

    def __init__(self, message: str, *, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused


@dataclass(frozen=True)
class InvokeEvent:
    """What the extension needs of an INVOKE event."""

    request_id: str
    deadline_ms: int
    """When the invocation times out, in Unix milliseconds; the post-runtime phase counts."""


class ExtensionsClient(Protocol):
    """The two calls an internal extension makes; `ExtensionsApi` talks HTTP, tests fake it."""

    def register(self, name: str) -> str:
        """Register for INVOKE events; return the extension's identifier."""

    def next_event(self, identifier: str) -> InvokeEvent:
        """Tell Lambda this extension is done; block until the next INVOKE event."""


class ExtensionsApi:
    """The Extensions API at ``AWS_LAMBDA_RUNTIME_API`` (``host:port``, no scheme).

    `http.client` directly rather than `urllib.request`: the call is to Lambda's own local
    endpoint, and urllib would route it through an ``HTTP_PROXY`` the function may set.
    """

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ExtensionsApiError(
                f"AWS_LAMBDA_RUNTIME_API={address!r} is not host:port", refused=False
            )
        self._host = host
        self._port = int(port)

    def _call(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes | None,
        timeout_s: float | None,
    ) -> tuple[int, dict[str, str], bytes]:
        import http.client

        connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout_s)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        except (OSError, http.client.HTTPException) as error:
            raise ExtensionsApiError(
                f"the Extensions API did not answer: {type(error).__name__}: {error}",
                refused=False,
            ) from error
        finally:
            connection.close()

    def register(self, name: str) -> str:
        status, headers, body = self._call(
            "POST",
            REGISTER_PATH,
            {NAME_HEADER: name, "Content-Type": "application/json"},
            json.dumps({"events": ["INVOKE"]}).encode(),
            REGISTER_TIMEOUT_S,
        )
        identifier = _header(headers, IDENTIFIER_HEADER)
        if status == 200 and identifier:
            return identifier
        # 404: this runtime API has no Extensions API (a local runtime); 403: Lambda said no.
        raise ExtensionsApiError(
            f"registration answered {status}: {_error_text(body)}", refused=status != 404
        )

    def next_event(self, identifier: str) -> InvokeEvent:
        # No timeout: the call waits across the freeze until Lambda's next invocation.
        status, _, body = self._call("GET", NEXT_PATH, {IDENTIFIER_HEADER: identifier}, None, None)
        if status != 200:
            raise ExtensionsApiError(f"next answered {status}: {_error_text(body)}", refused=True)
        try:
            document = json.loads(body)
            if document.get("eventType") != "INVOKE":
                raise ValueError(f"eventType {document.get('eventType')!r}")
            return InvokeEvent(
                request_id=str(document["requestId"]), deadline_ms=int(document["deadlineMs"])
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise ExtensionsApiError(f"unexpected event: {error}", refused=True) from error


def _header(headers: dict[str, str], name: str) -> str:
    lowered = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lowered), "")


def _error_text(body: bytes) -> str:
    """Lambda's error document as one line: ``errorType: errorMessage``."""
    try:
        document = json.loads(body)
        return f"{document.get('errorType', '?')}: {document.get('errorMessage', '')}".strip()
    except (ValueError, AttributeError):
        return body[:200].decode(errors="replace") or "(no body)"


class Handoff:
    """Where the decorator leaves an invocation's delivery for the extension thread to run.

    One invocation runs at a time per execution environment, and the extension's INVOKE event
    and the function's return race each other (both follow the start of the invocation), so a
    delivery is kept under its request id until the extension takes it, whichever comes first.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._jobs: dict[str, Job] = {}
        self.open = False
        """The extension thread is running and will take what is handed over."""

    def hand_over(self, request_id: str, job: Job) -> bool:
        """Leave ``job`` for the extension; False if there is none (then run it yourself)."""
        with self._condition:
            if not self.open:
                return False
            self._jobs = {request_id: job}  # an older one never taken belongs to nobody now
            self._condition.notify_all()
            return True

    def take(self, request_id: str, timeout_s: float) -> Job | None:
        """Wait up to ``timeout_s`` for the delivery of ``request_id``; None if none came."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while request_id not in self._jobs:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._condition.wait(remaining)
            return self._jobs.pop(request_id)

    def close(self) -> list[Job]:
        """Accept nothing more; return what was handed over and not taken (to run it now)."""
        with self._condition:
            self.open = False
            jobs, self._jobs = list(self._jobs.values()), {}
            return jobs


def lambda_handler_name() -> str | None:
    """The function Lambda calls, as ``module.function`` (``_HANDLER``, slashes as dots)."""
    configured = os.environ.get("_HANDLER")
    return configured.replace("/", ".") if configured else None


def function_name_of(function: Callable[..., Any]) -> str:
    """``module.qualname`` of ``function``, comparable with `lambda_handler_name`."""
    module = getattr(function, "__module__", None) or "?"
    return f"{module}.{getattr(function, '__qualname__', '?')}"


class PostResponseDelivery:
    """The internal extension: registers once during Init, then runs each invocation's delivery.

    Attributes:
        handoff: where the decorator leaves each invocation's delivery.
        fallback_reason: why the decorator delivers before returning instead (None if it does
            not, or if the reason was already said).
        carried_events: events left queued when an invocation's deadline came; they are sent
            with the next invocation (or at SIGTERM), never dropped for it.
    """

    def __init__(self) -> None:
        self.handoff = Handoff()
        self.fallback_reason: str | None = None
        self.carried_events = 0
        self.timeout_margin_ms = 0
        self._lock = threading.Lock()
        self._tried = False
        self._here = ProcessMark()
        """Set in the process that may use the extension: a fork's child may not."""
        self._here.set()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """The extension is registered and its thread serves invocations in this process."""
        return self.handoff.open and self._here.here()

    def start(self, client: ExtensionsClient, *, timeout_margin_ms: int) -> bool:
        """Register with ``client`` and start the thread, once per process; True if running.

        On refusal the reason is kept in `fallback_reason`, to be said once.
        """
        with self._lock:
            if self._tried:
                return self.running
            self._tried = True
            self.timeout_margin_ms = timeout_margin_ms
            try:
                identifier = client.register(EXTENSION_NAME)
            except ExtensionsApiError as error:
                what = "refused" if error.refused else "is not available"
                self.refuse(f"Lambda's Extensions API {what} ({error})")
                return False
            self.handoff.open = True
            self.fallback_reason = None  # a decorated helper's reason: the handler runs it now
            # One daemon thread for the process's life: the freeze stops it between
            # invocations, and Lambda ends the process (after SIGTERM, see `_lifecycle`).
            self._thread = threading.Thread(
                target=self._run,
                args=(client, identifier),
                name="cloudwatch-logs-extension",
                daemon=True,
            )
            self._thread.start()
            return True

    def hand_over(self, request_id: str, job: Job) -> bool:
        """Leave ``job`` for the extension thread; False if it does not run in this process."""
        return self._here.here() and self.handoff.hand_over(request_id, job)

    def refuse(self, reason: str) -> None:
        """Deliver before returning from now on, and say ``reason`` once."""
        self.fallback_reason = (
            f"delivering before the function returns: {reason}; the caller waits for delivery"
        )

    def take_fallback_reason(self) -> str | None:
        """The reason to say on the side channel, once."""
        with self._lock:
            reason, self.fallback_reason = self.fallback_reason, None
            return reason

    def _run(self, client: ExtensionsClient, identifier: str) -> None:
        block_termination_signal_in_this_thread()
        try:
            while True:
                # The first call ends this extension's Init; each later one ends an invocation.
                self._serve(client.next_event(identifier))
        except Exception as error:  # the API went away: deliver in the decorator from now on
            for job in self.handoff.close():
                self._run_job(job, None)
            write_to_stderr(f"Lambda extension stopped, delivering before returning: {error}")

    def _serve(self, event: InvokeEvent) -> None:
        # Wait for the function up to the deadline itself: past it Lambda ends the invocation
        # anyway, and the margin is for delivery, which must still be counted if it gets none.
        job = self.handoff.take(
            event.request_id, self._seconds_left(event.deadline_ms, margin_ms=0)
        )
        if job is None:
            write_to_stderr(
                f"invocation {event.request_id} handed no delivery over before its deadline "
                "(is the function Lambda calls decorated with flush_after_invocation?)"
            )
            return
        self._run_job(job, event.deadline_ms)

    def _run_job(self, job: Job, deadline_ms: int | None) -> None:
        budget_s = self._seconds_left(deadline_ms) if deadline_ms is not None else ORPHAN_DELIVERY_S
        try:
            left = job(budget_s)
        except Exception as error:  # a bug of ours must not stop the extension
            write_to_stderr(f"post-response delivery failed: {type(error).__name__}: {error}")
            return
        self.carried_events += left

    def _seconds_left(self, deadline_ms: int, *, margin_ms: int | None = None) -> float:
        """Seconds until ``deadline_ms`` less the margin (default: the decorator's)."""
        margin = self.timeout_margin_ms if margin_ms is None else margin_ms
        now_ms = time.time_ns() // 1_000_000
        return max(0.0, (deadline_ms - now_ms - margin) / 1000)

    def forget(self) -> None:
        """Start afresh, as a new execution environment would (tests use it)."""
        self.handoff.close()
        with self._lock:
            self._tried = False
            self.fallback_reason = None
            self.carried_events = 0
            self._here.set()


EXTENSION: Final = PostResponseDelivery()
"""This process's internal extension."""
