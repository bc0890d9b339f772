"""Building the CloudWatch Logs client from the handler's credential arguments.

boto3 is imported here, at the first client, never at package import: in Lambda that import is
most of a cold start's cost, and it can wait for the sender thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._errors import ConfigurationError
from ._version import __version__

ClientFactory = Callable[[], Any]

# Our sender retries without end on its own schedule (with jitter from its own generator, woken by
# flush), so botocore does not retry as well: its retries would double every wait on a dead
# endpoint and draw their jitter from the application's global `random` state. Short timeouts
# keep a dead endpoint from stalling the one sender thread; TCP keepalive notices a connection
# that died silently.
_CLIENT_CONFIG = {
    "retries": {"mode": "standard", "total_max_attempts": 1},  # one attempt, no retry
    "connect_timeout": 3,
    "read_timeout": 10,
    "tcp_keepalive": True,
    # We never send what botocore's validator would refuse (empty messages are replaced), and
    # validating 10,000 events per call costs the sender CPU for nothing.
    "parameter_validation": False,
    "user_agent_extra": f"aws-cloudwatch-logs-handler/{__version__}",
}


@dataclass(frozen=True)
class ClientSource:
    """Where the client comes from: explicit keys, a profile, a boto3 Session, or a ready client."""

    access_key: str | None = None
    secret_key: str | None = field(default=None, repr=False)  # never in a repr or a report
    region: str | None = None
    profile: str | None = None
    session: Any = None
    client: Any = None
    endpoint_url: str | None = None

    def __post_init__(self) -> None:
        """Refuse combinations that would leave it unclear which credentials are used."""
        if self.client is not None:
            others = self._given("access_key", "secret_key", "region", "profile", "session")
            others += self._given("endpoint_url")
            if others:
                raise ConfigurationError(
                    f"client= is a ready client; do not also pass {', '.join(others)} "
                    "(configure the client itself instead)"
                )
        if self.session is not None:
            others = self._given("access_key", "secret_key", "profile")
            if others:
                raise ConfigurationError(
                    f"session= carries its own credentials; do not also pass {', '.join(others)}"
                )
        if self.profile is not None and self._given("access_key", "secret_key"):
            raise ConfigurationError(
                "pass either profile= or access_key=/secret_key=, not both: "
                "they name two different credential sources"
            )
        if (self.access_key is None) != (self.secret_key is None):
            raise ConfigurationError(
                "access_key= and secret_key= go together: pass both, or neither to use "
                "boto3's default credential chain"
            )

    def _given(self, *names: str) -> list[str]:
        return [name for name in names if getattr(self, name) is not None]

    def build(self) -> Any:
        """Return a new client (never the shared default session: boto3's is not thread-safe)."""
        if self.client is not None:
            return self.client
        import boto3
        from botocore.config import Config

        if self.session is not None:
            session = self.session
        else:
            session = boto3.session.Session(
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                region_name=self.region,
                profile_name=self.profile,
            )
        kwargs: dict[str, Any] = {"config": Config(**_CLIENT_CONFIG)}  # type: ignore[arg-type]
        # botocore reads AWS_DEFAULT_REGION; Lambda and many containers set only AWS_REGION.
        region = self.region or (None if session.region_name else os.environ.get("AWS_REGION"))
        if region:
            kwargs["region_name"] = region
        if self.endpoint_url is not None:
            kwargs["endpoint_url"] = self.endpoint_url
        return session.client("logs", **kwargs)

    def build_after_fork(self) -> Any:
        """Return a client a forked child may use: never the parent's connections.

        A child that used the parent's connection pool would share its sockets (and perhaps a lock
        the parent's sender held at fork time), so a user-given client is rebuilt from its settings
        and credentials.
        """
        if self.client is None:
            return self.build()
        if not hasattr(self.client, "_request_signer"):
            return self.client  # not botocore's (a test double): nothing of the parent's to share
        import boto3

        parent = self.client
        credentials = getattr(getattr(parent, "_request_signer", None), "_credentials", None)
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
        session = boto3.session.Session(
            aws_access_key_id=frozen.access_key if frozen else None,
            aws_secret_access_key=frozen.secret_key if frozen else None,
            aws_session_token=frozen.token if frozen else None,
            region_name=parent.meta.region_name,
        )
        # ``verify`` (a private CA bundle, or off) is the endpoint's, not in ``meta.config``:
        # botocore keeps it on the client's HTTP session, where the child's client must get it.
        http_session = getattr(getattr(parent, "_endpoint", None), "http_session", None)
        verify = getattr(http_session, "_verify", None)
        return session.client(
            "logs",
            endpoint_url=parent.meta.endpoint_url,
            config=parent.meta.config,
            **({} if verify is None else {"verify": verify}),
        )
