"""The stack: composes the log groups, policies, layer and sample function, and exports outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from .config import InfraConfig
from .layer import HandlerLayer
from .log_groups import ConfiguredLogGroup
from .policies import CreatorPolicy, ReaderPolicy, WriterPolicy
from .sample import SampleFunction


class LogsHandlerStack(Stack):
    """Log groups with typed retention, least-privilege policies, the handler layer and a sample.

    Attributes:
        log_groups: the configured groups by name.
        writer, reader: the managed policies; creator: ``None`` unless ``creator_policy``.
        layer: the handler's layer; sample: the sample function.
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
        names = [group.name for group in config.log_groups]
        self.log_groups = {
            group.name: ConfiguredLogGroup(self, group.construct_id, config=group)
            for group in config.log_groups
        }
        self.writer = WriterPolicy(self, "WriterPolicy", log_group_names=names)
        self.reader = ReaderPolicy(self, "ReaderPolicy", log_group_names=names)
        self.creator = (
            CreatorPolicy(self, "CreatorPolicy", log_group_names=names)
            if config.creator_policy
            else None
        )
        self.layer = HandlerLayer(self, "HandlerLayer", zip_path=layer_zip)
        self.sample = SampleFunction(
            self,
            "SampleFunction",
            layer=self.layer.layer,
            writer_policy=self.writer.policy,
            target_log_group=config.sample_log_group,
        )
        self._outputs(config)

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
        self._export(
            "SampleFunctionName", self.sample.function.function_name, "The sample function"
        )
