"""The per-group options, typed and checked when they are made, before any construct exists.

Each check names the limit AWS documents, so a bad option fails at synth with the fix instead
of at deploy time (the local endpoint checks none of them). Limits:
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/cloudwatch_limits_cwl.html
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from aws_cdk import aws_logs as logs

from aws_cloudwatch_logs_handler._errors import ConfigurationError

# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutMetricFilter.html
MAX_FILTER_PATTERN_CHARS: Final = 1024
MAX_METRIC_FILTERS_PER_GROUP: Final = 100
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_MetricTransformation.html
MAX_METRIC_NAME_CHARS: Final = 255
MAX_METRIC_NAMESPACE_CHARS: Final = 255
MAX_METRIC_VALUE_CHARS: Final = 100
_RESERVED_NAMESPACE_PREFIX: Final = "AWS/"
DEFAULT_METRIC_NAMESPACE: Final = "LogMetrics"
"""Where metric filters publish unless told otherwise."""
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutIndexPolicy.html
MAX_FIELD_INDEXES: Final = 20
MAX_FIELD_INDEX_CHARS: Final = 100
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutQueryDefinition.html
MAX_QUERY_NAME_CHARS: Final = 255
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-Limit.html
MAX_QUERY_LIMIT: Final = 10_000

SubscriptionKind: TypeAlias = Literal["kinesis", "firehose"]
# A subscription delivers to a Kinesis data stream or a Firehose stream (Lambda and cross-account
# destinations are left out: they need resources of their own).
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/SubscriptionFilters.html
_DESTINATION_ARN: Final = re.compile(
    r"arn:aws[a-z-]*:(?P<service>kinesis|firehose):[a-z0-9-]+:\d{12}:"
    r"(?P<resource>stream|deliverystream)/[A-Za-z0-9_.-]{1,64}"
)
_DESTINATION_RESOURCE: Final[dict[str, str]] = {"kinesis": "stream", "firehose": "deliverystream"}

MANAGED_DATA_IDENTIFIERS: Final = frozenset(
    getattr(logs.DataIdentifier, attribute).name
    for attribute in dir(logs.DataIdentifier)
    if attribute.isupper()
)
"""The managed data identifiers CloudWatch Logs masks (``EmailAddress``, ``IpAddress``, ...),
as aws-cdk-lib lists them: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/mask-sensitive-log-data-types.html"""


def _text(value: str, *, field: str, max_chars: int, empty_ok: bool = False) -> None:
    if not isinstance(value, str) or (not value and not empty_ok):
        raise ConfigurationError(f"{field} must be a non-empty string, got {value!r}")
    if len(value) > max_chars:
        raise ConfigurationError(
            f"{field} has {len(value)} characters; at most {max_chars} allowed"
        )


@dataclass(frozen=True, kw_only=True)
class MetricFilter:
    """A metric published from the group's events that match ``pattern``.

    Attributes:
        pattern: a CloudWatch Logs filter pattern, e.g. ``{ $.level = "ERROR" }``; ``""`` matches
            every event.
        metric_name: the metric's name.
        namespace: the metric's namespace (not ``AWS/...``).
        value: what one match adds: ``"1"`` to count, or a field such as ``"$.latency_ms"``.
        default_value: published for a period without matches; ``None`` publishes nothing.
    """

    pattern: str
    metric_name: str
    namespace: str = DEFAULT_METRIC_NAMESPACE
    value: str = "1"
    default_value: float | None = None

    def __post_init__(self) -> None:
        _text(self.pattern, field="pattern", max_chars=MAX_FILTER_PATTERN_CHARS, empty_ok=True)
        _text(self.metric_name, field="metric_name", max_chars=MAX_METRIC_NAME_CHARS)
        _text(self.namespace, field="namespace", max_chars=MAX_METRIC_NAMESPACE_CHARS)
        if self.namespace.startswith(_RESERVED_NAMESPACE_PREFIX):
            raise ConfigurationError(
                f"namespace {self.namespace!r} starts with {_RESERVED_NAMESPACE_PREFIX!r}, "
                "which AWS reserves for its own services; pick another"
            )
        _text(self.value, field="value", max_chars=MAX_METRIC_VALUE_CHARS)
        if self.default_value is not None and (
            isinstance(self.default_value, bool) or not isinstance(self.default_value, (int, float))
        ):
            raise ConfigurationError(
                f"default_value must be a number or absent, got {self.default_value!r}"
            )


@dataclass(frozen=True, kw_only=True)
class Subscription:
    """Stream the group's matching events to a Kinesis data stream or a Firehose stream.

    Attributes:
        destination_arn: ``arn:<partition>:kinesis:<region>:<account>:stream/<name>`` or
            ``arn:<partition>:firehose:<region>:<account>:deliverystream/<name>``.
        pattern: which events to stream; ``""`` streams them all.
    """

    destination_arn: str
    pattern: str = ""

    def __post_init__(self) -> None:
        _text(self.pattern, field="pattern", max_chars=MAX_FILTER_PATTERN_CHARS, empty_ok=True)
        match = (
            _DESTINATION_ARN.fullmatch(self.destination_arn)
            if isinstance(self.destination_arn, str)
            else None
        )
        if match is None or _DESTINATION_RESOURCE[match["service"]] != match["resource"]:
            raise ConfigurationError(
                f"destination_arn={self.destination_arn!r} must be a Kinesis data stream ARN "
                "('arn:aws:kinesis:<region>:<account>:stream/<name>') or a Firehose stream ARN "
                "('arn:aws:firehose:<region>:<account>:deliverystream/<name>')"
            )

    @property
    def kind(self) -> SubscriptionKind:
        """``"kinesis"`` or ``"firehose"``, from the ARN's service."""
        return "kinesis" if ":kinesis:" in self.destination_arn else "firehose"


@dataclass(frozen=True, kw_only=True)
class QueryDefinition:
    """A saved Logs Insights query on the group, in the parts CDK's ``QueryString`` takes.

    Attributes:
        name: the name the console lists it under (``/`` makes folders).
        fields: the ``fields`` command.
        parse, filter, stats, sort: each command's text, without the command word.
        limit: the ``limit`` command, 1 to 10,000.
    """

    name: str
    fields: tuple[str, ...] = ("@timestamp", "@message")
    parse: str | None = None
    filter: str | None = None
    stats: str | None = None
    sort: str | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        _text(self.name, field="name", max_chars=MAX_QUERY_NAME_CHARS)
        if not isinstance(self.fields, tuple) or not all(
            isinstance(field, str) and field for field in self.fields
        ):
            raise ConfigurationError(f"fields must be a list of field names, got {self.fields!r}")
        for command in ("parse", "filter", "stats", "sort"):
            value = getattr(self, command)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigurationError(f"{command} must be a non-empty string, got {value!r}")
        if self.limit is not None and (
            isinstance(self.limit, bool)
            or not isinstance(self.limit, int)
            or not 1 <= self.limit <= MAX_QUERY_LIMIT
        ):
            raise ConfigurationError(
                f"limit={self.limit!r} must be an integer from 1 to {MAX_QUERY_LIMIT:,}"
            )

    def query_string(self) -> logs.QueryString:
        """Return CDK's ``QueryString`` for these commands."""
        return logs.QueryString(
            fields=list(self.fields) or None,
            parse=self.parse,
            filter_statements=None if self.filter is None else [self.filter],
            stats=self.stats,
            sort=self.sort,
            limit=self.limit,
        )


def validate_data_identifiers(identifiers: Sequence[str]) -> tuple[str, ...]:
    """Return ``identifiers`` if each is a managed data identifier; raise naming the closest."""
    if isinstance(identifiers, str) or not identifiers:
        raise ConfigurationError(
            "data_protection must be a non-empty list of managed data identifiers, "
            f"e.g. ['EmailAddress', 'IpAddress'], got {identifiers!r}"
        )
    for identifier in identifiers:
        if identifier not in MANAGED_DATA_IDENTIFIERS:
            close = difflib.get_close_matches(str(identifier), sorted(MANAGED_DATA_IDENTIFIERS))
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigurationError(
                f"data_protection: {identifier!r} is not a managed data identifier; {hint}"
                "see https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/"
                "mask-sensitive-log-data-types.html"
            )
    if len(set(identifiers)) != len(identifiers):
        raise ConfigurationError(f"data_protection names an identifier twice: {identifiers!r}")
    return tuple(identifiers)


def validate_field_indexes(fields: Sequence[str]) -> tuple[str, ...]:
    """Return ``fields`` if a field index policy accepts them: at most 20 unique names."""
    if isinstance(fields, str) or not fields:
        raise ConfigurationError(
            f"field_indexes must be a non-empty list of JSON keys, e.g. ['requestId', 'level'], "
            f"got {fields!r}"
        )
    if len(fields) > MAX_FIELD_INDEXES:
        raise ConfigurationError(
            f"field_indexes has {len(fields)} fields; a policy holds at most {MAX_FIELD_INDEXES}"
        )
    for field in fields:
        _text(field, field="field_indexes entry", max_chars=MAX_FIELD_INDEX_CHARS)
    if len(set(fields)) != len(fields):
        raise ConfigurationError(f"field_indexes names a field twice: {fields!r}")
    return tuple(fields)


def construct_id_for(text: str, *, fallback: str) -> str:
    """A construct id from the letters and digits of ``text`` (a name), stable across reorders."""
    words = re.findall(r"[A-Za-z0-9]+", text)
    return "".join(word[:1].upper() + word[1:] for word in words) or fallback
