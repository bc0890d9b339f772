"""`JsonFormatter`: one JSON object per record, with the keys of Lambda's own JSON log format.

Logs Insights discovers the fields of JSON events, metric filters match them and field indexes
speed them up; flat text gets none of that. The schema is the one Lambda's advanced logging
controls write (``timestamp``, ``level``, ``message``, ``logger``, ``requestId``, and for
exceptions ``errorType``, ``errorMessage``, ``stackTrace``, ``location``), so queries written for
a function's own logs work on ours.
https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal

from ._context import bound_fields
from ._errors import ConfigurationError
from ._invocation import INVOCATIONS

Location = Literal["exceptions", "always", "never"]
"""When to add ``location`` (``path:function:line``): with an exception only, as Lambda does,
on every record, or never."""

_LOCATIONS: Final = ("exceptions", "always", "never")
# Every attribute a plain LogRecord has (this Python's: 3.12 added taskName), what
# `logging.Formatter.format` adds, and what Lambda's runtime puts on records: anything else on a
# record came from `extra=` (or a filter) and is the user's field.
_RESERVED: Final = frozenset(
    logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__
) | {"message", "asctime", "taskName", "aws_request_id", "tenant_id", "_frame_type"}
_MAX_REPR_CHARS: Final = 10_000


def _safe_repr(value: object) -> str:
    """``repr(value)``, or a description when ``__repr__`` itself raises; never raises."""
    try:
        text = repr(value)
    except Exception as error:
        return f"<unrepresentable {type(value).__name__}: {type(error).__name__}>"
    return text if len(text) <= _MAX_REPR_CHARS else text[:_MAX_REPR_CHARS] + "...'"


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return _safe_repr(value)


def _message(record: logging.LogRecord) -> object:
    """The record's message: a dict message stays an object (as Lambda keeps it), else text."""
    msg = record.msg
    if isinstance(msg, dict) and not record.args:
        return msg
    try:
        return record.getMessage()
    except Exception as error:  # bad %-arguments: keep what there is, say why
        return (
            f"{_safe_repr(msg)} % {_safe_repr(record.args)} "
            f"(not formatted: {type(error).__name__}: {_safe_str(error)})"
        )


class JsonFormatter(logging.Formatter):
    """Format each record as one JSON object with Lambda's JSON log keys; never raises.

    Works with any handler (``handler.setFormatter(JsonFormatter())``) and from
    ``logging.config.dictConfig`` (``{"()": "aws_cloudwatch_logs_handler.JsonFormatter", ...}``,
    the options as keys). The object holds, in order: ``timestamp`` (ISO 8601, UTC,
    milliseconds), ``level``, ``message`` (a dict message stays an object), ``logger``; with an
    exception ``stackTrace`` (a list, one entry per frame), ``errorType``, ``errorMessage`` and
    ``location``; ``requestId`` in Lambda; then the static fields, the fields bound with `bind`
    and the ``extra=`` fields, each later one winning over the earlier. Fields whose value is
    ``None`` are left out, as Lambda leaves them out.

    Args:
        rename: keys to write under another name, e.g. ``{"level": "severity"}``.
        drop: keys to leave out, e.g. ``("logger",)``.
        static_fields: fields added to every record, e.g. ``{"service": "checkout"}``.
        default: turns a value JSON cannot encode into one it can (e.g. ``str``); what it
            cannot turn, or where it raises, falls back to ``repr``.
        location: ``"exceptions"`` (Lambda's choice), ``"always"`` or ``"never"``.

    Raises:
        ConfigurationError: an option is invalid; the message names it and the fix.
    """

    def __init__(
        self,
        *,
        rename: Mapping[str, str] | None = None,
        drop: Iterable[str] = (),
        static_fields: Mapping[str, Any] | None = None,
        default: Callable[[Any], Any] | None = None,
        location: Location = "exceptions",
    ) -> None:
        super().__init__()
        self._rename = _check_rename(rename)
        self._drop = _check_drop(drop)
        if default is not None and not callable(default):
            raise ConfigurationError(f"default={default!r} must be a callable (e.g. str) or None")
        if location not in _LOCATIONS:
            raise ConfigurationError(
                f"location={location!r} must be one of {', '.join(map(repr, _LOCATIONS))}"
            )
        self._user_default = default
        self._location_always = location == "always"
        self._location_never = location == "never"
        # Compact separators: every byte is ingested and billed.
        self._encode = json.JSONEncoder(
            ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=self._default
        ).encode
        self._static = _check_static(static_fields, default)
        self._reshape = bool(self._rename or self._drop)
        self._second = -1
        self._second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        """Return ``record`` as one line of JSON; on any failure, still a JSON object."""
        try:
            return self._encode_fields(self.fields(record))
        except Exception as error:
            return _fallback(record, error)

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """Return the fields `format` encodes for ``record``, renamed and dropped as configured."""
        created = record.created
        second = int(created)
        if second != self._second:  # one strftime per second; a race only recomputes it
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        millis = int((created - second) * 1000)
        fields: dict[str, Any] = {
            "timestamp": f"{self._second_text}.{millis:03d}Z",
            "level": record.levelname,
            "message": _message(record),
            "logger": record.name,
        }
        exc_info = record.exc_info
        failed = bool(exc_info and exc_info[0] is not None)
        if failed and exc_info:
            fields["stackTrace"] = traceback.format_tb(exc_info[2])
            fields["errorType"] = exc_info[0].__name__ if exc_info[0] else "Exception"
            fields["errorMessage"] = _safe_str(exc_info[1])
        attributes = record.__dict__
        request_id = attributes.get("aws_request_id")
        if request_id is None:
            invocation = INVOCATIONS.current
            request_id = invocation.request_id if invocation is not None else None
        if request_id is not None:
            fields["requestId"] = request_id
        if (failed or self._location_always) and not self._location_never:
            fields["location"] = f"{record.pathname}:{record.funcName}:{record.lineno}"
        tenant_id = attributes.get("tenant_id")
        if tenant_id is not None:
            fields["tenantId"] = tenant_id
        if record.stack_info:
            fields["stackInfo"] = record.stack_info
        bound = bound_fields()
        extra = attributes.keys() - _RESERVED  # one C-level pass; usually empty
        if self._static or bound or extra:
            added = {**self._static, **bound}
            if extra:
                added.update((key, attributes[key]) for key in attributes if key in extra)
            for key, value in added.items():
                if value is not None and key not in fields:
                    fields[key] = value
        if self._reshape:
            rename, drop = self._rename, self._drop
            return {rename.get(k, k): v for k, v in fields.items() if k not in drop}
        return fields

    def _encode_fields(self, fields: dict[str, Any]) -> str:
        try:
            return self._encode(fields)
        except Exception:  # circular, NaN, a key JSON refuses: find the culprit field by field
            return self._encode({key: self._encodable(value) for key, value in fields.items()})

    def _encodable(self, value: Any) -> Any:
        try:
            self._encode(value)
        except Exception:
            return _safe_repr(value)
        return value

    def _default(self, value: Any) -> Any:
        """The encoder's hook for a value it cannot encode: the user's ``default``, else repr."""
        if self._user_default is not None:
            try:
                return self._user_default(value)
            except Exception:
                return _safe_repr(value)
        return _safe_repr(value)


def _fallback(record: logging.LogRecord, error: BaseException) -> str:
    """A JSON object for a record the formatter could not format (a bug, a broken attribute)."""
    try:
        return json.dumps(
            {
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
                "level": _safe_str(record.levelname),
                "message": _safe_repr(record.msg),
                "logger": _safe_str(record.name),
                "formatError": f"{type(error).__name__}: {_safe_str(error)}",
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
    except Exception:
        return '{"message":"unformattable log record","formatError":"see the handler"}'


def _check_rename(rename: Mapping[str, str] | None) -> dict[str, str]:
    if rename is None:
        return {}
    if not isinstance(rename, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in rename.items()
    ):
        raise ConfigurationError(
            f"rename={rename!r} must map key names to new, non-empty names, e.g. "
            "{'level': 'severity'}"
        )
    targets = list(rename.values())
    if len(set(targets)) != len(targets):
        raise ConfigurationError(f"rename={rename!r} gives two keys the same name")
    return dict(rename)


def _check_drop(drop: Iterable[str]) -> frozenset[str]:
    if isinstance(drop, str) or not all(isinstance(name, str) for name in drop):
        raise ConfigurationError(
            f"drop={drop!r} must be a list of key names, e.g. ['logger'] (not one string)"
        )
    return frozenset(drop)


def _check_static(
    static_fields: Mapping[str, Any] | None, default: Callable[[Any], Any] | None
) -> dict[str, Any]:
    if static_fields is None:
        return {}
    if not isinstance(static_fields, Mapping) or not all(isinstance(k, str) for k in static_fields):
        raise ConfigurationError(
            f"static_fields={static_fields!r} must map names to values, e.g. "
            "{'service': 'checkout', 'environment': 'prod'}"
        )
    fields = dict(static_fields)
    try:  # strictly, without the repr fallback: a constant should be right once, not every time
        json.dumps(fields, allow_nan=False, default=default)
    except Exception as error:
        raise ConfigurationError(
            f"static_fields={static_fields!r} must be JSON-encodable ({error}); pass plain "
            "strings, numbers, lists and dicts"
        ) from error
    return fields
