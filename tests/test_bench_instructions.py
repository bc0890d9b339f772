"""`python -m bench.instructions`: instructions per logging call, read from valgrind's summary."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.instructions import instructions_in, per_call

REPO_ROOT = Path(__file__).resolve().parent.parent

# What cachegrind 3.19 prints on stderr at exit with --cache-sim=no.
_SUMMARY = """==3145== Cachegrind, a cache and branch-prediction profiler
==3145== Command: python ir.py floor 20000
==3145==
==3145== I   refs:      3,145,056,872
"""


def test_the_count_is_read_from_valgrind_summary() -> None:
    assert instructions_in(_SUMMARY) == 3_145_056_872


def test_a_run_without_a_summary_is_an_error_that_shows_the_output() -> None:
    with pytest.raises(ValueError, match="Command: python"):
        instructions_in(_SUMMARY.replace("I   refs", "D   refs"))


def test_a_call_costs_the_difference_between_the_two_runs_over_the_calls() -> None:
    assert per_call(3_145_056_872, 1_539_559_834, 20_000) == pytest.approx(80_274.85)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_the_handler_costs_more_instructions_than_formatting_alone() -> None:
    """Each call of this handler formats as the second floor does (a plain formatter's text,
    its time made once a second), which costs fewer instructions than `logging.Formatter`
    itself, and then queues (and, in the whole process, is sent): more instructions than that
    formatting alone, on both lines of the table."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bench.instructions", "--calls", "1000"),
            *("--contenders", "floor-format-once,ours"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    rows = {
        match.group(1): [float(figure.replace(",", "")) for figure in match.groups()[1:]]
        for match in re.finditer(
            r"^(\S+)\s+([\d,]+)\s+([\d.]+)x\s+([\d,]+)\s+([\d.]+)x$", done.stdout, re.MULTILINE
        )
    }
    assert set(rows) == {"floor-format", "floor-format-once", "ours"}, done.stdout
    _, floor_ratio, floor_caller, _ = rows["floor-format"]
    once_whole, _, once_caller, once_caller_ratio = rows["floor-format-once"]
    ours_whole, _, ours_caller, _ = rows["ours"]
    assert floor_ratio == 1.0
    assert floor_caller > 1_000  # a formatted record is thousands of instructions
    assert 1_000 < once_caller < floor_caller and once_caller_ratio < 1.0
    assert ours_caller > once_caller
    assert ours_whole > once_whole
