"""The sender's turns: it lets logging threads in once per `TURN_S` of its own CPU time."""

from __future__ import annotations

import threading

from fake_clock import FakeClock

from aws_cloudwatch_logs_handler._slices import (
    BEHIND_TURN_S,
    OFF_CPU_S,
    PAUSE_S,
    TURN_S,
    Turns,
)


def test_checkpoints_within_a_turn_do_not_sleep_and_the_first_past_it_does() -> None:
    """Between two sleeps the sender runs a whole turn: checkpoints inside it cost no GIL
    hand-over; the first one past it sleeps once, and a new turn starts from there."""
    clock, sleeps = FakeClock(), list[float]()
    turns = Turns(clock=clock, sleep=sleeps.append)
    for _ in range(5):
        clock.now_s += TURN_S / 10
        turns.pause()
    assert sleeps == []
    clock.now_s += TURN_S
    turns.pause()
    assert sleeps == [PAUSE_S]
    turns.pause()  # the new turn has only begun
    assert sleeps == [PAUSE_S]
    clock.now_s += TURN_S
    turns.pause()
    assert sleeps == [PAUSE_S, PAUSE_S]


def test_each_thread_has_turns_of_its_own() -> None:
    """A thread's turn is measured by its own clock: another thread's work does not use it up."""
    clock, sleeps = FakeClock(), list[float]()
    turns = Turns(clock=clock, sleep=sleeps.append)
    clock.now_s += 2 * TURN_S  # the first thread has run two turns' worth...
    slept_in_new_thread: list[int] = []

    def other() -> None:
        turns.pause()  # ...but this thread's turn starts at its first use
        slept_in_new_thread.append(len(sleeps))

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert slept_in_new_thread == [0]
    turns.pause()
    assert sleeps == [PAUSE_S]


def test_a_checkpoint_before_a_long_stretch_sleeps_unless_the_stretch_fits_the_turn() -> None:
    """Before work that has no checkpoint of its own (botocore's, up to our hook), the thread
    sleeps first if that work would run past its turn: a logging call never waits for both."""
    clock, sleeps = FakeClock(), list[float]()
    turns = Turns(clock=clock, sleep=sleeps.append)
    clock.now_s += TURN_S * 0.6
    turns.pause(ahead_s=TURN_S * 0.3)  # fits in what is left
    assert sleeps == []
    turns.pause(ahead_s=TURN_S * 0.5)  # would not
    assert sleeps == [PAUSE_S]


def test_a_thread_behind_runs_longer_turns() -> None:
    """With `BEHIND_TURN_S` turns, checkpoints within the longer turn do not sleep."""
    clock, sleeps = FakeClock(), list[float]()
    turns = Turns(clock=clock, sleep=sleeps.append)
    turns.turn_s = BEHIND_TURN_S
    clock.now_s += TURN_S * 1.5  # past a normal turn: this one started before the change
    turns.pause()
    assert sleeps == [PAUSE_S]
    clock.now_s += TURN_S * 1.5  # within the long turn that began at that sleep
    turns.pause()
    assert sleeps == [PAUSE_S]
    clock.now_s += BEHIND_TURN_S
    turns.pause()
    assert sleeps == [PAUSE_S, PAUSE_S]


def _turns_with_two_clocks() -> tuple[Turns, FakeClock, FakeClock, list[float]]:
    cpu, wall, sleeps = FakeClock(), FakeClock(), list[float]()
    return Turns(clock=cpu, sleep=sleeps.append, wall_clock=wall), cpu, wall, sleeps


def _run(cpu: FakeClock, wall: FakeClock, seconds: float) -> None:
    """The thread works: both clocks move."""
    cpu.now_s += seconds
    wall.now_s += seconds


def test_a_wait_for_the_gil_between_checkpoints_starts_the_turn_at_the_one_before() -> None:
    """Off the CPU between two checkpoints (waiting to take the GIL back while a logging thread
    held it), the thread has held the GIL since the earlier checkpoint at most: its turn is
    counted from there, not from its last sleep."""
    turns, cpu, wall, sleeps = _turns_with_two_clocks()
    _run(cpu, wall, TURN_S * 0.8)
    turns.pause()  # within the turn
    wall.now_s += 0.005  # waits 5 ms for the GIL...
    _run(cpu, wall, TURN_S * 0.6)  # ...and works past the turn begun at the start
    turns.pause()
    assert sleeps == []  # held only 0.6 of a turn since the checkpoint before the wait
    _run(cpu, wall, TURN_S * 0.5)
    turns.pause()
    assert sleeps == [PAUSE_S]


def test_time_off_the_cpu_too_short_to_be_a_wait_for_the_gil_changes_nothing() -> None:
    """Less than `OFF_CPU_S` off the CPU (a page fault, a short preemption) is no sign that a
    logging thread had the GIL: the turn goes on."""
    turns, cpu, wall, sleeps = _turns_with_two_clocks()
    _run(cpu, wall, TURN_S * 0.8)
    turns.pause()
    wall.now_s += OFF_CPU_S / 2
    _run(cpu, wall, TURN_S * 0.6)
    turns.pause()
    assert sleeps == [PAUSE_S]


def test_a_checkpoint_after_a_call_that_let_the_gil_go_starts_a_turn_there() -> None:
    """Right after a call that let the GIL go (botocore hashing the body) and had to wait to
    take it back, a new turn starts; without such a wait, the turn goes on."""
    turns, cpu, wall, sleeps = _turns_with_two_clocks()
    _run(cpu, wall, TURN_S * 0.5)
    turns.pause()
    _run(cpu, wall, TURN_S * 1.2)  # hashing, without the GIL but on the CPU
    wall.now_s += 0.005  # then waiting for the GIL
    turns.took_gil_back()
    _run(cpu, wall, TURN_S * 0.9)
    turns.pause()
    assert sleeps == []
    _run(cpu, wall, TURN_S * 0.2)
    turns.took_gil_back()  # no wait this time: the turn begun above goes on
    turns.pause()
    assert sleeps == [PAUSE_S]


def test_a_checkpoint_that_comes_late_after_the_gil_came_back_counts_what_ran_before_it() -> None:
    """The first checkpoint after a reply comes once urllib3 has read it, with the GIL taken back
    meanwhile: what ran since (``held_s``) counts toward the turn begun when the GIL came back."""
    turns, cpu, wall, sleeps = _turns_with_two_clocks()
    turns.pause()
    wall.now_s += 0.005  # waiting for the reply, then for the GIL
    _run(cpu, wall, TURN_S * 0.6)  # reading the reply
    turns.took_gil_back(held_s=TURN_S * 0.6)
    turns.pause(ahead_s=TURN_S * 0.3)
    assert sleeps == []  # 0.9 of a turn: it fits
    wall.now_s += 0.005
    _run(cpu, wall, TURN_S * 0.6)
    turns.took_gil_back(held_s=TURN_S * 0.6)
    turns.pause(ahead_s=TURN_S * 0.5)
    assert sleeps == [PAUSE_S]  # 1.1 turns: the logging threads go first
