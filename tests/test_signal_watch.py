"""`_signal_watch`: what the SIGTERM hook takes to notice a SIGTERM the main thread does not see,
and what it leaves to the application. Each case runs in a process of its own: the wake-up
descriptor and signal handlers belong to the whole process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

_MAKE_HANDLER = """
import os, signal, socket
from aws_cloudwatch_logs_handler import CloudWatchLogsHandler
def make_handler():
    return CloudWatchLogsHandler(
        "/test/signal-watch", endpoint_url="http://127.0.0.1:9", region="us-east-1"
    )
"""


def _run(body: str) -> str:
    """Run ``body`` after `_MAKE_HANDLER` in a fresh interpreter; return what it printed."""
    done = subprocess.run(
        [sys.executable, "-c", _MAKE_HANDLER + textwrap.dedent(body)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_the_hook_takes_the_wake_up_descriptor_and_sigurg_when_nobody_uses_them() -> None:
    """With SIGTERM, SIGURG and the wake-up descriptor all at their defaults, the hook takes all
    three: SIGTERM's handler, a SIGURG handler that does nothing, a descriptor of its own."""
    out = _run(
        """
        make_handler()
        print(signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None))
        urg = signal.getsignal(signal.SIGURG)
        print(urg not in (signal.SIG_DFL, signal.SIG_IGN) and urg(signal.SIGURG, None) is None)
        print(signal.set_wakeup_fd(-1) != -1)
        """
    )
    assert out.split() == ["True", "True", "True"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_an_event_loops_wake_up_descriptor_stays_its_own() -> None:
    """A wake-up descriptor the application set first (as an event loop does) is left to it, and
    SIGURG is not taken either; SIGTERM's hook is still installed."""
    out = _run(
        """
        theirs, _ = socket.socketpair()
        theirs.setblocking(False)
        signal.set_wakeup_fd(theirs.fileno())
        make_handler()
        print(signal.set_wakeup_fd(-1) == theirs.fileno())
        print(signal.getsignal(signal.SIGURG) == signal.SIG_DFL)
        print(signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None))
        """
    )
    assert out.split() == ["True", "True", "True"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_an_applications_sigurg_handler_stays_its_own() -> None:
    """An application that handles SIGURG keeps its handler, and the wake-up descriptor stays
    unset."""
    out = _run(
        """
        def on_urgent(signum, frame):
            pass
        signal.signal(signal.SIGURG, on_urgent)
        make_handler()
        print(signal.getsignal(signal.SIGURG) is on_urgent)
        print(signal.set_wakeup_fd(-1) == -1)
        """
    )
    assert out.split() == ["True", "True"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_forked_child_gets_a_wake_up_descriptor_of_its_own() -> None:
    """After ``os.fork()`` the child's signals are written to a pipe of its own, so that its
    SIGTERM is never read by its parent's watch."""
    out = _run(
        """
        make_handler()
        parents = signal.set_wakeup_fd(-1)
        signal.set_wakeup_fd(parents, warn_on_full_buffer=False)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            childs = signal.set_wakeup_fd(-1)
            os.write(write_end, b"own" if childs not in (-1, parents) else b"shared")
            os._exit(0)
        os.waitpid(pid, 0)
        print(os.read(read_end, 16).decode())
        """
    )
    assert out.split() == ["own"]
