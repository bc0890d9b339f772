"""A logging call cut short by an exception a signal handler raises leaves the handler whole.

Ctrl-C's KeyboardInterrupt (or a SystemExit an application's SIGTERM handler raises) comes out of
whichever call the main thread was in when CPython ran the handler (once a call returns, at a
loop's turn, at a function's start). Here a real timer signal, whose handler raises
KeyboardInterrupt, lands at a random moment of each of thousands of logging calls.
"""

from __future__ import annotations

import faulthandler
import random
import signal
from collections import Counter
from types import FrameType

from handler_factory import HandlerFactory, unique_group

from aws_cloudwatch_logs_handler._sender import SENDER
from local_aws.moto_endpoint import MotoEndpoint

CALLS = 20_000


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def test_logging_calls_interrupted_at_random_moments_leave_the_handler_whole(
    moto_server: MotoEndpoint, make_handler: HandlerFactory
) -> None:
    """Every record whose logging call returned arrives once, an interrupted one at most once,
    nothing is counted as dropped, and once all is sent no byte is left counted as queued.
    Before, an interrupt right after the sender's lock was taken left it held (the next call
    waited for good: this test hung), and one after a timestamp's append left its message out:
    the stream could never be sent again (1 Ctrl-C in 88 while logging flat out lost 4,826
    records). A hang here ends the test process after 120 s, with every thread's traceback."""
    group = unique_group()
    handler = make_handler(group, log_stream="s", endpoint_url=moto_server.url)
    log = make_handler.logger(handler)
    log.info("warm")
    assert handler.flush(timeout_s=30)
    rng = random.Random(7)
    returned: list[int] = []
    interrupted = 0
    faulthandler.dump_traceback_later(120, exit=True)  # a lock left held waits for good
    previous = signal.signal(signal.SIGALRM, _interrupt)
    try:
        for number in range(CALLS):
            try:
                try:
                    signal.setitimer(signal.ITIMER_REAL, rng.uniform(1e-6, 40e-6))
                    log.info("m-%d", number)
                    returned.append(number)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except KeyboardInterrupt:
                interrupted += 1
    finally:
        signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()
    assert SENDER._lock.acquire(timeout=10), "the sender's lock was left held"
    SENDER._lock.release()
    assert handler.flush(timeout_s=60)
    got = Counter(moto_server.messages(group, "s"))
    print(f"measured: {CALLS} calls, {interrupted} interrupted, {sum(got.values())} delivered")
    assert [m for m, n in got.items() if n > 1] == []
    assert [n for n in returned if got[f"m-{n}"] != 1] == []
    assert handler.stats().dropped_total == 0
    assert handler._queues.bytes_queued == 0
