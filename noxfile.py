"""The library's tests on every supported Python: ``make pythons`` (part of ``make test``).

Each session installs the library and the ``test`` group into a fresh virtualenv made from that
Python, runs every test that is not slow (leaving out those that need the CDK or the benchmark
peers, which the main suite runs), then runs Lambda's real runtime client (awslambdaric) over
the layer built from the sources, so that the layer is known to import under each runtime, and
the forks made below Python (uWSGI's), whose exit paths differ between versions (3.12 starts no
thread while the interpreter finalizes).

The interpreters come from pyenv's versions folder (the newest patch release of each supported
minor version), put first on PATH, so that neither pyenv's shims nor ``PYENV_VERSION`` matter.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
NOT_HERE = [
    "--ignore-glob=tests/test_infra_*.py",  # the CDK app: aws-cdk-lib and node
    "--ignore=tests/test_bench_smoke.py",  # the benchmark's peers (watchtower)
    "--ignore=tests/test_lifecycle.py",  # slow, and compares with watchtower
    "--ignore=tests/test_demo.py",  # deploys the CDK app
]
LAYER_UNDER_AWSLAMBDARIC = "imported_only_from_the_layer or small_invocation"
FORKS_BELOW_PYTHON = "below_python or uwsgi_master"

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True


def _put_pyenv_pythons_on_path() -> None:
    """Put the newest installed patch release of each supported version first on PATH.

    pyenv's shims answer only for the versions ``PYENV_VERSION`` selects, and a non-interactive
    shell (CI) may not have them at all; its versions' own bin folders always work.
    """
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if not root.is_dir():
        return
    found = []
    for minor in PYTHONS:
        patches = [p for p in root.glob(f"{minor}.*") if p.name[len(minor) + 1 :].isdigit()]
        if patches:
            newest = max(patches, key=lambda p: int(p.name[len(minor) + 1 :]))
            found.append(str(newest / "bin"))
    os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])


_put_pyenv_pythons_on_path()


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
    session.run(
        "pytest", "-p", "no:cacheprovider", "tests/test_lifecycle.py", "-k", FORKS_BELOW_PYTHON
    )
