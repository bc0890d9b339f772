"""What a package costs before it logs anything: its import time, and the Lambda layer's size.

Import time matters most in Lambda, where every cold start pays it; it is measured with
`python -X importtime` in a fresh process each time, so nothing is already imported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LAYER_ZIP = REPO_ROOT / "build" / "lambda_layer.zip"
"""Built by `python -m lambda_layer.build --out build/lambda_layer.zip` (`make layer`)."""

IMPORT_TARGETS: dict[str, str] = {
    "ours": "aws_cloudwatch_logs_handler",
    "watchtower": "watchtower",
    "boto3 (reference)": "boto3",
}
"""Who is measured, and the module each imports; boto3 alone shows what the SDK itself costs."""

_IMPORT_TIMEOUT_S = 120


def import_time_ms(module: str, env: dict[str, str]) -> float | None:
    """Return the cumulative import time of ``module`` in a fresh interpreter, in ms.

    None if the module does not import there.
    """
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=_IMPORT_TIMEOUT_S,
        check=False,
    )
    if completed.returncode != 0:
        return None
    # Lines read "import time: <self us> | <cumulative us> | <indented module name>".
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line.removeprefix("import time:").split("|")
        if len(fields) == 3 and fields[2].strip() == module:
            return int(fields[1]) / 1000
    return None


def import_times(reps: int, env: dict[str, str]) -> dict[str, list[float | None]]:
    """Measure each target ``reps`` times, interleaved, after one discarded warm-up each.

    The warm-up writes bytecode caches and pulls files into the page cache, which later runs
    (and real cold starts after deployment) do not pay for again.
    """
    for module in IMPORT_TARGETS.values():
        import_time_ms(module, env)
    times: dict[str, list[float | None]] = {name: [] for name in IMPORT_TARGETS}
    for _ in range(reps):
        for name, module in IMPORT_TARGETS.items():
            times[name].append(import_time_ms(module, env))
    return times


def layer_size_bytes(path: Path = LAYER_ZIP) -> int | None:
    """Return the layer zip's size, or None when it has not been built."""
    return path.stat().st_size if path.is_file() else None
