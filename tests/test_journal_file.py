"""The spool's mapped journal file: what is appended is in the file, across growth and resets."""

from __future__ import annotations

import os
from pathlib import Path

from aws_cloudwatch_logs_handler._events import Event
from aws_cloudwatch_logs_handler._journal_file import GROWTH_BYTES, MappedJournal
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
        journal.reset()
        assert path.stat().st_size == 0
        journal.append(frames[0])
        assert read_frames(path.read_bytes()) == ([read[0]], 0)
    finally:
        os.close(fd)
