"""The CDK app that ``cdk.json`` runs (``python -m infra.app``): settings, stack, cdk-nag.

Run by the CLI, the context comes from ``cdk.json`` and ``-c``; run directly (or from a test),
``build_app`` reads ``cdk.json``'s context itself, so both synthesize the same template.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from aws_cdk import App, DefaultStackSynthesizer

from aws_cloudwatch_logs_handler import ConfigurationError
from lambda_layer.build import DEFAULT_OUT, ensure_layer

from .config import InfraConfigError, infra_config_from_context
from .nag import add_nag_checks
from .stack import LogsHandlerStack

PROJECT_ROOT: Final = Path(__file__).resolve().parent.parent
CDK_JSON: Final = PROJECT_ROOT / "cdk.json"
STACK_DESCRIPTION: Final = (
    "CloudWatch Logs groups with typed retention, least-privilege IAM policies and the "
    "aws-cloudwatch-logs-handler layer"
)
_CLI_MARKER: Final = "CDK_OUTDIR"
"""Set by the CDK CLI when it runs the app (it then passes the context itself)."""


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """Return the ``context`` object of ``cdk.json``: what ``cdk synth`` would pass the app."""
    context = json.loads(path.read_text(encoding="utf-8")).get("context", {})
    if not isinstance(context, dict):
        raise InfraConfigError(f"{path}: 'context' must be an object")
    return context


def build_app(
    *,
    context: Mapping[str, Any] | None = None,
    outdir: str | None = None,
    layer_zip: Path = DEFAULT_OUT,
) -> tuple[App, LogsHandlerStack]:
    """Build the app with its one stack and cdk-nag's AwsSolutions checks registered.

    Args:
        context: context values; default: ``cdk.json``'s, unless the CDK CLI runs us.
        outdir: where the cloud assembly goes (default: the CLI's, or a temporary directory).
        layer_zip: the layer zip, (re)built here if missing or stale.

    Raises:
        ConfigurationError: if the context is invalid, naming the key (or entry and field) and
            the fix; `InfraConfigError` for what the context parser catches, the constructs'
            own error for options that contradict each other.
    """
    if context is None and _CLI_MARKER not in os.environ:
        context = cdk_json_context()
    app = App(context=dict(context) if context is not None else None, outdir=outdir)
    config = infra_config_from_context(app.node.get_all_context())
    stack = LogsHandlerStack(
        app,
        config.stack_name,
        config=config,
        layer_zip=ensure_layer(layer_zip),
        description=STACK_DESCRIPTION,
        # No AWS::CDK::Metadata resource: it is analytics only, and a local endpoint need not
        # know the type.
        analytics_reporting=False,
        synthesizer=DefaultStackSynthesizer(),
    )
    # cdk-nag 3.x runs as a policy-validation plugin: a finding that is not acknowledged
    # (with its reason, next to the construct) fails the synth.
    add_nag_checks(app)
    return app, stack


def main() -> int:
    """Synthesize the app; report a bad context as one line instead of a traceback."""
    try:
        app, _ = build_app()
    except ConfigurationError as error:
        print(f"cdk.json / -c context is invalid: {error}", file=sys.stderr)
        return 1
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
