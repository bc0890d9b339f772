"""A Lambda function whose module fails at import, so the runtime posts /runtime/init/error."""

from __future__ import annotations

from typing import Any

raise RuntimeError("broken at init on purpose")


def handler(event: dict[str, Any], context: Any) -> None:  # pragma: no cover (never imported)
    """Never reached: the import above fails first."""
