"""The stack: composes the library's constructs from the settings, wires the grants, exports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_sns as sns
from constructs import Construct

from aws_cloudwatch_logs_handler.cdk import (
    CREATE_KEY,
    CreatorPolicy,
    DropAlarm,
    HandlerLayer,
    HandlerLogGroup,
    ReaderPolicy,
    WriterPolicy,
)

from .config import DropAlarmConfig, InfraConfig
from .log_groups import configured_log_group
from .sample import SampleFunction


class LogsHandlerStack(Stack):
    """Log groups with their options, least-privilege policies, the layer; opt-in sample and alarms.

    Attributes:
        log_groups: the configured groups by name.
        writer, reader: the managed policies; creator: ``None`` unless ``creator_policy``.
        layer: the handler's layer.
        sample: the sample function, or ``None`` unless ``sample``.
        drop_alarms: one alarm per group by name (empty unless ``drop_alarm``);
        alarm_topic: the topic they notify, or ``None``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: InfraConfig,
        layer_zip: Path,
        **stack_props: Any,
    ) -> None:
        super().__init__(scope, construct_id, **stack_props)
        self.log_groups: dict[str, HandlerLogGroup] = {
            group.name: configured_log_group(self, group) for group in config.log_groups
        }
        groups = [construct.log_group for construct in self.log_groups.values()]
        self.writer = WriterPolicy(self, "WriterPolicy", log_groups=groups)
        self.reader = ReaderPolicy(self, "ReaderPolicy", log_groups=groups)
        self.creator = (
            CreatorPolicy(self, "CreatorPolicy", log_groups=groups)
            if config.creator_policy
            else None
        )
        self.layer = HandlerLayer(self, "HandlerLayer", zip_path=layer_zip)
        self.sample: SampleFunction | None = None
        if config.sample_log_group is not None:
            self.sample = SampleFunction(
                self,
                "SampleFunction",
                layer=self.layer.layer,
                target=self.log_groups[config.sample_log_group].log_group,
            )
            # The grant, wired here: the sample may deliver exactly as any writer may.
            self.sample.role.add_managed_policy(self.writer.policy)
        self.alarm_topic: sns.ITopic | None = None
        self.drop_alarms: dict[str, DropAlarm] = {}
        if config.drop_alarm is not None:
            self._drop_alarms(config, config.drop_alarm)
        self._outputs(config)

    def _drop_alarms(self, config: InfraConfig, settings: DropAlarmConfig) -> None:
        if settings.topic == CREATE_KEY:
            # Not KMS-encrypted: it carries alarm state changes, never log data, and CloudWatch
            # cannot publish to a topic under the AWS managed SNS key (a customer key would
            # cost more than the alarms).
            topic = sns.Topic(
                self,
                "DropAlarmTopic",
                display_name="aws-cloudwatch-logs-handler dropped records",
                enforce_ssl=True,
            )
            self.alarm_topic = topic
        elif settings.topic is not None:
            self.alarm_topic = sns.Topic.from_topic_arn(self, "DropAlarmTopic", settings.topic)
        for group in config.log_groups:
            self.drop_alarms[group.name] = DropAlarm(
                self,
                f"{group.construct_id}DropAlarm",
                log_group=self.log_groups[group.name].log_group,
                threshold=settings.threshold,
                period=Duration.minutes(settings.period_minutes),
                topic=self.alarm_topic,
            )

    def _export(self, construct_id: str, value: str, description: str) -> None:
        CfnOutput(
            self,
            construct_id,
            value=value,
            description=description,
            export_name=f"{self.stack_name}-{construct_id}",
        )

    def _outputs(self, config: InfraConfig) -> None:
        self._export(
            "LayerVersionArn", self.layer.layer.layer_version_arn, "The handler layer's version"
        )
        self._export(
            "WriterPolicyArn", self.writer.policy.managed_policy_arn, "Deliver to the groups"
        )
        self._export("ReaderPolicyArn", self.reader.policy.managed_policy_arn, "Read the groups")
        if self.creator is not None:
            self._export(
                "CreatorPolicyArn", self.creator.policy.managed_policy_arn, "Create the groups"
            )
        for group in config.log_groups:
            self._export(
                f"{group.construct_id}Name",
                self.log_groups[group.name].log_group.log_group_name,
                f"Log group {group.name}",
            )
        if self.sample is not None:
            self._export(
                "SampleFunctionName", self.sample.function.function_name, "The sample function"
            )
        if self.alarm_topic is not None:
            self._export(
                "DropAlarmTopicArn", self.alarm_topic.topic_arn, "Notified of dropped records"
            )
