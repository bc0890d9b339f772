"""A log group for the handler, with the options users add to it: metrics, streaming, masking,
field indexes, saved queries and deletion protection, each through CDK's L2 API.

``aws_logs.LogGroup`` sets retention natively; the deprecated ``logRetention`` option of other
constructs deploys a ``Custom::LogRetention`` Lambda instead, which needs a real Lambda service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, Literal

from aws_cdk import ArnFormat, RemovalPolicy, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as destinations
from constructs import Construct

from aws_cloudwatch_logs_handler._errors import ConfigurationError
from aws_cloudwatch_logs_handler._retention import RetentionDays, validate_retention_days

from ._acknowledge import acknowledge
from ._options import (
    MAX_METRIC_FILTERS_PER_GROUP,
    MetricFilter,
    QueryDefinition,
    Subscription,
    construct_id_for,
    validate_data_identifiers,
    validate_field_indexes,
)

CREATE_KEY: Final = "create"
"""The ``encryption_key`` value asking for a new key whose policy lets CloudWatch Logs use it."""

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
    """Return CDK's member for ``days``; ``None`` (never expire) is ``INFINITE``.

    Raises:
        ConfigurationError: if ``days`` is not a retention CloudWatch Logs accepts.
    """
    valid = validate_retention_days(days, setting="retention_days")
    return logs.RetentionDays.INFINITE if valid is None else CDK_RETENTION[valid]


def _filter_pattern(pattern: str) -> logs.IFilterPattern:
    return logs.FilterPattern.all_events() if not pattern else logs.FilterPattern.literal(pattern)


class HandlerLogGroup(Construct):
    """One ``AWS::Logs::LogGroup`` and what is attached to it.

    Every option is off unless given; each costs something (see the README's cost notes).

    Attributes:
        log_group: the group; pass it to `WriterPolicy`, `DropAlarm` or your own grants.
        key: the key that encrypts it, or ``None`` for CloudWatch Logs' own encryption.
        metric_filters: one ``aws_logs.MetricFilter`` per `MetricFilter` given.
        subscription_filter: the ``aws_logs.SubscriptionFilter``, or ``None``.
        query_definitions: one ``aws_logs.QueryDefinition`` per `QueryDefinition` given.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        log_group_name: str,
        retention_days: RetentionDays | None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
        encryption_key: kms.IKey | Literal["create"] | None = None,
        log_group_class: logs.LogGroupClass | None = None,
        tags: Mapping[str, str] | None = None,
        metric_filters: Sequence[MetricFilter] = (),
        subscription: Subscription | None = None,
        data_protection: Sequence[str] = (),
        field_indexes: Sequence[str] = (),
        query_definitions: Sequence[QueryDefinition] = (),
        deletion_protection: bool = False,
    ) -> None:
        """Create the group.

        Args:
            scope: the parent construct.
            construct_id: this construct's id.
            log_group_name: the group's name.
            retention_days: days to keep events; ``None`` keeps them forever.
            removal_policy: what CloudFormation does with the group when it leaves the stack.
            encryption_key: a KMS key, ``"create"`` for a new one admitting only CloudWatch
                Logs for this group, or ``None`` for CloudWatch Logs' own encryption.
            log_group_class: ``STANDARD`` (the service's default), ``INFREQUENT_ACCESS`` or
                ``DELIVERY``; fixed at creation.
            tags: tags on the group.
            metric_filters: metrics published from matching events.
            subscription: stream events to Kinesis or Firehose.
            data_protection: managed data identifiers to mask, e.g. ``["EmailAddress"]``.
            field_indexes: JSON keys to index for Logs Insights, e.g. ``["requestId"]``.
            query_definitions: saved Logs Insights queries on this group.
            deletion_protection: refuse DeleteLogGroup until it is switched off.

        Raises:
            ConfigurationError: if the options contradict each other or AWS's limits.
        """
        super().__init__(scope, construct_id)
        self._check(
            log_group_name=log_group_name,
            retention_days=retention_days,
            removal_policy=removal_policy,
            log_group_class=log_group_class,
            metric_filters=metric_filters,
            field_indexes=field_indexes,
            deletion_protection=deletion_protection,
        )
        self.key: kms.IKey | None = (
            self._create_key(log_group_name, removal_policy)
            if encryption_key == CREATE_KEY
            else encryption_key
            if not isinstance(encryption_key, str)
            else None
        )
        self.log_group = logs.LogGroup(
            self,
            "LogGroup",
            log_group_name=log_group_name,
            # CDK refuses any retention, even INFINITE, on a DELIVERY group (AWS sets it).
            retention=None
            if log_group_class == logs.LogGroupClass.DELIVERY
            else cdk_retention(retention_days),
            removal_policy=removal_policy,
            encryption_key=self.key,
            log_group_class=log_group_class,
            data_protection_policy=logs.DataProtectionPolicy(
                identifiers=[
                    logs.DataIdentifier(name) for name in validate_data_identifiers(data_protection)
                ],
                description=f"Masks {', '.join(data_protection)} in {log_group_name}",
            )
            if data_protection
            else None,
            field_index_policies=[
                logs.FieldIndexPolicy(fields=list(validate_field_indexes(field_indexes)))
            ]
            if field_indexes
            else None,
            deletion_protection_enabled=True if deletion_protection else None,
        )
        for key, value in sorted((tags or {}).items()):
            Tags.of(self.log_group).add(key, value)
        self.metric_filters = [
            self.log_group.add_metric_filter(
                "MetricFilter"
                + construct_id_for(f"{spec.namespace} {spec.metric_name}", fallback=""),
                filter_pattern=_filter_pattern(spec.pattern),
                metric_name=spec.metric_name,
                metric_namespace=spec.namespace,
                metric_value=spec.value,
                default_value=spec.default_value,
            )
            for spec in metric_filters
        ]
        self.subscription_filter = None if subscription is None else self._subscribe(subscription)
        self.query_definitions = self._queries(query_definitions)

    @staticmethod
    def _check(
        *,
        log_group_name: str,
        retention_days: RetentionDays | None,
        removal_policy: RemovalPolicy,
        log_group_class: logs.LogGroupClass | None,
        metric_filters: Sequence[MetricFilter],
        field_indexes: Sequence[str],
        deletion_protection: bool,
    ) -> None:
        where = f"log group {log_group_name!r}"
        if log_group_class == logs.LogGroupClass.DELIVERY and retention_days is not None:
            # AWS fixes a DELIVERY group's retention itself and refuses a retention policy on it.
            # https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CloudWatch_Logs_Log_Classes.html
            raise ConfigurationError(
                f"{where}: a DELIVERY group takes no retention (AWS sets it); "
                "leave retention out or pick another class"
            )
        if field_indexes and log_group_class not in (None, logs.LogGroupClass.STANDARD):
            # https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutIndexPolicy.html
            raise ConfigurationError(
                f"{where}: field indexes work only on STANDARD groups, not {log_group_class}; "
                "drop field_indexes or use the STANDARD class"
            )
        if deletion_protection and removal_policy == RemovalPolicy.DESTROY:
            raise ConfigurationError(
                f"{where}: deletion protection makes CloudFormation's delete fail; "
                "use removal policy RETAIN, or switch deletion protection off"
            )
        if len(metric_filters) > MAX_METRIC_FILTERS_PER_GROUP:
            raise ConfigurationError(
                f"{where}: {len(metric_filters)} metric filters; at most "
                f"{MAX_METRIC_FILTERS_PER_GROUP} per group"
            )
        seen = [(spec.namespace, spec.metric_name) for spec in metric_filters]
        if len(set(seen)) != len(seen):
            raise ConfigurationError(
                f"{where}: two metric filters publish the same namespace and metric_name; "
                "merge them or rename one"
            )

    def _subscribe(self, subscription: Subscription) -> logs.SubscriptionFilter:
        # The L2 destinations create the role CloudWatch Logs assumes to put records, with
        # write access to this one stream only; the writer policy is not involved.
        destination: logs.ILogSubscriptionDestination
        if subscription.kind == "kinesis":
            destination = destinations.KinesisDestination(
                kinesis.Stream.from_stream_arn(self, "Destination", subscription.destination_arn)
            )
        else:
            # Importing a Firehose stream makes CDK add its CIDR mapping to the stack, used
            # only by streams that deliver to Redshift or Splunk; CDK's own template check
            # then warns that nothing reads it.
            acknowledge(
                Stack.of(self),
                "W7001",
                pack="CloudFormation-Validate",
                reason="aws-cdk-lib adds the Firehose CIDR mapping for any Firehose stream; "
                "an unused mapping costs nothing and deploys as it is.",
            )
            destination = destinations.FirehoseDestination(
                firehose.DeliveryStream.from_delivery_stream_arn(
                    self, "Destination", subscription.destination_arn
                )
            )
        return self.log_group.add_subscription_filter(
            "Subscription",
            destination=destination,
            filter_pattern=_filter_pattern(subscription.pattern),
        )

    def _queries(self, specs: Sequence[QueryDefinition]) -> list[logs.QueryDefinition]:
        queries: dict[str, logs.QueryDefinition] = {}
        for spec in specs:
            query_id = "Query" + construct_id_for(spec.name, fallback="")
            if query_id in queries:
                raise ConfigurationError(
                    f"query definition {spec.name!r} differs from another only in punctuation "
                    "or repeats it; rename one"
                )
            queries[query_id] = logs.QueryDefinition(
                self,
                query_id,
                query_definition_name=spec.name,
                query_string=spec.query_string(),
                log_groups=[self.log_group],
            )
        return list(queries.values())

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
        # The ARN is spelled from the name: the group refers to the key, so the key cannot
        # refer to the group's ARN attribute without a circular dependency.
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
