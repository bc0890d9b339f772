"""The Lambda layer that ships the handler library, from a zip built without Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from aws_cloudwatch_logs_handler._version import __version__

COMPATIBLE_RUNTIMES: Final = (
    lambda_.Runtime.PYTHON_3_10,
    lambda_.Runtime.PYTHON_3_11,
    lambda_.Runtime.PYTHON_3_12,
    lambda_.Runtime.PYTHON_3_13,
    lambda_.Runtime.PYTHON_3_14,
)
"""The library supports Python 3.10 and newer (pyproject's requires-python)."""
COMPATIBLE_ARCHITECTURES: Final = (lambda_.Architecture.X86_64, lambda_.Architecture.ARM_64)
"""Pure Python: one zip serves both."""


class HandlerLayer(Construct):
    """A retained ``AWS::Lambda::LayerVersion`` described with the package version.

    The zip must hold the library under ``python/`` (``python -m lambda_layer.build`` in this
    repository writes one); ``PythonLayerVersion`` would need Docker, this does not.

    Attributes:
        layer: the layer version.
    """

    def __init__(self, scope: Construct, construct_id: str, *, zip_path: Path) -> None:
        super().__init__(scope, construct_id)
        self.layer = lambda_.LayerVersion(
            self,
            "Layer",
            code=lambda_.Code.from_asset(str(zip_path)),
            compatible_runtimes=list(COMPATIBLE_RUNTIMES),
            compatible_architectures=list(COMPATIBLE_ARCHITECTURES),
            description=(
                f"aws-cloudwatch-logs-handler {__version__}: "
                "logging.Handler for CloudWatch Logs (boto3 from the runtime)"
            ),
            license="MIT",
            # Functions deployed elsewhere may still pin an older version: an update or a
            # stack deletion must not delete it under them.
            removal_policy=RemovalPolicy.RETAIN,
        )
