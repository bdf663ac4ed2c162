"""Losses and metrics that are tensors on an accelerator: plain steps keep them unread (reading one
waits for the device, as ``.item()`` does) and they are read all at once at the next sampled step,
view update or close. There is no accelerator here, so these tests take the same path with CPU
tensors (``Recorder._defer_on_cpu``) and check it against each tensor's own ``.item()``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

import modelviz_widgets as mv
from modelviz_widgets.capture.training import MAX_DEFERRED, Recorder

from ._support import FrontEnd
from .test_training_monitor import batches, history_messages, make_model, train


def deferring(model: torch.nn.Module, **options: Any) -> Recorder:
    recorder = Recorder(model, **options)
    recorder._defer_on_cpu = True
    return recorder


def steps_to_feed() -> list[tuple[Any, dict[str, Any]]]:
    """Losses and metrics of several dtypes, a NaN, an Inf, a missing loss, a metric given on some
    steps only, and a Python number beside the tensors."""
    generator = torch.Generator().manual_seed(3)
    steps: list[tuple[Any, dict[str, Any]]] = []
    for step in range(23):
        loss: Any = torch.rand((), generator=generator) * 3
        metrics: dict[str, Any] = {
            "accuracy": torch.rand((1,), generator=generator),
            "correct": torch.randint(0, 10_000_000, (), generator=generator),
            "half": torch.rand((), generator=generator).half(),
            "lr": 0.01,
        }
        if step == 5:
            loss = loss * math.nan
        if step == 7:
            loss = loss / 0.0
        if step == 12:
            loss = None
        if step % 4 == 1:
            del metrics["accuracy"]
        steps.append((loss, metrics))
    return steps


def by_item(value: Any) -> float:
    """The reference: what ``.item()`` reads."""
    if value is None:
        return math.nan
    return float(value.item()) if isinstance(value, torch.Tensor) else float(value)


def test_deferred_steps_hold_what_item_reads_with_their_alerts():
    fed = steps_to_feed()
    immediate = Recorder(make_model(0), every=10)
    deferred = deferring(make_model(1), every=10)
    for loss, metrics in fed:
        immediate.record(loss, **metrics)
        deferred.record(loss, **metrics)
    # Step 20 was sampled: it read the steps before it; 21 and 22 wait.
    assert deferred.history.steps == list(range(21))
    deferred.resolve()
    assert deferred.history.steps == immediate.history.steps == list(range(23))
    expected = [by_item(loss) for loss, _ in fed]
    np.testing.assert_array_equal(deferred.history.losses, expected)  # NaN where NaN
    for name in ("accuracy", "correct", "half", "lr"):
        reference = [by_item(m[name]) if name in m else math.nan for _, m in fed]
        np.testing.assert_array_equal(deferred.history.metrics[name], reference)
        np.testing.assert_array_equal(immediate.history.metrics[name], reference)
    loss_alerts = [(a.step, a.kind) for a in deferred.history.alerts if a.kind == "loss"]
    assert loss_alerts == [(5, "loss"), (7, "loss")]  # a missing loss is no alert
    assert loss_alerts == [(a.step, a.kind) for a in immediate.history.alerts if a.kind == "loss"]
    immediate.close()
    deferred.close()


def test_plain_steps_read_nothing_until_resolved(monkeypatch):
    recorder = deferring(make_model(), every=10)
    recorder.record(torch.tensor(0.5))  # step 0: sampled, read at once

    def read(*args: Any) -> Any:
        raise AssertionError("a plain step read a tensor")

    with monkeypatch.context() as patched:
        for name in ("item", "tolist", "__float__", "cpu", "numpy"):
            patched.setattr(torch.Tensor, name, read)
        for step in range(1, 10):
            recorder.record(torch.tensor(step / 10), accuracy=torch.tensor(0.75))
    assert recorder.history.steps == [0]
    recorder.resolve()
    expected = [torch.tensor(value).item() for value in [0.5, *(s / 10 for s in range(1, 10))]]
    assert recorder.history.losses == expected
    accuracy = recorder.history.metrics["accuracy"]
    assert math.isnan(accuracy[0]) and accuracy[1:] == [0.75] * 9  # not given at step 0
    recorder.close()


def test_a_tensor_changed_in_place_later_keeps_its_steps_value():
    recorder = deferring(make_model(), every=100)
    total = torch.zeros(())
    for _ in range(6):
        total += 1  # a running sum the loop keeps in one tensor
        recorder.record(total, seen=total)
    recorder.resolve()
    assert recorder.history.losses == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert recorder.history.metrics["seen"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    recorder.close()


def test_at_most_max_deferred_steps_wait():
    recorder = deferring(make_model(), every=10_000)
    for step in range(1 + MAX_DEFERRED + 4):
        recorder.record(torch.tensor(float(step)))
    assert len(recorder.history.steps) == 1 + MAX_DEFERRED
    assert recorder.history.losses == [float(s) for s in range(1 + MAX_DEFERRED)]
    recorder.close()  # reads the last four
    assert len(recorder.history.steps) == 1 + MAX_DEFERRED + 4


def test_with_a_log_every_step_is_read_and_committed_at_once(tmp_path):
    recorder = deferring(make_model(), every=10, log=tmp_path / "run.sqlite")
    for step in range(5):
        recorder.record(torch.tensor(float(step)))
        assert recorder.history.steps == list(range(step + 1))
    recorder.close()


def test_a_bad_value_on_a_deferred_step_says_what_is_valid():
    recorder = deferring(make_model(), every=10)
    recorder.record(0.5)
    with pytest.raises(ValueError, match="one number"):
        recorder.record(torch.ones(2))
    with pytest.raises(TypeError, match="number or a one-element tensor"):
        recorder.record(torch.tensor(1.0), accuracy="high")
    recorder.close()


def test_the_view_update_and_close_read_the_deferred_steps():
    model = make_model()
    monitor = mv.TrainingMonitor(model, every=50)
    monitor._recorder._defer_on_cpu = True
    front = FrontEnd(monitor.core)
    losses: list[float] = []

    def step(loss: torch.Tensor) -> None:
        losses.append(loss.item())
        monitor.step(loss, lr=torch.tensor(0.01))

    train(model, batches(30), step)
    monitor._publish()
    rows = [
        np.frombuffer(buffers[0], dtype="<f8").reshape(content["steps_shape"])
        for content, buffers in history_messages(front)
    ]
    table = np.concatenate(rows)
    np.testing.assert_array_equal(table[:, 0], np.arange(30))
    np.testing.assert_array_equal(table[:, 2], losses)
    np.testing.assert_array_equal(table[:, 3], np.float32(0.01))
    train(model, batches(4, seed=2), step)
    monitor.close()
    assert monitor.history.losses == losses
