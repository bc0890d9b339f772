"""Log group and stream names: the rules AWS enforces, and the default stream name.

botocore does not check name patterns or maximum lengths and moto accepts anything, so a bad name
would first fail in production; we check at construction and say which rule was broken.
https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html
https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogStream.html
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Final

from ._errors import ConfigurationError
from ._limits import MAX_LOG_GROUP_NAME_CHARS, MAX_LOG_STREAM_NAME_CHARS

_GROUP_NAME: Final = re.compile(r"[.\-_/#A-Za-z0-9]+")
_STREAM_FORBIDDEN: Final = re.compile(r"[:*]")


def _check_length(setting: str, name: object, limit: int) -> str:
    """Return ``name`` if it is a string of 1 to ``limit`` characters, else raise."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"{setting} must be a non-empty string, got {name!r}")
    if len(name) > limit:
        raise ConfigurationError(
            f"{setting} {name[:40]!r}... has {len(name)} characters; the limit is {limit}"
        )
    return name


def validate_log_group_name(name: object) -> str:
    """Return ``name`` if CloudWatch Logs accepts it as a log group name, else raise.

    Raises:
        ConfigurationError: naming the rule that ``name`` breaks.
    """
    name = _check_length("log_group", name, MAX_LOG_GROUP_NAME_CHARS)
    if not _GROUP_NAME.fullmatch(name):
        bad = sorted({char for char in name if not _GROUP_NAME.fullmatch(char)})
        raise ConfigurationError(
            f"log_group {name!r} contains {''.join(bad)!r}; a log group name may only "
            "contain letters, digits and . - _ / #"
        )
    if name.startswith("aws/"):
        raise ConfigurationError(
            f"log_group {name!r} starts with 'aws/', which AWS reserves for its own services"
        )
    return name


def validate_log_stream_name(name: object) -> str:
    """Return ``name`` if CloudWatch Logs accepts it as a log stream name, else raise.

    Raises:
        ConfigurationError: naming the rule that ``name`` breaks.
    """
    name = _check_length("log_stream", name, MAX_LOG_STREAM_NAME_CHARS)
    if _STREAM_FORBIDDEN.search(name):
        raise ConfigurationError(
            f"log_stream {name!r} contains ':' or '*', which log stream names may not contain"
        )
    return name


def stream_name_part(text: str) -> str:
    """Make ``text`` safe inside a stream name: ``:`` and ``*`` become ``-``."""
    return _STREAM_FORBIDDEN.sub("-", text)


def dated_uuid_stream_name(now: datetime | None = None) -> str:
    """Return the default stream name outside Lambda, ``stream/YYYY/MM/DD/HHMM/<uuid4>`` (UTC).

    Dated, so the console lists streams in order; unique per handler, so no two writers share one.
    """
    import uuid  # here, not at import: it costs a Lambda cold start ~10 ms and Lambda never uses it

    moment = now if now is not None else datetime.now(timezone.utc)
    return f"stream/{moment:%Y/%m/%d/%H%M}/{uuid.uuid4()}"
