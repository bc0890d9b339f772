"""The configured groups: each ``log_groups`` entry of the context as a `HandlerLogGroup`.

The construct itself ships with the library (``aws_cloudwatch_logs_handler.cdk``); this module
only turns the context's names ("DESTROY", "INFREQUENT_ACCESS", a key ARN) into its CDK props.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from aws_cloudwatch_logs_handler.cdk import CREATE_KEY, HandlerLogGroup

from .config import LogGroupClassName, LogGroupConfig, RemovalPolicyName

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


def configured_log_group(scope: Construct, config: LogGroupConfig) -> HandlerLogGroup:
    """Create the group ``config`` describes, under the construct id its name gives."""
    key: kms.IKey | Literal["create"] | None = None
    if config.kms == CREATE_KEY:
        key = CREATE_KEY
    elif config.kms is not None:
        key = kms.Key.from_key_arn(scope, f"{config.construct_id}Key", config.kms)
    return HandlerLogGroup(
        scope,
        config.construct_id,
        log_group_name=config.name,
        retention_days=config.retention_days,
        removal_policy=_REMOVAL[config.removal_policy],
        encryption_key=key,
        log_group_class=None if config.log_group_class is None else _CLASS[config.log_group_class],
        tags=dict(config.tags),
        metric_filters=config.metric_filters,
        subscription=config.subscription,
        data_protection=config.data_protection,
        field_indexes=config.field_indexes,
        query_definitions=config.query_definitions,
        deletion_protection=config.deletion_protection,
    )
