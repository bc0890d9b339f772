"""A CloudWatch alarm on the records the handler drops, from the metrics it publishes as EMF."""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from aws_cloudwatch_logs_handler._errors import ConfigurationError
from aws_cloudwatch_logs_handler._metrics import DEFAULT_NAMESPACE, DROPPED_METRIC, GROUP_DIMENSION

# The metric `DeliveryMetrics` publishes about the handler itself (Embedded Metric Format).
HANDLER_METRIC_NAMESPACE: Final = DEFAULT_NAMESPACE
DROPPED_METRIC_NAME: Final = DROPPED_METRIC
LOG_GROUP_DIMENSION: Final = GROUP_DIMENSION
DEFAULT_PERIOD: Final = Duration.minutes(5)
# CloudWatch evaluates alarms on periods of 10 s, 30 s or a multiple of 60 s.
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html
_MINUTE_S: Final = 60


class DropAlarm(Construct):
    """An alarm when the handler drops ``threshold`` or more records for a group in a period.

    Quiet while nothing is dropped: the handler publishes the metric only when it has drops
    to report, so missing data is "not breaching".

    Attributes:
        alarm: the ``AWS::CloudWatch::Alarm``.
        metric: the sum of ``Dropped`` for the group over the period.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        log_group: logs.ILogGroup,
        threshold: int = 1,
        period: Duration = DEFAULT_PERIOD,
        topic: sns.ITopic | None = None,
    ) -> None:
        """Create the alarm.

        Args:
            scope: the parent construct.
            construct_id: this construct's id.
            log_group: the group whose handlers' drops are counted.
            threshold: the number of drops in one period that sets the alarm off.
            period: the period drops are summed over, a whole number of minutes.
            topic: an SNS topic notified when the alarm fires and when it clears; if it is a
                topic of this app, its policy gains a statement letting this alarm publish.

        Raises:
            ConfigurationError: if ``threshold`` is below 1 or ``period`` is not whole minutes.
        """
        super().__init__(scope, construct_id)
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise ConfigurationError(f"threshold={threshold!r} must be an integer of at least 1")
        seconds = period.to_seconds()
        if seconds < _MINUTE_S or seconds % _MINUTE_S:
            raise ConfigurationError(
                f"period of {seconds:g} s must be a whole number of minutes, at least one"
            )
        self.metric = cloudwatch.Metric(
            namespace=HANDLER_METRIC_NAMESPACE,
            metric_name=DROPPED_METRIC_NAME,
            dimensions_map={LOG_GROUP_DIMENSION: log_group.log_group_name},
            statistic=cloudwatch.Stats.SUM,
            period=period,
        )
        self.alarm = self.metric.create_alarm(
            self,
            "Alarm",
            alarm_description=(
                "aws-cloudwatch-logs-handler dropped records meant for this group: see "
                "handler.stats().dropped and the handler's stderr for the reason"
            ),
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if topic is not None:
            action = actions.SnsAction(topic)
            self.alarm.add_alarm_action(action)
            self.alarm.add_ok_action(action)
            # CloudWatch publishes as its service principal; the condition limits it to this
            # alarm (the confused-deputy guard). A topic imported by ARN keeps its own policy.
            # https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html
            topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"AllowAlarm{construct_id}",
                    principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                    actions=["sns:Publish"],
                    resources=[topic.topic_arn],
                    conditions={"ArnEquals": {"aws:SourceArn": self.alarm.alarm_arn}},
                )
            )
