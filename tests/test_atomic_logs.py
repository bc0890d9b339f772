"""Our local endpoints create a log group or stream atomically, as CloudWatch Logs does.

Two writers that create one name at once (the workers of a server sharing the stream their
master named) must not both be told they created it: moto, unguarded, then stores the second
resource over the first, and the events put into the first vanish.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
from moto.logs import models
from test_keep_alive_moto import serving

from local_aws import atomic_logs
from local_aws.keep_alive_moto import serve
from local_aws.moto_endpoint import logs_client, running_moto_server

_HELD_S = 2.0
"""How long the first creation is held while the second writer goes ahead (bounded)."""


def _hold_first_build(
    monkeypatch: pytest.MonkeyPatch, resource: type[Any], released: threading.Event
) -> threading.Event:
    """Hold moto's first build of ``resource`` until ``released`` (or `_HELD_S`), as a thread of
    its server preempted between its check of the name and its store would be. Returns the
    event set once that build has begun."""
    began = threading.Event()
    build: Callable[..., None] = resource.__init__

    def held(self: Any, *args: Any, **kwargs: Any) -> None:
        if not began.is_set():
            began.set()
            released.wait(_HELD_S)
        build(self, *args, **kwargs)

    monkeypatch.setattr(resource, "__init__", held)
    return began


@pytest.fixture
def unguarded_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto as it is installed, for this test: each endpoint must guard it itself."""
    backend = models.LogsBackend
    if getattr(backend, atomic_logs.MARK, None) is None:
        return
    for name in atomic_logs.ATOMIC:
        guarded = getattr(backend, name, None)
        if guarded is not None:
            monkeypatch.setattr(backend, name, guarded.__wrapped__)
    monkeypatch.delattr(backend, atomic_logs.MARK)


def _keep_alive_moto() -> AbstractContextManager[str]:
    return serving(serve("127.0.0.1", 0))


@contextmanager
def _threaded_moto() -> Iterator[str]:
    with running_moto_server() as moto:
        yield moto.url


ENDPOINTS: dict[str, Callable[[], AbstractContextManager[str]]] = {
    "moto_endpoint": _threaded_moto,  # the tests' moto server
    "keep_alive_moto": _keep_alive_moto,  # the benchmarks'
}


@pytest.mark.usefixtures("unguarded_moto")
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("resource", ["stream", "group"])
def test_a_name_two_writers_create_at_once_is_created_once_and_keeps_every_event(
    monkeypatch: pytest.MonkeyPatch, resource: str, endpoint: str
) -> None:
    """The first writer's creation is held after moto found the name free; the second creates
    the same name and puts an event. With the creations atomic, the second is told the name
    exists (it waits for the first), and the events of both writers are in the stream; unguarded,
    both are told they created it, and the second writer's event is lost when the first's
    creation replaces the stream it went into."""
    group, stream = f"/atomic/{uuid.uuid4().hex[:8]}", "shared"
    released = threading.Event()
    outcomes: dict[str, str] = {}
    with ENDPOINTS[endpoint]() as url:
        setup = logs_client(url)
        if resource == "stream":
            setup.create_log_group(logGroupName=group)
        began = _hold_first_build(
            monkeypatch, models.LogStream if resource == "stream" else models.LogGroup, released
        )

        def write(writer: str) -> None:
            client = logs_client(url)
            try:
                if resource == "group":
                    client.create_log_group(logGroupName=group)
                outcomes[writer] = "created"
            except client.exceptions.ResourceAlreadyExistsException:
                outcomes[writer] = "exists"
            try:
                client.create_log_stream(logGroupName=group, logStreamName=stream)
            except client.exceptions.ResourceAlreadyExistsException:
                if resource == "stream":
                    outcomes[writer] = "exists"
            client.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[{"timestamp": int(time.time() * 1000), "message": writer}],
            )

        first = threading.Thread(target=write, args=("first",))
        first.start()
        assert began.wait(30), "moto never began the first creation"
        second = threading.Thread(target=write, args=("second",))
        second.start()
        second.join(_HELD_S)  # unguarded, it is done at once; atomic, it waits for the first
        released.set()
        first.join(30)
        second.join(30)
        assert not first.is_alive() and not second.is_alive()
        events = setup.get_log_events(logGroupName=group, logStreamName=stream)["events"]
    messages = sorted(event["message"] for event in events)
    assert sorted(outcomes.values()) == ["created", "exists"]
    assert messages == ["first", "second"]
