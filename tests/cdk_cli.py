"""Running the real CDK CLI's synth from tests, offline and with no AWS settings."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def run_cdk_synth(
    output: Path, *context: str, app_dir: Path = PROJECT_ROOT, timeout_s: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the pinned CLI's ``cdk synth`` of the app in ``app_dir`` into ``output``, with ``-c``
    for each ``key=value`` in ``context``.

    No credentials, region or endpoint reach it: the synth must need none of them; nor does
    PYTHONPATH, so an app outside this checkout imports only what its own environment installed.
    """
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") and name not in {"CDK_OUTDIR", "PYTHONPATH"}
    }
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    cli = PROJECT_ROOT / "node_modules" / ".bin" / "cdk"  # what npx --no-install would run
    command = [str(cli), "synth", "--quiet", "--no-notices", "--output", str(output)]
    for pair in context:
        command += ["-c", pair]
    return subprocess.run(
        command,
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
    )
