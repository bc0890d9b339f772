"""Running the real CDK CLI's synth from tests, offline and with no AWS settings."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def run_cdk_synth(
    output: Path, *context: str, timeout_s: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``cdk synth`` into ``output`` with ``-c`` for each ``key=value`` in ``context``.

    No credentials, region or endpoint reach it: the synth must need none of them.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") and name != "CDK_OUTDIR"
    }
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    command = ["npx", "--no-install", "cdk", "synth", "--quiet", "--no-notices"]
    command += ["--output", str(output)]
    for pair in context:
        command += ["-c", pair]
    return subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
    )
