"""The retention type: exactly AWS's values, refused otherwise with the list of valid ones."""

from __future__ import annotations

import pytest

from aws_cloudwatch_logs_handler import (
    RETENTION_DAYS,
    CloudWatchLogsHandler,
    ConfigurationError,
    validate_retention_days,
)

AWS_VALUES = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192,
              2557, 2922, 3288, 3653)  # fmt: skip


def test_retention_days_are_exactly_the_values_aws_accepts() -> None:
    """RETENTION_DAYS lists the 22 values of PutRetentionPolicy, ascending."""
    assert RETENTION_DAYS == AWS_VALUES


@pytest.mark.parametrize("days", AWS_VALUES)
def test_every_valid_retention_is_accepted(days: int) -> None:
    """Each valid value passes validation unchanged."""
    assert validate_retention_days(days) == days


def test_none_means_never_expire() -> None:
    """None is accepted: the group keeps its events forever."""
    assert validate_retention_days(None) is None


@pytest.mark.parametrize("bad", [0, 2, 4, 366, 3654, -1, True, 7.0, "7"])
def test_invalid_retention_is_refused_at_construction_with_the_valid_list(bad: object) -> None:
    """A handler with an invalid ttl fails at construction, naming ttl and the valid values."""
    with pytest.raises(ConfigurationError) as caught:
        CloudWatchLogsHandler("/app", ttl=bad)  # type: ignore[arg-type]
    assert "ttl=" in str(caught.value)
    assert "3653" in str(caught.value) and "731" in str(caught.value)
    assert isinstance(caught.value, ValueError)
