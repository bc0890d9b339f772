"""A Celery application as users write one: the handler configured at import (in the worker's
main process, whose prefork pool processes inherit it), a record per step of each task.

Run by test_celery under a real Celery worker (prefork pool, the default), with a broker that
needs no server (kombu's filesystem transport); the endpoint, group and folders come from the
environment.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from celery import Celery

from aws_cloudwatch_logs_handler import CloudWatchLogsHandler

FOLDER = Path(os.environ["TEST_CELERY_DIR"])
MESSAGES = FOLDER / "messages"  # the broker's queue: one file per message
DONE = FOLDER / "done"  # one file per task run, named by the task and the process that ran it
RECORDS_PER_TASK = 250

app = Celery("celery_app", broker="filesystem://")
app.conf.broker_transport_options = {
    "data_folder_in": str(MESSAGES),
    "data_folder_out": str(MESSAGES),
    "control_folder": str(FOLDER / "control"),  # else kombu writes it where the worker runs
}
app.conf.task_ignore_result = True
app.conf.worker_hijack_root_logger = False

log = logging.getLogger("tasks")
log.setLevel(logging.INFO)
log.propagate = False
if endpoint := os.environ.get("TEST_ENDPOINT_URL"):  # not where the test only sends the tasks
    log.addHandler(
        CloudWatchLogsHandler(
            os.environ["TEST_LOG_GROUP"], endpoint_url=endpoint, region="us-east-1"
        )
    )


@app.task  # type: ignore[untyped-decorator]  # celery ships no types
def work(number: int) -> None:
    for step in range(RECORDS_PER_TASK):
        log.info("task%d-%d", number, step)
    (DONE / f"{number}.{os.getpid()}").touch()
