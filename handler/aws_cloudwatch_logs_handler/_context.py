"""Fields bound to the current request: every record logged in its thread or task carries them.

The fields live in a `contextvars.ContextVar` holding an immutable mapping, so they follow the
code that logs, not a global: each asyncio task starts with a copy of its creator's context (a
`bind` inside one task never reaches its siblings), and each new thread starts with none. A thread
reused by a pool keeps what the previous job bound with `bind`; `bound` restores the previous
fields when its block ends, so use it there.
https://docs.python.org/3/library/contextvars.html
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, Final

_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})
_fields: Final[ContextVar[Mapping[str, Any]]] = ContextVar(
    "aws_cloudwatch_logs_handler_bound_fields", default=_EMPTY
)


def bind(**fields: Any) -> None:
    """Add ``fields`` to every record logged from now on in this thread or asyncio task.

    A field bound again takes the new value. The fields stay until `unbind`, or until the
    surrounding `bound` block ends.
    """
    if fields:
        _fields.set(MappingProxyType({**_fields.get(), **fields}))


def unbind(*names: str) -> None:
    """Stop adding the fields ``names`` (names that are not bound are ignored)."""
    current = _fields.get()
    if any(name in current for name in names):
        _fields.set(MappingProxyType({k: v for k, v in current.items() if k not in names}))


@contextmanager
def bound(**fields: Any) -> Iterator[Mapping[str, Any]]:
    """Bind ``fields`` for the block, then restore exactly the fields bound before it.

    Yields the fields bound inside the block. Safe in thread pools, where `bind` would outlive
    the job that called it.
    """
    token = _fields.set(MappingProxyType({**_fields.get(), **fields}))
    try:
        yield _fields.get()
    finally:
        _fields.reset(token)


def bound_fields() -> Mapping[str, Any]:
    """Return the fields bound in the current thread or task (a read-only mapping)."""
    return _fields.get()


def clear_bound() -> None:
    """Forget every field bound in the current thread or task (at the start of a request)."""
    _fields.set(_EMPTY)
