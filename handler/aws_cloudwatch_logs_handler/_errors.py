"""The package's exceptions.

Hierarchy::

    CloudWatchLogsHandlerError          base of everything this package raises
    └── ConfigurationError (ValueError) bad arguments, raised at construction with the fix

Delivery problems are never raised into the caller's logging call: they are counted in
`DeliveryStats` and reported on the side channel (see `_reporting`).
"""

from __future__ import annotations


class CloudWatchLogsHandlerError(Exception):
    """Base class of every exception this package raises."""


class ConfigurationError(CloudWatchLogsHandlerError, ValueError):
    """An argument or setting is invalid; the message says which and how to fix it."""
