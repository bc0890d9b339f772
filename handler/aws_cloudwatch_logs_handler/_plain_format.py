"""A plain `logging.Formatter`'s text for a record, with its time written once a second.

`logging.Formatter.format` spends about half its time in ``formatTime``: a ``time.localtime`` and
a ``time.strftime`` for every record, for a text that changes once a second (then the
milliseconds are added). Most applications use `logging.Formatter` itself, with a format such
as ``"%(asctime)s %(levelname)s %(name)s %(message)s"``. For that formatter the handler writes
each record's text as the formatter would, byte for byte, and keeps the second's time text:

- only for `logging.Formatter` itself, not a subclass (which may format time its own way), whose
  converter is ``time.localtime`` or ``time.gmtime`` (their result depends only on the whole
  second; another converter may read the fraction);
- the converter, ``datefmt``, ``default_time_format``, ``default_msec_format`` and the format
  (its style object) are read on every record, so a change to them
  (``formatter.converter = time.gmtime``) shows at once;
- a record with an exception or a stack goes to the formatter itself (it writes them out);
- once a second, when the time text is made again, the first record is also formatted by the
  formatter itself and the two texts compared, and the formatter's methods are checked to be
  the standard library's: a formatter patched or changed meanwhile, a Python whose formatter
  writes differently, or anything else that makes the texts differ sends every later record to
  the formatter itself. A change of time zone (``time.tzset``) or of ``LC_TIME`` locale shows
  from the next second.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Final

_FORMATTER_METHODS: Final = ("format", "formatTime", "formatMessage", "usesTime")
_STANDARD_METHODS: Final = {name: logging.Formatter.__dict__[name] for name in _FORMATTER_METHODS}
_WHOLE_SECOND_CONVERTERS: Final = (time.localtime, time.gmtime)
"""Converters whose result depends only on the whole second (both floor the time they get)."""
_NO_SECOND: Final = (math.nan, None, None, None, False, "")


def is_plain_formatter(formatter: logging.Formatter) -> bool:
    """Tell whether ``formatter`` is `logging.Formatter` itself, with its methods unchanged."""
    return (
        type(formatter) is logging.Formatter
        and all(logging.Formatter.__dict__.get(n) is m for n, m in _STANDARD_METHODS.items())
        and not any(name in vars(formatter) for name in _FORMATTER_METHODS)
    )


def fastest_format(formatter: logging.Formatter) -> PlainFormat | logging.Formatter:
    """What to format with for ``formatter``'s text: `PlainFormat` when it is a plain one, else
    the formatter itself (a subclass formats its own way)."""
    return PlainFormat(formatter) if is_plain_formatter(formatter) else formatter


class PlainFormat:
    """Formats records exactly as a plain `logging.Formatter` does, its time text kept a second.

    Safe to share between threads: the second's state is one tuple, replaced whole; two threads
    that start a second at once each make its text.
    """

    __slots__ = ("_formatter", "_second", "_standard_only")

    def __init__(self, formatter: logging.Formatter) -> None:
        self._formatter = formatter
        self._second: tuple[float, Any, str | None, Any, bool, str] = _NO_SECOND
        """The second (floored); the converter, time format and format style its text was made
        with; whether that style writes the time at all; the text without milliseconds."""
        self._standard_only = False
        """Set for good once a second's check finds the formatter writes otherwise."""

    def format(self, record: logging.LogRecord) -> str:
        """Return ``formatter.format(record)``'s text, and set the record's attributes as it does
        (``message``, and ``asctime`` when the format writes the time)."""
        formatter = self._formatter
        if self._standard_only or record.exc_info or record.exc_text or record.stack_info:
            return formatter.format(record)
        datefmt = formatter.datefmt
        converter = formatter.converter
        time_format = datefmt or formatter.default_time_format
        second = self._second
        if (
            second[0] != record.created // 1
            or second[1] is not converter
            or second[2] is not time_format
            or second[3] is not formatter._style
        ):
            return self._start_second(record, converter, time_format)
        record.message = record.getMessage()
        if second[4]:
            msec_format = None if datefmt else formatter.default_msec_format
            record.asctime = msec_format % (second[5], record.msecs) if msec_format else second[5]
        return formatter.formatMessage(record)

    def _start_second(self, record: logging.LogRecord, converter: Any, time_format: str) -> str:
        """Make the time text of ``record``'s second, check the formatter still writes what we
        would, and return the formatter's own text for the record."""
        formatter = self._formatter
        created = record.created
        standard = formatter.format(record)
        if converter not in _WHOLE_SECOND_CONVERTERS or not math.isfinite(created):
            return standard  # this record's time text may hang on more than its second
        if not is_plain_formatter(formatter):
            self._standard_only = True  # patched or changed since: the formatter's, for good
            return standard
        uses_time = formatter.usesTime()
        text = time.strftime(time_format, converter(created)) if uses_time else ""
        self._second = (created // 1, converter, time_format, formatter._style, uses_time, text)
        if self.format(record) != standard:
            self._standard_only = True
        return standard
