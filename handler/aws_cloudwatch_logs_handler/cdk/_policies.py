"""Managed policies on given log groups: a writer, a reader and an optional creator.

Each policy names the groups by their constructs' ARNs, so it follows the groups wherever they
are (this stack, an imported group, another region's partition) and never spells an ARN out.
Actions and resource types come from the Service Authorization Reference:
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatchlogs.html
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import ClassVar, Final

from aws_cdk import Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from ._acknowledge import acknowledge

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
_SPLIT_REASON: Final = (
    "Not a wildcard: ':*' is the delimiter that Fn::Split cuts off the group's ARN attribute "
    "(arn:...:log-group:NAME:*) to give the bare group ARN (arn:...:log-group:NAME), which "
    "matches that one group only."
)
_STREAMS_SUFFIX: Final = ":*"
"""A group's ARN attribute ends in ``:*``, the form that covers the group's streams."""


def _streams_arns(log_groups: Sequence[logs.ILogGroup]) -> list[str]:
    """Each group's ARN attribute: ``arn:...:log-group:NAME:*``, covering its streams."""
    return [group.log_group_arn for group in log_groups]


def _both_arn_forms(log_groups: Sequence[logs.ILogGroup]) -> list[str]:
    """Each group's ARN without and with ``:*``, group by group.

    The Service Authorization Reference names the log-group resource without ``:*``, while
    stream-level calls need it; the bare form is the attribute with its suffix split off.
    """
    return [
        arn
        for group in log_groups
        for arn in (
            Fn.select(0, Fn.split(_STREAMS_SUFFIX, group.log_group_arn)),
            group.log_group_arn,
        )
    ]


def _policy(
    scope: Construct, *, description: str, statements: Sequence[iam.PolicyStatement]
) -> iam.ManagedPolicy:
    policy = iam.ManagedPolicy(
        scope, "Policy", description=description, statements=list(statements)
    )
    # cdk-nag's IAM5 reads the '*' of the ':*' delimiter in Fn::Split as a wildcard resource;
    # the split only cuts the suffix off one group's ARN. Each finding is named after the
    # resolved resource, so each bare ARN is acknowledged as such.
    stack = Stack.of(scope)
    for statement in statements:
        for resource in statement.resources:
            resolved = stack.resolve(resource)
            if isinstance(resolved, dict) and "Fn::Select" in resolved:
                finding = json.dumps(resolved, separators=(",", ":"))
                acknowledge(policy, f"AwsSolutions-IAM5[Resource::{finding}]", reason=_SPLIT_REASON)
    return policy


class _GroupsPolicy(Construct):
    """A managed policy whose statements name the given groups; subclasses say which."""

    _DESCRIPTION: ClassVar[str]

    def __init__(
        self, scope: Construct, construct_id: str, *, log_groups: Sequence[logs.ILogGroup]
    ) -> None:
        super().__init__(scope, construct_id)
        if not log_groups:
            # An empty resource list would make IAM refuse the policy at deploy time.
            raise ValueError(f"{type(self).__name__} needs at least one log group")
        self.policy = _policy(
            self, description=self._DESCRIPTION, statements=self._statements(log_groups)
        )

    def _statements(self, log_groups: Sequence[logs.ILogGroup]) -> list[iam.PolicyStatement]:
        raise NotImplementedError


class WriterPolicy(_GroupsPolicy):
    """A managed policy allowing exactly CreateLogStream and PutLogEvents on the given groups.

    Attach it to the role your code runs as (``policy.attach_to_role(role)``): it can deliver
    to these groups and do nothing else, not even create them (see `CreatorPolicy`).

    Attributes:
        policy: the ``AWS::IAM::ManagedPolicy``.
    """

    _DESCRIPTION = "Deliver log events to the configured CloudWatch Logs groups (no create)"

    def _statements(self, log_groups: Sequence[logs.ILogGroup]) -> list[iam.PolicyStatement]:
        return [
            iam.PolicyStatement(
                sid="DeliverToConfiguredGroups",
                actions=list(WRITER_ACTIONS),
                resources=_streams_arns(log_groups),
            )
        ]


class ReaderPolicy(_GroupsPolicy):
    """A managed policy to read, filter and query (Logs Insights) the given groups.

    Attributes:
        policy: the ``AWS::IAM::ManagedPolicy``.
    """

    _DESCRIPTION = "Read, filter and query the configured CloudWatch Logs groups"

    def __init__(
        self, scope: Construct, construct_id: str, *, log_groups: Sequence[logs.ILogGroup]
    ) -> None:
        super().__init__(scope, construct_id, log_groups=log_groups)
        acknowledge(
            self.policy,
            "AwsSolutions-IAM5[Resource::*]",
            reason=(
                "logs:GetQueryResults and logs:StopQuery name a query id and support no "
                "resource type, so IAM only accepts '*' for them; which groups a query can "
                "read is limited by logs:StartQuery, scoped to the configured groups above."
            ),
        )

    def _statements(self, log_groups: Sequence[logs.ILogGroup]) -> list[iam.PolicyStatement]:
        return [
            iam.PolicyStatement(
                sid="ReadConfiguredGroups",
                actions=list(READER_GROUP_ACTIONS),
                resources=_both_arn_forms(log_groups),
            ),
            iam.PolicyStatement(
                sid="FollowInsightsQueries",
                actions=list(READER_QUERY_ACTIONS),
                resources=["*"],
            ),
        ]


class CreatorPolicy(_GroupsPolicy):
    """A managed policy to create the given groups and set their retention and tags.

    Attributes:
        policy: the ``AWS::IAM::ManagedPolicy``.
    """

    _DESCRIPTION = "Create the configured CloudWatch Logs groups, set retention and tags"

    def _statements(self, log_groups: Sequence[logs.ILogGroup]) -> list[iam.PolicyStatement]:
        # Both forms of each group's ARN, as for the reader: whichever form AWS evaluates a
        # create, retention or tagging call against, it matches, and no other group does.
        return [
            iam.PolicyStatement(
                sid="CreateConfiguredGroups",
                actions=list(CREATOR_ACTIONS),
                resources=_both_arn_forms(log_groups),
            )
        ]
