"""Managed policies for the configured groups: a writer, a reader and an optional creator.

The writer allows exactly the calls the handler makes to deliver, on the
configured groups only. Actions and resource types come from the Service Authorization Reference:
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from .nag import acknowledge

WRITER_ACTIONS: Final = ("logs:CreateLogStream", "logs:PutLogEvents")
"""What the handler calls to deliver to a group that exists."""
READER_GROUP_ACTIONS: Final = (
    "logs:DescribeLogStreams",
    "logs:FilterLogEvents",
    "logs:GetLogEvents",
    "logs:GetLogGroupFields",
    "logs:StartQuery",
)
"""Reading and starting Insights queries: these accept log-group/log-stream resources."""
READER_QUERY_ACTIONS: Final = ("logs:GetQueryResults", "logs:StopQuery")
"""Insights query follow-ups: they name a query id, not a group, and support no resource type."""
CREATOR_ACTIONS: Final = ("logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:TagResource")
"""What the handler calls when ``create_log_group=True`` finds its group missing."""

_WILDCARD_REASON: Final = (
    "The trailing ':*' stands for the streams of this one group: "
    "arn:<partition>:logs:<region>:<account>:log-group:<name>:* is the ARN CloudWatch Logs "
    "documents for stream-level actions such as CreateLogStream and PutLogEvents. Log group "
    "names cannot contain ':', so it cannot reach a stream of any other group."
)


def log_group_arn(scope: Construct, name: str, *, streams: bool) -> str:
    """Return the group's ARN from the stack's partition, region and account.

    Args:
        scope: any construct in the stack whose pseudo parameters fill the ARN.
        name: the log group's name.
        streams: add ``:*``, the form that covers the group's streams (``log-group:NAME:*``).
    """
    return Stack.of(scope).format_arn(
        service="logs",
        resource="log-group",
        resource_name=f"{name}:*" if streams else name,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


def _acknowledge_stream_wildcards(policy: Construct, names: Sequence[str]) -> None:
    # cdk-nag reports each wildcard resource as its own finding, named after the resource with
    # the pseudo parameters written as <AWS::...>; each one is acknowledged with the reason.
    for name in names:
        resource = f"arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:{name}:*"
        acknowledge(policy, f"AwsSolutions-IAM5[Resource::{resource}]", reason=_WILDCARD_REASON)


def _group_policy(
    scope: Construct,
    log_group_names: Sequence[str],
    *,
    description: str,
    statements: Sequence[iam.PolicyStatement],
) -> iam.ManagedPolicy:
    """A managed policy on the configured groups, its ``:*`` stream wildcards acknowledged."""
    policy = iam.ManagedPolicy(
        scope, "Policy", description=description, statements=list(statements)
    )
    _acknowledge_stream_wildcards(policy, log_group_names)
    return policy


class WriterPolicy(Construct):
    """A managed policy allowing exactly CreateLogStream and PutLogEvents on the given groups.

    Attributes:
        policy: the ``AWS::IAM::ManagedPolicy``.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, log_group_names: Sequence[str]
    ) -> None:
        super().__init__(scope, construct_id)
        self.policy = _group_policy(
            self,
            log_group_names,
            description="Deliver log events to the configured CloudWatch Logs groups (no create)",
            statements=[
                iam.PolicyStatement(
                    sid="DeliverToConfiguredGroups",
                    actions=list(WRITER_ACTIONS),
                    resources=[log_group_arn(self, name, streams=True) for name in log_group_names],
                )
            ],
        )


def _both_arn_forms(scope: Construct, log_group_names: Sequence[str]) -> list[str]:
    """Each group's ARN without and with the streams suffix ``:*``, group by group."""
    return [
        arn
        for name in log_group_names
        for arn in (
            log_group_arn(scope, name, streams=False),
            log_group_arn(scope, name, streams=True),
        )
    ]


class ReaderPolicy(Construct):
    """A managed policy to read, filter and query (Logs Insights) the given groups.

    Attributes:
        policy: the ``AWS::IAM::ManagedPolicy``.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, log_group_names: Sequence[str]
    ) -> None:
        super().__init__(scope, construct_id)
        # Both forms of each group's ARN: the Service Authorization Reference names the
        # log-group resource without ':*', while stream-level reads (GetLogEvents) need it.
        group_resources = _both_arn_forms(self, log_group_names)
        self.policy = _group_policy(
            self,
            log_group_names,
            description="Read, filter and query the configured CloudWatch Logs groups",
            statements=[
                iam.PolicyStatement(
                    sid="ReadConfiguredGroups",
                    actions=list(READER_GROUP_ACTIONS),
                    resources=group_resources,
                ),
                iam.PolicyStatement(
                    sid="FollowInsightsQueries",
                    actions=list(READER_QUERY_ACTIONS),
                    resources=["*"],
                ),
            ],
        )
        acknowledge(
            self.policy,
            "AwsSolutions-IAM5[Resource::*]",
            reason=(
                "logs:GetQueryResults and logs:StopQuery name a query id and support no "
                "resource type, so IAM only accepts '*' for them; which groups a query can "
                "read is limited by logs:StartQuery, scoped to the configured groups above."
            ),
        )


class CreatorPolicy(Construct):
    """A managed policy to create the given groups and set their retention and tags.

    Attributes:
        policy: the ``AWS::IAM::ManagedPolicy``.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, log_group_names: Sequence[str]
    ) -> None:
        super().__init__(scope, construct_id)
        # Both forms of each group's ARN, as for the reader: whichever form AWS evaluates a
        # create, retention or tagging call against, it matches, and no other group does.
        resources = _both_arn_forms(self, log_group_names)
        self.policy = _group_policy(
            self,
            log_group_names,
            description="Create the configured CloudWatch Logs groups, set retention and tags",
            statements=[
                iam.PolicyStatement(
                    sid="CreateConfiguredGroups",
                    actions=list(CREATOR_ACTIONS),
                    resources=resources,
                )
            ],
        )
