"""What a local stand-in endpoint would answer wrongly: refused up front, with what to do instead.

moto 5's server (the project's local endpoint) runs only part of CloudWatch Logs' languages and
ignores the rest without a word:

- Logs Insights: ``fields`` (of ``@timestamp``, ``@message``, ``@logStream`` and ``@log`` only),
  ``sort`` and ``limit``; ``filter``, ``stats``, ``parse``... are skipped, so the table holds rows
  the query excludes.
- Filter patterns: terms that start with a letter, or one quoted phrase; any other pattern
  (JSON ``{ $.level = ... }``, space-delimited ``[...]``, ``?a ?b``, ``-term``) matches every event.

A viewer that printed such an answer would be wrong where it matters most, so on an endpoint that
is not AWS these are refused. AWS's own endpoints are never second-guessed.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit

from ._tail import TailError

LOCAL_QUERY_COMMANDS: Final = frozenset({"fields", "sort", "limit"})
_COMMAND: Final = re.compile(r"^\s*([A-Za-z]+)")
_AWS_HOST: Final = re.compile(r"(^|\.)(amazonaws\.com(\.cn)?|api\.aws)$")
# What moto's filter gets right: terms that start with a letter (all must appear), or one
# quoted phrase. A pattern that starts otherwise matches every event there.
_LOCAL_PATTERN: Final = re.compile(r'[A-Za-z][^\s"]*(\s+[A-Za-z][^\s"]*)*|"[^"]*"')


def is_aws_endpoint(endpoint_url: str) -> bool:
    """Tell whether ``endpoint_url`` is one of AWS's own endpoints (not a local stand-in)."""
    return bool(_AWS_HOST.search(urlsplit(endpoint_url).hostname or ""))


def query_commands(query: str) -> list[str]:
    """Return the commands of a Logs Insights ``query``, in order (``fields``, ``filter``...)."""
    return [m[1].lower() for part in query.split("|") if (m := _COMMAND.match(part))]


def check_query(query: str, endpoint_url: str) -> None:
    """Refuse a Logs Insights query that a local endpoint would answer wrongly.

    Raises:
        TailError: if ``endpoint_url`` is not AWS and ``query`` uses commands beyond
            ``fields``, ``sort`` and ``limit``.
    """
    if is_aws_endpoint(endpoint_url):
        return
    unsupported = sorted(set(query_commands(query)) - LOCAL_QUERY_COMMANDS)
    if unsupported:
        ignored = ", ".join(f"`{command}`" for command in unsupported)
        raise TailError(
            f"the endpoint {endpoint_url} is not AWS: local stand-ins such as moto carry out only "
            f"`fields`, `sort` and `limit` of a Logs Insights query and would ignore {ignored}, "
            "printing rows your query excludes. Against a local endpoint use --filter with a term "
            "or a quoted phrase; for this query, run against AWS (drop --endpoint-url and "
            "AWS_ENDPOINT_URL)"
        )


def check_filter(pattern: str, endpoint_url: str) -> None:
    """Refuse a filter pattern that a local endpoint would take as "every event".

    Raises:
        TailError: if ``endpoint_url`` is not AWS and ``pattern`` is neither terms nor one
            quoted phrase.
    """
    if is_aws_endpoint(endpoint_url) or _LOCAL_PATTERN.fullmatch(pattern):
        return
    raise TailError(
        f"the endpoint {endpoint_url} is not AWS: local stand-ins such as moto understand only "
        "terms that start with a letter, or one quoted phrase, in --filter, and would show every "
        f"event for {pattern!r}. "
        "Against a local endpoint use a term or a quoted phrase (--filter '\"connection reset\"'); "
        "for this pattern, run against AWS (drop --endpoint-url and AWS_ENDPOINT_URL)"
    )
