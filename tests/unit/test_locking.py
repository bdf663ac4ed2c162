"""The model lock: re-entrant, and a waiter gets its turn at the holder's next step boundary."""

from __future__ import annotations

import threading
import time

import pytest
from torch import nn

from modelviz_widgets.capture.hooks import model_lock
from modelviz_widgets.capture.locking import ModelLock


def test_reentrant_and_released_only_by_its_owner():
    lock = ModelLock()
    with lock, lock:
        assert lock.held()
    assert not lock.held()
    with pytest.raises(RuntimeError, match="does not hold"):
        lock.release()
    assert model_lock(nn.Linear(1, 1)) is not model_lock(nn.Linear(1, 1))


def test_a_waiter_runs_at_the_next_yield_not_after_the_loop():
    lock = ModelLock()
    events: list[str] = []
    started = threading.Event()

    def loop() -> None:
        with lock:
            started.set()
            for step in range(200):
                events.append(f"step {step}")
                time.sleep(0.001)
                lock.yield_turn()  # the step boundary

    trainer = threading.Thread(target=loop)
    trainer.start()
    started.wait()
    while len(events) < 5:
        time.sleep(0.001)
    asked = len(events)
    with lock:
        events.append("visual")
    trainer.join()
    # The waiter got in at the step boundary right after it asked (with a plain RLock, releasing
    # and re-taking it at each boundary, it waited 15 steps in a trial run).
    assert events.index("visual") <= asked + 1
    assert events[-1] == "step 199" and not lock.held() and lock.waiting() == 0


def test_waiters_are_served_in_order():
    lock = ModelLock()
    order: list[int] = []
    lock.acquire()
    threads = []
    for index in range(4):
        thread = threading.Thread(target=lambda i=index: (lock.acquire(), order.append(i),
                                                          lock.release()))  # fmt: skip
        thread.start()
        while lock.waiting() < index + 1:
            time.sleep(0.001)
        threads.append(thread)
    lock.release()
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2, 3]
