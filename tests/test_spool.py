"""The spool's journal: acknowledged only up to the first unsettled frame, emptied when all are."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aws_cloudwatch_logs_handler._events import Event
from aws_cloudwatch_logs_handler._reporting import Reporter
from aws_cloudwatch_logs_handler._spool import _ACK, Spool, encode_frame, read_frames


@dataclass
class Stream:
    """Stands for a destination: the spool only reads its stream name."""

    stream: str


def acked(spool_dir: Path) -> int:
    [ack] = spool_dir.glob("*.ack")
    data = ack.read_bytes()
    return _ACK.unpack(data)[0] if data else 0


def test_out_of_order_settlement_acknowledges_only_the_settled_prefix(tmp_path: Path) -> None:
    """Frames settled ahead of an unsettled one are not acknowledged until it settles too."""
    spool = Spool(tmp_path, group="/g", reporter=Reporter())
    a, b = Stream("a"), Stream("b")
    events = [Event(1_000 + i, f"m{i}", 28) for i in range(4)]
    for i, event in enumerate(events):
        spool.append(a if i % 2 == 0 else b, [event])
    sizes = [len(encode_frame("a" if i % 2 == 0 else "b", e)) for i, e in enumerate(events)]
    spool.settle(b, [events[1], events[3]])  # stream b settles first
    assert acked(tmp_path) == 0
    spool.settle(a, [events[0]])
    assert acked(tmp_path) == sizes[0] + sizes[1]
    [journal] = tmp_path.glob("*.journal")
    frames, corrupt = read_frames(journal.read_bytes()[acked(tmp_path) :])
    assert [f.event.message for f in frames] == ["m2", "m3"] and corrupt == 0
    spool.settle(a, [events[2]])
    assert journal.stat().st_size == 0 and acked(tmp_path) == 0  # emptied, not grown forever


def test_frames_round_trip_with_their_stream_and_text(tmp_path: Path) -> None:
    """What is journaled reads back as the same stream, timestamp and message, Unicode included."""
    spool = Spool(tmp_path, group="/g", reporter=Reporter())
    event = Event(1_700_000_000_123, "héllo 😀", 37)
    spool.append(Stream("stream/x"), [event])
    [journal] = tmp_path.glob("*.journal")
    [frame], corrupt = read_frames(journal.read_bytes())
    assert (frame.stream, frame.event, corrupt) == ("stream/x", event, 0)
