"""A Lambda function with a bare internal extension (no library): it proves the harness's API.

Copied as ``handler.py`` and run by awslambdaric. At import it registers one extension for
INVOKE and tries a second one for SHUTDOWN; the extension thread records every event it gets
and, once the handler has returned, holds the invocation for ``event["hold_ms"]`` before
calling next again (a slow extension). The handler answers with what the extension saw so far.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from typing import Any

HOST, _, PORT = os.environ["AWS_LAMBDA_RUNTIME_API"].rpartition(":")


def call(
    method: str, path: str, headers: dict[str, str], body: bytes | None = None
) -> tuple[int, str | None, Any]:
    """One Extensions API call: (status, identifier header, decoded body)."""
    connection = http.client.HTTPConnection(HOST, int(PORT))
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    answer = (response.status, response.getheader("Lambda-Extension-Identifier"), response.read())
    connection.close()
    return answer[0], answer[1], json.loads(answer[2] or b"null")


def register(name: str, events: list[str]) -> tuple[int, str | None, Any]:
    """Register ``name`` for ``events``."""
    return call(
        "POST",
        "/2020-01-01/extension/register",
        {"Lambda-Extension-Name": name},
        json.dumps({"events": events}).encode(),
    )


STATUS, IDENTIFIER, REGISTERED = register("probe", ["INVOKE"])
SHUTDOWN_STATUS, _SHUTDOWN_ID, SHUTDOWN_ANSWER = register("probe-shutdown", ["INVOKE", "SHUTDOWN"])
SEEN: list[dict[str, Any]] = []
RETURNED = threading.Event()
HOLD_S = [0.0]


def extension() -> None:
    """Record each INVOKE; after the handler returned, hold the invocation, then call next."""
    while True:
        _, _, event = call(
            "GET",
            "/2020-01-01/extension/event/next",
            {"Lambda-Extension-Identifier": IDENTIFIER or ""},
        )
        SEEN.append(event)
        RETURNED.wait()
        RETURNED.clear()
        time.sleep(HOLD_S[0])  # the slow extension the test measures, not a wait for work


threading.Thread(target=extension, daemon=True).start()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer with the registrations and the events seen; try to register late if asked."""
    HOLD_S[0] = event.get("hold_ms", 0) / 1000
    late = register("late", ["INVOKE"])[0] if event.get("register_late") else None
    answer = {
        "registered": [STATUS, REGISTERED],
        "shutdown": [SHUTDOWN_STATUS, SHUTDOWN_ANSWER],
        "late": late,
        "seen": list(SEEN),
        "request_id": context.aws_request_id,
    }
    RETURNED.set()
    return answer
