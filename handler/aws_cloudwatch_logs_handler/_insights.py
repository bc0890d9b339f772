"""Running a CloudWatch Logs Insights query over a window and collecting its rows.

https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html
What a local endpoint cannot run is refused beforehand by `_local_endpoint`.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Final

from ._tail import LogReader, TailError, error_code

QUERY_POLL_START_S: Final = 0.5
QUERY_POLL_MAX_S: Final = 5.0
MAX_QUERY_POLLS: Final = 2_000
"""About 2.7 hours of polling at the longest interval: past AWS's 60-minute query timeout."""
DONE: Final = frozenset({"Complete", "Failed", "Cancelled", "Timeout", "Unknown"})


def run_query(
    reader: LogReader, log_group: str, query: str, *, start_ms: int, end_ms: int
) -> list[dict[str, str]]:
    """Run ``query`` over the window and return its rows as ``{field: value}``.

    Raises:
        TailError: if the query fails, is cancelled, times out, or the endpoint lacks Logs
            Insights.
    """
    from botocore.exceptions import ClientError

    try:
        started = reader.call(
            "start_query",
            logGroupName=log_group,
            startTime=start_ms // 1000,  # StartQuery takes seconds, not milliseconds
            endTime=-(-end_ms // 1000),
            queryString=query,
        )
    except ClientError as error:
        if error_code(error) in {"UnknownOperationException", "NotImplemented", "501"}:
            raise TailError(
                f"this endpoint does not support Logs Insights queries ({error_code(error)}): "
                "use --filter PATTERN instead, or run the query against AWS"
            ) from error
        raise
    query_id = started["queryId"]
    try:
        return _results(reader, query_id)
    except KeyboardInterrupt:
        # A running query keeps costing (it is billed by data scanned) until stopped.
        from botocore.exceptions import ClientError

        with suppress(ClientError):  # moto has no StopQuery; its queries finish at once anyway
            reader.client.stop_query(queryId=query_id)
        raise


def _results(reader: LogReader, query_id: str) -> list[dict[str, str]]:
    interval = QUERY_POLL_START_S
    for _ in range(MAX_QUERY_POLLS):
        result = reader.call("get_query_results", queryId=query_id)
        status = result.get("status", "Unknown")
        if status == "Complete":
            return [
                {cell["field"]: cell.get("value", "") for cell in row}
                for row in result.get("results", [])
            ]
        if status in DONE:
            raise TailError(f"the query ended with status {status}: check its syntax")
        reader.sleep(interval)
        interval = min(interval * 2, QUERY_POLL_MAX_S)
    raise TailError("the query did not finish: narrow the window with --since/--until")
