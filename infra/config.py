"""Typed settings for the CDK app, parsed from the CDK context (``cdk.json`` or ``-c key=value``).

Every check happens before a construct exists, so a bad ``log_groups`` entry fails the synth with
one message naming the group, the field and the values that would be accepted, instead of failing
later at deploy time (moto checks none of these, so a local deploy would not catch them either).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias, cast, get_args

from aws_cloudwatch_logs_handler import (
    RETENTION_DAYS,
    ConfigurationError,
    RetentionDays,
    validate_retention_days,
)

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
MAX_LOG_GROUP_NAME_CHARS: Final = 512
_LOG_GROUP_NAME: Final = re.compile(r"[.\-_/#A-Za-z0-9]+")
_RESERVED_PREFIX: Final = "aws/"
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

_FIELDS: Final = ("name", "retention_days", "removal_policy", "kms", "log_group_class", "tags")
_REQUIRED: Final = ("name", "retention_days")


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

    @property
    def construct_id(self) -> str:
        """A stable construct id from the name, so reordering the list never replaces a group."""
        words = re.findall(r"[A-Za-z0-9]+", self.name)
        return "".join(word[:1].upper() + word[1:] for word in words) or "LogGroup"


@dataclass(frozen=True, kw_only=True)
class InfraConfig:
    """Everything the stack needs from the context."""

    stack_name: str = DEFAULT_STACK_NAME
    log_groups: tuple[LogGroupConfig, ...]
    creator_policy: bool = False
    """Also create the policy that lets a handler create its group (``create_log_group=True``)."""
    sample_log_group: str
    """The configured group the sample function's handler delivers to."""


def _choices(values: Sequence[object]) -> str:
    return ", ".join(repr(value) if isinstance(value, str) else str(value) for value in values)


def validate_log_group_name(name: object, *, where: str) -> str:
    """Return ``name`` if CloudWatch Logs accepts it as a group name; raise naming the rule."""
    if not isinstance(name, str) or not name:
        raise InfraConfigError(f"{where}: name must be a non-empty string, got {name!r}")
    if len(name) > MAX_LOG_GROUP_NAME_CHARS:
        raise InfraConfigError(
            f"{where}: name has {len(name)} characters; at most {MAX_LOG_GROUP_NAME_CHARS} allowed"
        )
    if not _LOG_GROUP_NAME.fullmatch(name):
        bad = "".join(sorted({char for char in name if not _LOG_GROUP_NAME.fullmatch(char)}))
        raise InfraConfigError(
            f"{where}: name {name!r} contains {bad!r}; only letters, digits and . - _ / # allowed"
        )
    if name.startswith(_RESERVED_PREFIX):
        raise InfraConfigError(
            f"{where}: name {name!r} starts with {_RESERVED_PREFIX!r}, which AWS reserves"
        )
    return name


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


def _kms(value: object, *, where: str) -> str | None:
    if value is None or value == CREATE_KEY:
        return value
    if isinstance(value, str) and _KMS_KEY_ARN.fullmatch(value):
        return value
    raise InfraConfigError(
        f"{where}: kms={value!r} must be {CREATE_KEY!r} (a key made for CloudWatch Logs) or a key "
        "ARN like 'arn:aws:kms:us-east-1:111122223333:key/<key id>' whose policy allows "
        "logs.<region>.amazonaws.com"
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
    retention = _retention(entry["retention_days"], where=where)
    if isinstance(group_class, str) and group_class.upper() == "DELIVERY" and retention is not None:
        # AWS fixes a DELIVERY group's retention itself and refuses a retention policy on it.
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CloudWatch_Logs_Log_Classes.html
        raise InfraConfigError(
            f"{where}: retention_days={retention} cannot be set on a log_group_class 'DELIVERY' "
            f"group; use retention_days {NEVER_EXPIRE!r} (AWS sets its retention) or another class"
        )
    return LogGroupConfig(
        name=entry["name"],
        retention_days=retention,
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
    )


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
    raise InfraConfigError(f"context {key}={raw!r} must be true or false")


def infra_config_from_context(get: Callable[[str], object]) -> InfraConfig:
    """Build the settings from a context lookup such as ``app.node.try_get_context``."""
    stack_name = get("stack_name") or DEFAULT_STACK_NAME
    if not isinstance(stack_name, str) or not _STACK_NAME.fullmatch(stack_name):
        raise InfraConfigError(
            f"context stack_name={stack_name!r} must start with a letter and hold at most 128 "
            "letters, digits and hyphens"
        )
    groups = parse_log_groups(get("log_groups"))
    names = [group.name for group in groups]
    sample_log_group = get("sample_log_group") or names[0]
    if not isinstance(sample_log_group, str) or sample_log_group not in names:
        raise InfraConfigError(
            f"context sample_log_group={sample_log_group!r} must be one of the configured "
            f"log_groups: {_choices(names)}"
        )
    return InfraConfig(
        stack_name=stack_name,
        log_groups=groups,
        creator_policy=parse_flag(get("creator_policy"), key="creator_policy"),
        sample_log_group=sample_log_group,
    )
