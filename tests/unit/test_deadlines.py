"""The one thread that runs the views' scheduled updates (a monitor's trailing publish)."""

from __future__ import annotations

import gc
import threading
import time

from modelviz_widgets.widgets.deadlines import Deadlines


class Owner:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def ping(self) -> None:
        self.calls.append((time.monotonic(), threading.current_thread().name))


def wait_for(condition, timeout: float = 3.0) -> bool:
    end = time.monotonic() + timeout
    while not condition() and time.monotonic() < end:
        time.sleep(0.005)
    return condition()


def test_a_deadline_calls_its_owner_once_when_it_comes():
    deadlines, owner = Deadlines(), Owner()
    start = time.monotonic()
    deadlines.set(owner, 0.05, "ping")
    assert deadlines.pending(owner)
    assert wait_for(lambda: owner.calls)
    time.sleep(0.1)
    ((when, thread),) = owner.calls
    assert when - start >= 0.05 and thread == "modelviz-deadlines"
    assert not deadlines.pending(owner)


def test_set_replaces_the_deadline_and_cancel_forgets_it():
    deadlines, early, cancelled = Deadlines(), Owner(), Owner()
    deadlines.set(early, 30.0, "ping")
    deadlines.set(early, 0.02, "ping")  # sooner: replaces the far one
    deadlines.set(cancelled, 0.05, "ping")
    deadlines.cancel(cancelled)
    assert wait_for(lambda: early.calls)
    time.sleep(0.15)
    assert len(early.calls) == 1 and cancelled.calls == []


def test_many_owners_share_one_thread_and_a_failure_stops_no_other():
    deadlines = Deadlines()
    owners = [Owner() for _ in range(20)]

    class Failing:
        def ping(self) -> None:
            raise RuntimeError("a view's update failed")

    failing = Failing()
    deadlines.set(failing, 0.0, "ping")
    for index, owner in enumerate(owners):
        deadlines.set(owner, 0.01 * (index % 5), "ping")
    assert wait_for(lambda: all(owner.calls for owner in owners))
    names = [t.name for t in threading.enumerate() if t.name == "modelviz-deadlines"]
    assert len(names) >= 1 and deadlines._thread is not None
    assert {thread for owner in owners for _, thread in owner.calls} == {deadlines._thread.name}


def test_an_owner_collected_before_its_deadline_is_forgotten():
    deadlines, owner = Deadlines(), Owner()
    deadlines.set(owner, 0.05, "ping")
    del owner
    gc.collect()
    time.sleep(0.15)
    assert deadlines._due == {}
