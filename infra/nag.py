"""cdk-nag's AwsSolutions checks, and how a construct acknowledges one finding with its reason.

cdk-nag 3.x is a CDK policy-validation plugin: any finding that is not acknowledged fails the
synth. Acknowledgments use the id the plugin prints ("<pack>::<rule>[<finding>]"), so each one
appears with its reason under ``suppressedViolations`` in ``cdk.out/validation-report.json``.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

PACK: Final = "AwsSolutions"


def add_nag_checks(app: App) -> None:
    """Run cdk-nag's AwsSolutions rules on every stack of ``app`` at synth time."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(construct: IConstruct, rule: str, *, reason: str) -> None:
    """Acknowledge one finding of ``rule`` (e.g. ``AwsSolutions-L1``) on ``construct``."""
    if not reason.strip():
        raise ValueError(f"acknowledging {rule} needs a reason")
    Validations.of(construct).acknowledge(Acknowledgment(id=f"{PACK}::{rule}", reason=reason))
