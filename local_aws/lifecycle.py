"""The context-manager protocol shared by the local stand-ins: start on entry, stop on exit."""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

_S = TypeVar("_S", bound="StartStop")


class StartStop:
    """Mixin for a service with ``start()`` and ``stop()``: ``with`` always stops it."""

    def start(self) -> object:
        """Start the service."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the service; safe to call more than once."""
        raise NotImplementedError

    def __enter__(self: _S) -> _S:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
