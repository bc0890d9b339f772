"""The per-group options and the drop alarm, one template each, in-process (seconds, no CLI).

Plus the two end-to-end checks that need the real CLI: `-c log_groups` alone synthesizes, and a
misspelt key fails in one line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Duration, RemovalPolicy, Stack
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template
from cdk_cli import run_cdk_synth

from aws_cloudwatch_logs_handler import ConfigurationError
from aws_cloudwatch_logs_handler.cdk import (
    DROPPED_METRIC_NAME,
    HANDLER_METRIC_NAMESPACE,
    DropAlarm,
    HandlerLogGroup,
    MetricFilter,
    QueryDefinition,
    Subscription,
)
from infra.app import build_app, cdk_json_context

pytestmark = pytest.mark.slow  # synthesizes CDK stacks (aws-cdk-lib and its jsii runtime)

STREAM_ARN = "arn:aws:kinesis:us-east-1:111122223333:stream/analytics"
FIREHOSE_ARN = "arn:aws:firehose:us-east-1:111122223333:deliverystream/analytics"
EVERY_OPTION: dict[str, Any] = {
    "metric_filters": [
        {"pattern": '{ $.level = "ERROR" }', "metric_name": "Errors"},
        {"pattern": "{ $.latency_ms > 0 }", "metric_name": "Latency", "value": "$.latency_ms"},
    ],
    "subscription": {"destination_arn": STREAM_ARN},
    "data_protection": ["EmailAddress", "IpAddress"],
    "field_indexes": ["requestId", "level"],
    "query_definitions": [
        {"name": "app/errors", "filter": "level = 'ERROR'", "sort": "@timestamp desc", "limit": 50}
    ],
    "deletion_protection": True,
}


def _group_template(**options: Any) -> Template:
    stack = Stack(App(), "Options")
    HandlerLogGroup(stack, "Group", log_group_name="/app/main", retention_days=30, **options)
    return Template.from_stack(stack)


def _only(template: Template, resource_type: str) -> Mapping[str, Any]:
    (resource,) = template.find_resources(resource_type).values()
    return resource["Properties"]  # type: ignore[no-any-return]


def _group_ref(template: Template) -> dict[str, str]:
    (logical_id,) = template.find_resources("AWS::Logs::LogGroup")
    return {"Ref": logical_id}


def test_metric_filters_publish_their_metric_from_matching_events() -> None:
    """Each metric filter has its pattern, metric name, namespace and value on the group."""
    template = _group_template(
        metric_filters=[
            MetricFilter(pattern='{ $.level = "ERROR" }', metric_name="Errors"),
            MetricFilter(pattern="", metric_name="Bytes", namespace="App", value="$.bytes"),
        ]
    )
    filters = sorted(
        (
            resource["Properties"]
            for resource in template.find_resources("AWS::Logs::MetricFilter").values()
        ),
        key=lambda properties: properties["MetricTransformations"][0]["MetricName"],
    )
    assert [properties["FilterPattern"] for properties in filters] == ["", '{ $.level = "ERROR" }']
    assert [properties["MetricTransformations"] for properties in filters] == [
        [{"MetricName": "Bytes", "MetricNamespace": "App", "MetricValue": "$.bytes"}],
        [{"MetricName": "Errors", "MetricNamespace": "LogMetrics", "MetricValue": "1"}],
    ]
    assert all(properties["LogGroupName"] == _group_ref(template) for properties in filters)


@pytest.mark.parametrize(
    ("arn", "actions"),
    [
        (STREAM_ARN, ["kinesis:ListShards", "kinesis:PutRecord", "kinesis:PutRecords"]),
        (FIREHOSE_ARN, ["firehose:PutRecord", "firehose:PutRecordBatch"]),
    ],
)
def test_a_subscription_streams_to_its_destination_through_a_role_for_logs_only(
    arn: str, actions: list[str]
) -> None:
    """The filter targets the ARN; its role is assumed by logs only and may put to that stream."""
    template = _group_template(subscription=Subscription(destination_arn=arn, pattern="ERROR"))
    subscription = _only(template, "AWS::Logs::SubscriptionFilter")
    assert subscription["DestinationArn"] == arn
    assert subscription["FilterPattern"] == "ERROR"
    assert subscription["LogGroupName"] == _group_ref(template)
    role = _only(template, "AWS::IAM::Role")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "logs.amazonaws.com"}
    statements = _only(template, "AWS::IAM::Policy")["PolicyDocument"]["Statement"]
    put = [statement for statement in statements if statement["Resource"] == arn]
    assert [statement["Action"] for statement in put] == [actions]
    others = [statement for statement in statements if statement["Resource"] != arn]
    assert all(statement["Action"] == "iam:PassRole" for statement in others)


def test_data_protection_audits_and_masks_the_named_identifiers() -> None:
    """The group's data protection policy audits and masks exactly the identifiers named."""
    template = _group_template(data_protection=["EmailAddress", "IpAddress"])
    policy = _only(template, "AWS::Logs::LogGroup")["DataProtectionPolicy"]
    expected = [
        {
            "Fn::Join": [
                "",
                ["arn:", {"Ref": "AWS::Partition"}, f":dataprotection::aws:data-identifier/{name}"],
            ]
        }
        for name in ("EmailAddress", "IpAddress")
    ]
    operations = {
        next(iter(statement["Operation"])): statement["DataIdentifier"]
        for statement in policy["Statement"]
    }
    assert operations == {"Audit": expected, "Deidentify": expected}


def test_field_indexes_and_deletion_protection_are_set_on_the_group() -> None:
    """field_indexes become the group's index policy; deletion protection is switched on."""
    properties = _only(
        _group_template(field_indexes=["requestId", "level"], deletion_protection=True),
        "AWS::Logs::LogGroup",
    )
    assert properties["FieldIndexPolicies"] == [{"Fields": ["requestId", "level"]}]
    assert properties["DeletionProtectionEnabled"] is True
    plain = _only(_group_template(), "AWS::Logs::LogGroup")
    assert "FieldIndexPolicies" not in plain
    assert "DeletionProtectionEnabled" not in plain
    assert "DataProtectionPolicy" not in plain


def test_a_query_definition_is_saved_on_the_group_with_its_commands() -> None:
    """A saved query has its name, the group, and its commands in Logs Insights order."""
    template = _group_template(
        query_definitions=[
            QueryDefinition(
                name="app/errors", filter="level = 'ERROR'", sort="@timestamp desc", limit=50
            )
        ]
    )
    query = _only(template, "AWS::Logs::QueryDefinition")
    assert query["Name"] == "app/errors"
    assert query["LogGroupNames"] == [_group_ref(template)]
    assert query["QueryString"] == (
        "fields @timestamp, @message\n| filter level = 'ERROR'\n| sort @timestamp desc\n| limit 50"
    )


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        (
            {"retention_days": 30, "log_group_class": logs.LogGroupClass.DELIVERY},
            "a DELIVERY group takes no retention",
        ),
        (
            {
                "retention_days": 30,
                "field_indexes": ["requestId"],
                "log_group_class": logs.LogGroupClass.INFREQUENT_ACCESS,
            },
            "field indexes work only on STANDARD groups",
        ),
        (
            {
                "retention_days": 30,
                "deletion_protection": True,
                "removal_policy": RemovalPolicy.DESTROY,
            },
            "deletion protection makes CloudFormation's delete fail",
        ),
        (
            {
                "retention_days": 30,
                "metric_filters": [MetricFilter(pattern="a", metric_name="M")] * 2,
            },
            "same namespace and metric_name",
        ),
        ({"retention_days": 31}, "retention_days=31"),
    ],
)
def test_contradicting_options_are_refused_naming_the_group(
    options: dict[str, Any], fragment: str
) -> None:
    """Options AWS would refuse together fail at synth, naming the group and the fix."""
    with pytest.raises(ConfigurationError, match=r"/app/main|retention_days") as raised:
        HandlerLogGroup(Stack(App(), "Bad"), "Group", log_group_name="/app/main", **options)
    assert fragment in str(raised.value)


def test_drop_alarm_fires_on_the_handlers_dropped_records_for_its_group() -> None:
    """The alarm sums Dropped per group, fires at the threshold, is quiet without data."""
    stack = Stack(App(), "Alarm")
    group = logs.LogGroup(stack, "Group", log_group_name="/app/main")
    topic = sns.Topic(stack, "Topic")
    DropAlarm(stack, "Drops", log_group=group, threshold=5, period=Duration.minutes(1), topic=topic)
    template = Template.from_stack(stack)
    (alarm_id,) = template.find_resources("AWS::CloudWatch::Alarm")
    template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "Namespace": HANDLER_METRIC_NAMESPACE,
            "MetricName": DROPPED_METRIC_NAME,
            "Dimensions": [
                {"Name": "LogGroup", "Value": {"Ref": Match.string_like_regexp("Group")}}
            ],
            "Statistic": "Sum",
            "Period": 60,
            "Threshold": 5,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": Match.string_like_regexp("Topic")}],
            "OKActions": [{"Ref": Match.string_like_regexp("Topic")}],
        },
    )
    (statement,) = _only(template, "AWS::SNS::TopicPolicy")["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statement["Action"] == "sns:Publish"
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [alarm_id, "Arn"]}}
    }


@pytest.mark.parametrize(
    ("threshold", "period"), [(0, Duration.minutes(5)), (1, Duration.seconds(90))]
)
def test_drop_alarm_refuses_a_threshold_below_one_or_a_partial_minute(
    threshold: int, period: Duration
) -> None:
    """A threshold of 0 would always fire; periods are whole minutes."""
    stack = Stack(App(), "BadAlarm")
    group = logs.LogGroup(stack, "Group")
    with pytest.raises(ConfigurationError):
        DropAlarm(stack, "Drops", log_group=group, threshold=threshold, period=period)


def _with_every_option() -> dict[str, Any]:
    context = cdk_json_context()
    groups = [dict(group) for group in context["log_groups"]]
    groups[0].update(EVERY_OPTION)
    groups[1]["subscription"] = {"destination_arn": FIREHOSE_ARN}
    return {
        **context,
        "log_groups": groups,
        "sample": True,
        "creator_policy": True,
        "drop_alarm": {"topic": "create"},
    }


def _policies(context: Mapping[str, Any], tmp_path: Path) -> tuple[Template, dict[str, Any]]:
    _, stack = build_app(context=context, outdir=str(tmp_path))
    template = Template.from_stack(stack)
    writer_id = stack.resolve(stack.writer.policy.node.default_child.logical_id)  # type: ignore[union-attr]
    return template, template.to_json()["Resources"][writer_id]["Properties"]


def test_no_option_widens_what_a_writer_may_do(tmp_path: Path) -> None:
    """With every option and the alarm on, the writer policy is byte-for-byte the plain one."""
    plain_template, plain_writer = _policies({**cdk_json_context(), "sample": True}, tmp_path / "a")
    template, writer = _policies(_with_every_option(), tmp_path / "b")
    assert writer == plain_writer
    # The writer's holder (the sample's role) gains nothing either: same policies, same role.
    roles = template.find_resources(
        "AWS::IAM::Role", {"Properties": {"ManagedPolicyArns": Match.any_value()}}
    )
    plain_roles = plain_template.find_resources(
        "AWS::IAM::Role", {"Properties": {"ManagedPolicyArns": Match.any_value()}}
    )
    assert roles == plain_roles
    # Every new role is CloudWatch Logs' own, for the subscriptions; none gets a logs action.
    new_roles = set(template.find_resources("AWS::IAM::Role")) - set(
        plain_template.find_resources("AWS::IAM::Role")
    )
    assert len(new_roles) == 2
    for logical_id in new_roles:
        resource = template.find_resources("AWS::IAM::Role")[logical_id]
        (trust,) = resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": "logs.amazonaws.com"}
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if any(role["Ref"] in new_roles for role in policy["Properties"]["Roles"]):
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions = (
                    statement["Action"]
                    if isinstance(statement["Action"], list)
                    else [statement["Action"]]
                )
                assert not [action for action in actions if action.startswith("logs:")]


def test_every_option_synthesizes_with_cdk_nag_clean(tmp_path: Path) -> None:
    """The whole app with every option on passes cdk-nag, each acknowledgment with its reason."""
    app, _ = build_app(context=_with_every_option(), outdir=str(tmp_path))
    app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    for plugin in report["pluginReports"]:
        assert plugin["conclusion"] == "success"
        assert plugin["violations"] == []
        assert all(len(item["reason"]) > 40 for item in plugin.get("suppressedViolations", []))


@pytest.mark.slow
def test_cdk_synth_with_only_log_groups_overridden(tmp_path: Path) -> None:
    """`cdk synth -c log_groups=<json>` alone succeeds: that group, the policies, no sample."""
    groups = json.dumps([{"name": "/my/app", "retention_days": 30}])
    result = run_cdk_synth(tmp_path / "cdk.out", f"log_groups={groups}", timeout_s=180)
    assert result.returncode == 0, result.stderr
    raw = json.loads((tmp_path / "cdk.out" / "CloudWatchLogsHandler.template.json").read_text())
    template = Template.from_json(raw)
    (group,) = template.find_resources("AWS::Logs::LogGroup").values()
    assert group["Properties"] == {"LogGroupName": "/my/app", "RetentionInDays": 30}
    template.resource_count_is("AWS::Lambda::Function", 0)
    template.resource_count_is("AWS::IAM::Role", 0)
    template.resource_count_is("AWS::IAM::ManagedPolicy", 2)


@pytest.mark.slow
def test_cdk_synth_with_a_misspelt_key_fails_in_one_line_naming_the_fix(tmp_path: Path) -> None:
    """`-c log_group=...` (no s) fails with one line naming the key to use, not a traceback."""
    result = run_cdk_synth(tmp_path / "cdk.out", "log_group=[]", timeout_s=180)
    assert result.returncode != 0
    (line,) = [line for line in result.stderr.splitlines() if "context is invalid" in line]
    assert "'log_group' is not a setting of this app; did you mean 'log_groups'?" in line
    assert "Traceback" not in result.stderr
