"""Shared fixtures: a moto server per session, fake credentials, and handlers that always close."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from handler_factory import HandlerFactory, handler_factory
from hypothesis import settings

from local_aws.moto_endpoint import MotoEndpoint, fake_aws_environment, running_moto_server

# The machine is shared and noisy (2 cores): a per-example deadline would fail for load, not bugs.
settings.register_profile("project", deadline=None, print_blob=True)
settings.load_profile("project")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoEndpoint]:
    """One moto server on 127.0.0.1 for the whole session; tests use unique group names."""
    with running_moto_server() as endpoint:
        yield endpoint


@pytest.fixture(autouse=True)
def _fake_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test can reach a real account: fake credentials and a fixed region."""
    for name, value in fake_aws_environment().items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)


@pytest.fixture
def make_handler() -> Iterator[HandlerFactory]:
    """Create handlers with `make_handler(group, **options)`; every one is closed afterwards."""
    yield from handler_factory()
