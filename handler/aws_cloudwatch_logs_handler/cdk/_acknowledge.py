"""How a construct acknowledges one cdk-nag finding, with its reason, without importing cdk-nag.

cdk-nag 3.x reports through CDK's policy-validation API, so an acknowledgment is plain
aws-cdk-lib (``Validations.acknowledge``): users who run cdk-nag see the reason next to the
finding, and users who do not pay nothing for it.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct

NAG_PACK: Final = "AwsSolutions"
"""The cdk-nag rule pack whose findings these constructs acknowledge."""


def acknowledge(construct: IConstruct, rule: str, *, reason: str, pack: str = NAG_PACK) -> None:
    """Acknowledge one finding of ``rule`` (e.g. ``AwsSolutions-L1``) on ``construct``.

    ``pack`` names the validation plugin: cdk-nag's ``AwsSolutions`` by default, or
    ``CloudFormation-Validate`` for CDK's own template checks.

    Raises:
        ValueError: if ``reason`` is blank: an acknowledgment must say why.
    """
    if not reason.strip():
        raise ValueError(f"acknowledging {rule} needs a reason")
    Validations.of(construct).acknowledge(Acknowledgment(id=f"{pack}::{rule}", reason=reason))
