"""The CDK app's settings: the log_groups context is parsed into types or refused with the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cdk_cli import run_cdk_synth
from hypothesis import given
from hypothesis import strategies as st

from aws_cloudwatch_logs_handler import RETENTION_DAYS, ConfigurationError
from aws_cloudwatch_logs_handler.cdk import MetricFilter, QueryDefinition, Subscription
from infra.app import cdk_json_context
from infra.config import (
    DropAlarmConfig,
    InfraConfig,
    InfraConfigError,
    LogGroupConfig,
    infra_config_from_context,
    parse_drop_alarm,
    parse_flag,
    parse_log_group,
    parse_log_groups,
)

pytestmark = pytest.mark.slow  # imports the CDK app (aws-cdk-lib and its jsii runtime)

KEY_ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _config(**context: Any) -> InfraConfig:
    return infra_config_from_context(context)


def _group(**fields: Any) -> dict[str, Any]:
    return {"name": "/app/main", "retention_days": 30, **fields}


def test_cdk_json_context_parses_into_typed_groups() -> None:
    """The groups that cdk.json declares are valid and keep their declared order and values."""
    context = cdk_json_context()
    config = infra_config_from_context(context)
    assert [group.name for group in config.log_groups] == [
        entry["name"] for entry in context["log_groups"]
    ]
    assert config.sample_log_group is None
    assert config.creator_policy is False
    assert config.drop_alarm is None


def test_a_full_entry_is_parsed_into_every_field() -> None:
    """Every optional field is read, upper-cased where AWS spells it so, and tags are sorted."""
    group = parse_log_group(
        _group(
            removal_policy="destroy",
            kms=KEY_ARN,
            log_group_class="infrequent_access",
            tags={"team": "core", "cost-center": "42"},
        ),
        index=0,
    )
    assert group == LogGroupConfig(
        name="/app/main",
        retention_days=30,
        removal_policy="DESTROY",
        kms=KEY_ARN,
        log_group_class="INFREQUENT_ACCESS",
        tags=(("cost-center", "42"), ("team", "core")),
    )


def test_defaults_retain_the_group_and_leave_the_rest_to_aws() -> None:
    """Without optional fields a group is retained, AWS-encrypted, STANDARD by default, untagged."""
    group = parse_log_group(_group(), index=0)
    assert (group.removal_policy, group.kms, group.log_group_class, group.tags) == (
        "RETAIN",
        None,
        None,
        (),
    )


def test_never_means_no_retention_policy() -> None:
    """retention_days "never" becomes None, the absence of a retention policy."""
    assert parse_log_group(_group(retention_days="never"), index=0).retention_days is None


@pytest.mark.parametrize("days", RETENTION_DAYS)
def test_every_retention_aws_accepts_is_accepted(days: int) -> None:
    """Each of the 22 retention values CloudWatch Logs accepts is accepted as it is."""
    assert parse_log_group(_group(retention_days=days), index=0).retention_days == days


@given(st.integers().filter(lambda days: days not in RETENTION_DAYS))
def test_any_other_retention_is_refused_with_the_valid_values(days: int) -> None:
    """Any other integer is refused, naming the group, the field and every valid value."""
    with pytest.raises(InfraConfigError) as raised:
        parse_log_groups([_group(retention_days=days)])
    message = str(raised.value)
    assert "log_groups[0] ('/app/main')" in message
    assert f"retention_days={days}" in message
    assert "'never'" in message
    assert ", ".join(str(valid) for valid in RETENTION_DAYS) in message


def test_a_json_string_from_the_command_line_is_parsed() -> None:
    """`-c log_groups='<json>'` arrives as a string and is parsed as JSON."""
    config = _config(log_groups=json.dumps([_group(), _group(name="/app/audit")]))
    assert [group.name for group in config.log_groups] == ["/app/main", "/app/audit"]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([_group(name="aws/lambda/x")], ["log_groups[0]", "name", "'aws/'"]),
        ([_group(name="/app/with space")], ["log_groups[0]", "name", "' '", ". - _ / #"]),
        ([_group(name="x" * 513)], ["log_groups[0]", "513 characters", "512"]),
        ([_group(name="")], ["log_groups[0]", "name", "non-empty"]),
        ([{"retention_days": 1}], ["log_groups[0]", "missing", "'name'"]),
        ([{"name": "/app/main"}], ["('/app/main')", "missing", "'retention_days'"]),
        ([_group(retention_days=None)], ["('/app/main')", "retention_days=None", "'never'"]),
        ([_group(retention_days="30")], ["('/app/main')", "retention_days='30'", "3653"]),
        ([_group(retention_days=True)], ["('/app/main')", "retention_days=True"]),
        ([_group(retention=30)], ["('/app/main')", "unknown field", "'retention'", "'tags'"]),
        (
            [_group(removal_policy="snapshot")],
            ["('/app/main')", "removal_policy='snapshot'", "'RETAIN'", "'DESTROY'"],
        ),
        (
            [_group(log_group_class="cold")],
            ["('/app/main')", "log_group_class='cold'", "'INFREQUENT_ACCESS'"],
        ),
        ([_group(kms="alias/logs")], ["('/app/main')", "kms='alias/logs'", "'create'", "ARN"]),
        ([_group(tags=["a"])], ["('/app/main')", "tags must be an object"]),
        ([_group(tags={"aws:x": "y"})], ["('/app/main')", "tag key 'aws:x'", "reserved"]),
        ([_group(tags={"k": 1})], ["('/app/main')", "tag 'k'", "string value"]),
        (
            [_group(tags={f"k{index}": "v" for index in range(51)})],
            ["('/app/main')", "51 entries", "at most 50"],
        ),
        ([_group(), _group()], ["log_groups[1] ('/app/main')", "duplicates log_groups[0]"]),
        (
            [_group(name="/app/main"), _group(name="/app_main")],
            ["log_groups[1] ('/app_main')", "only in punctuation", "'/app/main'"],
        ),
        ([], ["non-empty list", "'retention_days'"]),
        ("[{]", ["log_groups", "not valid JSON"]),
        ({"name": "/app/main"}, ["non-empty list"]),
        (["/app/main"], ["log_groups[0]", "expected an object"]),
    ],
)
def test_invalid_groups_are_refused_with_the_entry_field_and_valid_values(
    entries: object, expected: list[str]
) -> None:
    """Each kind of bad entry raises a ConfigurationError whose message says what to fix."""
    with pytest.raises(InfraConfigError) as raised:
        parse_log_groups(entries)
    assert isinstance(raised.value, ConfigurationError)
    assert isinstance(raised.value, ValueError)
    for fragment in expected:
        assert fragment in str(raised.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, False), (True, True), (False, False), ("true", True), ("False", False)],
)
def test_flags_accept_json_booleans_and_command_line_strings(raw: object, expected: bool) -> None:
    """A flag is a JSON boolean in cdk.json or the string "true"/"false" from `-c`."""
    assert parse_flag(raw, key="creator_policy") is expected


def test_a_flag_that_is_not_a_boolean_is_refused() -> None:
    """Anything else, such as "yes", is refused naming the flag."""
    with pytest.raises(InfraConfigError, match="creator_policy='yes' must be true or false"):
        parse_flag("yes", key="creator_policy")


def test_sample_is_off_unless_asked_and_then_defaults_to_the_first_group() -> None:
    """No sample function by default; with sample=true it writes to the first group."""
    groups = [_group(), _group(name="/app/audit")]
    assert _config(log_groups=groups).sample_log_group is None
    assert _config(log_groups=groups, sample="true").sample_log_group == "/app/main"
    assert (
        _config(log_groups=groups, sample=True, sample_log_group="/app/audit").sample_log_group
        == "/app/audit"
    )


def test_sample_log_group_must_be_configured_and_needs_the_sample() -> None:
    """A sample group outside log_groups, or one given without sample=true, is refused."""
    groups = [_group(), _group(name="/app/audit")]
    with pytest.raises(InfraConfigError, match=r"sample_log_group='/other'.*'/app/main'"):
        _config(log_groups=groups, sample=True, sample_log_group="/other")
    with pytest.raises(InfraConfigError, match=r"sample function is off; add -c sample=true"):
        _config(log_groups=groups, sample_log_group="/app/audit")


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("log_group", "'log_groups'"), ("creatorPolicy", "'creator_policy'"), ("zzz", "known keys")],
)
def test_a_misspelt_context_key_is_refused_naming_the_closest_key(
    key: str, suggestion: str
) -> None:
    """A key spelt like ours but unknown fails, instead of its default being used silently."""
    with pytest.raises(InfraConfigError) as raised:
        _config(log_groups=[_group()], **{key: "x"})
    assert f"context {key!r} is not a setting of this app" in str(raised.value)
    assert suggestion in str(raised.value)


def test_cdk_own_context_keys_are_not_ours_to_refuse() -> None:
    """Feature flags and the CLI's keys ('@aws-cdk/...', 'aws:cdk:...') pass untouched."""
    config = _config(
        log_groups=[_group()],
        **{"@aws-cdk/core:newStyleStackSynthesis": True, "aws:cdk:enable-path-metadata": True},
    )
    assert config.log_groups[0].name == "/app/main"


def test_every_per_group_option_is_parsed_into_the_constructs_types() -> None:
    """Metric filters, subscription, masking, field indexes, queries and deletion protection."""
    stream = "arn:aws:kinesis:us-east-1:111122223333:stream/logs"
    group = parse_log_group(
        _group(
            metric_filters=[{"pattern": "ERROR", "metric_name": "Errors", "value": "1"}],
            subscription={"destination_arn": stream, "pattern": "{ $.level = * }"},
            data_protection=["EmailAddress"],
            field_indexes=["requestId", "level"],
            query_definitions=[{"name": "errors", "fields": ["@message"], "limit": 20}],
            deletion_protection=True,
        ),
        index=0,
    )
    assert group.metric_filters == (MetricFilter(pattern="ERROR", metric_name="Errors"),)
    assert group.subscription == Subscription(destination_arn=stream, pattern="{ $.level = * }")
    assert group.subscription.kind == "kinesis"
    assert group.data_protection == ("EmailAddress",)
    assert group.field_indexes == ("requestId", "level")
    assert group.query_definitions == (
        QueryDefinition(name="errors", fields=("@message",), limit=20),
    )
    assert group.deletion_protection is True


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"metric_filters": {"pattern": "x"}}, ["metric_filters", "a list of objects"]),
        (
            {"metric_filters": [{"pattern": "x", "metric": "Errors"}]},
            ["metric_filters[0]", "unknown field(s) 'metric'", "missing 'metric_name'"],
        ),
        (
            {"metric_filters": [{"pattern": "x", "metric_name": "E", "namespace": "AWS/Logs"}]},
            ["metric_filters[0]", "'AWS/'"],
        ),
        (
            {"metric_filters": [{"pattern": "x" * 1025, "metric_name": "E"}]},
            ["metric_filters[0]", "pattern has 1025 characters", "1024"],
        ),
        (
            {"subscription": {"destination_arn": "arn:aws:s3:::bucket"}},
            ["subscription", "Kinesis data stream ARN", "Firehose stream ARN"],
        ),
        (
            {"subscription": {"destination_arn": "arn:aws:kinesis:us-east-1:1:deliverystream/x"}},
            ["subscription", "destination_arn="],
        ),
        ({"data_protection": ["EmailAdress"]}, ["data_protection", "did you mean 'EmailAddress'"]),
        ({"data_protection": "EmailAddress"}, ["data_protection", "a list of strings"]),
        ({"field_indexes": [f"f{index}" for index in range(21)]}, ["21 fields", "at most 20"]),
        ({"field_indexes": ["a", "a"]}, ["field_indexes names a field twice"]),
        ({"query_definitions": [{"filter": "x"}]}, ["query_definitions[0]", "missing 'name'"]),
        (
            {"query_definitions": [{"name": "q", "limit": 0}]},
            ["query_definitions[0]", "limit=0", "1 to 10,000"],
        ),
        ({"deletion_protection": "yes"}, ["deletion_protection='yes' must be true or false"]),
    ],
)
def test_invalid_options_are_refused_naming_the_group_option_and_fix(
    fields: dict[str, Any], expected: list[str]
) -> None:
    """Each kind of bad option fails naming the group, the option and what is accepted."""
    with pytest.raises(InfraConfigError) as raised:
        parse_log_groups([_group(**fields)])
    assert "log_groups[0] ('/app/main')" in str(raised.value)
    for fragment in expected:
        assert fragment in str(raised.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        (False, None),
        ("false", None),
        (True, DropAlarmConfig()),
        ('{"topic": "create"}', DropAlarmConfig(topic="create")),
        (
            {"threshold": 10, "period_minutes": 1, "topic": "arn:aws:sns:us-east-1:111122223333:x"},
            DropAlarmConfig(
                threshold=10, period_minutes=1, topic="arn:aws:sns:us-east-1:111122223333:x"
            ),
        ),
    ],
)
def test_drop_alarm_is_off_true_or_an_object(raw: object, expected: DropAlarmConfig | None) -> None:
    """drop_alarm: absent or false for none, true for the defaults, or its fields (JSON via -c)."""
    assert parse_drop_alarm(raw) == expected


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"threshold": 0}, "threshold=0 must be an integer of at least 1"),
        ({"topic": "alerts"}, "topic='alerts' must be 'create'"),
        ({"email": "a@b.c"}, "unknown field(s) 'email'"),
        ("yes", "not valid JSON"),
        (3, "must be true, false or an object"),
    ],
)
def test_an_invalid_drop_alarm_is_refused_with_the_fix(raw: object, fragment: str) -> None:
    """A bad drop_alarm names the field and what it accepts."""
    with pytest.raises(InfraConfigError, match="drop_alarm") as raised:
        parse_drop_alarm(raw)
    assert fragment in str(raised.value)


def test_stack_name_must_be_a_cloudformation_stack_name() -> None:
    """A stack name CloudFormation would refuse is refused at synth time."""
    with pytest.raises(InfraConfigError, match="stack_name='1-bad_name'"):
        _config(log_groups=[_group()], stack_name="1-bad_name")


def test_construct_ids_come_from_the_name_not_the_position() -> None:
    """A group's construct id depends on its name only, so reordering the list keeps resources."""
    first, second = parse_log_groups([_group(name="/a/b"), _group(name="/c.d/e-f")])
    reordered = parse_log_groups([_group(name="/c.d/e-f"), _group(name="/a/b")])
    assert (first.construct_id, second.construct_id) == ("AB", "CDEF")
    assert {group.construct_id for group in reordered} == {"AB", "CDEF"}


@pytest.mark.slow
def test_cdk_synth_with_an_invalid_override_fails_naming_the_group_and_field(
    tmp_path: Path,
) -> None:
    """`cdk synth -c log_groups=<json>` with a bad retention fails with the fix, not a traceback."""
    bad = json.dumps([{"name": "/app/main", "retention_days": 31}])
    result = run_cdk_synth(tmp_path / "cdk.out", f"log_groups={bad}", timeout_s=180)
    assert result.returncode != 0
    assert "log_groups[0] ('/app/main'): retention_days=31" in result.stderr
    assert "3653" in result.stderr
    assert "Traceback" not in result.stderr
