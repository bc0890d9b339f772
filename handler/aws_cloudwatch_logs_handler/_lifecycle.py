"""The process life cycle: deliver before the process ends, however it ends; start afresh at fork.

A process ends in one of these ways, and each gets its own hook into the one sender:

- a normal exit: ``atexit`` delivers what is queued, within ``shutdown_timeout_s``;
- ``os._exit``, which skips ``atexit`` (a multiprocessing worker's end, a Celery pool process's,
  RQ's work horse's): our ``os._exit``, which delivers first;
- SIGTERM with Python's default disposition (``docker stop``, Kubernetes, ECS, ``Pool.terminate()``,
  ``Process.terminate()``): the default would end the process on the spot, so we catch it, deliver
  (bounded), then end the process *by the signal* with the default disposition restored, so that
  orchestrators and ``Popen.returncode`` still see status 143 / ``-15``;
- ``os.fork()``: Python's fork hooks give the child an empty sender (it never resends its parent's
  queue); a fork made below Python (uWSGI's workers, ``fork()`` from C) runs no hook, so the sender
  notices the new process id on the child's first logging call instead (see `Sender.enqueue`);
- a uWSGI master runs no exit hook and no sender: its workers send its records (`_handover`).
- a uWSGI worker runs its Python exit hooks only if it is not busy, and after OpenSSL has ended:
  a hook in libc's own exit hooks delivers before both (`_uwsgi_exit`).

The SIGTERM hook is installed only where the disposition is still Python's default: a handler the
application installed, before or after ours, is never replaced. `signal.signal` works only on the
main thread; a handler made on another thread asks the main thread to install the hook (through
CPython's pending calls), and any logging call made on the main thread does so too.
"""

from __future__ import annotations

import _thread
import atexit
import contextlib
import functools
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Final, NoReturn

from ._signal_watch import SignalWatch

if TYPE_CHECKING:
    from ._sender import Sender


_WAKE_TRIES: Final = 40
_WAKE_FIRST_PAUSE_S: Final = 0.005
_WAKE_LONGEST_PAUSE_S: Final = 0.25
"""After delivery, the main thread is signalled up to 40 times, 5 ms apart at first and at most
a quarter of a second later on (about 9 s in all): a main thread stuck in a call that retries
on its own (some C extensions) never runs its handler, and the thread stops trying then."""


def _default_disposition() -> bool:
    """Tell whether SIGTERM still has the disposition Python starts with (end the process)."""
    try:
        return signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    except (ValueError, AttributeError):  # no SIGTERM on this platform
        return False


class SigtermDelivery:
    """Delivers what is queued when SIGTERM arrives, then lets the signal end the process.

    The Python-level handler runs on the main thread between two bytecodes, possibly while that
    very thread holds the sender's lock (in the middle of a logging call) or logging's lock (in
    the middle of ``dictConfig``). So it never waits there: it starts a plain thread that
    delivers, and that thread signals the main thread again once done; the handler, called the
    second time, restores the default disposition and re-raises the signal. A SIGTERM whose
    handler the main thread does not run (it landed just before the thread blocked) is noticed
    by `_signal_watch.SignalWatch`, which wakes the main thread.
    """

    def __init__(self, sender: Sender) -> None:
        self._sender = sender
        self._wanted = False
        self._installed = False
        self.install_pending = False
        """A handler asked for the hook and the main thread has not tried to install it yet
        (a plain attribute: every logging call reads it)."""
        self._asked_main_thread = False
        self._received = False
        self._delivered = False
        self._main_ident: int | None = None
        self._pending_call: Any = None  # the ctypes callback, kept alive while it is pending
        self._watch: SignalWatch | None = None
        """Wakes the main thread when a SIGTERM's handler does not run (`_signal_watch`)."""

    def want(self) -> None:
        """A handler wants SIGTERM to deliver: install the hook now or from the main thread."""
        self._wanted = True
        self.install_pending = not self._installed
        if threading.current_thread() is threading.main_thread():
            self.install_from_main_thread()
        else:
            self._ask_main_thread()

    def install_from_main_thread(self) -> None:
        """Install the hook if the disposition is still the default (main thread only)."""
        if self._installed or not self._wanted:
            return
        self._installed = True  # one try only: a handler the application set later stays theirs
        self.install_pending = False
        if not _default_disposition():
            return
        try:
            signal.signal(signal.SIGTERM, self._on_sigterm)
        except ValueError:  # not the main thread of the main interpreter after all
            self._installed = False
            self.install_pending = True
            return
        self._watch = SignalWatch.start(self._handler_ran)

    def _handler_ran(self) -> bool:
        return self._received

    def _ask_main_thread(self) -> None:
        """Have the main thread install the hook when it next runs Python code.

        `signal.signal` refuses any other thread. CPython's ``Py_AddPendingCall`` runs a function
        on the main thread at its next bytecode; a main thread blocked for good in C (a ``join``
        without timeout) never gets there, and then the first logging call it makes installs it.
        """
        if self._asked_main_thread or sys.implementation.name != "cpython":
            return
        self._asked_main_thread = True
        try:
            import ctypes

            callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)

            def install(_: object) -> int:
                self._pending_call = None
                self.install_from_main_thread()
                return 0

            self._pending_call = callback_type(install)
            add_pending_call = ctypes.pythonapi.Py_AddPendingCall
            add_pending_call.argtypes = [callback_type, ctypes.c_void_p]
            add_pending_call.restype = ctypes.c_int
            if add_pending_call(self._pending_call, None) != 0:
                self._pending_call = None
        except Exception:  # no ctypes (some minimal builds): the main thread's logging call does it
            self._pending_call = None

    def _on_sigterm(self, signum: int, frame: object) -> None:
        """The SIGTERM handler: start delivering, or end the process once delivered."""
        if self._delivered:
            self._end()
        if self._received:
            return  # a repeated SIGTERM: delivery is under way and bounded
        self._received = True
        self._main_ident = threading.get_ident()
        try:
            # `_thread`, not `threading`: this runs between two bytecodes of the main thread,
            # which may hold threading's own bookkeeping lock; a raw thread never takes it.
            _thread.start_new_thread(self._deliver_then_end, ())
        except RuntimeError:
            # The interpreter is exiting: its own exit hook delivers, then `end_if_signalled`.
            if self._sender.stopped:
                self._end()

    def _deliver_then_end(self) -> None:
        try:
            self._sender.shutdown()
        finally:
            self._delivered = True
            self._wake_main_thread_to_end()

    def _wake_main_thread_to_end(self) -> None:
        """Signal the main thread until its handler runs and ends the process (boundedly).

        One signal is not enough. Python runs a handler where the main thread checks for
        signals: between bytecodes, and when a signal cuts a blocking call short. A signal that
        lands after the thread's last check and before it blocks again (a Pool worker going
        back to wait for its next task, a ``join()``) only marks the handler to run, and the
        thread then sleeps on with it marked: the process never ended (`tests/test_lifecycle.py`,
        ``with Pool()``, 2 runs in about 175 on a loaded host). A later signal finds the thread
        inside the call, cuts it short, and the marked handler runs. (`_signal_watch` does the
        same for the SIGTERM that starts the delivery.)
        """
        pause_s = _WAKE_FIRST_PAUSE_S
        for _ in range(_WAKE_TRIES):
            if self._main_ident is None:
                return  # the main thread is gone: the exit hook ends the process instead
            try:
                signal.pthread_kill(self._main_ident, signal.SIGTERM)
            except (OSError, ValueError):
                return
            time.sleep(pause_s)
            pause_s = min(2 * pause_s, _WAKE_LONGEST_PAUSE_S)

    def end_if_signalled(self) -> None:
        """At exit, after delivery: a SIGTERM we held back still ends the process (main thread)."""
        if self._received and threading.current_thread() is threading.main_thread():
            self._end()

    def after_fork_in_child(self) -> None:
        """A child (a Pool worker) has its own life: a SIGTERM its parent received is not its."""
        self._received = self._delivered = False
        self._main_ident = None
        if self._watch is not None:
            self._watch = self._watch.after_fork_in_child()

    @staticmethod
    def _end() -> None:
        """End the process by SIGTERM with the default disposition (status 143 / -15)."""
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)


def ending_on_keyboard_interrupt() -> bool:
    """The program is ending on a KeyboardInterrupt nobody caught (Ctrl-C): Python printed it and
    kept it in ``sys.last_exc`` (3.12+) or ``sys.last_value`` before running the exit hooks."""
    if sys.flags.interactive or hasattr(sys, "ps1"):
        return False  # an interactive session: Ctrl-C there does not end the interpreter
    last = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    return isinstance(last, KeyboardInterrupt)


def keep_the_exit_by_sigint() -> None:
    """After delivery at exit, make sure Python still ends a Ctrl-C'd program by SIGINT.

    Python ends a program left by an uncaught KeyboardInterrupt by SIGINT (status 130 in a shell),
    so that a shell loop or a supervisor stops too. CPython before 3.14 (gh-128130) keeps that in
    a flag which any code compiled from a string clears, on any thread: a namedtuple or dataclass
    made while the sender imports what its first request needs, at exit. The program then ended
    with status 1, as if it had failed. Code compiled from a string that raises KeyboardInterrupt
    sets the flag again, as the interpreter's own run of the program does.
    """
    with contextlib.suppress(KeyboardInterrupt):
        exec("raise KeyboardInterrupt")  # noqa: S102  # a constant: only the flag's reason to run


def block_termination_signal_in_this_thread() -> None:
    """Keep SIGTERM away from our own threads, so it wakes the main thread, which handles it.

    Python runs signal handlers on the main thread only; a signal the kernel gave one of our
    threads would leave a main thread that waits in C (``join``, a lock) asleep.
    """
    if hasattr(signal, "pthread_sigmask"):
        with contextlib.suppress(OSError, ValueError):
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})


def in_a_uwsgi_master() -> bool:
    """This process is a uWSGI master (which loaded the application, unless ``--lazy-apps``):
    uWSGI forks its workers from it, from C (`_handover`)."""
    uwsgi = sys.modules.get("uwsgi")
    if uwsgi is None:
        return False
    try:
        return bool(uwsgi.masterpid() == os.getpid())  # 0 without a master
    except Exception:  # an older or stubbed uwsgi module: not known to be a master
        return False


def _uwsgi_options(uwsgi: Any) -> dict[str, Any]:
    """uWSGI's options as it was started with them (``uwsgi.opt``; empty if it has none)."""
    return getattr(uwsgi, "opt", None) or {}


def warn_if_threads_cannot_run(report: Any) -> None:
    """Under uWSGI without threads, Python threads never run: say so, naming the fix.

    uWSGI can keep the GIL between requests unless threads are enabled (``--enable-threads`` or
    ``--threads N``), and then our sender, and every record, would wait forever. Recent uWSGI
    enables them on its own and says so in ``uwsgi.has_threads``; older ones only in their options.
    """
    uwsgi = sys.modules.get("uwsgi")
    if uwsgi is None:
        return
    has_threads = getattr(uwsgi, "has_threads", None)
    if has_threads is None:
        options = _uwsgi_options(uwsgi)
        has_threads = options.get("enable-threads") or options.get("threads")
    if has_threads:
        return
    report(
        "threads",
        "uWSGI runs without threads, so the sender thread cannot run and records are not sent: "
        "start uWSGI with --enable-threads (or --threads N)",
        always=True,
    )


_DELIVERS_FIRST: Final = "_aws_cloudwatch_logs_handler_delivers_first"
"""Marks our ``os._exit``, so that it is put in place once per process (a fork inherits it)."""

_EXIT_GRACE_S: Final = 1.0
"""How much longer than the handlers' ``shutdown_timeout_s`` ``os._exit`` waits for the delivery
it started. The delivery keeps its own bound; this one covers a delivery that cannot even begin:
a signal handler that calls ``os._exit`` while its thread holds the sender's lock."""


def hook_os_exit(sender: Sender) -> None:
    """Deliver before ``os._exit`` ends the process, as ``atexit`` would before a normal exit.
    Called where the sender starts.

    ``os._exit`` skips ``atexit``, and servers end a process with it as a matter of course: a
    multiprocessing worker forked or made by a fork server, once its work is done
    (`Pool(maxtasksperchild=...)` too); a Celery pool process (billiard's), after its tasks, a
    pause, or the worker's shutdown; RQ's work horse after each job (`tests/test_rq.py`); a process
    forked to do one thing. They call it to skip their parent's clean-up, which a child must not run
    twice; our queue in a child holds the child's own records only (the fork hook emptied it), so
    delivering them is never a second delivery. The module attribute is replaced, so every caller
    that looks it up at the call finds ours; ``posix._exit`` stays the plain one, for code that
    means to deliver nothing.
    """
    if getattr(os._exit, _DELIVERS_FIRST, False):
        return
    plain_exit = os._exit

    @functools.wraps(plain_exit)
    def _exit(status: int) -> NoReturn:
        deliver_before_os_exit(sender)
        plain_exit(status)

    setattr(_exit, _DELIVERS_FIRST, True)
    os._exit = _exit


def deliver_before_os_exit(sender: Sender) -> None:
    """Deliver what is queued, bounded, from a thread that may hold any lock: ``os._exit`` can
    be called from a signal handler that runs between two bytecodes of a logging call.

    The delivery runs on a raw thread (a `threading` thread would take threading's own lock,
    which that frame may hold too), and this thread waits for it within the handlers' bound.
    """
    if threading.get_ident() == sender.thread_ident:
        return  # the sender itself is ending the process: nothing can deliver now
    delivered = _thread.allocate_lock()
    delivered.acquire()

    def deliver() -> None:
        try:
            sender.shutdown()
        finally:
            delivered.release()

    try:
        _thread.start_new_thread(deliver, ())
    except RuntimeError:  # the interpreter is finalizing and starts no thread: deliver here
        sender.shutdown()
        return
    delivered.acquire(timeout=sender.shutdown_timeout_s() + _EXIT_GRACE_S)


class ProcessLifecycle:
    """Wires the sender into the interpreter's exit, fork and SIGTERM paths, once per process."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self.sigterm: Final = SigtermDelivery(sender)

    def install(self) -> None:
        atexit.register(self._at_exit)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(
                before=self.sender.before_fork,
                after_in_parent=self.sender.after_fork_in_parent,
                after_in_child=self._after_fork_in_child,
            )

    def _at_exit(self) -> None:
        interrupted = ending_on_keyboard_interrupt()
        self.sender.shutdown()
        if interrupted:
            keep_the_exit_by_sigint()
        self.sigterm.end_if_signalled()

    def _after_fork_in_child(self) -> None:
        self.sender.after_fork_in_child()
        self.sigterm.after_fork_in_child()
