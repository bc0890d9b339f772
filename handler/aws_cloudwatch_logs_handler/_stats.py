"""Delivery counters: what was accepted, delivered, retried and dropped, and why."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal, get_args

DropReason = Literal[
    "queue_full",
    "too_old",
    "too_new",
    "expired",
    "invalid",
    "after_close",
    "undelivered_at_exit",
    "spool_corrupt",
]
"""Why a record or event was not delivered. Every drop is counted under one of these."""

DROP_REASONS: Final[tuple[DropReason, ...]] = get_args(DropReason)


@dataclass(frozen=True)
class DeliveryStats:
    """A consistent snapshot of one handler's counters, taken under the sender's lock.

    Attributes:
        records_accepted: records handed to the handler and queued for delivery.
        records_excluded: records not shipped on purpose (the SDK's own loggers, the sender thread).
        records_unformattable: records whose formatting raised; a fallback text was sent instead.
        events_delivered: events PutLogEvents accepted (a split record counts once per part).
        bytes_delivered: their size as AWS counts it (UTF-8 plus 26 bytes per event).
        batches: successful PutLogEvents calls.
        retries: failed attempts that were retried (throttling, outages, lost resources).
        events_queued: events waiting or in flight right now.
        bytes_queued: memory those events are counted as holding, bounded by ``max_queue_bytes``.
        dropped: events not delivered, by `DropReason` (zero reasons are absent).
    """

    records_accepted: int = 0
    records_excluded: int = 0
    records_unformattable: int = 0
    events_delivered: int = 0
    bytes_delivered: int = 0
    batches: int = 0
    retries: int = 0
    events_queued: int = 0
    bytes_queued: int = 0
    dropped: Mapping[DropReason, int] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def dropped_total(self) -> int:
        """Every event not delivered, whatever the reason."""
        return sum(self.dropped.values())


class Counters:
    """The mutable counters behind `DeliveryStats`; callers hold the sender's lock."""

    __slots__ = (
        "batches",
        "bytes_delivered",
        "dropped",
        "events_delivered",
        "records_accepted",
        "records_excluded",
        "records_unformattable",
        "retries",
    )

    def __init__(self) -> None:
        self.records_accepted = 0
        self.records_excluded = 0
        self.records_unformattable = 0
        self.events_delivered = 0
        self.bytes_delivered = 0
        self.batches = 0
        self.retries = 0
        self.dropped: Counter[DropReason] = Counter()

    def snapshot(self, *, events_queued: int, bytes_queued: int) -> DeliveryStats:
        """Freeze the counters into a `DeliveryStats`."""
        return DeliveryStats(
            records_accepted=self.records_accepted,
            records_excluded=self.records_excluded,
            records_unformattable=self.records_unformattable,
            events_delivered=self.events_delivered,
            bytes_delivered=self.bytes_delivered,
            batches=self.batches,
            retries=self.retries,
            events_queued=events_queued,
            bytes_queued=bytes_queued,
            dropped=MappingProxyType({r: n for r, n in self.dropped.items() if n}),
        )
