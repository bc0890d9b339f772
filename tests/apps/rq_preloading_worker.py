"""A worker script as RQ's documentation suggests one, to preload the jobs' module: here the
handler is made in the worker's own process, and every work horse forked from it inherits it.

Usage: rq_preloading_worker.py REDIS_URL (a burst: it ends once the queue is empty).
"""

from __future__ import annotations

import sys

import rq_jobs  # noqa: F401  # preloaded: imported once here, not in each work horse
from redis import Redis
from rq import Worker

Worker(["default"], connection=Redis.from_url(sys.argv[1])).work(burst=True)
