"""`PlainFormat`: a plain `logging.Formatter`'s text, byte for byte, with its time made once a
second; and the handler formatting through it."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from handler_factory import HandlerFactory
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from aws_cloudwatch_logs_handler._plain_format import PlainFormat, is_plain_formatter

BENCH_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
FORMATTERS: dict[str, Any] = {
    "percent": lambda: logging.Formatter(BENCH_FORMAT),
    "brace": lambda: logging.Formatter("{asctime} [{levelname}] {message}", style="{"),
    "dollar": lambda: logging.Formatter("$asctime $name: $message", style="$"),
    "no-time": lambda: logging.Formatter("%(levelname)s %(message)s"),
    "datefmt": lambda: logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S %z %Z"),
    "defaults": lambda: logging.Formatter(
        "%(asctime)s %(user)s %(message)s", defaults={"user": "nobody"}
    ),
    "utc": lambda: _with(logging.Formatter(BENCH_FORMAT), converter=time.gmtime),
    "dotted-msecs": lambda: _with(logging.Formatter(BENCH_FORMAT), default_msec_format="%s.%03d"),
    "no-msecs": lambda: _with(logging.Formatter(BENCH_FORMAT), default_msec_format=None),
    "iso-seconds": lambda: _with(
        logging.Formatter(BENCH_FORMAT), default_time_format="%Y-%m-%dT%H:%M:%S"
    ),
}
_YEAR_2100 = 4_102_444_800.0


def _with(formatter: logging.Formatter, **attributes: object) -> logging.Formatter:
    for name, value in attributes.items():
        setattr(formatter, name, value)
    return formatter


def _record(created: float, message: str = "record %d", number: int = 7) -> logging.LogRecord:
    record = logging.LogRecord("app.part", logging.INFO, __file__, 12, message, (number,), None)
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    return record


def _both(
    plain: PlainFormat, formatter: logging.Formatter, created: float, message: str = "record %d"
) -> tuple[str, str]:
    """The text PlainFormat writes and the formatter's own, each for its own copy of a record;
    the attributes each set on its record must agree too."""
    ours, theirs = _record(created, message), _record(created, message)
    texts = plain.format(ours), formatter.format(theirs)
    assert ours.message == theirs.message
    assert getattr(ours, "asctime", None) == getattr(theirs, "asctime", None)
    return texts


@pytest.fixture
def posix_time_zone() -> Iterator[None]:
    """New York's rules written out (no tz database needed): the clocks go forward on
    2026-03-08 at 07:00 UTC and back on 2026-11-01 at 06:00 UTC."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "EST5EDT,M3.2.0,M11.1.0"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.mark.parametrize("kind", sorted(FORMATTERS))
@settings(max_examples=60, deadline=None)
@given(
    times=st.lists(
        st.floats(min_value=0.0, max_value=_YEAR_2100, allow_nan=False), min_size=1, max_size=30
    ),
    message=st.text(max_size=20).map(lambda text: text.replace("%", "%%") + " %d"),
)
def test_it_writes_what_the_formatter_writes_at_any_time(
    kind: str, times: list[float], message: str
) -> None:
    """For any record times, in any order, each text is the formatter's own, byte for byte."""
    formatter = FORMATTERS[kind]()
    plain = PlainFormat(formatter)
    for created in times:
        ours, theirs = _both(plain, formatter, created, message)
        assert ours == theirs


@pytest.mark.parametrize("kind", sorted(FORMATTERS))
def test_it_writes_what_the_formatter_writes_across_second_and_clock_changes(
    kind: str, posix_time_zone: None
) -> None:
    """Records on both sides of a second, and through the hours the clocks go forward and back
    (local time repeats an hour), get the formatter's own text."""
    formatter = FORMATTERS[kind]()
    plain = PlainFormat(formatter)
    spring, autumn = 1_772_953_200.0, 1_793_512_800.0  # 2026-03-08 07:00, 2026-11-01 06:00 UTC
    for change in (spring, autumn):
        for offset in (-3600.5, -1.0, -0.001, 0.0, 0.0004, 0.999, 1.0, 1799.9995, 3600.0):
            for created in (change + offset, change + offset + 0.25):
                ours, theirs = _both(plain, formatter, created)
                assert ours == theirs


@pytest.mark.usefixtures("posix_time_zone")
def test_a_change_to_the_formatter_shows_on_the_next_record_within_the_second() -> None:
    """Setting the converter, ``datefmt`` or the millisecond format while logging changes the
    very next record's text, as it does the formatter's."""
    formatter = logging.Formatter(BENCH_FORMAT)
    plain = PlainFormat(formatter)
    created = 1_780_000_000.125
    changes: list[tuple[str, object]] = [
        ("converter", time.gmtime),
        ("default_msec_format", "%s.%03d"),
        ("datefmt", "%d/%m/%Y %H:%M:%S"),
        ("converter", time.localtime),
    ]
    texts = [plain.format(_record(created))]
    for name, value in changes:
        setattr(formatter, name, value)
        ours, theirs = _both(plain, formatter, created)
        assert ours == theirs
        texts.append(ours)
    assert len(set(texts)) == len(texts), texts


def test_a_format_swapped_on_the_formatter_shows_on_the_next_record_within_the_second() -> None:
    """A formatter whose format is replaced while logging (its style object, with or without
    the time) writes the new format from the next record on."""
    formatter = logging.Formatter("%(message)s")
    plain = PlainFormat(formatter)
    created = 1_780_000_000.125
    for fmt in ("%(message)s", "%(asctime)s|%(message)s", "%(message)s", "[%(asctime)s]"):
        formatter._style = logging.PercentStyle(fmt)
        formatter._fmt = formatter._style._fmt
        ours, theirs = _both(plain, formatter, created)
        assert ours == theirs


def test_records_with_an_exception_or_a_stack_get_the_formatters_text() -> None:
    """A record with ``exc_info`` or ``stack_info`` is written out by the formatter itself,
    also in a second whose time text is already made."""
    formatter = logging.Formatter(BENCH_FORMAT)
    plain = PlainFormat(formatter)
    plain.format(_record(1_780_000_000.25))
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failing, failing_too = _record(1_780_000_000.5), _record(1_780_000_000.5)
        failing.exc_info = failing_too.exc_info = sys.exc_info()
    stacked, stacked_too = _record(1_780_000_000.5), _record(1_780_000_000.5)
    stacked.stack_info = stacked_too.stack_info = "Stack (most recent call last):\n  here"
    assert plain.format(failing) == formatter.format(failing_too)
    assert "RuntimeError: boom" in plain.format(failing)
    assert plain.format(stacked) == formatter.format(stacked_too)


def test_a_converter_that_reads_the_fraction_is_honoured() -> None:
    """A converter of the application's own may use the fraction of a second: its text is the
    formatter's for every record, never one kept from earlier in the second."""

    def half_second_later(created: float | None) -> time.struct_time:
        return time.gmtime((created or 0.0) + 0.5)

    formatter = _with(logging.Formatter(BENCH_FORMAT), converter=half_second_later)
    plain = PlainFormat(formatter)
    for created in (1_780_000_000.1, 1_780_000_000.6, 1_780_000_000.9):
        ours, theirs = _both(plain, formatter, created)
        assert ours == theirs


def test_subclasses_and_formatters_with_their_own_methods_are_not_plain() -> None:
    """A subclass, or a formatter given its own ``formatTime``, formats its own way; PlainFormat
    then leaves every record to it."""

    class Stamped(logging.Formatter):
        def formatTime(  # noqa: N802  # logging's name
            self, record: logging.LogRecord, datefmt: str | None = None
        ) -> str:
            return f"t={record.created:.3f}"

    own_method = _with(logging.Formatter(BENCH_FORMAT), formatTime=lambda record, datefmt=None: "T")
    assert is_plain_formatter(logging.Formatter(BENCH_FORMAT))
    for formatter in (Stamped(BENCH_FORMAT), own_method):
        assert not is_plain_formatter(formatter)
        plain = PlainFormat(formatter)
        for created in (1_780_000_000.1, 1_780_000_000.6):
            ours, theirs = _both(plain, formatter, created)
            assert ours == theirs


def test_a_formatter_patched_while_in_use_is_followed_from_the_next_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Replacing `logging.Formatter.formatTime` on the class after logging began (as some
    libraries do to log in UTC) shows from the next second on, and for good."""
    formatter = logging.Formatter(BENCH_FORMAT)
    plain = PlainFormat(formatter)
    assert plain.format(_record(1_780_000_000.1)) == formatter.format(_record(1_780_000_000.1))
    monkeypatch.setattr(logging.Formatter, "formatTime", lambda self, record, datefmt=None: "T")
    for created in (1_780_000_001.2, 1_780_000_001.7, 1_780_000_002.3):
        ours, theirs = _both(plain, formatter, created)
        assert ours == theirs
        assert ours.startswith("T INFO app.part record 7")


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.mark.usefixtures("aws", "posix_time_zone")
def test_the_handler_delivers_the_formatters_text_for_each_record(
    make_handler: HandlerFactory,
) -> None:
    """With a plain `logging.Formatter` (the usual set-up), each delivered message is the text
    that formatter writes for the record, within a second and across seconds, and a converter
    set while logging applies from the next record."""
    handler = make_handler(log_stream="plain")
    formatter = logging.Formatter(BENCH_FORMAT)
    handler.setFormatter(formatter)
    second = float(int(time.time()) - 5)
    times = [second + 0.001, second + 0.5, second + 0.999, second + 1.0]
    expected = [formatter.format(_record(created, number=n)) for n, created in enumerate(times)]
    for number, created in enumerate(times):
        handler.handle(_record(created, number=number))
    formatter.converter = time.gmtime  # set while logging
    handler.handle(_record(second + 1.0, number=4))
    expected.append(formatter.format(_record(second + 1.0, number=4)))
    assert handler.flush(timeout_s=10)
    client = boto3.session.Session(region_name="us-east-1").client("logs")
    events = client.get_log_events(
        logGroupName=handler.log_group_name, logStreamName="plain", startFromHead=True
    )["events"]
    assert [event["message"] for event in events] == expected
    utc_time = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(second + 1.0))
    assert expected[4].startswith(f"{utc_time},000 INFO")
    assert not expected[3].startswith(utc_time)  # New York's time, the same second
