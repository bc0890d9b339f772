"""The README's example app, from the wheel installed with `[cdk]` in a fresh venv, by the CLI.

This is what a user with their own CDK app does: no checkout, no infra/, no cdk-nag.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from cdk_cli import run_cdk_synth

pytestmark = pytest.mark.slow  # builds a wheel and a fresh venv, then runs the CDK CLI

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_EXAMPLE = re.compile(r"<!-- example-app:[^\n]*-->\n```python\n(.*?)```", re.DOTALL)


def _readme_example() -> str:
    match = _EXAMPLE.search((PROJECT_ROOT / "README.md").read_text(encoding="utf-8"))
    assert match, "README.md lost its example-app block"
    return match.group(1)


def test_readme_example_is_at_most_fifteen_lines_of_code() -> None:
    """The example stays short: at most 15 lines of code, blank lines and imports excepted."""
    lines = [
        line
        for line in _readme_example().splitlines()
        if line.strip() and not line.startswith(("from ", "import "))
    ]
    assert len(lines) <= 15, lines


@pytest.mark.slow
def test_readme_example_synthesizes_from_the_installed_wheel(tmp_path: Path) -> None:
    """pip-installed with [cdk] in a fresh venv, the README's app synthesizes with the CDK CLI."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), "."],
        cwd=PROJECT_ROOT,
        check=True,
        timeout=600,
    )
    (wheel,) = wheels.glob("aws_cloudwatch_logs_handler-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"{wheel}[cdk]"],
        check=True,
        timeout=900,
    )
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "app.py").write_text(_readme_example(), encoding="utf-8")
    (app_dir / "cdk.json").write_text(json.dumps({"app": f"{python} app.py"}), encoding="utf-8")
    result = run_cdk_synth(app_dir / "cdk.out", app_dir=app_dir)
    assert result.returncode == 0, result.stderr
    template = json.loads((app_dir / "cdk.out" / "MyLogs.template.json").read_text())
    # AWS::CDK::Metadata is CDK's own analytics, on by default in a user's app.
    types = sorted(
        resource["Type"]
        for resource in template["Resources"].values()
        if resource["Type"] != "AWS::CDK::Metadata"
    )
    assert types == [
        "AWS::CloudWatch::Alarm",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::Role",
        "AWS::Logs::LogGroup",
        "AWS::Logs::MetricFilter",
    ]
    # The installed package is the wheel's, not this checkout's.
    where = subprocess.run(
        [str(python), "-c", "import aws_cloudwatch_logs_handler.cdk as m; print(m.__file__)"],
        env={name: value for name, value in os.environ.items() if name != "PYTHONPATH"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(env_dir) in where
