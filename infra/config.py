"""Typed settings for the CDK app, parsed from the CDK context (``cdk.json`` or ``-c key=value``).

Every check happens before a construct exists, so a bad key or ``log_groups`` entry fails the
synth with one message naming the key (or group and field) and what would be accepted, instead
of failing later at deploy time (moto checks none of these, so a local deploy would not catch
them either). A context key of ours that is misspelt fails too, with the closest known key.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, Literal, TypeAlias, TypeVar, cast, get_args

from aws_cloudwatch_logs_handler import (
    RETENTION_DAYS,
    ConfigurationError,
    RetentionDays,
    validate_retention_days,
)
from aws_cloudwatch_logs_handler._names import (
    validate_log_group_name as library_validate_log_group_name,
)
from aws_cloudwatch_logs_handler.cdk import MetricFilter, QueryDefinition, Subscription
from aws_cloudwatch_logs_handler.cdk._options import (
    construct_id_for,
    validate_data_identifiers,
    validate_field_indexes,
)

_T = TypeVar("_T")

RemovalPolicyName: TypeAlias = Literal["RETAIN", "DESTROY", "RETAIN_ON_UPDATE_OR_DELETE"]
"""What CloudFormation does with a group when it leaves the stack (SNAPSHOT is not for logs)."""
LogGroupClassName: TypeAlias = Literal["STANDARD", "INFREQUENT_ACCESS", "DELIVERY"]
"""CloudWatch Logs' group classes; fixed when the group is created."""
CREATE_KEY: Final = "create"
"""The ``kms`` value asking for a new key whose policy lets CloudWatch Logs use it."""
NEVER_EXPIRE: Final = "never"
"""The ``retention_days`` value for a group without a retention policy."""

DEFAULT_STACK_NAME: Final = "CloudWatchLogsHandler"

# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_TagResource.html
MAX_TAGS: Final = 50
MAX_TAG_KEY_CHARS: Final = 128
MAX_TAG_VALUE_CHARS: Final = 256
_RESERVED_TAG_PREFIX: Final = "aws:"
# A key ARN, not an alias: AWS::Logs::LogGroup's KmsKeyId takes the key's ARN.
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-logs-loggroup.html
_KMS_KEY_ARN: Final = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+")
# CloudFormation stack names: https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cfn-using-console-create-stack-parameters.html
_STACK_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")

# https://docs.aws.amazon.com/sns/latest/api/API_CreateTopic.html (names: 1-256 characters)
_TOPIC_ARN: Final = re.compile(
    r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?"
)

_FIELDS: Final = (
    "name",
    "retention_days",
    "removal_policy",
    "kms",
    "log_group_class",
    "tags",
    "metric_filters",
    "subscription",
    "data_protection",
    "field_indexes",
    "query_definitions",
    "deletion_protection",
)
_REQUIRED: Final = ("name", "retention_days")
_METRIC_FILTER_FIELDS: Final = ("pattern", "metric_name", "namespace", "value", "default_value")
_SUBSCRIPTION_FIELDS: Final = ("destination_arn", "pattern")
_QUERY_FIELDS: Final = ("name", "fields", "parse", "filter", "stats", "sort", "limit")
_DROP_ALARM_FIELDS: Final = ("threshold", "period_minutes", "topic")
CONTEXT_KEYS: Final = (
    "stack_name",
    "log_groups",
    "creator_policy",
    "sample",
    "sample_log_group",
    "drop_alarm",
)
"""The context keys this app reads; any other key spelt like one of ours is refused."""
_OUR_KEY_SPELLING: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
"""Our keys' spelling; CDK's own keys carry '@', ':' or '-' (feature flags, CLI settings)."""


class InfraConfigError(ConfigurationError):
    """A context value is invalid; the message names the entry, the field and what is accepted."""


@dataclass(frozen=True, kw_only=True)
class LogGroupConfig:
    """One log group the stack provisions, as validated from the ``log_groups`` context."""

    name: str
    retention_days: RetentionDays | None
    """Days to keep events; ``None`` keeps them forever (no retention policy)."""
    removal_policy: RemovalPolicyName = "RETAIN"
    kms: str | None = None
    """``"create"``, an existing key's ARN, or ``None`` for CloudWatch Logs' own encryption."""
    log_group_class: LogGroupClassName | None = None
    """``None`` leaves the class to the service (STANDARD)."""
    tags: tuple[tuple[str, str], ...] = ()
    """Sorted ``(key, value)`` pairs; a tuple so the settings stay immutable and hashable."""
    metric_filters: tuple[MetricFilter, ...] = ()
    subscription: Subscription | None = None
    data_protection: tuple[str, ...] = ()
    """Managed data identifiers to mask, e.g. ``("EmailAddress",)``."""
    field_indexes: tuple[str, ...] = ()
    query_definitions: tuple[QueryDefinition, ...] = ()
    deletion_protection: bool = False

    @property
    def construct_id(self) -> str:
        """A stable construct id from the name, so reordering the list never replaces a group."""
        return construct_id_for(self.name, fallback="LogGroup")


@dataclass(frozen=True, kw_only=True)
class DropAlarmConfig:
    """An alarm per group on the records the handler drops, optionally notifying a topic."""

    threshold: int = 1
    period_minutes: int = 5
    topic: str | None = None
    """``"create"`` for a new topic, an existing topic's ARN, or ``None`` for no notification."""


@dataclass(frozen=True, kw_only=True)
class InfraConfig:
    """Everything the stack needs from the context."""

    stack_name: str = DEFAULT_STACK_NAME
    log_groups: tuple[LogGroupConfig, ...]
    creator_policy: bool = False
    """Also create the policy that lets a handler create its group (``create_log_group=True``)."""
    sample_log_group: str | None = None
    """The group the sample function delivers to; ``None``: no sample function is deployed."""
    drop_alarm: DropAlarmConfig | None = None
    """``None``: no alarm on dropped records."""


def _choices(values: Sequence[object]) -> str:
    return ", ".join(repr(value) if isinstance(value, str) else str(value) for value in values)


def validate_log_group_name(name: object, *, where: str) -> str:
    """Return ``name`` if CloudWatch Logs accepts it as a group name; raise naming the rule.

    The rule is the handler's own (`aws_cloudwatch_logs_handler._names`): one place for it.
    """
    try:
        return library_validate_log_group_name(name)
    except ConfigurationError as error:
        # The entry's field is called "name" in cdk.json, "log_group" in the handler.
        raise InfraConfigError(f"{where}: {str(error).replace('log_group', 'name', 1)}") from None


def _retention(value: object, *, where: str) -> RetentionDays | None:
    if value == NEVER_EXPIRE:
        return None
    try:
        if value is None:
            raise ConfigurationError("None is spelled 'never' here")
        return validate_retention_days(value, setting=f"{where}: retention_days")
    except ConfigurationError:
        raise InfraConfigError(
            f"{where}: retention_days={value!r} is not a retention CloudWatch Logs accepts; "
            f"use {NEVER_EXPIRE!r} or one of: {_choices(RETENTION_DAYS)}"
        ) from None


def _one_of(value: object, choices: tuple[str, ...], *, where: str, field: str) -> str:
    if isinstance(value, str) and value.upper() in choices:
        return value.upper()
    raise InfraConfigError(f"{where}: {field}={value!r} is not one of {_choices(choices)}")


def _create_or_arn(value: object, arn: re.Pattern[str], *, fix: str) -> str | None:
    """Return ``value`` if it is absent, ``"create"`` or an ARN ``arn`` matches; else raise."""
    if value is None or value == CREATE_KEY:
        return value
    if isinstance(value, str) and arn.fullmatch(value):
        return value
    raise InfraConfigError(fix)


def _kms(value: object, *, where: str) -> str | None:
    return _create_or_arn(
        value,
        _KMS_KEY_ARN,
        fix=f"{where}: kms={value!r} must be {CREATE_KEY!r} (a key made for CloudWatch Logs) or a "
        "key ARN like 'arn:aws:kms:us-east-1:111122223333:key/<key id>' whose policy allows "
        "logs.<region>.amazonaws.com",
    )


def _tags(value: object, *, where: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise InfraConfigError(f"{where}: tags must be an object of string values, got {value!r}")
    if len(value) > MAX_TAGS:
        raise InfraConfigError(f"{where}: tags has {len(value)} entries; at most {MAX_TAGS}")
    for key, tag in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_TAG_KEY_CHARS:
            raise InfraConfigError(
                f"{where}: tag key {key!r} must be 1-{MAX_TAG_KEY_CHARS} characters"
            )
        if key.lower().startswith(_RESERVED_TAG_PREFIX):
            raise InfraConfigError(f"{where}: tag key {key!r} uses the reserved prefix 'aws:'")
        if not isinstance(tag, str) or len(tag) > MAX_TAG_VALUE_CHARS:
            raise InfraConfigError(
                f"{where}: tag {key!r} must have a string value of at most "
                f"{MAX_TAG_VALUE_CHARS} characters, got {tag!r}"
            )
    return tuple(sorted(cast("Mapping[str, str]", value).items()))


def parse_log_group(entry: object, *, index: int) -> LogGroupConfig:
    """Validate one ``log_groups`` entry; errors name it by index and, once known, by name."""
    where = f"log_groups[{index}]"
    if not isinstance(entry, Mapping):
        raise InfraConfigError(f"{where}: expected an object with {_choices(_REQUIRED)}")
    unknown = sorted(set(entry) - set(_FIELDS), key=str)
    missing = [field for field in _REQUIRED if field not in entry]
    if "name" in entry:
        where = f"{where} ({validate_log_group_name(entry['name'], where=where)!r})"
    if unknown:
        raise InfraConfigError(
            f"{where}: unknown field(s) {_choices(unknown)}; known fields: {_choices(_FIELDS)}"
        )
    if missing:
        raise InfraConfigError(f"{where}: missing field(s) {_choices(missing)}")
    removal = entry.get("removal_policy", "RETAIN")
    group_class = entry.get("log_group_class")
    return LogGroupConfig(
        name=entry["name"],
        retention_days=_retention(entry["retention_days"], where=where),
        removal_policy=cast(
            "RemovalPolicyName",
            _one_of(removal, get_args(RemovalPolicyName), where=where, field="removal_policy"),
        ),
        kms=_kms(entry.get("kms"), where=where),
        log_group_class=None
        if group_class is None
        else cast(
            "LogGroupClassName",
            _one_of(group_class, get_args(LogGroupClassName), where=where, field="log_group_class"),
        ),
        tags=_tags(entry.get("tags"), where=where),
        **_group_options(entry, where=where),
    )


def _checked(build: Callable[[], _T], *, where: str) -> _T:
    """Run ``build``; a `ConfigurationError` it raises is re-raised naming ``where``."""
    try:
        return build()
    except ConfigurationError as error:
        # The entry's field is called "name" in cdk.json, "log_group" in the handler.
        raise InfraConfigError(f"{where}: {str(error).replace('log_group', 'name', 1)}") from None


def _objects(
    value: object,
    *,
    where: str,
    fields: tuple[str, ...],
    required: tuple[str, ...],
    build: Callable[..., _T],
    many: bool,
) -> tuple[_T, ...]:
    """Validate one JSON object (or, with ``many``, a list of them) and build each."""
    entries = value if many else [value]
    kind = "a list of objects" if many else "an object"
    if not isinstance(entries, list) or not all(isinstance(item, Mapping) for item in entries):
        raise InfraConfigError(
            f"{where}: expected {kind} with fields {_choices(fields)} "
            f"(required: {_choices(required)}), got {value!r}"
        )
    built = []
    for position, item in enumerate(entries):
        at = f"{where}[{position}]" if many else where
        unknown = sorted(set(item) - set(fields), key=str)
        missing = [field for field in required if field not in item]
        if unknown or missing:
            raise InfraConfigError(
                f"{at}: unknown field(s) {_choices(unknown)}, missing {_choices(missing)}; "
                f"fields: {_choices(fields)} (required: {_choices(required)})"
            )
        # JSON lists become tuples: the options are frozen dataclasses.
        arguments = {
            key: tuple(field) if isinstance(field, list) else field for key, field in item.items()
        }
        built.append(_checked(partial(build, **arguments), where=at))
    return tuple(built)


def _strings(
    value: object, *, where: str, check: Callable[[Sequence[str]], tuple[str, ...]]
) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InfraConfigError(f"{where}: expected a list of strings, got {value!r}")
    return _checked(lambda: check(value), where=where)


def _group_options(entry: Mapping[str, Any], *, where: str) -> dict[str, Any]:
    """The optional features of one group, each parsed into the constructs' own types."""
    options: dict[str, Any] = {}
    if "metric_filters" in entry:
        options["metric_filters"] = _objects(
            entry["metric_filters"],
            where=f"{where}: metric_filters",
            fields=_METRIC_FILTER_FIELDS,
            required=("pattern", "metric_name"),
            build=MetricFilter,
            many=True,
        )
    if "subscription" in entry:
        (options["subscription"],) = _objects(
            entry["subscription"],
            where=f"{where}: subscription",
            fields=_SUBSCRIPTION_FIELDS,
            required=("destination_arn",),
            build=Subscription,
            many=False,
        )
    if "query_definitions" in entry:
        options["query_definitions"] = _objects(
            entry["query_definitions"],
            where=f"{where}: query_definitions",
            fields=_QUERY_FIELDS,
            required=("name",),
            build=QueryDefinition,
            many=True,
        )
    for field, check in (
        ("data_protection", validate_data_identifiers),
        ("field_indexes", validate_field_indexes),
    ):
        if field in entry:
            options[field] = _strings(entry[field], where=f"{where}: {field}", check=check)
    if "deletion_protection" in entry:
        options["deletion_protection"] = parse_flag(
            entry["deletion_protection"], key=f"{where}: deletion_protection"
        )
    return options


def _json_if_string(value: object, *, key: str) -> object:
    # `cdk synth -c key=value` always passes a string; cdk.json passes parsed JSON.
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as error:
        raise InfraConfigError(f"context {key}: not valid JSON ({error}): {value!r}") from None


def parse_log_groups(raw: object) -> tuple[LogGroupConfig, ...]:
    """Validate the ``log_groups`` context: a non-empty list (or its JSON text) of unique groups."""
    value = _json_if_string(raw, key="log_groups")
    if not isinstance(value, list) or not value:
        raise InfraConfigError(
            f"context log_groups must be a non-empty list of objects with fields "
            f"{_choices(_FIELDS)} (required: {_choices(_REQUIRED)}), got {value!r}"
        )
    groups = tuple(parse_log_group(entry, index=index) for index, entry in enumerate(value))
    first_index: dict[str, int] = {}
    ids: dict[str, str] = {}
    for index, group in enumerate(groups):
        if group.name in first_index:
            raise InfraConfigError(
                f"log_groups[{index}] ({group.name!r}): name duplicates "
                f"log_groups[{first_index[group.name]}]; each group may appear once"
            )
        if group.construct_id in ids:
            # Construct ids come from the name's letters and digits; two names that differ only
            # in punctuation would collide in the template.
            raise InfraConfigError(
                f"log_groups[{index}] ({group.name!r}): name differs from "
                f"{ids[group.construct_id]!r} only in punctuation; rename one of them"
            )
        first_index[group.name] = index
        ids[group.construct_id] = group.name
    return groups


def parse_flag(raw: object, *, key: str, default: bool = False) -> bool:
    """Read a boolean context value, given as JSON ``true``/``false`` or ``-c key=true``."""
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in {"true", "false"}:
        return raw.lower() == "true"
    raise InfraConfigError(f"{key}={raw!r} must be true or false")


def _check_keys(context: Mapping[str, object]) -> None:
    # A misspelt key would otherwise be ignored and its default used without a word.
    for key in context:
        if key not in CONTEXT_KEYS and _OUR_KEY_SPELLING.fullmatch(key):
            close = difflib.get_close_matches(key, CONTEXT_KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise InfraConfigError(
                f"context {key!r} is not a setting of this app; {hint}"
                f"known keys: {_choices(CONTEXT_KEYS)}"
            )


def _topic(value: object, *, where: str) -> str | None:
    return _create_or_arn(
        value,
        _TOPIC_ARN,
        fix=f"{where}: topic={value!r} must be {CREATE_KEY!r} (a new topic), an SNS topic ARN "
        "like 'arn:aws:sns:us-east-1:111122223333:alerts', or absent (no notification)",
    )


def _positive_int(value: object, *, where: str, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InfraConfigError(f"{where}: {field}={value!r} must be an integer of at least 1")
    return value


def parse_drop_alarm(raw: object) -> DropAlarmConfig | None:
    """Read ``drop_alarm``: false/absent (none), true (defaults), or an object of its fields."""
    where = "context drop_alarm"
    value = _json_if_string(raw, key="drop_alarm")
    if value is None or value is False:
        return None
    if value is True:
        return DropAlarmConfig()
    if not isinstance(value, Mapping):
        raise InfraConfigError(
            f"{where}={value!r} must be true, false or an object with fields "
            f"{_choices(_DROP_ALARM_FIELDS)}"
        )
    unknown = sorted(set(value) - set(_DROP_ALARM_FIELDS), key=str)
    if unknown:
        raise InfraConfigError(
            f"{where}: unknown field(s) {_choices(unknown)}; fields: {_choices(_DROP_ALARM_FIELDS)}"
        )
    return DropAlarmConfig(
        threshold=_positive_int(value.get("threshold", 1), where=where, field="threshold"),
        period_minutes=_positive_int(
            value.get("period_minutes", 5), where=where, field="period_minutes"
        ),
        topic=_topic(value.get("topic"), where=where),
    )


def infra_config_from_context(context: Mapping[str, object]) -> InfraConfig:
    """Build the settings from the whole context, such as ``app.node.get_all_context()``.

    Raises:
        InfraConfigError: on the first invalid or unknown key, naming it and the fix.
    """
    _check_keys(context)
    stack_name = context.get("stack_name") or DEFAULT_STACK_NAME
    if not isinstance(stack_name, str) or not _STACK_NAME.fullmatch(stack_name):
        raise InfraConfigError(
            f"context stack_name={stack_name!r} must start with a letter and hold at most 128 "
            "letters, digits and hyphens"
        )
    groups = parse_log_groups(context.get("log_groups"))
    names = [group.name for group in groups]
    sample = parse_flag(context.get("sample"), key="context sample")
    sample_log_group = context.get("sample_log_group")
    if sample_log_group is not None and not sample:
        raise InfraConfigError(
            f"context sample_log_group={sample_log_group!r} is set but the sample function is "
            "off; add -c sample=true, or remove sample_log_group"
        )
    if sample and sample_log_group is None:
        sample_log_group = names[0]
    if sample and (not isinstance(sample_log_group, str) or sample_log_group not in names):
        raise InfraConfigError(
            f"context sample_log_group={sample_log_group!r} must be one of the configured "
            f"log_groups: {_choices(names)}"
        )
    return InfraConfig(
        stack_name=stack_name,
        log_groups=groups,
        creator_policy=parse_flag(context.get("creator_policy"), key="context creator_policy"),
        sample_log_group=cast("str | None", sample_log_group),
        drop_alarm=parse_drop_alarm(context.get("drop_alarm")),
    )
