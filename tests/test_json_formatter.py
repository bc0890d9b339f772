"""JsonFormatter: Lambda's JSON keys, extra fields, options, and a format that never raises."""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aws_cloudwatch_logs_handler import ConfigurationError, JsonFormatter, bound

# What a record carries besides extra= fields: logging's own attributes and the runtime's.
RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "aws_request_id",
    "tenant_id",
    "_frame_type",
}
ISO_UTC_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def make_record(
    msg: object = "hello %s", args: Any = ("world",), **attributes: Any
) -> logging.LogRecord:
    """A record as `Logger.makeRecord` builds it, with ``attributes`` as its ``extra``."""
    record = logging.LogRecord("app.module", logging.WARNING, "/src/app.py", 42, msg, args, None)
    record.funcName = "handle"
    record.__dict__.update(attributes)
    return record


def failing_record() -> logging.LogRecord:
    try:
        raise ValueError("bad input")
    except ValueError:
        return logging.LogRecord(
            "app", logging.ERROR, "/src/app.py", 7, "failed", None, sys.exc_info(), "work"
        )


def formatted(record: logging.LogRecord, **options: Any) -> dict[str, Any]:
    text = JsonFormatter(**options).format(record)
    assert "\n" not in text  # one event, one line
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def test_a_plain_record_has_lambdas_keys_in_order() -> None:
    """timestamp (ISO 8601 UTC with ms), level, message and logger, nothing else outside Lambda."""
    record = make_record()
    record.created = 1_700_000_000.25
    fields = formatted(record)
    assert fields == {
        "timestamp": "2023-11-14T22:13:20.250Z",
        "level": "WARNING",
        "message": "hello world",
        "logger": "app.module",
    }
    assert ISO_UTC_MS.fullmatch(formatted(make_record())["timestamp"])


def test_an_exception_gives_error_type_message_stack_trace_and_location() -> None:
    """errorType, errorMessage, stackTrace (a list) and location path:function:line."""
    fields = formatted(failing_record())
    assert fields["errorType"] == "ValueError"
    assert fields["errorMessage"] == "bad input"
    assert isinstance(fields["stackTrace"], list)
    assert "failing_record" in fields["stackTrace"][-1]
    assert fields["location"] == "/src/app.py:work:7"


def test_extra_fields_are_top_level_and_none_values_are_left_out() -> None:
    """extra= fields become keys; a None value is left out, as Lambda leaves it out."""
    fields = formatted(make_record(order_id=17, user={"id": "u1"}, missing=None))
    assert fields["order_id"] == 17
    assert fields["user"] == {"id": "u1"}
    assert "missing" not in fields


def test_extra_fields_never_replace_the_formatters_own_keys() -> None:
    """A field named like a core key (level) does not overwrite it."""
    assert formatted(make_record(level="fake"))["level"] == "WARNING"


def test_a_dict_message_stays_a_json_object_under_message() -> None:
    """logger.info({...}) arrives as an object, as Lambda's formatter keeps it."""
    assert formatted(make_record({"event": "paid", "cents": 120}, None))["message"] == {
        "event": "paid",
        "cents": 120,
    }


def test_static_fields_bound_fields_and_extra_layer_in_that_order() -> None:
    """static < bound < extra: the most specific value wins."""
    record = make_record(env="from-extra")
    with bound(env="from-bind", request="r1"):
        fields = formatted(record, static_fields={"env": "prod", "service": "shop"})
    assert (fields["env"], fields["request"], fields["service"]) == ("from-extra", "r1", "shop")


def test_keys_can_be_renamed_and_dropped() -> None:
    """rename= and drop= shape the schema users' tools expect."""
    fields = formatted(make_record(), rename={"level": "severity"}, drop=["logger"])
    assert fields["severity"] == "WARNING"
    assert "level" not in fields and "logger" not in fields


def test_location_can_be_on_every_record_or_none() -> None:
    """location='always' adds it without an exception; 'never' leaves it out with one."""
    assert formatted(make_record(), location="always")["location"] == "/src/app.py:handle:42"
    assert "location" not in formatted(failing_record(), location="never")


def test_a_value_json_cannot_encode_uses_default_then_repr() -> None:
    """default= converts what it can; without it, or where it raises, the value's repr is used."""

    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque>"

    def refuse(value: object) -> object:
        raise TypeError("no")

    assert formatted(make_record(tags={"b"}))["tags"] == "{'b'}"
    assert formatted(make_record(tags={"b"}), default=sorted)["tags"] == ["b"]
    assert formatted(make_record(thing=Opaque()), default=refuse)["thing"] == "<Opaque>"


def test_nan_circular_values_and_odd_keys_become_their_repr() -> None:
    """Values that would make invalid JSON or raise are replaced field by field, the rest kept."""
    loop: list[object] = []
    loop.append(loop)
    fields = formatted(make_record(ratio=math.nan, loop=loop, odd={(1, 2): "tuple key"}, ok=1))
    assert fields["ratio"] == "nan"
    assert fields["loop"] == "[[...]]"
    assert fields["odd"] == "{(1, 2): 'tuple key'}"
    assert fields["ok"] == 1


def test_a_record_with_bad_arguments_still_formats() -> None:
    """'%d' with a string argument gives a message saying so, not an exception."""
    message = formatted(make_record("count %d", ("x",)))["message"]
    assert message.startswith("'count %d' % ('x',)") and "TypeError" in message


def test_a_broken_repr_and_a_broken_str_do_not_raise() -> None:
    """Objects whose __repr__ and __str__ raise are described instead."""

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("repr")

        __str__ = __repr__

    fields = formatted(make_record(Broken(), None, thing=Broken()))
    assert fields["thing"] == "<unrepresentable Broken: RuntimeError>"
    assert "Broken" in fields["message"]


@given(
    st.dictionaries(
        st.text(min_size=1).filter(lambda k: k.isidentifier() and k not in RECORD_ATTRIBUTES),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text() | st.binary(),
            lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
            max_leaves=8,
        ),
        max_size=5,
    ),
    st.text(),
)
def test_any_extra_values_give_one_parseable_json_object(extra: dict[str, Any], msg: str) -> None:
    """Whatever the message and extra values (bytes, NaN, surrogates), the output parses."""
    fields = json.loads(JsonFormatter().format(make_record(msg, None, **extra)))
    assert fields["message"] == msg
    assert set(fields) >= {k for k, v in extra.items() if v is not None}


@pytest.mark.parametrize(
    ("options", "fix"),
    [
        ({"rename": {"level": ""}}, "non-empty names"),
        ({"rename": {"level": "x", "logger": "x"}}, "the same name"),
        ({"drop": "logger"}, "not one string"),
        ({"static_fields": {"when": object()}}, "JSON-encodable"),
        ({"default": "str"}, "callable"),
        ({"location": "sometimes"}, "'exceptions'"),
    ],
)
def test_bad_options_are_refused_at_construction(options: dict[str, Any], fix: str) -> None:
    """Each invalid option raises ConfigurationError naming the fix."""
    with pytest.raises(ConfigurationError, match=re.escape(fix)):
        JsonFormatter(**options)


def lambda_format(record: logging.LogRecord) -> dict[str, Any]:
    """The record through awslambdaric's own filter and JSON formatter, as the runtime runs them."""
    from awslambdaric.bootstrap import LambdaLoggerFilter
    from awslambdaric.lambda_runtime_log_utils import JsonFormatter as RuntimeJsonFormatter

    LambdaLoggerFilter().filter(record)
    parsed: dict[str, Any] = json.loads(RuntimeJsonFormatter().format(record))
    return parsed


@pytest.mark.parametrize(
    "build",
    [
        make_record,
        lambda: make_record("no args", None),
        lambda: make_record({"event": "paid"}, None),
        lambda: make_record(order_id=17, user={"id": "u1"}),
        failing_record,
    ],
    ids=["args", "plain", "dict", "extra", "exception"],
)
def test_golden_the_same_keys_as_lambdas_own_json_formatter(
    build: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same records through awslambdaric's JsonFormatter and ours give the same keys."""
    import awslambdaric.bootstrap

    monkeypatch.setattr(awslambdaric.bootstrap, "_GLOBAL_AWS_REQUEST_ID", "req-123")
    from awslambdaric.bootstrap import LambdaLoggerFilter

    theirs = lambda_format(build())
    record = build()
    LambdaLoggerFilter().filter(record)  # in Lambda, the runtime's filter runs on every record
    ours = formatted(record)
    assert list(ours) == [k for k in CORE_ORDER if k in theirs] + [
        k for k in theirs if k not in CORE_ORDER
    ]
    assert set(ours) == set(theirs)
    assert ours["requestId"] == theirs["requestId"] == "req-123"
    assert ours["message"] == theirs["message"]


CORE_ORDER = [
    "timestamp",
    "level",
    "message",
    "logger",
    "stackTrace",
    "errorType",
    "errorMessage",
    "requestId",
    "location",
]


def test_a_record_seen_by_lambdas_runtime_first_keeps_its_values() -> None:
    """After the runtime's formatter mutated the record (_frame_type), ours adds no stray key."""
    record = failing_record()
    lambda_format(record)
    assert set(formatted(record)) == set(CORE_ORDER)


def test_request_id_comes_from_the_invocation_when_the_runtime_did_not_set_it() -> None:
    """Inside invocation_scope, a record no runtime filter saw still gets the request id."""
    from types import SimpleNamespace

    from aws_cloudwatch_logs_handler import invocation_scope
    from aws_cloudwatch_logs_handler._invocation import INVOCATIONS

    context = SimpleNamespace(aws_request_id="req-456", function_name="f", function_version="1")
    try:
        with invocation_scope(context, handlers=[]):
            assert formatted(make_record())["requestId"] == "req-456"
    finally:
        INVOCATIONS.forget()
    assert "requestId" not in formatted(make_record())
