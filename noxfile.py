"""The library's tests on every supported Python: ``make pythons`` (part of ``make test``).

Each session installs the library and the ``test`` group into a fresh virtualenv made from that
Python, runs every test that is not slow (leaving out those that need the CDK or the benchmark
peers, which the main suite runs), then runs Lambda's real runtime client (awslambdaric) over
the layer built from the sources, so that the layer is known to import under each runtime.

The interpreters come from pyenv: its shims answer only for the versions that ``PYENV_VERSION``
selects, so this file selects the newest installed patch release of each supported minor version.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
NOT_HERE = [
    "--ignore-glob=tests/test_infra_*.py",  # the CDK app: aws-cdk-lib and node
    "--ignore=tests/test_bench_smoke.py",  # the benchmark's peers (watchtower)
    "--ignore=tests/test_lifecycle.py",  # slow, and compares with watchtower
    "--ignore=tests/test_demo.py",  # deploys the CDK app
]
LAYER_UNDER_AWSLAMBDARIC = "imported_only_from_the_layer or small_invocation"

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True


def _select_pyenv_versions() -> None:
    """Let pyenv's shims answer for every supported minor version installed."""
    pyenv = shutil.which("pyenv")
    if pyenv is None or os.environ.get("PYENV_VERSION"):
        return
    # pyenv is our own tool, found on PATH; its arguments are fixed.
    out = subprocess.run(
        [pyenv, "versions", "--bare"], capture_output=True, text=True, check=False
    ).stdout
    chosen = []
    for minor in PYTHONS:
        patches = [v for v in out.split() if v.startswith(f"{minor}.") and v.count(".") == 2]
        if patches:
            chosen.append(max(patches, key=lambda v: int(v.rsplit(".", 1)[1])))
    if chosen:
        os.environ["PYENV_VERSION"] = ":".join(chosen)


_select_pyenv_versions()


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the library's tests, then awslambdaric over the layer, on one Python."""
    session.install("--quiet", "--upgrade", "pip")  # dependency groups need pip 25.1
    session.install("--quiet", "-e", ".", "--group", "test")
    session.run("pytest", "-m", "not slow", "-p", "no:cacheprovider", *NOT_HERE, *session.posargs)
    session.run(
        "pytest",
        "-m",
        "slow",
        "-p",
        "no:cacheprovider",
        "tests/test_lambda_e2e.py",
        "-k",
        LAYER_UNDER_AWSLAMBDARIC,
    )
