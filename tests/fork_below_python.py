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

FORK_HELPERS = """
import ctypes
import os


def libc_fork() -> int:
    # PyDLL keeps the GIL across the call, as a C server's fork does
    return int(ctypes.PyDLL(None).fork())


def in_a_child(work):
    # Fork below Python, run work() in the child and wait for it: the child's pid, its exit
    # status (1 if work raised) and the bytes work returned (None: none), through a pipe.
    read_end, write_end = os.pipe()
    pid = libc_fork()
    if pid == 0:  # the child: answer, and leave without running anything of the parent's
        code = 0
        try:
            os.write(write_end, work() or b"")
        except BaseException:
            code = 1
        os._exit(code)
    os.close(write_end)
    answer = os.read(read_end, 64)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    return pid, os.waitstatus_to_exitcode(status), answer
"""
"""Source that defines ``libc_fork()`` and ``in_a_child(work)``, for a script to start with."""


def run_script(script: str, *args: str, timeout_s: float = 120) -> str:
    """Run ``FORK_HELPERS`` then ``script`` with ``args`` in a fresh interpreter; its stdout.

    Fails the test, with what the script wrote, unless it exits with status 0.
    """
    completed = subprocess.run(
        [sys.executable, "-c", FORK_HELPERS + script, *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout
