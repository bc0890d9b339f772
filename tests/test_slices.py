"""The sender's turns: it lets logging threads in once per `TURN_S` of its own CPU time."""

from __future__ import annotations

import threading

from fake_clock import FakeClock

from aws_cloudwatch_logs_handler._slices import BEHIND_TURN_S, PAUSE_S, TURN_S, Turns


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
