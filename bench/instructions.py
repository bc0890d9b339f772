"""Instructions per logging call, a CPU figure no host noise moves: `python -m bench.instructions`.

`bench.run` times process CPU, and on a shared VM the same loop's CPU per call moves by tens of
percent from one run to the next. Here each contender runs under valgrind (``cachegrind``, no cache
simulation), once with ``--calls`` logging calls and once with none, and the difference divided by
the calls is what one call costs in instructions: the same figure on every run of the same code.

Two figures per contender:

- *whole process*: the calls, then a flush() that delivers them to a moto server on loopback, as
  `bench.run` counts CPU per delivered event (the sender's encoding, signing and sending included);
- *caller only*: fewer calls than make a batch, the sender held back (a 600 s flush interval), and
  the process ends without delivering: what the logging call itself executes.

Instructions are not time: a cache miss or a mispredicted branch costs cycles that no count shows,
so the two ratios can differ. And valgrind does not emulate the CPU's SHA extensions, so OpenSSL
hashes the request body in plain instructions there (about 25 an event's byte), more than the
hardware does: the whole-process figure overstates signing. A diagnostic, not part of `make bench`;
it needs valgrind (Debian's package) and says so if it is missing.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile

from bench.endpoint import fake_aws_environment, moto_server
from bench.imports import REPO_ROOT
from bench.peers import (
    FLOOR_FORMAT,
    FLOOR_FORMAT_ONCE,
    OURS,
    OURS_SPOOL,
    FormatOnceASecondHandler,
    FormatOnlyHandler,
)
from bench.phases import logger_for
from bench.worker import MESSAGE

CONTENDERS: tuple[str, ...] = (FLOOR_FORMAT, FLOOR_FORMAT_ONCE, OURS, OURS_SPOOL)
CALLER_ONLY_CALLS = 9_000
"""Fewer than a batch (10,000): nothing is sent while the caller-only calls are made."""
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def instructions_in(valgrind_output: str) -> int:
    """The instructions a cachegrind run executed, as its summary on stderr gives them."""
    found = _REFS.search(valgrind_output)
    if found is None:
        raise ValueError(f"no 'I refs' line in valgrind's output: {valgrind_output[-500:]!r}")
    return int(found.group(1).replace(",", ""))


def per_call(with_calls: int, without_calls: int, calls: int) -> float:
    """Instructions one call costs: the run with ``calls`` calls less the run with none."""
    return (with_calls - without_calls) / calls


def _child(contender: str, calls: int, endpoint_url: str, caller_only: bool) -> None:
    """Log ``calls`` records through ``contender``, as `bench.worker` does, then flush or leave."""
    from aws_cloudwatch_logs_handler import CloudWatchLogsHandler
    from aws_cloudwatch_logs_handler._handler import DEFAULT_FLUSH_INTERVAL_S

    spool = tempfile.mkdtemp(prefix="bench-instructions-") if contender == OURS_SPOOL else None
    handler: logging.Handler
    if contender == FLOOR_FORMAT:
        handler = FormatOnlyHandler()
    elif contender == FLOOR_FORMAT_ONCE:
        handler = FormatOnceASecondHandler()
    else:
        handler = CloudWatchLogsHandler(
            f"/bench/instructions/{contender}",
            endpoint_url=endpoint_url,
            spool_dir=spool,
            # Held back for the caller only; else the handler's default, as `bench.run` has it.
            flush_interval_s=600 if caller_only else DEFAULT_FLUSH_INTERVAL_S,
        )
    logger = logger_for(handler)
    logger.info("warm-up")
    handler.flush()  # the client, the group and the stream exist in both runs alike
    for i in range(calls):
        logger.info(MESSAGE, i)
    if not caller_only:  # else nothing is delivered: the sender's work stays out of the count
        handler.flush()
        handler.close()
    if spool is not None:
        shutil.rmtree(spool, ignore_errors=True)
    os._exit(0)  # both runs alike: no exit hook, and nothing left to deliver


def _count(valgrind: str, contender: str, calls: int, url: str, caller_only: bool) -> int:
    command = [
        valgrind,
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "bench.instructions",
        "--child",
        contender,
        "--calls",
        str(calls),
        "--endpoint",
        url,
    ]
    if caller_only:
        command.append("--caller-only")
    done = subprocess.run(
        command,
        cwd=REPO_ROOT,
        # One hash seed for every run, so that the run with the calls and the one without differ
        # less in anything but the calls: random string hashes change the order of sets and
        # dicts, and with it the start-up work. (Over 300 calls, one CI run was 5,000 per call
        # off; that hashes were the cause is likely, not shown.)
        env={**fake_aws_environment(url), "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    return instructions_in(done.stderr)


def main(argv: list[str] | None = None) -> int:
    """Count each contender's instructions per call and print them beside the floor's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=20_000, help="calls, whole process (20,000)")
    parser.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help=f"comma-separated subset of {','.join(CONTENDERS)} (the floor is always measured)",
    )
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--caller-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.calls, args.endpoint, args.caller_only)
        return 0
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind is not installed (Debian: apt-get install valgrind); nothing measured")
        return 1
    chosen = set(args.contenders.split(",")) | {FLOOR_FORMAT}
    unknown = chosen - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contender(s) {', '.join(sorted(unknown))}")
    caller_calls = min(args.calls, CALLER_ONLY_CALLS)
    figures: dict[str, tuple[float, float]] = {}
    with moto_server() as url:
        for contender in (name for name in CONTENDERS if name in chosen):
            whole, caller = (
                per_call(
                    _count(valgrind, contender, calls, url, caller_only),
                    _count(valgrind, contender, 0, url, caller_only),
                    calls,
                )
                for calls, caller_only in ((args.calls, False), (caller_calls, True))
            )
            figures[contender] = (whole, caller)
    floor_whole, floor_caller = figures[FLOOR_FORMAT]
    print(
        f"Instructions per logging call (valgrind; {args.calls:,} calls and a flush, "
        f"or {caller_calls:,} calls for the caller only; each less a run of none):"
    )
    print(
        f"{'contender':17s} {'whole process':>14s} {'/ floor':>8s} "
        f"{'caller only':>12s} {'/ floor':>8s}"
    )
    for contender, (whole, caller) in figures.items():
        print(
            f"{contender:17s} {whole:14,.0f} {whole / floor_whole:7.3f}x "
            f"{caller:12,.0f} {caller / floor_caller:7.3f}x"
        )
    if OURS in figures and OURS_SPOOL in figures:
        spool_to_ours = figures[OURS_SPOOL][0] / figures[OURS][0]
        print(f"{OURS_SPOOL} / {OURS}, whole process: {spool_to_ours:.3f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
