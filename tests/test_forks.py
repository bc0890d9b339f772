"""ProcessMark: set in one process, never inherited by a fork's child, however the fork is made."""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import sys
from collections.abc import Callable

import pytest

from aws_cloudwatch_logs_handler import _forks
from aws_cloudwatch_logs_handler._forks import ProcessMark


def _in_a_child(fork: Callable[[], int], check: Callable[[], bool]) -> bool:
    """Fork with ``fork``, run ``check`` in the child, and return what it answered.

    No garbage collection across the fork: in a child made below Python, a collection could run
    a callback that takes a lock another thread of the parent held at the fork (logging's, when
    a handler goes), and the child would wait for it forever.
    """
    read_end, write_end = os.pipe()
    gc.disable()
    try:
        pid = fork()
        if pid == 0:  # the child: answer, and leave without running anything of the parent's
            os.write(write_end, b"1" if check() else b"0")
            os._exit(0)
    finally:
        gc.enable()
    os.close(write_end)
    answer = os.read(read_end, 1)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return answer == b"1"


def _libc_fork() -> int:
    """fork() from C, as uWSGI or a C extension makes it: no Python fork hook runs."""
    libc = ctypes.PyDLL(None)  # PyDLL keeps the GIL across the call, as a C server's fork does
    return int(libc.fork())


@pytest.fixture(params=["kernel", "process id"])
def mark(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ProcessMark:
    """A mark wiped by the kernel (where it can be) and one that falls back to process ids."""
    if request.param == "process id":
        monkeypatch.setattr(_forks, "_wiped_on_fork", _forks._PidByte)
    made = ProcessMark()
    if request.param == "kernel" and not made.wiped_by_the_kernel:
        pytest.skip("MADV_WIPEONFORK is not available here")
    return made


def test_a_mark_is_here_only_once_set(mark: ProcessMark) -> None:
    """A new mark says "another process"; set() makes it this one's."""
    assert not mark.here()
    mark.set()
    assert mark.here()
    assert mark.byte[0] == 1  # what the logging call's path reads


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_child_made_below_python_does_not_inherit_the_mark(mark: ProcessMark) -> None:
    """A child from libc's fork() (no Python hook runs) reads the mark as unset; the parent's
    stays set; a child that sets its own mark has it."""
    mark.set()
    assert _in_a_child(_libc_fork, mark.here) is False
    assert mark.here()

    def set_then_check() -> bool:
        mark.set()
        return mark.here()

    assert _in_a_child(_libc_fork, set_then_check) is True


@pytest.mark.skipif(
    sys.platform != "linux" or platform.machine().lower() not in ("x86_64", "aarch64"),
    reason="the kernel's wipe-on-fork is used on Linux x86_64 and arm64 only",
)
def test_on_linux_the_kernel_clears_the_mark_so_no_system_call_is_made() -> None:
    """Where Lambda and most servers run, the check is a byte read, not os.getpid()."""
    assert ProcessMark().wiped_by_the_kernel
