"""The command line: ``python -m aws_cloudwatch_logs_handler tail LOG_GROUP`` (or the console
script ``aws-cloudwatch-logs-handler``), to see what arrived without the console or the AWS CLI.

Credentials, region and endpoint come from boto3's default chain (``AWS_PROFILE``,
``AWS_ENDPOINT_URL``, ``AWS_REGION``...), or from ``--profile``, ``--region``, ``--endpoint-url``.
Every failure a user can fix is printed as one line naming the fix, with status 1.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final, TextIO

from . import _local_endpoint
from ._client import ClientSource
from ._errors import ConfigurationError
from ._insights import run_query
from ._names import validate_log_group_name
from ._reassembly import LogMessage
from ._render import FORMATS, iso_time, render, table, wants_colour
from ._tail import (
    Backoff,
    Follower,
    LogReader,
    Selection,
    TailError,
    error_code,
    read_window,
    request_streams,
)

PROG: Final = "aws-cloudwatch-logs-handler"
DEFAULT_SINCE: Final = "10m"
_UNITS_S: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_RELATIVE: Final = re.compile(r"(\d+)\s*([smhdw])")
_CREDENTIAL_CODES: Final = frozenset(
    {"UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException"}
)
EXIT_ERROR: Final = 1
EXIT_INTERRUPTED: Final = 130


def parse_time(text: str, *, now_ms: int) -> int:
    """Return the time ``text`` names, in ms since the epoch: ``10m``/``2h``/``3d`` ago, or ISO.

    An ISO time without an offset is taken as UTC (the times the viewer prints are UTC).

    Raises:
        ConfigurationError: naming the accepted forms.
    """
    relative = _RELATIVE.fullmatch(text.strip())
    if relative:
        return now_ms - int(relative[1]) * _UNITS_S[relative[2]] * 1000
    iso = text.strip()
    if iso.endswith(("Z", "z")):  # Python 3.10's fromisoformat does not read "Z"
        iso = iso[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise ConfigurationError(
            f"cannot read the time {text!r}: give a duration ago (30s, 10m, 2h, 3d, 1w) or an "
            "ISO time (2026-05-09T14:30:00Z, 2026-05-09)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the whole command line (one subcommand today: ``tail``)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Tools for aws-cloudwatch-logs-handler."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    tail = commands.add_parser(
        "tail",
        help="print what arrived in a log group",
        description="Print a log group's events, oldest first across streams, with the "
        "handler's split messages joined back. Times are printed in UTC.",
    )
    tail.add_argument("log_group", metavar="LOG_GROUP")
    tail.add_argument(
        "--since",
        default=DEFAULT_SINCE,
        help="start of the window: 30s, 10m, 2h, 3d, 1w ago, or an ISO time (default: 10m)",
    )
    tail.add_argument("--until", help="end of the window, same forms as --since (default: now)")
    tail.add_argument(
        "--follow", "-f", action="store_true", help="keep printing new events until Ctrl-C"
    )
    streams = tail.add_mutually_exclusive_group()
    streams.add_argument("--stream", metavar="PREFIX", help="only streams starting with PREFIX")
    streams.add_argument(
        "--request-id",
        metavar="ID",
        help="only the events of one Lambda invocation (its stream is named by the request id)",
    )
    tail.add_argument("--filter", metavar="PATTERN", help="a CloudWatch Logs filter pattern")
    tail.add_argument("--format", choices=FORMATS, default="short", help="default: short")
    tail.add_argument(
        "--query",
        metavar="QUERY",
        help="run a Logs Insights query over the window and print its table",
    )
    tail.add_argument("--profile", help="an AWS profile (default: boto3's chain, AWS_PROFILE)")
    tail.add_argument("--region", help="an AWS region (default: AWS_REGION, the profile's)")
    tail.add_argument(
        "--endpoint-url", help="another endpoint, e.g. a local one (AWS_ENDPOINT_URL)"
    )
    return parser


@dataclass(frozen=True)
class Output:
    """Where and how the command writes: the I/O seam of `main`."""

    out: TextIO
    err: TextIO
    colour: bool

    def note(self, text: str) -> None:
        """Say something to the user on stderr, never mixed into the events."""
        print(f"{PROG}: {text}", file=self.err, flush=True)


def _check_options(args: argparse.Namespace) -> None:
    if args.follow and (args.until or args.query):
        raise ConfigurationError(
            "--follow prints new events until Ctrl-C: drop --until"
            if args.until
            else "--query runs once over the window: drop --follow"
        )
    if args.query and (args.stream or args.request_id or args.filter):
        raise ConfigurationError(
            "--query selects with its own `filter`: drop --stream/--request-id/--filter, e.g. "
            "--query 'fields @timestamp, @message | filter @logStream like /PREFIX/'"
        )


def _client(args: argparse.Namespace) -> Any:
    return ClientSource(
        profile=args.profile, region=args.region, endpoint_url=args.endpoint_url
    ).build()


def tail(
    args: argparse.Namespace,
    *,
    client: Any,
    output: Output,
    now_ms: Callable[[], int],
    sleep: Callable[[float], None],
) -> int:
    """Carry out ``tail`` with a ready client; return the exit status."""
    now = now_ms()
    start_ms = parse_time(args.since, now_ms=now)
    end_ms = parse_time(args.until, now_ms=now) if args.until else now
    if start_ms > end_ms:
        raise ConfigurationError(
            f"--since ({iso_time(start_ms)}) is after --until ({iso_time(end_ms)}): swap them"
        )
    endpoint = str(client.meta.endpoint_url)
    if args.filter:
        _local_endpoint.check_filter(args.filter, endpoint)
    # Following never gives up on throttling: the quota is shared, and waiting is the fix.
    backoff = Backoff(max_retries=None) if args.follow else Backoff()
    reader = LogReader(client, backoff=backoff, sleep=sleep, on_retry=output.note)
    if args.query:
        _local_endpoint.check_query(args.query, endpoint)
        rows = run_query(reader, args.log_group, args.query, start_ms=start_ms, end_ms=end_ms)
        _print_rows(rows, args.format, output)
        return 0
    selection = Selection(args.log_group, stream_prefix=args.stream, filter_pattern=args.filter)
    if args.request_id:
        names = request_streams(
            reader, args.log_group, args.request_id, start_ms=start_ms, end_ms=end_ms
        )
        if not names:
            raise TailError(
                f"no stream of {args.log_group} is named for request {args.request_id} between "
                f"{iso_time(start_ms)} and {iso_time(end_ms)}: widen --since, or, for streams "
                "per execution environment (per_environment_stream=True), search the text: "
                f"--filter '\"{args.request_id}\"'"
            )
        selection = Selection(args.log_group, stream_names=tuple(names), filter_pattern=args.filter)

    def show(message: LogMessage) -> None:
        output.out.write(render(message, args.format, colour=output.colour) + "\n")
        output.out.flush()

    if not args.follow:
        messages = read_window(reader, selection, start_ms=start_ms, end_ms=end_ms)
        for message in messages:
            show(message)
        if not messages:
            output.note(
                f"no events in {args.log_group} between {iso_time(start_ms)} and "
                f"{iso_time(end_ms)} (widen --since?)"
            )
        return 0
    follower = Follower(reader, selection, start_ms, now_ms=now_ms)
    try:
        follower.run(show)
    except KeyboardInterrupt:
        for message in follower.finish():
            show(message)
    return 0


def _print_rows(rows: list[dict[str, str]], output_format: str, output: Output) -> None:
    for row in rows:
        stamp = row.get("@timestamp", "")
        if stamp.isdigit():  # moto gives epoch milliseconds where AWS gives a UTC date-time
            row["@timestamp"] = iso_time(int(stamp))
    if output_format == "json":
        import json

        for row in rows:
            output.out.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        output.out.write(table(rows, hidden=frozenset({"@ptr"})) + "\n")


def explain(error: BaseException, args: argparse.Namespace, client: Any) -> str | None:
    """Return one line naming the fix for ``error``, or ``None`` if it is not a user's to fix."""
    from botocore.exceptions import ClientError

    if isinstance(error, (ConfigurationError, TailError)):
        return str(error)
    if isinstance(error, ClientError):
        where = f" in {client.meta.region_name} at {client.meta.endpoint_url}"
        return _explain_client_error(error, args, where)
    return _explain_setup_error(error, args, client)


def _explain_setup_error(error: BaseException, args: argparse.Namespace, client: Any) -> str | None:
    """Name the fix for a profile, region, credentials or endpoint that boto3 could not use."""
    from botocore import exceptions as boto

    if isinstance(error, boto.ProfileNotFound):
        return (
            f"the profile {args.profile or os.environ.get('AWS_PROFILE')!r} is not in "
            "~/.aws/config or ~/.aws/credentials: check --profile / AWS_PROFILE "
            "(`aws configure list-profiles`)"
        )
    if isinstance(error, boto.NoRegionError):
        return (
            "no AWS region is set: pass --region REGION, or set AWS_REGION (or give the "
            "profile a region)"
        )
    if isinstance(error, boto.NoCredentialsError):
        return (
            "no AWS credentials found: pass --profile NAME (after `aws configure` or "
            "`aws sso login`), or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(error, (boto.EndpointConnectionError, boto.ConnectionError)):
        url = client.meta.endpoint_url if client is not None else "the endpoint"
        return (
            f"cannot reach {url}: if it is a local endpoint, start it (make demo starts one); "
            "otherwise check --endpoint-url / AWS_ENDPOINT_URL, --region and your network"
        )
    return None


def _explain_client_error(error: Exception, args: argparse.Namespace, where: str) -> str:
    code = error_code(error)
    if code == "ResourceNotFoundException":
        return (
            f"the log group {args.log_group!r} does not exist{where}: check its name, and "
            "--region / --profile / --endpoint-url (nothing has been logged to it yet?)"
        )
    if code in _CREDENTIAL_CODES:
        return (
            f"AWS refused the credentials{where} ({code}): refresh them (`aws sso login`), "
            "or pick other ones with --profile"
        )
    if code == "AccessDeniedException":
        return (
            f"these credentials may not read {args.log_group!r}{where}: they need "
            "logs:FilterLogEvents (logs:DescribeLogStreams for --request-id, "
            "logs:StartQuery and logs:GetQueryResults for --query)"
        )
    if code == "InvalidParameterException" and (args.filter or args.query):
        return f"CloudWatch Logs refused the pattern or query ({error}): check its syntax"
    if code == "ThrottlingException":
        return "CloudWatch Logs kept throttling the reads: wait a minute, or narrow --since"
    return f"CloudWatch Logs refused the request{where}: {error}"


def main(
    argv: Sequence[str] | None = None,
    *,
    client: Any = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run the command line and return its exit status (0, 1 on errors, 2 on usage errors).

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).
        client: a ready ``logs`` client (default: built from the options and boto3's chain).
        stdout, stderr, environ, now_ms, sleep: the I/O seam, for tests.
    """
    args = build_parser().parse_args(argv)
    out = stdout if stdout is not None else sys.stdout
    output = Output(
        out=out,
        err=stderr if stderr is not None else sys.stderr,
        colour=args.format == "short"
        and wants_colour(out, os.environ if environ is None else environ),
    )
    try:
        validate_log_group_name(args.log_group)
        _check_options(args)
        if client is None:
            client = _client(args)
        return tail(args, client=client, output=output, now_ms=now_ms, sleep=sleep)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from complaining
        # again when it flushes stdout at exit.
        if stdout is None:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:
        line = explain(error, args, client)
        if line is None:
            raise
        output.note(f"error: {line}")
        return EXIT_ERROR
