"""A small function that logs through the layer's handler into one of the configured groups.

Opt-in (``-c sample=true``): a stack of log infrastructure deploys no function unless asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from aws_cloudwatch_logs_handler.cdk import acknowledge

SOURCE_DIR: Final = Path(__file__).resolve().parent / "sample_function"
"""The function's code, resolved from this file, never from the working directory."""
HANDLER: Final = "sample_handler.handler"
"""Not named like the layer's package: /var/task precedes /opt/python on sys.path."""
RUNTIME: Final = lambda_.Runtime.PYTHON_3_12
LOG_GROUP_ENV: Final = "SAMPLE_LOG_GROUP"
"""The variable that tells the sample which configured group to deliver to."""


class SampleFunction(Construct):
    """A Python function using the layer that delivers to ``target``, with a log group of its own.

    Its role may write to its own group only; the stack grants it delivery to ``target``
    (the writer policy), so the construct never decides what the function may reach.

    Attributes:
        function: the Lambda function.
        role: its execution role (write access to its own group).
        own_log_group: the group Lambda writes the function's stdout to.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        layer: lambda_.ILayerVersion,
        target: logs.ILogGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        # Our own role instead of the default one, which would attach the AWS managed
        # AWSLambdaBasicExecutionRole (logs:* on every group, cdk-nag IAM4).
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Runs the sample function: the writer policy and its own log group",
        )
        # An explicit group instead of the deprecated logRetention (a Custom:: resource).
        self.own_log_group = logs.LogGroup(
            self,
            "LogGroup",
            retention=logs.RetentionDays.ONE_WEEK,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.own_log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(SOURCE_DIR), exclude=["__pycache__", "*.pyc"]),
            layers=[layer],
            role=self.role,
            log_group=self.own_log_group,
            environment={LOG_GROUP_ENV: target.log_group_name},
            memory_size=128,
            timeout=Duration.seconds(15),
            description="Logs through CloudWatchLogsHandler from the layer into a configured group",
        )
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            reason=(
                "The sample pins python3.12 on purpose: it shows the layer on a runtime older "
                "than the newest, and the layer itself lists python3.10-3.14."
            ),
        )
