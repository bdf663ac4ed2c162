"""The per-model lock: re-entrant, and first come first served.

A training loop holds its model's lock for each step and hands it on at every step boundary;
a widget's visual forward waiting for it must get its turn there, not after the loop ends.
``threading.RLock`` promises no order (the thread that releases usually takes it straight back),
so this lock queues its waiters and gives it to the one that waited longest.
"""

from __future__ import annotations

import collections
import threading
from types import TracebackType


class ModelLock:
    """A re-entrant lock granted in the order it was asked for."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        self._waiting: collections.deque[tuple[int, threading.Lock]] = collections.deque()

    def acquire(self) -> bool:
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._depth += 1
                return True
            if self._owner is None and not self._waiting:
                self._owner, self._depth = me, 1
                return True
            gate = threading.Lock()
            gate.acquire()
            self._waiting.append((me, gate))
        gate.acquire()  # opened by the owner that hands the lock over (ownership set by it)
        return True

    def release(self) -> None:
        with self._mutex:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a model lock this thread does not hold")
            self._depth -= 1
            if self._depth == 0:
                self._hand_over()

    def yield_turn(self) -> None:
        """Let every thread waiting now go first, then take the lock back at the same depth.

        Does nothing when this thread does not hold the lock or nobody waits.
        """
        if not self._waiting:
            return  # nobody waits (read without the mutex: one arriving now waits a step more)
        me = threading.get_ident()
        with self._mutex:
            if self._owner != me or not self._waiting:
                return
            depth = self._depth
            gate = threading.Lock()
            gate.acquire()
            self._waiting.append((me, gate))
            self._hand_over()
        gate.acquire()
        with self._mutex:
            self._depth = depth

    def held(self) -> bool:
        """Whether the calling thread holds the lock."""
        return self._owner == threading.get_ident()

    def waiting(self) -> int:
        """Number of threads waiting for the lock."""
        return len(self._waiting)

    def _hand_over(self) -> None:
        # Called with the mutex held and the lock free: the longest waiter gets it.
        if self._waiting:
            owner, gate = self._waiting.popleft()
            self._owner, self._depth = owner, 1
            gate.release()
        else:
            self._owner, self._depth = None, 0

    def __enter__(self) -> ModelLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
