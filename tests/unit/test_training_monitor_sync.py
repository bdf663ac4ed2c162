"""TrainingMonitor's answers to its view: the sync request is answered from each run's start and the
next appended chunk follows it; a NaN loss stays out of the loss curve (it is an alert)."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import numpy as np
import torch
from torch import nn

import modelviz_widgets as mv
from modelviz_widgets.widgets import training_monitor

from ._support import FrontEnd

SYNC = {"content": {"data": {"method": "custom", "content": {"type": "sync"}}}, "buffers": []}


def history_messages(front: FrontEnd) -> list[dict[str, Any]]:
    return [
        msg["content"]
        for msg, _ in front.messages
        if msg.get("method") == "custom" and msg["content"].get("type") == "history"
    ]


def small_step(model: nn.Module, optimizer: torch.optim.Optimizer) -> torch.Tensor:
    loss = model(torch.randn(8, 4)).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


def test_the_sync_answer_is_followed_by_chunks_that_continue_it():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = mv.TrainingMonitor(model, every=2)
    front = FrontEnd(monitor.core)
    for _ in range(5):
        monitor.step(loss=small_step(model, optimizer))
    front.messages.clear()
    monitor.core._handle_msg(SYNC)
    (answer,) = history_messages(front)
    assert answer["reset"] and answer["steps_shape"][0] == 5 and answer["samples_shape"][0] == 3
    front.messages.clear()
    time.sleep(training_monitor.PUBLISH_INTERVAL * 1.5)
    monitor.step(loss=small_step(model, optimizer))
    time.sleep(training_monitor.PUBLISH_INTERVAL * 3)  # at once, or on the publishing timer
    chunks = history_messages(front)
    # The step after the answer starts where the answer ended: nothing sent twice.
    assert [(c["steps_from"], c["steps_shape"][0]) for c in chunks] == [(5, 1)]
    monitor.close()


def test_a_sync_request_during_background_training_sends_whole_rows():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = mv.TrainingMonitor(model, every=3)
    front = FrontEnd(monitor.core)
    stop = threading.Event()

    def train() -> None:
        while not stop.is_set():
            monitor.step(loss=small_step(model, optimizer), accuracy=0.5)

    monitor.run(train)
    try:
        for _ in range(20):
            monitor.core._handle_msg(SYNC)
    finally:
        stop.set()
        monitor.wait(timeout=30)
    answers = [c for c in history_messages(front) if c["reset"]]
    assert len(answers) >= 20
    for answer in answers:
        rows, columns = answer["steps_shape"]
        assert columns == 3 + len(answer["metrics"]) or rows == 0
    monitor.close()


def test_a_nan_loss_is_an_alert_and_not_a_point_of_the_loss_curve():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(4, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    monitor = mv.TrainingMonitor(model, every=5)
    losses = [small_step(model, optimizer).item() for _ in range(3)]
    for loss in losses:
        monitor.step(loss=loss)
    monitor.step(loss=float("nan"))
    monitor._publish(force=True)
    curve = monitor.current["loss_0"]
    np.testing.assert_allclose(curve, losses)
    assert all(math.isfinite(v) for v in curve)
    assert [a["kind"] for a in monitor.alerts] == ["loss"]
    monitor.close()
