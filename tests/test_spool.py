"""The spool's journal: acknowledged only up to the first unsettled frame, emptied when all are."""

from __future__ import annotations

import inspect
import itertools
import os
import stat
import struct
import sys
import zlib
from array import array
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, SimpleNamespace
from typing import Any

import pytest
from fork_below_python import run_script
from hypothesis import given
from hypothesis import strategies as st
from interrupts import interrupted_at
from spool_files import dead_journal, open_files_under

from aws_cloudwatch_logs_handler._events import Event
from aws_cloudwatch_logs_handler._journal_file import AHEAD_BYTES, GROWTH_BYTES, MappedJournal
from aws_cloudwatch_logs_handler._packed import PackedEvents
from aws_cloudwatch_logs_handler._reporting import Reporter
from aws_cloudwatch_logs_handler._spool import (
    _ACK,
    ROTATE_AFTER_BYTES,
    Spool,
    _Runs,
    encode_frame,
    read_frames,
)
from bench.spool_frames import settle_behind


@dataclass
class Stream:
    """Stands for a stream's queue: the spool only reads its name."""

    name: str


def acked(spool_dir: Path) -> int:
    [ack] = spool_dir.glob("*.ack")
    return ack_offset(ack)


def ack_offset(ack: Path) -> int:
    """The offset an ``.ack`` file holds (0 while it is empty)."""
    data = ack.read_bytes()
    return _ACK.unpack(data)[0] if data else 0


def journaled(spool: Spool, stream: Stream, events: list[Event]) -> PackedEvents:
    """Journal ``events`` and queue them as the sender does, each with its frame's number."""
    queued = PackedEvents()
    queued.extend(events, spool.append(stream, events))
    return queued


def test_out_of_order_settlement_acknowledges_only_the_settled_prefix(tmp_path: Path) -> None:
    """Frames settled ahead of an unsettled one are not acknowledged until it settles too."""
    spool = Spool(tmp_path, group="/g", reporter=Reporter())
    a, b = Stream("a"), Stream("b")
    events = [Event(1_000 + i, f"m{i}", 28) for i in range(4)]
    queued = [journaled(spool, a if i % 2 == 0 else b, [event]) for i, event in enumerate(events)]
    sizes = [len(encode_frame("a" if i % 2 == 0 else "b", e)) for i, e in enumerate(events)]
    stream_b = queued[1].joined(queued[3])
    spool.settle(b, stream_b)  # stream b settles first
    assert acked(tmp_path) == 0
    spool.settle(a, queued[0])
    assert acked(tmp_path) == sizes[0] + sizes[1]
    [journal] = tmp_path.glob("*.journal")
    frames, corrupt = read_frames(journal.read_bytes()[acked(tmp_path) :])
    assert [f.event.message for f in frames] == ["m2", "m3"] and corrupt == 0
    spool.settle(a, queued[2])
    assert on_disk(tmp_path) == [] and acked(tmp_path) == 0  # emptied, not grown forever
    assert journal.stat().st_size <= GROWTH_BYTES
    assert spool._settled == set()  # nothing kept of the frames settled out of order


def test_a_spool_lets_go_of_its_journal_only_once_every_frame_in_it_is_settled(
    tmp_path: Path,
) -> None:
    """`Spool.stop_journaling` (as the sender forgets a closed handler's queues, or at exit)
    keeps a journal holding a frame not settled, for the next start to replay, and lets go of
    one whose frames are all settled: unmapped, closed and deleted, with its .ack."""
    spool = Spool(tmp_path, group="/g", reporter=Reporter())
    s = Stream("s")
    queue = journaled(spool, s, [Event(1_000, "m0", 28), Event(1_001, "m1", 28)])
    spool.settle(s, queue.detach(1))
    assert spool.stop_journaling() is None
    [journal] = tmp_path.glob("*.journal")
    frames, _ = read_frames(journal.read_bytes()[acked(tmp_path) :])
    assert [frame.event.message for frame in frames] == ["m1"]
    spool.settle(s, queue.detach(1))
    let_go = spool.stop_journaling()
    assert let_go is not None
    assert len(open_files_under(tmp_path)) == 3  # journal, .ack, the mapping's own
    let_go()
    assert open_files_under(tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_equal_events_settle_one_frame_each_by_the_number_they_carry(tmp_path: Path) -> None:
    """Equal events have frames of their own; each settled batch acknowledges exactly its own."""
    spool = Spool(tmp_path, group="/g", reporter=Reporter())
    s = Stream("s")
    twice = [Event(1_000, "same", 30), Event(1_000, "same", 30), Event(1_001, "other", 31)]
    queue = journaled(spool, s, twice)
    size = len(encode_frame("s", twice[0]))
    spool.settle(s, queue.detach(1))
    assert acked(tmp_path) == size
    spool.settle(s, queue.detach(1))
    assert acked(tmp_path) == 2 * size
    spool.settle(s, queue.detach(1))
    [journal] = tmp_path.glob("*.journal")
    assert on_disk(tmp_path) == [] and journal.stat().st_size <= GROWTH_BYTES


def test_a_long_run_of_settled_batches_keeps_the_acknowledged_offset_exact(
    tmp_path: Path,
) -> None:
    """Thousands of frames settled batch by batch, as the sender does: the offset is always
    the end of the last settled frame, across the index's compaction."""
    spool = Spool(tmp_path, group="/g", reporter=Reporter())
    s = Stream("s")
    events = [Event(1_000 + i, f"message {i}", 36) for i in range(12_000)]
    queue = journaled(spool, s, events)
    ends = list(itertools.accumulate(len(encode_frame("s", e)) for e in events))
    settled = 0
    for count in (1, 999, 3_000, 5_000, 2_999):
        spool.settle(s, queue.detach(count))
        settled += count
        assert acked(tmp_path) == ends[settled - 1]


@pytest.mark.parametrize(
    "cut_before", ["self._lengths.append(end - size)", "self._next = number + 1", "return number"]
)
def test_a_frame_a_cut_left_unqueued_is_acknowledged_in_its_place(
    tmp_path: Path, cut_before: str
) -> None:
    """Ctrl-C can cut a logging call after its frame is written and before it is numbered, or
    queued. The mend (`forget_unqueued`) numbers it and settles it, so the acknowledged offset
    stays on the frames' boundaries: later settlements leave exactly the waiting frames to
    replay. Before, one cut before the numbering put the offset a frame's length short of the
    truth for good (a crash then replayed from inside a frame: a stretch read as corrupt, and
    the frame after it lost); one after it stopped the offset at the frame for good."""
    spool = Spool(tmp_path, group="/g", reporter=Reporter())
    a = Stream("a")
    first = journaled(spool, a, [Event(1_000, "m0", 28)])
    code = Spool.append_one.__code__
    source, start = inspect.getsourcelines(Spool.append_one)
    [line] = [start + i for i, text in enumerate(source) if text.strip() == cut_before]
    with interrupted_at(code, line) as fired, pytest.raises(KeyboardInterrupt):
        spool.append_one(a, 1_001, "cut short, never queued")
    assert fired == [1]
    held = set(first.journal_numbers() or ())
    spool.forget_unqueued(SimpleNamespace(journal_numbers_held=lambda: held))  # type: ignore[arg-type]
    second = journaled(spool, a, [Event(1_002, "m2", 28)])
    third = journaled(spool, a, [Event(1_003, "m3", 28)])
    spool.settle(a, first)
    spool.settle(a, second)
    [journal] = tmp_path.glob("*.journal")
    frames, corrupt = read_frames(journal.read_bytes()[acked(tmp_path) :])
    assert ([f.event.message for f in frames], corrupt) == (["m3"], 0)
    spool.settle(a, third)
    assert on_disk(tmp_path) == [] and acked(tmp_path) == 0  # all settled: emptied


SETTLEMENTS = {
    # name: (frames journaled, their message length, settled before (then the sender tidies:
    # a spare journal is made once half of ROTATE_AFTER_BYTES is settled), the batch settled
    # and cut, then the rest)
    "in-order": (6, 10, [], [0], [[1], [2, 3], [4, 5]]),
    "out-of-order": (6, 10, [], [2], [[0, 1], [3], [4, 5]]),
    "all-at-once": (6, 10, [], [0, 1, 2, 3, 4, 5], []),
    "moving-to-a-new-journal": (300, 4_000, [], list(range(290)), [list(range(290, 300))]),
    "moving-to-a-spare-journal": (
        300,
        4_000,
        list(range(150)),
        list(range(150, 290)),
        [list(range(290, 300))],
    ),
}


def batch_of(queued: list[PackedEvents], numbers: list[int]) -> PackedEvents:
    """One batch of the events queued with the frame ``numbers``."""
    batch = PackedEvents()
    for number in numbers:
        batch = batch.joined(queued[number])
    return batch


@pytest.mark.parametrize("settlement", SETTLEMENTS)
def test_a_settlement_cut_at_any_line_leaves_exactly_the_waiting_frames_to_replay(
    tmp_path: Path, settlement: str
) -> None:
    """With ``overflow="drop_oldest"`` a logging call settles the frames of what it drops, and
    Ctrl-C can cut it anywhere: here at each line of the settlement in turn, in order, out of
    order, all at once (the journal emptied), and with the journal moved to a new file (made
    then, or ahead by the sender). After
    the mend (`forget_unqueued`, as `_drop_first` calls it), a crash replays exactly the
    frames still waiting, none read as corrupt; once all settle, nothing; one journal is left,
    and no file descriptor. Before, a cut between the settled number and the offset left the
    offset behind for good (every later crash replayed settled frames), and one in the
    middle of the move could close the journal in use, or delete it."""
    count, length, before, cut_batch, rest = SETTLEMENTS[settlement]
    functions = [Spool._settle_numbers, Spool._acknowledge, Spool._rotate]
    lines = [
        (function.__code__, line)
        for function in functions
        for line in sorted({n for _, _, n in function.__code__.co_lines() if n})
        if line > function.__code__.co_firstlineno
    ]
    assert open_files_under(tmp_path) == []
    cut = 0
    for index, (code, line) in enumerate(lines):
        directory = tmp_path / str(index)
        spool = Spool(directory, group="/g", reporter=Reporter())
        directory.mkdir(mode=0o700)
        stream = Stream("s")
        events = [Event(1_000 + n, f"m{n} " + "x" * length, 30 + length) for n in range(count)]
        queued = [journaled(spool, stream, [event]) for event in events]
        if before:
            spool.settle(stream, batch_of(queued, before))
            spool.tidy()
            assert spool._spare is not None

        with interrupted_at(code, line) as fired, suppress(KeyboardInterrupt):
            spool.settle(stream, batch_of(queued, cut_batch))
        cut += fired[0]
        held = {number for numbers in rest for number in numbers}
        queues = SimpleNamespace(journal_numbers_held=held.copy)
        spool.forget_unqueued(queues)  # type: ignore[arg-type]
        for numbers in [*rest, []]:
            # A crash now replays every frame from the first one still held on (one settled
            # out of order behind it too), and nothing before it.
            unsettled = min(held, default=count)
            waiting = [event.message for event in events[unsettled:]]
            assert on_disk(directory) == waiting, (code.co_name, line)
            spool.settle(stream, batch_of(queued, numbers))
            held -= set(numbers)
        spool.tidy()
        # One journal in use; and the spare made ahead, if the move did not take it.
        spare = spool._spare
        spare_paths = set() if spare is None else {spare.path}
        journals = set(directory.glob("*.journal"))
        assert journals == {spool._path} | spare_paths, (code.co_name, line)
        assert all(read_frames(p.read_bytes()) == ([], 0) for p in spare_paths)
        assert spool._journal is not None
        spool._journal.forget()
        os.close(spool._fd)
        os.close(spool._ack_fd)
        if spare is not None:
            spare.forget()
    print(f"measured: {settlement}: {cut} cuts, of {len(lines)} lines")
    assert cut > 0
    assert open_files_under(tmp_path) == []


def on_disk(spool_dir: Path) -> list[str]:
    """The messages a crash now would leave to replay: each journal's frames past its ``.ack``."""
    messages: list[str] = []
    for journal in spool_dir.glob("*.journal"):
        offset = ack_offset(journal.with_suffix(".ack"))
        frames, corrupt = read_frames(journal.read_bytes()[offset:])
        assert corrupt == 0
        messages += [frame.event.message for frame in frames]
    return messages


def log_without_pause(spool: Spool, rounds: int) -> tuple[PackedEvents, int]:
    """Log as a busy service does: each batch is settled while the next records already wait,
    so that everything is never settled at once. Checks after each round that a crash would
    replay exactly what waits; returns the waiting queue and the bytes of frames written."""
    s = Stream("s")
    waiting = journaled(spool, s, [Event(0, "first", 31)])
    written = len(encode_frame("s", Event(0, "first", 31)))
    for round_number in range(rounds):
        events = [
            Event(1 + i, f"round {round_number} record {i} " + "x" * 60, 100) for i in range(1_000)
        ]
        written += sum(len(encode_frame("s", event)) for event in events)
        waiting.extend(events, spool.append(s, events))  # logged while the last batch was out
        spool.settle(s, waiting.detach(len(waiting) - len(events)))  # that batch is delivered
        assert on_disk(spool._directory) == [event.message for event in waiting]
        spool.tidy()  # as the sender does once it has let go of its lock
        assert on_disk(spool._directory) == [event.message for event in waiting]
    return waiting, written


def test_a_process_that_never_stops_logging_keeps_a_small_journal(tmp_path: Path) -> None:
    """With logging that never pauses the journal is never emptied, yet it stays about the size
    of what waits: once its settled frames fill ROTATE_AFTER_BYTES, the waiting ones move to a
    new file and the old one is deleted (not a journal that grows by all that is ever logged).
    The file also holds the room the sender zeroes ahead of the next records (AHEAD_BYTES), and
    beside it may wait one spare journal, made ahead for the next move, holding nothing."""
    spool = Spool(tmp_path, group="/g", reporter=Reporter())
    waiting, written = log_without_pause(spool, rounds=60)
    assert spool._journal is not None
    in_use = spool._path
    journals = set(tmp_path.glob("*.journal"))
    assert written > 5 * ROTATE_AFTER_BYTES
    waiting_bytes = sum(len(encode_frame("s", event)) for event in waiting)
    assert in_use.stat().st_size <= ROTATE_AFTER_BYTES + waiting_bytes + AHEAD_BYTES
    spares = journals - {in_use}
    assert len(spares) <= 1 and all(read_frames(p.read_bytes()) == ([], 0) for p in spares)
    # Each journal and its .ack: the old ones are gone.
    assert set(tmp_path.iterdir()) == journals | {p.with_suffix(".ack") for p in journals}


def test_a_busy_service_reuses_its_journal_files_and_a_crash_while_one_is_emptied_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A journal moved away from is emptied in place and becomes the next spare: a service that
    never stops logging makes two journal files in all, however often it moves, rather than
    a new file (created, reserved, zeroed, faulted into a new map, deleted) at every move. A
    crash at any line of the emptying (the .ack still says the file is settled to its end, the
    zeros half written) replays exactly what waits, as a crash anywhere else does."""
    spool = Spool(tmp_path, group="/g", reporter=Reporter())
    made: list[Path] = []
    moves: list[Path] = []
    make_files, rotate = spool._new_files, spool._rotate

    def counted_files() -> tuple[Path, int, int]:
        files = make_files()
        made.append(files[0])
        return files

    def counted_move() -> None:
        moves.append(spool._path)
        rotate()

    monkeypatch.setattr(spool, "_new_files", counted_files)
    monkeypatch.setattr(spool, "_rotate", counted_move)
    emptying = {Spool._reuse.__code__, MappedJournal._empty.__code__}
    crash_leaves: list[list[str]] = []  # what waited when the sender began to tidy
    lines_checked: set[tuple[str, int]] = set()

    def at_each_line(frame: FrameType, event: str, arg: object) -> Any:
        if event == "line":
            assert on_disk(tmp_path) == crash_leaves[-1], (frame.f_code.co_name, frame.f_lineno)
            lines_checked.add((frame.f_code.co_name, frame.f_lineno))
        return at_each_line

    def on_call(frame: FrameType, event: str, arg: object) -> Any:
        if frame.f_code is Spool.tidy.__code__:
            crash_leaves.append(on_disk(tmp_path))
        return at_each_line if frame.f_code in emptying else None

    sys.settrace(on_call)
    try:
        log_without_pause(spool, rounds=60)
    finally:
        sys.settrace(None)
    reuse_lines = {n for n in range(*line_span(Spool._reuse)) if ("_reuse", n) in lines_checked}
    print(f"measured: {len(moves)} moves, {len(made)} journal files made")
    assert len(moves) >= 5 and len(made) == 2  # the first journal, and the first spare
    assert len(reuse_lines) >= 4 and any(name == "_empty" for name, _ in lines_checked)


def test_a_sender_far_behind_its_logging_thread_copies_no_more_frames_than_it_settles(
    tmp_path: Path,
) -> None:
    """A thread logging flat out keeps megabytes of frames waiting behind the batch being sent,
    and a move copies all that waits into the next journal. So a journal moves only once its
    settled frames outweigh the waiting ones, and all the moves together copy no more bytes than
    were settled. (Moved after every MiB settled, each frame was copied about once for each MiB
    waiting: four times over, at the 4 MiB a thread logging flat out kept waiting in the bench.)
    A crash at any round still replays exactly what waits."""
    spool = Spool(tmp_path, group="/g", reporter=Reporter())
    rounds = [
        [Event(1 + i, f"round {round_number} record {i} " + "x" * 60, 100) for i in range(1_000)]
        for round_number in range(150)  # bounded
    ]

    def a_crash_replays_what_waits(round_number: int, waiting: PackedEvents) -> None:
        if round_number % 25 == 0:
            assert on_disk(tmp_path) == [event.message for event in waiting]

    # 30 rounds wait behind the one delivered: about 3 MiB of frames.
    seen = settle_behind(spool, Stream("s"), rounds, 30, a_crash_replays_what_waits)
    assert on_disk(tmp_path) == [event.message for event in seen.waiting]
    copied, settled = seen.moves_copied, seen.settled_bytes
    print(f"measured: {len(copied)} moves copied {sum(copied):,} bytes; {settled:,} settled")
    assert len(copied) >= 2
    assert sum(copied) <= settled


def line_span(function: Callable[..., object]) -> tuple[int, int]:
    """The first and past-the-last line numbers of ``function``'s source."""
    lines, first = inspect.getsourcelines(function)
    return first, first + len(lines)


def test_the_move_to_a_new_journal_takes_the_spare_the_sender_made_and_leaves_room_ahead(
    tmp_path: Path,
) -> None:
    """The sender, after a batch and without its lock (`tidy`), makes the journal the next move
    goes to, and zeroes room ahead of the journal in use: the move (under the sender's lock)
    only copies frames, and logging calls find the room made, growing the file themselves only
    when the sender falls a whole AHEAD_BYTES behind."""
    spool = Spool(tmp_path, group="/g", reporter=Reporter())
    s = Stream("s")
    waiting = journaled(spool, s, [Event(0, "first", 31)])
    moved_into: list[Path] = []
    spares: set[Path] = set()
    for round_number in range(100):  # bounded: each round logs and settles about 100 KB
        events = [Event(1 + i, f"{round_number} {i} " + "x" * 60, 90) for i in range(1_000)]
        before = spool._path
        waiting.extend(events, spool.append(s, events))
        spool.settle(s, waiting.detach(len(waiting) - len(events)))
        if spool._path != before:
            moved_into.append(spool._path)
        spool.tidy()
        assert on_disk(tmp_path) == [event.message for event in waiting]
        assert spool._journal is not None
        assert spool._journal.capacity - spool._journal.size >= AHEAD_BYTES
        if spool._spare is not None:
            spares.add(spool._spare.path)
    print(f"measured: {len(moved_into)} moves, {len(spares)} spares made")
    assert moved_into and set(moved_into) <= spares  # into a spare each time, none made here


def test_a_journal_that_cannot_move_to_a_new_file_keeps_its_frames_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No new journal can be made (a full disk): the old one stays in use, nothing waiting is
    lost, and the side channel says why."""
    reports: list[str] = []
    spool = Spool(tmp_path, group="/g", reporter=Reporter(reports.append))
    first_journal = spool._new_files
    made: list[Path] = []

    def no_room_after_the_first() -> tuple[Path, int, int]:
        if made:
            raise OSError(28, "No space left on device")
        files = first_journal()
        made.append(files[0])
        return files

    monkeypatch.setattr(spool, "_new_files", no_room_after_the_first)
    log_without_pause(spool, rounds=20)
    assert list(tmp_path.glob("*.journal")) == made  # still the first journal
    assert any("could not start a new journal" in report for report in reports)


def test_frames_round_trip_with_their_stream_and_text(tmp_path: Path) -> None:
    """What is journaled reads back as the same stream, timestamp and message, Unicode included."""
    spool = Spool(tmp_path, group="/g", reporter=Reporter())
    event = Event(1_700_000_000_123, "héllo 😀", 37)
    spool.append(Stream("stream/x"), [event])
    [journal] = tmp_path.glob("*.journal")
    [frame], corrupt = read_frames(journal.read_bytes())
    assert (frame.stream, frame.event, corrupt) == ("stream/x", event, 0)


def orphan_journal(directory: Path, group: str, messages: list[str]) -> Path:
    """Leave a journal as a process killed outright would: frames written, nobody holding it."""
    frames = b"".join(
        encode_frame("s", Event(1_000 + i, m, 26 + len(m))) for i, m in enumerate(messages)
    )
    return dead_journal(directory, group, frames)


def replayed(directory: Path, group: str) -> tuple[list[str], list[str]]:
    """Open a spool on ``directory`` as a new handler would; return what it queued and reported."""
    reports: list[str] = []
    spool = Spool(directory, group=group, reporter=Reporter(reports.append))
    queued: list[str] = []
    for journal in spool._orphans():
        frames, _ = spool._read_orphan(journal)
        queued.extend(frame.event.message for frame in frames)
    return queued, reports


def test_the_spool_directory_and_its_files_are_private(tmp_path: Path) -> None:
    """The directory is created 0700 and the journal and its acknowledgement 0600."""
    directory = tmp_path / "spool"
    spool = Spool.open(directory, group="/g", reporter=Reporter())
    spool.append(Stream("s"), [Event(1_000, "m", 27)])
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = sorted(directory.iterdir())
    assert [p.suffix for p in files] == [".ack", ".journal"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)


def test_a_journal_in_a_private_directory_is_replayed(tmp_path: Path) -> None:
    """Our own journal, in a directory only we can write to, is replayed whole."""
    directory = tmp_path / "spool"
    directory.mkdir(mode=0o700)
    orphan_journal(directory, "/g", ["a", "b"])
    assert replayed(directory, "/g") == (["a", "b"], [])


def test_a_sticky_shared_directory_is_trusted_like_tmp(tmp_path: Path) -> None:
    """A world-writable directory with the sticky bit (like /tmp) still replays our journals."""
    directory = tmp_path / "shared"
    directory.mkdir()
    directory.chmod(0o1777)
    orphan_journal(directory, "/g", ["a"])
    assert replayed(directory, "/g") == (["a"], [])


def test_a_directory_others_may_write_to_is_never_replayed(tmp_path: Path) -> None:
    """In a group- or world-writable directory without the sticky bit, nothing is replayed, and
    the side channel says why and how to fix it."""
    directory = tmp_path / "open"
    directory.mkdir()
    directory.chmod(0o777)
    orphan_journal(directory, "/g", ["planted"])
    queued, reports = replayed(directory, "/g")
    assert queued == []
    assert len(reports) == 1 and "other users may write there" in reports[0]
    assert "0700" in reports[0]


def test_a_journal_another_user_owns_is_never_replayed(tmp_path: Path) -> None:
    """A journal owned by someone else is left alone and reported, even in a trusted directory."""
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    directory = tmp_path / "spool"
    directory.mkdir(mode=0o700)
    journal = orphan_journal(directory, "/g", ["planted"])
    os.chown(journal, 54321, 54321)
    queued, reports = replayed(directory, "/g")
    assert queued == []
    assert reports == [f"not replaying {journal.name}: another user owns it"]


def test_a_journal_that_is_a_symbolic_link_is_never_replayed(tmp_path: Path) -> None:
    """A journal name that links elsewhere is refused, not followed."""
    directory = tmp_path / "spool"
    directory.mkdir(mode=0o700)
    target = orphan_journal(tmp_path, "/g", ["elsewhere"])
    (directory / target.name).symlink_to(target)
    queued, reports = replayed(directory, "/g")
    assert queued == []
    assert len(reports) == 1 and reports[0].startswith(f"not replaying {target.name}")


_JOURNAL_ACROSS_A_FORK = """
import sys
from pathlib import Path
from types import FrameType, SimpleNamespace
from typing import Any

from aws_cloudwatch_logs_handler._reporting import Reporter
from aws_cloudwatch_logs_handler._spool import Spool

spool = Spool(Path(sys.argv[1]), group="/g", reporter=Reporter())
stream = SimpleNamespace(name="s")  # the spool only reads a stream's name
spool.append_one(stream, 1_000, "parent")


def journal_in_the_child() -> None:
    spool.append_one(stream, 2_000, "child")


pid, status, _ = in_a_child(journal_in_the_child)
print(pid, status)
"""
"""Journal a record, fork below Python, journal one in the child; print its pid and status."""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_child_forked_below_python_journals_into_a_file_of_its_own(tmp_path: Path) -> None:
    """A child made by libc's fork() (no Python hook runs) opens a journal named for its own
    process at its first record, and leaves its parent's journal as it was."""
    pid, status = run_script(_JOURNAL_ACROSS_A_FORK, str(tmp_path)).split()
    assert status == "0"
    journals = sorted(tmp_path.glob("*.journal"), key=lambda path: f".{pid}." in path.name)
    [parent_journal, child_journal] = journals
    assert f".{pid}." in child_journal.name and f".{pid}." not in parent_journal.name
    for journal, message in ((parent_journal, "parent"), (child_journal, "child")):
        frames, corrupt = read_frames(journal.read_bytes())
        assert [frame.event.message for frame in frames] == [message] and corrupt == 0


def crc32_frame(stream: str, event: Event) -> bytes:
    """A frame as builds before Adler-32 wrote it: the same layout, CRC-32 as its checksum."""
    name = stream.encode("utf-8")
    body = struct.pack(">qH", event.timestamp_ms, len(name)) + name + event.message.encode()
    return struct.pack(">2sII", b"\xc1\x0b", len(body), zlib.crc32(body)) + body


def test_a_journal_an_older_build_left_is_still_replayed(tmp_path: Path) -> None:
    """Frames checksummed with CRC-32 (earlier builds) read back beside Adler-32 ones, and a
    corrupt one of either kind is still skipped and counted."""
    old = [Event(1_000 + i, f"old {i}", 31) for i in range(3)]
    new = Event(2_000, "new", 29)
    broken = bytearray(crc32_frame("s", Event(1_500, "broken", 32)))
    broken[-1] ^= 0xFF
    data = b"".join(crc32_frame("s", e) for e in old) + bytes(broken) + encode_frame("s", new)
    frames, corrupt = read_frames(data)
    assert [frame.event for frame in frames] == [*old, new]
    assert corrupt == 1

    dead_journal(tmp_path, "/g", b"".join(crc32_frame("s", e) for e in old))
    assert replayed(tmp_path, "/g")[0] == ["old 0", "old 1", "old 2"]


def test_a_frame_torn_anywhere_by_a_killed_process_is_never_read_as_whole() -> None:
    """A process killed mid-copy leaves part of its last frame as the zeros the file held: at
    every point the copy can stop, in either direction, the frame is refused, not read."""
    stream = "stream/2026/12/01/1200/" + "f" * 36  # a dated-UUID name's length
    frame = encode_frame(stream, Event(1_764_590_000_000, "x" * 90, 0))
    after = encode_frame("s", Event(1, "the next frame", 40))
    [next_frame], _ = read_frames(after)
    for cut in range(1, len(frame)):
        for torn in (frame[:cut] + bytes(len(frame) - cut), bytes(cut) + frame[cut:]):
            assert read_frames(torn + after) == ([next_frame], 1), cut


@given(
    first=st.integers(0, 2**40),
    shape=st.one_of(
        st.integers(1, 60).map(lambda count: ("run", count, [])),
        st.lists(st.integers(-1, 62), min_size=1, max_size=60).map(lambda xs: ("any", 0, xs)),
    ),
)
def test_a_batch_is_recognised_as_the_next_frames_exactly_when_it_is(
    first: int, shape: tuple[str, int, list[int]]
) -> None:
    """The settle's quick test for "these are frames first, first + 1, ... in order" agrees with
    the plain comparison, for runs and for anything else (gaps, repeats, -1, disorder)."""
    kind, count, offsets = shape
    numbers = (
        array("q", range(first, first + count))
        if kind == "run"
        else array("q", [-1 if x < 0 else first + x for x in offsets])
    )
    runs = _Runs()
    expected = list(numbers) == list(range(first, first + len(numbers)))
    assert runs.match(numbers, first) is expected
    assert runs.match(array("q", range(first, first + 10_000)), first)  # a longer one after


def test_only_an_exact_run_of_a_full_batch_settles_at_once() -> None:
    """A full batch of 10,000 is told apart from one that differs in a single place."""
    runs = _Runs()
    run = array("q", range(77, 10_077))
    assert runs.match(run, 77)
    for index, value in ((0, 78), (5_000, -1), (9_999, 10_077), (9_999, 77)):
        changed = array("q", run)
        changed[index] = value
        assert not runs.match(changed, 77), (index, value)
    assert not runs.match(run, 76)
    assert runs.match(run[:9_000], 77)  # a shorter batch after a longer one


def claimed_in_a_worker(
    tmp_path: Path, *, journal_anew: bool
) -> tuple[Path, Spool, SimpleNamespace, list[Event], list[str]]:
    """A uWSGI master's spool that journaled 30 events, taken over in a stand-in worker (its
    process mark cleared, as a fork clears it), which claimed the latest 20; with
    ``journal_anew`` False, the worker cannot make its own journal. The master's journal, the
    spool, the worker's queues, the claimed events and the reports."""
    reports: list[str] = []
    spool = Spool.open(tmp_path, group="/g", reporter=Reporter(reports.append))
    stream = Stream("s")
    events = [Event(1_000 + n, f"loading-{n}", 26 + len(f"loading-{n}")) for n in range(30)]
    journaled(spool, stream, events)
    [master_journal] = tmp_path.glob("*.journal")
    claimed = PackedEvents()
    claimed.extend(events[10:], 10)  # numbered in the master's journal
    queues = SimpleNamespace(streams={"s": SimpleNamespace(name="s", queue=claimed)})
    spool._opened_here.byte[0] = 0  # what a fork does to the mark
    if not journal_anew:
        spool._directory = tmp_path / "gone"  # the worker's journal cannot be made
    spool.take_over_claimed(queues)  # type: ignore[arg-type]
    return master_journal, spool, queues, events[10:], reports


def test_a_uwsgi_worker_journals_what_it_claimed_then_settles_it_in_the_masters_journal(
    tmp_path: Path,
) -> None:
    """The worker's own journal holds the 20 claimed events, numbered from 0 in its queue, and
    the master's .ack covers its whole journal: a replay of both after a crash yields each
    event once."""
    master_journal, _, queues, claimed, reports = claimed_in_a_worker(tmp_path, journal_anew=True)
    assert ack_offset(master_journal.with_suffix(".ack")) == len(
        master_journal.read_bytes().rstrip(b"\0")
    )
    [worker_journal] = [path for path in tmp_path.glob("*.journal") if path != master_journal]
    frames, corrupt = read_frames(worker_journal.read_bytes())
    assert ([frame.event for frame in frames], corrupt) == (claimed, 0)
    assert list(queues.streams["s"].queue.journal_numbers()) == list(range(20))
    assert reports == []


def test_a_uwsgi_worker_that_cannot_journal_what_it_claimed_keeps_it_and_says_so(
    tmp_path: Path,
) -> None:
    """Its own journal cannot be made: the claimed events stay queued, no longer numbered in a
    journal that is not the worker's, the master's journal is not marked settled (a replay may
    send them twice, never lose them), and the side channel says why."""
    master_journal, _, queues, claimed, reports = claimed_in_a_worker(tmp_path, journal_anew=False)
    assert ack_offset(master_journal.with_suffix(".ack")) == 0
    assert list(queues.streams["s"].queue) == claimed
    assert queues.streams["s"].queue.journal_numbers() is None
    assert len(reports) == 1 and "could not journal the uWSGI master's records" in reports[0]
