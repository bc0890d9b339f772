"""moto's CloudWatch Logs made atomic where CloudWatch Logs is: creating a group or a stream.

moto creates a log group or stream by checking that the name is free, building the resource,
then storing it under the name, with no lock (moto 5.2 says so itself, beside its
``put_log_events``). Its server answers each request on a thread of its own, so two writers that
create one name at once can both be told they created it: the second resource then replaces the
first, and the events already put into the first are gone, with no error to anyone. CloudWatch
Logs answers the second ``ResourceAlreadyExistsException``.

Workers of one server (gunicorn ``--preload``, a uWSGI master) share the stream their master
named, and both create it with their first batch, 2 s after their first requests. One CI run
lost one uWSGI worker's records silently (each call it made had succeeded), most likely that
way: with moto's creating threads held as preempted ones are, every run loses them so
(`tests/test_uwsgi.py::test_workers_creating_their_shared_stream_at_once_lose_nothing`).
`make_logs_writes_atomic` runs moto's creations, deletions and puts of CloudWatch Logs one at a
time, in the process that serves moto; every local endpoint of this repository calls it before it
serves.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, Final

ATOMIC: Final = (
    "create_log_group",
    "ensure_log_group",
    "delete_log_group",
    "create_log_stream",
    "ensure_log_stream",
    "delete_log_stream",
    "put_log_events",
)
"""The backend's calls that check a name, then change what is stored under it."""

MARK: Final = "_atomic_logs_lock"


def make_logs_writes_atomic() -> None:
    """Run moto's CloudWatch Logs writes one at a time in this process (idempotent)."""
    from moto.logs.models import LogsBackend

    if getattr(LogsBackend, MARK, None) is not None:
        return
    # One lock for all of them: a put must not land in a stream that a creation is replacing,
    # and a creation calls another (``ensure_log_stream`` calls ``create_log_stream``).
    lock = threading.RLock()
    for name in ATOMIC:
        method = getattr(LogsBackend, name, None)
        if method is not None:  # a later moto may have dropped one; the rest still hold
            setattr(LogsBackend, name, _holding(lock, method))
    setattr(LogsBackend, MARK, lock)


def _holding(lock: threading.RLock, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def atomic(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return atomic
