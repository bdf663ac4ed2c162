"""One daemon thread for every "call this by then" of the views (a training monitor's next
publish): a ``threading.Timer`` per deadline would start a thread each time, which costs the
caller, the training loop, close to a millisecond on a busy machine.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any

log = logging.getLogger(__name__)


class Deadlines:
    """Calls ``owner.<method>()`` in its own thread once the deadline set for ``owner`` comes.

    One deadline per owner: :meth:`set` replaces it. Owners are held weakly; an owner collected
    before its deadline is forgotten.
    """

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._due: dict[int, tuple[float, weakref.ref[Any], str]] = {}
        self._thread: threading.Thread | None = None

    def set(self, owner: Any, delay: float, method: str) -> None:
        """Call ``owner.<method>()`` in ``delay`` seconds (replacing the owner's deadline)."""
        when = time.monotonic() + max(delay, 0.0)
        with self._wake:
            self._due[id(owner)] = (when, weakref.ref(owner), method)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="modelviz-deadlines", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def cancel(self, owner: Any) -> None:
        with self._wake:
            self._due.pop(id(owner), None)

    def pending(self, owner: Any) -> bool:
        return id(owner) in self._due

    def _run(self) -> None:
        while True:
            with self._wake:
                ready = self._ready()
                while not ready:
                    soonest = min((when for when, _, _ in self._due.values()), default=None)
                    self._wake.wait(None if soonest is None else soonest - time.monotonic())
                    ready = self._ready()
            for reference, method in ready:
                owner = reference()
                if owner is None:
                    continue
                try:
                    getattr(owner, method)()
                except Exception:  # a view's error must not stop the others' deadlines
                    log.exception("modelviz: a scheduled view update failed")

    def _ready(self) -> list[tuple[weakref.ref[Any], str]]:
        """Pop the deadlines that have come (called with the condition held)."""
        now = time.monotonic()
        ready = []
        for key, (when, reference, method) in list(self._due.items()):
            if reference() is None:
                del self._due[key]
            elif when <= now:
                del self._due[key]
                ready.append((reference, method))
        return ready


DEADLINES = Deadlines()
"""The process's one deadline thread."""
