"""The PutLogEvents limits the bench judges batching against.

Kept here rather than imported from the library: a referee should not take its rules from the code
it is judging.
"""

from __future__ import annotations

from typing import Final

# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html
MAX_BATCH_BYTES: Final = 1_048_576
"""A batch's size: the UTF-8 bytes of every message plus `EVENT_OVERHEAD_BYTES` per event."""
EVENT_OVERHEAD_BYTES: Final = 26
MAX_BATCH_EVENTS: Final = 10_000
