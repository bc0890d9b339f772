"""The one background thread per process that talks to CloudWatch Logs, and the lock it keeps.

Handlers only append events to queues (`Sender.enqueue`); this thread takes batches off them
(`_queues`), sends them through the Logs API seam (`_logs_api`), and on failure waits as the retry
schedule says (`_retry`). One thread serves every handler and stream of the process, so a thousand
streams cost no more threads than one. `_lifecycle` wires it into the process's exit, fork and
SIGTERM paths.

Where code runs: methods whose names start with ``_locked_`` run with ``_lock`` held and never do
I/O; the queue objects they touch are only ever changed under it. The thread never holds the lock
during a network call and never takes a handler's lock, so a logging call waits at most for
another enqueue.

Locks of others: nothing here waits for the sender while holding a lock the sender may need. The
sender needs logging's module lock whenever botocore looks up or checks a logger, and
``dictConfig``, ``fileConfig`` and ``basicConfig(force=True)`` hold that lock while they flush and
close the old handlers; so a flush from under that lock does not wait (see `flush`).
"""

from __future__ import annotations

import concurrent.futures.thread  # noqa: F401 (see below)
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Final, Literal

from . import _slices
from ._batching import cut_batches, events_per_batch
from ._delivery import Delivery
from ._events import Event
from ._forks import CLIENT_BUILDS, ProcessMark
from ._handover import Handover
from ._lifecycle import (
    ProcessLifecycle,
    block_termination_signal_in_this_thread,
    hook_os_exit,
    in_a_uwsgi_master,
    warn_if_threads_cannot_run,
)
from ._limits import MAX_BATCH_BYTES, MAX_BATCH_EVENTS
from ._logs_api import LogsApi
from ._packed import ROOM_FROM, ROOM_S_PER_ITEM, PackedEvents, room_for
from ._queues import HandlerQueues, StreamQueue
from ._reporting import write_to_stderr
from ._retry import RetrySchedule
from ._stats import DeliveryStats, DropReason
from ._uwsgi_exit import hook_uwsgi_worker_exit, prepare_uwsgi_worker_exit

# botocore imports concurrent.futures.thread when the sender builds its first client, and that
# module registers an exit hook, which Python refuses once the interpreter is shutting down. A
# short script logs and exits before the sender got that far; importing it now (about 1 ms on top
# of logging) lets the sender build its client during exit and still deliver.

_BUG_PAUSE_S: Final = 0.2
"""After an unexpected error the thread pauses this long: it must never spin on a lasting bug."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _holds_logging_lock() -> bool:
    """Tell whether this thread holds logging's module lock (``dictConfig`` and friends do).

    Waiting for the sender then would deadlock: the sender needs that lock as soon as botocore
    asks for a logger or checks a level.
    """
    is_owned = getattr(getattr(logging, "_lock", None), "_is_owned", None)
    try:
        return bool(is_owned()) if callable(is_owned) else False
    except Exception:
        return False


class Sender:
    """The process's one sender thread and the lock over every handler's queues."""

    def __init__(self, retry: RetrySchedule | None = None) -> None:
        self._retry = retry or RetrySchedule()
        self._init_state()

    @property
    def retry(self) -> RetrySchedule:
        """When to try again after a failed delivery."""
        return self._retry

    @retry.setter
    def retry(self, schedule: RetrySchedule) -> None:
        self._retry = self._delivery.retry = schedule

    def _init_state(self) -> None:
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        """Wakes the sender: new work, a flush, or shutdown."""
        self._settled = threading.Condition(self._lock)
        """Wakes `flush` callers and blocked producers: events were settled."""
        self._handlers: list[HandlerQueues] = []
        self._letting_go: list[tuple[HandlerQueues, Callable[[], None]]] = []
        """Queues forgotten (`_locked_forget_idle`) with the work that lets go of their files,
        done by the sender without its lock (`_let_go`), and kept here until it is done."""
        self._needing_room: list[tuple[StreamQueue, int, bool]] = []
        """Streams whose queue the sender is to give room for a batch (`_make_room`), with the
        batch's events and whether they have journal numbers: a queue without room that reached
        `ROOM_FROM` events, or one the sender just took a batch of as long from."""
        self._thread: threading.Thread | None = None
        self.thread_ident: int | None = None
        self._stopping = False
        self._stopped = False
        self._handover: Handover | None = None
        """Set in a uWSGI master, where no sender runs: its workers send its records."""
        self._mark = ProcessMark()
        """Set in the process this state belongs to: a fork below Python's hooks clears it."""
        self._mark.set()
        self._mark_byte = self._mark.byte  # read on every logging call
        self._delivery = Delivery(
            lock=self._lock,
            settled=self._settled,
            retry=self._retry,
            stopping=lambda: self._stopping,
        )

    @property
    def stopped(self) -> bool:
        """The sender has delivered what it could at exit and accepts nothing more."""
        return self._stopped

    # ----------------------------------------------------------------------------------------
    # Called from handlers, on the caller's thread.

    def _lock_of_this_process(self) -> threading.Lock:
        """The lock, once the state it guards is this process's own: every way in from a
        handler takes it through here.

        A fork made below Python's hooks (uWSGI's workers, ``fork()`` from C) leaves the child
        its parent's queues, a sender thread that does not run here, and perhaps a lock that a
        parent's thread held at the fork. The logging call notices (`enqueue`); so must every
        other way in, or a child that never logged would wait at exit for a thread that is not
        there, report its parent's records as lost, or hang on that lock for good.
        """
        if not self._mark.here():
            self.after_fork_in_child()
        return self._lock

    def register(self, queues: HandlerQueues) -> None:
        """Start serving ``queues`` (a handler is being made)."""
        queues.api = LogsApi(queues.settings)
        prepare_uwsgi_worker_exit()  # under uWSGI only; here, not in a logging call
        with self._lock_of_this_process():
            self._handlers.append(queues)

    def enqueue_one(
        self, queues: HandlerQueues, stream: str, timestamp_ms: int, message: str, size: int
    ) -> bool:
        """`enqueue` one event given by its fields: the usual logging call, made cheap.

        Takes the short way only when nothing but queueing (and journaling) is to be done: the
        sender runs, the stream exists, the event fits, no fork since, the journal takes it.
        Else it builds the event and takes `enqueue`'s way, which handles every case.
        """
        cost = size + queues.overhead_per_event
        if self._mark_byte[0]:  # no fork since (`ProcessMark.here`, inlined)
            # `with`, not acquire() and try: CPython runs a signal handler once a call returns,
            # so Ctrl-C's KeyboardInterrupt could come between the two and leave the lock held
            # for good (the exit's delivery then waited on it forever). `with` takes the lock
            # and enters its block in one step.
            with self._lock:
                try:
                    target = queues.streams.get(stream)
                    if (
                        target is not None
                        and self._thread is not None
                        and not self._stopped
                        and not queues.closed
                        and queues.bytes_queued + cost <= queues.max_queue_bytes
                        and timestamp_ms >= 0  # before 1970: `PackedEvents.extend` holds it
                    ):
                        journal = queues.on_enqueued_one
                        try:
                            number = (
                                -1 if journal is None else journal(target, timestamp_ms, message)
                            )
                        except OSError:
                            pass  # a full disk: `enqueue` below tries again, and reports it
                        else:
                            queued = target.queue.append(timestamp_ms, message, size, number)
                            # `HandlerQueues.add`'s counting (`_added`), inlined: this runs on every
                            # logging call, and the call it saves was about 50 ns of the 0.8 us the
                            # call pays to queue. `tests/test_sender_unit.py` holds both ways to the
                            # same counts.
                            queues.last_stream = stream
                            target.enqueued += 1
                            target.queued_size += size
                            queues.bytes_queued += cost
                            queues.counters.records_accepted += 1
                            if target.first_waiting_at is None:
                                target.first_waiting_at = time.monotonic()
                                self._work.notify()
                            elif (
                                queued >= MAX_BATCH_EVENTS or target.queued_size >= MAX_BATCH_BYTES
                            ):
                                self._work.notify()  # a batch is full (`_batching.is_full`)
                            elif queued == ROOM_FROM and not target.queue.has_room:
                                self._locked_ask_for_room(target, target.queue, target.queued_size)
                                self._work.notify()
                            return True
                except BaseException:  # Ctrl-C's KeyboardInterrupt, after any call made here
                    self._locked_mend(queues, stream, [size])
                    raise
        return self.enqueue(queues, stream, [Event(timestamp_ms, message, size)])

    def enqueue(self, queues: HandlerQueues, stream: str, events: list[Event]) -> bool:
        """Queue ``events`` for ``stream``; False if they were dropped (and counted) instead.

        Never does I/O; waits only under the "block" overflow policy, and then boundedly.
        """
        size = events[0].size if len(events) == 1 else sum(event.size for event in events)
        cost = size + queues.overhead_per_event * len(events)
        journal_error: OSError | None = None
        with self._lock_of_this_process():
            refused: DropReason | None = None
            if self._stopped:
                refused = "after_close"
            elif queues.bytes_queued + cost > queues.max_queue_bytes and not self._locked_make_room(
                queues, cost
            ):
                refused = "queue_full"
            if refused is None:
                if queues.closed and queues not in self._handlers:
                    # A logging call that raced with the reconfiguration that closed this
                    # handler: its record is still delivered, as a file handler's would be.
                    self._handlers.append(queues)
                target = queues.streams.get(stream) or queues.stream(stream)
                first_number = None
                try:
                    if queues.on_enqueued is not None:
                        try:
                            first_number = queues.on_enqueued(target, events)  # journal first
                        except OSError as error:  # a full disk must not cost the memory copy
                            journal_error = error
                    if queues.add(target, events, size, cost, first_number):
                        self._work.notify()
                except BaseException:  # Ctrl-C's KeyboardInterrupt, after any call made here
                    self._locked_mend(queues, stream, [event.size for event in events])
                    raise
                self._locked_start_if_none(queues)
            else:
                queues.counters.dropped[refused] += len(events)
        # Reported outside the lock: the callback is the user's.
        settings = queues.settings
        if journal_error is not None:
            settings.reporter.report("spool", f"could not journal: {journal_error}")
        if refused == "queue_full":
            settings.reporter.report(
                "queue_full",
                f"queue of log group {settings.log_group!r} is full "
                f"(max_queue_bytes={settings.max_queue_bytes}); "
                f"dropped {len(events)} event(s) by overflow={settings.overflow!r}",
            )
        return refused is None

    def _locked_mend(self, queues: HandlerQueues, stream: str, sizes: list[int]) -> None:
        """After an exception cut a logging call short: the stream's queue and counts whole
        again (`HandlerQueues.mend_cut_short`), and the sender told of what waits."""
        target = queues.streams.get(stream)
        if target is not None and queues.mend_cut_short(target, sizes):
            self._work.notify()

    def _locked_make_room(self, queues: HandlerQueues, cost: int) -> bool:
        """Apply the overflow policy until ``cost`` more bytes fit."""
        policy = queues.settings.overflow
        if policy == "drop_oldest":
            fits = queues.drop_oldest(cost)
            self._settled.notify_all()
            return fits
        if policy == "block" and threading.get_ident() != self.thread_ident:
            deadline = time.monotonic() + queues.settings.block_timeout_s
            while not queues.fits(cost):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopped:
                    return False
                self._settled.wait(remaining)
            return True
        return False

    def flush(self, queues: HandlerQueues, timeout_s: float | None) -> bool:
        """Wait until every event ``queues`` held when called is settled.

        Returns:
            True if all were settled (delivered, or dropped and counted) in time.
        """
        if threading.get_ident() == self.thread_ident or self._handover is not None:
            # The sender cannot wait for itself; in a uWSGI master, its workers send what it
            # holds (`_handover`).
            return False
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._lock_of_this_process():
            targets = [(s, s.enqueued) for s in queues.streams.values() if s.pending]
            if not targets:
                return True
            for stream, _ in targets:
                stream.retry_at = 0.0  # a flush wakes the backoff instead of waiting it out
            self._work.notify()
            # Queued, and perhaps no sender: the logging call that would have started it was cut
            # short (Ctrl-C inside `Thread.start`). Else the flush would wait out its timeout.
            self._locked_start_if_none(queues)
            if _holds_logging_lock():
                # Logging is being reconfigured: the sender delivers as soon as the caller lets
                # go of logging's lock; waiting for it here would wait forever.
                return False
            queues.flush_waiters += 1
            try:
                while any(stream.settled < target for stream, target in targets):
                    if self._stopped:
                        return False
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._settled.wait(remaining)
                return True
            finally:
                queues.flush_waiters -= 1

    def send_soon(self, queues: HandlerQueues, streams: Iterable[str]) -> None:
        """Send what ``streams`` queue without waiting for their flush interval."""
        with self._lock_of_this_process():
            queues.make_due(streams)
            self._work.notify()

    def move_pending(self, queues: HandlerQueues, stream: str) -> None:
        """Send the events waiting under `PENDING_STREAM` to ``stream`` instead."""
        with self._lock_of_this_process():
            if queues.move_pending(stream):
                self._work.notify()

    def close(self, queues: HandlerQueues, wait_s: float = 0.0) -> None:
        """Deliver ``queues``' events at once from now on, and forget it once it is idle.

        Args:
            wait_s: if nothing of ``queues`` is pending, wait up to this long for the sender to
                forget it and let go of its files (a spool's journal): a closed handler holds
                no file open, as a closed `logging.FileHandler` holds none. Not while logging is
                being reconfigured (the sender may need logging's lock), nor on the sender's
                own thread.
        """
        with self._lock_of_this_process():
            queues.closed = True
            self._work.notify()
            if (
                wait_s <= 0
                or queues.on_forgotten is None
                or self._thread is None
                or threading.get_ident() == self.thread_ident
                or queues.any_pending()
                or _holds_logging_lock()
            ):
                return
            deadline = time.monotonic() + wait_s
            while (
                not self._stopped
                and (queues in self._handlers or any(q is queues for q, _ in self._letting_go))
                and (remaining := deadline - time.monotonic()) > 0
            ):
                self._settled.wait(remaining)

    def stats(self, queues: HandlerQueues) -> DeliveryStats:
        """Return a consistent snapshot of ``queues``' counters."""
        with self._lock_of_this_process():
            return queues.counters.snapshot(
                events_queued=queues.events_queued(), bytes_queued=queues.bytes_queued
            )

    def count_dropped(self, queues: HandlerQueues, reason: DropReason, number: int) -> None:
        """Count ``number`` events dropped for ``reason``."""
        with self._lock_of_this_process():
            queues.counters.dropped[reason] += number

    def count(
        self, queues: HandlerQueues, field: Literal["records_excluded", "records_unformattable"]
    ) -> None:
        """Add one to a plain counter (records_excluded, records_unformattable)."""
        with self._lock_of_this_process():
            setattr(queues.counters, field, getattr(queues.counters, field) + 1)

    # ----------------------------------------------------------------------------------------
    # Process life: start, exit, fork (wired in by `_lifecycle`).

    def _locked_start_if_none(self, queues: HandlerQueues) -> None:
        """`_locked_start`, unless a sender runs, a uWSGI master hands over, or all stopped."""
        if self._thread is None and self._handover is None and not self._stopped:
            self._locked_start(queues)

    def _locked_start(self, queues: HandlerQueues) -> None:
        """Start the sender thread; in a uWSGI master, hand its records over to its workers."""
        warn_if_threads_cannot_run(queues.settings.reporter.report)
        if in_a_uwsgi_master():
            # A worker claims its share when it notices its fork: at its first logging call,
            # flush, stats or exit. Not in uWSGI's post-fork hook: Python code there meets the
            # master's SIGINT when it stops a worker just forked, and the worker, its signal
            # spent on a KeyboardInterrupt in the hook, then never stops (seen: 2 starts in 8).
            self._handover = self._make_handover(queues)
            if self._handover is not None:
                return
        thread = threading.Thread(target=self._run, name="cloudwatch-logs-sender", daemon=True)
        hook_os_exit(self)
        hook_uwsgi_worker_exit(self)
        # The sender from before it runs, and forgotten only if starting it raised. What a signal
        # handler raises (Ctrl-C's KeyboardInterrupt) lands anywhere in a logging call on the
        # main thread, also inside `start` once the thread was spawned: such a thread, unknown
        # here, sent beside the next one started (or beside `shutdown`, sending on its own), and
        # the two took the same batches. Now it finds it is not the sender, and ends (`_run`).
        self._thread = thread
        try:
            thread.start()
        except BaseException:
            self._thread = None
            raise

    @staticmethod
    def _make_handover(queues: HandlerQueues) -> Handover | None:
        """The claim file the workers of this uWSGI master share (`_handover`); None, and
        said once, if it cannot be made: this process then sends its records itself."""
        try:
            return Handover()
        except OSError as error:
            queues.settings.reporter.report(
                "uwsgi",
                f"could not make the file in which uWSGI workers claim the master's records "
                f"({error}); the master sends them itself, and a worker forked meanwhile may "
                "hang: start uWSGI with --lazy-apps",
                always=True,
            )
            return None

    def shutdown(self) -> None:
        """Deliver what is queued, bounded by the handlers' shutdown timeout, then stop.

        Called at interpreter exit, when a multiprocessing worker finishes, and on SIGTERM. A
        second caller waits for the first (a SIGTERM's delivery while the program exits), or the
        interpreter would end with that delivery half done. What could not be delivered in time
        is counted as ``undelivered_at_exit`` and reported on standard error.
        """
        with self._lock_of_this_process():
            if self._thread is None and (
                self._handover is not None or not self._locked_any_pending()
            ):
                return  # nothing to deliver here (in a uWSGI master, its workers deliver)
            timeout_s = self.shutdown_timeout_s()
            deadline = time.monotonic() + timeout_s
            if self._stopping:
                while not self._stopped and (remaining := deadline - time.monotonic()) > 0:
                    self._settled.wait(remaining)
                return
            self._stopping = True
            for queues in self._handlers:
                if queues.pending_fallback is not None:
                    queues.move_pending(queues.pending_fallback())
                for stream in queues.streams.values():
                    stream.retry_at = 0.0
            self._work.notify()
            if self._thread is None:  # no thread could start: do its work here
                self._lock.release()
                try:
                    self._deliver_on_this_thread(deadline)
                finally:
                    self._lock.acquire()
            while self._locked_any_pending() and (remaining := deadline - time.monotonic()) > 0:
                self._settled.wait(remaining)
            for queues in self._handlers:
                left = queues.events_queued()
                if left:
                    queues.counters.dropped["undelivered_at_exit"] += left
                    queues.settings.reporter.report(
                        "exit",
                        f"{left} event(s) for log group {queues.settings.log_group!r} could not "
                        f"be delivered within shutdown_timeout_s={timeout_s:g}",
                        always=True,
                    )
            self._stopped = True
            self._work.notify()
            self._settled.notify_all()
        self._let_go_at_exit(deadline)

    def _let_go_at_exit(self, deadline: float) -> None:
        """Once stopped, let go of the files of every handler whose records all settled (a
        spool's journal), so that a clean exit leaves none behind for the next start to delete.

        Only once the sender thread has ended: until then it may be growing a journal (`tidy`).
        A thread still busy at ``deadline`` (records that could not be delivered) leaves them.
        """
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                return
        with self._lock:
            for queues in self._handlers:
                self._locked_stop_using_files(queues)
            letting_go = list(self._letting_go)
        if letting_go:
            self._let_go(letting_go)

    def shutdown_timeout_s(self) -> float:
        """The longest ``shutdown_timeout_s`` of this process's handlers: how long `shutdown`
        may take. Read without the lock, for a caller that may hold it (`_lifecycle`)."""
        return max((q.settings.shutdown_timeout_s for q in list(self._handlers)), default=0.0)

    def _locked_any_pending(self) -> bool:
        return any(queues.any_pending() for queues in self._handlers)

    def before_fork(self) -> None:
        """Hold the lock across fork, so the child never sees a queue half-changed, once no
        client is being built (an import half done would break the child's deliveries)."""
        CLIENT_BUILDS.before_fork()
        self._lock_of_this_process().acquire()

    def after_fork_in_parent(self) -> None:
        """Release what `before_fork` took."""
        self._lock.release()
        CLIENT_BUILDS.after_fork_in_parent()

    def after_fork_in_child(self) -> None:
        """Give the child a fresh sender: new lock, no thread, new clients, and empty queues,
        or in a uWSGI worker the master's records it claimed (`_handover`), sent from now on."""
        handlers, handover = self._handlers, self._handover
        self._init_state()
        CLIENT_BUILDS.after_fork_in_child()
        for index, queues in enumerate(handlers):
            queues.settings.reporter.after_fork()
            _keep_after_fork(handover, index, queues)
            queues.api.forget_client_after_fork()
        self._handlers = handlers
        claimed = next((queues for queues in handlers if queues.events_queued()), None)
        if claimed is not None:
            # Python 3.12 starts no thread while the interpreter is finalizing, as in a worker
            # that noticed its fork only at exit: `shutdown` then sends them on its own thread.
            with contextlib.suppress(RuntimeError):
                self._locked_start(claimed)  # the only thread of this process, so far

    # ----------------------------------------------------------------------------------------
    # The sender thread.

    def _run(self) -> None:
        block_termination_signal_in_this_thread()
        with self._lock:
            if self._thread is not threading.current_thread():
                return  # its start was interrupted (`_locked_start`): another is the sender
            self.thread_ident = threading.get_ident()
        while True:
            try:
                with self._lock:
                    _slices.took_gil_back()  # taking the lock may have waited for a logging call
                    due = self._locked_wait_for_batches()
                    if due is None:
                        return
                    # Behind: a full batch already waits behind the one being taken.
                    behind = any(stream.holds_full_batch for stream in due)
                    letting_go = list(self._letting_go)
                    needing_room, self._needing_room = self._needing_room, []
                _slices.take_turns(behind=behind)
            except Exception as error:  # the sender must outlive any bug of ours
                self._pause_after_bug(error)
                continue
            if letting_go:
                self._let_go(letting_go)
            if needing_room:
                self._make_room(needing_room)
            self._send(due)
            hook_uwsgi_worker_exit(self)  # again once its client has started OpenSSL

    def _deliver_on_this_thread(self, deadline: float) -> None:
        """The sender thread's work, done on the calling thread until nothing waits or
        ``deadline`` passes: at exit, where no sender thread could start."""
        while True:
            with self._lock:
                due = self._locked_wait_for_batches(until=deadline)
                letting_go = list(self._letting_go)
                self._needing_room = []  # the last logging calls are made: room is for later ones
            if letting_go:
                self._let_go(letting_go)
            if due is None:
                return
            self._send(due)

    def _let_go(self, letting_go: list[tuple[HandlerQueues, Callable[[], None]]]) -> None:
        """Do the work that lets go of forgotten queues' files, then wake their `close`."""
        for queues, let_go in letting_go:
            try:
                let_go()
            except Exception as error:  # the sender must outlive any bug of ours
                queues.settings.reporter.report("spool", f"could not let go of files: {error}")
        with self._lock:
            self._letting_go = [item for item in self._letting_go if item not in letting_go]
            self._settled.notify_all()

    def _locked_ask_for_room(self, stream: StreamQueue, like: PackedEvents, size: int) -> None:
        """Ask for room in ``stream``'s queue (`_make_room`) for a batch of events like ``like``
        (``size`` bytes in all): as many as their average size lets in, numbered if they are."""
        events = events_per_batch(len(like), size)
        self._needing_room.append((stream, events, like.numbered))

    def _make_room(self, streams: list[tuple[StreamQueue, int, bool]]) -> None:
        """Give each of ``streams``' queues memory for a batch of as many events as given, and
        for their journal numbers if they have some (`PackedEvents.move_into`), made here, so
        that the logging calls that fill it do not move its arrays. Done before the sender
        sends what it took: the next batch fills while this one is sent."""
        for stream, events, numbered in streams:
            # `has_room` read without the lock: if it changes meanwhile, `move_into` says no.
            if stream.queue.has_room:
                continue
            arrays = 3 if numbered else 2
            _slices.pause(ahead_s=events * arrays * ROOM_S_PER_ITEM)
            room = room_for(events, numbered=numbered)
            with self._lock:
                stream.queue.move_into(room)

    def _send(self, due: list[StreamQueue]) -> None:
        """Send the batches taken from ``due``, one stream after another."""
        for stream in due:
            try:
                if stream.taking is not None:
                    self._cut(stream)
                before_sending = stream.owner.before_sending
                if before_sending is not None:
                    before_sending()
                self._delivery.deliver(stream)
                # Every way a batch settles (delivered, refused, aged out) is behind us.
                after_settled = stream.owner.after_settled
                if after_settled is not None:
                    after_settled()
            except Exception as error:  # the sender must outlive any bug of ours
                reason = f"unexpected {type(error).__name__}: {error}"
                self._delivery.schedule_retry(stream, reason)

    def _pause_after_bug(self, error: Exception) -> None:
        write_to_stderr(f"sender error, continuing: {type(error).__name__}: {error}")
        with self._lock:
            self._work.wait(_BUG_PAUSE_S)

    def _locked_wait_for_batches(self, until: float | None = None) -> list[StreamQueue] | None:
        """Block until some streams have batches to send, or forgotten queues have files to let
        go of (`_letting_go`); take the batches (none, for the files alone); None when stopped,
        or, given ``until``, once nothing waits or that time has passed."""
        while not self._stopped:
            now = time.monotonic()
            if until is not None and (now >= until or not self._locked_any_pending()):
                return None
            self._locked_forget_idle()
            due: list[StreamQueue] = []
            next_at: float | None = None
            for queues in self._handlers:
                ready, wake_at = queues.due(now, stopping=self._stopping)
                due.extend(ready)
                if wake_at is not None:
                    next_at = wake_at if next_at is None else min(next_at, wake_at)
            sendable = [stream for stream in due if self._locked_take(stream)]
            if sendable or self._letting_go or self._needing_room:
                return sendable
            if not due:
                wake_at = next_at if until is None else min(next_at or until, until)
                self._work.wait(None if wake_at is None else max(0.0, wake_at - now))
                _slices.took_gil_back()  # the GIL was the logging threads' meanwhile
        return None

    def _locked_take(self, stream: StreamQueue) -> bool:
        """Make sure ``stream`` has a batch in flight or detached; True if it has one to send.
        After a batch of `ROOM_FROM` events or more, its queue is given room for the next one
        (`_make_room`) unless it has some: a batch that takes a queue whole takes its arrays."""
        if not stream.in_flight:
            stream.owner.detach(stream)
            taken = stream.taking
            if taken is not None and len(taken) >= ROOM_FROM and not stream.queue.has_room:
                self._locked_ask_for_room(stream, taken, taken.total_size())
        return bool(stream.in_flight or stream.taking is not None)

    def _cut(self, stream: StreamQueue) -> None:
        """Cut the events `_locked_take` detached into batches, without the lock, and admit them.

        The sender's pure work on a batch (the order, span and age checks, and the rebuilding of
        a batch that fails them) runs here, without the lock, so a logging call never waits
        for it.
        """
        taking = stream.taking
        assert taking is not None  # checked by the caller
        cut = cut_batches(taking, now_ms=_now_ms())
        queues = stream.owner
        with self._lock:
            if stream.taking is not taking:
                return  # forgotten meanwhile (a fork's child, or a reset): nothing to admit
            aged_out = queues.admit(stream, cut)
            if aged_out:
                self._settled.notify_all()
        for reason, number in aged_out:
            queues.settings.reporter.report(
                "age",
                f"{number} event(s) for {queues.settings.log_group!r} were not sent: "
                + ("older than 14 days" if reason == "too_old" else "over 2 hours ahead"),
            )

    def _locked_forget_idle(self) -> None:
        """Forget closed handlers and streams no longer written (each Lambda invocation has one)."""
        kept: list[HandlerQueues] = []
        for queues in self._handlers:
            if not queues.closed or queues.any_pending():
                kept.append(queues)
            else:
                self._locked_stop_using_files(queues)
                self._settled.notify_all()  # its `close` may wait for this
        self._handlers = kept
        for queues in self._handlers:
            queues.prune_idle()

    def _locked_stop_using_files(self, queues: HandlerQueues) -> None:
        """Have the files of ``queues`` (a spool's journal) let go of, by `_let_go` without the
        lock, if it has any it no longer needs (`HandlerQueues.on_forgotten`)."""
        let_go = queues.on_forgotten() if queues.on_forgotten is not None else None
        if let_go is not None:
            self._letting_go.append((queues, let_go))


def _keep_after_fork(handover: Handover | None, index: int, queues: HandlerQueues) -> None:
    """Keep in a forked child's queues only what it is to send: none of its parent's events,
    unless its parent was a uWSGI master that handed them over (`_handover`), and then those
    it claimed. With a spool, the child journals what it claimed in its own journal, and marks
    it settled in the master's, before another child may claim (`Spool.take_over_claimed`)."""
    if handover is None:
        queues.keep_after_fork({})
        return
    inherited = {name: stream.enqueued for name, stream in queues.streams.items() if stream.queue}
    kept = False

    def keep(ours: dict[str, int]) -> None:
        nonlocal kept
        queues.keep_after_fork({name: ours[f"{index}/{name}"] for name in inherited})
        kept = True
        if queues.on_claimed is not None:
            queues.on_claimed(queues)

    try:
        handover.claim({f"{index}/{name}": count for name, count in inherited.items()}, keep)
    except (OSError, ValueError) as error:  # unreadable: sending them could send them twice
        if kept:
            return  # claimed and kept: only letting go of the lock failed
        lost = sum(len(queues.streams[name].queue) for name in inherited)
        queues.keep_after_fork({})
        queues.settings.reporter.report(
            "uwsgi",
            f"could not claim the uWSGI master's records ({type(error).__name__}: {error}): "
            f"this worker does not send the {lost} it inherited",
            always=True,
        )


SENDER: Final = Sender()
"""The process's sender: every handler enqueues here."""

LIFECYCLE: Final = ProcessLifecycle(SENDER)
"""The process's exit, fork and SIGTERM hooks for `SENDER`."""
LIFECYCLE.install()
