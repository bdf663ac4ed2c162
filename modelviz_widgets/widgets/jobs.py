"""Background work for widgets: one worker thread per widget, newest request wins.

A widget submits a job (a function of a progress callable). The worker runs one job at a time; a
job submitted while another runs makes the running one stale: its progress callable raises the
widget's cancellation exception at its next call, and whatever a stale job returns or raises is
dropped. Queued jobs that were superseded before they started never run.

Results reach the widget through :meth:`JobRunner.drain`, on the thread that owns the widget's
traits. In a kernel that is the thread of the asyncio loop running when the runner was made
(the kernel's shell loop): the worker hands callbacks to it with ``call_soon_threadsafe``, so
trait changes never race with the kernel handling messages from the browser. Measured on
ipykernel 7.4: a trait set straight from a thread does reach the front end too, but it can
interleave with ``hold_sync`` blocks of the main thread; hence the hand-over. Without a running
loop (a script, a test) callbacks run on the worker thread itself, under the runner's lock.
:meth:`JobRunner.wait` blocks until the current job has finished and its result is applied; it
drains callbacks inline, so it works from the loop's own thread without deadlock.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import threading
import time
from collections.abc import Callable
from typing import Any

Progress = Callable[[int, int], None]
"""``progress(done, total)``: what a job calls after each chunk of its work."""


class JobRunner:
    """One worker thread that runs the newest submitted job and drops superseded results.

    Parameters
    ----------
    cancelled
        Exception class raised from the progress callable of a superseded job.
    on_progress
        Called (through :meth:`drain`) with the fraction done of the current job, at most every
        ``progress_interval`` seconds and only once the job has run ``progress_after`` seconds.
    name
        Name of the worker thread.
    """

    def __init__(
        self,
        cancelled: type[BaseException],
        on_progress: Callable[[float], None] | None = None,
        *,
        name: str = "modelviz-worker",
        progress_after: float = 0.3,
        progress_interval: float = 0.1,
    ) -> None:
        self._cancelled = cancelled
        self._on_progress = on_progress
        self._name = name
        self._progress_after = progress_after
        self._progress_interval = progress_interval
        self._condition = threading.Condition()
        self._generation = 0
        self._pending: tuple[int, Callable[[Progress], Any], Callable[[Any], None],
                             Callable[[BaseException], None]] | None = None  # fmt: skip
        self._running: int | None = None
        self._inbox: collections.deque[tuple[int, Callable[[], None]]] = collections.deque()
        self._apply_lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._closed = False
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    @property
    def generation(self) -> int:
        """Number of the newest submitted job."""
        return self._generation

    def busy(self) -> bool:
        """Whether a job is queued or running, or its result is waiting to be applied."""
        with self._condition:
            return self._pending is not None or self._running is not None or bool(self._inbox)

    def submit(
        self,
        work: Callable[[Progress], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> int:
        """Queue ``work(progress)``; supersedes every earlier job. Returns its generation.

        ``on_done(result)`` or ``on_error(exception)`` runs through :meth:`drain` if no newer
        job was submitted by then.
        """
        with self._condition:
            if self._closed:
                raise RuntimeError("the widget is closed; create a new one")
            self._generation += 1
            generation = self._generation
            self._pending = (generation, work, on_done, on_error)
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                self._thread.start()
            self._condition.notify_all()
        return generation

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no job is queued or running and every result is applied.

        Returns False when ``timeout`` seconds passed first.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while self._pending is not None or self._running is not None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._condition.wait(left)
        self.drain()
        return True

    def drain(self) -> None:
        """Apply the callbacks the worker handed over, dropping those of superseded jobs."""
        with self._apply_lock:
            while True:
                with self._condition:
                    if not self._inbox:
                        self._condition.notify_all()
                        return
                    generation, callback = self._inbox.popleft()
                if generation == self._generation and not self._closed:
                    callback()

    def close(self, timeout: float = 5.0) -> None:
        """Supersede any job, stop the worker thread and forget every callback."""
        with self._condition:
            self._closed = True
            self._generation += 1
            self._pending = None
            self._inbox.clear()
            self._condition.notify_all()
            thread = self._thread
            self._thread = None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._on_progress = None
        self._loop = None

    # -- worker side --

    def _serve(self) -> None:
        while True:
            with self._condition:
                while self._pending is None and not self._closed:
                    self._condition.wait()
                if self._closed:
                    return
                assert self._pending is not None
                generation, work, on_done, on_error = self._pending
                self._pending = None
                self._running = generation
            try:
                self._run(generation, work, on_done, on_error)
            finally:
                # The job's callables (and the widget they are bound to) are not kept past it.
                del work, on_done, on_error
                with self._condition:
                    self._running = None
                    self._condition.notify_all()

    def _run(
        self,
        generation: int,
        work: Callable[[Progress], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        try:
            result = work(self._progress_for(generation))
        except self._cancelled:
            pass  # superseded: a newer job is queued
        except BaseException as error:  # every failure goes to the widget
            self._hand_over(generation, functools.partial(on_error, error))
        else:
            self._hand_over(generation, functools.partial(on_done, result))

    def _progress_for(self, generation: int) -> Progress:
        started = time.monotonic()
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if generation != self._generation:
                raise self._cancelled(f"superseded by a newer request (job {self._generation})")
            now = time.monotonic()
            if (
                self._on_progress is not None
                and total > 0
                and now - started >= self._progress_after
                and now - last[0] >= self._progress_interval
            ):
                last[0] = now
                fraction = min(1.0, max(0.0, done / total))
                self._hand_over(generation, functools.partial(self._on_progress, fraction))

        return progress

    def _hand_over(self, generation: int, callback: Callable[[], None]) -> None:
        with self._condition:
            if self._closed:
                return
            self._inbox.append((generation, callback))
            loop = self._loop
        if loop is None:
            self.drain()
            return
        try:
            loop.call_soon_threadsafe(self.drain)
        except RuntimeError:  # the loop was closed (kernel shutting down): apply here
            self.drain()
