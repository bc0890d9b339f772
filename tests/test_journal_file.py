"""The spool's mapped journal file: what is appended is in the file, across growth and emptying."""

from __future__ import annotations

import errno
import mmap
import os
import resource
import threading
from pathlib import Path

import pytest

from aws_cloudwatch_logs_handler import _journal_file
from aws_cloudwatch_logs_handler._events import Event
from aws_cloudwatch_logs_handler._journal_file import (
    GROWTH_BYTES,
    MAX_STEP_BYTES,
    REWIND_UP_TO_BYTES,
    MappedJournal,
)
from aws_cloudwatch_logs_handler._spool import encode_frame, read_frames


def test_appends_reach_the_file_across_growth(tmp_path: Path) -> None:
    """Frames written past several growth steps read back whole from the file, zeros ignored."""
    path = tmp_path / "j.journal"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        journal = MappedJournal(fd)
        frames = [encode_frame("s", Event(i, f"message {i} " + "x" * 500, 0)) for i in range(5_000)]
        for frame in frames:
            journal.append(frame)
        data = path.read_bytes()  # read through the file, as a replaying process does
        assert journal.size == sum(map(len, frames)) > 2 * GROWTH_BYTES
        assert data[: journal.size] == b"".join(frames)
        read, corrupt = read_frames(data)
        assert [f.event.message for f in read] == [
            f"message {i} " + "x" * 500 for i in range(5_000)
        ]
        assert corrupt == 0
        journal.empty()  # zeroed in place and kept: it is no larger than REWIND_UP_TO_BYTES
        assert read_frames(path.read_bytes()) == ([], 0)
        journal.append(frames[0])
        assert read_frames(path.read_bytes()) == ([read[0]], 0)
    finally:
        os.close(fd)


def test_an_emptied_journal_larger_than_the_rewind_limit_gives_its_space_back(
    tmp_path: Path,
) -> None:
    """A journal that an outage grew past REWIND_UP_TO_BYTES is truncated when emptied, and
    grows again from nothing."""
    path = tmp_path / "j.journal"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        journal = MappedJournal(fd)
        frame = encode_frame("s", Event(1, "x" * 60_000, 0))
        while journal.size <= REWIND_UP_TO_BYTES:
            journal.append(frame)
        journal.empty()
        assert path.stat().st_size == 0
        journal.append(frame)
        assert len(read_frames(path.read_bytes())[0]) == 1
    finally:
        os.close(fd)


@pytest.mark.skipif(not hasattr(resource, "RUSAGE_THREAD"), reason="per-thread counts: Linux")
def test_writing_into_a_new_journal_takes_no_page_fault_per_page(tmp_path: Path) -> None:
    """The pages a growing journal maps are written as zeros first, so the logging calls that
    copy frames into them do not each fault a page in (about 6 us on ext4's reserved blocks)."""
    path = tmp_path / "j.journal"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        journal = MappedJournal(fd)
        frame = encode_frame("s", Event(1, "m" * 100, 0))
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        while journal.size < 4 * GROWTH_BYTES:  # bounded: each append adds a frame
            journal.append(frame)
        faults = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before
        pages = journal.size // mmap.PAGESIZE
        assert faults < pages // 4, (faults, pages)
        assert read_frames(path.read_bytes())[0][0].event.message == "m" * 100
        # Grown in steps: the call that grows the file writes no more zeros than one step.
        assert path.stat().st_size - journal.size <= MAX_STEP_BYTES
    finally:
        os.close(fd)


def test_a_journal_whose_new_mapping_fails_keeps_what_it_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is mapped anew when it grows; if that mapping fails (no memory), the append
    raises OSError for the spool to report, and the journal goes on as it was: what it held is
    still there, and the next append that fits, or grows, works."""
    fd = os.open(tmp_path / "j.journal", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        journal = MappedJournal(fd)
        first = encode_frame("s", Event(1, "kept", 0))
        journal.append(first)

        def no_memory(*args: object, **kwargs: object) -> mmap.mmap:
            raise OSError(errno.ENOMEM, "Cannot allocate memory")

        with monkeypatch.context() as patched:
            patched.setattr(mmap, "mmap", no_memory)  # as `_journal_file` calls it
            with pytest.raises(OSError, match="Cannot allocate memory"):
                journal.append(b"\x01" * (journal.capacity + 1))
        second = encode_frame("s", Event(2, "after", 0))
        journal.append(second)
        journal.append(b"\x02" * GROWTH_BYTES)  # grows, now that mapping works
        assert os.pread(fd, len(first) + len(second), 0) == first + second
    finally:
        journal.forget()
        os.close(fd)


def test_frames_appended_while_the_sender_grows_the_journal_ahead_all_read_back(
    tmp_path: Path,
) -> None:
    """The sender grows the journal ahead (`grow_ahead`) without its lock, while logging calls
    append and sometimes grow it themselves: every frame reads back from the file, in order,
    none overwritten by the other thread's zeros."""
    path = tmp_path / "j.journal"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    journal = MappedJournal(fd)
    frames = [encode_frame("s", Event(i, f"message {i} " + "x" * 200, 0)) for i in range(20_000)]
    appended = threading.Event()
    grown: list[int] = []

    def sender() -> None:
        while not appended.is_set():  # bounded: the appending thread sets it when done
            capacity = journal.capacity
            journal.grow_ahead(room=64 * 1024)  # small room: the appends catch up, often
            if journal.capacity != capacity:
                grown.append(journal.capacity)

    thread = threading.Thread(target=sender)
    thread.start()
    try:
        for frame in frames:
            journal.append(frame)
    finally:
        appended.set()
        thread.join()
    try:
        read, corrupt = read_frames(path.read_bytes())
        assert corrupt == 0
        assert [f.event.message for f in read] == [
            f"message {i} " + "x" * 200 for i in range(20_000)
        ]
        print(f"measured: grown ahead {len(grown)} times while appending")
        assert grown
    finally:
        journal.forget()
        os.close(fd)


def test_a_logging_call_that_needs_room_while_the_sender_grows_ahead_waits_for_its_zeros(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sender's zeros go past the capacity it read when it began. A logging call that runs
    out of room meanwhile waits for it to finish, then writes past that capacity: the zeros
    land before its frames, never over them."""
    path = tmp_path / "j.journal"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    journal = MappedJournal(fd)
    frame = encode_frame("s", Event(1, "m" * 100, 0))
    journal.append(frame)  # the first step: grown by this call
    while journal.capacity - journal.size >= len(frame):  # bounded: fills the first step
        journal.append(frame)
    capacity = journal.capacity
    written_past = threading.Event()
    reserve = _journal_file._reserve

    def sender_slowed(fd: int, offset: int, length: int, *, in_one_call: bool) -> None:
        if in_one_call:  # the sender's: held until the logging call wrote past it, or 0.5 s
            written_past.wait(timeout=0.5)
        reserve(fd, offset, length, in_one_call=in_one_call)

    monkeypatch.setattr(_journal_file, "_reserve", sender_slowed)
    thread = threading.Thread(target=journal.grow_ahead)
    thread.start()
    try:
        appended = 0
        while journal.size <= capacity + 10 * len(frame) and appended < 1_000:  # bounded
            journal.append(frame)
            appended += 1
        written_past.set()
    finally:
        thread.join()
    try:
        read, corrupt = read_frames(path.read_bytes())
        assert corrupt == 0 and len(read) * len(frame) == journal.size
    finally:
        journal.forget()
        os.close(fd)
