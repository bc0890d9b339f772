"""AWS limits the handler enforces itself, each with the page that states it.

botocore checks only required fields and minimums, and moto checks none of these: if we did not
hold them here, real AWS would refuse whole batches that every local test accepted.
"""

from __future__ import annotations

from typing import Final

# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html
MAX_BATCH_BYTES: Final = 1_048_576
"""A batch's size: the UTF-8 bytes of every message plus `EVENT_OVERHEAD_BYTES` per event."""
EVENT_OVERHEAD_BYTES: Final = 26
"""What AWS adds to each event's message bytes when it counts a batch."""
MAX_BATCH_EVENTS: Final = 10_000
MAX_BATCH_SPAN_MS: Final = 24 * 60 * 60 * 1000
"""The events of one batch may span at most 24 hours."""
MAX_EVENT_BYTES: Final = MAX_BATCH_BYTES - EVENT_OVERHEAD_BYTES
"""The largest message: alone in a batch, 1 MB less its overhead (the 1 MB event limit of 2025)."""
LEGACY_MAX_EVENT_BYTES: Final = 262_144 - EVENT_OVERHEAD_BYTES
"""The 256 KB event limit that applied before April 2025, for users who want to keep it."""
MAX_EVENT_AGE_MS: Final = 14 * 24 * 60 * 60 * 1000
"""Events older than 14 days are dropped by the service (reported in rejectedLogEventsInfo)."""
MAX_EVENT_FUTURE_MS: Final = 2 * 60 * 60 * 1000
"""Events more than 2 hours in the future are dropped by the service."""

# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html
MAX_LOG_GROUP_NAME_CHARS: Final = 512
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogStream.html
MAX_LOG_STREAM_NAME_CHARS: Final = 512
