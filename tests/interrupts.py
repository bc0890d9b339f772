"""Interrupting a call at a chosen line, as Ctrl-C's KeyboardInterrupt can, deterministically.

A real signal lands where it happens to; a trace function raising at a line's start reaches
every line in turn, and one raising at each opcode where CPython may run a signal handler
reaches every such place in turn. Only the calling thread is traced, so the sender runs as it
always does.
"""

from __future__ import annotations

import dis
import sys
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from itertools import pairwise
from types import CodeType, FrameType
from typing import Any, NamedTuple


@contextmanager
def interrupted_at(code: CodeType, line: int) -> Iterator[list[int]]:
    """Raise KeyboardInterrupt once, when this thread reaches ``line`` of ``code``; yields
    [1] once it did, [0] until then."""
    fired = [0]

    def in_code(frame: FrameType, event: str, arg: object) -> Any:
        if event == "line" and frame.f_lineno == line and not fired[0]:
            fired[0] = 1
            raise KeyboardInterrupt
        return in_code

    def calls(frame: FrameType, event: str, arg: object) -> Any:
        return in_code if frame.f_code is code else None

    sys.settrace(calls)
    try:
        yield fired
    finally:
        sys.settrace(None)


class SignalChecks(NamedTuple):
    """Where in a code object an opcode run after another may be a place where a signal lands."""

    calls: frozenset[int]
    """The calls' offsets: a check comes right after one returns."""
    jumps: dict[int, int]
    """Each conditional jump's offset, mapped to the offset it falls through to if not taken."""
    handlers: dict[int, int | None]
    """Each opcode's exception handler (3.11 on; none on 3.10, whose handlers are a stack)."""


def signal_checks(code: CodeType) -> SignalChecks:
    """Where a signal may land in ``code`` (`interrupted_at_check`)."""
    instructions = list(dis.get_instructions(code))
    entries = getattr(dis.Bytecode(code), "exception_entries", [])
    handlers = {
        i.offset: next((e.target for e in entries if e.start <= i.offset < e.end), None)
        for i in instructions
    }
    return SignalChecks(
        calls=frozenset(i.offset for i in instructions if i.opname.startswith("CALL")),
        jumps={
            i.offset: after.offset
            for i, after in pairwise(instructions)
            if "JUMP" in i.opname and "IF" in i.opname
        },
        handlers=handlers,
    )


@contextmanager
def interrupted_at_check(codes: Collection[CodeType], index: int) -> Iterator[list[int]]:
    """Raise KeyboardInterrupt once, at the ``index``-th place (0 the first) in ``codes`` where
    CPython may run a signal handler; yields [1] once it did, [0] until then.

    Those places, the union of what 3.10 to 3.13 do: a function's start, and a generator's
    resumption (3.11 on); right after a call returns; a loop's turn (a jump backward); and,
    on 3.10, every conditional jump taken, an ``if``'s too. So a state that must change all at
    once can hold neither a call nor an ``if`` in its middle: this finds each one.

    The exception is raised before the opcode that runs next. CPython raises it in the one
    that checked (the call, the jump), whose exception handler may differ from the next one's
    (3.11 on: a jump out of a ``with`` block to its ``return``). Such a place is left out: the
    exception cannot be raised where it would land.
    """
    fired = [0]
    reached = [0]
    checks = {code: signal_checks(code) for code in codes}
    last: dict[object, int | None] = {}  # the offset run last, by frame (or code, on 3.12 on)

    def step(place: object, code: CodeType, offset: int) -> None:
        calls, jumps, handlers = checks[code]
        before = last.get(place)
        last[place] = offset
        if before is None or (
            handlers[before] == handlers[offset]
            and (
                before in calls or offset <= before or (before in jumps and offset != jumps[before])
            )
        ):
            reached[0] += 1
            if reached[0] == index + 1:
                fired[0] = 1
                raise KeyboardInterrupt

    with _each_opcode(checks, step, last):
        yield fired


@contextmanager
def _each_opcode(
    codes: Collection[CodeType],
    step: Callable[[object, CodeType, int], None],
    last: dict[object, int | None],
) -> Iterator[None]:
    """Call ``step`` before each opcode of ``codes`` this thread runs (``last`` forgets a frame's
    place when it starts or resumes). A trace function's opcode events on 3.10 and 3.11;
    `sys.monitoring` from 3.12, whose trace functions no longer see opcodes."""
    if sys.version_info < (3, 12):

        def in_code(frame: FrameType, event: str, arg: object) -> Any:
            if event == "opcode":
                step(frame, frame.f_code, frame.f_lasti)
            return in_code

        def calls(frame: FrameType, event: str, arg: object) -> Any:
            if frame.f_code not in codes:
                return None
            frame.f_trace_opcodes = True
            last[frame] = None  # a start, or a generator's resumption
            return in_code

        sys.settrace(calls)
        try:
            yield
        finally:
            sys.settrace(None)
        return
    monitoring = sys.monitoring
    tool = next(t for t in range(6) if monitoring.get_tool(t) is None)
    events = monitoring.events
    monitoring.use_tool_id(tool, "interrupts")
    try:
        # Its events come from every thread: only this one's count (the sender runs beside it).
        this_thread = threading.get_ident()

        def started(code: CodeType, offset: int) -> None:
            if threading.get_ident() == this_thread:
                last[code] = None

        def instruction(code: CodeType, offset: int) -> None:
            if threading.get_ident() == this_thread:
                step(code, code, offset)

        monitoring.register_callback(tool, events.PY_START, started)
        monitoring.register_callback(tool, events.PY_RESUME, started)
        monitoring.register_callback(tool, events.INSTRUCTION, instruction)
        for code in codes:
            wanted = events.PY_START | events.PY_RESUME | events.INSTRUCTION
            monitoring.set_local_events(tool, code, wanted)
        yield
    finally:
        for code in codes:
            monitoring.set_local_events(tool, code, 0)
        monitoring.free_tool_id(tool)
