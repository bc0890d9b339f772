"""Group and stream names: AWS's rules enforced at construction, and the default stream name."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest

from aws_cloudwatch_logs_handler import CloudWatchLogsHandler, ConfigurationError
from aws_cloudwatch_logs_handler._names import dated_uuid_stream_name

DATED_UUID = re.compile(
    r"stream/\d{4}/\d{2}/\d{2}/\d{4}/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
)


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("", "non-empty"),
        ("a" * 513, "limit is 512"),
        ("/my app", "may only contain"),
        ("/my:app", "may only contain"),
        ("aws/lambda/x", "reserves"),
    ],
)
def test_bad_group_names_are_refused_naming_the_rule(name: str, rule: str) -> None:
    """A group name AWS would refuse fails at construction with the rule it breaks."""
    with pytest.raises(ConfigurationError, match=rule):
        CloudWatchLogsHandler(name)


def test_missing_group_is_refused_with_the_fix() -> None:
    """A group of None (from an untyped caller) is a ValueError naming the fix; none at all is a
    TypeError, since log_group is the one required argument."""
    with pytest.raises(ValueError, match="Log Group name is required: pass log_group"):
        CloudWatchLogsHandler(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="log_group"):
        CloudWatchLogsHandler()  # type: ignore[call-arg]


@pytest.mark.parametrize("name", ["/a/b.c-d_e#f", "a" * 512, "/aws/lambda/fn"])
def test_valid_group_names_are_accepted(name: str) -> None:
    """Names of up to 512 allowed characters pass; '/aws/...' (with a slash) is allowed."""
    handler = CloudWatchLogsHandler(name)
    try:
        assert handler.log_group_name == name
    finally:
        handler.close()


@pytest.mark.parametrize(("name", "rule"), [("a:b", "':' or '\\*'"), ("a*b", "':'"), ("", "empty"),
                                             ("s" * 513, "512")])  # fmt: skip
def test_bad_stream_names_are_refused_naming_the_rule(name: str, rule: str) -> None:
    """A stream name with ':' or '*', empty or over 512 characters fails at construction."""
    with pytest.raises(ConfigurationError, match=rule):
        CloudWatchLogsHandler("/app", log_stream=name)


def test_default_stream_is_the_articles_dated_uuid_in_utc() -> None:
    """Outside Lambda the stream is stream/YYYY/MM/DD/HHMM/<uuid4>, from the UTC time."""
    moment = datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)
    name = dated_uuid_stream_name(moment)
    assert name.startswith("stream/2026/01/02/0304/")
    assert DATED_UUID.fullmatch(name)
    handler = CloudWatchLogsHandler("/app")
    try:
        assert DATED_UUID.fullmatch(handler.log_stream_name)
        assert handler.log_stream_name == handler.log_stream_name  # computed once per handler
        other = CloudWatchLogsHandler("/app")
        assert other.log_stream_name != handler.log_stream_name
        other.close()
    finally:
        handler.close()
