"""Run a script that forks below Python (libc's fork(), no Python hook) in an interpreter of its
own, where the main thread is the only thread.

A child forked below Python waits forever at its first release of the GIL if, at the fork,
another thread of the parent had asked for the GIL: the parent's holder was due to hand it over
(CPython's forced switching), and in the child no thread is left to take it. A C server that
embeds Python calls ``PyOS_AfterFork_Child`` in the child, which takes the GIL afresh; a bare
fork() calls nothing. The test process has threads of its own (moto's server, earlier tests'
senders retrying against dead endpoints), so a fork made there was a race that hung the child
once in many runs. In a fresh interpreter with one thread nothing can ask for the GIL.
"""

from __future__ import annotations

import subprocess
import sys

LIBC_FORK = """
import ctypes

def libc_fork() -> int:
    # PyDLL keeps the GIL across the call, as a C server's fork does
    return int(ctypes.PyDLL(None).fork())
"""
"""Source that defines ``libc_fork()``, for a script to start with."""


def run_script(script: str, *args: str, timeout_s: float = 120) -> str:
    """Run ``LIBC_FORK`` then ``script`` with ``args`` in a fresh interpreter; its stdout.

    Fails the test, with what the script wrote, unless it exits with status 0.
    """
    completed = subprocess.run(
        [sys.executable, "-c", LIBC_FORK + script, *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout
