"""CDK constructs for the handler: log groups with their options, least-privilege policies,
the layer and a drop alarm, to compose in your own CDK app.

    from aws_cloudwatch_logs_handler.cdk import HandlerLogGroup, WriterPolicy

    group = HandlerLogGroup(stack, "AppLogs", log_group_name="/my/app", retention_days=30)
    WriterPolicy(stack, "Writer", log_groups=[group.log_group]).policy.attach_to_role(role)

This module needs aws-cdk-lib (``pip install 'aws-cloudwatch-logs-handler[cdk]'``) and is the
only one that does: the handler itself never imports it, and the Lambda layer leaves it out.
Invalid options raise `ConfigurationError` (a ``ValueError``) naming the fix.
"""

from __future__ import annotations

try:
    import aws_cdk  # noqa: F401  (only to fail early, with the fix, when the extra is missing)
except ImportError as error:  # pragma: no cover - exercised in a venv without aws-cdk-lib
    raise ImportError(
        "aws_cloudwatch_logs_handler.cdk needs aws-cdk-lib: "
        "pip install 'aws-cloudwatch-logs-handler[cdk]'"
    ) from error

from ._acknowledge import acknowledge
from ._alarm import DROPPED_METRIC_NAME, HANDLER_METRIC_NAMESPACE, LOG_GROUP_DIMENSION, DropAlarm
from ._layer import COMPATIBLE_ARCHITECTURES, COMPATIBLE_RUNTIMES, HandlerLayer
from ._log_group import CDK_RETENTION, CREATE_KEY, HandlerLogGroup, cdk_retention
from ._options import (
    DEFAULT_METRIC_NAMESPACE,
    MANAGED_DATA_IDENTIFIERS,
    MetricFilter,
    QueryDefinition,
    Subscription,
)
from ._policies import (
    CREATOR_ACTIONS,
    READER_GROUP_ACTIONS,
    READER_QUERY_ACTIONS,
    WRITER_ACTIONS,
    CreatorPolicy,
    ReaderPolicy,
    WriterPolicy,
)

__all__ = [
    "CDK_RETENTION",
    "COMPATIBLE_ARCHITECTURES",
    "COMPATIBLE_RUNTIMES",
    "CREATE_KEY",
    "CREATOR_ACTIONS",
    "DEFAULT_METRIC_NAMESPACE",
    "DROPPED_METRIC_NAME",
    "HANDLER_METRIC_NAMESPACE",
    "LOG_GROUP_DIMENSION",
    "MANAGED_DATA_IDENTIFIERS",
    "READER_GROUP_ACTIONS",
    "READER_QUERY_ACTIONS",
    "WRITER_ACTIONS",
    "CreatorPolicy",
    "DropAlarm",
    "HandlerLayer",
    "HandlerLogGroup",
    "MetricFilter",
    "QueryDefinition",
    "ReaderPolicy",
    "Subscription",
    "WriterPolicy",
    "acknowledge",
    "cdk_retention",
]
