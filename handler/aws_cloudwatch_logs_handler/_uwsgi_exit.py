"""Deliver at a uWSGI worker's exit from libc's exit hooks, before uWSGI's Python ones.

uWSGI ends a worker with C's ``exit()`` (from its signal handler, or once a graceful stop or
``--max-requests`` lets it go), and its Python plugin runs the Python exit hooks (``atexit``,
ours) from one of libc's. Two things made the delivery there lose what the worker had queued:

- **A busy worker.** The plugin runs no Python exit hook in a worker in the middle of a request:
  one still reading it, or closing one whose client already has its answer.
- **OpenSSL had ended.** OpenSSL registers its own clean-up with libc when it starts, which in a
  worker is when the sender builds its client, after uWSGI registered its hook. libc runs the
  later hooks first, so OpenSSL was gone when the Python hooks ran: over HTTPS (any real
  endpoint) no request could be made, and a worker that had sent once lost everything it had
  queued since, at every stop (`tests/test_uwsgi.py`, behind a TLS front).

So the sender registers a hook of its own with libc when it starts, and once more after OpenSSL
has started, so that libc runs one before OpenSSL's clean-up; it delivers (bounded, as at any
exit), and the Python hook after it finds nothing left.

The hook delivers only where running Python is safe: when the worker's main thread was in uWSGI's
C code, with no Python frame on it (reading or closing a request, between two, leaving its loop).
A worker stopped while it runs the application's code was interrupted between two steps of the
interpreter, which more Python there could find half done: that worker delivers nothing, and a
spool (``spool_dir``) keeps its records for the next start. A graceful stop, which lets the
request end first, delivers them too (uWSGI's
``--hook-master-start "unix_signal:15 gracefully_kill_them_all"``).
"""

from __future__ import annotations

import contextlib
import functools
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ._lifecycle import deliver_before_os_exit, in_a_uwsgi_master

if TYPE_CHECKING:
    from ._sender import Sender


@dataclass
class _Registrations:
    """This process's hooks (a worker forked from C inherits them, with libc's list)."""

    register: Any = None
    """libc's ``__cxa_atexit``, found when the handler was made (`prepare_uwsgi_worker_exit`)."""
    callback_type: Any = None
    callbacks: list[Any] = field(default_factory=list)
    """The C callbacks given to libc, kept alive as long as the process."""
    after_openssl: bool = False
    """The last one was registered after OpenSSL's clean-up, so libc runs it before."""


_REGISTERED: Final = _Registrations()


def prepare_uwsgi_worker_exit() -> None:
    """Under uWSGI, import and find what registering takes, when a handler is made.

    Not later: on a logging call, importing ``ctypes`` costs 2 ms; on the sender thread, a
    worker forked from C (uWSGI forks its second worker right after loading the application in
    the first) could catch the import half done, and the child would wait for its import lock
    for good.
    """
    registered = _REGISTERED
    if registered.register is not None or "uwsgi" not in sys.modules:
        return
    if sys.implementation.name != "cpython":
        return
    try:
        import ctypes

        program = ctypes.CDLL(None)
        if not hasattr(program, "uwsgi_python_atexit"):
            # A stand-in ``uwsgi`` module (a test double, a shim): there, libc's hooks run after
            # the interpreter has ended, and a callback into it would crash the exit.
            return
        callback_type = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
        # ``atexit`` is not in libc's table of symbols (each program links its own); it is
        # ``__cxa_atexit(function, argument, 0)``, which is, in glibc, musl and macOS.
        register = program.__cxa_atexit
        register.argtypes = [callback_type, ctypes.c_void_p, ctypes.c_void_p]
        register.restype = ctypes.c_int
    except Exception:  # no ctypes, or a libc without it: uWSGI's own exit hooks stay
        return
    registered.callback_type, registered.register = callback_type, register


def _openssl_started() -> bool:
    """OpenSSL has started in this process (Python's ``ssl`` or ``hashlib`` started it), and
    with it registered its clean-up with libc."""
    return "_ssl" in sys.modules or "_hashlib" in sys.modules


def hook_uwsgi_worker_exit(sender: Sender) -> None:
    """Register the hook in a uWSGI worker, and again once OpenSSL has started since.

    Called where the sender starts, and on the sender thread after each batch it sends: it
    imports nothing, and where there is nothing to do it costs an attribute and two dictionary
    lookups.
    """
    registered = _REGISTERED
    if registered.register is None:
        return
    openssl = _openssl_started()
    if registered.callbacks and (registered.after_openssl or not openssl):
        return
    if in_a_uwsgi_master():
        return  # no sender runs there, and its exit may follow the interpreter's own end
    with contextlib.suppress(Exception):  # uWSGI's own exit hooks stay
        callback = registered.callback_type(functools.partial(_deliver_at_exit, sender))
        if registered.register(callback, None, None) == 0:
            registered.callbacks.append(callback)
            registered.after_openssl = openssl


def _deliver_at_exit(sender: Sender, _: object) -> None:
    """The hook libc runs at the worker's exit; never raises into it."""
    try:
        if sys._getframe().f_back is not None:
            return  # the worker was stopped in the application's Python code: not safe here
        deliver_before_os_exit(sender)
    except BaseException:  # noqa: S110  # the exit goes on whatever happens here
        pass
