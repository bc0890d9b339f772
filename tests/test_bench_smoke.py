"""The benchmark runs end to end with tiny counts and reports every contender and every metric."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench.caller_stalls import how_it_lost_the_cpu
from bench.neighbour import busy_neighbour
from bench.sender_stretches import longest_stretch

pytestmark = pytest.mark.slow  # runs benchmark workers against a moto server

REPO_ROOT = Path(__file__).resolve().parent.parent
_PACKAGE = "aws_cloudwatch_logs_handler"

# Written out here rather than imported from bench/: the test states what the report must hold.
CONTENDERS = (
    "ours",
    "ours-spool",
    "ours-4mib",
    "watchtower",
    "article",
    "floor-format",
    "floor-format-once",
    "floor-queue",
)
METRICS = (
    "caller_p50_us",
    "caller_p99_us",
    "caller_max_us",
    "cpu_per_event_us",
    "put_calls",
    "put_calls_min",
    "flush_s",
    "visible_s",
    "outage_peak_delta_mib",
    "sustained_eps",
)
# (contender, metric) pairs that are n/a by design: floors send nothing, the article's handler
# cannot be built in an outage, the small-queue variant only answers the outage question, and the
# floor that formats as ours does only the timed calls'.
NOT_APPLICABLE = {
    *(
        (floor, metric)
        for floor in ("floor-format", "floor-format-once", "floor-queue")
        for metric in ("put_calls", "put_calls_min", "visible_s")
    ),
    ("floor-format-once", "outage_peak_delta_mib"),
    ("floor-format-once", "sustained_eps"),
    ("article", "outage_peak_delta_mib"),
    ("article", "sustained_eps"),  # 2 ms a call: no sustained run
    *(("ours-4mib", m) for m in METRICS[:8]),
    ("ours-4mib", "sustained_eps"),
}


def _run_bench(*args: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <args>`` from the repository, as `make bench` does; it must succeed."""
    completed = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


QuickRun = tuple[dict[str, Any], Path, str]
"""The results JSON, the output directory, and what the run printed."""


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> QuickRun:
    """Run `python -m bench.run --quick` once for every test of this module."""
    out = tmp_path_factory.mktemp("bench")
    completed = _run_bench("bench.run", "--quick", "--out", str(out), timeout_s=120)
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return results, out, completed.stdout


@pytest.mark.slow
def test_every_contender_reports_every_metric(quick_run: QuickRun) -> None:
    """Each contender has a figure for each metric, except the pairs that are n/a by design."""
    results, _, _ = quick_run
    assert set(results["summary"]) == set(CONTENDERS)
    for contender in CONTENDERS:
        metrics = results["summary"][contender]["metrics"]
        for metric in METRICS:
            assert metric in metrics, (contender, metric)
            median = metrics[metric]["median"]
            assert "visible_unflushed_s" in metrics, contender
            if (contender, metric) in NOT_APPLICABLE:
                assert median is None, (contender, metric)
            else:
                assert isinstance(median, int | float), (contender, metric, median)


@pytest.mark.slow
def test_with_deferred_puts_every_contender_still_delivers_everything(tmp_path: Path) -> None:
    """`python -m bench.run --defer-puts` (moto parses each batch after the timed calls): every
    contender that sends, watchtower's create-when-missing way included, is read back whole."""
    completed = _run_bench(
        "bench.run", "--quick", "--defer-puts", "--out", str(tmp_path), timeout_s=120
    )
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert results["meta"]["moto_defers_puts"] is True
    _assert_every_sender_read_back_whole(results)
    assert "could not queue" not in completed.stderr


def _assert_every_sender_read_back_whole(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each contender that sends had every event read back, in its deliver run and in its
    sustained run; returns the deliver runs."""
    delivered = [
        run for run in results["runs"] if run["mode"] == "deliver" and "events_expected" in run
    ]
    assert {run["contender"] for run in delivered} == {
        "ours",
        "ours-spool",
        "watchtower",
        "article",
    }
    for run in delivered:
        assert run["events_visible"] == run["events_expected"], run["contender"]
    sustained = {run["contender"]: run for run in results["runs"] if run["mode"] == "sustain"}
    for contender in ("ours", "ours-spool", "watchtower"):
        # Set only when the endpoint held every event once the run's flush() returned.
        assert sustained[contender]["sustained_eps"] is not None, contender
    return delivered


@pytest.mark.slow
def test_delivering_contenders_deliver_everything(quick_run: QuickRun) -> None:
    """Every handler that sends made its PutLogEvents calls and the reader saw every event."""
    results, _, _ = quick_run
    for run in _assert_every_sender_read_back_whole(results):
        assert run["put_calls"] >= run["put_calls_min"] >= 1, run["contender"]
        # What the window's calls carried, read from the endpoint: each timed call's event once.
        assert run["put_events_sent"] == run["calls"], run["contender"]
        assert run["put_bytes_sent"] > 26 * run["calls"], run["contender"]
    sustained = {run["contender"]: run for run in results["runs"] if run["mode"] == "sustain"}
    assert set(sustained) == set(CONTENDERS) - {"article", "ours-4mib", "floor-format-once"}
    for contender in ("ours", "ours-spool"):
        stats = sustained[contender]["details"]["stats"]
        assert stats["events_delivered"] == sustained[contender]["calls"] + 1  # and the warm-up
        assert stats["dropped"] == {}


@pytest.mark.slow
def test_a_repetition_runs_one_mode_for_every_contender_before_the_next(
    quick_run: QuickRun,
) -> None:
    """The runs a ratio compares are taken seconds apart: every deliver run of a repetition comes
    before its sustain runs, and those before its outage runs."""
    results, _, _ = quick_run
    rep0 = [run for run in results["runs"] if run["rep"] == 0 and run["mode"] != "latency"]
    modes = [run["mode"] for run in rep0]
    blocks = [mode for i, mode in enumerate(modes) if i == 0 or modes[i - 1] != mode]
    assert blocks == ["deliver", "sustain", "outage"]
    delivered = {run["contender"] for run in rep0 if run["mode"] == "deliver"}
    assert {"ours", "floor-format", "watchtower"} <= delivered


def test_each_repetition_starts_its_modes_with_another_contender() -> None:
    """Five repetitions of eight contenders: each starts every mode with a different one, so no
    contender always runs first (or last) after a change of mode."""
    import argparse

    from bench.peers import CONTENDERS as RUN_ORDER
    from bench.run import Settings, rep_jobs

    flags = ("quick", "reps", "calls", "article_calls", "outage_records", "sustained_records")
    settings = Settings.from_args(argparse.Namespace(**dict.fromkeys(flags)))
    assert settings.reps == 5
    firsts = []
    for rep in range(settings.reps):
        jobs = rep_jobs(settings, RUN_ORDER, rep)
        firsts.append(jobs[0][0])
        runs = {(contender, mode) for contender, mode, _ in jobs}
        assert len(runs) == len(jobs)  # each contender runs each mode once
        assert ("ours", "deliver") in runs and ("floor-format", "deliver") in runs
    assert len(set(firsts)) == settings.reps


def test_outputs_table_picture_and_verdicts(quick_run: QuickRun) -> None:
    """The run prints the table and a verdict per target, and writes two PNGs next to the JSON."""
    results, out, stdout = quick_run
    png = (out / "results.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert (out / "latency.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "caller p50 (us)" in stdout
    assert "Performance targets" in stdout
    targets = {verdict["target"] for verdict in results["targets"]}
    assert {
        "caller p50 <= 1.2x format-only floor",
        "caller p99 <= 1.2x floor's p99",
        "caller p99.9 <= 1.5x floor's p99.9",
        "sustained delivered events per second, one process >= 2x watchtower",
        "spool: CPU per event <= 1.15x the default handler's",
        "CPU per delivered event <= 0.7x watchtower",
        "PutLogEvents calls within one of the minimum",
        "outage memory bounded by max_queue_bytes",
    } <= targets
    assert set(results["imports_ms"]) == {"ours", "watchtower", "boto3 (reference)"}


def test_the_neighbour_spins_only_while_the_run_lasts(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--neighbour`` keeps a busy process alive for the block and ends it afterwards."""
    import subprocess

    from bench import neighbour

    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(subprocess, "Popen", popen)  # the module bench.neighbour calls
    with neighbour.busy_neighbour(True):
        [process] = started
        assert process.poll() is None
    assert process.poll() is not None
    with neighbour.busy_neighbour(False):
        assert len(started) == 1


def test_the_phase_profile_names_every_phase_and_delivers() -> None:
    """`python -m bench.phases` delivers its records and prints a figure for every phase, and
    for each of the sender's phases the page faults it took (counted on Linux)."""
    completed = _run_bench("bench.phases", "--calls", "3000", timeout_s=180)
    assert "3,000 calls, then flush() (delivered)" in completed.stdout
    for phase in (
        "caller, this handler",
        "caller, format, time once a second",
        "encode the body",
        "botocore: whole call",
        "settle",
    ):
        assert f"| {phase}" in completed.stdout or f"| sender: {phase}" in completed.stdout
    assert "| page faults per 10,000 events |" in completed.stdout
    encode_row = next(
        line for line in completed.stdout.splitlines() if line.startswith("| sender: encode")
    )
    faults = encode_row.strip("| ").split(" | ")[-1]
    assert faults == "-" if sys.platform != "linux" else float(faults) >= 0
    assert "could not queue" not in completed.stderr


def test_the_caller_tail_alternates_windows_and_delivers_what_it_logged() -> None:
    """`python -m bench.caller_tail` times every window of each side, prints the medians with the
    p99 ratio, and delivers every record it logged (exit status 0 only then)."""
    completed = _run_bench("bench.caller_tail", "--windows", "2", "--calls", "12000", timeout_s=120)
    windows = [
        (cells[1].strip(), cells[2].strip())
        for line in completed.stdout.splitlines()
        if line.startswith("| ") and (cells := line.split("|"))[1].strip().isdigit()
    ]
    assert sorted(windows) == [(w, side) for w in "12" for side in ("floor", "held", "sending")]
    for side in ("floor", "held", "sending"):
        [median] = [line for line in completed.stdout.splitlines() if line.startswith(f"{side} ")]
        assert " p99 " in median and median.endswith("x floor")
    assert completed.stdout.rstrip().endswith("every record delivered")
    assert "could not queue" not in completed.stderr


@pytest.mark.parametrize("options", [(), ("--defer-puts",)], ids=["moto", "deferred"])
def test_the_caller_stalls_sorts_each_sides_slow_calls_and_delivers_what_it_logged(
    options: tuple[str, ...],
) -> None:
    """`python -m bench.caller_stalls` prints a row for the floor and one for this handler
    sending, each with its tail and its slow calls counted by how the thread lost the CPU, and
    delivers every record it logged (exit status 0 only then; with moto applying the batches after
    the windows, every record read back from it)."""
    completed = _run_bench(
        "bench.caller_stalls", "--windows", "1", "--calls", "12000", *options, timeout_s=120
    )
    rows = {
        cells[0]: cells[1:]
        for line in completed.stdout.splitlines()
        if line.startswith("| ") and (cells := line.strip("| ").split(" | "))[0] != "side"
    }
    assert sorted(rows) == ["floor", "sending"]
    for calls, p99, p999, most, slow, over_1ms, *kinds, stolen in rows.values():
        assert int(calls) == 12_000
        assert 0 < float(p99) <= float(p999) <= float(most)
        assert 0 <= int(over_1ms) <= int(slow)
        # Every slow call is of one kind: the kinds' counts add up to the slow calls.
        assert sum(int(kind.split(",")[0]) for kind in kinds) == int(slow)
        assert stolen == "n/a" if sys.platform != "linux" else float(stolen) >= 0
    assert completed.stdout.rstrip().endswith("every record delivered")
    assert "could not queue" not in completed.stderr


def test_the_sender_stretches_name_what_each_slow_call_waited_for() -> None:
    """`python -m bench.sender_stretches` counts the slow calls by the sender's stretch they
    waited for, the rows adding up to the slow calls it reports, and delivers every record."""
    completed = _run_bench(
        "bench.sender_stretches", "--calls", "12000", "--slow-us", "200", timeout_s=120
    )
    lines = completed.stdout.splitlines()
    first = re.match(r"(\d+) of (\d+) calls over 200 µs", lines[0])
    assert first is not None
    slow, calls = first.groups()
    assert int(calls) == 12_000
    rows = [line.strip("| ").split(" | ") for line in lines if line.startswith("| ")][1:]
    assert sum(int(row[1]) for row in rows) == int(slow)
    assert all(" -> " in row[0] or row[0].startswith("(") for row in rows)
    assert completed.stdout.rstrip().endswith("every record delivered")


def test_a_slow_calls_longest_stretch_is_named_by_the_sender_marks_at_its_ends() -> None:
    """Only the marks inside the call count, and the stretch is the one with the most CPU."""
    marks = [(0, 0, "before"), (10, 5, "woke"), (20, 50, "checkpoint"), (30, 60, "sleeps")]
    assert longest_stretch(marks, 5, 35) == ("woke -> checkpoint", 0.045)
    assert longest_stretch(marks, 25, 35) is None


def test_a_slow_call_is_sorted_by_the_context_switches_it_saw() -> None:
    """A switch the thread chose (it blocked: the GIL, a lock) is a wait, whatever else happened;
    one it did not choose is a preemption; none is time the kernel did not see go."""
    assert how_it_lost_the_cpu(voluntary=1, involuntary=3) == "waited"
    assert how_it_lost_the_cpu(voluntary=0, involuntary=1) == "preempted"
    assert how_it_lost_the_cpu(voluntary=0, involuntary=0) == "unseen"


@pytest.mark.parametrize("options", [(), ("--spool",)], ids=["default", "spool"])
def test_two_versions_run_side_by_side_and_a_slower_one_shows(
    tmp_path: Path, options: tuple[str, ...]
) -> None:
    """`python -m bench.versions OLD NEW` loads each version under a name of its own in one
    process: a NEW whose logging call does several µs more work than OLD's (a copy of this package,
    slowed) shows as that much more CPU per call, and both deliver what they logged, with a
    spool or without."""
    slowed = tmp_path / "slowed"
    shutil.copytree(REPO_ROOT / "handler" / "aws_cloudwatch_logs_handler", slowed / _PACKAGE)
    handler_module = slowed / _PACKAGE / "_handler.py"
    source = handler_module.read_text(encoding="utf-8")
    docstring = '"""Format ``record`` and queue it for the sender; never raises, never does I/O."""'
    assert source.count(docstring) == 1
    handler_module.write_text(
        source.replace(docstring, docstring + "\n        sum(range(400))  # slower"),
        encoding="utf-8",
    )
    completed = _run_bench(
        "bench.versions",
        str(REPO_ROOT / "handler"),
        str(slowed),
        "--windows",
        "3",
        *options,
        timeout_s=120,
    )
    lines = completed.stdout.splitlines()
    medians = {
        line.split()[0]: line for line in lines if line.split()[0] in ("floor", "old", "new")
    }
    assert set(medians) == {"floor", "old", "new"}
    [cpu] = [line for line in lines if line.startswith("cpu_us ")]
    assert float(cpu.split()[1]) > 1.0  # the slowed version's extra work, in µs a call
    assert completed.stdout.rstrip().endswith("every record delivered")
    assert "could not queue" not in completed.stderr


def test_the_spool_profile_reports_a_new_and_a_mapped_journal_and_the_settle_check() -> None:
    """`python -m bench.spool_frames` prints the CPU and page faults per journal, the check, and
    the sender's work behind a thread logging flat out."""
    completed = _run_bench(
        "bench.spool_frames", "--frames", "3000", "--behind-records", "80000", timeout_s=120
    )
    assert completed.stdout.startswith("3,000 frames of ")
    rows = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:4]]
        for line in completed.stdout.splitlines()
        if line.startswith("| ") and not line.startswith("| journal")
    }
    assert set(rows) == {"new file", "emptied, pages mapped"}
    for cpu, faults in rows.values():
        assert float(cpu) > 0 and int(faults.replace(",", "")) >= 0
    assert "settle's check that 10,000 numbers run in order: " in completed.stdout
    behind = re.search(
        r"behind a thread logging flat out \(80,000 records, 3 batches of 10,000 waiting\): "
        r"settle and tidy (\d+) ns a record; moves copied ([\d.]+) bytes per byte settled; "
        r"largest journal file ([\d.]+) MiB",
        completed.stdout,
    )
    assert behind is not None, completed.stdout
    assert int(behind[1]) > 0 and 0 < float(behind[2]) <= 1 and float(behind[3]) > 0


def _children_of(pid: int) -> list[int]:
    """Process ids of the children of process ``pid``, from every one of its threads."""
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


def _children_spinning() -> list[int]:
    """Process ids of this process's children that run the neighbour's busy loop."""
    return [
        pid
        for pid in _children_of(os.getpid())
        if b"while True" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_the_neighbour_keeps_a_core_busy_only_while_the_block_runs() -> None:
    """`--neighbour`'s process spins on a core for as long as the measurement runs, then ends."""
    with busy_neighbour(True):
        deadline = time.monotonic() + 30
        # Bounded: the child shows its command line once it has executed the interpreter.
        while not (spinning := _children_spinning()):
            assert time.monotonic() < deadline, "no neighbour started"
            time.sleep(0.05)
        [child] = spinning
        while _cpu_seconds(child) < 0.3:  # bounded: a spinning process gets there in 0.3 s
            assert time.monotonic() < deadline, "the neighbour used no CPU"
            time.sleep(0.05)
    assert _children_spinning() == []


_OUTLIVE = """\
import sys, time
from bench.endpoint import moto_server
from bench.neighbour import busy_neighbour
with busy_neighbour(True), moto_server():
    print("ready", flush=True)
    time.sleep(120)
"""


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (an exited child not yet reaped is a zombie: it does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_bench_killed_outright_leaves_no_neighbour_and_no_endpoint_behind() -> None:
    """SIGKILL gives the bench no chance to stop what it started: its busy neighbour and its moto
    server see their parent gone and end by themselves, instead of spinning and serving on."""
    children: list[int] = []
    with subprocess.Popen(
        [sys.executable, "-c", _OUTLIVE], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    ) as parent:
        try:
            assert parent.stdout is not None and parent.stdout.readline() == "ready\n"
            children = _children_of(parent.pid)
            assert len(children) == 2  # the neighbour and the moto server
        finally:
            parent.kill()  # leaving the block closes its pipe and waits for it
    deadline = time.monotonic() + 15
    try:
        while any(_running(child) for child in children):  # bounded by the deadline
            assert time.monotonic() < deadline, "a child of the killed bench still runs"
            time.sleep(0.05)
    finally:
        for child in children:  # a failed run must not leave a spinning process behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)


def test_the_bench_runs_beside_a_busy_neighbour_as_the_flag_says(tmp_path: Path) -> None:
    """`python -m bench.run --neighbour` measures with the neighbour on and says so."""
    _run_bench(
        *("bench.run", "--quick", "--neighbour"),
        *("--contenders", "ours,floor-format", "--out", str(tmp_path)),
        timeout_s=180,
    )
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert results["meta"]["cpu_bound_neighbour"] is True
    assert set(results["summary"]) == {"ours", "floor-format"}
    assert (tmp_path / "results.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_the_json_row_runs_as_make_bench_runs_it() -> None:
    """`python -m bench.json_row` (a step of `make bench`), with small counts: a row for each
    formatter and the target's verdict."""
    completed = _run_bench("bench.json_row", "--calls", "500", "--reps", "1", timeout_s=180)
    rows = completed.stdout.splitlines()
    assert any(row.startswith("JsonFormatter (ours)") for row in rows)
    assert any(row.startswith("python-json-logger") for row in rows)
    assert any(row.startswith("target (ours no slower") for row in rows)


def test_the_fleet_runs_as_make_bench_runs_it(tmp_path: Path) -> None:
    """`python -m bench.fleet` (the last step of `make bench`), with a small fleet: it succeeds only
    if nothing was lost, duplicated, refused or dropped, and writes its table, JSON and plot."""
    completed = _run_bench(
        *("bench.fleet", "--processes", "4", "--seconds", "3", "--out", str(tmp_path)),
        timeout_s=180,
    )
    assert "| delivered exactly once | 240 |" in completed.stdout
    report = json.loads((tmp_path / "fleet.json").read_text(encoding="utf-8"))
    assert (report["logged"], report["delivered"], report["lost"]) == (240, 240, 0)
    assert (tmp_path / "fleet.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_the_lambda_latency_runs_as_make_bench_runs_it() -> None:
    """`python -m bench.lambda_latency` (a step of `make bench`), with few records and rounds: a
    row per delivery mode, under awslambdaric with the layer it builds."""
    completed = _run_bench(
        "bench.lambda_latency", "--rounds", "2", "--records", "50", timeout_s=300
    )
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| ")]
    assert [row.split("|")[1].strip() for row in rows[1:]] == ["after_response", "before_return"]
    assert "50 records: the caller waits" in completed.stdout
