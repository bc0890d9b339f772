"""ProcessMark: set in one process, never inherited by a fork's child, however the fork is made."""

from __future__ import annotations

import os
import platform
import sys

import pytest
from fork_below_python import run_script

from aws_cloudwatch_logs_handler import _forks
from aws_cloudwatch_logs_handler._forks import ProcessMark

_MARK_ACROSS_FORKS = """
import sys

from aws_cloudwatch_logs_handler import _forks

if sys.argv[1] == "process id":
    _forks._wiped_on_fork = _forks._PidByte
mark = _forks.ProcessMark()
assert mark.wiped_by_the_kernel == (sys.argv[1] == "kernel")
mark.set()
answers = []
for set_in_the_child in (False, True):

    def answer() -> bytes:
        if set_in_the_child:
            mark.set()
        return b"1" if mark.here() else b"0"

    _, status, said = in_a_child(answer)
    assert status == 0
    answers.append(said.decode())
answers.append("1" if mark.here() else "0")
print(" ".join(answers))
"""
"""Set a mark, then fork below Python twice: the first child answers whether the mark is set,
the second sets it and answers; the parent answers last."""


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
    kind = "kernel" if mark.wiped_by_the_kernel else "process id"
    unset_in_child, set_in_child, parent = run_script(_MARK_ACROSS_FORKS, kind).split()
    assert (unset_in_child, set_in_child, parent) == ("0", "1", "1")


@pytest.mark.skipif(
    sys.platform != "linux" or platform.machine().lower() not in ("x86_64", "aarch64"),
    reason="the kernel's wipe-on-fork is used on Linux x86_64 and arm64 only",
)
def test_on_linux_the_kernel_clears_the_mark_so_no_system_call_is_made() -> None:
    """Where Lambda and most servers run, the check is a byte read, not os.getpid()."""
    assert ProcessMark().wiped_by_the_kernel
