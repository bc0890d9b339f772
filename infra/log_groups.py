"""A log group from its typed settings: retention, removal, class, tags and optional KMS key.

We use ``aws_logs.LogGroup`` and never the deprecated ``logRetention`` option of other constructs:
that one deploys a ``Custom::LogRetention`` Lambda, which needs a real Lambda service (and
Docker under moto) just to set a number that ``AWS::Logs::LogGroup`` sets natively.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aws_cdk import ArnFormat, RemovalPolicy, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from aws_cloudwatch_logs_handler import RetentionDays

from .config import CREATE_KEY, LogGroupClassName, LogGroupConfig, RemovalPolicyName

# CDK's Python enum values are member names, not day counts, so the mapping from the library's
# RetentionDays is spelled out; a test checks it covers every value and synthesizes to it.
CDK_RETENTION: Final[Mapping[RetentionDays, logs.RetentionDays]] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}

_REMOVAL: Final[Mapping[RemovalPolicyName, RemovalPolicy]] = {
    "RETAIN": RemovalPolicy.RETAIN,
    "DESTROY": RemovalPolicy.DESTROY,
    "RETAIN_ON_UPDATE_OR_DELETE": RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
}
_CLASS: Final[Mapping[LogGroupClassName, logs.LogGroupClass]] = {
    "STANDARD": logs.LogGroupClass.STANDARD,
    "INFREQUENT_ACCESS": logs.LogGroupClass.INFREQUENT_ACCESS,
    "DELIVERY": logs.LogGroupClass.DELIVERY,
}
# What CloudWatch Logs does with a group's key, per
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html
_LOGS_KEY_ACTIONS: Final = (
    "kms:Encrypt*",
    "kms:Decrypt*",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:Describe*",
)


def cdk_retention(days: RetentionDays | None) -> logs.RetentionDays:
    """Return CDK's member for ``days``; ``None`` (never expire) is ``INFINITE``."""
    return logs.RetentionDays.INFINITE if days is None else CDK_RETENTION[days]


class ConfiguredLogGroup(Construct):
    """One ``AWS::Logs::LogGroup`` (and, with ``kms="create"``, the key that encrypts it).

    Attributes:
        log_group: the group.
        key: the key that encrypts it, or ``None`` for CloudWatch Logs' own encryption.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: LogGroupConfig) -> None:
        super().__init__(scope, construct_id)
        removal = _REMOVAL[config.removal_policy]
        self.key: kms.IKey | None = None
        if config.kms == CREATE_KEY:
            self.key = self._create_key(config.name, removal)
        elif config.kms is not None:
            self.key = kms.Key.from_key_arn(self, "Key", config.kms)
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            log_group_name=config.name,
            # CDK refuses any retention, even INFINITE, on a DELIVERY group (AWS sets it).
            retention=None
            if config.log_group_class == "DELIVERY"
            else cdk_retention(config.retention_days),
            removal_policy=removal,
            encryption_key=self.key,
            log_group_class=None
            if config.log_group_class is None
            else _CLASS[config.log_group_class],
        )
        for key, value in config.tags:
            Tags.of(self.log_group).add(key, value)

    def _create_key(self, name: str, removal: RemovalPolicy) -> kms.Key:
        stack = Stack.of(self)
        key = kms.Key(
            self,
            "Key",
            description=f"Encrypts the CloudWatch Logs group {name}",
            enable_key_rotation=True,
            # A deleted key makes the group's events unreadable: keep it as long as the group.
            removal_policy=removal,
        )
        # The service encrypts on the group's behalf; the condition pins the key to this group.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsForThisGroup",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=list(_LOGS_KEY_ACTIONS),
                resources=["*"],  # in a key policy "*" means this key
                conditions={
                    "ArnEquals": {
                        "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name=name,
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
        return key
