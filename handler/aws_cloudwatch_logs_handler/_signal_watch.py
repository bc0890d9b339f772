"""A SIGTERM whose handler the main thread does not run: noticed, and the main thread woken.

CPython runs a Python signal handler on the main thread, where that thread checks for signals:
between two bytecodes, or when the signal cuts a blocking call short (``EINTR``). A signal that
comes after the thread's last check and before it blocks again cuts nothing short. Its handler
stays marked to run, and the thread sleeps on: for good, in an untimed wait (a lock, a
semaphore, ``join()``). Without a Python handler the signal would have ended the process
there; with ours, `with Pool()` hung in its exit, waiting for a worker that had gone back to
wait for its next task just as ``terminate()`` signalled it (2 runs in about 175 on a loaded
host, where a thread can lose its core for milliseconds between the two). The same happens when
the kernel gives the signal to another thread while the main thread waits.

CPython's own signal handler, the C one, writes each signal's number to the wake-up descriptor
(`signal.set_wakeup_fd`), on whatever thread the signal lands, before any Python code runs. The
watch gives it a pipe and reads it on a thread of its own. When SIGTERM's byte comes and our
handler has not run shortly after, it sends the main thread SIGURG, whose handler does nothing:
the signal cuts the blocking call short, and CPython then runs every marked handler, SIGTERM's
too. SIGURG (out-of-band socket data, ignored by default) is taken only while nobody handles
it. The nudge is harmless when the byte was not ours: a child forked below Python's hooks
writes its signals into the same pipe until it makes its own.

The watch is not set up where the wake-up descriptor is someone else's (an asyncio loop's): its
loop wakes on the byte, so the main thread runs the handler anyway. A loop that takes the
descriptor later does so too.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Final

_NUDGE_PAUSES_S: Final = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
"""How long the watch waits for the handler before each nudge: the first gives a main thread
that is running Python code time to get there by itself; about two seconds in all, after which
the main thread is busy in C code that retries on its own, and runs the handler when it is done."""
_NUDGE: Final = getattr(signal, "SIGURG", None)


def _do_nothing(signum: int, frame: object) -> None:
    """SIGURG's handler while the watch holds it: the signal is only there to cut a wait short."""


class SignalWatch:
    """Reads the wake-up pipe and nudges the main thread while a SIGTERM's handler waits to run.

    Args:
        handled: tells whether SIGTERM's Python handler has run since the signal came.
    """

    def __init__(self, handled: Callable[[], bool]) -> None:
        self._handled = handled
        self._read_fd = -1
        self._write_fd = -1
        self._main_ident = 0

    @classmethod
    def start(cls, handled: Callable[[], bool]) -> SignalWatch | None:
        """Set the watch up from the main thread; None where it cannot or must not be."""
        watch = cls(handled)
        return watch if watch._set_up(replacing=-1) else None

    def after_fork_in_child(self) -> SignalWatch | None:
        """In a child of ``os.fork()`` (on the thread that is its main thread now): a pipe and a
        thread of its own. Where that fails, the child keeps writing into the parent's pipe."""
        watch = SignalWatch(self._handled)
        if not watch._set_up(replacing=self._write_fd):
            return None
        for fd in (self._read_fd, self._write_fd):  # the child's copies; the parent keeps its own
            with contextlib.suppress(OSError):
                os.close(fd)
        return watch

    def _set_up(self, *, replacing: int) -> bool:
        """Take the wake-up descriptor if it is free or ``replacing``, and SIGURG if nobody
        handles it; start the thread. False, with everything as it was, where any step fails."""
        if _NUDGE is None or not hasattr(signal, "pthread_kill"):
            return False
        try:
            if signal.getsignal(_NUDGE) not in (signal.SIG_DFL, _do_nothing):
                return False  # the application handles SIGURG: never take it
            read_fd, write_fd = os.pipe()
        except (OSError, ValueError):
            return False
        previous: int | None = None
        try:
            os.set_blocking(write_fd, False)  # the C handler must never block on it
            previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
            if previous not in (-1, replacing):
                raise ValueError("the wake-up descriptor is someone else's (an event loop's)")
            signal.signal(_NUDGE, _do_nothing)
            self._read_fd, self._write_fd = read_fd, write_fd
            self._main_ident = threading.get_ident()
            # A plain thread: it never touches `threading`'s bookkeeping, and it is ended
            # with the process like a daemon thread.
            _thread.start_new_thread(self._watch, ())
        except (OSError, ValueError, RuntimeError):
            with contextlib.suppress(OSError, ValueError):
                if previous is not None:
                    signal.set_wakeup_fd(previous)
                if signal.getsignal(_NUDGE) is _do_nothing:
                    signal.signal(_NUDGE, signal.SIG_DFL)
            for fd in (read_fd, write_fd):
                os.close(fd)
            return False
        return True

    def _watch(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # it is the main thread's
        while True:
            try:
                numbers = os.read(self._read_fd, 64)
            except OSError:
                return
            if not numbers:
                return
            if signal.SIGTERM in numbers:
                self._nudge_until_handled()

    def _nudge_until_handled(self) -> None:
        for pause_s in _NUDGE_PAUSES_S:
            time.sleep(pause_s)
            if self._handled() or _NUDGE is None:
                return
            try:
                signal.pthread_kill(self._main_ident, _NUDGE)
            except (OSError, ValueError):
                return
