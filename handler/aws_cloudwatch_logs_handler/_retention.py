"""Retention periods that CloudWatch Logs accepts, as a type shared by the handler and the CDK app.

AWS accepts only these values for ``retentionInDays``; anything else fails at PutRetentionPolicy
time (and moto does not check it), so we refuse it at construction instead.
https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
"""

from __future__ import annotations

from typing import Final, Literal, TypeGuard, get_args

from ._errors import ConfigurationError

RetentionDays = Literal[
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
]  # fmt: skip
"""A number of days that ``PutRetentionPolicy`` accepts. "Never expire" is ``None``."""

RETENTION_DAYS: Final[tuple[RetentionDays, ...]] = get_args(RetentionDays)
"""Every valid retention, ascending."""


def is_retention_days(value: object) -> TypeGuard[RetentionDays]:
    """Tell whether ``value`` is one of the retention periods AWS accepts (bools are not)."""
    return type(value) is int and value in RETENTION_DAYS


def validate_retention_days(value: object, *, setting: str = "ttl") -> RetentionDays | None:
    """Return ``value`` if it is a valid retention or ``None``, else raise `ConfigurationError`.

    Args:
        value: the retention in days, or ``None`` for "never expire".
        setting: the argument's name, quoted in the error so the caller knows what to fix.
    """
    if value is None or is_retention_days(value):
        return value
    valid = ", ".join(str(days) for days in RETENTION_DAYS)
    raise ConfigurationError(
        f"{setting}={value!r} is not a retention CloudWatch Logs accepts; "
        f"use None (never expire) or one of: {valid}"
    )
