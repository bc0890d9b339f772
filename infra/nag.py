"""cdk-nag's AwsSolutions checks, run on every stack of the app at synth time.

cdk-nag 3.x is a CDK policy-validation plugin: any finding that is not acknowledged fails the
synth. Constructs acknowledge a finding with `aws_cloudwatch_logs_handler.cdk.acknowledge`
(plain aws-cdk-lib), so each one appears with its reason under ``suppressedViolations`` in
``cdk.out/validation-report.json``; only this module needs cdk-nag itself.
"""

from __future__ import annotations

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks


def add_nag_checks(app: App) -> None:
    """Run cdk-nag's AwsSolutions rules on every stack of ``app`` at synth time."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
