"""How the viewer prints messages and query results (pure: text in, text out).

Three formats: ``short`` (time, level, logger, message; the level coloured on a terminal),
``json`` (one object per line, for ``jq``) and ``raw`` (the message exactly as logged).
Colour follows https://no-color.org: never when ``NO_COLOR`` is set, or when not on a terminal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Final, Literal, TextIO

from ._reassembly import LogMessage

OutputFormat = Literal["short", "json", "raw"]
FORMATS: Final[tuple[OutputFormat, ...]] = ("short", "json", "raw")

_RESET: Final = "\033[0m"
_LEVEL_COLOURS: Final = {
    "DEBUG": "\033[2m",  # dim
    "INFO": "\033[32m",  # green
    "WARN": "\033[33m",  # yellow
    "WARNING": "\033[33m",
    "ERROR": "\033[31m",  # red
    "CRITICAL": "\033[1;31m",  # bold red
    "FATAL": "\033[1;31m",
}
# A level word near the start of a text message, as logging's usual formats put it.
_TEXT_LEVEL: Final = re.compile(r"\b(DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\b")
_TEXT_LEVEL_WITHIN: Final = 120
# Keys that logging's JSON formatters (Powertools, awslambdaric, python-json-logger) use.
_LEVEL_KEYS: Final = ("level", "levelname", "log_level", "severity")
_LOGGER_KEYS: Final = ("logger", "name", "logger_name", "service")
_MESSAGE_KEYS: Final = ("message", "msg")
_TRACE_KEYS: Final = ("exception", "stackTrace", "exc_info")


def wants_colour(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Tell whether to colour output to ``stream``: a terminal, and no ``NO_COLOR``."""
    if environ.get("NO_COLOR") or environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def iso_time(timestamp_ms: int) -> str:
    """Return ``timestamp_ms`` as ISO 8601 in UTC, to the millisecond: ``...T12:00:00.123Z``."""
    moment = datetime.fromtimestamp(timestamp_ms / 1000, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp_ms % 1000:03d}Z"


def json_object(text: str) -> dict[str, Any] | None:
    """Return ``text`` parsed if it is a JSON object, else ``None``."""
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _first(fields: Mapping[str, Any], keys: Sequence[str]) -> Any:
    return next((fields[key] for key in keys if fields.get(key) not in (None, "")), None)


def _coloured(level: str, *, colour: bool) -> str:
    code = _LEVEL_COLOURS.get(level.strip().upper())
    return f"{code}{level}{_RESET}" if colour and code else level


def _missing_note(message: LogMessage) -> str:
    if not message.missing_parts:
        return ""
    missing = ", ".join(str(index) for index in message.missing_parts)
    return f"  [incomplete: part(s) {missing} of {message.total_parts} not found]"


def short(message: LogMessage, *, colour: bool) -> str:
    """Render ``message`` as one entry: time, level, logger, message (and its traceback)."""
    when = iso_time(message.timestamp_ms)
    fields = json_object(message.text)
    if fields is None:
        text = message.text
        found = _TEXT_LEVEL.search(text, 0, _TEXT_LEVEL_WITHIN)
        if found and colour:
            text = text[: found.start()] + _coloured(found[0], colour=True) + text[found.end() :]
        return f"{when} {text}{_missing_note(message)}"
    level = str(_first(fields, _LEVEL_KEYS) or "-")
    logger = str(_first(fields, _LOGGER_KEYS) or "-")
    body = _first(fields, _MESSAGE_KEYS)
    text = body if isinstance(body, str) else json.dumps(body if body is not None else fields)
    trace = _first(fields, _TRACE_KEYS)
    if isinstance(trace, list):
        trace = "".join(str(line) for line in trace)
    if trace:
        text = f"{text}\n{str(trace).rstrip()}"
    padded = _coloured(f"{level:<8}", colour=colour)
    return f"{when} {padded} {logger} {text}{_missing_note(message)}"


def as_json(message: LogMessage) -> str:
    """Render ``message`` as one JSON line; a JSON message stays an object under ``message``."""
    record: dict[str, Any] = {
        "timestamp": message.timestamp_ms,
        "time": iso_time(message.timestamp_ms),
        "stream": message.stream,
        "message": json_object(message.text) or message.text,
        "event_ids": list(message.event_ids),
    }
    if message.total_parts > 1:
        record["parts"] = message.total_parts
    if message.missing_parts:
        record["missing_parts"] = list(message.missing_parts)
    return json.dumps(record, ensure_ascii=False)


def render(message: LogMessage, output_format: OutputFormat, *, colour: bool) -> str:
    """Render ``message`` in ``output_format`` (without the final newline)."""
    if output_format == "json":
        return as_json(message)
    if output_format == "raw":
        return message.text
    return short(message, colour=colour)


def table(rows: Sequence[Mapping[str, str]], *, hidden: frozenset[str] = frozenset()) -> str:
    """Render query rows as a text table, columns in order of first appearance.

    Newlines inside a cell are shown as ``\\n`` so that each row stays on one line.
    """
    columns: list[str] = []
    for row in rows:
        columns.extend(name for name in row if name not in columns and name not in hidden)
    if not columns:
        return "(no results)"
    cells = [[row.get(name, "").replace("\n", "\\n") for name in columns] for row in rows]
    widths = [max([len(name)] + [len(line[i]) for line in cells]) for i, name in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        padded = [value.ljust(width) for value, width in zip(values[:-1], widths[:-1], strict=True)]
        return " | ".join([*padded, values[-1]]).rstrip()

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(columns), rule, *(line(values) for values in cells)])
