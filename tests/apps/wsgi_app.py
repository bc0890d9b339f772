"""A WSGI application as users write one: a handler configured at import, a few records logged
while it loads, a record per request.

Run by test_gunicorn and test_uwsgi under the real servers; the endpoint and group come from
the environment.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aws_cloudwatch_logs_handler import CloudWatchLogsHandler

# A test that needs nothing sent for a while sets a longer flush interval.
options: dict[str, Any] = {}
if "TEST_FLUSH_INTERVAL_S" in os.environ:
    options["flush_interval_s"] = float(os.environ["TEST_FLUSH_INTERVAL_S"])
handler = CloudWatchLogsHandler(
    os.environ["TEST_LOG_GROUP"],
    endpoint_url=os.environ["TEST_ENDPOINT_URL"],
    region="us-east-1",
    spool_dir=os.environ.get("TEST_SPOOL_DIR") or None,
    **options,
)
logging.basicConfig(level=logging.INFO, handlers=[handler], format="%(message)s")
log = logging.getLogger("app")

# Records logged at import: in the server's master when it loads the application before forking
# its workers (gunicorn's ``--preload``, uWSGI by default), so the workers start with them queued.
for number in range(int(os.environ["TEST_LOADING_RECORDS"])):
    log.info("loading-%d pid=%d", number, os.getpid())

# A slow import (a model loaded, say), when the test asks for one: it says it has logged its
# loading records, then stays in the import until the server stops it or the hold ends.
if hold_dir := os.environ.get("TEST_IMPORT_HOLD_DIR"):
    Path(hold_dir, str(os.getpid())).touch()
    time.sleep(float(os.environ["TEST_IMPORT_HOLD_S"]))


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    request_id = environ.get("QUERY_STRING", "")
    log.info("request-%s pid=%d", request_id, os.getpid())
    if request_id.startswith("slow-"):  # a request still running when the server stops
        if started_dir := os.environ.get("TEST_SLOW_STARTED_DIR"):
            Path(started_dir, request_id).touch()  # says it is in the application's code now
        time.sleep(float(os.environ.get("TEST_SLOW_REQUEST_S", "60")))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [request_id.encode()]
