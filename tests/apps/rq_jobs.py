"""RQ jobs as users write them: the handler configured when the module is imported, a record per
step of each job.

Run by test_rq under a real RQ worker. Where the module is imported decides where the handler is
made: ``rq worker`` imports it in the work horse, the one process per job that RQ forks (or, with
``SpawnWorker``, spawns) and ends with ``os._exit``; a worker script that preloads it (RQ's own
advice, for speed) makes it before the work horses are forked. The endpoint, group and folder
come from the environment.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from aws_cloudwatch_logs_handler import CloudWatchLogsHandler

DONE = Path(os.environ["TEST_RQ_DONE"])  # one file per job run, named by the job and its process
RECORDS_PER_JOB = 250

log = logging.getLogger("jobs")
log.setLevel(logging.INFO)
log.propagate = False
log.addHandler(
    CloudWatchLogsHandler(
        os.environ["TEST_LOG_GROUP"],
        endpoint_url=os.environ["TEST_ENDPOINT_URL"],
        region="us-east-1",
    )
)


def work(number: int) -> None:
    for step in range(RECORDS_PER_JOB):
        log.info("job%d-%d", number, step)
    (DONE / f"{number}.{os.getpid()}").touch()
