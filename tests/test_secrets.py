"""No repr, message or report of the library shows a secret key."""

from __future__ import annotations

import threading

from handler_factory import HandlerFactory

from aws_cloudwatch_logs_handler._client import ClientSource

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"


def test_reprs_and_reports_never_show_the_secret_key(make_handler: HandlerFactory) -> None:
    """The handler's, its settings' and its client source's reprs, and every problem report of a
    failing delivery, leave the secret key out."""
    reports: list[str] = []
    reported = threading.Event()

    def on_problem(message: str) -> None:
        reports.append(message)
        reported.set()

    handler = make_handler(
        access_key="AKIAEXAMPLE",
        secret_key=SECRET,
        region="us-east-1",
        endpoint_url="http://127.0.0.1:9",  # nothing listens: every attempt fails and is reported
        shutdown_timeout_s=0,
        on_problem=on_problem,
    )
    make_handler.logger(handler).info("hello")
    assert not handler.flush(0.5)  # sends at once, and fails
    # The process's one sender may still be busy with what earlier tests' handlers left: wait
    # (boundedly) for this handler's first failed attempt rather than for a fixed time.
    assert reported.wait(30), "the failing delivery was not reported: the check would prove nothing"
    settings = handler._queues.settings
    shown = [repr(handler), repr(settings), repr(settings.client_source), repr(handler.stats())]
    for text in shown + reports:
        assert SECRET not in text


def test_a_client_source_still_holds_the_secret_it_does_not_show() -> None:
    """Leaving the key out of the repr does not lose it: the client is built with it."""
    source = ClientSource(access_key="AKIAEXAMPLE", secret_key=SECRET, region="us-east-1")
    assert SECRET not in repr(source)
    credentials = source.build()._request_signer._credentials
    assert credentials.secret_key == SECRET
