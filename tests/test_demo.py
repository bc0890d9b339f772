"""`make demo`'s program: the app and the sample function deliver, and it says what arrived."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_demo_prints_what_the_app_and_the_sample_function_delivered() -> None:
    """The demo (without the CDK deploy, covered by test_infra_deploy) shows both groups filled."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    done = subprocess.run(
        [sys.executable, "-m", "examples.demo", "--no-deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "log group /custom/application-logs  (retention: 1 days)" in out
    app_records = re.findall(r"^\S+Z .*\| (?:DEBUG|INFO|WARNING|ERROR|CRITICAL) +\| ", out, re.M)
    assert len(app_records) == 6 and "| Exception message." in out
    # The invocation found by its request id, i.e. by the stream the handler named after it.
    by_request = out.partition("--request-id")[2]
    for line in ("sample function initialised", "hello from Lambda", "delivered before return"):
        assert re.search(rf"^\S+Z {line}$", by_request, re.M), line
