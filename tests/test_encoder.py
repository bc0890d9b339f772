"""The PutLogEvents body we encode: botocore's bytes exactly, sent through its own hooks."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import boto3
import pytest
from botocore.serialize import create_serializer
from handler_factory import HandlerFactory, unique_group
from hypothesis import given, settings
from hypothesis import strategies as st

from aws_cloudwatch_logs_handler import _encoder as encoder_module
from aws_cloudwatch_logs_handler import _logs_api as logs_api_module
from aws_cloudwatch_logs_handler import _slices as slices_module
from aws_cloudwatch_logs_handler._encoder import encode_put_log_events
from aws_cloudwatch_logs_handler._events import Event
from aws_cloudwatch_logs_handler._limits import MAX_BATCH_EVENTS
from aws_cloudwatch_logs_handler._packed import PackedEvents
from aws_cloudwatch_logs_handler._sender import SENDER
from aws_cloudwatch_logs_handler._slices import SLICE_EVENTS, Pause
from local_aws.moto_endpoint import REGION, MotoEndpoint

_LOGS_MODEL = boto3.session.Session(region_name=REGION).client("logs").meta.service_model
_SERIALIZER = create_serializer("json", include_validation=False)


def botocore_body(group: str, stream: str, events: list[Event]) -> bytes:
    """The body botocore's own serializer writes for this call."""
    params = {
        "logGroupName": group,
        "logStreamName": stream,
        "logEvents": [{"timestamp": e.timestamp_ms, "message": e.message} for e in events],
    }
    body: bytes = _SERIALIZER.serialize_to_request(
        params, _LOGS_MODEL.operation_model("PutLogEvents")
    )["body"]
    return body


_TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(
    group=_TEXT,
    stream=_TEXT,
    events=st.lists(
        st.builds(Event, st.integers(0, 2**53), _TEXT, st.just(0)), min_size=0, max_size=30
    ),
)
def test_body_is_botocores_byte_for_byte(group: str, stream: str, events: list[Event]) -> None:
    """Any names and messages (quotes, controls, non-ASCII, emoji) encode as botocore would."""
    packed = PackedEvents(events)
    assert encode_put_log_events(group, stream, packed) == botocore_body(group, stream, events)


# Characters JSON keeps as they are (the printf-like ones too), so that slices take the one-pass
# way for plain text; the test puts messages with something to escape among them.
_PLAIN_TEXT = st.text(st.sampled_from("abc %d%s{}:,'"), max_size=12)
_TO_ESCAPE = ('q"1', "back\\slash", "sep\x1earator", "line\n", "del\x7f", "é", "\U0001f600")


@settings(max_examples=60, deadline=None)
@given(
    messages=st.lists(_PLAIN_TEXT, min_size=1, max_size=3 * SLICE_EVENTS),
    special_every=st.sampled_from([0, 7, 600]),
    taken_first=st.integers(0, 150),
    events_per_ms=st.sampled_from([1, 3, 30, 60, 100, 1000, -3]),
)
def test_batches_queued_the_logging_calls_way_encode_as_botocore_would(
    messages: list[str], special_every: int, taken_first: int, events_per_ms: int
) -> None:
    """Events appended one by one (sealed into chunks), some taken off the front first (so that
    slices start inside a chunk), encode exactly as botocore would, whatever mix of plain and
    escaped messages each slice holds, and whether a slice spans one millisecond, a few (each
    run's timestamp written once), a dozen or so (each formatted once) or many; ``-3``: three
    timestamps out of order."""
    queue = PackedEvents()
    events = []
    for i, plain in enumerate(messages):
        special = special_every and i % special_every == special_every - 1
        message = _TO_ESCAPE[i % len(_TO_ESCAPE)] if special else plain
        offset = i * 7919 % 3 if events_per_ms < 0 else i // events_per_ms
        queue.append(1_700_000_000_000 + offset, message, 0)
        events.append(Event(1_700_000_000_000 + offset, message, 0))
    taken = min(taken_first, len(events) - 1)
    queue.detach(taken)
    assert encode_put_log_events("g", "s", queue) == botocore_body("g", "s", events[taken:])


def test_plain_log_lines_are_encoded_without_escaping_each_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch of the usual log lines (printable ASCII, no quotes) takes the one-pass way: the
    message-by-message escaping runs only for the one slice that holds a quote."""
    escaped_slices: list[int] = []
    original = encoder_module._encode_slice

    def counting(times: Any, messages: Any) -> str:
        escaped_slices.append(len(messages))
        return original(times, messages)

    monkeypatch.setattr(encoder_module, "_encode_slice", counting)
    lines = [f"2026-12-01 08:00:00,123 INFO app request {i} took 3% longer" for i in range(1500)]
    lines[700] = 'user said "hi"'
    queue = PackedEvents()
    for i, line in enumerate(lines):
        queue.append(1_700_000_000_000 + i, line, 0)
    events = [Event(1_700_000_000_000 + i, line, 0) for i, line in enumerate(lines)]
    assert encode_put_log_events("g", "s", queue) == botocore_body("g", "s", events)
    assert escaped_slices == [SLICE_EVENTS]  # the second slice, events 512 to 1023


def _recorder(pauses: list[float]) -> Pause:
    """A checkpoint that records how far each call looks ahead."""

    def pause(ahead_s: float = 0.0) -> None:
        pauses.append(ahead_s)

    return pause


def test_long_batches_are_encoded_in_slices_with_pauses() -> None:
    """A batch longer than one slice pauses before every slice and still encodes exactly."""
    events = [Event(1_700_000_000_000 + i, f'line "{i}"\n', 0) for i in range(2 * SLICE_EVENTS + 1)]
    pauses: list[float] = []
    body = encode_put_log_events("g", "s", PackedEvents(events), pause=_recorder(pauses))
    assert body == botocore_body("g", "s", events)
    assert len(pauses) == 4  # before each of the three slices, and before the body's join


def test_the_checkpoint_before_the_join_looks_ahead_by_the_joins_cost() -> None:
    """A full batch's 1 MB join, in a process's fresh memory, is half a millisecond of page
    faults holding the GIL: the checkpoint before it says so, so that the sender lets logging
    threads run first rather than run on past its turn. The estimate then follows the joins
    timed since (a short join is not timed)."""
    message = "2026-12-04 08:00:00,123 INFO app request took 3 ms " + "x" * 40
    events = [Event(1_700_000_000_000 + i, message, 0) for i in range(MAX_BATCH_EVENTS)]
    cost = encoder_module.JoinCost()
    pauses: list[float] = []
    record = _recorder(pauses)
    body = encode_put_log_events("g", "s", PackedEvents(events), pause=record, join_cost=cost)
    assert len(body) > 1_000_000
    assert pauses[-1] == pytest.approx(len(body) * encoder_module.COLD_JOIN_NS_PER_BYTE * 1e-9)
    assert pauses[:-1] == [0.0] * (len(pauses) - 1)  # the slices' own checkpoints, as before
    timed = cost.ns_per_byte
    assert 0 < timed != encoder_module.COLD_JOIN_NS_PER_BYTE

    pauses.clear()
    encode_put_log_events("g", "s", PackedEvents(events[:10]), pause=record, join_cost=cost)
    assert pauses[-1] == pytest.approx(len(botocore_body("g", "s", events[:10])) * timed * 1e-9)
    assert cost.ns_per_byte == timed  # too short to time


def _wire_bodies(session: Any) -> list[bytes]:
    """Collect every PutLogEvents body as it leaves the client (``before-send``, after signing)."""
    bodies: list[bytes] = []
    lock = threading.Lock()

    def keep(request: Any, **_: Any) -> None:
        with lock:
            bodies.append(bytes(request.body))

    session.events.register("before-send.cloudwatch-logs.PutLogEvents", keep)
    return bodies


def test_the_handler_sends_the_encoded_body_through_botocore(
    moto_server: MotoEndpoint, make_handler: HandlerFactory
) -> None:
    """Over HTTP, the signed request carries exactly botocore's body for the batch, and arrives."""
    session = boto3.session.Session(region_name=REGION)
    bodies = _wire_bodies(session)
    group = unique_group()
    handler = make_handler(group, session=session, endpoint_url=moto_server.url, log_stream="s")
    logger = make_handler.logger(handler)
    messages = [f'record {i} "quoted" é 😀' for i in range(50)]
    for message in messages:
        logger.info(message)
    assert handler.flush(timeout_s=30)
    assert moto_server.messages(group, "s") == messages
    sent = [event for body in bodies for event in json.loads(body)["logEvents"]]
    assert [e["message"] for e in sent] == messages
    expected = [Event(e["timestamp"], e["message"], 0) for e in sent]
    assert bodies == [botocore_body(group, "s", expected)]


def test_the_checkpoint_after_signing_runs_on_signed_requests(
    moto_server: MotoEndpoint, make_handler: HandlerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The turn checkpoint that follows botocore's hashing of the body runs after its signer,
    for every request of the handler's client: were it to run before, the hash's release of the
    GIL would go unseen (and the sender would sleep for a turn nobody waited for)."""
    signed: list[bool] = []
    original = logs_api_module._after_signing

    def recording(request: Any, **kwargs: Any) -> None:
        signed.append("Authorization" in request.headers)
        original(request=request, **kwargs)

    monkeypatch.setattr(logs_api_module, "_after_signing", recording)
    handler = make_handler(endpoint_url=moto_server.url, log_stream="s")
    make_handler.logger(handler).info("signed before the checkpoint")
    assert handler.flush(timeout_s=30)
    assert len(signed) >= 3  # the group, the stream, the events
    assert all(signed)


def test_each_checkpoint_before_a_stretch_of_botocore_looks_ahead_to_its_end(
    moto_server: MotoEndpoint, make_handler: HandlerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore runs stretches with no checkpoint of ours: from the call to
    ``before-endpoint-resolution``, from there to ``before-call``, from there until its signer
    hashes the body, from ``before-send`` until the socket send, and from ``before-parse`` on.
    The checkpoint before each says how long the stretch runs, so that a turn nearly used up
    ends there instead of running on through it (a traced logging call waited 0.9 ms for one,
    and 1.7 ms for the reply's reading and settling while ``before-parse`` was no checkpoint)."""
    ahead_by_hook: dict[str, list[float]] = {}

    def pause(ahead_s: float = 0.0) -> None:
        caller = sys._getframe(1).f_code.co_name
        ahead_by_hook.setdefault(caller, []).append(ahead_s)

    monkeypatch.setattr(slices_module, "pause", pause)
    handler = make_handler(endpoint_url=moto_server.url, log_stream="s")
    make_handler.logger(handler).info("one batch")
    assert handler.flush(timeout_s=30)
    hooks = ("put", "_pause_before_endpoint", "_swap_body", "_pause_before_send", "_after_reply")
    assert set(ahead_by_hook) == {*hooks, "encode_put_log_events", "_in_order"}
    assert all(len(ahead_by_hook[hook]) == 1 and ahead_by_hook[hook][0] > 0 for hook in hooks)


def test_the_checkpoint_before_endpoint_resolution_pauses_for_our_calls_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """botocore emits ``before-endpoint-resolution`` for every call of the service: the hook
    pauses only for a call carrying our body, and takes whatever it is given without raising."""
    pauses: list[float] = []
    monkeypatch.setattr(slices_module, "pause", _recorder(pauses))
    hook = logs_api_module._pause_before_endpoint
    hook()  # a botocore that passes no context
    hook(context=None, builtins={})
    hook(context={"client_region": "eu-west-1"})  # the user's own call
    assert pauses == []
    ours = logs_api_module._EncodedEvents(b"{}")
    hook(context={logs_api_module._CONTEXT_KEY: ours}, model=None, params={})
    assert len(pauses) == 1 and pauses[0] > 0


def test_a_botocore_that_skips_the_hook_falls_back_without_loss(
    moto_server: MotoEndpoint, make_handler: HandlerFactory
) -> None:
    """If botocore stops calling ``before-call``, the batch is resent plainly, once, and no
    stand-in event is stored."""
    client = boto3.session.Session(region_name=REGION).client("logs", endpoint_url=moto_server.url)
    events = client.meta.events
    register = events.register

    def register_but_never_emit_before_call(name: str, handler: Any, **options: Any) -> None:
        # A future botocore that takes the registration but no longer emits before-call.
        if not name.startswith("before-call."):
            register(name, handler, **options)

    events.register = register_but_never_emit_before_call  # type: ignore[method-assign,assignment]
    problems: list[str] = []
    group = unique_group()
    handler = make_handler(group, client=client, log_stream="s", on_problem=problems.append)
    logger = make_handler.logger(handler)
    for i in range(3):
        logger.info("kept %d", i)
    assert handler.flush(timeout_s=30)
    logger.info("later")
    assert handler.flush(timeout_s=30)
    assert moto_server.messages(group, "s") == ["kept 0", "kept 1", "kept 2", "later"]
    assert sum("encoded body" in problem for problem in problems) == 1, problems
    assert handler.stats().dropped_total == 0


def test_a_shared_client_still_serves_the_users_own_calls(
    moto_server: MotoEndpoint, make_handler: HandlerFactory
) -> None:
    """The user's own put_log_events on the handler's client is sent as they wrote it."""
    client = boto3.session.Session(region_name=REGION).client("logs", endpoint_url=moto_server.url)
    group = unique_group()
    handler = make_handler(group, client=client, log_stream="s")
    make_handler.logger(handler).info("from the handler")
    assert handler.flush(timeout_s=30)
    client.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": time.time_ns() // 1_000_000, "message": "from the user"}],
    )
    assert moto_server.messages(group, "s") == ["from the handler", "from the user"]


def test_the_sender_encodes_a_full_batch_without_its_lock_pausing_between_slices(
    moto_server: MotoEndpoint, make_handler: HandlerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sender encodes a batch of several slices with its lock released, pausing between
    slices and within botocore's work on the request, so a logging call never waits for that
    work whole; every record arrives once, in order."""
    free_at_each_pause: list[bool] = []

    def pause(ahead_s: float = 0.0) -> None:
        acquired = SENDER._lock.acquire(blocking=False)
        if acquired:
            SENDER._lock.release()
        free_at_each_pause.append(acquired)

    monkeypatch.setattr(slices_module, "pause", pause)
    group = unique_group()
    handler = make_handler(group, endpoint_url=moto_server.url, log_stream="s")
    logger = make_handler.logger(handler)
    messages = [f"m{i}" for i in range(2 * SLICE_EVENTS + 1)]
    for message in messages:
        logger.info(message)
    assert handler.flush(timeout_s=30)
    assert moto_server.messages(group, "s") == messages
    # Per call: before each of three slices, before the call, and twice inside botocore's work.
    assert len(free_at_each_pause) >= 6
    assert all(free_at_each_pause)
